package provisioning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/fleetpack/fleetpack/cloudprovider"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning/disruption"
	"github.com/fleetpack/fleetpack/scheduling"
)

// Defaults for Options.
const (
	DefaultBatchIdleDuration     = time.Second
	DefaultBatchMaxDuration      = 10 * time.Second
	DefaultMaxConcurrentLaunches = 10
	DefaultMaxICERetries         = 3
	DefaultRetryInterval         = 30 * time.Second
	DefaultNominationTTL         = 2 * time.Minute
	DefaultLaunchTimeout         = 15 * time.Minute
	DefaultOrphanGracePeriod     = 5 * time.Minute
	DefaultMaxOrphanDisruptions  = 1
	// DefaultLeakedInstanceGracePeriod leaves a launch ample time to
	// register its node: fleetpack registers it as soon as CreateFleet
	// returns.
	DefaultLeakedInstanceGracePeriod = 2 * time.Minute
)

// LabelManagedBy, with the value ManagedBy, marks the Node objects the
// Provisioner registers for the instances it launches. Only nodes carrying it
// are ever removed as empty or drained as orphans: a cluster migrating from
// Karpenter has nodes with the same karpenter.sh/nodepool label that
// fleetpack must not touch.
const (
	LabelManagedBy = "fleetpack.dev/managed-by"
	ManagedBy      = "fleetpack"
)

// IsManaged reports whether node was registered by a fleetpack Provisioner
// (it carries LabelManagedBy=ManagedBy).
func IsManaged(node *corev1.Node) bool { return node.Labels[LabelManagedBy] == ManagedBy }

// Options configures a Provisioner. Zero values take the defaults.
type Options struct {
	// Clock drives batching, nomination expiry, empty-node removal and the
	// grace period of deleted NodePools. Defaults to the real clock.
	Clock clock.Clock
	// BatchIdleDuration closes a batch when no new pending pod has arrived
	// for this long.
	BatchIdleDuration time.Duration
	// BatchMaxDuration closes a batch this long after it opened, however
	// busy.
	BatchMaxDuration time.Duration
	// MaxConcurrentLaunches bounds concurrent CloudProvider.Create calls.
	MaxConcurrentLaunches int
	// MaxICERetries bounds how often, within one pass, pods whose launch
	// failed for lack of capacity are solved again against the narrower
	// offerings.
	MaxICERetries int
	// RetryInterval is how often pods that could not be placed are tried
	// again when nothing else changes.
	RetryInterval time.Duration
	// NominationTTL is how long a pod nominated to a Ready node may stay
	// unbound before fleetpack provisions for it again.
	NominationTTL time.Duration
	// LaunchTimeout is how long a launched node may stay not Ready, holding
	// no pods, before its instance is terminated and its pods provisioned
	// for again (Karpenter's registration TTL).
	LaunchTimeout time.Duration
	// OrphanGracePeriod is how long a NodePool must stay missing (removed by
	// SetNodePools, or absent when a node of it is first seen) before its
	// nodes are drained and deleted, so that a pool briefly missing during a
	// configuration reload does not drain a fleet. Negative turns orphan
	// removal off.
	OrphanGracePeriod time.Duration
	// MaxOrphanDisruptions bounds how many nodes of deleted NodePools are
	// cordoned and draining at once.
	MaxOrphanDisruptions int
	// LeakedInstanceGracePeriod is how long an instance the cloud runs for
	// this provisioner may go without a Node before it is terminated as
	// leaked (TerminateLeakedInstances). Negative turns that off.
	LeakedInstanceGracePeriod time.Duration
	// MaxInstanceTypes caps each claim's instance-type list (see
	// scheduling.Input).
	MaxInstanceTypes int
	// Logger receives structured logs; defaults to slog.Default().
	Logger *slog.Logger
	// Metrics receives the provisioner's metrics; nil builds an unregistered
	// set.
	Metrics *Metrics
	// Consolidation turns on and configures consolidation (Consolidate).
	Consolidation ConsolidationOptions
}

// passState is the provisioning pass's own state.
type passState struct {
	nominated map[types.UID]nomination
	// reserved holds capacity launched or found by ProvisionNow for pods
	// still bound to a leaving node, keyed by those pods' UIDs: it is kept
	// for their replicas until the pods are gone, so other pending pods do
	// not take it and empty-node removal does not reap it mid-drain.
	reserved map[types.UID]nomination
}

// removalState is empty-node and orphan removal's own state.
type removalState struct {
	emptySince map[string]time.Time
	// poolGone holds when each missing NodePool that may still have nodes
	// was first missed.
	poolGone map[string]time.Time
	// orphanDrains are the nodes of deleted NodePools being drained, by
	// name. Only RemoveOrphanedNodes uses it, under passMu.
	orphanDrains map[string]*orphanDrain
}

