package interruption

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"

	"github.com/fleetpack/fleetpack/cloudprovider"
	"github.com/fleetpack/fleetpack/cloudprovider/aws"
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
	// ActionDrainTimeout counts rebalance drains that did not finish
	// within RebalanceDrainTimeout: the node is kept, cordoned.
	ActionDrainTimeout = "drain-timeout"
	ActionDeferred     = "deferred"
	// ActionBarePodsLost counts nodes whose pods include some without a
	// controller: no replacement capacity is launched for them, and the
	// drain deletes them for good.
	ActionBarePodsLost = "bare-pods-lost"
	// ActionResumed counts work taken over from a node's record
	// (AnnotationRecord) that no work of this handler followed: work
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
	DefaultScheduledChangeLead     = 10 * time.Minute
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
	// Workers bounds how many nodes are acted on at once (default 32).
	Workers int
	// ScheduledChangeLead is how long before an AWS Health scheduled
	// change starts the handler cordons the node and launches its
	// replacement; the drain then ends just before the start (default
	// 10 min). Until then the node keeps serving.
	ScheduledChangeLead time.Duration
	// DedupeTTL is how long a handled (instance, kind) is remembered, so
	// redelivered notices act once (default 1 h).
	DedupeTTL time.Duration
}

// Handler acts on interruption notices: it is the Sink every Source feeds.
// Handle decides (decide, from the notice kind's playbook) and does the
// quick, urgent part at once: it records the notice on the node, marks an
// interrupted Spot pool unavailable and cordons. The rest (replacement,
// wait for Ready, drain, node deletion) is stepped by Run, or by a caller of
// Step: each round of a step lists the cluster once, plans every node's
// next move (plan, which does no I/O) and applies the moves with at most Workers nodes at once; no
// worker sleeps. The record (AnnotationRecord) is what lets the work survive
// a restart. The same notice twice (same instance and kind) acts once, in
// one process or across a restart. Run one handler per cluster.
type Handler struct {
	opts  HandlerOptions
	log   *slog.Logger
	books map[Kind]playbook

	// stepMu makes steps take turns.
	stepMu sync.Mutex
	// notify has a value when a notice added work since the last step.
	notify chan struct{}

	mu sync.Mutex
	// nodes is the handler's one memory of the nodes it has, or had, work
	// for, by instance id. Finished entries are kept for DedupeTTL (and at
	// most maxFinished of them), so redelivered notices act once.
	nodes map[string]*nodeWork
	// nodeIndex maps instance ids to node names, from the last listing.
	nodeIndex map[string]string
	// resumed is set once a step has scanned the nodes for records an
	// earlier process left; retryAt is when to try again after a failed
	// listing, and backoff the wait after the next failure.
	resumed bool
	retryAt time.Time
	backoff time.Duration
	// away tracks evicted pods until their controllers' replacements run.
	away unavailability
}

// maxFinished bounds the finished entries the handler keeps for dedupe.
const maxFinished = 4096

// NewHandler validates opts and returns a handler. Call Run (or Step) to
// carry out the work its notices add.
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
		"DeadlineMargin": opts.DeadlineMargin, "DedupeTTL": opts.DedupeTTL, "ScheduledChangeLead": opts.ScheduledChangeLead,
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
	if opts.ScheduledChangeLead == 0 {
		opts.ScheduledChangeLead = DefaultScheduledChangeLead
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
	return &Handler{
		opts: opts, log: opts.Logger, books: playbooks(opts),
		notify: make(chan struct{}, 1), nodes: map[string]*nodeWork{},
	}, nil
}

// instanceIDFromProviderID returns the instance id of an AWS provider id
// (aws:///us-east-1a/i-0123...), or "" for any other node: the provider's
// own parser, held to the stricter id form notices carry.
func instanceIDFromProviderID(providerID string) string {
	id, err := aws.ParseProviderID(providerID)
	if err != nil || !ValidInstanceID(id) {
		return ""
	}
	return id
}

