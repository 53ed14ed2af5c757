package scheduling

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
)

// Solve places in.Pods on in.Nodes and on new NodeClaims made from
// in.Templates. It is pure and deterministic: the same input gives the same
// plan. It returns an error only when the input itself is malformed; a pod
// that cannot be placed is reported in Plan.Unschedulable with the reason.
//
// Pods are taken largest first (valued at the dual prices, then by cpu,
// memory and namespace/name). Pods without constraints are packed node by
// node, each node on the type it fills best per dollar (see the package
// doc). Otherwise each pod goes to the first existing node it fits, else to
// the first open claim it can join without raising that claim's price by
// more than a node of its own would cost, else to a new claim from the
// highest-weight template that can hold it. Preferences (preferred node
// affinity, PreferNoSchedule taints) are treated as required until a pod
// cannot be placed with them, then relaxed one at a time.
func Solve(in Input) (*Plan, error) {
	s, err := newSolver(in)
	if err != nil {
		return nil, err
	}
	return s.solve(), nil
}

type solver struct {
	dims      *resourceDims
	templates []*compiledTemplate
	nodes     []*nodeState
	claims    []*claim
	pods      []*podInfo
	maxTypes  int
	// tolerance is Input.ClaimPriceTolerance, defaulted.
	tolerance float64
	topology  *topology
	plan      Plan
	// aloneMemo is what aloneIn found for the pod of the current attempt.
	aloneMemo []aloneEntry
	// hints remember where the last pod bound for a domain went.
	hints map[hintKey]int
	// narrowShared caches claim type lists narrowed to topology domains.
	narrowShared map[sharedNarrowKey]*typeList
	// remaining is the cpu and memory of pods not yet placed, and
	// remainingPods their number.
	remaining     [2]int64
	remainingPods int64
	// variantTemplates counts the variant templates compiled (see id). It
	// is the Context's: its pod classes, and so their variant templates,
	// outlive each solve, and an id must not repeat across them.
	variantTemplates *int32
	runs             runMemo
	// attemptBuf backs attempts' result.
	attemptBuf []attempt
	// join memoizes joinRuleFor (see join.go).
	join joinMemo
}

type nodeState struct {
	node        *corev1.Node
	free        vec
	ports       []hostPort
	placed      []*corev1.Pod
	taints      []corev1.Taint
	schedulable bool
	// pods are the pods bound to the node before the solve.
	pods []*corev1.Pod
	// labels are the node's labels plus its name under metadata.name, for
	// matchFields terms.
	labels map[string]string
}

type claim struct {
	ct *compiledTemplate
	// absorbed are variant templates whose requirements contain reqs, so
	// their pods join without intersecting requirements again.
	absorbed []*variantTemplate
	reqs     Requirements
	// values caches, per topology key, the domains reqs allow the claim.
	values map[string][]string
	// narrowCache holds narrowings of the claim probed since its
	// requirements last changed.
	narrowCache map[narrowKey]*typeList
	// list holds the candidate types under reqs; some may no longer fit
	// (finish filters them). Its front starts at the cheapest type that
	// holds the claim: the only types a join can grow into.
	list        typeList
	requests    vec
	pods        []*corev1.Pod
	ports       []hostPort
	index       int
	hostname    string
	reservedCPU int64
	reservedMem int64
	// refused is the last pod the join rule turned away since the claim
	// last changed (see offer).
	refused refusal
}

// refusal is what decided a join-rule refusal: the pod's requests (its
// shape), its variant template, and whether its own node was priced in the
// claim's domain (see offer). Numbers, not pointers: a claim writes one on
// most probes, and pointers would cost write barriers.
type refusal struct {
	shape, vt int32
	bound     bool
}

// typeList is a list of candidate instance types (indices into a
// template's types) under some requirements: every one, cheapest first,
// and the Pareto front of those (see paretoFront), with their prices, and
// the most any of them offers per dimension. Claims and variant templates
// share lists and never write them in place; a claim reslices its front.
type typeList struct {
	all, front             []int32
	allPrices, frontPrices []float64
	maxAvail               vec
}

// firstHolding is the index in l's front of the cheapest type that holds
// claim c with extra added, or -1.
func (s *solver) firstHolding(c *claim, l *typeList, extra vec) int {
	for i, t := range l.front {
		if s.typeFits(c, t, extra) {
			return i
		}
	}
	return -1
}

// IsEphemeralTaint reports the taints put on every node while it starts
// (not ready, unreachable, cloud-provider uninitialized, Karpenter's
// unregistered). The solver schedules pods to in-flight nodes regardless,
// as the kube-scheduler will once they clear; disruption counts a node
// carrying one as not yet initialized. (A function, not a map: no
// package-level mutable state.)
func IsEphemeralTaint(key string) bool {
	switch key {
	case corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable, "node.cloudprovider.kubernetes.io/uninitialized", "karpenter.sh/unregistered":
		return true
	}
	return false
}

func newSolver(in Input) (*solver, error) {
	c, err := compile(in)
	if err != nil {
		return nil, err
	}
	return c.solver(c.pods, nil), nil
}

func resize(v vec, n int) vec {
	if len(v) == n {
		return v
	}
	out := make(vec, n)
	copy(out, v)
	return out
}

