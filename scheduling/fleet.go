package scheduling

import (
	"cmp"
	"math"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
)

// SingleTypeFleet is the yardstick every plan is held to: all pods on nodes
// of one instance type, packed first-fit-decreasing.
type SingleTypeFleet struct {
	// Template and InstanceType are what the fleet is made of.
	Template     *NodeTemplate
	InstanceType *offerings.InstanceType
	// Nodes is the fleet's size, Bill its hourly bill (offerings.NodeBill
	// of every node at the type's cheapest offering).
	Nodes int
	Bill  float64
	// LaunchedBill is the same packing as it would be launched: each node
	// at the cheapest type of the template that holds its pods, so its
	// part-full nodes may be smaller. Solve returns it, or a plan billing
	// less, whenever Bill is within a tenth of the greedy plan's bill.
	LaunchedBill float64
}

// BestSingleTypeFleet returns the cheapest fleet of one instance type that
// holds every pod of in: for each type of the highest-weight templates,
// pods in the solver's order (largest first), each on the first node with
// room, daemonsets counted on every node; the fleet with the lowest bill
// wins, names breaking ties. ok is false when no type holds every pod, or
// when the bound does not apply: existing nodes, pods with node
// requirements (selectors, affinity, preferences), topology constraints or
// host ports, or templates with limits. Solve never returns a plan that
// bills more than this fleet.
func BestSingleTypeFleet(in Input) (SingleTypeFleet, bool) {
	s, err := newSolver(in)
	if err != nil {
		return SingleTypeFleet{}, false
	}
	s.sortPods()
	f, ok := s.bestFleet(s.fleetTemplates(), math.Inf(1))
	if !ok {
		return SingleTypeFleet{}, false
	}
	return SingleTypeFleet{Template: f.vt.ct.t, InstanceType: f.vt.ct.types[f.t].it, Nodes: f.nodes, Bill: f.bill, LaunchedBill: s.launchedBill(f)}, true
}

// fleet is a packing of pods on nodes of one variant template: the node
// (bin) of each pod. A single-type fleet's nodes are packed on type t at
// price (billing bill); the fill's (fill.go) leave them unset, each of its
// nodes holding its pods on some front type.
type fleet struct {
	vt    *variantTemplate
	t     int32
	price float64
	nodes int
	bill  float64
	pods  []*podInfo
	bin   []int32
}

// fleetTemplates returns, when the single-type bound applies to s's pods
// (no existing node is in play), their sharedTemplates.
func (s *solver) fleetTemplates() []*variantTemplate {
	if len(s.nodes) > 0 {
		return nil
	}
	return s.sharedTemplates()
}

// sharedTemplates returns, when s's pods share no constraints (no node
// requirements or preferences, topology or host ports), the variant
// template of every highest-weight template without limits that can hold
// them all: any of them may then share a new node with any other. Every
// pod's class has a requirement-free variant, and the first class's
// variant template stands for them all.
func (s *solver) sharedTemplates() []*variantTemplate {
	if len(s.pods) == 0 || len(s.templates) == 0 {
		return nil
	}
	for _, p := range s.pods {
		if p.class.err != nil || p.topo != nil || len(p.hostPorts) > 0 {
			return nil
		}
		pv := p.class.variants[0]
		if pv.preferences || pv.toleratePNS || len(pv.reqs.Items()) > 0 {
			return nil
		}
	}
	var out []*variantTemplate
	for _, ct := range s.templates {
		if ct.t.Weight != s.templates[0].t.Weight {
			break
		}
		if len(ct.t.Limits) > 0 {
			continue
		}
		// Every pod's class is requirement-free; they differ only in
		// tolerations, which must all admit the template.
		ok := true
		var vt *variantTemplate
		checked := map[*podClass]bool{}
		for _, p := range s.pods {
			if checked[p.class] {
				continue // pods of one class share its variant templates
			}
			checked[p.class] = true
			pvt := s.variantTemplate(p.class.variants[0], ct)
			if !pvt.ok {
				ok = false
				break
			}
			if vt == nil {
				vt = pvt
			}
		}
		if ok {
			out = append(out, vt)
		}
	}
	return out
}

