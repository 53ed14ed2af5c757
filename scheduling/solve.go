package scheduling

import (
	"cmp"
	"fmt"
	"math"
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
// Pods are taken largest first (cpu, then memory, then namespace/name). Each
// pod goes to the first existing node it fits, else to the first open claim
// it can join without raising that claim's price by more than a node of its
// own would cost, else to a new claim from the highest-weight template that
// can hold it. Preferences (preferred node affinity, PreferNoSchedule taints)
// are treated as required until a pod cannot be placed with them, then
// relaxed one at a time.
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
	topology  *topology
	plan      Plan
	// scanPod is the pod scanning the claims, and aloneMemo what aloneIn
	// found for it (see beginScan).
	scanPod   *podInfo
	aloneMemo []aloneEntry
	// hints remember where the last pod bound for a domain went.
	hints map[hintKey]int
	// narrowShared caches claim type lists narrowed to topology domains.
	narrowShared map[sharedNarrowKey]*narrowedTypes
	// remaining is the cpu and memory of pods not yet placed.
	remaining [2]int64
	last      lastPlacement
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
	narrowCache map[narrowKey]*narrowedTypes
	// all is every candidate type, cheapest first under reqs; some may no
	// longer fit (finish filters them). It may be shared with a
	// variantTemplate and is never written in place.
	all       []int32
	allPrices []float64
	// types is the part of all's Pareto front (see paretoFront) from the
	// cheapest type that holds the claim: the only types a join can grow
	// into. Also shared, resliced only.
	types    []int32
	prices   []float64
	requests vec
	// maxAvail is, per dimension, the most any of types offers; a pod
	// that needs more than maxAvail-requests cannot join.
	maxAvail    vec
	pods        []*corev1.Pod
	ports       []hostPort
	index       int
	hostname    string
	reservedCPU int64
	reservedMem int64
}

