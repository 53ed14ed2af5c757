package interruption

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/fleetpack/fleetpack/cloudprovider"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
)

// RebalanceMode says what the handler does with a rebalance recommendation.
type RebalanceMode string

// Rebalance modes.
const (
	// RebalanceReplaceThenDrain (the default) launches replacement capacity
	// for the node's pods, waits until it is Ready, then cordons and drains
	// the at-risk node and removes it.
	RebalanceReplaceThenDrain RebalanceMode = "replace-then-drain"
	// RebalanceCordonOnly cordons the node so nothing new lands on it.
	RebalanceCordonOnly RebalanceMode = "cordon-only"
	// RebalanceOff ignores rebalance recommendations.
	RebalanceOff RebalanceMode = "off"
)

// Replacer launches replacement capacity for pods that are about to lose
// their node. The provisioner implements it.
type Replacer interface {
	// Replace solves pods as if they were pending and their nodes gone,
	// launches the new nodes it needs at once, and returns the nodes (new
	// or existing) the pods were placed on. Pods it could not place are
	// reported in the error; the nodes launched for the others are still
	// returned.
	Replace(ctx context.Context, pods []*corev1.Pod) ([]*corev1.Node, error)
}

// Action names, used in logs and as the "action" label of Metrics.Actions.
const (
	ActionMarkUnavailable    = "mark-unavailable"
	ActionReplace            = "replace"
	ActionCordon             = "cordon"
	ActionDrain              = "drain"
	ActionForceDelete        = "force-delete-pod"
	ActionDeleteNode         = "delete-node"
	ActionDuplicate          = "duplicate"
	ActionIgnored            = "ignored"
	ActionUnknownNode        = "unknown-node"
	ActionReplacementTimeout = "replacement-timeout"
	ActionReplacementFailed  = "replacement-failed"
	ActionDeferred           = "deferred"
	// ActionResumed counts work taken over from a node's record
	// (AnnotationRecord) that no worker of this handler was doing: work
	// an earlier process accepted and did not finish.
	ActionResumed = "resumed"
)

// Defaults for HandlerOptions.
const (
	DefaultWorkers                 = 32
	DefaultRebalanceMaxShare       = 0.2
	DefaultReplacementReadyTimeout = 5 * time.Minute
	DefaultRebalanceDrainTimeout   = 15 * time.Minute
	DefaultDeadlineMargin          = 15 * time.Second
	DefaultDedupeTTL               = time.Hour
	defaultGracePeriod             = 30 * time.Second
)

// HandlerOptions configure a Handler. Cluster is required; the rest have
// defaults or may be nil.
type HandlerOptions struct {
	Cluster provisioning.Cluster
	// CloudProvider terminates the instance behind a drained node. Nil
	// leaves instances to whoever owns them (the node object is still
	// deleted).
	CloudProvider cloudprovider.CloudProvider
	// Replacer launches replacement capacity; nil skips replacement (the
	// evicted pods then wait for the provisioner's next batch).
	Replacer Replacer
	// Unavailable is marked with an interrupted Spot node's offering so
	// the replacement and the next launches avoid that pool.
	Unavailable *offerings.UnavailableOfferings
	// Clock drives deadlines, backoffs and waits (default: real clock).
	Clock clock.WithDelayedExecution
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Metrics (default: unregistered metrics).
	Metrics *Metrics

	// RebalanceMode (default RebalanceReplaceThenDrain).
	RebalanceMode RebalanceMode
	// RebalanceMaxShare bounds the share of a NodePool's nodes replaced for
	// rebalance recommendations at once, rounded down but at least one
	// node (default 0.2).
	RebalanceMaxShare float64
	// ReplacementReadyTimeout is how long a rebalance waits for its
	// replacement nodes to become Ready; past it the node is only
	// cordoned (default 5 min).
	ReplacementReadyTimeout time.Duration
	// RebalanceDrainTimeout bounds a rebalance drain, which has no
	// deadline of its own; a node not drained by then stays cordoned and
	// is not deleted (default 15 min).
	RebalanceDrainTimeout time.Duration
	// DeadlineMargin is how long before a notice's deadline the node is
	// deleted, so that the drain is over before the instance goes
	// (default 15 s).
	DeadlineMargin time.Duration
	// Workers bounds how many actions run at once (default 32).
	Workers int
	// DedupeTTL is how long a handled (instance, kind) is remembered, so
	// redelivered notices act once (default 1 h).
	DedupeTTL time.Duration
}

