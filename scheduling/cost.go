package scheduling

import (
	"cmp"
	"slices"

	"github.com/fleetpack/fleetpack/offerings"
)

// ClaimPriceTolerance is how far above a claim's bill a listed type's bill
// may be. EC2's lowest-price and price-capacity-optimized strategies may
// launch any type on a claim's list, so a type is listed only if its bill
// for the claim's pods is within 10% of the claim's: the plan's price is
// then what the launch costs, give or take that much.
const ClaimPriceTolerance = 0.10

// The solver minimises the bill (offerings.NodeBill), not the list price.
// Everything it knows about the bill is settled here, when a template's
// types are compiled, so that the packing itself keeps comparing one price
// per type:
//
//   - per-node costs are added to every offering's price;
//   - BurstableExclude drops burstable types;
//   - BurstableBaseline (the default) cuts a burstable type's cpu to
//     offerings.BaselineAllocatableCPUMilli: pods get only what it sustains;
//   - BurstableCredits keeps every vCPU and prices the type as if its pods
//     requested all of it (surplusAtFull): the bill of a full node, which is
//     what packing makes of nearly every node. That overstates the bill of a
//     node left part-empty, so finish orders and trims each claim's list by
//     the bill at the claim's real requests (claimBill).

// billedType prepares ti under t's cost settings. It returns false for a
// type the template's burstable policy excludes. ti.avail and ti.offers
// must be set and ti.avail not yet reduced by daemonsets.
func billedType(t *NodeTemplate, ti *typeInfo) bool {
	_, burstable := ti.it.BurstableBaselineMilli()
	switch {
	case !burstable:
	case t.Burstable == offerings.BurstableExclude:
		return false
	case t.Burstable == offerings.BurstableCredits:
		ti.surplusAtFull = ti.it.SurplusCreditHourly(ti.avail[dimCPU])
	default:
		ti.avail[dimCPU] = min(ti.avail[dimCPU], ti.it.BaselineAllocatableCPUMilli())
	}
	if extra := t.NodeCosts.Hourly() + ti.surplusAtFull; extra != 0 {
		for i := range ti.offers {
			ti.offers[i].price += extra
		}
	}
	return true
}

// claimBill is the bill of a node of type t carrying c's pods, given price,
// the solver's price for t under c's requirements: the full-load surplus
// credits it includes are replaced by those the claim's requests incur.
func claimBill(c *claim, t int32, price float64) float64 {
	ti := &c.ct.types[t]
	if ti.surplusAtFull == 0 {
		return price
	}
	return price - ti.surplusAtFull + ti.it.SurplusCreditHourly(c.requests[dimCPU]+ti.daemonSet[dimCPU])
}

// claimTypes lists the types claim c may launch as: those that hold its pods
// (within what reserveLimits set aside), cheapest bill first, none billed
// more than the solve's tolerance (Input.ClaimPriceTolerance) above the
// cheapest, at most maxTypes.
func (s *solver) claimTypes(c *claim) []int32 {
	type billed struct {
		t    int32
		bill float64
	}
	var kept []billed
	cheapest := -1.0
	credits := c.ct.t.Burstable == offerings.BurstableCredits
	for i, t := range c.list.all {
		ti := &c.ct.types[t]
		if cheapest >= 0 && !credits && c.list.allPrices[i] > cheapest*(1+s.tolerance)+1e-12 {
			break // sorted by price, which is the bill outside Credits mode
		}
		if c.ct.limitedResources && (ti.capacity[dimCPU] > c.reservedCPU || ti.capacity[dimMemory] > c.reservedMem) {
			continue // beyond what reserveLimits set aside
		}
		if !fits(c.requests, ti.avail) {
			continue
		}
		bill := claimBill(c, t, c.list.allPrices[i])
		if cheapest < 0 || bill < cheapest {
			cheapest = bill
		}
		kept = append(kept, billed{t, bill})
	}
	if credits {
		slices.SortStableFunc(kept, func(a, b billed) int { return cmp.Compare(a.bill, b.bill) })
	}
	out := make([]int32, 0, min(len(kept), s.maxTypes))
	for _, k := range kept {
		if k.bill > cheapest*(1+s.tolerance)+1e-12 || len(out) == s.maxTypes {
			break
		}
		out = append(out, k.t)
	}
	return out
}