// Provisioner turns pending pods into nodes and empty nodes into money saved.
// Run drives it; Provision, ProvisionNow, RemoveEmptyNodes and
// RemoveOrphanedNodes are its steps, callable directly (the interruption
// handler calls ProvisionNow).
type Provisioner struct {
	cluster Cluster
	cloud   cloudprovider.CloudProvider
	opts    Options
	clock   clock.Clock
	log     *slog.Logger
	metrics *Metrics

	// passMu serialises passes, so that the capacity one pass launches is
	// in the cluster before the next one counts it.
	passMu sync.Mutex

	// mu guards pools and the maps of pass and removal.
	mu    sync.Mutex
	pools []*NodePool
	// Each controller owns its state: the provisioning pass, empty and
	// orphan removal, and consolidation.
	pass    passState
	removal removalState
	// poolsChanged wakes Run after SetNodePools, so a missing pool's grace
	// period is timed even when the cluster is quiet.
	poolsChanged chan struct{}

	// consolidation is the consolidation controller's state; only
	// Consolidate and ConsolidationPlan use it, under passMu.
	consolidation *consolidator
	// leaks is leaked-instance collection's state; only
	// TerminateLeakedInstances uses it, under passMu.
	leaks leakState

	// hooks let tests observe the Run loop; nil in production.
	hooks *runHooks
}

type nomination struct {
	node string
	at   time.Time
}

// LaunchedNode is a node launched by a pass, with the pods meant for it.
type LaunchedNode struct {
	Node     *corev1.Node
	NodePool string
	Pods     []*corev1.Pod
}

// Result is what a provisioning pass did.
type Result struct {
	// Launched are the nodes created.
	Launched []LaunchedNode
	// Existing are the pods nominated to nodes that already existed or were
	// already in flight.
	Existing []*scheduling.NodePlacement
	// Unschedulable are the pods left pending, with the reason. They are
	// tried again on a later pass.
	Unschedulable []*scheduling.PodError
}

// Pods returns how many pods the pass placed.
func (r *Result) Pods() int {
	n := 0
	for _, l := range r.Launched {
		n += len(l.Pods)
	}
	for _, e := range r.Existing {
		n += len(e.Pods)
	}
	return n
}

// Nodes returns the nodes the pass placed pods on, launched first, each
// once: the replacement capacity a drain waits for.
func (r *Result) Nodes() []*corev1.Node {
	seen := map[string]bool{}
	var nodes []*corev1.Node
	add := func(n *corev1.Node) {
		if n != nil && !seen[n.Name] {
			seen[n.Name] = true
			nodes = append(nodes, n)
		}
	}
	for _, l := range r.Launched {
		add(l.Node)
	}
	for _, e := range r.Existing {
		add(e.Node)
	}
	return nodes
}

