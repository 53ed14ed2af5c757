package provisioning

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning/drain"
)

// orphanDrainRetry is how soon a drain held by a PodDisruptionBudget, by pods
// still terminating or by replacement capacity not yet Ready is looked at
// again when nothing in the cluster changes meanwhile.
const orphanDrainRetry = 5 * time.Second

// orphanDrain is a node of a deleted NodePool being drained.
type orphanDrain struct {
	pool    string
	started time.Time
	// replacements are the nodes ProvisionNow found or launched for the
	// node's pods: evictions wait until they are Ready or gone, so the pods
	// have somewhere to go.
	replacements []string
	// drain is the node's drain: no deadline (the pool is gone for good),
	// refusals retried every orphanDrainRetry.
	drain *drain.Drain
}

// RemoveOrphanedNodes drains and deletes the nodes this Provisioner launched
// for NodePools that no longer exist, as Karpenter does when a NodePool is
// deleted. Only nodes carrying LabelManagedBy are considered: a node with the
// karpenter.sh/nodepool label of a missing pool but without fleetpack's mark
// is never touched.
//
// A pool must have been missing for OrphanGracePeriod (counted from the
// SetNodePools that dropped it, or from the first pass that saw one of its
// nodes) before any of its nodes is disrupted; a pool that comes back within
// it leaves its nodes alone. At most MaxOrphanDisruptions nodes are disrupted
// at once, those holding the fewest pods first. Each is cordoned; replacement
// capacity for its pods is found or launched at once (as ProvisionNow does
// for an interrupted node) and, once it is Ready, the pods are evicted through
// the Eviction API, so PodDisruptionBudgets hold and a refused eviction is
// retried. When only daemonset, mirror and finished pods are left, the node's
// instance is terminated and the node deleted. A drain, once begun, is
// finished even if the pool comes back.
//
// It returns the removed nodes and when it next needs to run (zero: nothing
// is waiting). A negative OrphanGracePeriod turns it off.
func (p *Provisioner) RemoveOrphanedNodes(ctx context.Context) ([]string, time.Time, error) {
	if p.opts.OrphanGracePeriod < 0 {
		return nil, time.Time{}, nil
	}
	p.passMu.Lock()
	defer p.passMu.Unlock()
	s, err := p.snapshot(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	var next time.Time
	wake := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	pods := evictablePods(s)

	// Nodes of missing pools, past their grace period and not yet draining.
	var due []*corev1.Node
	waiting := 0
	p.mu.Lock()
	known := map[string]bool{}
	for _, np := range p.pools {
		known[np.Name] = true
	}
	missing := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(s.nodes)) {
		node := s.nodes[name]
		pool := node.Labels[offerings.LabelNodePool]
		if pool == "" || known[pool] || !IsManaged(node) || node.DeletionTimestamp != nil {
			continue
		}
		missing[pool] = true
		if p.removal.orphanDrains[name] != nil {
			continue
		}
		since, ok := p.removal.poolGone[pool]
		if !ok {
			since = s.now
			p.removal.poolGone[pool] = since
		}
		if at := since.Add(p.opts.OrphanGracePeriod); s.now.Before(at) {
			waiting++
			wake(at)
			continue
		}
		due = append(due, node)
	}
	// Forget pools none of whose nodes is left.
	for pool := range p.removal.poolGone {
		if !missing[pool] {
			delete(p.removal.poolGone, pool)
		}
	}
	p.mu.Unlock()
	for name := range p.removal.orphanDrains {
		if n := s.nodes[name]; n == nil || n.DeletionTimestamp != nil {
			delete(p.removal.orphanDrains, name)
		}
	}

	// Start draining as many as the bound allows: nodes an earlier run had
	// cordoned first, then the cheapest to disrupt.
	slices.SortStableFunc(due, func(a, b *corev1.Node) int {
		if a.Spec.Unschedulable != b.Spec.Unschedulable {
			if a.Spec.Unschedulable {
				return -1
			}
			return 1
		}
		return len(pods[a.Name]) - len(pods[b.Name])
	})
	var errs []error
	queued := 0
	for _, node := range due {
		if len(p.removal.orphanDrains) >= p.opts.MaxOrphanDisruptions {
			queued++
			continue
		}
		if err := p.startOrphanDrain(ctx, s, node, pods[node.Name]); err != nil {
			errs = append(errs, err)
		}
	}

	var removed []string
	if len(p.removal.orphanDrains) > 0 {
		// Starting drains launched capacity and cordoned nodes: look again.
		if s, err = p.snapshot(ctx); err != nil {
			return nil, next, errors.Join(append(errs, err)...)
		}
		for _, name := range slices.Sorted(maps.Keys(p.removal.orphanDrains)) {
			done, err := p.stepOrphanDrain(ctx, s, name)
			if err != nil {
				errs = append(errs, err)
			}
			if done {
				removed = append(removed, name)
			} else {
				wake(s.now.Add(orphanDrainRetry))
			}
		}
	}
	p.metrics.OrphanedNodes.WithLabelValues("waiting").Set(float64(waiting))
	p.metrics.OrphanedNodes.WithLabelValues("queued").Set(float64(queued))
	p.metrics.OrphanedNodes.WithLabelValues("draining").Set(float64(len(p.removal.orphanDrains)))
	if queued > 0 {
		// Queued nodes start when a drain ends; that is a cluster change,
		// but do not rely on it alone.
		wake(s.now.Add(orphanDrainRetry))
	}
	return removed, next, errors.Join(errs...)
}

