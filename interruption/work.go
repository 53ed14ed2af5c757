package interruption

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
	"github.com/fleetpack/fleetpack/provisioning/drain"
)

// Polling and retry intervals of the work. Cluster changes wake the handler
// sooner; these bound the wait when a change goes unnoticed.
const (
	pollInterval    = time.Second
	deferredPoll    = 5 * time.Second
	retryInitial    = time.Second
	retryMax        = 30 * time.Second
	launchWriteWait = 30 * time.Second
)

// nodeWork is the handler's one record of a node it has (or had) work for.
// Its fields are guarded by Handler.mu, except recMu.
type nodeWork struct {
	instanceID, node, providerID, pool string
	// recMu is held while deciding on, or writing, the node's record, so
	// that an older state never overwrites a newer one.
	recMu sync.Mutex

	// rec is the node's record as this handler last wrote or took it up
	// (nil: none); own is set once it did.
	rec *record
	own bool
	// seen holds the kinds of the notices accepted for the node.
	seen map[Kind]bool
	// marked is set once the node's pool was marked unavailable.
	marked bool
	// active is set while there is work to do; finishedAt is when it
	// ended (the entry is forgotten DedupeTTL later).
	active     bool
	startedAt  time.Time
	finishedAt time.Time
	// launching is set while a replacement launch is in flight;
	// relaunch asks for another once it returns (a notice with a
	// deadline came during a rebalance's launch).
	launching, relaunch bool
	// drain is the node's drain, for a record of kind drainKind.
	drain     *drain.Drain
	drainKind Kind
	// warnedBare and deferred make their log lines come once.
	warnedBare, deferred bool
	// wake is when the work next needs a step; retry is the wait after
	// the next failure of an action, and retryAt the end of the current
	// one.
	wake    time.Time
	retry   time.Duration
	retryAt time.Time
}

func (w *nodeWork) start(now time.Time) {
	if !w.active {
		w.startedAt = now
	}
	w.active, w.finishedAt, w.wake = true, time.Time{}, now
}

func (w *nodeWork) finish(now time.Time) {
	w.active, w.finishedAt, w.drain, w.launching = false, now, nil, false
}

// snapshot is one listing of the cluster, shared by every node's step.
type snapshot struct {
	now      time.Time
	nodes    map[string]*corev1.Node
	byNode   map[string][]*corev1.Pod
	pods     []*corev1.Pod
	poolSize map[string]int
}

func (h *Handler) snapshot(ctx context.Context, now time.Time) (*snapshot, []*corev1.Node, error) {
	nodes, err := h.opts.Cluster.ListNodes(ctx)
	if err != nil {
		return nil, nil, err
	}
	pods, err := h.opts.Cluster.ListPods(ctx)
	if err != nil {
		return nil, nil, err
	}
	s := &snapshot{now: now, nodes: map[string]*corev1.Node{}, byNode: map[string][]*corev1.Pod{}, pods: pods, poolSize: map[string]int{}}
	for _, n := range nodes {
		s.nodes[n.Name] = n
		s.poolSize[n.Labels[offerings.LabelNodePool]]++
	}
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			s.byNode[p.Spec.NodeName] = append(s.byNode[p.Spec.NodeName], p)
		}
	}
	return s, nodes, nil
}