// New builds a Provisioner over cluster and cloud with the given NodePools,
// which must be valid.
func New(cluster Cluster, cloud cloudprovider.CloudProvider, pools []*NodePool, opts Options) (*Provisioner, error) {
	if cluster == nil || cloud == nil {
		return nil, errors.New("provisioning.New: cluster and cloud provider are required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.BatchIdleDuration <= 0 {
		opts.BatchIdleDuration = DefaultBatchIdleDuration
	}
	if opts.BatchMaxDuration <= 0 {
		opts.BatchMaxDuration = DefaultBatchMaxDuration
	}
	if opts.BatchMaxDuration < opts.BatchIdleDuration {
		return nil, fmt.Errorf("provisioning.New: Options.BatchMaxDuration (%s) is shorter than BatchIdleDuration (%s)", opts.BatchMaxDuration, opts.BatchIdleDuration)
	}
	if opts.MaxConcurrentLaunches <= 0 {
		opts.MaxConcurrentLaunches = DefaultMaxConcurrentLaunches
	}
	if opts.MaxICERetries <= 0 {
		opts.MaxICERetries = DefaultMaxICERetries
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	if opts.NominationTTL <= 0 {
		opts.NominationTTL = DefaultNominationTTL
	}
	if opts.LaunchTimeout <= 0 {
		opts.LaunchTimeout = DefaultLaunchTimeout
	}
	if opts.OrphanGracePeriod == 0 {
		opts.OrphanGracePeriod = DefaultOrphanGracePeriod
	}
	if opts.MaxOrphanDisruptions <= 0 {
		opts.MaxOrphanDisruptions = DefaultMaxOrphanDisruptions
	}
	if opts.LeakedInstanceGracePeriod == 0 {
		opts.LeakedInstanceGracePeriod = DefaultLeakedInstanceGracePeriod
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Consolidation.ValidationDelay <= 0 {
		opts.Consolidation.ValidationDelay = DefaultValidationDelay
	}
	if opts.Metrics == nil {
		opts.Metrics, _ = NewMetrics(nil)
	}
	p := &Provisioner{
		cluster: cluster, cloud: cloud, opts: opts, clock: opts.Clock,
		log: opts.Logger, metrics: opts.Metrics,
		pass:          passState{nominated: map[types.UID]nomination{}, reserved: map[types.UID]nomination{}},
		removal:       removalState{emptySince: map[string]time.Time{}, poolGone: map[string]time.Time{}, orphanDrains: map[string]*orphanDrain{}},
		poolsChanged:  make(chan struct{}, 1),
		consolidation: &consolidator{quiet: map[string]podsMark{}, disruptedInto: map[string]time.Time{}},
	}
	if err := p.SetNodePools(pools); err != nil {
		return nil, err
	}
	return p, nil
}

// SetNodePools replaces the NodePools after validating all of them; on error
// the old ones stay. Nodes this Provisioner launched for a pool that is no
// longer among them are drained and deleted once the pool has stayed missing
// for OrphanGracePeriod (see RemoveOrphanedNodes).
func (p *Provisioner) SetNodePools(pools []*NodePool) error {
	seen := map[string]bool{}
	var errs []error
	for i, np := range pools {
		if np == nil {
			errs = append(errs, fmt.Errorf("nodepools[%d]: is nil", i))
			continue
		}
		if err := np.Validate(); err != nil {
			errs = append(errs, err)
		}
		if seen[np.Name] {
			errs = append(errs, fmt.Errorf("nodepool %q: metadata.name: duplicate", np.Name))
		}
		seen[np.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	now := p.clock.Now()
	p.mu.Lock()
	for _, old := range p.pools {
		if _, missing := p.removal.poolGone[old.Name]; !seen[old.Name] && !missing {
			p.removal.poolGone[old.Name] = now
		}
	}
	for name := range seen {
		delete(p.removal.poolGone, name)
	}
	p.pools = slices.Clone(pools)
	p.mu.Unlock()
	select {
	case p.poolsChanged <- struct{}{}:
	default:
	}
	return nil
}

// NodePools returns the current NodePools.
func (p *Provisioner) NodePools() []*NodePool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.pools)
}

func (p *Provisioner) pool(name string) *NodePool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, np := range p.pools {
		if np.Name == name {
			return np
		}
	}
	return nil
}

// snapshot is one consistent read of the cluster.
type snapshot struct {
	now   time.Time
	pods  []*corev1.Pod
	nodes map[string]*corev1.Node
}

func (p *Provisioner) snapshot(ctx context.Context) (*snapshot, error) {
	nodes, err := p.cluster.ListNodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	pods, err := p.cluster.ListPods(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	s := &snapshot{now: p.clock.Now(), pods: pods, nodes: make(map[string]*corev1.Node, len(nodes))}
	for _, n := range nodes {
		s.nodes[n.Name] = n
	}
	return s, nil
}

// state is the snapshot as SolverInput takes it.
func (s *snapshot) state() ClusterState {
	nodes := slices.Collect(maps.Values(s.nodes))
	slices.SortFunc(nodes, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	return ClusterState{Nodes: nodes, Pods: s.pods}
}

// nominatedNode returns the node pod is expected to land on, or "" when it
// needs capacity: it is neither bound nor nominated to a live node, or its
// nomination by fleetpack to a Ready node has outlived NominationTTL.
func (p *Provisioner) nominatedNode(s *snapshot, pod *corev1.Pod) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	nom, ours := p.pass.nominated[pod.UID]
	name := nom.node
	if !ours {
		name = pod.Status.NominatedNodeName
	}
	if name == "" {
		return ""
	}
	node, ok := s.nodes[name]
	if !ok || node.DeletionTimestamp != nil {
		delete(p.pass.nominated, pod.UID)
		return ""
	}
	if ours && IsNodeReady(node) {
		since := nom.at
		if t := readySince(node); t.After(since) {
			since = t
		}
		if s.now.Sub(since) > p.opts.NominationTTL {
			delete(p.pass.nominated, pod.UID)
			return ""
		}
	}
	return name
}

// reservedNode returns the node holding capacity for pod, a pod ProvisionNow
// was asked to replace, or "" once the reservation has lapsed: the node is
// gone, or has been Ready for NominationTTL.
func (p *Provisioner) reservedNode(s *snapshot, pod *corev1.Pod) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.pass.reserved[pod.UID]
	if !ok {
		return ""
	}
	node, exists := s.nodes[r.node]
	if !exists || node.DeletionTimestamp != nil || IsTerminal(pod) {
		delete(p.pass.reserved, pod.UID)
		return ""
	}
	if IsNodeReady(node) {
		since := r.at
		if t := readySince(node); t.After(since) {
			since = t
		}
		if s.now.Sub(since) > p.opts.NominationTTL {
			delete(p.pass.reserved, pod.UID)
			return ""
		}
	}
	return r.node
}

// pruneReservations forgets reservations for pods that no longer exist: their
// replicas are pending now and compete for the capacity like any pod.
func (p *Provisioner) pruneReservations(s *snapshot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pass.reserved) == 0 {
		return
	}
	alive := make(map[types.UID]bool, len(s.pods))
	for _, pod := range s.pods {
		alive[pod.UID] = true
	}
	for uid := range p.pass.reserved {
		if !alive[uid] {
			delete(p.pass.reserved, uid)
		}
	}
}

func readySince(node *corev1.Node) time.Time {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// isPending reports whether pod wants a node fleetpack should find: unbound,
// alive, not gated, not a daemonset pod.
func isPending(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil && !IsTerminal(pod) &&
		!IsDaemonSetPod(pod) && len(pod.Spec.SchedulingGates) == 0
}

// PendingPods returns the pods that need capacity now.
func (p *Provisioner) PendingPods(ctx context.Context) ([]*corev1.Pod, error) {
	s, err := p.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return p.pending(s), nil
}

func (p *Provisioner) pending(s *snapshot) []*corev1.Pod {
	return PodsNeedingCapacity(s.state(), p.nominations(s))
}

// Provision runs one pass over every pending pod: solve, launch, nominate.
func (p *Provisioner) Provision(ctx context.Context) (*Result, error) {
	p.passMu.Lock()
	defer p.passMu.Unlock()
	s, err := p.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	pods := p.pending(s)
	p.metrics.PodsPending.Set(float64(len(pods)))
	if len(pods) == 0 {
		return &Result{}, nil
	}
	return p.provision(ctx, s, pods, nil)
}

// ProvisionNow places pods at once, without waiting for a batch window: the
// interruption handler calls it with the pods of a node that is going away,
// after cordoning the node. Nodes currently holding any of the pods are
// treated as leaving and are not considered for them. Capacity found or
// launched for bound pods is reserved until those pods are gone, so their
// re-created replicas land on it instead of causing another launch.
//
// The pods are looked up afresh: pods that are gone are skipped, and pods
// already covered (nominated by an earlier pass, or already replaced by an
// earlier ProvisionNow, as with a duplicate interruption notice) are reported
// in Result.Existing on the node that covers them, without a new launch.
func (p *Provisioner) ProvisionNow(ctx context.Context, pods []*corev1.Pod) (*Result, error) {
	p.passMu.Lock()
	defer p.passMu.Unlock()
	return p.provisionNow(ctx, pods)
}

// provisionNow is ProvisionNow; the caller holds passMu.
func (p *Provisioner) provisionNow(ctx context.Context, pods []*corev1.Pod) (*Result, error) {
	s, err := p.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	byUID := make(map[types.UID]*corev1.Pod, len(s.pods))
	byKey := make(map[string]*corev1.Pod, len(s.pods))
	for _, pod := range s.pods {
		byUID[pod.UID] = pod
		byKey[PodKey(pod)] = pod
	}
	res := &Result{}
	covered := map[string][]*corev1.Pod{}
	leaving := map[string]bool{}
	var want []*corev1.Pod
	for _, pod := range pods {
		if pod == nil {
			continue
		}
		cur := byKey[PodKey(pod)]
		if pod.UID != "" {
			cur = byUID[pod.UID]
		}
		if cur == nil || IsDaemonSetPod(cur) || IsTerminal(cur) || cur.DeletionTimestamp != nil {
			continue
		}
		if cur.Spec.NodeName == "" {
			if !isPending(cur) {
				continue
			}
			if n := p.nominatedNode(s, cur); n != "" {
				covered[n] = append(covered[n], cur)
				continue
			}
		} else {
			if n := p.reservedNode(s, cur); n != "" {
				covered[n] = append(covered[n], cur)
				continue
			}
			leaving[cur.Spec.NodeName] = true
		}
		want = append(want, cur)
	}
	for _, name := range slices.Sorted(maps.Keys(covered)) {
		res.Existing = append(res.Existing, &scheduling.NodePlacement{Node: s.nodes[name], Pods: covered[name]})
	}
	if len(want) == 0 {
		return res, nil
	}
	more, err := p.provision(ctx, s, want, leaving)
	if more != nil {
		more.Existing = append(res.Existing, more.Existing...)
	}
	return more, err
}

// provision solves pods, launches claims, nominates, and re-solves pods whose
// launch hit insufficient capacity. Caller holds passMu.
func (p *Provisioner) provision(ctx context.Context, s *snapshot, pods []*corev1.Pod, leaving map[string]bool) (*Result, error) {
	catalog, err := p.cloud.InstanceTypes(ctx)
	if err != nil {
		return nil, fmt.Errorf("getting instance types: %w", err)
	}
	res := &Result{}
	refused := map[cloudprovider.OfferingKey]bool{}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if s, err = p.snapshot(ctx); err != nil {
				return res, err
			}
		}
		iced, err := p.round(ctx, s, pods, leaving, maskOfferings(catalog, refused), refused, res)
		if err != nil {
			return res, err
		}
		if len(iced) == 0 {
			break
		}
		if attempt >= p.opts.MaxICERetries {
			for _, f := range iced {
				p.unschedulable(ctx, res, f.pod, fmt.Sprintf("launch failed after %d attempts: %v", attempt+1, f.err))
			}
			break
		}
		pods = pods[:0:0]
		for _, f := range iced {
			pods = append(pods, f.pod)
		}
		p.log.InfoContext(ctx, "re-solving pods after insufficient capacity", "pods", len(pods), "attempt", attempt+1, "refusedOfferings", len(refused))
	}
	p.metrics.PodsUnschedulable.Add(float64(len(res.Unschedulable)))
	return res, nil
}

