package scheduling

import "slices"

// Deciding whether a pod should join an open claim needs a price for spare
// room: growing a claim to a bigger type costs more now, but the room it adds
// will hold later pods. The solver values room at the dual prices of the
// linear program "cover the workload's total cpu and memory with a fractional
// mix of instance types at least cost" (offerings.CostLowerBound's program,
// over fewer types: see below). Under those prices no type is worth more than it
// costs, and the types of the optimal mix cost exactly what they hold, so a
// type's price less the value of its room measures how far it is from the
// cheapest way to buy that workload. Room is only worth something while pods
// remain to fill it, so its value is capped by the demand still unplaced:
// near the end of a solve the rule becomes "join unless a node of the pod's
// own is cheaper", and early on "join unless the bigger type is a worse buy".

// Types too small for most pods must not set the prices: the cheapest cpu
// in the catalog is a burstable Spot t3.nano (2 vCPU for about $0.001/h)
// that holds almost no pod, and pricing room by it made spare cpu look free,
// so cpu-heavy pods filled nodes bought for their memory. The program is
// therefore solved over the types that hold the median pod (the median cpu
// and the median memory of the pods to place), or over all types when none
// does. On the 5,000-pod benchmark this cut the plan from $99.0/h to
// $98.0/h, and by 2% to 7% on average over other seeds and workloads (see
// docs/benchmarks.md).

// dualPrices holds the LP dual: dollars per hour per millicore and per byte.
type dualPrices struct {
	cpu, memory float64
}

// solveDual maximises totalCPU*l1 + totalMem*l2 subject to
// cpu_t*l1 + mem_t*l2 <= price_t for every type, l >= 0. For fixed l1 the
// best l2 is min_t (price_t - cpu_t*l1)/mem_t, so the objective is a concave
// function of l1 alone; a ternary search finds its maximum.
func solveDual(cpu, mem []float64, price []float64, totalCPU, totalMem float64) dualPrices {
	if len(price) == 0 {
		return dualPrices{}
	}
	hi := -1.0
	for i := range price {
		if cpu[i] > 0 {
			if r := price[i] / cpu[i]; hi < 0 || r < hi {
				hi = r
			}
		}
	}
	if hi < 0 {
		return dualPrices{}
	}
	lines := envelopeCandidates(cpu, mem, price)
	best2 := func(l1 float64) float64 {
		l2 := -1.0
		for _, i := range lines {
			if r := (price[i] - cpu[i]*l1) / mem[i]; l2 < 0 || r < l2 {
				l2 = r
			}
		}
		return max(l2, 0)
	}
	objective := func(l1 float64) float64 { return totalCPU*l1 + totalMem*best2(l1) }
	lo := 0.0
	for range 100 {
		m1, m2 := lo+(hi-lo)/3, hi-(hi-lo)/3
		if objective(m1) < objective(m2) {
			lo = m1
		} else {
			hi = m2
		}
	}
	l1 := (lo + hi) / 2
	return dualPrices{cpu: l1, memory: best2(l1)}
}

// envelopeCandidates returns the types that can give best2 its minimum:
// as lines in l1, (price - cpu*l1)/mem has intercept price/mem and slope
// -cpu/mem, and a type whose intercept and slope are both beaten by another
// type's is above it for every l1 >= 0. Those are dropped, so the ternary
// search's 200 evaluations scan a few dozen types instead of the catalog.
// "Beaten" needs a margin of 1e-9 on both, far above rounding, so the
// minimum each evaluation finds is the very value a scan of all types finds.
func envelopeCandidates(cpu, mem, price []float64) []int {
	byIntercept := make([]int, 0, len(price))
	for i := range price {
		if mem[i] > 0 {
			byIntercept = append(byIntercept, i)
		}
	}
	intercept := func(i int) float64 { return price[i] / mem[i] }
	slope := func(i int) float64 { return cpu[i] / mem[i] }
	slices.SortFunc(byIntercept, func(a, b int) int {
		ia, ib := intercept(a), intercept(b)
		if ia != ib {
			if ia < ib {
				return -1
			}
			return 1
		}
		return a - b
	})
	const margin = 1e-9
	kept := byIntercept[:0:0]
	steepest, k := -1.0, 0
	for _, i := range byIntercept {
		// steepest is the largest slope among types of clearly smaller intercept.
		for ; k < len(byIntercept) && intercept(byIntercept[k]) < intercept(i)*(1-margin); k++ {
			steepest = max(steepest, slope(byIntercept[k]))
		}
		if steepest <= slope(i)*(1+margin) {
			kept = append(kept, i)
		}
	}
	return kept
}

// value is what requests (or room) v is worth at these prices: its cpu
// and memory, no more.
func (d dualPrices) value(v vec) float64 {
	return d.cpu*float64(v[dimCPU]) + d.memory*float64(v[dimMemory])
}

// roomValue is what spare room is worth, counting no more of it than the
// pods still to be placed (remaining) can fill.
func (d dualPrices) roomValue(cpu, memory int64, remaining *[2]int64) float64 {
	return d.cpu*float64(min(cpu, remaining[0])) + d.memory*float64(min(memory, remaining[1]))
}

// templateDuals solves the dual over ct's types that hold the median pod.
func templateDuals(ct *compiledTemplate, mask offerMask, total vec, median [2]int64) dualPrices {
	cpu, mem, price := make([]float64, 0, len(ct.types)), make([]float64, 0, len(ct.types)), make([]float64, 0, len(ct.types))
	for _, holdMedian := range []bool{true, false} {
		for i := range ct.types {
			ti := &ct.types[i]
			if ti.avail[dimCPU] <= 0 || ti.avail[dimMemory] <= 0 {
				continue
			}
			if holdMedian && (ti.avail[dimCPU] < median[0] || ti.avail[dimMemory] < median[1]) {
				continue
			}
			p, _ := ti.price(mask)
			cpu, mem, price = append(cpu, float64(ti.avail[dimCPU])), append(mem, float64(ti.avail[dimMemory])), append(price, p)
		}
		if len(price) > 0 {
			break
		}
	}
	return solveDual(cpu, mem, price, float64(max(total[dimCPU], 1)), float64(max(total[dimMemory], 1)))
}

// medianPod returns the median cpu and the median memory request of pods,
// each taken on its own.
func medianPod(pods []*podInfo) [2]int64 {
	if len(pods) == 0 {
		return [2]int64{}
	}
	cpu, mem := make([]int64, len(pods)), make([]int64, len(pods))
	for i, p := range pods {
		cpu[i], mem[i] = p.requests[dimCPU], p.requests[dimMemory]
	}
	slices.Sort(cpu)
	slices.Sort(mem)
	return [2]int64{cpu[len(cpu)/2], mem[len(mem)/2]}
}