// round lists the cluster once, plans every active node's next move and
// applies the moves, at most Workers at once. It returns when the next
// round is due (zero: none).
func (h *Handler) round(ctx context.Context) time.Time {
	now := h.opts.Clock.Now()
	h.mu.Lock()
	h.pruneLocked(now)
	need := (!h.resumed && !now.Before(h.retryAt)) || len(h.away.pending) > 0 || h.anyDueLocked(now)
	h.mu.Unlock()
	if !need {
		return h.nextWake(now)
	}
	s, nodes, err := h.snapshot(ctx, now)
	if err != nil {
		if ctx.Err() != nil {
			return time.Time{}
		}
		h.mu.Lock()
		h.backoff = min(max(2*h.backoff, retryInitial), retryMax)
		h.retryAt = now.Add(h.backoff)
		at := h.retryAt
		h.mu.Unlock()
		h.log.Error("listing the cluster for interruption work; retrying", "error", err, "retryAt", at)
		return at
	}
	h.indexNodes(nodes)
	h.mu.Lock()
	h.backoff = 0
	resumed := h.resumed
	h.resumed = true
	h.mu.Unlock()
	if !resumed {
		h.resume(ctx, s)
	}

	h.mu.Lock()
	h.away.observe(s.pods, now, func(kind Kind, d time.Duration) {
		h.opts.Metrics.PodUnavailability.WithLabelValues(string(kind)).Observe(d.Seconds())
	})
	var work []*nodeWork
	for _, w := range h.nodes {
		if w.active && !w.launching && w.due(now) {
			work = append(work, w)
		}
	}
	// Most urgent first: the order in which rebalances get their slots,
	// and in which moves get workers.
	slices.SortFunc(work, func(a, b *nodeWork) int {
		if c := cmp.Compare(deadlineOrder(a.rec), deadlineOrder(b.rec)); c != 0 {
			return c
		}
		return strings.Compare(a.node, b.node)
	})
	rebalancing := map[string]int{}
	for _, w := range h.nodes {
		if w.active && w.rec != nil && h.books[w.rec.Kind].rebalanceShare && (w.launching || w.rec.Replaced) {
			rebalancing[w.pool]++
		}
	}
	moves := make([]move, len(work))
	for i, w := range work {
		moves[i] = h.plan(w, s, rebalancing)
		w.wake = moves[i].wake
	}
	h.mu.Unlock()

	var wg sync.WaitGroup
	slots := make(chan struct{}, h.opts.Workers)
	for i, w := range work {
		if moves[i].idle() {
			continue
		}
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			h.apply(ctx, w, moves[i], s)
		})
	}
	wg.Wait()
	return h.nextWake(h.opts.Clock.Now())
}

// due reports whether w needs a step in a round at now: its wake has come
// or is near (then a cluster change may be what it waits for). Work waiting
// for a scheduled change's lead, or backing off, sits rounds out.
func (w *nodeWork) due(now time.Time) bool {
	return !w.wake.After(now.Add(pollInterval))
}

func (h *Handler) anyDueLocked(now time.Time) bool {
	for _, w := range h.nodes {
		if w.active && !w.launching && w.due(now) {
			return true
		}
	}
	return false
}

// deadlineOrder sorts records by deadline, those without one last.
func deadlineOrder(r *record) int64 {
	if r == nil || r.Deadline.IsZero() {
		return 1 << 62
	}
	return r.Deadline.UnixNano()
}

// nextWake is the earliest time any work, the resume scan or the
// unavailability tracking needs a round.
func (h *Handler) nextWake(now time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	var next time.Time
	take := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if !h.resumed {
		take(h.retryAt)
	}
	for _, w := range h.nodes {
		if w.active && !w.launching {
			take(w.wake)
		}
	}
	if len(h.away.pending) > 0 {
		take(now.Add(awayPoll))
	}
	return next
}

// pruneLocked forgets finished entries past DedupeTTL, and the oldest ones
// beyond maxFinished. h.mu must be held.
func (h *Handler) pruneLocked(now time.Time) {
	var finished []*nodeWork
	for id, w := range h.nodes {
		if w.active || w.launching {
			continue
		}
		if !now.Before(w.finishedAt.Add(h.opts.DedupeTTL)) {
			delete(h.nodes, id)
			continue
		}
		finished = append(finished, w)
	}
	if extra := len(finished) - maxFinished; extra > 0 {
		slices.SortFunc(finished, func(a, b *nodeWork) int { return a.finishedAt.Compare(b.finishedAt) })
		for _, w := range finished[:extra] {
			delete(h.nodes, w.instanceID)
		}
	}
}