func newNodeState(n *ExistingNode, dims *resourceDims) *nodeState {
	alloc := n.Node.Status.Allocatable
	if len(alloc) == 0 {
		alloc = n.Node.Status.Capacity
	}
	ns := &nodeState{
		node:        n.Node,
		free:        dims.vecOf(alloc),
		schedulable: !n.Node.Spec.Unschedulable && n.Node.DeletionTimestamp == nil,
	}
	ns.labels = make(map[string]string, len(n.Node.Labels)+1)
	for k, v := range n.Node.Labels {
		ns.labels[k] = v
	}
	ns.labels[fieldNodeName] = n.Node.Name
	for _, t := range n.Node.Spec.Taints {
		if !IsEphemeralTaint(t.Key) {
			ns.taints = append(ns.taints, t)
		}
	}
	for _, pod := range n.Pods {
		if pod == nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		ns.pods = append(ns.pods, pod)
		ns.free.sub(vecFromList(dims, podRequestList(pod)))
		ns.ports = append(ns.ports, podHostPorts(pod)...)
	}
	return ns
}

// solve packs the pods. Where they share no constraints (sharedTemplates)
// they go to existing nodes first, as the greedy would place them, and the
// node-by-node fill packs the rest (fill.go); the greedy runs as well only
// on small workloads, and the cheaper claims win. Otherwise, or when the
// fill does not apply, the greedy places every pod. No plan bills more than
// the best single-type fleet where that bound applies.
func (s *solver) solve() *Plan {
	s.sortPods()
	vts := s.sharedTemplates()
	if !s.fillApplies(vts) {
		s.packGreedily(s.pods, vts)
	} else {
		greedy := len(s.pods) <= greedyAlongside
		if greedy {
			s.packGreedily(s.pods, vts)
		} else {
			s.placeOnNodes()
		}
		rest := s.notOnNodes()
		filled, fillBill := s.fillPlan(vts, rest)
		switch {
		case filled != nil && len(s.plan.Unschedulable) == 0 && (!greedy || len(s.claims) == 0 || fillBill < planBill(s.claims)*(1-1e-9)):
			s.claims = filled
		case filled == nil && !greedy:
			// Some pod fits no type: the greedy reports it.
			s.packGreedily(rest, vts)
		}
		s.refillPairs(vts)
		s.dissolveClaims(vts)
	}
	if len(s.nodes) == 0 { // the bound's conditions: fleetTemplates is vts
		s.noWorseThanOneType(vts)
	}
	return s.finish()
}

// packGreedily places pods with the greedy (placeAll), then merges and
// dissolves its claims where vts (sharedTemplates) let them share.
func (s *solver) packGreedily(pods []*podInfo, vts []*variantTemplate) {
	s.placeAll(pods)
	s.mergeClaims(vts)
	s.dissolveClaims(vts)
}

// placeAll is the greedy: each of pods (in s.pods's order), largest first,
// on an existing node, an open claim or a new one (place), or reported
// unschedulable.
func (s *solver) placeAll(pods []*podInfo) {
	s.remaining = [2]int64{}
	for _, p := range pods {
		s.remaining[0] += p.requests[dimCPU]
		s.remaining[1] += p.requests[dimMemory]
	}
	for i, p := range pods {
		s.remaining[0] -= p.requests[dimCPU]
		s.remaining[1] -= p.requests[dimMemory]
		s.remainingPods = int64(len(pods) - i - 1)
		if p.class.err != nil {
			s.unschedulable(p, p.class.err.Error())
			continue
		}
		if reason, ok := s.place(p); !ok {
			s.unschedulable(p, reason)
		}
	}
}

// placeOnNodes puts each pod, largest first, on the first existing node it
// fits, as the greedy does before it looks at claims; for pods that share
// no constraints (sharedTemplates), whose one attempt is their plain
// variant. An identical next pod starts where the last one went: the
// nodes before it turned that pod away and have only filled since.
func (s *solver) placeOnNodes() {
	if len(s.nodes) == 0 {
		return
	}
	start := 0
	for i, p := range s.pods {
		if i == 0 || p.shape != s.pods[i-1].shape || p.class != s.pods[i-1].class {
			start = 0
		}
		at := s.attempts(p)[0]
		q := s.topology.query(p, at.variant, at.level, false)
		if n := s.placeOnNode(q, start); n >= 0 {
			start = n
		} else {
			start = len(s.nodes)
		}
	}
}

// notOnNodes returns the pods, in s.pods's order, that no existing node
// took.
func (s *solver) notOnNodes() []*podInfo {
	if len(s.nodes) == 0 {
		return s.pods
	}
	onNode := map[*corev1.Pod]bool{}
	for _, n := range s.nodes {
		for _, pod := range n.placed {
			onNode[pod] = true
		}
	}
	rest := make([]*podInfo, 0, len(s.pods))
	for _, p := range s.pods {
		if !onNode[p.pod] {
			rest = append(rest, p)
		}
	}
	return rest
}

// sortPods orders pods largest first, where size is the pod's cpu and memory
// valued at the first template's dual prices (see value.go), so that a
// memory-heavy pod counts as large as a cpu-heavy one of the same worth.
// Names break ties so that input order does not change the plan.
func (s *solver) sortPods() {
	d := s.sizes()
	for _, p := range s.pods {
		p.size = d.value(p.requests)
	}
	// Early returns, not cmp.Or: its arguments, the name comparisons
	// included, would all be evaluated on every one of the n log n calls.
	// Namespace and name order pods completely, so the sort need not be
	// stable (and pdqsort is quicker than the stable merge).
	slices.SortFunc(s.pods, func(a, b *podInfo) int {
		if c := cmp.Compare(b.size, a.size); c != 0 {
			return c
		}
		if c := cmp.Compare(b.requests[dimCPU], a.requests[dimCPU]); c != 0 {
			return c
		}
		if c := cmp.Compare(b.requests[dimMemory], a.requests[dimMemory]); c != 0 {
			return c
		}
		if c := strings.Compare(a.pod.Namespace, b.pod.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.pod.Name, b.pod.Name)
	})
	for i, p := range s.pods {
		p.shape = 1
		if i > 0 {
			prev := s.pods[i-1]
			p.shape = prev.shape
			if !slices.Equal(prev.requests, p.requests) {
				p.shape++
			}
		}
	}
}