// isEphemeralTaint reports taints put on every node while it starts; pods
// are scheduled to in-flight nodes regardless, as the kube-scheduler will
// once they clear. (A function, not a map: no package-level mutable state.)
func isEphemeralTaint(key string) bool {
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
		if !isEphemeralTaint(t.Key) {
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

func (s *solver) solve() *Plan {
	s.sortPods()
	for _, p := range s.pods {
		s.remaining[0] += p.requests[dimCPU]
		s.remaining[1] += p.requests[dimMemory]
	}
	for _, p := range s.pods {
		s.remaining[0] -= p.requests[dimCPU]
		s.remaining[1] -= p.requests[dimMemory]
		if p.class.err != nil {
			s.unschedulable(p, p.class.err.Error())
			continue
		}
		if reason, ok := s.place(p); !ok {
			s.unschedulable(p, reason)
		}
	}
	return s.finish()
}

// sortPods orders pods largest first, where size is the pod's cpu and memory
// valued at the first template's dual prices (see value.go), so that a
// memory-heavy pod counts as large as a cpu-heavy one of the same worth.
// Names break ties so that input order does not change the plan.
func (s *solver) sortPods() {
	d := dualPrices{cpu: 1}
	if len(s.templates) > 0 && (s.templates[0].duals.cpu > 0 || s.templates[0].duals.memory > 0) {
		d = s.templates[0].duals
	}
	for _, p := range s.pods {
		p.size = d.cpu*float64(p.requests[dimCPU]) + d.memory*float64(p.requests[dimMemory])
	}
	slices.SortStableFunc(s.pods, func(a, b *podInfo) int {
		return cmp.Or(
			cmp.Compare(b.size, a.size),
			cmp.Compare(b.requests[dimCPU], a.requests[dimCPU]),
			cmp.Compare(b.requests[dimMemory], a.requests[dimMemory]),
			strings.Compare(a.pod.Namespace, b.pod.Namespace),
			strings.Compare(a.pod.Name, b.pod.Name),
		)
	})
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
		nodeStart, claimStart := s.resumeFrom(p, v, level)
		if i := s.placeOnNode(p, v, level, nodeStart); i >= 0 {
			s.last = lastPlacement{pod: p, variant: v, level: level, node: i}
			return "", true
		}
		hint, hinted := s.topology.domainHint(p, v, level)
		hk := hintKey{variant: v, level: level, domain: hint}
		var i int
		switch free, ok := s.topology.freeClaims(p, level); {
		case ok:
			i = s.placeOnClaimList(p, v, level, free, claimStart)
		case hinted:
			i = s.placeOnClaimFrom(p, v, level, s.hints[hk])
		default:
			i = s.placeOnClaim(p, v, level, claimStart)
		}
		if i >= 0 {
			// An identical next pod starts looking at the claim this one
			// joined. Claims before it either refused this pod or were
			// outbid by it; skipping them keeps runs of identical pods
			// linear and, measured, packs no worse.
			s.last = lastPlacement{pod: p, variant: v, level: level, node: len(s.nodes), claim: i}
			if hinted {
				s.hints[hk] = i
			}
			return "", true
		}
		var ok bool
		if reason, ok = s.placeOnNewClaim(p, v, level); ok {
			s.last = lastPlacement{pod: p, variant: v, level: level, node: len(s.nodes), claim: len(s.claims) - 1}
			if hinted {
				s.hints[hk] = len(s.claims) - 1
			}
			return "", true
		}
	}
	s.last = lastPlacement{}
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
func (s *solver) attempts(p *podInfo) []attempt {
	var plain, pns []*variant
	for _, v := range p.class.variants {
		if v.toleratePNS {
			pns = append(pns, v)
		} else {
			plain = append(plain, v)
		}
	}
	levels := s.topology.levels(p)
	out := make([]attempt, 0, len(p.class.variants)+2*len(levels))
	for _, l := range levels {
		out = append(out, attempt{plain[0], l})
	}
	last := levels[len(levels)-1]
	for _, v := range plain[1:] {
		out = append(out, attempt{v, last})
	}
	if s.topology.softSpread(p) {
		last = levelNoSoftSpread
		for _, v := range plain {
			if !v.preferences {
				out = append(out, attempt{v, last})
			}
		}
	}
	for _, v := range pns {
		out = append(out, attempt{v, last})
	}
	return out
}

// lastPlacement remembers where the previous pod went. Pods of one workload
// are sorted next to each other; when the next pod is identical (same class,
// same requests, no topology constraints), the nodes and claims before the
// previous pod's are unchanged since they turned that pod away, so the search
// resumes there instead of asking each of them again. Existing nodes would
// answer the same; a claim's join rule could in principle answer differently
// as fewer pods remain, and the solver accepts that approximation for a
// search linear in the number of workloads rather than of pods.
type lastPlacement struct {
	pod         *podInfo
	variant     *variant
	level       int
	node, claim int
}

func (s *solver) resumeFrom(p *podInfo, v *variant, level int) (int, int) {
	l := &s.last
	if l.pod == nil || l.variant != v || l.level != level || l.pod.class != p.class || !s.topology.independent(p) ||
		!slices.Equal(l.pod.requests, p.requests) || !slices.Equal(l.pod.hostPorts, p.hostPorts) || !s.topology.sameTopology(l.pod, p) {
		return 0, 0
	}
	return l.node, l.claim
}

func (s *solver) variantTemplate(v *variant, ct *compiledTemplate) *variantTemplate {
	vt := v.perTemplate[ct.index]
	if vt == nil {
		vt = compileVariantTemplate(ct, v, v.class.tolerations, s.dims)
		v.perTemplate[ct.index] = vt
	}
	return vt
}

// placeOnNode puts p on the first existing node from start that takes it and
// returns its index, or -1.
func (s *solver) placeOnNode(p *podInfo, v *variant, level, start int) int {
	for i := start; i < len(s.nodes); i++ {
		n := s.nodes[i]
		if !n.schedulable || !fits(p.requests, n.free) || portsConflict(n.ports, p.hostPorts) {
			continue
		}
		if _, bad := untoleratedTaint(n.taints, p.class.tolerations, v.toleratePNS); bad {
			continue
		}
		if !v.reqs.MatchesLabels(n.labels) || !s.topology.allowsNode(p, v, level, n) {
			continue
		}
		n.free.sub(p.requests)
		n.ports = append(n.ports, p.hostPorts...)
		n.placed = append(n.placed, p.pod)
		s.topology.record(p, n.node.Labels, n.node, nil)
		return i
	}
	return -1
}

// hintKey names a kind of pod (variant, level) bound for one topology domain.
// claimHostnamePrefix starts every claim's placeholder hostname.
const claimHostnamePrefix = "fleetpack-claim-"

type hintKey struct {
	variant *variant
	level   int
	domain  string
}

// placeOnClaimFrom is placeOnClaim starting at claim start and wrapping
// around, for pods whose topology makes each claim's answer change as
// others are placed (so the search cannot resume as for plain pods). Pods
// bound for the same domain usually fit where the last one went, and a scan
// from there finds it at once where a scan from the first claim would ask
// every claim of every other domain first. Every claim is still asked
// before a new one is made.
func (s *solver) placeOnClaimFrom(p *podInfo, v *variant, level, start int) int {
	s.beginScan(p, v, level)
	defer s.endScan()
	n := len(s.claims)
	for k := 0; k < n; k++ {
		i := (start + k) % n
		if s.tryClaim(s.claims[i], p, v, level) {
			return i
		}
	}
	return -1
}

// placeOnClaimList tries the listed claims (ascending indices) from start.
func (s *solver) placeOnClaimList(p *podInfo, v *variant, level int, list []int, start int) int {
	s.beginScan(p, v, level)
	defer s.endScan()
	for _, i := range list[sortSearch(list, start):] {
		if s.tryClaim(s.claims[i], p, v, level) {
			return i
		}
	}
	return -1
}

func sortSearch(list []int, x int) int {
	i, _ := slices.BinarySearch(list, x)
	return i
}

// placeOnClaim adds p to the first open claim from start that takes it
// and returns that claim's index, or -1. First fit plans cheaper than
// weighing several accepting claims for the least price rise: that rule saved
// 10% while spare cpu was priced by burstable types (see value.go), and with
// room priced by the types that hold the median pod it cost 2% to 5% more
// on every benchmark size.
func (s *solver) placeOnClaim(p *podInfo, v *variant, level, start int) int {
	s.beginScan(p, v, level)
	defer s.endScan()
	for i := start; i < len(s.claims); i++ {
		if s.tryClaim(s.claims[i], p, v, level) {
			return i
		}
	}
	return -1
}

// tryClaim adds p to c if some type still holds everything and the claim's
// price rises by no more than a node of p's own would cost.
func (s *solver) tryClaim(c *claim, p *podInfo, v *variant, level int) bool {
	for d, r := range p.requests {
		if r > c.maxAvail[d]-c.requests[d] {
			return false
		}
	}
	if portsConflict(c.ports, p.hostPorts) || s.topology.quickReject(p, v, level, c) {
		return false
	}
	vt := s.variantTemplate(v, c.ct)
	if !vt.ok {
		return false
	}
	aloneType, alonePrice, ok := vt.alone(p.requests)
	if !ok {
		return false
	}
	// A pod bound to a topology domain could not have a node of its own
	// just anywhere: price that node in the claim's domain, or joining an
	// on-demand claim in the one zone spread allows looks worse than a
	// Spot node in a zone the pod may not use.
	bound := s.topology.domainBound(p, level)
	if bound {
		if aloneType, alonePrice, ok = s.aloneIn(c, c.all, c.allPrices, p); !ok {
			return false
		}
	}
	reqs := &c.reqs
	absorbed := slices.Contains(c.absorbed, vt)
	var cands []candidate
	if !absorbed || s.topology.constrains(p, level) {
		// The cheapest front type that holds the pod must be worth
		// growing into before requirements and topology are worked out:
		// narrowing only removes types and raises prices.
		if !s.worthTrying(c, p, aloneType, alonePrice) {
			return false
		}
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
				return false
			}
			reqs = &merged
		}
		if cands, ok = s.topology.claimRequirements(p, v, level, c, reqs, c.all, cache); !ok {
			return false
		}
	}
	if cands == nil && reqs == &c.reqs {
		// Same requirements: the types keep their order and prices, so
		// the first type that fits is the new cheapest, and no type dearer
		// than the join rule's ceiling can be worth growing into.
		ceiling := math.Inf(1)
		for i, t := range c.types {
			if c.prices[i] > ceiling {
				return false
			}
			if s.typeFits(c, t, p.requests) {
				if i > 0 && !s.worthJoining(c, p, t, c.prices[i], aloneType, alonePrice) {
					return false
				}
				s.commit(c, p, vt, nil, nil)
				return true
			}
			if i == 0 {
				ceiling = s.joinCeiling(c, p, aloneType, alonePrice)
			}
		}
		return false
	}
	if cands == nil {
		cands = []candidate{{base: reqs}}
	}
	// Candidates come emptiest domain first. The first domain with a type
	// that holds the pod decides, as before, except that the equally empty
	// domains after it compete with it on price (Spot prices differ by
	// zone): the cheapest the join rule accepts wins, the first of equals.
	best, bestNL, bestPrice, decided, load := -1, (*narrowedTypes)(nil), 0.0, false, 0
	for i := range cands {
		if decided && cands[i].load != load {
			break
		}
		nl := s.narrowed(c, vt, absorbed, &cands[i])
		if bound {
			if aloneType, alonePrice, ok = s.aloneIn(c, nl.all, nl.allPrices, p); !ok {
				continue
			}
		}
		for j, t := range nl.front {
			if !s.typeFits(c, t, p.requests) {
				continue
			}
			decided, load = true, cands[i].load
			if s.worthJoining(c, p, t, nl.frontPrices[j], aloneType, alonePrice) && (best < 0 || nl.frontPrices[j] < bestPrice) {
				best, bestNL, bestPrice = i, nl, nl.frontPrices[j]
			}
			break
		}
	}
	if best < 0 {
		return false
	}
	r := cands[best].reqs()
	s.commit(c, p, vt, &r, bestNL)
	return true
}