// resume takes up the work recorded on the nodes that no entry here owns:
// an earlier process accepted it. Malformed records are reported and left
// alone.
func (h *Handler) resume(ctx context.Context, s *snapshot) {
	for _, name := range slices.Sorted(maps.Keys(s.nodes)) {
		n := s.nodes[name]
		if _, ok := n.Annotations[AnnotationRecord]; !ok {
			continue
		}
		id := instanceIDFromProviderID(n.Spec.ProviderID)
		rec, err := parseRecord(n)
		if err != nil {
			h.malformed(n, err)
			continue
		}
		if rec == nil || id == "" {
			continue
		}
		w := h.entry(id, n)
		w.recMu.Lock()
		h.mu.Lock()
		own := w.own
		h.mu.Unlock()
		if own {
			w.recMu.Unlock()
			continue
		}
		book, ok := h.books[rec.Kind]
		if !ok || book.drain == drainCordonOnly {
			// A rebalance recorded under another RebalanceMode: follow
			// the current one.
			if ok {
				if err := h.cordon(ctx, rec.Kind, n.Name); err != nil {
					h.log.Error("cordoning", "node", n.Name, "error", err)
				}
			}
			if err := h.writeRecordLocked(ctx, w, nil); err != nil {
				h.log.Error("removing the interruption record", "node", n.Name, "error", err)
			}
			w.recMu.Unlock()
			continue
		}
		h.mu.Lock()
		w.own, w.rec, w.seen[rec.Kind] = true, rec, true
		w.start(s.now)
		h.mu.Unlock()
		w.recMu.Unlock()
		h.count(rec.Kind, ActionResumed)
		h.log.Info("resuming the interruption work recorded on the node", "node", n.Name, "instanceID", id,
			"kind", rec.Kind, "messageID", rec.MessageID, "deadline", rec.Deadline, "replaced", rec.Replaced)
	}
}

// move is one node's next move, as plan decides it and apply does it.
type move struct {
	kind Kind
	// gone: the node is gone; the work ends.
	gone     bool
	markPool bool
	cordon   bool
	// replace are the pods to launch replacement capacity for; lost are
	// the bare pods that get none (warned about once); noneNeeded
	// records that the node has nothing to replace.
	replace    []*corev1.Pod
	lost       []*corev1.Pod
	noneNeeded bool
	// inferred are the replacements of a launch an earlier process began
	// and did not record the result of.
	inferred []string
	deferred bool
	// step is the drain's step to apply (drain set).
	drain *drain.Drain
	step  drain.Step
	// drained, expired: the drain ended (expired with a hard drain is a
	// deadline miss).
	drained, expired bool
	deleteNode       bool
	// remaining are the pods still on the node when it is deleted.
	remaining []*corev1.Pod
	// giveUp names why a rebalance keeps its node (an Action).
	giveUp string
	wake   time.Time
}

func (m move) idle() bool {
	return !m.gone && !m.markPool && !m.cordon && m.replace == nil && m.lost == nil && !m.noneNeeded && m.inferred == nil &&
		!m.deferred && m.drain == nil && !m.deleteNode && m.giveUp == "" && !m.drained && !m.expired
}

