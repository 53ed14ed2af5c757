package disruption

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/fleetpack/fleetpack/provisioning/drain"
	"github.com/fleetpack/fleetpack/scheduling"
)

// Policy says which nodes of a pool consolidation may remove or replace
// (Karpenter's spec.disruption.consolidationPolicy, plus Balanced).
type Policy string

// The consolidation policies.
const (
	// WhenEmpty removes only nodes that hold no pod that would move.
	WhenEmpty Policy = "WhenEmpty"
	// WhenEmptyOrUnderutilized also removes or replaces nodes whenever
	// that saves at least MinSaving.
	WhenEmptyOrUnderutilized Policy = "WhenEmptyOrUnderutilized"
	// Balanced is WhenEmptyOrUnderutilized for moves whose share of the
	// pool's bill saved is at least 1/K of their share of its disruption.
	Balanced Policy = "Balanced"
)

// Defaults of Pool.
const (
	DefaultBalanceK           = 2
	DefaultSpotToSpotMinTypes = 15
	// DefaultStabilization is how long a node a disruption launched or
	// sent pods to is left alone (Pool.Stabilization).
	DefaultStabilization = time.Hour
)

// Annotations read on nodes and pods.
const (
	// AnnotationDoNotDisrupt set to "true" on a node or a pod keeps the node
	// from voluntary disruption; on a pod it may instead be a duration
	// ("30m"), counted from the pod's start.
	AnnotationDoNotDisrupt = "karpenter.sh/do-not-disrupt"
	// AnnotationPodDeletionCost is the ReplicaSet controller's cost of
	// deleting a pod; higher costs make its node dearer to disrupt.
	AnnotationPodDeletionCost = "controller.kubernetes.io/pod-deletion-cost"
	// AnnotationTemplateHash on a node records the hash of its NodePool's
	// template (Pool.TemplateHash) at launch; a different hash now is drift.
	AnnotationTemplateHash = "fleetpack.dev/nodepool-hash"
)

// Method is how a command was found.
type Method string

// The methods, in the order a pass tries them.
const (
	MethodEmpty      Method = "empty"
	MethodDrift      Method = "drift"
	MethodExpiration Method = "expiration"
	MethodMultiNode  Method = "multi-node"
	MethodSingleNode Method = "single-node"
)

// Pool is a NodePool's disruption settings.
type Pool struct {
	Name string
	// Policy defaults to WhenEmptyOrUnderutilized.
	Policy Policy
	// ConsolidateAfter is how long a node's pods must not have changed
	// before it may be consolidated (emptied or replaced).
	ConsolidateAfter time.Duration
	// ExpireAfter replaces nodes older than this; 0 never.
	ExpireAfter time.Duration
	// Budgets; none means one of DefaultBudgetNodes.
	Budgets []Budget
	// MinSaving is the least hourly saving (USD) a consolidation move
	// must make.
	MinSaving float64
	// BalanceK is Balanced's k; 0 means DefaultBalanceK.
	BalanceK float64
	// SpotToSpotMinTypes is how many instance types cheaper than a Spot
	// node must be able to replace it before a single-node move replaces
	// it with Spot; 0 means DefaultSpotToSpotMinTypes.
	SpotToSpotMinTypes int
	// Stabilization is how long after a disruption launched a node or sent
	// it the pods it evicted (Node.DisruptedInto) the node may not be
	// consolidated unless empty, so moved pods are not moved again and no
	// node ping-pongs; 0 means DefaultStabilization, negative none.
	// Drift and expiration are not held back.
	Stabilization time.Duration
	// TemplateHash is the hash of the pool's template now; nodes whose
	// AnnotationTemplateHash differs have drifted.
	TemplateHash string
	// Requirements, Labels and Taints are what the pool admits now: a node
	// whose labels they reject, or that lacks a label or taint, has
	// drifted. StartupTaints must be gone before a node is initialized.
	Requirements  scheduling.Requirements
	Labels        map[string]string
	Taints        []corev1.Taint
	StartupTaints []corev1.Taint
}

func (p *Pool) balanceK() float64 {
	if p.BalanceK > 0 {
		return p.BalanceK
	}
	return DefaultBalanceK
}

func (p *Pool) stabilization() time.Duration {
	if p.Stabilization == 0 {
		return DefaultStabilization
	}
	return max(p.Stabilization, 0)
}

