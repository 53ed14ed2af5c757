package provisioning

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/provisioning/drain"
)

// DrainApplied is what ApplyDrainStep did: one result per pod it evicted or
// deleted, in the step's order (evictions first).
type DrainApplied struct {
	Evicted []drain.Result
	Deleted []drain.Result
}

// Moved counts the pods whose eviction or deletion was accepted (or that
// were gone already).
func (a DrainApplied) Moved() int {
	n := 0
	for _, rs := range [][]drain.Result{a.Evicted, a.Deleted} {
		for _, r := range rs {
			if r.Outcome == drain.Evicted || r.Outcome == drain.Gone {
				n++
			}
		}
	}
	return n
}

// Errors returns the errors other than refusals, each naming its pod.
func (a DrainApplied) Errors() []error {
	var errs []error
	for _, rs := range [][]drain.Result{a.Evicted, a.Deleted} {
		for _, r := range rs {
			if r.Outcome == drain.Failed {
				errs = append(errs, r.Err)
			}
		}
	}
	return errs
}

// ApplyDrainStep carries out step on cluster: it evicts step.Evict through
// the Eviction API, deletes step.Delete without their budgets' consent, and
// records the answers in d (taken at now). It is the one place that
// classifies the Eviction API's answers for every drain.
func ApplyDrainStep(ctx context.Context, cluster Cluster, d *drain.Drain, now time.Time, step drain.Step) DrainApplied {
	var out DrainApplied
	for _, p := range step.Evict {
		out.Evicted = append(out.Evicted, classify(p, "evicting", cluster.Evict(ctx, p)))
	}
	for _, p := range step.Delete {
		out.Deleted = append(out.Deleted, classify(p, "deleting", cluster.DeletePod(ctx, p)))
	}
	if len(step.Evict) > 0 {
		d.Record(now, out.Evicted)
	}
	return out
}

func classify(p *corev1.Pod, verb string, err error) drain.Result {
	switch {
	case err == nil:
		return drain.Result{Pod: p, Outcome: drain.Evicted}
	case IsNotFound(err):
		return drain.Result{Pod: p, Outcome: drain.Gone}
	case IsEvictionBlocked(err):
		return drain.Result{Pod: p, Outcome: drain.Refused, Err: err}
	default:
		return drain.Result{Pod: p, Outcome: drain.Failed, Err: fmt.Errorf("%s pod %s: %w", verb, PodKey(p), err)}
	}
}