// sizes are the prices sortPods values pods at: the first template's
// duals, or cpu alone when it has none.
func (s *solver) sizes() dualPrices {
	if len(s.templates) > 0 && (s.templates[0].duals.cpu > 0 || s.templates[0].duals.memory > 0) {
		return s.templates[0].duals
	}
	return dualPrices{cpu: 1}
}

func (s *solver) unschedulable(p *podInfo, reason string) {
	s.plan.Unschedulable = append(s.plan.Unschedulable, &PodError{Pod: p.pod, Reason: reason})
}

// place tries each variant of the pod, strictest first, on existing nodes,
// open claims and new claims. It returns the most relaxed variant's reason
// when nothing works.
func (s *solver) place(p *podInfo) (string, bool) {
	var reason string
	for _, at := range s.attempts(p) {
		v, level := at.variant, at.level
		q := s.topology.query(p, v, level, p.topo != nil && p.topo.hostnameSpread && s.canOpen(v))
		s.aloneMemo = s.aloneMemo[:0]
		nodeStart, claimStart, run := s.runs.resumeFrom(s.topology, p, v, level)
		last := lastPlacement{pod: p, variant: v, level: level, node: len(s.nodes)}
		if i := s.placeOnNode(q, nodeStart); i >= 0 {
			last.node = i
			s.runs.remember(s.topology, last, run)
			return "", true
		}
		hint, hinted := q.hint()
		hk := hintKey{variant: v, level: level, domain: hint}
		var order claimOrder
		switch free, ok := q.freeClaims(); {
		case ok:
			order = claimOrder{list: free, start: claimStart}
		case hinted:
			// Pods whose topology makes each claim's answer change as
			// others are placed cannot resume as plain pods do. Pods bound
			// for the same domain usually fit where the last one went,
			// and a scan from there finds it at once where a scan from
			// the first claim would ask every claim of every other domain
			// first. Every claim is still asked before a new one is made.
			order = claimOrder{start: s.hints[hk], wrap: true}
		default:
			order = claimOrder{start: claimStart}
		}
		i := s.placeOnClaim(q, order)
		if i < 0 {
			var ok bool
			if reason, ok = s.placeOnNewClaim(q); !ok {
				continue
			}
			i = len(s.claims) - 1
		}
		// An identical next pod starts looking at the claim this one
		// joined. Claims before it either refused this pod or were outbid
		// by it; skipping them keeps runs of identical pods linear and,
		// measured, packs no worse.
		last.claim = i
		s.runs.remember(s.topology, last, run)
		if hinted {
			s.hints[hk] = i
		}
		return "", true
	}
	return reason, false
}

type attempt struct {
	variant *variant
	level   int
}

// attempts orders the ways to try a pod, strictest first (see topology.go
// for the relaxation order): topology preferences are dropped with the
// strictest node variant, then node preferences are relaxed, then
// ScheduleAnyway spread, and PreferNoSchedule taints are tolerated last.
//
// The slice is the solver's own buffer, valid until the next call: place,
// its one caller, is done with it by then.
func (s *solver) attempts(p *podInfo) []attempt {
	levels, softSpread := s.topology.relaxations(p)
	out := s.attemptBuf[:0]
	last := levels[len(levels)-1]
	plain := 0
	for _, v := range p.class.variants {
		switch {
		case v.toleratePNS:
		case plain == 0:
			// The strictest variant goes through every relaxation level.
			for _, l := range levels {
				out = append(out, attempt{v, l})
			}
			plain++
		default:
			out = append(out, attempt{v, last})
			plain++
		}
	}
	if softSpread {
		last = levelNoSoftSpread
		for _, v := range p.class.variants {
			if !v.toleratePNS && !v.preferences {
				out = append(out, attempt{v, last})
			}
		}
	}
	for _, v := range p.class.variants {
		if v.toleratePNS {
			out = append(out, attempt{v, last})
		}
	}
	s.attemptBuf = out
	return out
}

// lastPlacement remembers where a pod went. Pods of one workload are sorted
// next to each other; when a later pod is identical (same class, same
// requests, no topology beyond hostnames), the nodes and claims before that
// pod's are unchanged since they turned it away, unless a pod was placed on
// one of them since, so the search resumes there instead of asking each of
// them again. Existing nodes would answer the same; a claim's join rule
// could in principle answer differently as fewer pods remain, and the solver
// accepts that approximation for a search linear in the number of workloads
// rather than of pods.
type lastPlacement struct {
	pod         *podInfo
	variant     *variant
	level       int
	node, claim int
	// seq is how many placements runMemo had logged when it was
	// remembered.
	seq int
}

// runMemo keeps the last placement of each of a few recent kinds of pod of
// the current shape (see podInfo.shape), so that runs of identical pods
// resume where they left off even when pods of other workloads with the same
// requests, sorted among them, come in between.
type runMemo struct {
	recent []lastPlacement
	// changes logs every placement in order: a claim's index, or -1-i for
	// existing node i.
	changes []int
}

