package scheduling

import (
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