func (p *Pool) spotToSpotMinTypes() int {
	if p.SpotToSpotMinTypes > 0 {
		return p.SpotToSpotMinTypes
	}
	return DefaultSpotToSpotMinTypes
}

// Node is one node of the snapshot.
type Node struct {
	Node *corev1.Node
	// Pods are the pods bound or nominated to it, daemonset pods included.
	Pods []*corev1.Pod
	// Pool is the name of its NodePool ("" if none).
	Pool string
	// Managed: launched by fleetpack (provisioning.IsManaged). Only managed
	// nodes are candidates.
	Managed bool
	// Nominated: pending pods are expected to land on it.
	Nominated bool
	// Disrupting: already being removed (tainted, draining, deleting).
	Disrupting bool
	// Price is what the node costs per hour (the bill).
	Price float64
	// QuietSince is when its pods last changed (zero: when it became
	// Ready); consolidation waits ConsolidateAfter from then.
	QuietSince time.Time
	// DisruptedInto is when a disruption last launched the node as a
	// replacement or sent it pods it evicted (Command.Destinations); zero
	// if never. See Pool.Stabilization.
	DisruptedInto time.Time
}

// Input is one decision's snapshot.
type Input struct {
	Now   time.Time
	Nodes []Node
	// DaemonSetPods, Templates, Namespaces and MaxInstanceTypes are the
	// solver's, as for provisioning: replacements are claims of Templates.
	DaemonSetPods    []*corev1.Pod
	Templates        []*scheduling.NodeTemplate
	Namespaces       []*corev1.Namespace
	MaxInstanceTypes int
	Pools            []Pool
	PDBs             []*policyv1.PodDisruptionBudget
	// Moves reports whether a drain moves pod (not a daemonset or mirror
	// pod); nil moves every pod.
	Moves func(*corev1.Pod) bool
	// Pending counts the pods that need capacity now: while there are
	// any, nothing is disrupted, since the room a simulation would hand
	// the candidates' pods may be theirs.
	Pending int
}

// Command is one move: remove Candidates, launching Replacements first,
// moving Pods.
type Command struct {
	Method Method
	Reason Reason
	// Candidates are the nodes to remove, by name.
	Candidates []string
	// Replacements are launched (and Ready) before the candidates drain.
	Replacements []*scheduling.NodeClaim
	// Pods are the pods the drain moves.
	Pods []*corev1.Pod
	// Destinations are the existing nodes the simulation placed Pods on;
	// with the replacements, the executor records them as Node.DisruptedInto.
	Destinations []string
	// Saving is the candidates' hourly price less the replacements'.
	Saving float64
	// DisruptionCost is the summed cost of moving Pods.
	DisruptionCost float64
}

// String renders the command for logs.
func (c Command) String() string {
	return fmt.Sprintf("%s: remove %s, launch %d, move %d pods, save $%.4f/h", c.Method, strings.Join(c.Candidates, ","), len(c.Replacements), len(c.Pods), c.Saving)
}

// SkipReason says why a node is not a candidate.
type SkipReason string

// The skip reasons.
const (
	SkipNotManaged       SkipReason = "not_managed"
	SkipNoNodePool       SkipReason = "no_nodepool"
	SkipDisrupting       SkipReason = "disrupting"
	SkipNotReady         SkipReason = "not_ready"
	SkipNotInitialized   SkipReason = "not_initialized"
	SkipNominated        SkipReason = "nominated"
	SkipDoNotDisruptNode SkipReason = "do_not_disrupt_node"
	SkipDoNotDisruptPod  SkipReason = "do_not_disrupt_pod"
	SkipPDB              SkipReason = "pdb"
	SkipConsolidateAfter SkipReason = "consolidate_after"
	SkipBudget           SkipReason = "budget"
	// SkipStabilizing: a disruption launched the node or sent it pods
	// within Pool.Stabilization, and it is not empty.
	SkipStabilizing SkipReason = "stabilizing"
)

// Skip is a node that is not a candidate, and why.
type Skip struct {
	Node   string
	Reason SkipReason
}

// Decision is what one pass decided.
type Decision struct {
	Commands []Command
	Skipped  []Skip
	// Wake is the earliest time a skipped node may become a candidate
	// (consolidateAfter, a do-not-disrupt duration, expiration, a budget
	// window), zero if none is known.
	Wake time.Time
	// Simulations counts the solver runs the pass made.
	Simulations int
}