// plan decides w's next move from the snapshot: it does no I/O (it keeps
// the drain's bookkeeping). h.mu must be held.
func (h *Handler) plan(w *nodeWork, s *snapshot, rebalancing map[string]int) move {
	now := s.now
	rec := w.rec
	mv := move{kind: rec.Kind, wake: now.Add(pollInterval)}
	if now.Before(w.retryAt) {
		// Backing off after a failed action.
		mv.wake = w.retryAt
		return mv
	}
	node := s.nodes[w.node]
	if node == nil || node.DeletionTimestamp != nil {
		mv.gone = true
		return mv
	}
	book := h.books[rec.Kind]
	pods := s.byNode[w.node]
	mv.markPool = book.markPool && !w.marked
	if at := book.startAt(rec); now.Before(at) {
		mv.wake = at
		return mv
	}
	// Cordoned from the start of the work, or (a rebalance) from the
	// start of its drain; a cordon that failed is tried again.
	mv.cordon = (book.cordonAtOnce || w.drain != nil) && !node.Spec.Unschedulable

	if book.replace && !rec.Replaced {
		switch {
		case !rec.LaunchStarted.IsZero():
			// A launch began and its result was never recorded: the
			// process stopped during it. Launching again would buy the
			// capacity twice; wait for what registered since.
			mv.inferred = []string{}
			for _, n := range s.nodes {
				if n.Name != w.node && !n.CreationTimestamp.Time.Before(rec.LaunchStarted.Truncate(time.Second)) {
					mv.inferred = append(mv.inferred, n.Name)
				}
			}
			slices.Sort(mv.inferred)
		case book.rebalanceShare && rebalancing[w.pool] >= max(1, int(h.opts.RebalanceMaxShare*float64(s.poolSize[w.pool]))):
			mv.deferred = !w.deferred
			w.deferred = true
			mv.wake = now.Add(deferredPoll)
		default:
			for _, p := range pods {
				switch {
				case drain.Replaceable(p):
					mv.replace = append(mv.replace, p)
				case drain.MovesOnDrain(p) && !w.warnedBare:
					mv.lost = append(mv.lost, p)
				}
			}
			w.warnedBare = true
			if mv.replace == nil {
				mv.noneNeeded = true
			} else {
				w.launching = true
				if book.rebalanceShare {
					rebalancing[w.pool]++
				}
			}
			mv.wake = now
		}
		return mv
	}

	switch book.drain {
	case drainNone:
		mv.deleteNode, mv.remaining = true, pods
		return mv
	case drainHard:
		if w.drain == nil || w.drainKind != rec.Kind {
			end := rec.Deadline.Add(-h.opts.DeadlineMargin)
			w.drain = drain.New(now, drain.Options{
				Deadline: end, Force: true, AwaitStart: book.waitReady,
				// At the latest, evictions begin early enough for the
				// longest grace period and budget-paced evictions.
				EvictFrom: end.Add(-drain.LongestGracePeriod(pods) - h.opts.DeadlineMargin),
			})
			w.drainKind = rec.Kind
		}
	case drainSoft:
		if w.drain == nil || w.drainKind != rec.Kind {
			if !drain.ReplacementsReady(rec.Replacements, s.nodes) {
				since := rec.LaunchStarted
				if since.IsZero() {
					since = w.startedAt
				}
				if !now.Before(since.Add(h.opts.ReplacementReadyTimeout)) {
					mv.giveUp = ActionReplacementTimeout
				}
				return mv
			}
			mv.cordon = !node.Spec.Unschedulable
			w.drain = drain.New(now, drain.Options{Deadline: now.Add(h.opts.RebalanceDrainTimeout)})
			w.drainKind = rec.Kind
		}
	}
	if drain.ReplacementsReady(rec.Replacements, s.nodes) {
		w.drain.Start()
	}
	mv.drain = w.drain
	mv.step = w.drain.Next(now, pods)
	switch {
	case mv.step.Done:
		mv.drained, mv.deleteNode = true, true
	case mv.step.Expired && book.drain == drainHard:
		mv.expired, mv.deleteNode, mv.remaining = true, true, pods
	case mv.step.Expired:
		mv.expired, mv.giveUp = true, ActionDrainTimeout
	default:
		mv.wake = mv.step.Wake
	}
	return mv
}