// bestFleet finds the cheapest single-type fleet of the templates vts
// (fleetTemplates) billed below limit, with s.pods sorted. Types are tried cheapest lower bound first, and a packing
// stops as soon as it bills as much as the best so far.
func (s *solver) bestFleet(vts []*variantTemplate, limit float64) (fleet, bool) {
	type candidate struct {
		vt    *variantTemplate
		t     int32
		price float64
		lower float64
	}
	total := make(vec, s.dims.len())
	for _, p := range s.pods {
		total.add(p.requests)
	}
	var cands []candidate
	for _, vt := range vts {
		for i, t := range vt.list.all {
			avail := vt.ct.types[t].avail
			nodes := 0.0
			for d, need := range total {
				if need == 0 {
					continue
				}
				if avail[d] <= 0 {
					nodes = math.Inf(1)
					break
				}
				nodes = max(nodes, math.Ceil(float64(need)/float64(avail[d])))
			}
			lower := nodes * (vt.list.allPrices[i] - vt.ct.types[t].surplusAtFull)
			if lower < limit {
				cands = append(cands, candidate{vt, t, vt.list.allPrices[i], lower})
			}
		}
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return cmp.Compare(a.lower, b.lower) })
	var best fleet
	found := false
	bins := make([]int32, len(s.pods))
	for _, c := range cands {
		if c.lower >= limit {
			break
		}
		if f, ok := s.packOneType(c.vt, c.t, c.price, limit, bins); ok {
			f.pods, f.bin = s.pods, slices.Clone(bins)
			best, found, limit = f, true, f.bill
		}
	}
	return best, found
}

// packOneType packs s.pods first-fit on nodes of type t, writing each pod's
// node into bins, and returns the fleet unless it bills limit or more.
func (s *solver) packOneType(vt *variantTemplate, t int32, price, limit float64, bins []int32) (fleet, bool) {
	ti := &vt.ct.types[t]
	n := len(ti.avail)
	var free []int64
	var cpu []int64 // requested cpu per node, daemonsets included
	nodes := 0
	start := 0
	for i, p := range s.pods {
		if !fits(p.requests, ti.avail) {
			return fleet{}, false
		}
		// An identical pod (same shape, see sortPods) cannot fit any node
		// before the previous one's.
		if i == 0 || p.shape != s.pods[i-1].shape {
			start = 0
		}
		placed := -1
		for j := start; j < nodes; j++ {
			if fits(p.requests, free[j*n:(j+1)*n]) {
				placed = j
				break
			}
		}
		if placed < 0 {
			if float64(nodes+1)*(price-ti.surplusAtFull) >= limit {
				return fleet{}, false
			}
			free = append(free, ti.avail...)
			cpu = append(cpu, ti.daemonSet[dimCPU])
			placed = nodes
			nodes++
		}
		vec(free[placed*n : (placed+1)*n]).sub(p.requests)
		cpu[placed] += p.requests[dimCPU]
		bins[i], start = int32(placed), placed
	}
	bill := float64(nodes) * price
	if ti.surplusAtFull > 0 {
		bill = 0
		for _, c := range cpu {
			bill += price - ti.surplusAtFull + ti.it.SurplusCreditHourly(c)
		}
	}
	if bill >= limit {
		return fleet{}, false
	}
	return fleet{vt: vt, t: t, price: price, nodes: nodes, bill: bill}, true
}

// planBill is the bill of claims: each at its cheapest type for its pods.
func planBill(claims []*claim) float64 {
	bill := 0.0
	for _, c := range claims {
		if c.ct.t.Burstable != offerings.BurstableCredits {
			bill += c.list.frontPrices[0]
			continue
		}
		cheapest := math.Inf(1)
		for i, t := range c.list.all {
			if fits(c.requests, c.ct.types[t].avail) {
				cheapest = min(cheapest, claimBill(c, t, c.list.allPrices[i]))
			}
		}
		bill += cheapest
	}
	return bill
}

// fleetFinishMargin is how much dearer than the plan, packed, a fleet may
// be and still be tried: finished, its part-full nodes may bill less.
const fleetFinishMargin = 0.10

