package scheduling

import (
	"cmp"
	"slices"

	"github.com/fleetpack/fleetpack/offerings"
)

// The node-by-node fill packs pods that share no constraints, and that no
// existing node took (placeOnNodes), a node at a time instead of a pod at a
// time. The greedy (solve.go) decides each pod's node as the pod arrives,
// pricing spare room at the dual prices of a fractional program; that
// program cannot see that two pods of 8 cpu never share a 16-cpu node, so
// the greedy leaves such pods one per half-empty node, and which pods end up
// together shifts with any small change to the types' room: adding
// daemonsets made plans cheaper.
//
// The fill sees whole pods. For each candidate type it fills one node from
// the pods still to place, largest first, each shape (run of identical
// pods) as many times as fits, and it keeps the type whose node holds the
// most value (pods valued as sortPods sizes them) per dollar. A node of
// type t holds at most its room's worth, and at most what is left to place,
// so types are tried densest first and the search stops at the first type
// that cannot beat the best fill so far: a node costs a few fills, each
// over the shapes, not over the pods.
//
// Choosing each node alone is myopic: a type slightly less dense per node
// can pack the whole workload better (a 64-cpu node that takes the 8-cpu
// pods seven at a time, where the densest type takes one). So the fill also
// runs preferring each of the fillStarts densest types that hold the
// largest pod, taking it for every node it fills to preferredFill of its
// room. The cheapest of these packings, as launched, is merged and
// dissolved as the greedy's claims are (fleet.go); Solve keeps it, or the
// greedy's plan where that runs and bills less, re-fills pairs of its
// claims (refillPairs), and, where no existing node is in play, holds the
// result to the single-type fleet.
//
// How many preferred types, and how full: chosen on 252 seeded problems
// (BenchmarkDaemonSetsNeverCheaper's) among 2 to 6 types and 80% to 95%,
// by the plans' summed bills and how often daemonsets made a plan cheaper;
// the settings differ by 0.1% in bill, and each preferred type costs about
// 4% of a 1,000-pod solve.

const (
	// fillStarts is how many preferred types the fill is run with,
	// besides the plain fill.
	fillStarts = 4
	// preferredFill is how full, in value, a node of the preferred type
	// must be for the fill to take it over the densest choice.
	preferredFill = 0.95
	// maxFillShapes bounds the fill's work: a node costs fills over the
	// shapes. Workloads of replicated pods have tens of shapes; one with a
	// shape per pod (the synthetic KarpenterMix) is left to the greedy.
	maxFillShapes = 512
	// greedyAlongside is the largest workload on which the greedy runs as
	// well as the fill. Measured on the seeded workloads (72 per size: 3
	// shapes, 6 seeds, 2 pools, with and without daemonsets), the greedy's
	// plan beat the fill's on 2 to 9 of them at each size from 10 to 300
	// pods, by up to 15%, on none at 1,000 and on 2 at 3,000 by up to 1.7%,
	// where it costs most of a solve (docs/benchmarks.md).
	greedyAlongside = 500
)

// podShape is a run of identical pods in a sorted list of pods: their
// requests and value (sortPods size), how many are still to place, and the
// index of the first of them not yet placed.
type podShape struct {
	req   vec
	value float64
	left  int
	next  int
}

// podShapes groups pods (in s.pods's order, so identical pods are
// adjacent) into their shapes, largest first.
func podShapes(pods []*podInfo) []podShape {
	var shapes []podShape
	for i, p := range pods {
		if i == 0 || p.shape != pods[i-1].shape {
			shapes = append(shapes, podShape{req: p.requests, value: p.size, next: i})
		}
		shapes[len(shapes)-1].left++
	}
	return shapes
}

// fillCandidate is a type of a variant template's front: its index k in
// the front, the value of its room and that value per dollar.
type fillCandidate struct {
	k             int
	room, density float64
}

// fillCandidates returns vt's front types densest first.
func (s *solver) fillCandidates(vt *variantTemplate) []fillCandidate {
	sizes := s.sizes()
	cands := make([]fillCandidate, len(vt.list.front))
	for k, t := range vt.list.front {
		room := sizes.value(vt.ct.types[t].avail)
		cands[k] = fillCandidate{k, room, room / vt.list.frontPrices[k]}
	}
	slices.SortStableFunc(cands, func(a, b fillCandidate) int { return cmp.Compare(b.density, a.density) })
	return cands
}