// maxRecentRuns bounds the kinds of pod runMemo remembers.
const maxRecentRuns = 16

func (r *runMemo) find(t *topology, p *podInfo, v *variant, level int) int {
	for i := range r.recent {
		l := &r.recent[i]
		if l.pod.shape == p.shape && l.variant == v && l.level == level && l.pod.class == p.class &&
			slices.Equal(l.pod.hostPorts, p.hostPorts) && t.alike(l.pod, p) {
			return i
		}
	}
	return -1
}

// resumeFrom returns the first existing node and claim worth asking about
// p, and which remembered run p continues (-1: none; see remember).
func (r *runMemo) resumeFrom(t *topology, p *podInfo, v *variant, level int) (node, claim, run int) {
	run = r.find(t, p, v, level)
	if run < 0 {
		return 0, 0, run
	}
	node, claim = r.recent[run].node, r.recent[run].claim
	for _, ch := range r.changes[r.recent[run].seq:] {
		if ch < 0 {
			node = min(node, -1-ch)
		} else {
			claim = min(claim, ch)
		}
	}
	return node, claim, run
}

// changed logs a placement on a claim (its index) or on existing node i
// (-1-i).
func (r *runMemo) changed(change int) { r.changes = append(r.changes, change) }

// remember keeps l, the placement just logged, for pods like l.pod; run is
// what resumeFrom said of l.pod.
func (r *runMemo) remember(t *topology, l lastPlacement, run int) {
	l.seq = len(r.changes)
	if run >= 0 {
		r.recent[run] = l
		return
	}
	if !t.alike(l.pod, l.pod) {
		return
	}
	if len(r.recent) > 0 && r.recent[0].pod.shape != l.pod.shape {
		// Pods of one shape are sorted together: no pod to come has
		// the requests of those remembered.
		r.recent = r.recent[:0]
	}
	if len(r.recent) == maxRecentRuns {
		r.recent = append(r.recent[:0], r.recent[1:]...)
	}
	r.recent = append(r.recent, l)
}

func (s *solver) variantTemplate(v *variant, ct *compiledTemplate) *variantTemplate {
	vt := v.perTemplate[ct.index]
	if vt == nil {
		vt = compileVariantTemplate(ct, v, v.class.tolerations, s.dims)
		*s.variantTemplates++
		vt.id = *s.variantTemplates
		v.perTemplate[ct.index] = vt
	}
	return vt
}

// placeOnNode puts the pod on the first existing node from start that takes
// it and returns its index, or -1.
func (s *solver) placeOnNode(q *topoQuery, start int) int {
	p, v := q.p, q.v
	for i := start; i < len(s.nodes); i++ {
		n := s.nodes[i]
		if !n.schedulable || !fits(p.requests, n.free) || portsConflict(n.ports, p.hostPorts) {
			continue
		}
		if _, bad := untoleratedTaint(n.taints, p.class.tolerations, v.toleratePNS); bad {
			continue
		}
		if !v.reqs.MatchesLabels(n.labels) || !q.allowsNode(n) {
			continue
		}
		s.addToNode(i, p)
		return i
	}
	return -1
}

// addToNode puts p on existing node i.
func (s *solver) addToNode(i int, p *podInfo) {
	n := s.nodes[i]
	n.free.sub(p.requests)
	n.ports = append(n.ports, p.hostPorts...)
	n.placed = append(n.placed, p.pod)
	s.topology.placed(p, n)
	s.runs.changed(-1 - i)
}

// claimHostnamePrefix starts every claim's placeholder hostname.
const claimHostnamePrefix = "fleetpack-claim-"

// claimHostname is the placeholder hostname of the claim at index i.
func claimHostname(i int) string { return fmt.Sprintf("%s%04d", claimHostnamePrefix, i+1) }

// hintKey names a kind of pod (variant, level) bound for one topology domain.

type hintKey struct {
	variant *variant
	level   int
	domain  string
}

// claimOrder is the order a scan asks the open claims in: those of list
// (ascending indices), when not nil, from start; else every claim from
// start, wrapping around to the first when wrap.
type claimOrder struct {
	list  []int
	start int
	wrap  bool
}

// placeOnClaim adds the pod to the first open claim in order that takes
// it and returns that claim's index, or -1. First fit plans cheaper than
// weighing several accepting claims for the least price rise: that rule
// saved 10% while spare cpu was priced by burstable types (see value.go),
// and with room priced by the types that hold the median pod it cost 2% to
// 5% more on every benchmark size.
func (s *solver) placeOnClaim(q *topoQuery, order claimOrder) int {
	list, n, from := order.list, len(s.claims), order.start
	if list != nil {
		n = len(list)
		from, _ = slices.BinarySearch(list, order.start)
	}
	count := n - from
	if order.wrap {
		count = n
	}
	for k := range count {
		i := from + k
		if i >= n {
			i -= n
		}
		if list != nil {
			i = list[i]
		}
		if o, ok := s.offer(s.claims[i], q); ok {
			s.add(s.claims[i], q.p, o)
			return i
		}
	}
	return -1
}

// joinOffer is how a claim would take a pod: under variant template vt,
// and, when list is not nil, with its requirements narrowed to reqs and
// its candidate types to list, whose front from index first holds the
// grown claim.
type joinOffer struct {
	vt    *variantTemplate
	reqs  Requirements
	list  *typeList
	first int
}

