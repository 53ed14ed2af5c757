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
// goes on one node whose type fits it whole:
//
// For a node of type t holding pods P, price_t >= price_t * max(Σcpu/cpu_t,
// Σmem/mem_t) >= Σ_p price_t * (a*cpu_p/cpu_t + (1-a)*mem_p/mem_t) for any
// a in [0,1]. So the plan costs at least Σ_p min over types t that fit p of
// price_t * (a*cpu_p/cpu_t + (1-a)*mem_p/mem_t), for every a; this returns
// the best a (the sum is concave in a, so a ternary search finds it).
// Pods no type fits make the bound +Inf; no pods make it 0.
func ShapeLowerBound(types []*InstanceType, shapes []PodShape) float64 {
	var opts []pricedType
	for _, t := range pricedTypes(types) {
		if t.cpu > 0 && t.memory > 0 {
			opts = append(opts, t)
		}
	}
	bound := func(a float64) float64 {
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
				best = min(best, o.price*(a*c/o.cpu+(1-a)*m/o.memory))
			}
			total += best * float64(s.Count)
		}
		return total
	}
	lo, hi := 0.0, 1.0
	for range 60 {
		m1, m2 := lo+(hi-lo)/3, hi-(hi-lo)/3
		if bound(m1) < bound(m2) {
			lo = m1
		} else {
			hi = m2
		}
	}
	return max(bound((lo+hi)/2), bound(0), bound(1))
}
