package provisioning

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// batcher decides when a batch of pending pods closes: BatchIdleDuration
// after the last new pod, or BatchMaxDuration after the first, whichever
// comes first. It is pure so its timing can be tested exactly.
type batcher struct {
	idle, max time.Duration
	open      bool
	start     time.Time
	last      time.Time
}

// add records that new pending pods appeared at now.
func (b *batcher) add(now time.Time) {
	if !b.open {
		b.open, b.start = true, now
	}
	b.last = now
}

// deadline is when the open batch closes (zero if none is open).
func (b *batcher) deadline() time.Time {
	if !b.open {
		return time.Time{}
	}
	idle, max := b.last.Add(b.idle), b.start.Add(b.max)
	if idle.Before(max) {
		return idle
	}
	return max
}

// due reports whether the open batch should close at now.
func (b *batcher) due(now time.Time) bool {
	return b.open && !now.Before(b.deadline())
}

func (b *batcher) reset() { b.open = false }

// loopState is what the Run loop knows when it is about to wait.
type loopState struct {
	pending int
	open    bool
	// retryAt and emptyAt are when unplaceable pods are retried and when
	// node removal (empty nodes, nodes of deleted NodePools) next needs to
	// run (zero: none).
	retryAt, emptyAt time.Time
}

// runHooks let tests see the loop's state each time it is about to wait.
type runHooks struct {
	// waiting is called before the loop blocks.
	waiting func(loopState)
	// batch is called after each provisioning pass the loop runs.
	batch func(*Result, error)
	// removed is called after each node-removal pass that removed nodes.
	removed func([]string)
}

// Run provisions until ctx is done: it watches the cluster for pending pods,
// batches them, provisions each batch, retries unplaceable pods every
// RetryInterval, removes nodes that have been empty for their pool's
// consolidateAfter, drains and removes nodes of deleted NodePools
// (RemoveOrphanedNodes), consolidates (Consolidate, when enabled) and
// terminates instances no node stands for (TerminateLeakedInstances). It
// returns nil when ctx is cancelled.
func (p *Provisioner) Run(ctx context.Context) error {
	changes := p.cluster.Changes(ctx)
	b := &batcher{idle: p.opts.BatchIdleDuration, max: p.opts.BatchMaxDuration}
	// seen holds the pending pods already counted into a batch (or tried and
	// left unplaceable): they do not reopen the batch window.
	seen := map[types.UID]bool{}
	var retryAt, emptyAt time.Time
	var timer clock.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	observe := func() int {
		pending, err := p.PendingPods(ctx)
		if err != nil {
			p.log.ErrorContext(ctx, "listing pending pods", "error", err)
			return 0
		}
		now := p.clock.Now()
		current := make(map[types.UID]bool, len(pending))
		fresh := false
		for _, pod := range pending {
			current[pod.UID] = true
			if !seen[pod.UID] {
				seen[pod.UID] = true
				fresh = true
			}
		}
		for uid := range seen {
			if !current[uid] {
				delete(seen, uid)
			}
		}
		if fresh {
			b.add(now)
		}
		p.metrics.PodsPending.Set(float64(len(pending)))
		return len(pending)
	}
	removeEmpty := func() {
		// Each remover runs in turn; the loop wakes for the soonest.
		var removed []string
		var next time.Time
		for _, step := range []struct {
			what string
			run  func(context.Context) ([]string, time.Time, error)
		}{{"removing empty nodes", p.RemoveEmptyNodes}, {"removing nodes of deleted NodePools", p.RemoveOrphanedNodes}, {"consolidating", p.Consolidate}, {"terminating leaked instances", p.TerminateLeakedInstances}} {
			gone, at, err := step.run(ctx)
			if err != nil {
				p.log.ErrorContext(ctx, step.what, "error", err)
				// Try again later rather than spin.
				at = p.clock.Now().Add(p.opts.RetryInterval)
			}
			removed = append(removed, gone...)
			if next.IsZero() || (!at.IsZero() && at.Before(next)) {
				next = at
			}
		}
		emptyAt = next
		if len(removed) > 0 && p.hooks != nil && p.hooks.removed != nil {
			p.hooks.removed(removed)
		}
	}
	provision := func() {
		b.reset()
		res, err := p.Provision(ctx)
		if err != nil {
			p.log.ErrorContext(ctx, "provisioning", "error", err)
		}
		retryAt = time.Time{}
		if err != nil || (res != nil && len(res.Unschedulable) > 0) {
			retryAt = p.clock.Now().Add(p.opts.RetryInterval)
		}
		if p.hooks != nil && p.hooks.batch != nil {
			p.hooks.batch(res, err)
		}
	}

	pending := observe()
	removeEmpty()
	for {
		if ctx.Err() != nil {
			return nil
		}
		now := p.clock.Now()
		if b.due(now) || (!retryAt.IsZero() && !now.Before(retryAt)) {
			provision()
			pending = observe()
			continue
		}
		if !emptyAt.IsZero() && !now.Before(emptyAt) {
			removeEmpty()
			continue
		}
		var wake time.Time
		for _, t := range []time.Time{b.deadline(), retryAt, emptyAt} {
			if !t.IsZero() && (wake.IsZero() || t.Before(wake)) {
				wake = t
			}
		}
		var timerC <-chan time.Time
		if timer != nil {
			timer.Stop()
			timer = nil
		}
		if !wake.IsZero() {
			timer = p.clock.NewTimer(wake.Sub(now))
			timerC = timer.C()
		}
		if p.hooks != nil && p.hooks.waiting != nil {
			p.hooks.waiting(loopState{pending: pending, open: b.open, retryAt: retryAt, emptyAt: emptyAt})
		}
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-changes:
			if !ok {
				return nil
			}
			pending = observe()
			removeEmpty()
		case <-p.poolsChanged:
			removeEmpty()
		case <-timerC:
		}
	}
}