// offer decides whether claim c takes the pod of q: some type still holds
// everything, topology allows it, and the claim's price rises by no more
// than a node of the pod's own would cost. It writes nothing but memos;
// add carries the offer out.
func (s *solver) offer(c *claim, q *topoQuery) (joinOffer, bool) {
	p := q.p
	for d, r := range p.requests {
		if r > c.list.maxAvail[d]-c.requests[d] {
			return joinOffer{}, false
		}
	}
	vt := s.variantTemplate(q.v, c.ct)
	if !vt.ok {
		return joinOffer{}, false
	}
	// An identical pod was refused by the join rule, and the claim has not
	// changed since: skip the rule's scan of the claim's types. As for
	// runs of identical pods (see lastPlacement), the rule could answer
	// otherwise with fewer pods to come; the solver accepts that. A
	// template under limits is left out: its limits change as other claims
	// reserve capacity.
	if r := c.refused; r.shape == p.shape && r.vt == vt.id && r.bound == q.bound {
		return joinOffer{}, false
	}
	if portsConflict(c.ports, p.hostPorts) || (q.constrains() && q.rulesOut(c)) {
		return joinOffer{}, false
	}
	aloneType, alonePrice, ok := vt.alone(p.requests)
	if !ok {
		return joinOffer{}, false
	}
	// A pod bound to a topology domain could not have a node of its own
	// just anywhere: price that node in the claim's domain, or joining an
	// on-demand claim in the one zone spread allows looks worse than a
	// Spot node in a zone the pod may not use.
	if q.bound {
		if aloneType, alonePrice, ok = s.aloneIn(c, c.list.all, c.list.allPrices, p); !ok {
			return joinOffer{}, false
		}
	}
	// The cheapest front type that holds the pod must be worth growing
	// into: narrowing the requirements or the domain only removes types
	// and raises prices. Under the same requirements that settles it.
	if !s.worthTrying(c, p, aloneType, alonePrice) {
		if !c.ct.limitedResources {
			c.refused = refusal{shape: p.shape, vt: vt.id, bound: q.bound}
		}
		return joinOffer{}, false
	}
	absorbed := slices.Contains(c.absorbed, vt)
	if absorbed && !q.constrains() {
		return joinOffer{vt: vt}, true
	}
	reqs := &c.reqs
	var cache map[string][]string
	if absorbed {
		if c.values == nil {
			c.values = map[string][]string{}
		}
		cache = c.values
	} else {
		// Declared here, not above: its address escapes, and a heap
		// allocation on every probe showed up as most of the topology
		// benchmark's allocations.
		merged := c.reqs.Intersect(vt.reqs)
		if c.ct.keyConflict(&merged) != nil {
			return joinOffer{}, false
		}
		reqs = &merged
	}
	cands, _, ok := q.claimRequirements(c, reqs, c.list.all, cache)
	switch {
	case !ok:
		return joinOffer{}, false
	case cands == nil && absorbed:
		return joinOffer{vt: vt}, true
	case cands == nil:
		cands = []candidate{{base: reqs}}
	}
	return s.offerInDomain(c, q, vt, absorbed, cands)
}

// offerInDomain is offer for a claim whose requirements narrow, to cands,
// tried in order: candidates come emptiest domain first. The first domain
// with a type that holds the pod decides, except that the equally empty
// domains after it compete with it on price (Spot prices differ by zone):
// the cheapest the join rule accepts wins, the first of equals.
func (s *solver) offerInDomain(c *claim, q *topoQuery, vt *variantTemplate, absorbed bool, cands []candidate) (joinOffer, bool) {
	p := q.p
	aloneType, alonePrice, _ := vt.alone(p.requests)
	best, bestList, bestFirst, bestPrice, decided, load := -1, (*typeList)(nil), 0, 0.0, false, 0
	for i := range cands {
		if decided && cands[i].load != load {
			break
		}
		list := s.narrowed(c, vt, absorbed, &cands[i])
		if q.bound {
			var ok bool
			if aloneType, alonePrice, ok = s.aloneIn(c, list.all, list.allPrices, p); !ok {
				continue
			}
		}
		if j := s.firstHolding(c, list, p.requests); j >= 0 {
			decided, load = true, cands[i].load
			if price := list.frontPrices[j]; s.worthJoining(c, p, list.front[j], price, aloneType, alonePrice) && (best < 0 || price < bestPrice) {
				best, bestList, bestFirst, bestPrice = i, list, j, price
			}
		}
	}
	if best < 0 {
		return joinOffer{}, false
	}
	return joinOffer{vt: vt, reqs: cands[best].reqs(), list: bestList, first: bestFirst}, true
}

// aloneIn returns the cheapest of types (sorted cheapest first) that holds
// p, the pod of the current attempt, by itself.
func (s *solver) aloneIn(c *claim, types []int32, prices []float64, p *podInfo) (int32, float64, bool) {
	if len(types) == 0 {
		return 0, 0, false
	}
	// Claims share their type lists, so during an attempt the same few
	// lists come back claim after claim.
	for _, e := range s.aloneMemo {
		if e.src == &types[0] && e.n == len(types) {
			return e.t, e.price, e.ok
		}
	}
	e := aloneEntry{src: &types[0], n: len(types)}
	for i, t := range types {
		if fits(p.requests, c.ct.types[t].avail) {
			e.t, e.price, e.ok = t, prices[i], true
			break
		}
	}
	s.aloneMemo = append(s.aloneMemo, e)
	return e.t, e.price, e.ok
}

// aloneEntry is aloneIn's answer for one type list during a scan.
type aloneEntry struct {
	src   *int32
	n     int
	t     int32
	price float64
	ok    bool
}

type narrowKey struct {
	vt                 *variantTemplate
	key, value, prefix string
}

