package scheduling

import (
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
)

// TestDualsIgnoreTypesTooSmallForMostPods pins why the duals are solved
// over types that hold the median pod: a type that is nearly free per cpu
// but holds no pod must not make spare cpu worthless.
func TestDualsIgnoreTypesTooSmallForMostPods(t *testing.T) {
	types := []*offerings.InstanceType{
		// 2 cpu for almost nothing, but only 256Mi: no pod below fits.
		makeType(typeSpec{name: "t9.nano", cpu: "2", memory: "256Mi", price: 0.001, noSpot: true}),
		makeType(typeSpec{name: "c9.2xlarge", cpu: "8", memory: "16Gi", price: 0.32, noSpot: true}),
		makeType(typeSpec{name: "r9.2xlarge", cpu: "8", memory: "64Gi", price: 0.48, noSpot: true}),
	}
	var pods []*corev1.Pod
	for i, r := range [][2]string{{"2", "1Gi"}, {"1", "2Gi"}, {"500m", "8Gi"}, {"4", "512Mi"}, {"1", "4Gi"}} {
		pods = append(pods, makePod(string(rune('a'+i)), r[0], r[1]))
	}
	s, err := newSolver(Input{Pods: pods, Templates: []*NodeTemplate{defaultTemplate(types)}})
	if err != nil {
		t.Fatal(err)
	}
	d := s.templates[0].duals
	// Over c9 and r9 alone, cpu costs (0.32 - 16Gi*memory)/8 per core; a
	// dual taken over t9.nano too would price a core at most 0.0005.
	perCore := d.cpu * 1000
	if perCore < 0.01 {
		t.Fatalf("cpu dual = $%.5f per core-hour: priced by t9.nano, which holds no pod", perCore)
	}
	for _, it := range types[1:] {
		a := it.Allocatable()
		value := d.cpu*float64(a.Cpu().MilliValue()) + d.memory*float64(a.Memory().Value())
		price := it.Offerings[0].Price + (offerings.NodeCosts{}).Hourly()
		if value > price*1.0001 {
			t.Errorf("%s: room valued at $%.4f, more than its price $%.4f", it.Name, value, price)
		}
	}

	// With only the tiny type holding the median pod's needs, the duals fall
	// back to every type rather than to none.
	small := []*corev1.Pod{makePod("x", "100m", "64Mi"), makePod("y", "100m", "64Mi"), makePod("z", "4", "8Gi")}
	s, err = newSolver(Input{Pods: small, Templates: []*NodeTemplate{defaultTemplate(types[:1])}})
	if err != nil {
		t.Fatal(err)
	}
	if d := s.templates[0].duals; d.cpu <= 0 && d.memory <= 0 {
		t.Fatalf("duals = %+v, want prices from the only type", d)
	}
}

// FuzzEnvelopeCandidates: the types envelopeCandidates keeps give best2's
// inner minimum exactly, for any l1 solveDual searches (0 to the least
// price per cpu), as a scan of every type does.
func FuzzEnvelopeCandidates(f *testing.F) {
	f.Add(uint64(1), 0.5)
	f.Add(uint64(7), 0.0)
	f.Add(uint64(42), 1.0)
	f.Fuzz(func(t *testing.T, seed uint64, at float64) {
		if at < 0 || at > 1 || at != at {
			t.Skip()
		}
		rng := rand.New(rand.NewPCG(seed, seed>>7))
		n := 1 + rng.IntN(300)
		cpu, mem, price := make([]float64, n), make([]float64, n), make([]float64, n)
		for i := range n {
			// Catalog-like sizes and prices, with duplicates and zero memory.
			cpu[i] = float64(int(1) << rng.IntN(8))
			mem[i] = float64(rng.IntN(5)) * cpu[i] * float64(int(1)<<rng.IntN(4))
			price[i] = cpu[i] * (0.01 + rng.Float64()*0.05)
			if rng.IntN(10) == 0 && i > 0 {
				cpu[i], mem[i], price[i] = cpu[i-1], mem[i-1], price[i-1]
			}
		}
		hi := price[0] / cpu[0]
		for i := range n {
			hi = min(hi, price[i]/cpu[i])
		}
		l1 := at * hi
		lowest := func(lines []int) float64 {
			l2 := -1.0
			for _, i := range lines {
				if r := (price[i] - cpu[i]*l1) / mem[i]; l2 < 0 || r < l2 {
					l2 = r
				}
			}
			return l2
		}
		var all []int
		for i := range n {
			if mem[i] > 0 {
				all = append(all, i)
			}
		}
		kept := envelopeCandidates(cpu, mem, price)
		if got, want := lowest(kept), lowest(all); got != want {
			t.Fatalf("l1=%v: kept %d of %d types, minimum %v, want %v", l1, len(kept), len(all), got, want)
		}
	})
}