func (d *Decision) wake(t time.Time) {
	if !t.IsZero() && (d.Wake.IsZero() || t.Before(d.Wake)) {
		d.Wake = t
	}
}

// candidate is a node that may be disrupted.
type candidate struct {
	*Node
	pool    *Pool
	index   int // in Input.Nodes
	moving  []*corev1.Pod
	cost    float64
	settled bool // past consolidateAfter
	pdbs    []int
	drifted bool
	expired bool
}

// PodDisruptionCost is what evicting pod costs: 1, raised or lowered by
// its pod-deletion-cost and priority, kept within [0.1, 10].
func PodDisruptionCost(pod *corev1.Pod) float64 {
	cost := 1.0
	if v, err := strconv.ParseFloat(pod.Annotations[AnnotationPodDeletionCost], 64); err == nil {
		cost += v / (1 << 29) // the int32 range moves it by at most 4
	}
	if pod.Spec.Priority != nil {
		cost += float64(*pod.Spec.Priority) / (1 << 28) // system-node-critical adds about 7
	}
	return min(max(cost, 0.1), 10)
}

func podStart(pod *corev1.Pod) time.Time {
	if pod.Status.StartTime != nil {
		return pod.Status.StartTime.Time
	}
	return pod.CreationTimestamp.Time
}

// doNotDisruptUntil returns until when pod's do-not-disrupt annotation holds
// its node: forever (the zero Time and true) for "true", its start plus the
// duration for a duration, false when it does not hold (now or ever).
func doNotDisruptUntil(pod *corev1.Pod, now time.Time) (time.Time, bool) {
	v, ok := pod.Annotations[AnnotationDoNotDisrupt]
	if !ok {
		return time.Time{}, false
	}
	if v == "true" {
		return time.Time{}, true
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return time.Time{}, v != "false" // unreadable: err on the side of the pod
	}
	until := podStart(pod).Add(d)
	return until, now.Before(until)
}

func hasTaint(node *corev1.Node, t corev1.Taint) bool {
	return slices.ContainsFunc(node.Spec.Taints, func(x corev1.Taint) bool { return x.MatchTaint(&t) && x.Value == t.Value })
}

// initialized: Ready, with no startup or not-yet-ready taint left.
func initialized(node *corev1.Node, pool *Pool) bool {
	for _, t := range pool.StartupTaints {
		if hasTaint(node, t) {
			return false
		}
	}
	return !slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return scheduling.IsEphemeralTaint(t.Key) })
}

// drifted reports whether the pool no longer admits the node.
func drifted(node *corev1.Node, pool *Pool) bool {
	if h, ok := node.Annotations[AnnotationTemplateHash]; ok && pool.TemplateHash != "" && h != pool.TemplateHash {
		return true
	}
	if pool.Requirements.Len() > 0 && !pool.Requirements.MatchesLabels(node.Labels) {
		return true
	}
	for k, v := range pool.Labels {
		if node.Labels[k] != v {
			return true
		}
	}
	for _, t := range pool.Taints {
		if !hasTaint(node, t) {
			return true
		}
	}
	return false
}

// candidates sorts the snapshot's nodes into candidates and skips.
func (in *Input) candidates(d *Decision, pools map[string]*Pool) []*candidate {
	var out []*candidate
	pdbs := make([]labels.Selector, len(in.PDBs))
	for i, pdb := range in.PDBs {
		if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err == nil {
			pdbs[i] = sel
		} else {
			pdbs[i] = labels.Everything() // a bad selector blocks rather than lets through
		}
	}
	for i := range in.Nodes {
		n := &in.Nodes[i]
		c, reason, wake := in.candidate(n, pools[n.Pool], pdbs)
		d.wake(wake)
		if c == nil {
			d.Skipped = append(d.Skipped, Skip{Node: n.Node.Name, Reason: reason})
			continue
		}
		c.index = i
		out = append(out, c)
	}
	// Cheapest to disrupt first; the dearer node breaks ties, then names.
	slices.SortStableFunc(out, func(a, b *candidate) int {
		return cmp.Or(cmp.Compare(a.cost, b.cost), cmp.Compare(b.Price, a.Price), strings.Compare(a.Node.Node.Name, b.Node.Node.Name))
	})
	return out
}