// fillNodes packs pods (in s.pods's order) node by node on vt's front
// types (see above), preferring the front type prefer unless it is
// negative, and returns the packing. It fails when some pod fits no type.
func (s *solver) fillNodes(vt *variantTemplate, cands []fillCandidate, pods []*podInfo, prefer int) (fleet, bool) {
	shapes := podShapes(pods)
	front, prices := vt.list.front, vt.list.frontPrices
	leftValue := 0.0
	for _, sh := range shapes {
		leftValue += float64(sh.left) * sh.value
	}
	preferRoom := 0.0
	if prefer >= 0 {
		i := slices.IndexFunc(cands, func(c fillCandidate) bool { return c.k == prefer })
		preferRoom = cands[i].room
	}
	free := make(vec, s.dims.len())
	// take and best list what a fill took, as (shape, count) pairs.
	type taken struct{ shape, n int }
	var take, best []taken
	// live lists the shapes with pods left, largest first.
	live := make([]int, len(shapes))
	for i := range live {
		live[i] = i
	}
	// fill fills a node of front type k from the live shapes, into take,
	// and returns the value it took.
	fill := func(k int) float64 {
		copy(free, vt.ct.types[front[k]].avail)
		value := 0.0
		take = take[:0]
		for _, i := range live {
			sh := &shapes[i]
			n := sh.left
			for r, need := range sh.req {
				if need > 0 {
					n = min(n, int(free[r]/need))
				}
			}
			if n <= 0 {
				if free[dimPods] <= 0 {
					break // no pod slot left
				}
				continue
			}
			take = append(take, taken{i, n})
			for r, need := range sh.req {
				free[r] -= int64(n) * need
			}
			value += float64(n) * sh.value
		}
		return value
	}
	bins := make([]int32, len(pods))
	left, nodes := len(pods), 0
	// place puts what a node took on node number nodes.
	place := func(took []taken) {
		for _, b := range took {
			sh := &shapes[b.shape]
			for range b.n {
				bins[sh.next] = int32(nodes)
				sh.next++
			}
			sh.left -= b.n
			left -= b.n
			leftValue -= float64(b.n) * sh.value
		}
		live = slices.DeleteFunc(live, func(i int) bool { return shapes[i].left == 0 })
		nodes++
	}
	for left > 0 {
		// The largest pod left opens the node, as in
		// first-fit-decreasing: nodes without it would leave the big
		// pods for last, each on a node of its own.
		opener := shapes[live[0]].req
		bestValue, bestK := -1.0, -1
		preferred := false
		if prefer >= 0 && fits(opener, vt.ct.types[front[prefer]].avail) {
			if v := fill(prefer); v >= preferredFill*min(preferRoom, leftValue) {
				bestValue, bestK, preferred = v/prices[prefer], prefer, true
				best = append(best[:0], take...)
			}
		}
		for _, c := range cands {
			if preferred || c.density <= bestValue {
				break
			}
			if min(c.room, leftValue)/prices[c.k] <= bestValue || !fits(opener, vt.ct.types[front[c.k]].avail) {
				continue
			}
			if v := fill(c.k) / prices[c.k]; v > bestValue {
				bestValue, bestK = v, c.k
				best = append(best[:0], take...)
			}
		}
		if bestK < 0 {
			return fleet{}, false
		}
		place(best)
	}
	return fleet{vt: vt, nodes: nodes, pods: pods, bin: bins}, true
}

// fillApplies reports whether the fill may pack s's pods on vts
// (sharedTemplates): some template bills by the node, not by its load
// (Credits), and the pods have at most maxFillShapes shapes.
func (s *solver) fillApplies(vts []*variantTemplate) bool {
	if !slices.ContainsFunc(vts, func(vt *variantTemplate) bool { return vt.ct.t.Burstable != offerings.BurstableCredits }) {
		return false
	}
	shapes := 1
	for i := 1; i < len(s.pods) && shapes <= maxFillShapes; i++ {
		if s.pods[i].shape != s.pods[i-1].shape {
			shapes++
		}
	}
	return shapes <= maxFillShapes
}