// Handler acts on interruption notices: it is the Sink every Source feeds.
// Handle decides and does the quick, urgent part at once (recording the notice
// on the node, marking a Spot pool unavailable, cordoning) and queues the
// rest (replacement, drain, node deletion), which Run's bounded pool of
// workers carries out. The record (AnnotationRecord) is what lets the work
// survive a restart: Run queues again the work recorded on nodes, with the
// recorded deadline. The same notice twice (same instance and kind) acts
// once, in one process or across a restart. Run one handler per cluster.
type Handler struct {
	opts HandlerOptions
	log  *slog.Logger

	mu    sync.Mutex
	seen  map[noticeKey]time.Time // -> expiry of the dedupe entry
	queue []*action
	// wake has a value when queue may be non-empty.
	wake chan struct{}
	// busy counts queued, parked and running actions; idle is closed and
	// replaced as it reaches zero.
	busy int
	idle chan struct{}
	// rebalancing counts running rebalance replacements per NodePool;
	// parked holds those waiting for a slot.
	rebalancing map[string]int
	parked      []*action
	// replaced records nodes whose pods already got replacement capacity,
	// so a Spot warning after a rebalance does not launch twice.
	replaced map[string]bool
	running  int
	peak     int
	blocked  int
	// nodeIndex maps instance ids to node names, from the last listing.
	nodeIndex map[string]string
	// records holds the handler's copy of each node's record.
	records map[string]*nodeRecord
	// claimed holds the (node, kind) of every queued, parked or running
	// action, so that work recorded on a node is queued once whether a
	// redelivered notice or Run's scan finds it first.
	claimed map[claimKey]bool
	// taken holds every (node, kind) this handler has queued work for
	// (see claim).
	taken map[claimKey]bool
}

type claimKey struct {
	node string
	kind Kind
}

type noticeKey struct {
	instanceID string
	kind       Kind
}

// action is the queued work for one node.
type action struct {
	// msg is the notice the work follows, as recorded: ID, Kind,
	// InstanceIDs and Deadline.
	msg        Message
	rec        record
	instanceID string
	node       string
	providerID string
	nodePool   string
}

// newAction returns the work rec asks for on node.
func newAction(rec record, instanceID string, node *corev1.Node) *action {
	return &action{
		msg:        Message{ID: rec.MessageID, Kind: rec.Kind, InstanceIDs: []string{instanceID}, Deadline: rec.Deadline},
		rec:        rec,
		instanceID: instanceID, node: node.Name, providerID: node.Spec.ProviderID, nodePool: node.Labels[offerings.LabelNodePool],
	}
}