func (in *Input) candidate(n *Node, pool *Pool, pdbs []labels.Selector) (*candidate, SkipReason, time.Time) {
	node := n.Node
	switch {
	case !n.Managed:
		return nil, SkipNotManaged, time.Time{}
	case pool == nil:
		return nil, SkipNoNodePool, time.Time{}
	case n.Disrupting || node.DeletionTimestamp != nil || node.Spec.Unschedulable:
		return nil, SkipDisrupting, time.Time{}
	case !drain.IsNodeReady(node):
		return nil, SkipNotReady, time.Time{}
	case !initialized(node, pool):
		return nil, SkipNotInitialized, time.Time{}
	case n.Nominated:
		return nil, SkipNominated, time.Time{}
	case node.Annotations[AnnotationDoNotDisrupt] == "true":
		return nil, SkipDoNotDisruptNode, time.Time{}
	}
	c := &candidate{Node: n, pool: pool}
	for _, pod := range n.Pods {
		if in.Moves != nil && !in.Moves(pod) {
			continue
		}
		if until, held := doNotDisruptUntil(pod, in.Now); held {
			return nil, SkipDoNotDisruptPod, until
		}
		c.moving = append(c.moving, pod)
		c.cost += PodDisruptionCost(pod)
		for j, pdb := range in.PDBs {
			if pdb.Namespace == pod.Namespace && pdbs[j].Matches(labels.Set(pod.Labels)) {
				c.pdbs = append(c.pdbs, j)
			}
		}
	}
	if !pdbAllows(in.PDBs, nil, c.pdbs) {
		return nil, SkipPDB, time.Time{}
	}
	c.drifted = drifted(node, pool)
	var wake time.Time
	if pool.ExpireAfter > 0 && !node.CreationTimestamp.IsZero() {
		at := node.CreationTimestamp.Add(pool.ExpireAfter)
		c.expired = !in.Now.Before(at)
		if !c.expired {
			wake = at
		}
	}
	quiet := n.QuietSince
	if quiet.IsZero() {
		quiet = readySince(node)
	}
	settleAt := quiet.Add(pool.ConsolidateAfter)
	c.settled = !in.Now.Before(settleAt)
	if !c.settled && !c.drifted && !c.expired {
		return nil, SkipConsolidateAfter, earliest(settleAt, wake)
	}
	if stableAt := n.DisruptedInto.Add(pool.stabilization()); !n.DisruptedInto.IsZero() && len(c.moving) > 0 && in.Now.Before(stableAt) && !c.drifted && !c.expired {
		return nil, SkipStabilizing, earliest(stableAt, wake)
	}
	if !c.settled {
		wake = earliest(settleAt, wake)
	}
	return c, "", wake
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func readySince(node *corev1.Node) time.Time {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.LastTransitionTime.Time
		}
	}
	return node.CreationTimestamp.Time
}

// pdbAllows reports whether evicting one pod per entry of more (indices into
// pdbs), on top of used, stays within every budget's disruptionsAllowed.
func pdbAllows(pdbs []*policyv1.PodDisruptionBudget, used map[int]int32, more []int) bool {
	add := map[int]int32{}
	for _, j := range more {
		add[j]++
	}
	for j, n := range add {
		if used[j]+n > pdbs[j].Status.DisruptionsAllowed {
			return false
		}
	}
	return true
}

// budgets tracks how many more nodes each pool may disrupt, per reason.
type budgets struct {
	in         *Input
	pools      map[string]*Pool
	total      map[string]int
	disrupting map[string]int
	taken      map[string]int
}

func newBudgets(in *Input, pools map[string]*Pool) *budgets {
	b := &budgets{in: in, pools: pools, total: map[string]int{}, disrupting: map[string]int{}, taken: map[string]int{}}
	for i := range in.Nodes {
		n := &in.Nodes[i]
		if n.Pool == "" {
			continue
		}
		b.total[n.Pool]++
		if n.Disrupting || n.Node.DeletionTimestamp != nil {
			b.disrupting[n.Pool]++
		}
	}
	return b
}

func (b *budgets) left(pool string, reason Reason) int {
	p := b.pools[pool]
	if p == nil {
		return 0
	}
	return Allowed(p.Budgets, reason, b.in.Now, b.total[pool], b.disrupting[pool]+b.taken[pool])
}

// take reserves the budget of the command's candidates.
func (b *budgets) take(cands []*candidate) {
	for _, c := range cands {
		b.taken[c.Pool]++
	}
}