// narrowed returns the claim's types that satisfy cand (and vt, unless
// absorbed), cheapest first under cand, with their Pareto front. Types that
// no longer hold the claim's pods may remain: the scans check fit, and
// finish filters. The lists depend only on the claim's list (shared by every
// claim made the same way), vt and cand, so claims and pods share them: a
// domain is narrowed once per solve, not once per claim or probe. Under
// resource limits a claim's list also depends on what the limits leave, so
// limited templates narrow per claim.
func (s *solver) narrowed(c *claim, vt *variantTemplate, absorbed bool, cand *candidate) *typeList {
	filter := vt
	if absorbed {
		filter = nil
	}
	if c.ct.limitedResources {
		key := narrowKey{vt: filter, key: cand.key, value: cand.value, prefix: cand.prefix}
		if nl, ok := c.narrowCache[key]; ok {
			return nl
		}
		nl := s.narrowList(c, c.list.all, filter, cand)
		if c.narrowCache == nil {
			c.narrowCache = map[narrowKey]*typeList{}
		}
		c.narrowCache[key] = nl
		return nl
	}
	return s.sharedNarrowList(c, c.list.all, filter, cand)
}

type sharedNarrowKey struct {
	src *int32
	n   int
	narrowKey
}

func (s *solver) sharedNarrowList(c *claim, src []int32, filter *variantTemplate, cand *candidate) *typeList {
	if len(src) == 0 {
		return &typeList{}
	}
	key := sharedNarrowKey{src: &src[0], n: len(src), narrowKey: narrowKey{vt: filter, key: cand.key, value: cand.value, prefix: cand.prefix}}
	if nl, ok := s.narrowShared[key]; ok {
		return nl
	}
	nl := s.narrowList(c, src, filter, cand)
	if s.narrowShared == nil {
		s.narrowShared = map[sharedNarrowKey]*typeList{}
	}
	s.narrowShared[key] = nl
	return nl
}

// narrowList filters src to the types that satisfy cand (and filter, if
// set), sorted cheapest first under cand, with their front.
func (s *solver) narrowList(c *claim, src []int32, filter *variantTemplate, cand *candidate) *typeList {
	nl := &typeList{}
	reqs := cand.reqs()
	mask := c.ct.ox.mask(&reqs)
	for _, t := range src {
		if filter != nil && !filter.has(t) {
			continue
		}
		if c.ct.limitedResources && !s.typeFits(c, t, nil) {
			continue
		}
		ti := &c.ct.types[t]
		if !c.ct.matches(&reqs, ti, mask) {
			continue
		}
		price, _ := ti.price(mask)
		nl.all = append(nl.all, t)
		nl.allPrices = append(nl.allPrices, price)
	}
	sortByPrice(c.ct, nl.all, nl.allPrices)
	nl.front, nl.frontPrices = paretoFront(c.ct, nl.all, nl.allPrices)
	nl.maxAvail = maxAvail(c.ct, nl.all, s.dims.len())
	return nl
}

// typeFits reports whether type t holds the claim's pods plus extra, within
// the template's limits.
func (s *solver) typeFits(c *claim, t int32, extra vec) bool {
	ti := &c.ct.types[t]
	if extra == nil {
		if !fits(c.requests, ti.avail) {
			return false
		}
	} else if !fitsWith(c.requests, extra, ti.avail) {
		return false
	}
	if c.ct.limitedResources {
		if ti.capacity[dimCPU] > c.ct.remainingCPU+c.reservedCPU || ti.capacity[dimMemory] > c.ct.remainingMemory+c.reservedMem {
			return false
		}
	}
	return true
}

// add puts p on claim c as offer o says: under narrower requirements and
// types if o has them, counted in the claim's requests and the topology.
func (s *solver) add(c *claim, p *podInfo, o joinOffer) {
	if o.list != nil {
		c.reqs = o.reqs
		c.list = *o.list
		c.list.front, c.list.frontPrices = c.list.front[o.first:], c.list.frontPrices[o.first:]
		// Requirements only narrow, so every variant absorbed before
		// stays absorbed.
		c.absorbed = append(c.absorbed, o.vt)
		c.values = nil
		c.narrowCache = nil
	}
	c.requests.add(p.requests)
	c.pods = append(c.pods, p.pod)
	c.ports = append(c.ports, p.hostPorts...)
	c.refused = refusal{}
	// Front types cheaper than the first that holds the grown claim never
	// will again.
	for len(c.list.front) > 1 && !s.typeFits(c, c.list.front[0], nil) {
		c.list.front, c.list.frontPrices = c.list.front[1:], c.list.frontPrices[1:]
	}
	s.reserveLimits(c)
	s.topology.placed(p, c)
	s.runs.changed(c.index)
}

// maxAvail is the per-dimension maximum avail over types.
func maxAvail(ct *compiledTemplate, types []int32, dims int) vec {
	out := make(vec, dims)
	for _, t := range types {
		for d, a := range ct.types[t].avail {
			out[d] = max(out[d], a)
		}
	}
	return out
}