// aloneIn returns the cheapest of types (sorted cheapest first) that holds
// p by itself.
func (s *solver) aloneIn(c *claim, types []int32, prices []float64, p *podInfo) (int32, float64, bool) {
	if len(types) == 0 {
		return 0, 0, false
	}
	// Claims share their type lists, so during p's scan the same few lists
	// come back claim after claim.
	scanning := s.scanPod == p
	if scanning {
		for _, e := range s.aloneMemo {
			if e.src == &types[0] && e.n == len(types) {
				return e.t, e.price, e.ok
			}
		}
	}
	e := aloneEntry{src: &types[0], n: len(types)}
	for i, t := range types {
		if fits(p.requests, c.ct.types[t].avail) {
			e.t, e.price, e.ok = t, prices[i], true
			break
		}
	}
	if scanning {
		s.aloneMemo = append(s.aloneMemo, e)
	}
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

// beginScan starts p's scan of the claims: until endScan, or a placement,
// answers that depend only on p and the claims' shared lists are kept.
func (s *solver) beginScan(p *podInfo, v *variant, level int) {
	s.scanPod, s.aloneMemo = p, s.aloneMemo[:0]
	s.topology.beginScan(p, v, level)
}

func (s *solver) endScan() {
	s.scanPod = nil
	s.topology.endScan()
}

// narrowedTypes is a claim's candidate list under narrower requirements.
type narrowedTypes struct {
	all, front             []int32
	allPrices, frontPrices []float64
	maxAvail               vec
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
func (s *solver) narrowed(c *claim, vt *variantTemplate, absorbed bool, cand *candidate) *narrowedTypes {
	filter := vt
	if absorbed {
		filter = nil
	}
	if c.ct.limitedResources {
		key := narrowKey{vt: filter, key: cand.key, value: cand.value, prefix: cand.prefix}
		if nl, ok := c.narrowCache[key]; ok {
			return nl
		}
		nl := s.narrowList(c, c.all, filter, cand)
		if c.narrowCache == nil {
			c.narrowCache = map[narrowKey]*narrowedTypes{}
		}
		c.narrowCache[key] = nl
		return nl
	}
	return s.sharedNarrowList(c, c.all, filter, cand)
}

type sharedNarrowKey struct {
	src *int32
	n   int
	narrowKey
}

func (s *solver) sharedNarrowList(c *claim, src []int32, filter *variantTemplate, cand *candidate) *narrowedTypes {
	if len(src) == 0 {
		return &narrowedTypes{}
	}
	key := sharedNarrowKey{src: &src[0], n: len(src), narrowKey: narrowKey{vt: filter, key: cand.key, value: cand.value, prefix: cand.prefix}}
	if nl, ok := s.narrowShared[key]; ok {
		return nl
	}
	nl := s.narrowList(c, src, filter, cand)
	if s.narrowShared == nil {
		s.narrowShared = map[sharedNarrowKey]*narrowedTypes{}
	}
	s.narrowShared[key] = nl
	return nl
}

// narrowList filters src to the types that satisfy cand (and filter, if
// set), sorted cheapest first under cand, with their front.
func (s *solver) narrowList(c *claim, src []int32, filter *variantTemplate, cand *candidate) *narrowedTypes {
	nl := &narrowedTypes{}
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

// worthTrying reports whether, before any narrowing, the claim has a type
// that holds p and the join rule would accept.
func (s *solver) worthTrying(c *claim, p *podInfo, alone int32, alonePrice float64) bool {
	for i, t := range c.types {
		if s.typeFits(c, t, p.requests) {
			return i == 0 || s.worthJoining(c, p, t, c.prices[i], alone, alonePrice)
		}
	}
	return false
}

// apartCost is the price of keeping p off claim c, less the value of the
// room that leaves on c's cheapest type and on p's own node.
func (s *solver) apartCost(c *claim, p *podInfo, alone int32, alonePrice float64) float64 {
	cur, own := c.ct.types[c.types[0]].avail, c.ct.types[alone].avail
	room := c.ct.duals.roomValue(cur[dimCPU]-c.requests[dimCPU]+own[dimCPU]-p.requests[dimCPU], cur[dimMemory]-c.requests[dimMemory]+own[dimMemory]-p.requests[dimMemory], &s.remaining)
	return c.prices[0] + alonePrice - room
}

// joinCeiling bounds the price of any type worth growing c into for p: the
// room a join leaves is worth at most what the remaining pods can fill.
func (s *solver) joinCeiling(c *claim, p *podInfo, alone int32, alonePrice float64) float64 {
	d := &c.ct.duals
	return s.apartCost(c, p, alone, alonePrice) + d.cpu*float64(s.remaining[0]) + d.memory*float64(s.remaining[1]) + 1e-9
}

// worthJoining decides whether p should grow claim c from its cheapest type
// to type grown (at price), rather than get a node of type alone by itself:
// it compares the two outcomes' prices less the value of the room each
// leaves for pods still to come (see value.go).
func (s *solver) worthJoining(c *claim, p *podInfo, grown int32, price float64, alone int32, alonePrice float64) bool {
	if c.types[0] == grown && price <= c.prices[0] {
		return true
	}
	next := c.ct.types[grown].avail
	joinRoom := c.ct.duals.roomValue(next[dimCPU]-c.requests[dimCPU]-p.requests[dimCPU], next[dimMemory]-c.requests[dimMemory]-p.requests[dimMemory], &s.remaining)
	return price-joinRoom <= s.apartCost(c, p, alone, alonePrice)+1e-9
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

// commit adds p to c. nl, when not nil, holds the claim's types under its
// new requirements reqs; otherwise requirements stay and the claim's front
// drops the types before first, which are too small now.
func (s *solver) commit(c *claim, p *podInfo, vt *variantTemplate, reqs *Requirements, nl *narrowedTypes) {
	if nl != nil {
		c.reqs = reqs.Clone()
		c.all, c.allPrices = nl.all, nl.allPrices
		c.types, c.prices = nl.front, nl.frontPrices
		c.maxAvail = nl.maxAvail
		// Requirements only narrow, so every variant absorbed before
		// stays absorbed.
		c.absorbed = append(c.absorbed, vt)
		c.values = nil
		c.narrowCache = nil
	}
	// Placing p changes the counts a scan's memo holds.
	s.endScan()
	c.requests.add(p.requests)
	c.pods = append(c.pods, p.pod)
	c.ports = append(c.ports, p.hostPorts...)
	// Front types cheaper than the first that holds the grown claim never
	// will again.
	for len(c.types) > 1 && !s.typeFits(c, c.types[0], nil) {
		c.types, c.prices = c.types[1:], c.prices[1:]
	}
	s.reserveLimits(c)
	s.topology.record(p, nil, nil, c)
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
			for _, f := range front {
				if fits(avail, ct.types[f].avail) {
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
	for _, t := range c.all {
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
func (s *solver) placeOnNewClaim(p *podInfo, v *variant, level int) (string, bool) {
	reasons := make([]string, 0, len(s.templates))
	for _, ct := range s.templates {
		vt := s.variantTemplate(v, ct)
		if !vt.ok {
			reasons = append(reasons, fmt.Sprintf("nodepool %s: %s", ct.t.NodePool, vt.reason))
			continue
		}
		if ct.remainingNodes < 1 {
			reasons = append(reasons, fmt.Sprintf("nodepool %s: node limit reached", ct.t.NodePool))
			continue
		}
		if portsConflict(ct.daemonSetPorts, p.hostPorts) {
			reasons = append(reasons, fmt.Sprintf("nodepool %s: a daemonset takes a host port the pod needs", ct.t.NodePool))
			continue
		}
		c := &claim{ct: ct, requests: make(vec, s.dims.len()), index: len(s.claims), hostname: fmt.Sprintf("%s%04d", claimHostnamePrefix, len(s.claims)+1),
			ports: slices.Clone(ct.daemonSetPorts)}
		s.topology.failure = topoFailure{}
		if vt.values == nil {
			vt.values = map[string][]string{}
		}
		cands, ok := s.topology.claimRequirements(p, v, level, c, &vt.reqs, vt.types, vt.values)
		if !ok {
			reasons = append(reasons, fmt.Sprintf("nodepool %s: %s", ct.t.NodePool, s.topology.reason()))
			continue
		}
		placed := false
		if cands == nil {
			placed = s.newClaimTypes(c, vt, nil, p.requests)
			if placed {
				// A copy: plans hand claims' requirements to callers,
				// who may change them.
				c.reqs = vt.reqs.Clone()
			}
		}
		// Among the emptiest domains, the cheapest (see tryClaim).
		best, bestNL, bestType := -1, (*narrowedTypes)(nil), 0
		for i := range cands {
			if best >= 0 && cands[i].load != cands[best].load {
				break
			}
			if nl, j := s.newClaimList(c, vt, &cands[i], p.requests); nl != nil && (best < 0 || nl.frontPrices[j] < bestNL.frontPrices[bestType]) {
				best, bestNL, bestType = i, nl, j
			}
		}
		if best >= 0 {
			s.useNewClaimList(c, bestNL, bestType)
			c.reqs = cands[best].reqs()
			placed = true
		}
		if !placed {
			reason := s.resourceReason(ct, vt, p.requests)
			if cands != nil && s.newClaimTypes(c, vt, nil, p.requests) {
				// The pod fits; the topology domains it may use do not.
				reason = s.topologyOfferingReason()
			}
			reasons = append(reasons, fmt.Sprintf("nodepool %s: %s", ct.t.NodePool, reason))
			continue
		}
		c.absorbed = append(c.absorbed, vt)
		ct.remainingNodes--
		s.claims = append(s.claims, c)
		s.topology.claimAdded(c.index)
		c.requests.add(p.requests)
		c.pods = append(c.pods, p.pod)
		c.ports = append(c.ports, p.hostPorts...)
		s.reserveLimits(c)
		s.topology.record(p, nil, nil, c)
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

// topologyOfferingReason explains a pod whose allowed topology domains have
// no instance type with an available offering.
func (s *solver) topologyOfferingReason() string {
	if s.topology.failure.kind != failNone {
		return s.topology.reason()
	}
	return "no instance type has an available offering in the topology domains the pod may use"
}

// newClaimTypes gives new claim c the types of vt (narrowed to cand, if
// not nil) from the cheapest that holds req, and reports whether one does.
func (s *solver) newClaimTypes(c *claim, vt *variantTemplate, cand *candidate, req vec) bool {
	nl, i := s.newClaimList(c, vt, cand, req)
	if nl == nil {
		return false
	}
	s.useNewClaimList(c, nl, i)
	return true
}

// newClaimList returns the type list a new claim c of vt would have under
// cand (nil: vt's own) and the index in its front of the cheapest type that
// holds req, or nil.
func (s *solver) newClaimList(c *claim, vt *variantTemplate, cand *candidate, req vec) (*narrowedTypes, int) {
	var nl *narrowedTypes
	switch {
	case cand == nil && !c.ct.limitedResources:
		// The common case shares the variant's lists instead of copying
		// hundreds of types per claim.
		nl = &narrowedTypes{all: vt.types, allPrices: vt.prices, front: vt.front, frontPrices: vt.frontPrices, maxAvail: vt.maxAvail}
	case cand == nil:
		// Under resource limits the lists drop types too big for what
		// the limits leave.
		nl = s.narrowList(c, vt.types, nil, &candidate{base: &vt.reqs})
	case c.ct.limitedResources:
		nl = s.narrowList(c, vt.types, nil, cand)
	default:
		nl = s.sharedNarrowList(c, vt.types, nil, cand)
	}
	for i, t := range nl.front {
		if s.typeFits(c, t, req) {
			return nl, i
		}
	}
	return nil, 0
}

// useNewClaimList gives c the list nl, its front starting at index first.
func (s *solver) useNewClaimList(c *claim, nl *narrowedTypes, first int) {
	c.all, c.allPrices = nl.all, nl.allPrices
	c.types, c.prices = nl.front[first:], nl.frontPrices[first:]
	c.maxAvail = nl.maxAvail
}

// offeringReason explains a pod that some instance type of the template
// would hold, were its offerings not all unavailable (EC2 refused them
// recently) or outside the zones and capacity types allowed: saying "no
// type is big enough" there would send users after the wrong cause.
func (s *solver) offeringReason(ct *compiledTemplate, vt *variantTemplate, req vec) (string, bool) {
	zone, capacityType := vt.reqs.Get(offerings.LabelZone), vt.reqs.Get(offerings.LabelCapacityType)
	for _, it := range ct.t.InstanceTypes {
		if !typeLabelsMatch(ct, &vt.reqs, it) || !fits(req, s.dims.vecOf(it.Allocatable())) {
			continue
		}
		allowed, available := false, false
		for _, o := range it.Offerings {
			if (zone == nil || zone.Matches(o.Zone, true)) && (capacityType == nil || capacityType.Matches(o.CapacityType, true)) {
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
		if r > vt.maxAvail[d] {
			if vt.maxAvail[d] <= 0 {
				return fmt.Sprintf("no instance type has %s %s after overhead; none offers %s", s.dims.format(d, r), s.dims.names[d], s.dims.names[d])
			}
			return fmt.Sprintf("no instance type has %s %s after overhead; largest allocatable is %s", s.dims.format(d, r), s.dims.names[d], s.dims.format(d, vt.maxAvail[d]))
		}
	}
	if ct.limitedResources {
		probe := &claim{ct: ct, requests: make(vec, s.dims.len())}
		limited := true
		for _, t := range vt.types {
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
			Template:      c.ct.t,
			Hostname:      c.hostname,
			Requirements:  c.reqs,
			InstanceTypes: make([]*offerings.InstanceType, 0, min(len(c.all), s.maxTypes)),
			Pods:          c.pods,
			PodRequests:   s.dims.list(c.requests),
		}
		for _, t := range c.all {
			ti := &c.ct.types[t]
			if c.ct.limitedResources && (ti.capacity[dimCPU] > c.reservedCPU || ti.capacity[dimMemory] > c.reservedMem) {
				continue // beyond what reserveLimits set aside
			}
			if fits(c.requests, ti.avail) {
				claim.InstanceTypes = append(claim.InstanceTypes, ti.it)
				if len(claim.InstanceTypes) == s.maxTypes {
					break
				}
			}
		}
		claim.DaemonSetRequests = s.dims.list(c.ct.types[c.types[0]].daemonSet)
		s.plan.NodeClaims = append(s.plan.NodeClaims, claim)
	}
	for _, n := range s.nodes {
		if len(n.placed) > 0 {
			s.plan.ExistingNodes = append(s.plan.ExistingNodes, &NodePlacement{Node: n.node, Pods: n.placed})
		}
	}
	return &s.plan
}