type podFailure struct {
	pod *corev1.Pod
	err error
}

// round is one solve-and-launch over pods. It returns the pods whose claims
// failed for lack of capacity, having added the refused offerings to refused.
func (p *Provisioner) round(ctx context.Context, s *snapshot, pods []*corev1.Pod, leaving map[string]bool, catalog []*offerings.InstanceType, refused map[cloudprovider.OfferingKey]bool, res *Result) ([]podFailure, error) {
	in := p.input(ctx, s, pods, leaving, catalog)
	start := p.clock.Now()
	plan, err := scheduling.Solve(in)
	p.metrics.SchedulingDuration.Observe(p.clock.Since(start).Seconds())
	if err != nil {
		return nil, fmt.Errorf("solving %d pods: %w", len(pods), err)
	}
	for _, pe := range plan.Unschedulable {
		p.unschedulable(ctx, res, pe.Pod, pe.Reason)
	}
	for _, placement := range plan.ExistingNodes {
		var placed []*corev1.Pod
		for _, pod := range placement.Pods {
			if p.nominate(ctx, s.now, pod, placement.Node.Name) {
				placed = append(placed, pod)
			}
		}
		if len(placed) > 0 {
			res.Existing = append(res.Existing, &scheduling.NodePlacement{Node: placement.Node, Pods: placed})
		}
	}

	type outcome struct {
		claim *scheduling.NodeClaim
		node  *corev1.Node
		err   error
	}
	outcomes := make([]outcome, len(plan.NodeClaims))
	sem := make(chan struct{}, p.opts.MaxConcurrentLaunches)
	var wg sync.WaitGroup
	for i, claim := range plan.NodeClaims {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			node, err := p.launch(ctx, claim)
			outcomes[i] = outcome{claim, node, err}
		}()
	}
	wg.Wait()

	var iced []podFailure
	now := p.clock.Now()
	for _, o := range outcomes {
		pool := o.claim.Template.NodePool
		if o.err != nil {
			var ice *cloudprovider.InsufficientCapacityError
			if errors.As(o.err, &ice) {
				for _, k := range ice.Tried {
					refused[k] = true
					p.metrics.UnavailableOfferings.WithLabelValues(k.CapacityType, k.InstanceType, k.Zone).Inc()
				}
				if len(ice.Tried) == 0 {
					// Nothing to narrow: retrying would fail the same way.
					for _, pod := range o.claim.Pods {
						p.unschedulable(ctx, res, pod, o.err.Error())
					}
					continue
				}
				for _, pod := range o.claim.Pods {
					iced = append(iced, podFailure{pod, o.err})
				}
				continue
			}
			for _, pod := range o.claim.Pods {
				p.unschedulable(ctx, res, pod, "launch failed: "+o.err.Error())
			}
			continue
		}
		launched := LaunchedNode{Node: o.node, NodePool: pool}
		for _, pod := range o.claim.Pods {
			if p.nominate(ctx, now, pod, o.node.Name) {
				launched.Pods = append(launched.Pods, pod)
			}
		}
		res.Launched = append(res.Launched, launched)
	}
	return iced, nil
}