// NewHandler validates opts and returns a handler. Call Run to start its
// workers.
func NewHandler(opts HandlerOptions) (*Handler, error) {
	if opts.Cluster == nil {
		return nil, errors.New("interruption: handler: Cluster is required")
	}
	switch opts.RebalanceMode {
	case "":
		opts.RebalanceMode = RebalanceReplaceThenDrain
	case RebalanceReplaceThenDrain, RebalanceCordonOnly, RebalanceOff:
	default:
		return nil, fmt.Errorf("interruption: handler: RebalanceMode: %q is not %s, %s or %s", opts.RebalanceMode, RebalanceReplaceThenDrain, RebalanceCordonOnly, RebalanceOff)
	}
	if opts.RebalanceMaxShare < 0 || opts.RebalanceMaxShare > 1 {
		return nil, fmt.Errorf("interruption: handler: RebalanceMaxShare: %v is not between 0 and 1", opts.RebalanceMaxShare)
	}
	for name, d := range map[string]time.Duration{
		"ReplacementReadyTimeout": opts.ReplacementReadyTimeout, "RebalanceDrainTimeout": opts.RebalanceDrainTimeout,
		"DeadlineMargin": opts.DeadlineMargin, "DedupeTTL": opts.DedupeTTL,
	} {
		if d < 0 {
			return nil, fmt.Errorf("interruption: handler: %s: %s is negative", name, d)
		}
	}
	if opts.Workers < 0 {
		return nil, fmt.Errorf("interruption: handler: Workers: %d is negative", opts.Workers)
	}
	if opts.RebalanceMaxShare == 0 {
		opts.RebalanceMaxShare = DefaultRebalanceMaxShare
	}
	if opts.ReplacementReadyTimeout == 0 {
		opts.ReplacementReadyTimeout = DefaultReplacementReadyTimeout
	}
	if opts.RebalanceDrainTimeout == 0 {
		opts.RebalanceDrainTimeout = DefaultRebalanceDrainTimeout
	}
	if opts.DeadlineMargin == 0 {
		opts.DeadlineMargin = DefaultDeadlineMargin
	}
	if opts.DedupeTTL == 0 {
		opts.DedupeTTL = DefaultDedupeTTL
	}
	if opts.Workers == 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return nil, err
		}
		opts.Metrics = m
	}
	idle := make(chan struct{})
	close(idle)
	return &Handler{
		opts: opts, log: opts.Logger,
		seen: map[noticeKey]time.Time{}, wake: make(chan struct{}, 1), idle: idle,
		rebalancing: map[string]int{}, replaced: map[string]bool{},
		records: map[string]*nodeRecord{}, claimed: map[claimKey]bool{}, taken: map[claimKey]bool{},
	}, nil
}

// instanceIDFromProviderID returns the instance id of an AWS provider id
// (aws:///us-east-1a/i-0123...), or "".
func instanceIDFromProviderID(providerID string) string {
	if !strings.HasPrefix(providerID, "aws://") {
		return ""
	}
	id := providerID[strings.LastIndex(providerID, "/")+1:]
	if !ValidInstanceID(id) {
		return ""
	}
	return id
}

// Handle implements Sink. It records the notice on the node (AnnotationRecord)
// before it returns, so once a source deletes the notice the node carries
// it. It returns an error only when the cluster could not be read, the
// notice could not be recorded or the urgent part failed, so that the notice
// is delivered again. A notice the node's record already holds is a
// duplicate, unless no worker here is doing that work (an earlier process
// accepted it): then Handle takes the work up, as Run would.
func (h *Handler) Handle(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	kind := string(m.Kind)
	h.opts.Metrics.MessagesReceived.WithLabelValues(kind).Inc()
	log := h.log.With("messageID", m.ID, "kind", m.Kind)

	if m.Kind == KindStateChange && !m.Terminal() {
		h.count(m.Kind, ActionIgnored)
		return nil
	}
	if m.Kind == KindRebalanceRecommendation && h.opts.RebalanceMode == RebalanceOff {
		h.count(m.Kind, ActionIgnored)
		return nil
	}

	var todo []string
	for _, id := range m.InstanceIDs {
		if h.isDuplicate(noticeKey{id, m.Kind}) {
			log.Debug("duplicate notice", "instanceID", id)
			h.count(m.Kind, ActionDuplicate)
			continue
		}
		todo = append(todo, id)
	}
	if len(todo) == 0 {
		return nil
	}

	var errs []error
	for _, id := range todo {
		key := noticeKey{id, m.Kind}
		node, err := h.nodeFor(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("interruption: finding the node of %s for notice %s: %w", id, m.ID, err))
			continue
		}
		if node == nil {
			// Not a node of this cluster (or already gone): nothing to
			// do, and nothing to do if it comes again.
			if !h.remember(key) {
				// A concurrent delivery of the same notice handled the
				// node, which is gone by now: this one is a duplicate.
				h.count(m.Kind, ActionDuplicate)
				continue
			}
			log.Info("notice for an instance with no node", "instanceID", id)
			h.count(m.Kind, ActionUnknownNode)
			continue
		}
		cordonOnly := m.Kind == KindRebalanceRecommendation && h.opts.RebalanceMode == RebalanceCordonOnly
		rec, added, recErr := h.noteNotice(ctx, node, m, !cordonOnly)
		if rec == nil {
			// A cordon-only rebalance: nothing to queue or record.
			if err := h.urgent(ctx, m, node); err != nil {
				errs = append(errs, err)
			} else if !h.remember(key) {
				h.count(m.Kind, ActionDuplicate)
			}
			continue
		}
		if !added {
			// The node's record already holds this notice (or a more
			// urgent one). If no worker here is doing that work, an
			// earlier process accepted it: take it over.
			queued, err := h.adopt(ctx, rec, id, node)
			if err != nil {
				errs = append(errs, err)
			}
			h.remember(key)
			if !queued {
				log.Debug("notice already recorded on the node", "instanceID", id, "node", node.Name)
				h.count(m.Kind, ActionDuplicate)
			}
			continue
		}
		if err := h.urgent(ctx, m, node); err != nil {
			errs = append(errs, err)
			continue
		}
		if recErr != nil {
			// The work goes ahead, but the notice must come again
			// until it is recorded; its redelivery acts once.
			errs = append(errs, recErr)
		} else if !h.remember(key) {
			// A concurrent delivery of the same notice got here first.
			h.count(m.Kind, ActionDuplicate)
			continue
		}
		a := newAction(*rec, id, node)
		if !h.claim(a, false) {
			h.count(m.Kind, ActionDuplicate)
			continue
		}
		h.enqueue(a)
	}
	return errors.Join(errs...)
}

