package scheduling

// The join rule: whether a pod should grow an open claim into a bigger
// (dearer) type, or get a node of its own. Both outcomes are priced, and
// each is credited with the room it leaves for the pods still to come,
// valued at the template's dual prices (value.go) and counted only up to
// what those pods can fill.
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
	// claim is the claim's cpu and memory requests, pod the pod's.
	claim, pod [2]int64
	// cur is the claim's cheapest type that holds it now.
	cur      int32
	curPrice float64
	// apart is the price of keeping the pod off the claim (the claim's
	// current type plus the pod's own node), less the room both leave.
	apart float64
}

func newJoinRule(duals dualPrices, remaining [2]int64, claim, pod [2]int64, cur int32, curAvail [2]int64, curPrice float64, ownAvail [2]int64, ownPrice float64) joinRule {
	j := joinRule{duals: duals, remaining: remaining, claim: claim, pod: pod, cur: cur, curPrice: curPrice}
	room := duals.roomValue(curAvail[0]-claim[0]+ownAvail[0]-pod[0], curAvail[1]-claim[1]+ownAvail[1]-pod[1], &j.remaining)
	j.apart = curPrice + ownPrice - room
	return j
}

// ceiling bounds the price of any type worth growing into.
func (j *joinRule) ceiling() float64 {
	return j.apart + j.duals.cpu*float64(j.remaining[0]) + j.duals.memory*float64(j.remaining[1]) + 1e-9
}

// accepts reports whether growing the claim into type grown (with avail,
// at price) beats the pod's own node: the join's price less the room it
// leaves is at most apart. Staying on the current type at no higher price
// is always accepted.
func (j *joinRule) accepts(grown int32, avail [2]int64, price float64) bool {
	if grown == j.cur && price <= j.curPrice {
		return true
	}
	joinRoom := j.duals.roomValue(avail[0]-j.claim[0]-j.pod[0], avail[1]-j.claim[1]-j.pod[1], &j.remaining)
	return price-joinRoom <= j.apart+1e-9
}

func cpuMem(v vec) [2]int64 { return [2]int64{v[dimCPU], v[dimMemory]} }

// joinRuleFor is the join rule for p and claim c, p's own node being of
// type alone at alonePrice.
func (s *solver) joinRuleFor(c *claim, p *podInfo, alone int32, alonePrice float64) joinRule {
	return newJoinRule(c.ct.duals, s.remaining, cpuMem(c.requests), cpuMem(p.requests),
		c.types[0], cpuMem(c.ct.types[c.types[0]].avail), c.prices[0], cpuMem(c.ct.types[alone].avail), alonePrice)
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

// joinCeiling bounds the price of any type worth growing c into for p.
func (s *solver) joinCeiling(c *claim, p *podInfo, alone int32, alonePrice float64) float64 {
	j := s.joinRuleFor(c, p, alone, alonePrice)
	return j.ceiling()
}

// worthJoining decides whether p should grow claim c from its cheapest type
// to type grown (at price), rather than get a node of type alone by itself.
func (s *solver) worthJoining(c *claim, p *podInfo, grown int32, price float64, alone int32, alonePrice float64) bool {
	j := s.joinRuleFor(c, p, alone, alonePrice)
	return j.accepts(grown, cpuMem(c.ct.types[grown].avail), price)
}