// launch creates the instance and registers its node; if registration fails
// the instance is terminated, so nothing leaks.
func (p *Provisioner) launch(ctx context.Context, claim *scheduling.NodeClaim) (*corev1.Node, error) {
	pool := claim.Template.NodePool
	log := p.log.With("nodepool", pool, "claim", claim.Hostname, "pods", len(claim.Pods), "instanceTypes", len(claim.InstanceTypes))
	node, err := p.cloud.Create(ctx, claim)
	if err != nil {
		reason := "error"
		if cloudprovider.IsInsufficientCapacity(err) {
			reason = "insufficient_capacity"
		}
		p.metrics.LaunchFailures.WithLabelValues(pool, reason).Inc()
		log.WarnContext(ctx, "launch failed", "reason", reason, "error", err)
		return nil, err
	}
	if node.Name == "" && node.Spec.ProviderID != "" {
		node.Name = node.Spec.ProviderID[strings.LastIndex(node.Spec.ProviderID, "/")+1:]
	}
	if node.Labels == nil {
		node.Labels = map[string]string{}
	}
	node.Labels[LabelManagedBy] = ManagedBy
	if np := p.pool(pool); np != nil {
		if node.Annotations == nil {
			node.Annotations = map[string]string{}
		}
		node.Annotations[disruption.AnnotationTemplateHash] = np.TemplateHash()
	}
	if err := p.cluster.CreateNode(ctx, node); err != nil {
		p.metrics.LaunchFailures.WithLabelValues(pool, "register_failed").Inc()
		// The context may be what failed; terminate regardless of it.
		cleanup := context.WithoutCancel(ctx)
		if derr := p.cloud.Delete(cleanup, node.Spec.ProviderID); derr != nil && !cloudprovider.IsNotFound(derr) {
			log.ErrorContext(ctx, "registering node failed and terminating its instance failed too; the instance may leak", "node", node.Name, "providerID", node.Spec.ProviderID, "error", err, "deleteError", derr)
			return nil, fmt.Errorf("registering node %s: %w (terminating instance %s: %v)", node.Name, err, node.Spec.ProviderID, derr)
		}
		p.metrics.NodesTerminated.WithLabelValues(pool, node.Labels[offerings.LabelCapacityType], "launch_failed").Inc()
		// The kubelet may have registered the node before the failure
		// (fleetpack's labels failed to apply): it goes with its instance.
		if derr := p.cluster.DeleteNode(cleanup, node.Name); derr != nil && !IsNotFound(derr) {
			log.WarnContext(ctx, "deleting the node object of a terminated instance failed", "node", node.Name, "error", derr)
		}
		log.WarnContext(ctx, "registering node failed; instance terminated", "node", node.Name, "error", err)
		return nil, fmt.Errorf("registering node %s: %w", node.Name, err)
	}
	p.metrics.NodesLaunched.WithLabelValues(pool, node.Labels[offerings.LabelCapacityType]).Inc()
	bill, list := LaunchedNodeCost(claim, node)
	p.metrics.LaunchedHourlyCost.WithLabelValues(pool, "bill").Add(bill)
	p.metrics.LaunchedHourlyCost.WithLabelValues(pool, "list").Add(list)
	log.InfoContext(ctx, "launched node", "node", node.Name, "providerID", node.Spec.ProviderID,
		"instanceType", node.Labels[offerings.LabelInstanceType], "zone", node.Labels[offerings.LabelZone],
		"capacityType", node.Labels[offerings.LabelCapacityType], "hourlyBill", bill, "hourlyListPrice", list)
	return node, nil
}