// adopt queues the work rec records on node unless a worker here already
// has it, redoing its urgent part first, and reports whether it queued it.
// An error in the urgent part is returned, but the work is queued anyway:
// the drain matters more than the cordon. Work this handler took on itself
// is never adopted: a notice or a resume scan that read the node before
// that work finished would otherwise do it twice.
func (h *Handler) adopt(ctx context.Context, rec *record, instanceID string, node *corev1.Node) (bool, error) {
	a := newAction(*rec, instanceID, node)
	if rec.Kind == KindRebalanceRecommendation && h.opts.RebalanceMode != RebalanceReplaceThenDrain {
		// Recorded under another RebalanceMode: follow the current one.
		var err error
		if h.opts.RebalanceMode == RebalanceCordonOnly {
			err = h.cordon(ctx, a.msg, a.node)
		}
		return false, errors.Join(err, h.clearRecord(ctx, a))
	}
	if !h.claim(a, true) {
		return false, nil
	}
	if rec.Replaced {
		h.mu.Lock()
		h.replaced[a.node] = true
		h.mu.Unlock()
	}
	err := h.urgent(ctx, a.msg, node)
	h.remember(noticeKey{instanceID, rec.Kind})
	h.count(rec.Kind, ActionResumed)
	h.log.Info("resuming the interruption work recorded on the node", "node", a.node, "instanceID", instanceID,
		"kind", rec.Kind, "messageID", rec.MessageID, "deadline", rec.Deadline, "replaced", rec.Replaced)
	h.enqueue(a)
	return true, err
}