// apply does mv for w, and sets when w next needs a step.
func (h *Handler) apply(ctx context.Context, w *nodeWork, mv move, s *snapshot) {
	now := s.now
	h.mu.Lock()
	rec := *w.rec
	h.mu.Unlock()
	log := h.log.With("messageID", rec.MessageID, "kind", rec.Kind, "node", w.node, "instanceID", w.instanceID)
	wake := mv.wake
	defer func() {
		h.mu.Lock()
		if w.active {
			w.wake = wake
		}
		h.mu.Unlock()
	}()
	if mv.gone {
		log.Info("node gone; interruption work ends")
		h.mu.Lock()
		w.finish(now)
		h.mu.Unlock()
		return
	}
	if mv.markPool {
		if node := s.nodes[w.node]; node != nil {
			h.markPool(ctx, rec.Kind, node)
		}
		h.mu.Lock()
		w.marked = true
		h.mu.Unlock()
	}
	if mv.cordon {
		if err := h.cordon(ctx, rec.Kind, w.node); err != nil {
			log.Error("cordoning", "error", err)
			wake = h.failed(w, now)
			return
		}
	}
	if mv.deferred {
		h.count(rec.Kind, ActionDeferred)
		log.Info("rebalance deferred: too many of the NodePool's nodes are being replaced", "nodePool", w.pool)
	}
	if len(mv.lost) > 0 {
		h.warnLost(ctx, log, rec.Kind, s.nodes[w.node], mv.lost)
	}
	switch {
	case mv.inferred != nil:
		log.Warn("a replacement launch was under way when the last process stopped; waiting for the nodes registered since rather than launching again", "nodes", mv.inferred)
		h.recordReplaced(ctx, log, w, mv.inferred)
		return
	case mv.noneNeeded:
		h.recordReplaced(ctx, log, w, nil)
		return
	case mv.replace != nil:
		h.launch(ctx, log, w, mv.replace)
		wake = h.opts.Clock.Now()
		return
	}
	if mv.drain != nil && (len(mv.step.Evict) > 0 || len(mv.step.Delete) > 0) {
		applied := provisioning.ApplyDrainStep(ctx, h.opts.Cluster, mv.drain, now, mv.step)
		h.mu.Lock()
		for _, r := range append(applied.Evicted, applied.Deleted...) {
			if r.Outcome == drain.Evicted {
				h.away.add(rec.Kind, r.Pod, now)
			}
		}
		h.mu.Unlock()
		for _, r := range applied.Deleted {
			if r.Outcome == drain.Evicted {
				h.count(rec.Kind, ActionForceDelete)
				log.Warn("deleted pod despite its disruption budget: the instance goes before it could be evicted", "pod", provisioning.PodKey(r.Pod), "gracePeriod", drain.GracePeriod(r.Pod))
			}
		}
		for _, err := range applied.Errors() {
			log.Error("draining", "error", err)
		}
		if applied.Moved() > 0 {
			// Evicted pods are often gone at once: look again now.
			wake = now
		}
	}
	if mv.drained || mv.expired {
		h.opts.Metrics.DrainDuration.WithLabelValues(string(rec.Kind)).Observe(now.Sub(mv.drain.Started).Seconds())
	}
	if mv.drained {
		h.count(rec.Kind, ActionDrain)
	}
	if mv.expired && mv.deleteNode {
		h.opts.Metrics.DeadlineMisses.WithLabelValues(string(rec.Kind)).Inc()
		log.Warn("notice deadline reached with pods still on the node", "remaining", len(mv.remaining), "deadline", mv.drain.Deadline())
	}
	if mv.giveUp != "" {
		h.giveUp(ctx, log, w, rec.Kind, mv.giveUp)
		return
	}
	if mv.deleteNode {
		if err := h.deleteNode(ctx, log, w, mv); err != nil {
			log.Error("deleting node; retrying", "error", err)
			wake = h.failed(w, now)
		}
	}
}

// failed backs off w's next step after a failed action.
func (h *Handler) failed(w *nodeWork, now time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	w.retry = min(max(2*w.retry, retryInitial), retryMax)
	w.retryAt = now.Add(w.retry)
	return w.retryAt
}

// warnLost says, in the log and in an event on the node, that the node's
// bare pods will be lost: nothing re-creates them once evicted.
func (h *Handler) warnLost(ctx context.Context, log *slog.Logger, kind Kind, node *corev1.Node, pods []*corev1.Pod) {
	keys := make([]string, len(pods))
	for i, p := range pods {
		keys[i] = provisioning.PodKey(p)
	}
	msg := fmt.Sprintf("%d pod(s) without a controller will be lost when the node goes (no replacement capacity is launched for them): %s", len(pods), strings.Join(keys, ", "))
	log.Warn("pods without a controller will be lost; no replacement capacity is launched for them", "pods", strings.Join(keys, ","))
	h.count(kind, ActionBarePodsLost)
	if rec, ok := h.opts.Cluster.(provisioning.EventRecorder); ok && node != nil {
		rec.Event(ctx, node, corev1.EventTypeWarning, "PodsWillBeLost", msg)
	}
}