// nominate records pod's expected node and tells the cluster. A pod still
// bound to a leaving node (ProvisionNow's) is not nominated: the capacity is
// reserved for it until it is gone, and its replica then takes it. It
// reports whether the pod counts as placed.
func (p *Provisioner) nominate(ctx context.Context, now time.Time, pod *corev1.Pod, node string) bool {
	if pod.Spec.NodeName != "" {
		p.mu.Lock()
		p.pass.reserved[pod.UID] = nomination{node: node, at: now}
		p.mu.Unlock()
		return true
	}
	if err := p.cluster.Nominate(ctx, pod, node); err != nil {
		if IsNotFound(err) {
			p.log.DebugContext(ctx, "pod gone before nomination", "pod", PodKey(pod), "node", node)
			return false
		}
		p.log.WarnContext(ctx, "nominating pod failed", "pod", PodKey(pod), "node", node, "error", err)
	}
	p.mu.Lock()
	p.pass.nominated[pod.UID] = nomination{node: node, at: now}
	p.mu.Unlock()
	if rec, ok := p.cluster.(EventRecorder); ok {
		rec.Event(ctx, pod, corev1.EventTypeNormal, "Nominated", fmt.Sprintf("Pod should schedule on node %s", node))
	}
	return true
}

func (p *Provisioner) unschedulable(ctx context.Context, res *Result, pod *corev1.Pod, reason string) {
	res.Unschedulable = append(res.Unschedulable, &scheduling.PodError{Pod: pod, Reason: reason})
	p.log.WarnContext(ctx, "pod could not be placed", "pod", PodKey(pod), "reason", reason)
	if rec, ok := p.cluster.(EventRecorder); ok {
		rec.Event(ctx, pod, corev1.EventTypeWarning, "FailedScheduling", "Failed to provision capacity: "+reason)
	}
}