// resume queues the work recorded on the cluster's nodes, as an earlier
// handler left it. Malformed records are reported and left alone. Listing
// the nodes is retried until it succeeds or ctx is done.
func (h *Handler) resume(ctx context.Context) {
	backoff := time.Second
	for {
		nodes, err := h.opts.Cluster.ListNodes(ctx)
		if err == nil {
			for _, n := range nodes {
				if _, ok := n.Annotations[AnnotationRecord]; !ok {
					continue
				}
				e := h.recordEntry(n.Name)
				e.mu.Lock()
				var rec *record
				if !e.written {
					// Not this handler's own record: an earlier process
					// accepted the notice.
					rec = h.loadRecordLocked(e, n)
				}
				e.mu.Unlock()
				if rec == nil {
					continue
				}
				if _, err := h.adopt(ctx, rec, instanceIDFromProviderID(n.Spec.ProviderID), n); err != nil {
					h.log.Error("resuming interruption work", "node", n.Name, "error", err)
				}
			}
			return
		}
		h.log.Error("listing nodes to resume interruption work; retrying", "error", err, "retryIn", backoff)
		select {
		case <-ctx.Done():
			return
		case <-h.opts.Clock.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// claim marks a's (node, kind) as taken and reports whether it was free.
// With fresh set it must also never have been taken by this handler (see
// adopt).
func (h *Handler) claim(a *action, fresh bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := claimKey{a.node, a.msg.Kind}
	if h.claimed[k] || (fresh && h.taken[k]) {
		return false
	}
	h.claimed[k], h.taken[k] = true, true
	return true
}

func (h *Handler) release(a *action) {
	h.mu.Lock()
	delete(h.claimed, claimKey{a.node, a.msg.Kind})
	h.mu.Unlock()
}

// nodeFor returns the node whose spec.providerID names instanceID, or nil.
// It looks in the index built by the last node listing and lists again only
// on a miss, so a storm of notices costs one listing, not one per notice; a
// hit is confirmed with GetNode, so a stale index is never acted on.
func (h *Handler) nodeFor(ctx context.Context, instanceID string) (*corev1.Node, error) {
	h.mu.Lock()
	name, ok := h.nodeIndex[instanceID]
	h.mu.Unlock()
	if ok {
		n, err := h.opts.Cluster.GetNode(ctx, name)
		if err == nil && instanceIDFromProviderID(n.Spec.ProviderID) == instanceID {
			return n, nil
		}
		if err != nil && !provisioning.IsNotFound(err) {
			return nil, err
		}
	}
	nodes, err := h.opts.Cluster.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	index := make(map[string]string, len(nodes))
	var found *corev1.Node
	for _, n := range nodes {
		if id := instanceIDFromProviderID(n.Spec.ProviderID); id != "" {
			index[id] = n.Name
			if id == instanceID {
				found = n
			}
		}
	}
	h.mu.Lock()
	h.nodeIndex = index
	h.mu.Unlock()
	return found, nil
}

// urgent does what must not wait for a worker for notice m: take an
// interrupted Spot pool out of consideration and stop new pods landing on a
// doomed node.
func (h *Handler) urgent(ctx context.Context, m Message, node *corev1.Node) error {
	switch m.Kind {
	case KindSpotInterruption, KindCapacityReservationInterruption:
		if h.opts.Unavailable != nil {
			ct, it, zone := node.Labels[offerings.LabelCapacityType], node.Labels[offerings.LabelInstanceType], node.Labels[offerings.LabelZone]
			if ct == "" {
				ct = offerings.CapacityTypeSpot
				if m.Kind == KindCapacityReservationInterruption {
					ct = "reserved"
				}
			}
			if it != "" && zone != "" {
				h.opts.Unavailable.MarkUnavailable(ctx, string(m.Kind), ct, it, zone)
				h.count(m.Kind, ActionMarkUnavailable)
			}
		}
		return h.cordon(ctx, m, node.Name)
	case KindScheduledChange, KindStateChange:
		return h.cordon(ctx, m, node.Name)
	case KindRebalanceRecommendation:
		if h.opts.RebalanceMode == RebalanceCordonOnly {
			return h.cordon(ctx, m, node.Name)
		}
	}
	return nil
}

func (h *Handler) cordon(ctx context.Context, m Message, node string) error {
	if err := h.opts.Cluster.Cordon(ctx, node); err != nil && !provisioning.IsNotFound(err) {
		return fmt.Errorf("interruption: cordoning node %s for notice %s: %w", node, m.ID, err)
	}
	h.count(m.Kind, ActionCordon)
	return nil
}

func (h *Handler) count(kind Kind, action string) {
	h.opts.Metrics.Actions.WithLabelValues(string(kind), action).Inc()
}

// isDuplicate reports whether key was handled within the dedupe TTL.
func (h *Handler) isDuplicate(key noticeKey) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	exp, ok := h.seen[key]
	return ok && h.opts.Clock.Now().Before(exp)
}

// remember records key as handled and reports whether it was new. Expired
// entries are swept on the way, so the map stays the size of an hour's
// notices.
func (h *Handler) remember(key noticeKey) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.opts.Clock.Now()
	if exp, ok := h.seen[key]; ok && now.Before(exp) {
		return false
	}
	if len(h.seen) > 1024 {
		for k, exp := range h.seen {
			if !now.Before(exp) {
				delete(h.seen, k)
			}
		}
	}
	h.seen[key] = now.Add(h.opts.DedupeTTL)
	return true
}

func (h *Handler) enqueue(a *action) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy == 0 {
		h.idle = make(chan struct{})
	}
	h.busy++
	h.queue = append(h.queue, a)
	h.signalLocked()
}