// Handle implements Sink. It records the notice on the node (AnnotationRecord)
// before it returns, so once a source deletes the notice the node carries
// it. It returns an error only when the cluster could not be read, the
// notice could not be recorded or the urgent part failed, so that the notice
// is delivered again. A notice the node's record already holds is a
// duplicate, unless no work here follows that record (an earlier process
// accepted it): then Handle takes the work up, as Run would.
func (h *Handler) Handle(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h.opts.Metrics.MessagesReceived.WithLabelValues(string(m.Kind)).Inc()
	log := h.log.With("messageID", m.ID, "kind", m.Kind)
	if _, ok := h.books[m.Kind]; !ok || (m.Kind == KindStateChange && !m.Terminal()) {
		h.count(m.Kind, ActionIgnored)
		return nil
	}
	var errs []error
	for _, id := range m.InstanceIDs {
		if err := h.handleInstance(ctx, log, m, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (h *Handler) handleInstance(ctx context.Context, log *slog.Logger, m Message, id string) error {
	node, err := h.nodeFor(ctx, id)
	if err != nil {
		return fmt.Errorf("interruption: finding the node of %s for notice %s: %w", id, m.ID, err)
	}
	now := h.opts.Clock.Now()
	var w *nodeWork
	if node != nil {
		w = h.entry(id, node)
		// Decisions about one node take turns, so that two deliveries
		// of one notice cannot both act.
		w.recMu.Lock()
		defer w.recMu.Unlock()
	}
	h.mu.Lock()
	if w == nil {
		w = h.nodes[id]
	}
	var rec *record
	mem := memory{}
	if w != nil {
		mem = memory{own: w.own, seen: maps.Clone(w.seen), launching: w.launching}
		rec = w.rec
	}
	h.mu.Unlock()
	if node != nil && !mem.own {
		parsed, err := parseRecord(node)
		if err != nil {
			h.malformed(node, err)
		}
		rec = parsed
	}
	d := decide(h.books, m, node, rec, mem, now)
	switch d.outcome {
	case ActionUnknownNode:
		log.Info("notice for an instance with no node", "instanceID", id)
		h.count(m.Kind, d.outcome)
		return nil
	case ActionDuplicate, ActionIgnored:
		log.Debug("notice already acted on", "instanceID", id)
		h.count(m.Kind, d.outcome)
		return nil
	}
	var errs []error
	if d.write != nil {
		if err := h.writeRecordLocked(ctx, w, d.write); err != nil {
			// The work goes ahead, but the notice must come again until
			// it is recorded; its redelivery acts once.
			errs = append(errs, err)
		}
	}
	if d.markPool {
		h.markPool(ctx, m.Kind, node)
	}
	if d.cordon {
		if err := h.cordon(ctx, m.Kind, node.Name); err != nil {
			errs = append(errs, fmt.Errorf("interruption: cordoning node %s for notice %s: %w", node.Name, m.ID, err))
		}
	}
	h.mu.Lock()
	w.seen[m.Kind] = true
	w.own = w.own || d.write != nil || d.adopt
	w.marked = w.marked || d.markPool
	if d.relaunch {
		w.relaunch = true
	}
	if d.work != nil {
		w.rec = d.work
		w.start(now)
	}
	h.mu.Unlock()
	if d.adopt {
		h.count(d.work.Kind, ActionResumed)
		log.Info("resuming the interruption work recorded on the node", "node", node.Name, "instanceID", id,
			"recordedKind", d.work.Kind, "recordedMessageID", d.work.MessageID, "deadline", d.work.Deadline, "replaced", d.work.Replaced)
	}
	if d.work != nil {
		h.wakeUp()
	}
	return errors.Join(errs...)
}

// entry returns the handler's entry for instance id on node, creating it.
// An entry's instance, node, provider id and pool never change.
func (h *Handler) entry(id string, node *corev1.Node) *nodeWork {
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := h.nodes[id]
	if !ok || w.node != node.Name {
		// Forgotten DedupeTTL from now unless work starts on it.
		w = &nodeWork{instanceID: id, seen: map[Kind]bool{}, finishedAt: h.opts.Clock.Now(),
			node: node.Name, providerID: node.Spec.ProviderID, pool: node.Labels[offerings.LabelNodePool]}
		h.nodes[id] = w
	}
	return w
}

func (h *Handler) wakeUp() {
	select {
	case h.notify <- struct{}{}:
	default:
	}
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
	h.indexNodes(nodes)
	for _, n := range nodes {
		if instanceIDFromProviderID(n.Spec.ProviderID) == instanceID {
			return n, nil
		}
	}
	return nil, nil
}

func (h *Handler) indexNodes(nodes []*corev1.Node) {
	index := make(map[string]string, len(nodes))
	for _, n := range nodes {
		if id := instanceIDFromProviderID(n.Spec.ProviderID); id != "" {
			index[id] = n.Name
		}
	}
	h.mu.Lock()
	h.nodeIndex = index
	h.mu.Unlock()
}

// markPool takes an interrupted Spot (or reserved) pool out of
// consideration for the replacement and the next launches.
func (h *Handler) markPool(ctx context.Context, kind Kind, node *corev1.Node) {
	if h.opts.Unavailable == nil {
		return
	}
	ct, it, zone := node.Labels[offerings.LabelCapacityType], node.Labels[offerings.LabelInstanceType], node.Labels[offerings.LabelZone]
	if ct == "" {
		ct = offerings.CapacityTypeSpot
		if kind == KindCapacityReservationInterruption {
			ct = "reserved"
		}
	}
	if it != "" && zone != "" {
		h.opts.Unavailable.MarkUnavailable(ctx, string(kind), ct, it, zone)
		h.count(kind, ActionMarkUnavailable)
	}
}

func (h *Handler) cordon(ctx context.Context, kind Kind, node string) error {
	if err := h.opts.Cluster.Cordon(ctx, node); err != nil && !provisioning.IsNotFound(err) {
		return err
	}
	h.count(kind, ActionCordon)
	return nil
}

func (h *Handler) count(kind Kind, action string) {
	h.opts.Metrics.Actions.WithLabelValues(string(kind), action).Inc()
}

// Run steps the handler until ctx is done: at once, then whenever a notice
// adds work, the cluster changes, or the time a step asked to be woken at
// comes. Its first step takes up the work recorded on the cluster's nodes
// (AnnotationRecord) that an earlier handler accepted and did not finish,
// with the recorded deadlines; a node whose record cannot be read is
// reported (log and Metrics.MalformedRecords) and left alone. Work still
// under way when ctx is done stops where it is; its records stay on the
// nodes for the next handler's Run. Do not call Step while Run runs.
func (h *Handler) Run(ctx context.Context) error {
	changes := h.opts.Cluster.Changes(ctx)
	for {
		next := h.Step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var timer clock.Timer
		var fire <-chan time.Time
		if !next.IsZero() {
			// Work still due after Step's rounds (a cache that lags)
			// waits a poll, so the loop never spins.
			timer = h.opts.Clock.NewTimer(max(next.Sub(h.opts.Clock.Now()), pollInterval))
			fire = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-h.notify:
		case <-changes:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// maxRounds bounds the rounds one Step runs at one instant: a round that
// moved pods asks for another at once (they are often gone already), and a
// cache that lags must not make it spin.
const maxRounds = 4

// Step does the work that is due now, and returns when it next needs to run
// (zero: not until a notice or a cluster change). Run calls it; a simulator
// that drives a virtual clock may call it instead of Run, after each clock
// step, to have the handler catch up deterministically. Steps take turns.
func (h *Handler) Step(ctx context.Context) time.Time {
	h.stepMu.Lock()
	defer h.stepMu.Unlock()
	var next time.Time
	for range maxRounds {
		next = h.round(ctx)
		if next.IsZero() || next.After(h.opts.Clock.Now()) || ctx.Err() != nil {
			return next
		}
	}
	return next
}