// paretoFront keeps, of types sorted cheapest first, those that no cheaper
// (or equally priced, earlier) kept type dominates in every resource. A
// dominated type is never the cheapest that fits, so scans for the type a
// claim grows into need only the front: tens of types instead of hundreds.
// Under resource limits a bigger type may be barred where a smaller one is
// not, so limited templates keep every type.
func paretoFront(ct *compiledTemplate, types []int32, prices []float64) ([]int32, []float64) {
	if ct.limitedResources {
		return types, prices
	}
	var front []int32
	var frontPrices []float64
	// A type bigger in some resource than every kept type cannot be
	// dominated; with sizes growing with price, as in most catalogs, that
	// settles nearly every type without comparing it to the whole front.
	var ceiling vec
	for i, t := range types {
		avail := ct.types[t].avail
		dominated := false
		if ceiling != nil && fits(avail, ceiling) {
			// Dearest first: the kept types grow with price, so a late one
			// is the likeliest to be at least as big.
			for k := len(front) - 1; k >= 0; k-- {
				if fits(avail, ct.types[front[k]].avail) {
					dominated = true
					break
				}
			}
		}
		if !dominated {
			front = append(front, t)
			frontPrices = append(frontPrices, prices[i])
			if ceiling == nil {
				ceiling = slices.Clone(avail)
			}
			for d, a := range avail {
				ceiling[d] = max(ceiling[d], a)
			}
		}
	}
	return front, frontPrices
}

// reserveLimits holds back, from a limited template's remaining cpu and
// memory, the capacity of the largest type the claim may launch as.
func (s *solver) reserveLimits(c *claim) {
	if !c.ct.limitedResources {
		return
	}
	// Types bigger than the limits leave are dropped, or a claim that grows
	// could list a type that takes the pool past its limits; finish lists
	// the same types (those within the reservation).
	budgetCPU, budgetMem := c.ct.remainingCPU+c.reservedCPU, c.ct.remainingMemory+c.reservedMem
	var maxCPU, maxMem int64
	n := 0
	for _, t := range c.list.all {
		ti := &c.ct.types[t]
		if !fits(c.requests, ti.avail) || ti.capacity[dimCPU] > budgetCPU || ti.capacity[dimMemory] > budgetMem {
			continue
		}
		maxCPU, maxMem = max(maxCPU, ti.capacity[dimCPU]), max(maxMem, ti.capacity[dimMemory])
		if n++; n == s.maxTypes {
			break
		}
	}
	c.ct.remainingCPU += c.reservedCPU - maxCPU
	c.ct.remainingMemory += c.reservedMem - maxMem
	c.reservedCPU, c.reservedMem = maxCPU, maxMem
}

// placeOnNewClaim opens a claim from the first template (by weight) that can
// hold the pod, or returns why none can.
func (s *solver) placeOnNewClaim(q *topoQuery) (string, bool) {
	reasons := make([]string, 0, len(s.templates))
	for _, ct := range s.templates {
		c := &claim{ct: ct, requests: make(vec, s.dims.len()), index: len(s.claims), hostname: claimHostname(len(s.claims)),
			ports: slices.Clone(ct.daemonSetPorts)}
		o, reason := s.newClaimOffer(c, q)
		if o.list == nil {
			reasons = append(reasons, fmt.Sprintf("nodepool %s: %s", ct.t.NodePool, reason))
			continue
		}
		ct.remainingNodes--
		s.claims = append(s.claims, c)
		s.topology.opened(c.index)
		s.add(c, q.p, o)
		return "", true
	}
	if len(s.templates) == 0 {
		return "no node template (NodePool) to create a node from, and no existing node fits", false
	}
	if len(reasons) == 1 {
		return strings.TrimPrefix(reasons[0], "nodepool "+s.templates[0].t.NodePool+": "), false
	}
	return strings.Join(reasons, "; "), false
}

// newClaimOffer decides how c, a claim not yet open, would take the pod of
// q: with which requirements and types. Without a list it says why c
// cannot.
func (s *solver) newClaimOffer(c *claim, q *topoQuery) (joinOffer, string) {
	ct, p := c.ct, q.p
	vt := s.variantTemplate(q.v, ct)
	switch {
	case !vt.ok:
		return joinOffer{}, vt.reason
	case ct.remainingNodes < 1:
		return joinOffer{}, "node limit reached"
	case portsConflict(ct.daemonSetPorts, p.hostPorts):
		return joinOffer{}, "a daemonset takes a host port the pod needs"
	}
	if vt.values == nil {
		vt.values = map[string][]string{}
	}
	cands, why, ok := q.claimRequirements(c, &vt.reqs, vt.list.all, vt.values)
	if !ok {
		return joinOffer{}, s.topology.explain(why)
	}
	if cands == nil {
		list := s.newClaimList(c, vt, nil)
		if first := s.firstHolding(c, list, p.requests); first >= 0 {
			// A copy: plans hand claims' requirements to callers, who
			// may change them.
			return joinOffer{vt: vt, reqs: vt.reqs.Clone(), list: list, first: first}, ""
		}
		return joinOffer{}, s.resourceReason(ct, vt, p.requests)
	}
	// Among the emptiest domains, the cheapest (see offerInDomain).
	best, bestList, bestFirst := -1, (*typeList)(nil), 0
	for i := range cands {
		if best >= 0 && cands[i].load != cands[best].load {
			break
		}
		list := s.newClaimList(c, vt, &cands[i])
		if j := s.firstHolding(c, list, p.requests); j >= 0 && (best < 0 || list.frontPrices[j] < bestList.frontPrices[bestFirst]) {
			best, bestList, bestFirst = i, list, j
		}
	}
	if best >= 0 {
		return joinOffer{vt: vt, reqs: cands[best].reqs(), list: bestList, first: bestFirst}, ""
	}
	if s.firstHolding(c, s.newClaimList(c, vt, nil), p.requests) < 0 {
		return joinOffer{}, s.resourceReason(ct, vt, p.requests)
	}
	// The pod fits; the topology domains it may use do not.
	if why.kind != failNone {
		return joinOffer{}, s.topology.explain(why)
	}
	return joinOffer{}, "no instance type has an available offering in the topology domains the pod may use"
}

