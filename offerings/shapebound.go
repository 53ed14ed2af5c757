package offerings

import "math"

// PodShape is a number of pods with the same cpu and memory requests.
type PodShape struct {
	CPUMilli, MemoryBytes int64
	Count                 int
}

// ShapeLowerBound returns a lower bound, in USD per hour, on any set of
// nodes that holds the given pods, tighter than CostLowerBound where the
// catalog has types that are cheap for one resource but too small for the
// pods (burstable Spot types are the usual case). It respects that a pod
// goes on one node whose type fits it whole and takes one of its pod slots:
//
// For a node of type t holding pods P, price_t >= price_t * max(Σcpu/cpu_t,
// Σmem/mem_t, |P|/pods_t) >= Σ_p price_t * (a*cpu_p/cpu_t + b*mem_p/mem_t +
// (1-a-b)/pods_t) for any a, b >= 0 with a+b <= 1. So the plan costs at
// least Σ_p min over types t that fit p of that share, for every a and b;
// this returns the best a and b it finds (the sum is concave in them, so
// nested ternary searches find the maximum; any a and b give a valid bound).
// A type that states no pods capacity has no pods term. Pods no type fits
// make the bound +Inf; no pods make it 0.
func ShapeLowerBound(types []*InstanceType, shapes []PodShape) float64 {
	opts := undominated(pricedTypes(types))
	bound := func(a, b float64) float64 {
		total := 0.0
		for _, s := range shapes {
			if s.Count <= 0 {
				continue
			}
			best := math.Inf(1)
			c, m := float64(s.CPUMilli), float64(s.MemoryBytes)
			for _, o := range opts {
				if c > o.cpu || m > o.memory {
					continue
				}
				share := a*c/o.cpu + b*m/o.memory
				if o.pods > 0 {
					share += (1 - a - b) / o.pods
				}
				best = min(best, o.price*share)
			}
			total += best * float64(s.Count)
		}
		return total
	}
	// bestB maximises over b for a given a, returning the value.
	bestB := func(a float64) float64 {
		lo, hi := 0.0, 1-a
		for range 40 {
			m1, m2 := lo+(hi-lo)/3, hi-(hi-lo)/3
			if bound(a, m1) < bound(a, m2) {
				lo = m1
			} else {
				hi = m2
			}
		}
		return max(bound(a, (lo+hi)/2), bound(a, 0), bound(a, 1-a))
	}
	lo, hi := 0.0, 1.0
	for range 40 {
		m1, m2 := lo+(hi-lo)/3, hi-(hi-lo)/3
		if bestB(m1) < bestB(m2) {
			lo = m1
		} else {
			hi = m2
		}
	}
	return max(bestB((lo+hi)/2), bestB(0), bestB(1))
}

// undominated drops the types with no cpu or memory, and each type that
// another type matches or beats on cpu, memory, pods and price: the bound
// never needs it, and the catalog shrinks from about 1,400 types to about
// 150.
func undominated(types []pricedType) []pricedType {
	var out []pricedType
	podsOf := func(t pricedType) float64 {
		if t.pods <= 0 {
			return math.Inf(1)
		}
		return t.pods
	}
	for i, t := range types {
		if t.cpu <= 0 || t.memory <= 0 {
			continue
		}
		dominated := false
		for j, u := range types {
			if i == j || u.cpu < t.cpu || u.memory < t.memory || podsOf(u) < podsOf(t) || u.price > t.price {
				continue
			}
			// Of equal types keep the first.
			if u.cpu > t.cpu || u.memory > t.memory || podsOf(u) > podsOf(t) || u.price < t.price || j < i {
				dominated = true
				break
			}
		}
		if !dominated {
			out = append(out, t)
		}
	}
	return out
}