// noWorseThanOneType replaces the claims with the best single-type fleet
// when that bills less: the guarantee BestSingleTypeFleet states. The
// fleet is compared as it will be launched, each node at the cheapest type
// that holds its pods (a fleet's last, part-full nodes often fit a smaller
// one), not at the type it was packed on. It runs only when every pod went
// to a new claim; vts are s.fleetTemplates().
func (s *solver) noWorseThanOneType(vts []*variantTemplate) {
	if len(s.plan.Unschedulable) > 0 || len(s.claims) == 0 || vts == nil {
		return
	}
	// Finishing cuts a fleet's bill by its part-full nodes only, which is
	// rarely a tenth: fleets packed dearer than that are not worth packing.
	current := planBill(s.claims)
	f, ok := s.bestFleet(vts, current*(1+fleetFinishMargin))
	if !ok {
		return
	}
	if s.launchedBill(f) < current*(1-1e-9) {
		s.claims = s.fleetClaims(f)
	}
}

// launchedBill is fleet f's bill as it would launch, planBill of
// fleetClaims(f), worked out from the nodes' summed requests without
// building the claims, which a fleet that loses would throw away. Under
// Credits, whose bills depend on load, it prices the claims themselves.
func (s *solver) launchedBill(f fleet) float64 {
	if f.vt.ct.t.Burstable == offerings.BurstableCredits {
		return planBill(s.fleetClaims(f))
	}
	d := s.dims.len()
	sums := make(vec, f.nodes*d)
	for i, p := range f.pods {
		sums[int(f.bin[i])*d : (int(f.bin[i])+1)*d].add(p.requests)
	}
	l := f.vt.list
	bill := 0.0
	for n := range f.nodes {
		price := f.price
		if k := slices.IndexFunc(l.front, func(t int32) bool { return fits(sums[n*d:(n+1)*d], f.vt.ct.types[t].avail) }); k >= 0 {
			price = l.frontPrices[k]
		}
		bill += price
	}
	return bill
}

// fleetClaims is fleet f as claims, each starting its front at the
// cheapest type that holds its pods: what finish will launch.
func (s *solver) fleetClaims(f fleet) []*claim {
	claims := make([]*claim, f.nodes)
	perNode := make([]int, f.nodes)
	for _, b := range f.bin {
		perNode[b]++
	}
	for i := range claims {
		claims[i] = &claim{ct: f.vt.ct, absorbed: []*variantTemplate{f.vt}, reqs: f.vt.reqs.Clone(),
			requests: make(vec, s.dims.len()), index: i, hostname: claimHostname(i), pods: make([]*corev1.Pod, 0, perNode[i])}
	}
	for i, p := range f.pods {
		c := claims[f.bin[i]]
		c.requests.add(p.requests)
		c.pods = append(c.pods, p.pod)
	}
	for _, c := range claims {
		// The front holds a type at least as big as the packed one and no
		// dearer (and the fill packs on front types), so some front type
		// holds the node's pods.
		l := f.vt.list
		c.list = typeList{all: l.all, allPrices: l.allPrices, front: []int32{f.t}, frontPrices: []float64{f.price}, maxAvail: l.maxAvail}
		if k := slices.IndexFunc(l.front, func(t int32) bool { return fits(c.requests, f.vt.ct.types[t].avail) }); k >= 0 {
			c.list.front, c.list.frontPrices = l.front[k:], l.frontPrices[k:]
		}
	}
	return claims
}

// sharingClaims is what mergeClaims and dissolveClaims work on: the
// templates whose claims may share pods (the shared templates vts, outside
// Credits mode, whose bills depend on load), and the claims cheapest first.
// order is nil when there is nothing to do.
func (s *solver) sharingClaims(vts []*variantTemplate) (map[*compiledTemplate]bool, []*claim) {
	if vts == nil || len(s.claims) < 2 {
		return nil, nil
	}
	sharing := map[*compiledTemplate]bool{}
	for _, vt := range vts {
		sharing[vt.ct] = vt.ct.t.Burstable != offerings.BurstableCredits
	}
	order := slices.Clone(s.claims)
	slices.SortStableFunc(order, func(a, b *claim) int { return cmp.Compare(a.list.frontPrices[0], b.list.frontPrices[0]) })
	return sharing, order
}

