package interruption

import (
	"context"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/provisioning"
)

// Eviction retry backoff: PodDisruptionBudgets free up as replacements become
// ready, which takes seconds, so retries start fast and stay frequent.
const (
	evictionBackoffInitial = time.Second
	evictionBackoffMax     = 5 * time.Second
)

type drainResult struct {
	drained   bool
	remaining int
}

// evictablePods lists the pods a drain must move off node
// (provisioning.MovesOnDrain).
func (h *Handler) evictablePods(ctx context.Context, node string) ([]*corev1.Pod, error) {
	pods, err := h.opts.Cluster.ListPods(ctx)
	if err != nil {
		return nil, err
	}
	var out []*corev1.Pod
	for _, p := range pods {
		if p.Spec.NodeName != node || !provisioning.MovesOnDrain(p) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// gracePeriod is the pod's terminationGracePeriodSeconds (30 s if unset).
func gracePeriod(pod *corev1.Pod) time.Duration {
	if s := pod.Spec.TerminationGracePeriodSeconds; s != nil && *s >= 0 {
		return time.Duration(*s) * time.Second
	}
	return defaultGracePeriod
}

// drain evicts the node's pods through the Eviction API, retrying those a
// PodDisruptionBudget holds with backoff, until none is left or the deadline.
// With hard set the deadline is the instance's end: a pod still held when
// less than its termination grace period remains is deleted without the
// budget's consent, so it can still shut down gracefully before the instance
// goes. Pods already terminating are waited for, not evicted again.
func (h *Handler) drain(ctx context.Context, log *slog.Logger, a *action, deadline time.Time, hard bool) drainResult {
	clk := h.opts.Clock
	start := clk.Now()
	kind := string(a.msg.Kind)
	backoff := evictionBackoffInitial
	nextEvict := start
	// relist is set after evictions were accepted: the node is checked
	// again at once, since evicted pods are often gone already. Only once
	// per pass, so a lagging cache cannot make the loop spin.
	relist := false
	for {
		if ctx.Err() != nil {
			return drainResult{remaining: -1}
		}
		pods, err := h.evictablePods(ctx, a.node)
		if err != nil {
			if ctx.Err() != nil {
				return drainResult{remaining: -1}
			}
			log.Error("listing pods to drain", "error", err)
		} else if len(pods) == 0 {
			h.opts.Metrics.DrainDuration.WithLabelValues(kind).Observe(clk.Since(start).Seconds())
			h.count(a.msg.Kind, ActionDrain)
			return drainResult{drained: true}
		}
		now := clk.Now()
		if !now.Before(deadline) {
			if hard {
				h.opts.Metrics.DeadlineMisses.WithLabelValues(kind).Inc()
				log.Warn("notice deadline reached with pods still on the node", "remaining", len(pods), "deadline", deadline)
			}
			h.opts.Metrics.DrainDuration.WithLabelValues(kind).Observe(clk.Since(start).Seconds())
			return drainResult{remaining: len(pods)}
		}

		wake := deadline
		evictNow := !now.Before(nextEvict) && !relist
		blocked, acted := 0, 0
		for _, p := range pods {
			if p.DeletionTimestamp != nil {
				continue
			}
			grace := gracePeriod(p)
			if hard && deadline.Sub(now) <= grace {
				if err := h.opts.Cluster.DeletePod(ctx, p); err != nil && !provisioning.IsNotFound(err) {
					log.Error("deleting pod at the deadline", "pod", provisioning.PodKey(p), "error", err)
				} else {
					acted++
					h.count(a.msg.Kind, ActionForceDelete)
					log.Warn("deleted pod despite its disruption budget: the instance goes before it could be evicted", "pod", provisioning.PodKey(p), "gracePeriod", grace)
				}
				continue
			}
			if hard {
				// Wake in time to delete it while it can still shut
				// down gracefully.
				if t := deadline.Add(-grace); t.Before(wake) {
					wake = t
				}
			}
			if !evictNow {
				continue
			}
			err := h.opts.Cluster.Evict(ctx, p)
			switch {
			case err == nil, provisioning.IsNotFound(err):
				acted++
			case provisioning.IsEvictionBlocked(err):
				blocked++
			default:
				blocked++
				log.Error("evicting pod", "pod", provisioning.PodKey(p), "error", err)
			}
		}
		if evictNow {
			if blocked > 0 {
				nextEvict = now.Add(backoff)
				backoff = min(2*backoff, evictionBackoffMax)
			} else {
				nextEvict = now.Add(evictionBackoffInitial)
				backoff = evictionBackoffInitial
			}
		}
		if acted > 0 && !relist {
			relist = true
			continue
		}
		relist = false
		// Re-check on the next tick: evicted pods take time to
		// terminate, and blocked ones are retried at nextEvict.
		if t := now.Add(evictionBackoffInitial); t.Before(wake) {
			wake = t
		}
		if nextEvict.After(now) && nextEvict.Before(wake) {
			wake = nextEvict
		}
		if d := wake.Sub(clk.Now()); d > 0 {
			tick := clk.After(d)
			h.waiting(+1)
			select {
			case <-ctx.Done():
			case <-tick:
			}
			h.waiting(-1)
			if ctx.Err() != nil {
				return drainResult{remaining: -1}
			}
		}
	}
}