// input builds the solver's problem from the snapshot through SolverInput,
// with what only this Provisioner knows: its nominations and reservations,
// the nodes leaving, and the nodes of deleted NodePools due for draining.
func (p *Provisioner) input(ctx context.Context, s *snapshot, pods []*corev1.Pod, leaving map[string]bool, catalog []*offerings.InstanceType) scheduling.Input {
	p.pruneReservations(s)
	pools := p.NodePools()
	gone := maps.Clone(leaving)
	if gone == nil {
		gone = map[string]bool{}
	}
	for name, node := range s.nodes {
		if p.orphanDue(node, pools, s.now) {
			gone[name] = true
		}
	}
	in, err := SolverInput(s.state(), SolverInputOptions{
		NodePools: pools, Catalog: catalog, Pods: pods,
		Nominations: p.nominations(s), Reservations: p.reservations(s), Leaving: gone,
		MaxInstanceTypes: p.opts.MaxInstanceTypes,
	})
	if err != nil {
		p.log.ErrorContext(ctx, "skipping nodepools", "error", err)
	}
	return in
}

// nominations resolves every unbound pod's nomination as this Provisioner
// sees it (nominatedNode), for SolverInput.
func (p *Provisioner) nominations(s *snapshot) map[types.UID]string {
	out := map[types.UID]string{}
	for _, pod := range s.pods {
		if isPending(pod) {
			out[pod.UID] = p.nominatedNode(s, pod)
		}
	}
	return out
}

// reservations returns the live reservations of bound pods (reservedNode),
// for SolverInput.
func (p *Provisioner) reservations(s *snapshot) map[types.UID]string {
	out := map[types.UID]string{}
	for _, pod := range s.pods {
		if pod.Spec.NodeName != "" {
			if r := p.reservedNode(s, pod); r != "" {
				out[pod.UID] = r
			}
		}
	}
	return out
}

// maskOfferings returns types with the refused offerings marked unavailable,
// copying only the types that change.
func maskOfferings(types []*offerings.InstanceType, refused map[cloudprovider.OfferingKey]bool) []*offerings.InstanceType {
	if len(refused) == 0 {
		return types
	}
	out := make([]*offerings.InstanceType, len(types))
	for i, it := range types {
		out[i] = it
		for j, o := range it.Offerings {
			if o.Available && refused[cloudprovider.OfferingKey{CapacityType: o.CapacityType, InstanceType: it.Name, Zone: o.Zone}] {
				if out[i] == it {
					c := *it
					c.Offerings = slices.Clone(it.Offerings)
					out[i] = &c
				}
				out[i].Offerings[j].Available = false
			}
		}
	}
	return out
}