// fillPlan returns the cheapest of the fills of pods (in s.pods's order)
// on vts (sharedTemplates), merged and dissolved, and its bill; nil when
// there are no pods or some pod fits no type. s.claims is as it was.
func (s *solver) fillPlan(vts []*variantTemplate, pods []*podInfo) ([]*claim, float64) {
	if len(pods) == 0 {
		return nil, 0
	}
	var best []*claim
	bestBill := 0.0
	kept := s.claims
	for _, vt := range vts {
		if vt.ct.t.Burstable == offerings.BurstableCredits {
			continue
		}
		cands := s.fillCandidates(vt)
		starts := []int{-1}
		for _, c := range cands {
			if len(starts) > fillStarts {
				break
			}
			if fits(pods[0].requests, vt.ct.types[vt.list.front[c.k]].avail) {
				starts = append(starts, c.k)
			}
		}
		// The fills are compared as they would launch; only the cheapest
		// is merged and dissolved, which costs more than a fill.
		var bestFill fleet
		found, fillBill := false, 0.0
		for _, prefer := range starts {
			f, ok := s.fillNodes(vt, cands, pods, prefer)
			if !ok {
				break // some pod fits no type, whichever is preferred
			}
			if bill := s.launchedBill(f); !found || bill < fillBill*(1-1e-9) {
				bestFill, fillBill, found = f, bill, true
			}
		}
		if !found {
			continue
		}
		s.claims = s.fleetClaims(bestFill)
		s.mergeClaims(vts)
		s.dissolveClaims(vts)
		if bill := planBill(s.claims); best == nil || bill < bestBill*(1-1e-9) {
			best, bestBill = s.claims, bill
		}
	}
	s.claims = kept
	return best, bestBill
}

// refillWindow is how many of the next-dearer claims of its template each
// claim is re-packed with.
const refillWindow = 8

// refillFull is how full, in value, a claim's type must be for re-packing
// to pass it by: a pair of full nodes has nothing to give back, and trying
// every pair cost two thirds of a 1,000-pod solve.
const refillFull = 0.98

// refillPairs re-packs pairs of claims: the pods of two claims of one
// template, filled node by node on that template's types, replace the two
// when they bill less, on one node (as mergeClaims would), two nodes of
// other types, or more. Claims are taken cheapest first, each with the
// next refillWindow claims of its template that are not refillFull; a
// claim made by a re-pack is not re-packed again. Same conditions as
// mergeClaims.
func (s *solver) refillPairs(vts []*variantTemplate) {
	sharing, order := s.sharingClaims(vts)
	if order == nil {
		return
	}
	vtOf := make(map[*compiledTemplate]*variantTemplate, len(vts))
	candsOf := make(map[*compiledTemplate][]fillCandidate, len(vts))
	for _, vt := range vts {
		if sharing[vt.ct] {
			vtOf[vt.ct], candsOf[vt.ct] = vt, s.fillCandidates(vt)
		}
	}
	sizes := s.sizes()
	full := func(c *claim) bool {
		return sizes.value(c.requests) >= refillFull*sizes.value(c.ct.types[c.list.front[0]].avail)
	}
	info := s.podInfoOf()
	gone := map[*claim]bool{}
	var pool []*podInfo
	for i, a := range order {
		if gone[a] || !sharing[a.ct] || full(a) {
			continue
		}
		for _, b := range order[i+1 : min(len(order), i+1+refillWindow)] {
			if gone[b] || b.ct != a.ct || full(b) {
				continue
			}
			pool = pool[:0]
			for _, pod := range a.pods {
				pool = append(pool, info[pod])
			}
			for _, pod := range b.pods {
				pool = append(pool, info[pod])
			}
			// In s.pods's order, where shapes are numbered.
			slices.SortStableFunc(pool, func(p, q *podInfo) int { return cmp.Compare(p.shape, q.shape) })
			f, ok := s.fillNodes(vtOf[a.ct], candsOf[a.ct], pool, -1)
			if !ok || s.launchedBill(f) >= (a.list.frontPrices[0]+b.list.frontPrices[0])*(1-1e-9) {
				continue
			}
			f.pods = slices.Clone(pool)
			gone[a], gone[b] = true, true
			s.claims = append(s.claims, s.fleetClaims(f)...)
			break
		}
	}
	if len(gone) > 0 {
		s.dropClaims(gone)
	}
}
