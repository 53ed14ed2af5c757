package provisioning

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/cloudprovider"
	"github.com/fleetpack/fleetpack/offerings"
)

// leakListInterval is the least time between two listings of the cloud's
// instances: TerminateLeakedInstances runs on every cluster change, and a
// listing is an API call (DescribeInstances) that a busy cluster must not
// make on every pod event.
const leakListInterval = 30 * time.Second

// leakState is leaked-instance collection's own state.
type leakState struct {
	// suspects holds, by provider ID, when the age of each instance without
	// a Node runs from: its launch, or when it was first seen without one
	// where the cloud does not say when it launched.
	suspects map[string]time.Time
	// listedAt is when the cloud's instances were last listed.
	listedAt time.Time
}

// leakVerdict is what decideLeaks found: the instances to terminate, the
// suspects to remember, and when to look again (zero: no suspect waits).
type leakVerdict struct {
	terminate []*corev1.Node
	suspects  map[string]time.Time
	wake      time.Time
}

// decideLeaks finds the instances the cloud runs for this provisioner that
// no Node stands for. Such an instance is leaked once it has been running
// for grace: long enough to have registered (fleetpack registers a node
// right after its launch returns, so only a crash or a failed clean-up in
// between leaves one). An instance's age runs from its launch time when the
// cloud reports it (CreationTimestamp), else from when it was first seen
// without a node. It is pure: the caller lists and terminates.
func decideLeaks(instances, nodes []*corev1.Node, suspects map[string]time.Time, now time.Time, grace time.Duration) leakVerdict {
	registered := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		if n.Spec.ProviderID != "" {
			registered[n.Spec.ProviderID] = true
		}
	}
	v := leakVerdict{suspects: map[string]time.Time{}}
	for _, in := range instances {
		id := in.Spec.ProviderID
		if id == "" || registered[id] {
			continue
		}
		since := in.CreationTimestamp.Time
		if since.IsZero() {
			since = now
			if seen, ok := suspects[id]; ok {
				since = seen
			}
		}
		v.suspects[id] = since
		if due := since.Add(grace); now.Before(due) {
			if v.wake.IsZero() || due.Before(v.wake) {
				v.wake = due
			}
			continue
		}
		v.terminate = append(v.terminate, in)
	}
	return v
}

// TerminateLeakedInstances terminates the instances this provisioner's
// cloud runs that no Node in the cluster stands for, once they have had
// LeakedInstanceGracePeriod to register: "a launched instance is always
// tracked or terminated", even when a process dies between CreateFleet and
// registering the node, or a failed registration's clean-up failed too. A
// new leader's first pass finds what its predecessor left.
//
// The cloud is listed at most once per 30 s. It returns the terminated
// instances' node names and when it next needs to run (zero: nothing is
// waiting). A negative LeakedInstanceGracePeriod turns it off.
func (p *Provisioner) TerminateLeakedInstances(ctx context.Context) ([]string, time.Time, error) {
	if p.opts.LeakedInstanceGracePeriod < 0 {
		return nil, time.Time{}, nil
	}
	// Passes launch under passMu: while it is held here no instance is
	// between its launch and its node's registration.
	p.passMu.Lock()
	defer p.passMu.Unlock()
	now := p.clock.Now()
	if !p.leaks.listedAt.IsZero() && now.Before(p.leaks.listedAt.Add(leakListInterval)) {
		return nil, p.nextLeakWake(), nil
	}
	instances, err := p.cloud.List(ctx)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("listing instances: %w", err)
	}
	nodes, err := p.cluster.ListNodes(ctx)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("listing nodes: %w", err)
	}
	p.leaks.listedAt = now
	v := decideLeaks(instances, nodes, p.leaks.suspects, now, p.opts.LeakedInstanceGracePeriod)
	p.leaks.suspects = v.suspects
	var terminated []string
	var errs []error
	for _, in := range v.terminate {
		pool := in.Labels[offerings.LabelNodePool]
		if err := p.cloud.Delete(ctx, in.Spec.ProviderID); err != nil && !cloudprovider.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("terminating leaked instance %s: %w", in.Spec.ProviderID, err))
			continue
		}
		delete(p.leaks.suspects, in.Spec.ProviderID)
		p.metrics.NodesTerminated.WithLabelValues(pool, in.Labels[offerings.LabelCapacityType], "leaked").Inc()
		p.log.WarnContext(ctx, "terminated an instance no node stands for", "providerID", in.Spec.ProviderID, "nodepool", pool,
			"instanceType", in.Labels[offerings.LabelInstanceType], "launched", in.CreationTimestamp.Time)
		terminated = append(terminated, in.Name)
	}
	wake := v.wake
	if len(errs) > 0 {
		wake = now.Add(p.opts.RetryInterval)
	}
	return terminated, wake, errors.Join(errs...)
}

// nextLeakWake is when a suspect already seen becomes due, or zero. Caller
// holds passMu.
func (p *Provisioner) nextLeakWake() time.Time {
	var wake time.Time
	for _, since := range p.leaks.suspects {
		due := since.Add(p.opts.LeakedInstanceGracePeriod)
		if wake.IsZero() || due.Before(wake) {
			wake = due
		}
	}
	if !wake.IsZero() && wake.Before(p.leaks.listedAt.Add(leakListInterval)) {
		wake = p.leaks.listedAt.Add(leakListInterval)
	}
	return wake
}