// RemoveEmptyNodes cordons and deletes every node of a known NodePool,
// launched by a fleetpack Provisioner (IsManaged), that
// has held no non-daemonset pods (bound or nominated) for the pool's
// consolidateAfter, terminating its instance. It also terminates launched
// nodes that have not become Ready, and hold no bound pod, within
// LaunchTimeout of their creation; pods nominated to them become pending
// again. With consolidation enabled only the latter is done here:
// consolidation removes empty nodes, as its first method. It returns the
// removed nodes and when the next node would become due (zero if none is
// waiting).
func (p *Provisioner) RemoveEmptyNodes(ctx context.Context) ([]string, time.Time, error) {
	p.passMu.Lock()
	defer p.passMu.Unlock()
	s, err := p.snapshot(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	var busy map[string]bool
	if !p.opts.Consolidation.Enabled {
		busy = p.busyNodes(s)
	}
	bound := map[string]bool{}
	for _, pod := range s.pods {
		if pod.Spec.NodeName != "" && !IsDaemonSetPod(pod) && !IsTerminal(pod) {
			bound[pod.Spec.NodeName] = true
		}
	}
	var removed []string
	var next time.Time
	var errs []error
	wake := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.nodes)) {
		node := s.nodes[name]
		np := p.pool(node.Labels[offerings.LabelNodePool])
		// Only nodes this library launched: a cluster moving over from
		// Karpenter has nodes with the same NodePool label.
		if np == nil || !IsManaged(node) || node.DeletionTimestamp != nil {
			continue
		}
		if !IsNodeReady(node) && !bound[name] && !node.CreationTimestamp.IsZero() {
			deadline := node.CreationTimestamp.Add(p.opts.LaunchTimeout)
			if s.now.Before(deadline) {
				wake(deadline)
			} else {
				if err := p.terminate(ctx, node, np.Name, "launch_timeout"); err != nil {
					errs = append(errs, err)
				} else {
					removed = append(removed, name)
				}
				continue
			}
		}
		if p.opts.Consolidation.Enabled {
			continue // consolidation removes empty nodes, as its first method
		}
		p.mu.Lock()
		if busy[name] {
			delete(p.removal.emptySince, name)
			p.mu.Unlock()
			continue
		}
		since, ok := p.removal.emptySince[name]
		if !ok {
			since = s.now
			p.removal.emptySince[name] = since
		}
		p.mu.Unlock()
		due := since.Add(np.ConsolidateAfter())
		if s.now.Before(due) {
			wake(due)
			continue
		}
		if err := p.removeEmpty(ctx, node, np, s.now.Sub(since)); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	// Forget nodes that are gone.
	p.mu.Lock()
	for name := range p.removal.emptySince {
		if _, ok := s.nodes[name]; !ok {
			delete(p.removal.emptySince, name)
		}
	}
	p.mu.Unlock()
	return removed, next, errors.Join(errs...)
}

// busyNodes returns the nodes that hold or expect a non-daemonset pod.
func (p *Provisioner) busyNodes(s *snapshot) map[string]bool {
	busy := map[string]bool{}
	p.pruneReservations(s)
	for _, pod := range s.pods {
		if IsDaemonSetPod(pod) || IsTerminal(pod) {
			continue
		}
		if pod.Spec.NodeName != "" {
			busy[pod.Spec.NodeName] = true
			// Capacity ProvisionNow found for a pod of a leaving node is
			// reserved for its replica.
			if n := p.reservedNode(s, pod); n != "" {
				busy[n] = true
			}
		} else if n := p.nominatedNode(s, pod); n != "" {
			busy[n] = true
		}
	}
	return busy
}

func (p *Provisioner) removeEmpty(ctx context.Context, node *corev1.Node, np *NodePool, emptyFor time.Duration) error {
	log := p.log.With("node", node.Name, "nodepool", np.Name, "providerID", node.Spec.ProviderID)
	if err := p.cluster.Cordon(ctx, node.Name); err != nil {
		if IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("cordoning empty node %s: %w", node.Name, err)
	}
	// A pod may have been bound between the snapshot and the cordon.
	s, err := p.snapshot(ctx)
	if err != nil {
		return err
	}
	if p.busyNodes(s)[node.Name] {
		log.WarnContext(ctx, "empty node received a pod while being removed; left cordoned")
		return nil
	}
	if err := p.terminate(ctx, node, np.Name, "empty"); err != nil {
		return err
	}
	log.InfoContext(ctx, "removed empty node", "emptyFor", emptyFor)
	if rec, ok := p.cluster.(EventRecorder); ok {
		rec.Event(ctx, node, corev1.EventTypeNormal, "RemovedEmptyNode", fmt.Sprintf("Node held no pods for %s (consolidateAfter %s)", emptyFor, np.ConsolidateAfter()))
	}
	return nil
}

// terminate deletes the node's instance, then the node object; the instance
// goes first so that a failure leaves the node visible to retry on.
func (p *Provisioner) terminate(ctx context.Context, node *corev1.Node, pool, reason string) error {
	if err := TerminateNode(ctx, p.cloud, p.cluster, node); err != nil {
		return fmt.Errorf("%w (%s)", err, reason)
	}
	p.mu.Lock()
	delete(p.removal.emptySince, node.Name)
	p.mu.Unlock()
	p.metrics.NodesTerminated.WithLabelValues(pool, node.Labels[offerings.LabelCapacityType], reason).Inc()
	if reason == "launch_timeout" {
		p.log.WarnContext(ctx, "terminated node", "node", node.Name, "nodepool", pool, "providerID", node.Spec.ProviderID, "reason", reason)
	}
	return nil
}