func (h *Handler) signalLocked() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// done marks one action finished.
func (h *Handler) done() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.busy--
	if h.busy == 0 {
		close(h.idle)
	}
}

// waiting counts actions blocked until the clock or the cluster moves.
func (h *Handler) waiting(delta int) {
	h.mu.Lock()
	h.blocked += delta
	h.mu.Unlock()
}

// quiescent reports whether every running action is blocked waiting and no
// queued action could start: nothing happens until the clock or the cluster
// moves. Tests on a fake clock step it only then.
func (h *Handler) quiescent() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.blocked == h.running && (len(h.queue) == 0 || h.running >= h.opts.Workers)
}

// Idle returns a channel that is closed when no action is queued, parked or
// running. Tests and simulators use it to know the handler has caught up.
func (h *Handler) Idle() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.idle
}

// PeakConcurrency is the most actions that ran at once so far.
func (h *Handler) PeakConcurrency() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak
}

// Run carries out queued actions with at most Workers at once until ctx is
// done. It starts by queueing the work recorded on the cluster's nodes
// (AnnotationRecord) that an earlier handler accepted and did not finish,
// with the recorded deadlines; a node whose record cannot be read is
// reported (log and Metrics.MalformedRecords) and left alone. Actions still
// queued or running when ctx is done stop where they are; their records
// stay on the nodes for the next handler's Run.
func (h *Handler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { h.resume(ctx) })
	for range h.opts.Workers {
		wg.Go(func() {
			for {
				a := h.next(ctx)
				if a == nil {
					return
				}
				h.execute(ctx, a)
			}
		})
	}
	wg.Wait()
	return nil
}

// next blocks for the next action, or returns nil when ctx is done.
func (h *Handler) next(ctx context.Context) *action {
	for {
		h.mu.Lock()
		if len(h.queue) > 0 {
			a := h.queue[0]
			h.queue = h.queue[1:]
			h.running++
			h.peak = max(h.peak, h.running)
			if len(h.queue) > 0 {
				h.signalLocked()
			}
			h.mu.Unlock()
			return a
		}
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-h.wake:
		}
	}
}

func (h *Handler) execute(ctx context.Context, a *action) {
	log := h.log.With("messageID", a.msg.ID, "kind", a.msg.Kind, "node", a.node, "instanceID", a.instanceID)
	parked := false
	defer func() {
		h.mu.Lock()
		h.running--
		h.mu.Unlock()
		if !parked {
			h.release(a)
			h.done()
		}
	}()
	switch a.msg.Kind {
	case KindSpotInterruption, KindCapacityReservationInterruption, KindScheduledChange:
		// The node goes whatever happens: a failed replacement is logged
		// and the evicted pods wait for the provisioner's next pass.
		_, _ = h.replaceOnce(ctx, log, a)
		deadline := a.msg.Deadline.Add(-h.opts.DeadlineMargin)
		if a.msg.Deadline.IsZero() {
			deadline = h.opts.Clock.Now()
		}
		res := h.drain(ctx, log, a, deadline, true)
		if ctx.Err() == nil {
			h.deleteNode(ctx, log, a, res)
		}
	case KindStateChange:
		// The instance is stopping or gone: its pods cannot be drained
		// gracefully, only replaced.
		_, _ = h.replaceOnce(ctx, log, a)
		if ctx.Err() == nil {
			h.deleteNode(ctx, log, a, drainResult{drained: true})
		}
	case KindRebalanceRecommendation:
		if !h.acquireRebalanceSlot(ctx, a) {
			parked = true
			h.count(a.msg.Kind, ActionDeferred)
			log.Info("rebalance deferred: too many of the NodePool's nodes are being replaced", "nodePool", a.nodePool)
			return
		}
		defer h.releaseRebalanceSlot(a)
		h.rebalance(ctx, log, a)
	}
}

