package offerings

import (
	"math"
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

const gib = 1 << 30

// boundType is an instance type with no overhead, so its allocatable is the
// given cpu (millicores) and memory (bytes).
func boundType(name string, cpuMilli, memBytes int64, prices ...float64) *InstanceType {
	it := &InstanceType{
		Name: name,
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(cpuMilli, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(memBytes, resource.BinarySI),
		},
	}
	for i, p := range prices {
		it.Offerings = append(it.Offerings, Offering{Zone: "z", CapacityType: CapacityTypeOnDemand, Price: p, Available: i == 0 || p > 0})
	}
	return it
}

func closeTo(got, want float64) bool {
	if math.IsInf(want, 1) {
		return math.IsInf(got, 1)
	}
	return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want))
}

func TestCostLowerBoundHandComputed(t *testing.T) {
	a := boundType("a", 4000, 4*gib, 1)   // 4 cpu, 4Gi, $1
	b := boundType("b", 1000, 8*gib, 1)   // 1 cpu, 8Gi, $1
	cpuOnly := boundType("c", 4000, 0, 1) // cpu only, $1
	memOnly := boundType("m", 0, 8*gib, 2)
	spotCheaper := boundType("s", 4000, 4*gib, 1)
	spotCheaper.Offerings = append(spotCheaper.Offerings,
		Offering{Zone: "z", CapacityType: CapacityTypeSpot, Price: 0.25, Available: true},
		Offering{Zone: "y", CapacityType: CapacityTypeSpot, Price: 0.1, Available: false})
	unavailable := boundType("u", 64000, 512*gib, 0.01)
	unavailable.Offerings[0].Available = false
	withOverhead := boundType("o", 5000, 5*gib, 1)
	withOverhead.Overhead.KubeReserved = corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1"),
		corev1.ResourceMemory: resource.MustParse("1Gi"),
	}

	tests := []struct {
		name  string
		types []*InstanceType
		cpu   int64
		mem   int64
		want  float64
	}{
		{"nothing requested", []*InstanceType{a}, 0, 0, 0},
		{"no types", nil, 1000, gib, math.Inf(1)},
		{"single exact fit", []*InstanceType{a, b}, 4000, 4 * gib, 1},
		// 4x + y = 8 cpu, 4x + 8y = 16Gi: y = 8/7, x = 12/7, cost 20/7;
		// a alone costs 4, b alone 8.
		{"two-type mix", []*InstanceType{a, b}, 8000, 16 * gib, 20.0 / 7},
		{"cpu-bound single", []*InstanceType{a, b}, 8000, gib, 2},
		{"memory-bound single", []*InstanceType{a, b}, 1000, 16 * gib, 2},
		{"cpu only request", []*InstanceType{a, b}, 6000, 0, 1.5},
		{"memory only request", []*InstanceType{a, b}, 0, 2 * gib, 0.25},
		{"one-resource types", []*InstanceType{cpuOnly, memOnly}, 4000, 8 * gib, 3},
		{"missing resource", []*InstanceType{cpuOnly}, 4000, gib, math.Inf(1)},
		{"cheapest available offering", []*InstanceType{spotCheaper}, 8000, 8 * gib, 0.5},
		{"unavailable type ignored", []*InstanceType{unavailable, a}, 4000, 4 * gib, 1},
		{"allocatable, not capacity", []*InstanceType{withOverhead}, 8000, 8 * gib, 2},
		{"free type covers its resource", []*InstanceType{boundType("f", 1000, 0, 0), memOnly}, 100000, 16 * gib, 4},
		{"negative request is none", []*InstanceType{a}, -5, -5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CostLowerBound(tt.types, tt.cpu, tt.mem); !closeTo(got, tt.want) {
				t.Errorf("CostLowerBound = %v, want %v", got, tt.want)
			}
		})
	}
}

type lpItem struct{ c, m, p float64 }

func lpItems(types []*InstanceType) []lpItem {
	var items []lpItem
	for _, it := range types {
		o, ok := it.CheapestOffering(nil)
		if !ok {
			continue
		}
		alloc := it.Allocatable()
		items = append(items, lpItem{float64(alloc.Cpu().MilliValue()), float64(alloc.Memory().Value()), o.Price})
	}
	return items
}