// orphanDue reports whether node is one RemoveOrphanedNodes drains or will
// drain now: launched by fleetpack for a NodePool that has been missing for
// OrphanGracePeriod. Such a node takes no pods: pods moved off one orphan
// must not land on the next, to be disrupted again.
func (p *Provisioner) orphanDue(node *corev1.Node, pools []*NodePool, now time.Time) bool {
	pool := node.Labels[offerings.LabelNodePool]
	if p.opts.OrphanGracePeriod < 0 || pool == "" || !IsManaged(node) || slices.ContainsFunc(pools, func(np *NodePool) bool { return np.Name == pool }) {
		return false
	}
	p.mu.Lock()
	since, ok := p.removal.poolGone[pool]
	p.mu.Unlock()
	return ok && !now.Before(since.Add(p.opts.OrphanGracePeriod))
}

// evictablePods returns, by node, the bound pods a drain must move
// (MovesOnDrain).
func evictablePods(s *snapshot) map[string][]*corev1.Pod {
	out := map[string][]*corev1.Pod{}
	for _, pod := range s.pods {
		if pod.Spec.NodeName == "" || !MovesOnDrain(pod) {
			continue
		}
		out[pod.Spec.NodeName] = append(out[pod.Spec.NodeName], pod)
	}
	return out
}

// startOrphanDrain cordons node and finds or launches capacity for its pods.
// Caller holds passMu.
func (p *Provisioner) startOrphanDrain(ctx context.Context, s *snapshot, node *corev1.Node, pods []*corev1.Pod) error {
	pool := node.Labels[offerings.LabelNodePool]
	log := p.log.With("node", node.Name, "nodepool", pool, "providerID", node.Spec.ProviderID)
	if err := p.cluster.Cordon(ctx, node.Name); err != nil {
		if IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("cordoning node %s of deleted NodePool %s: %w", node.Name, pool, err)
	}
	// Evictions wait for the replacement (drain.Start below), however long.
	d := &orphanDrain{pool: pool, started: s.now, drain: drain.New(s.now, drain.Options{
		AwaitStart: true, InitialBackoff: orphanDrainRetry, MaxBackoff: orphanDrainRetry,
	})}
	p.removal.orphanDrains[node.Name] = d
	p.mu.Lock()
	missingFor := s.now.Sub(p.removal.poolGone[pool])
	p.mu.Unlock()
	log.InfoContext(ctx, "draining node of deleted NodePool", "pods", len(pods), "poolMissingFor", missingFor)
	if rec, ok := p.cluster.(EventRecorder); ok {
		rec.Event(ctx, node, corev1.EventTypeNormal, "DrainingOrphanedNode", fmt.Sprintf("NodePool %s no longer exists: cordoned, draining", pool))
	}
	if len(pods) == 0 {
		return nil
	}
	res, err := p.provisionNow(ctx, pods)
	if err != nil {
		// The pool is gone for good: drain anyway, as Karpenter does; the
		// evicted pods are provisioned for like any pending pod.
		log.WarnContext(ctx, "finding replacement capacity failed; draining anyway", "error", err)
	}
	if res == nil {
		return nil
	}
	for _, n := range res.Nodes() {
		d.replacements = append(d.replacements, n.Name)
	}
	if len(res.Unschedulable) > 0 {
		log.WarnContext(ctx, "pods of the node fit no remaining NodePool; draining anyway, they will stay pending", "pods", len(res.Unschedulable))
	}
	return nil
}

// stepOrphanDrain moves one drain on: evict the node's pods once its
// replacement capacity is Ready, and terminate the node once they are gone.
// It reports whether the node was removed. Caller holds passMu.
func (p *Provisioner) stepOrphanDrain(ctx context.Context, s *snapshot, name string) (bool, error) {
	d := p.removal.orphanDrains[name]
	node := s.nodes[name]
	if node == nil || node.DeletionTimestamp != nil {
		delete(p.removal.orphanDrains, name)
		return false, nil
	}
	log := p.log.With("node", name, "nodepool", d.pool)
	if !drain.ReplacementsReady(d.replacements, s.nodes) {
		return false, nil
	}
	d.drain.Start()
	step := d.drain.Next(s.now, evictablePods(s)[name])
	if len(step.Evict) > 0 {
		applied := ApplyDrainStep(ctx, p.cluster, d.drain, s.now, step)
		blocked := applied.count(ctx, log, p.metrics.OrphanEvictions)
		if len(blocked) > 0 {
			log.InfoContext(ctx, "drain waiting on pods whose eviction was refused", "pods", strings.Join(blocked, ","), "retryAt", s.now.Add(orphanDrainRetry))
		}
		if applied.Moved() > 0 {
			// Evicted pods are often gone at once.
			again, err := p.snapshot(ctx)
			if err != nil {
				return false, err
			}
			step = d.drain.Next(again.now, evictablePods(again)[name])
		}
	}
	if !step.Done {
		return false, nil
	}
	if err := p.terminate(ctx, node, d.pool, "orphaned"); err != nil {
		return false, err
	}
	delete(p.removal.orphanDrains, name)
	drainedFor := s.now.Sub(d.started)
	log.InfoContext(ctx, "removed node of deleted NodePool", "providerID", node.Spec.ProviderID, "drainedFor", drainedFor)
	if rec, ok := p.cluster.(EventRecorder); ok {
		rec.Event(ctx, node, corev1.EventTypeNormal, "RemovedOrphanedNode", fmt.Sprintf("NodePool %s no longer exists: node drained in %s and terminated", d.pool, drainedFor))
	}
	return true, nil
}