// recordWriteTimeout bounds the record write that outlives a cancelled run.
const recordWriteTimeout = 30 * time.Second

// replaceOnce launches replacement capacity for the node's pods unless that
// was done already for this node, and records it on the node. It returns
// the nodes the pods were placed on (for work resumed from a record, the
// recorded ones) and an error if some pods could not be placed.
func (h *Handler) replaceOnce(ctx context.Context, log *slog.Logger, a *action) ([]*corev1.Node, error) {
	if h.opts.Replacer == nil {
		return nil, nil
	}
	h.mu.Lock()
	done := h.replaced[a.node]
	h.replaced[a.node] = true
	h.mu.Unlock()
	if done {
		var recorded []*corev1.Node
		for _, name := range a.rec.Replacements {
			recorded = append(recorded, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})
		}
		return recorded, nil
	}
	pods, err := h.evictablePods(ctx, a.node)
	if err != nil {
		log.Error("listing pods for replacement", "error", err)
		return nil, err
	}
	if len(pods) == 0 {
		return nil, nil
	}
	nodes, err := h.opts.Replacer.Replace(ctx, pods)
	h.count(a.msg.Kind, ActionReplace)
	if err != nil {
		log.Error("launching replacement capacity; pods left without it wait for the provisioner", "pods", len(pods), "error", err)
		if len(nodes) == 0 {
			// Nothing launched: a later notice for the node may try again.
			h.mu.Lock()
			delete(h.replaced, a.node)
			h.mu.Unlock()
		}
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	log.Info("replacement capacity launched", "pods", len(pods), "nodes", names)
	if len(nodes) > 0 || err == nil {
		// Recorded even while shutting down, so that a restarted handler
		// does not launch it again; bounded, so that an API server that
		// does not answer cannot hold shutdown forever.
		recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordWriteTimeout)
		rerr := h.updateRecord(recordCtx, a, func(r *record) {
			r.Replaced, r.Replacements = true, names
		})
		cancel()
		if rerr != nil {
			log.Error("recording the replacement on the node", "error", rerr)
		}
	}
	return nodes, err
}

// acquireRebalanceSlot takes one of the NodePool's rebalance slots, or parks
// a to be queued again when a slot frees, and reports whether it got one.
func (h *Handler) acquireRebalanceSlot(ctx context.Context, a *action) bool {
	nodes, err := h.opts.Cluster.ListNodes(ctx)
	total := 0
	if err == nil {
		for _, n := range nodes {
			if n.Labels[offerings.LabelNodePool] == a.nodePool {
				total++
			}
		}
	}
	limit := max(1, int(h.opts.RebalanceMaxShare*float64(total)))
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rebalancing[a.nodePool] >= limit {
		h.parked = append(h.parked, a)
		return false
	}
	h.rebalancing[a.nodePool]++
	return true
}

// releaseRebalanceSlot frees a's slot and queues the NodePool's parked
// rebalances again (they re-check the limit).
func (h *Handler) releaseRebalanceSlot(a *action) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rebalancing[a.nodePool]--
	kept := h.parked[:0]
	for _, p := range h.parked {
		if p.nodePool == a.nodePool {
			h.queue = append(h.queue, p)
		} else {
			kept = append(kept, p)
		}
	}
	h.parked = kept
	h.signalLocked()
}