// primalBruteForce enumerates the LP's basic solutions: one type scaled to
// cover both demands, or two types with both constraints tight.
func primalBruteForce(items []lpItem, C, M float64) float64 {
	best := math.Inf(1)
	for _, a := range items {
		need := 0.0
		if C > 0 {
			need = math.Max(need, C/a.c)
		}
		if M > 0 {
			need = math.Max(need, M/a.m)
		}
		best = math.Min(best, need*a.p)
	}
	for i, a := range items {
		for _, b := range items[i+1:] {
			det := a.c*b.m - b.c*a.m
			if det == 0 {
				continue
			}
			x := (C*b.m - b.c*M) / det
			y := (a.c*M - C*a.m) / det
			if x >= 0 && y >= 0 {
				best = math.Min(best, x*a.p+y*b.p)
			}
		}
	}
	return best
}

// dualBruteForce solves the dual, max C*y1 + M*y2 subject to
// c_i*y1 + m_i*y2 <= p_i and y >= 0, by checking every vertex candidate.
func dualBruteForce(items []lpItem, C, M float64) float64 {
	// Constraint lines: the items, and the axes y1 = 0, y2 = 0.
	type line struct{ a, b, r float64 } // a*y1 + b*y2 = r
	lines := []line{{1, 0, 0}, {0, 1, 0}}
	for _, it := range items {
		lines = append(lines, line{it.c, it.m, it.p})
	}
	feasible := func(y1, y2 float64) bool {
		if y1 < -1e-15 || y2 < -1e-15 {
			return false
		}
		for _, it := range items {
			if it.c*y1+it.m*y2 > it.p*(1+1e-9) {
				return false
			}
		}
		return true
	}
	best := math.Inf(-1)
	for i, l := range lines {
		for _, k := range lines[i+1:] {
			det := l.a*k.b - k.a*l.b
			if det == 0 {
				continue
			}
			y1 := (l.r*k.b - k.r*l.b) / det
			y2 := (l.a*k.r - k.a*l.r) / det
			if feasible(y1, y2) {
				best = math.Max(best, C*y1+M*y2)
			}
		}
	}
	return best
}

func TestCostLowerBoundRandomVsBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 3000; trial++ {
		n := 1 + rng.IntN(10)
		types := make([]*InstanceType, n)
		for i := range types {
			types[i] = boundType("t", 250+rng.Int64N(64000), (1+rng.Int64N(512))*gib/4, 0.01+rng.Float64()*5)
		}
		cpu := rng.Int64N(500000) + 1
		mem := rng.Int64N(2000)*gib + 1
		items := lpItems(types)
		got := CostLowerBound(types, cpu, mem)
		primal := primalBruteForce(items, float64(cpu), float64(mem))
		dual := dualBruteForce(items, float64(cpu), float64(mem))
		if math.Abs(got-primal) > 1e-7*primal || math.Abs(got-dual) > 1e-7*dual {
			t.Fatalf("trial %d: bound %v, primal brute force %v, dual %v (types %v, cpu %d, mem %d)", trial, got, primal, dual, items, cpu, mem)
		}
	}
}

func TestCostLowerBoundCatalog(t *testing.T) {
	types := mustDefaultCatalog(t, CatalogOptions{})
	items := lpItems(types)
	for _, req := range []struct{ cpu, mem int64 }{
		{1000, gib},
		{100000, 100 * gib},       // cpu-heavy
		{10000, 2000 * gib},       // memory-heavy
		{500000, 2000 * gib},      // balanced, large
		{3_000_000, 100000 * gib}, // huge
	} {
		got := CostLowerBound(types, req.cpu, req.mem)
		want := primalBruteForce(items, float64(req.cpu), float64(req.mem))
		if math.Abs(got-want) > 1e-9*want {
			t.Errorf("cpu %d mem %d: bound %v, brute force %v", req.cpu, req.mem, got, want)
		}
		// Each constraint alone is a relaxation (a weaker bound), and the
		// cheapest single type that covers both is a feasible mix (a higher
		// cost).
		cpuAlone, memAlone, single := math.Inf(1), math.Inf(1), math.Inf(1)
		for _, it := range items {
			cpuAlone = math.Min(cpuAlone, float64(req.cpu)/it.c*it.p)
			memAlone = math.Min(memAlone, float64(req.mem)/it.m*it.p)
			single = math.Min(single, math.Max(float64(req.cpu)/it.c, float64(req.mem)/it.m)*it.p)
		}
		if lower := math.Max(cpuAlone, memAlone); got < lower*(1-1e-12) || got > single*(1+1e-12) {
			t.Errorf("cpu %d mem %d: bound %v outside [%v, %v]", req.cpu, req.mem, got, lower, single)
		}
	}
}

func BenchmarkCostLowerBound(b *testing.B) {
	types, err := DefaultCatalog(CatalogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_ = CostLowerBound(types, 250000, 900*gib)
	}
}