// canOpen reports whether some template could make a new node for pods of
// variant v: a new node is then a hostname domain with no pods.
func (s *solver) canOpen(v *variant) bool {
	for _, ct := range s.templates {
		if vt := s.variantTemplate(v, ct); vt.ok && ct.remainingNodes > 0 {
			return true
		}
	}
	return false
}

// newClaimList returns the types a new claim c of vt would have under cand
// (nil: vt's own requirements).
func (s *solver) newClaimList(c *claim, vt *variantTemplate, cand *candidate) *typeList {
	switch {
	case cand == nil && !c.ct.limitedResources:
		// The common case shares the variant's lists instead of copying
		// hundreds of types per claim.
		return &vt.list
	case cand == nil:
		// Under resource limits the lists drop types too big for what
		// the limits leave.
		return s.narrowList(c, vt.list.all, nil, &candidate{base: &vt.reqs})
	case c.ct.limitedResources:
		return s.narrowList(c, vt.list.all, nil, cand)
	default:
		return s.sharedNarrowList(c, vt.list.all, nil, cand)
	}
}

// offeringReason explains a pod that some instance type of the template
// would hold, were its offerings not all unavailable (EC2 refused them
// recently) or outside the zones and capacity types allowed: saying "no
// type is big enough" there would send users after the wrong cause.
func (s *solver) offeringReason(ct *compiledTemplate, vt *variantTemplate, req vec) (string, bool) {
	zone, capacityType := vt.reqs.Get(offerings.LabelZone), vt.reqs.Get(offerings.LabelCapacityType)
	capacity, alloc := make(vec, s.dims.len()), make(vec, s.dims.len())
	for i, it := range ct.t.InstanceTypes {
		if !typeLabelsMatch(ct.typeKeys, &vt.reqs, it) {
			continue
		}
		if ct.compiled[i].vectors(s.dims, capacity, alloc); !fits(req, alloc) {
			continue
		}
		allowed, available := false, false
		for _, o := range it.Offerings {
			if offeringAllowed(zone, capacityType, o) {
				allowed = true
				available = available || o.Available
			}
		}
		if !allowed || available {
			continue
		}
		zones, capacityTypes := "any zone", "any capacity type"
		if zone != nil {
			zones = zone.String()
		}
		if capacityType != nil {
			capacityTypes = capacityType.String()
		}
		return fmt.Sprintf("instance types that fit %s (such as %s) have no available offering for %s and %s: EC2 refused that capacity recently, and it is retried when the marks expire",
			s.dims.describe(req), it.Name, zones, capacityTypes), true
	}
	return "", false
}

// resourceReason explains why no type of the template holds the pod.
func (s *solver) resourceReason(ct *compiledTemplate, vt *variantTemplate, req vec) string {
	if reason, ok := s.offeringReason(ct, vt, req); ok {
		return reason
	}
	for d, r := range req {
		if max := vt.list.maxAvail[d]; r > max {
			if max <= 0 {
				return fmt.Sprintf("no instance type has %s %s after overhead; none offers %s", s.dims.format(d, r), s.dims.names[d], s.dims.names[d])
			}
			return fmt.Sprintf("no instance type has %s %s after overhead; largest allocatable is %s", s.dims.format(d, r), s.dims.names[d], s.dims.format(d, max))
		}
	}
	if ct.limitedResources {
		probe := &claim{ct: ct, requests: make(vec, s.dims.len())}
		limited := true
		for _, t := range vt.list.all {
			if fits(req, ct.types[t].avail) && s.typeFits(probe, t, req) {
				limited = false
				break
			}
		}
		if limited {
			// Name only the limited resources: an unlimited one's remainder
			// is a meaningless huge number.
			var left []string
			if _, ok := ct.t.Limits[corev1.ResourceCPU]; ok {
				left = append(left, "cpu "+s.dims.format(dimCPU, max(ct.remainingCPU, 0)))
			}
			if _, ok := ct.t.Limits[corev1.ResourceMemory]; ok {
				left = append(left, "memory "+s.dims.format(dimMemory, max(ct.remainingMemory, 0)))
			}
			return fmt.Sprintf("nodepool limits leave %s, too little for any instance type that fits the pod", strings.Join(left, " and "))
		}
	}
	return fmt.Sprintf("no single instance type fits %s together", s.dims.describe(req))
}

func (s *solver) finish() *Plan {
	for _, c := range s.claims {
		claim := &NodeClaim{
			Template:     c.ct.t,
			Hostname:     c.hostname,
			Requirements: c.reqs,
			Pods:         c.pods,
			PodRequests:  s.dims.list(c.requests),
		}
		types := s.claimTypes(c)
		claim.InstanceTypes = make([]*offerings.InstanceType, len(types))
		for i, t := range types {
			claim.InstanceTypes[i] = c.ct.types[t].it
		}
		first := c.list.front[0]
		if len(types) > 0 {
			first = types[0]
		}
		claim.DaemonSetRequests = s.dims.list(c.ct.types[first].daemonSet)
		s.plan.NodeClaims = append(s.plan.NodeClaims, claim)
	}
	for _, n := range s.nodes {
		if len(n.placed) > 0 {
			s.plan.ExistingNodes = append(s.plan.ExistingNodes, &NodePlacement{Node: n.node, Pods: n.placed})
		}
	}
	return &s.plan
}
