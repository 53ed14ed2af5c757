package interruption

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// playbook is what the handler does for one kind of notice, as data: every
// per-kind difference lives here, and decide and plan read it.
type playbook struct {
	// markPool marks the node's offering unavailable, so neither the
	// replacement nor later launches land in the pool EC2 is taking back.
	markPool bool
	// cordonAtOnce cordons the node when the notice is accepted (and the
	// work is due); otherwise it is cordoned just before the drain.
	cordonAtOnce bool
	// replace launches replacement capacity for the node's
	// controller-owned pods before anything is evicted.
	replace bool
	// waitReady holds evictions until the replacement is Ready. With a
	// deadline, evictions start anyway at the fallback point (deadline -
	// margin - longest grace period - margin); without one, the handler
	// gives up after ReplacementReadyTimeout and keeps the node.
	waitReady bool
	// drain says how the node is drained.
	drain drainMode
	// lead is how long before the deadline the work begins (zero: at
	// once): a scheduled change weeks ahead keeps its node until shortly
	// before it starts.
	lead time.Duration
	// rebalanceShare bounds the work by RebalanceMaxShare of the NodePool.
	rebalanceShare bool
}

// drainMode says how a playbook drains the node.
type drainMode int

const (
	// drainNone deletes the node without draining: the instance is
	// stopping or gone, its pods cannot leave gracefully.
	drainNone drainMode = iota
	// drainHard drains before the notice's deadline, deleting pods still
	// held by their budgets once only their grace period is left.
	drainHard
	// drainSoft drains within RebalanceDrainTimeout, through budgets
	// only; if the node is not drained by then it is kept, cordoned.
	drainSoft
	// drainCordonOnly only cordons: no record, no drain.
	drainCordonOnly
)

// playbooks returns the playbook of every notice kind the handler acts on
// under opts (a kind missing from the map is ignored).
func playbooks(opts HandlerOptions) map[Kind]playbook {
	warning := playbook{markPool: true, cordonAtOnce: true, replace: true, waitReady: true, drain: drainHard}
	books := map[Kind]playbook{
		KindSpotInterruption:                warning,
		KindCapacityReservationInterruption: warning,
		KindScheduledChange:                 {cordonAtOnce: true, replace: true, waitReady: true, drain: drainHard, lead: opts.ScheduledChangeLead},
		KindStateChange:                     {cordonAtOnce: true, replace: true, drain: drainNone},
	}
	switch opts.RebalanceMode {
	case RebalanceReplaceThenDrain:
		books[KindRebalanceRecommendation] = playbook{replace: true, waitReady: true, drain: drainSoft, rebalanceShare: true}
	case RebalanceCordonOnly:
		books[KindRebalanceRecommendation] = playbook{cordonAtOnce: true, drain: drainCordonOnly}
	}
	return books
}

// startAt is when the work of a record under book begins.
func (b playbook) startAt(rec *record) time.Time {
	if b.lead <= 0 || rec.Deadline.IsZero() {
		return time.Time{}
	}
	return rec.Deadline.Add(-b.lead)
}

// memory is what the handler remembers of a node, as decide sees it.
type memory struct {
	// own is set when the entry's record is this handler's: it wrote it
	// or took its work up. A record on the node that is not own was left
	// by an earlier process.
	own bool
	// seen holds the kinds of the notices already accepted.
	seen map[Kind]bool
	// launching is set while a replacement launch is in flight.
	launching bool
}

// decision is what Handle does with one notice for one instance.
type decision struct {
	// outcome is ActionDuplicate, ActionIgnored or ActionUnknownNode when
	// the notice is not acted on, "" when it is.
	outcome string
	// write is the record to write on the node before anything else
	// (nil: leave the record as it is).
	write *record
	// work is the record the node's work follows from now on (nil: no
	// work).
	work *record
	// adopt is set when the work is taken up from a record an earlier
	// process left (counted as ActionResumed).
	adopt bool
	// markPool and cordon are the urgent part, done before Handle
	// returns.
	markPool, cordon bool
	// relaunch is set when the notice comes while a replacement for a
	// notice without a deadline is launching: it gets its own.
	relaunch bool
}

// decide is the handler's policy for a notice m for one instance whose node
// is node (nil: no such node), whose record is rec (nil: none; from the
// handler's memory when it is its own, else from the node's annotation)
// and of which the handler remembers mem. It is pure.
func decide(books map[Kind]playbook, m Message, node *corev1.Node, rec *record, mem memory, now time.Time) decision {
	book, ok := books[m.Kind]
	if !ok || (m.Kind == KindStateChange && !m.Terminal()) {
		return decision{outcome: ActionIgnored}
	}
	if node == nil {
		if mem.seen[m.Kind] {
			return decision{outcome: ActionDuplicate}
		}
		return decision{outcome: ActionUnknownNode}
	}
	if book.drain == drainCordonOnly {
		d := decision{cordon: true}
		if mem.seen[m.Kind] {
			d.outcome = ActionDuplicate
		}
		return d
	}
	next, added := mergeRecord(rec, m, now)
	if mem.own && (!added || (rec == nil && mem.seen[m.Kind])) {
		// Recorded already, or acted on and given up (the node kept).
		return decision{outcome: ActionDuplicate}
	}
	if !added {
		// Accepted by an earlier process and not finished: take it up.
		return decision{work: rec, adopt: true, markPool: books[rec.Kind].markPool, cordon: urgentCordon(books[rec.Kind], rec, now)}
	}
	d := decision{write: &next, work: &next, markPool: book.markPool, cordon: urgentCordon(book, &next, now)}
	if mem.launching && rec != nil && rec.Deadline.IsZero() && !next.Deadline.IsZero() {
		d.relaunch = true
	}
	return d
}

// urgentCordon reports whether the node is cordoned as soon as rec is
// accepted: the playbook says so and the work is due now.
func urgentCordon(b playbook, rec *record, now time.Time) bool {
	return b.cordonAtOnce && !now.Before(b.startAt(rec))
}