// dissolveClaims empties claims whose pods all fit in the room other claims
// of the template have left on their current types: each such claim is one
// node saved, at no price to the others. Cheapest claims are tried first;
// the largest pod goes first, so most tries stop at once. Same conditions
// as mergeClaims.
func (s *solver) dissolveClaims(vts []*variantTemplate) {
	ok, order := s.sharingClaims(vts)
	if order == nil {
		return
	}
	info := s.podInfoOf()
	// By position in order: each claim's room on its current type, and
	// whether it is gone.
	slack := make([]vec, len(order))
	gone := make([]bool, len(order))
	for i, c := range order {
		slack[i] = slices.Clone(c.ct.types[c.list.front[0]].avail)
		slack[i].sub(c.requests)
	}
	type move struct {
		p  *podInfo
		to int
	}
	var moves []move
	dissolved := 0
	for i, a := range order {
		if !ok[a.ct] {
			continue
		}
		moves = moves[:0]
		placed := true
		for _, pod := range a.pods {
			p := info[pod]
			to := -1
			for j, b := range order {
				if j != i && !gone[j] && b.ct == a.ct && fits(p.requests, slack[j]) {
					to = j
					break
				}
			}
			if to < 0 {
				placed = false
				break
			}
			slack[to].sub(p.requests)
			moves = append(moves, move{p, to})
		}
		if !placed {
			for _, m := range moves {
				slack[m.to].add(m.p.requests)
			}
			continue
		}
		for _, m := range moves {
			b := order[m.to]
			b.requests.add(m.p.requests)
			b.pods = append(b.pods, m.p.pod)
		}
		gone[i] = true
		dissolved++
	}
	if dissolved == 0 {
		return
	}
	goneClaim := make(map[*claim]bool, dissolved)
	for i, c := range order {
		if gone[i] {
			goneClaim[c] = true
		}
	}
	s.dropClaims(goneClaim)
}

// dropClaims removes the claims in gone, numbering the rest again.
func (s *solver) dropClaims(gone map[*claim]bool) {
	kept := s.claims[:0]
	for _, c := range s.claims {
		if !gone[c] {
			if c.index != len(kept) {
				c.index, c.hostname = len(kept), claimHostname(len(kept))
			}
			kept = append(kept, c)
		}
	}
	s.claims = kept
}

// mergeWindow is how many of the next-dearer claims each claim tries to
// merge with.
const mergeWindow = 16

// mergeClaims merges pairs of claims whose pods one node bills less for than
// the two: greedy placement leaves part-full nodes behind (most when nodes
// carry no daemonsets, so a new node looks cheap), and a pair of them often
// fits a type cheaper than both. It runs where pods share no constraints
// (sharedTemplates: no topology, host ports, node requirements or limits,
// so any two claims of a template may share a node) and outside Credits
// mode, whose bills depend on load. Claims are taken cheapest first; each
// tries the next mergeWindow claims of its template; vts are
// s.sharedTemplates().
func (s *solver) mergeClaims(vts []*variantTemplate) {
	mergeable, order := s.sharingClaims(vts)
	if order == nil {
		return
	}
	gone := map[*claim]bool{}
	merged := make(vec, s.dims.len())
	for i, a := range order {
		if gone[a] || !mergeable[a.ct] {
			continue
		}
		for _, b := range order[i+1 : min(len(order), i+1+mergeWindow)] {
			if gone[b] || b.ct != a.ct {
				continue
			}
			copy(merged, a.requests)
			merged.add(b.requests)
			for k, t := range a.list.front {
				if a.list.frontPrices[k] >= a.list.frontPrices[0]+b.list.frontPrices[0] {
					break
				}
				if fits(merged, a.ct.types[t].avail) {
					a.list.front, a.list.frontPrices = a.list.front[k:], a.list.frontPrices[k:]
					copy(a.requests, merged)
					a.pods = append(a.pods, b.pods...)
					gone[b] = true
					break
				}
			}
		}
	}
	if len(gone) == 0 {
		return
	}
	s.dropClaims(gone)
}

// podInfoOf maps each pod of s.pods to its info.
func (s *solver) podInfoOf() map[*corev1.Pod]*podInfo {
	info := make(map[*corev1.Pod]*podInfo, len(s.pods))
	for _, p := range s.pods {
		info[p.pod] = p
	}
	return info
}
