package fleetpack_test

import (
	"fmt"
	"testing"

	"github.com/fleetpack/fleetpack/offerings"
)

// TestNoPlanReachesCostTargetOnBenchmarkWorkload pins why the cost/lb <= 1.10
// target first asked for was retired (issue 11), and why the benchmarks
// report cost/shapelb instead. cost/lb divided by offerings.CostLowerBound, which may split a pod's cpu from its
// memory and buy the cpu from burstable types (t3.nano) that hold no pod of
// the workload. offerings.ShapeLowerBound is also a lower bound on every
// plan (tested against exhaustive packings in offerings), and on this
// workload it is well above 1.10 times CostLowerBound, so no plan, however
// packed, can score cost/lb <= 1.10 here.
func TestNoPlanReachesCostTargetOnBenchmarkWorkload(t *testing.T) {
	types, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{100, 1000, 5000, 20000} {
		t.Run(fmt.Sprintf("pods=%d", n), func(t *testing.T) {
			pods := mixedWorkload(n, 42)
			var cpu, mem int64
			for _, p := range pods {
				r := p.Spec.Containers[0].Resources.Requests
				cpu += r.Cpu().MilliValue()
				mem += r.Memory().Value()
			}
			lp := offerings.CostLowerBound(types, cpu, mem)
			shape := offerings.ShapeLowerBound(types, podShapes(pods))
			if !(lp > 0) || !(shape >= lp) {
				t.Fatalf("bounds out of order: CostLowerBound %.2f, ShapeLowerBound %.2f", lp, shape)
			}
			if shape < 1.5*lp {
				t.Errorf("ShapeLowerBound $%.2f/h is only %.2f x CostLowerBound $%.2f/h; the cost/lb <= 1.10 target may be reachable after all", shape, shape/lp, lp)
			}
			t.Logf("every plan costs at least $%.2f/h = %.2f x CostLowerBound ($%.2f/h)", shape, shape/lp, lp)
		})
	}
}