// rebalance replaces, waits for the replacement to be Ready, then cordons,
// drains and removes the at-risk node.
func (h *Handler) rebalance(ctx context.Context, log *slog.Logger, a *action) {
	replacements, err := h.replaceOnce(ctx, log, a)
	if err != nil {
		// Draining now would leave pods pending on a node that is only
		// at risk: keep them where they are, and keep new ones off.
		log.Warn("replacement failed; cordoning the at-risk node without draining it", "error", err)
		h.count(a.msg.Kind, ActionReplacementFailed)
		_ = h.cordon(ctx, a.msg, a.node)
		h.giveUp(ctx, log, a)
		return
	}
	if !h.waitReady(ctx, replacements) {
		if ctx.Err() != nil {
			return
		}
		log.Warn("replacement not ready in time; cordoning the at-risk node without draining it", "timeout", h.opts.ReplacementReadyTimeout)
		h.count(a.msg.Kind, ActionReplacementTimeout)
		_ = h.cordon(ctx, a.msg, a.node)
		h.giveUp(ctx, log, a)
		return
	}
	if err := h.cordon(ctx, a.msg, a.node); err != nil {
		log.Error("cordoning", "error", err)
		return
	}
	res := h.drain(ctx, log, a, h.opts.Clock.Now().Add(h.opts.RebalanceDrainTimeout), false)
	if ctx.Err() != nil {
		return
	}
	if !res.drained {
		log.Warn("rebalance drain did not finish; leaving the node cordoned", "remaining", res.remaining)
		h.giveUp(ctx, log, a)
		return
	}
	h.deleteNode(ctx, log, a, res)
}

// giveUp removes the record of a rebalance that keeps its node, so that a
// restarted handler does not take it up again.
func (h *Handler) giveUp(ctx context.Context, log *slog.Logger, a *action) {
	if err := h.clearRecord(ctx, a); err != nil {
		log.Error("removing the interruption record", "error", err)
	}
}

// waitReady waits until every node is Ready (or gone, then it does not
// count), up to ReplacementReadyTimeout. It re-checks on cluster changes
// and on a one-second tick of the clock.
func (h *Handler) waitReady(ctx context.Context, nodes []*corev1.Node) bool {
	if len(nodes) == 0 {
		return true
	}
	timeout := h.opts.Clock.NewTimer(h.opts.ReplacementReadyTimeout)
	defer timeout.Stop()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes := h.opts.Cluster.Changes(wctx)
	for {
		ready := true
		for _, n := range nodes {
			cur, err := h.opts.Cluster.GetNode(ctx, n.Name)
			if err != nil {
				if provisioning.IsNotFound(err) {
					continue
				}
				ready = false
				break
			}
			if !provisioning.IsNodeReady(cur) {
				ready = false
				break
			}
		}
		if ready {
			return true
		}
		tick := h.opts.Clock.After(time.Second)
		h.waiting(+1)
		timedOut := false
		select {
		case <-ctx.Done():
		case <-timeout.C():
			timedOut = true
		case <-changes:
		case <-tick:
		}
		h.waiting(-1)
		if timedOut || ctx.Err() != nil {
			return false
		}
	}
}

// deleteNode terminates the instance and deletes the node object.
func (h *Handler) deleteNode(ctx context.Context, log *slog.Logger, a *action, res drainResult) {
	if h.opts.CloudProvider != nil && a.providerID != "" {
		if err := h.opts.CloudProvider.Delete(ctx, a.providerID); err != nil && !cloudprovider.IsNotFound(err) {
			log.Error("terminating instance", "providerID", a.providerID, "error", err)
		}
	}
	if err := h.opts.Cluster.DeleteNode(ctx, a.node); err != nil && !provisioning.IsNotFound(err) {
		log.Error("deleting node", "error", err)
		return
	}
	h.mu.Lock()
	delete(h.replaced, a.node)
	h.mu.Unlock()
	h.forgetRecord(a.node)
	h.count(a.msg.Kind, ActionDeleteNode)
	log.Info("node removed", "drained", res.drained, "remaining", res.remaining)
}
