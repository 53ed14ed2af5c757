package fleetpack_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/internal/workload"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

func defaultTemplate(b testing.TB, types []*offerings.InstanceType) *scheduling.NodeTemplate {
	reqs, err := scheduling.NewRequirements(corev1.NodeSelectorRequirement{
		Key: offerings.LabelCapacityType, Operator: corev1.NodeSelectorOpIn, Values: []string{offerings.CapacityTypeSpot, offerings.CapacityTypeOnDemand},
	})
	if err != nil {
		b.Fatal(err)
	}
	return &scheduling.NodeTemplate{NodePool: "default", Requirements: reqs, InstanceTypes: types}
}

// reportPlan reports the plan's quality: nodes, hourly cost, and cost over
// the LP lower bound for the same total requests.
func reportPlan(b *testing.B, plan *scheduling.Plan, pods []*corev1.Pod, types []*offerings.InstanceType) {
	var cost float64
	var cpu, mem int64
	for _, c := range plan.NodeClaims {
		cost += c.Price()
		cpu += c.PodRequests.Cpu().MilliValue()
		mem += c.PodRequests.Memory().Value()
	}
	b.ReportMetric(float64(len(plan.NodeClaims)), "nodes")
	b.ReportMetric(cost, "$/h")
	lb := offerings.CostLowerBound(types, cpu, mem)
	if lb > 0 {
		b.ReportMetric(cost/lb, "cost/lb")
	}
	// The shape bound also respects that each pod needs one type that fits
	// it whole; see offerings.ShapeLowerBound and docs/benchmarks.md. As it
	// bounds every plan, shapelb/lb is the least cost/lb any plan can score.
	if shape := offerings.ShapeLowerBound(types, podShapes(pods)); shape > 0 {
		b.ReportMetric(cost/shape, "cost/shapelb")
		if lb > 0 {
			b.ReportMetric(shape/lb, "shapelb/lb")
		}
	}
	if len(plan.Unschedulable) > 0 {
		b.Fatalf("%d pods unschedulable, first: %s", len(plan.Unschedulable), plan.Unschedulable[0].Error())
	}
}

// podShapes groups pods by their cpu and memory requests.
func podShapes(pods []*corev1.Pod) []offerings.PodShape {
	counts := map[[2]int64]int{}
	for _, p := range pods {
		r := p.Spec.Containers[0].Resources.Requests
		counts[[2]int64{r.Cpu().MilliValue(), r.Memory().Value()}]++
	}
	shapes := make([]offerings.PodShape, 0, len(counts))
	for k, n := range counts {
		shapes = append(shapes, offerings.PodShape{CPUMilli: k[0], MemoryBytes: k[1], Count: n})
	}
	return shapes
}

func BenchmarkScheduling(b *testing.B) {
	types, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{100, 1000, 5000, 20000} {
		b.Run(fmt.Sprintf("pods=%d", n), func(b *testing.B) {
			pods := workload.Mixed(n, 42)
			in := scheduling.Input{Pods: pods, Templates: []*scheduling.NodeTemplate{defaultTemplate(b, types)}}
			b.ReportAllocs()
			var plan *scheduling.Plan
			for b.Loop() {
				if plan, err = scheduling.Solve(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "pods/s")
			reportPlan(b, plan, pods, types)
		})
	}
}

// BenchmarkPackingQuality measures plan cost over many workloads rather
// than one, so that a change to the packing rules is judged on more than the
// seed BenchmarkScheduling happens to use. Each iteration solves 16 problems
// (100, 1,000, 5,000 and 20,000 pods, 4 seeds each) and reports the mean of
// their cost/shapelb.
func BenchmarkPackingQuality(b *testing.B) {
	types, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	template := defaultTemplate(b, types)
	for _, w := range []struct {
		name  string
		shape workload.Shape
	}{{"independent", workload.IndependentShape}, {"correlated", workload.CorrelatedShape}, {"small", workload.SmallShape}} {
		b.Run("workload="+w.name, func(b *testing.B) {
			type problem struct {
				pods  []*corev1.Pod
				bound float64
			}
			var problems []problem
			for _, n := range []int{100, 1000, 5000, 20000} {
				for _, seed := range []uint64{42, 7, 3, 11} {
					pods := workload.Shaped(n, seed, w.shape)
					problems = append(problems, problem{pods, offerings.ShapeLowerBound(types, podShapes(pods))})
				}
			}
			var ratio float64
			for b.Loop() {
				ratio = 0
				for _, pr := range problems {
					plan, err := scheduling.Solve(scheduling.Input{Pods: pr.pods, Templates: []*scheduling.NodeTemplate{template}})
					if err != nil {
						b.Fatal(err)
					}
					if len(plan.Unschedulable) > 0 {
						b.Fatalf("%d pods unschedulable, first: %s", len(plan.Unschedulable), plan.Unschedulable[0].Error())
					}
					cost := 0.0
					for _, c := range plan.NodeClaims {
						cost += c.Price()
					}
					ratio += cost / pr.bound
				}
			}
			b.ReportMetric(ratio/float64(len(problems)), "mean-cost/shapelb")
		})
	}
}

func BenchmarkSchedulingTopology(b *testing.B) {
	types, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("pods=%d", n), func(b *testing.B) {
			pods := workload.Topology(n, 42)
			in := scheduling.Input{Pods: pods, Templates: []*scheduling.NodeTemplate{defaultTemplate(b, types)}}
			b.ReportAllocs()
			var plan *scheduling.Plan
			for b.Loop() {
				if plan, err = scheduling.Solve(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "pods/s")
			reportPlan(b, plan, pods, types)
		})
	}
}

func BenchmarkSchedulingKarpenterMix(b *testing.B) {
	types := workload.KarpenterCatalog()
	for _, n := range []int{1000, 5000, 20000} {
		b.Run(fmt.Sprintf("pods=%d", n), func(b *testing.B) {
			pods := workload.KarpenterMix(n, 42)
			tmpl := &scheduling.NodeTemplate{NodePool: "default", InstanceTypes: types}
			in := scheduling.Input{Pods: pods, Templates: []*scheduling.NodeTemplate{tmpl}}
			b.ReportAllocs()
			var plan *scheduling.Plan
			var err error
			for b.Loop() {
				if plan, err = scheduling.Solve(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "pods/s")
			b.ReportMetric(float64(len(plan.NodeClaims)), "nodes")
			if len(plan.Unschedulable) > 0 {
				b.Fatalf("%d pods unschedulable, first: %s", len(plan.Unschedulable), plan.Unschedulable[0].Error())
			}
		})
	}
}
