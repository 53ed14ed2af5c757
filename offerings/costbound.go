package offerings

import (
	"math"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// CostLowerBound returns a lower bound, in USD per hour, on what any set of
// nodes whose allocatable cpu and memory cover cpuMilli millicores and
// memoryBytes bytes can cost: the optimum of the linear relaxation that may
// buy fractions of nodes,
//
//	minimise   sum_i price_i x_i
//	subject to sum_i cpu_i x_i >= cpuMilli, sum_i mem_i x_i >= memoryBytes, x >= 0,
//
// where cpu_i and mem_i are a type's Allocatable and price_i its cheapest
// available offering (types without one are ignored). Real plans also pay for
// integrality, pods limits, daemonsets and constraints, so plan cost / bound
// >= 1 measures how close a plan is to the ideal.
//
// It returns 0 when nothing is requested and +Inf when no type offers a
// requested resource. With two constraints an optimal vertex uses at most
// two types; it is found as the point where the diagonal leaves the convex
// hull of the types' "resources per dollar" (normalised by the request),
// in O(n log n).
func CostLowerBound(types []*InstanceType, cpuMilli, memoryBytes int64) float64 {
	need := [2]float64{float64(max(cpuMilli, 0)), float64(max(memoryBytes, 0))}
	if need[0] == 0 && need[1] == 0 {
		return 0
	}
	// perDollar[i] is what one dollar per hour of type i buys.
	perDollar := make([][2]float64, 0, len(types))
	free := [2]bool{}
	for _, t := range pricedTypes(types) {
		res := [2]float64{t.cpu, t.memory}
		if res[0] <= 0 && res[1] <= 0 {
			continue
		}
		if t.price <= 0 {
			// A free type covers what it has at no cost, however much is needed.
			free[0] = free[0] || res[0] > 0
			free[1] = free[1] || res[1] > 0
			continue
		}
		perDollar = append(perDollar, [2]float64{res[0] / t.price, res[1] / t.price})
	}
	for d := range need {
		if free[d] {
			need[d] = 0
		}
	}
	// One resource only: the best per-dollar type of that resource.
	for d := range need {
		other := 1 - d
		if need[other] != 0 {
			continue
		}
		if need[d] == 0 {
			return 0
		}
		best := 0.0
		for _, p := range perDollar {
			best = math.Max(best, p[d])
		}
		if best == 0 {
			return math.Inf(1)
		}
		return need[d] / best
	}

	// Normalise so that (1, 1) is the request: a dollar of type i covers
	// fraction u of the cpu and v of the memory requested. A budget B buys
	// B*z for any z in the hull H of the points, their projections on the
	// axes and the origin (buying less than a node's worth is free
	// disposal). The cheapest B is 1/t* for the largest t with (t, t) in H.
	pts := make([]hullPoint, 0, 3*len(perDollar)+1)
	pts = append(pts, hullPoint{})
	best := 0.0
	for _, p := range perDollar {
		u, v := p[0]/need[0], p[1]/need[1]
		best = math.Max(best, math.Min(u, v)) // a single type
		pts = append(pts, hullPoint{u, v}, hullPoint{u, 0}, hullPoint{0, v})
	}
	hull := convexHull(pts)
	for i := range hull {
		p, q := hull[i], hull[(i+1)%len(hull)]
		du, dv := q.u-p.u, q.v-p.v
		den := du - dv
		if den == 0 {
			continue // parallel to the diagonal: its endpoints are vertices, covered above
		}
		s := (p.v - p.u) / den
		if s < 0 || s > 1 {
			continue
		}
		// The crossing mixes two types (or a type and a projection).
		best = math.Max(best, math.Min(p.u+s*du, p.v+s*dv))
	}
	if best <= 0 {
		return math.Inf(1)
	}
	return 1 / best
}

// pricedType is what both cost bounds know of a type: allocatable cpu
// (millicores), memory (bytes) and pods (0 when the type states none), and
// its cheapest available offering.
type pricedType struct{ cpu, memory, pods, price float64 }

// pricedTypes lists the types that have an available offering.
func pricedTypes(types []*InstanceType) []pricedType {
	out := make([]pricedType, 0, len(types))
	for _, it := range types {
		if it == nil {
			continue
		}
		o, ok := it.CheapestOffering(nil)
		if !ok {
			continue
		}
		out = append(out, pricedType{
			cpu:    float64(allocatableMilli(it, corev1.ResourceCPU)),
			memory: float64(allocatableMilli(it, corev1.ResourceMemory)) / 1000,
			pods:   float64(allocatableMilli(it, corev1.ResourcePods)) / 1000,
			price:  o.Price,
		})
	}
	return out
}

// allocatableMilli is Allocatable()[name] in thousandths of a unit, computed
// without building maps (the bounds run over the whole catalog).
func allocatableMilli(it *InstanceType, name corev1.ResourceName) int64 {
	c, ok := it.Capacity[name]
	if !ok {
		return 0
	}
	v := c.MilliValue()
	for _, l := range []corev1.ResourceList{it.Overhead.KubeReserved, it.Overhead.SystemReserved, it.Overhead.EvictionThreshold} {
		if q, ok := l[name]; ok {
			v -= q.MilliValue()
		}
	}
	return max(v, 0)
}

type hullPoint struct{ u, v float64 }

// convexHull returns the vertices of the convex hull of pts in
// counter-clockwise order (Andrew's monotone chain), without collinear points.
func convexHull(pts []hullPoint) []hullPoint {
	sort.Slice(pts, func(i, j int) bool {
		if pts[i].u != pts[j].u {
			return pts[i].u < pts[j].u
		}
		return pts[i].v < pts[j].v
	})
	if len(pts) < 3 {
		return pts
	}
	cross := func(o, a, b hullPoint) float64 {
		return (a.u-o.u)*(b.v-o.v) - (a.v-o.v)*(b.u-o.u)
	}
	hull := make([]hullPoint, 0, 2*len(pts))
	for _, p := range pts { // lower hull
		for len(hull) >= 2 && cross(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	lower := len(hull) + 1
	for i := len(pts) - 2; i >= 0; i-- { // upper hull
		p := pts[i]
		for len(hull) >= lower && cross(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	return hull[:len(hull)-1]
}