// launch records that a replacement launch begins, launches it and records
// its result; a process that stops in between leaves the first mark, so
// its successor does not launch again.
func (h *Handler) launch(ctx context.Context, log *slog.Logger, w *nodeWork, pods []*corev1.Pod) {
	kind := h.kindOf(w)
	if err := h.updateRecord(ctx, w, func(r *record) { r.LaunchStarted = h.opts.Clock.Now() }); err != nil {
		log.Error("recording the replacement launch on the node", "error", err)
	}
	var nodes []*corev1.Node
	var err error
	if h.opts.Replacer != nil {
		nodes, err = h.opts.Replacer.Replace(ctx, pods)
		h.count(kind, ActionReplace)
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	h.mu.Lock()
	w.launching = false
	relaunch := w.relaunch
	w.relaunch = false
	h.mu.Unlock()
	if err != nil {
		log.Error("launching replacement capacity; pods left without it wait for the provisioner", "pods", len(pods), "error", err)
	}
	if err != nil && len(nodes) == 0 && h.books[kind].drain == drainSoft {
		if ctx.Err() == nil {
			h.giveUp(ctx, log, w, kind, ActionReplacementFailed)
		}
		return
	}
	if len(nodes) > 0 {
		log.Info("replacement capacity launched", "pods", len(pods), "nodes", names)
	}
	if relaunch {
		// The notice now followed came during this launch: it gets its
		// own replacement, chosen with its pool marked.
		log.Info("a notice with a deadline came during the launch; launching its own replacement")
		if err := h.updateRecord(context.WithoutCancel(ctx), w, func(r *record) { r.LaunchStarted, r.Replacements = time.Time{}, nil }); err != nil {
			log.Error("recording on the node", "error", err)
		}
		return
	}
	// Recorded even while shutting down, so that a restarted handler does
	// not launch it again; bounded, so that an API server that does not
	// answer cannot hold shutdown forever.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), launchWriteWait)
	defer cancel()
	h.recordReplaced(rctx, log, w, names)
}

func (h *Handler) kindOf(w *nodeWork) Kind {
	h.mu.Lock()
	defer h.mu.Unlock()
	return w.rec.Kind
}

// recordReplaced records that the node's pods have their replacement
// capacity (names, possibly none).
func (h *Handler) recordReplaced(ctx context.Context, log *slog.Logger, w *nodeWork, names []string) {
	if err := h.updateRecord(ctx, w, func(r *record) { r.Replaced, r.Replacements = true, names }); err != nil {
		log.Error("recording the replacement on the node", "error", err)
		// Go on from memory: the drain matters more than the record.
		h.mu.Lock()
		if w.rec != nil {
			r := *w.rec
			r.Replaced, r.Replacements = true, names
			w.rec = &r
		}
		h.mu.Unlock()
	}
}

// giveUp ends a rebalance that keeps its node: cordoned, record removed
// (unless a notice of another kind took the record over meanwhile).
// giveUp ends a rebalance that keeps its node, cordoned, counting why (an
// Action).
func (h *Handler) giveUp(ctx context.Context, log *slog.Logger, w *nodeWork, kind Kind, why string) {
	h.count(kind, why)
	switch why {
	case ActionReplacementTimeout:
		log.Warn("replacement not ready in time; cordoning the at-risk node without draining it", "timeout", h.opts.ReplacementReadyTimeout)
	case ActionReplacementFailed:
		log.Warn("replacement failed; cordoning the at-risk node without draining it")
	default:
		log.Warn("rebalance drain did not finish; leaving the node cordoned")
	}
	if err := h.cordon(ctx, kind, w.node); err != nil {
		log.Error("cordoning", "error", err)
	}
	w.recMu.Lock()
	defer w.recMu.Unlock()
	h.mu.Lock()
	taken := w.rec != nil && w.rec.Kind != kind
	h.mu.Unlock()
	if taken {
		return
	}
	if err := h.writeRecordLocked(ctx, w, nil); err != nil {
		log.Error("removing the interruption record", "error", err)
	}
	h.mu.Lock()
	w.finish(h.opts.Clock.Now())
	h.mu.Unlock()
}

// deleteNode terminates the instance and deletes the node object
// (provisioning.TerminateNode); on failure the caller retries. The pods
// still on it go with it (their controllers re-create them).
func (h *Handler) deleteNode(ctx context.Context, log *slog.Logger, w *nodeWork, mv move) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: w.node}, Spec: corev1.NodeSpec{ProviderID: w.providerID}}
	if err := provisioning.TerminateNode(ctx, h.opts.CloudProvider, h.opts.Cluster, node); err != nil {
		return err
	}
	now := h.opts.Clock.Now()
	h.mu.Lock()
	for _, p := range mv.remaining {
		if drain.Replaceable(p) {
			h.away.add(mv.kind, p, now)
		}
	}
	w.rec = nil
	w.finish(now)
	h.mu.Unlock()
	h.count(mv.kind, ActionDeleteNode)
	log.Info("node removed", "drained", mv.drained, "remaining", len(mv.remaining))
	return nil
}
