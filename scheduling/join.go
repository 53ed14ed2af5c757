package scheduling

import "math"

// The join rule: whether a pod should grow an open claim into a bigger
// (dearer) type, or get a node of its own. Both outcomes are priced, and
// each is credited with the room it leaves for the pods still to come,
// valued at the template's dual prices (value.go) and counted only up to
// what those pods can fill: no more cpu and memory than they request, and
// no more pods than the room has pod slots (max-pods), each slot worth the
// mean value of a remaining pod. Without the slot cap, a small type whose
// pod limit binds first (a1.medium: 8 pods, 5 of them daemonsets) looks as
// roomy as its cpu and memory, and tiny nodes win joins they should lose.
//
// Invariant: a grown type priced above ceiling() is always rejected. The
// room a join leaves is worth at most the remaining pods' whole value,
// so no dearer type can win; the scans rely on it to stop early (types are
// sorted cheapest first). FuzzJoinRule checks it, and that acceptance is
// monotone in price.

// joinRule is the join decision for one pod and one claim, with everything
// it depends on copied in: a value, so the rule can be tested and fuzzed on
// its own.
type joinRule struct {
	duals     dualPrices
	remaining [2]int64
	// slotValue is what one pod slot of room is worth: the mean value of
	// a remaining pod.
	slotValue float64
	// claim is the claim's cpu, memory and pod count, pod the pod's.
	claim, pod [3]int64
	// cur is the claim's cheapest type that holds it now.
	cur      int32
	curPrice float64
	// apart is the price of keeping the pod off the claim (the claim's
	// current type plus the pod's own node), less the room both leave.
	apart float64
}

// newJoinRule prices the decision. Resources are cpu, memory and pod
// slots; remainingPods is the number of pods still to place after this one.
func newJoinRule(duals dualPrices, remaining [2]int64, remainingPods int64, claim, pod [3]int64, cur int32, curAvail [3]int64, curPrice float64, ownAvail [3]int64, ownPrice float64) joinRule {
	j := joinRule{duals: duals, remaining: remaining, claim: claim, pod: pod, cur: cur, curPrice: curPrice}
	if remainingPods > 0 {
		j.slotValue = (duals.cpu*float64(remaining[0]) + duals.memory*float64(remaining[1])) / float64(remainingPods)
	}
	var left [3]int64
	for d := range left {
		left[d] = curAvail[d] - claim[d] + ownAvail[d] - pod[d]
	}
	j.apart = curPrice + ownPrice - j.roomValue(left)
	return j
}

// roomValue is what room (cpu, memory, pod slots) is worth to the pods
// still to come.
func (j *joinRule) roomValue(room [3]int64) float64 {
	v := j.duals.roomValue(room[0], room[1], &j.remaining)
	return min(v, j.slotValue*float64(max(room[2], 0)))
}

// ceiling bounds the price of any type worth growing into.
func (j *joinRule) ceiling() float64 {
	return j.apart + j.duals.cpu*float64(j.remaining[0]) + j.duals.memory*float64(j.remaining[1]) + 1e-9
}

// accepts reports whether growing the claim into type grown (with avail,
// at price) beats the pod's own node: the join's price less the room it
// leaves is at most apart. Staying on the current type at no higher price
// is always accepted.
func (j *joinRule) accepts(grown int32, avail [3]int64, price float64) bool {
	if grown == j.cur && price <= j.curPrice {
		return true
	}
	var left [3]int64
	for d := range left {
		left[d] = avail[d] - j.claim[d] - j.pod[d]
	}
	return price-j.roomValue(left) <= j.apart+1e-9
}

func cpuMemPods(v vec) [3]int64 { return [3]int64{v[dimCPU], v[dimMemory], v[dimPods]} }

// joinMemo is the last rule joinRuleFor built. A probe of one claim for
// one pod asks for the same rule up to three times (worthTrying, the
// ceiling, worthJoining), and nothing it depends on changes until the pod
// is placed, after which the pod is never probed again.
type joinMemo struct {
	c          *claim
	p          *podInfo
	alone      int32
	alonePrice float64
	rule       joinRule
}

// joinRuleFor is the join rule for p and claim c, p's own node being of
// type alone at alonePrice.
func (s *solver) joinRuleFor(c *claim, p *podInfo, alone int32, alonePrice float64) *joinRule {
	m := &s.join
	if m.c != c || m.p != p || m.alone != alone || m.alonePrice != alonePrice {
		*m = joinMemo{c: c, p: p, alone: alone, alonePrice: alonePrice,
			rule: newJoinRule(c.ct.duals, s.remaining, s.remainingPods, cpuMemPods(c.requests), cpuMemPods(p.requests),
				c.list.front[0], cpuMemPods(c.ct.types[c.list.front[0]].avail), c.list.frontPrices[0], cpuMemPods(c.ct.types[alone].avail), alonePrice)}
	}
	return &m.rule
}

// worthTrying reports whether, before any narrowing, the claim has a type
// that holds p and the join rule would accept. Its types keep their order
// and prices, so the first type that fits is the claim's new cheapest, and
// by the invariant no type dearer than the ceiling can be worth growing
// into.
func (s *solver) worthTrying(c *claim, p *podInfo, alone int32, alonePrice float64) bool {
	ceiling := math.Inf(1)
	for i, t := range c.list.front {
		if c.list.frontPrices[i] > ceiling {
			return false
		}
		if s.typeFits(c, t, p.requests) {
			return i == 0 || s.worthJoining(c, p, t, c.list.frontPrices[i], alone, alonePrice)
		}
		if i == 0 {
			ceiling = s.joinCeiling(c, p, alone, alonePrice)
		}
	}
	return false
}

// joinCeiling bounds the price of any type worth growing c into for p.
func (s *solver) joinCeiling(c *claim, p *podInfo, alone int32, alonePrice float64) float64 {
	return s.joinRuleFor(c, p, alone, alonePrice).ceiling()
}

// worthJoining decides whether p should grow claim c from its cheapest type
// to type grown (at price), rather than get a node of type alone by itself.
func (s *solver) worthJoining(c *claim, p *podInfo, grown int32, price float64, alone int32, alonePrice float64) bool {
	return s.joinRuleFor(c, p, alone, alonePrice).accepts(grown, cpuMemPods(c.ct.types[grown].avail), price)
}
