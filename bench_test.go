package fleetpack_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/internal/fixture"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

// mixedWorkload returns n pods with cpu from 100m to 8 and memory from 128Mi
// to 32Gi, drawn from a fixed seed so every run solves the same problem.
func mixedWorkload(n int, seed uint64) []*corev1.Pod {
	return shapedWorkload(n, seed, independentShape)
}

// A podShape draws one pod's cpu (millicores) and memory (MiB).
type podShape func(rng *rand.Rand) (cpuMilli, memoryMiB int64)

// independentShape draws cpu from 100m to 8 and memory from 128Mi to 32Gi
// independently, so some pods are very lopsided.
func independentShape(rng *rand.Rand) (int64, int64) {
	cpus := []int64{100, 250, 500, 1000, 1500, 2000, 4000, 8000}
	mems := []int64{128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768}
	cpu := cpus[rng.IntN(len(cpus))]
	return cpu, mems[rng.IntN(len(mems))]
}

// correlatedShape draws cpu as independentShape does and gives each pod 1,
// 2, 4 or 8 GiB per cpu, as services sized for c, m, r and x families are.
func correlatedShape(rng *rand.Rand) (int64, int64) {
	cpus := []int64{100, 250, 500, 1000, 1500, 2000, 4000, 8000}
	cpu := cpus[rng.IntN(len(cpus))]
	return cpu, cpu * []int64{1, 2, 4, 8}[rng.IntN(4)] * 1024 / 1000
}

// smallShape draws sidecar-sized pods: 50m to 500m, 64Mi to 1Gi.
func smallShape(rng *rand.Rand) (int64, int64) {
	cpu := []int64{50, 100, 200, 250, 500}[rng.IntN(5)]
	return cpu, []int64{64, 128, 256, 512, 1024}[rng.IntN(5)]
}

// shapedWorkload returns n pods drawn by shape from a fixed seed.
func shapedWorkload(n int, seed uint64, shape podShape) []*corev1.Pod {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		cpu, mem := shape(rng)
		pods[i] = fixture.Pod("bench", fmt.Sprintf("pod-%05d", i), fixture.Labels(map[string]string{"app": fmt.Sprintf("app-%d", i%50)}),
			fixture.Requests(fmt.Sprintf("%dm", cpu), fmt.Sprintf("%dMi", mem)))
	}
	return pods
}

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
			pods := mixedWorkload(n, 42)
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

func spreadConstraint(key, app string) corev1.TopologySpreadConstraint {
	return corev1.TopologySpreadConstraint{
		MaxSkew: 1, TopologyKey: key, WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
	}
}

func affinityTerm(key, app string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}
}

// topologyWorkload is mixedWorkload where the pods of a third of the 50 apps
// spread over zones (maxSkew 1) and those of a sixth keep one per node.
func topologyWorkload(n int, seed uint64) []*corev1.Pod {
	pods := mixedWorkload(n, seed)
	for i, p := range pods {
		app := i % 50
		switch {
		case app < 17:
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{spreadConstraint(offerings.LabelZone, p.Labels["app"])}
		case app < 25:
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{affinityTerm(offerings.LabelHostname, p.Labels["app"])},
			}}
		}
	}
	return pods
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
		shape podShape
	}{{"independent", independentShape}, {"correlated", correlatedShape}, {"small", smallShape}} {
		b.Run("workload="+w.name, func(b *testing.B) {
			type problem struct {
				pods  []*corev1.Pod
				bound float64
			}
			var problems []problem
			for _, n := range []int{100, 1000, 5000, 20000} {
				for _, seed := range []uint64{42, 7, 3, 11} {
					pods := shapedWorkload(n, seed, w.shape)
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
			pods := topologyWorkload(n, 42)
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

// karpenterCatalog reproduces the instance types of Karpenter's scheduling
// benchmark: type i has i vCPU, 2i GiB and 10i pods, Spot in zones 1-2 and
// on-demand in zones 1-3, priced by size.
func karpenterCatalog() []*offerings.InstanceType {
	zones := []string{"test-zone-1", "test-zone-2", "test-zone-3"}
	out := make([]*offerings.InstanceType, 0, 400)
	for i := 1; i <= 400; i++ {
		name := fmt.Sprintf("fake-it-%d", i)
		it := &offerings.InstanceType{
			Name: name,
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU:    *resource.NewQuantity(int64(i), resource.DecimalSI),
				corev1.ResourceMemory: *resource.NewQuantity(int64(2*i)<<30, resource.BinarySI),
				corev1.ResourcePods:   *resource.NewQuantity(int64(10*i), resource.DecimalSI),
			},
			Labels: map[string]string{offerings.LabelInstanceType: name, offerings.LabelArch: "amd64", offerings.LabelOS: "linux"},
		}
		price := 0.05 * float64(i)
		for z, zone := range zones {
			if z < 2 {
				it.Offerings = append(it.Offerings, offerings.Offering{Zone: zone, CapacityType: offerings.CapacityTypeSpot, Price: price * 0.4, Available: true})
			}
			it.Offerings = append(it.Offerings, offerings.Offering{Zone: zone, CapacityType: offerings.CapacityTypeOnDemand, Price: price, Available: true})
		}
		out = append(out, it)
	}
	return out
}

// karpenterMix reproduces the pods of Karpenter's scheduling benchmark: five
// equal classes (no constraint; zone spread; hostname spread; zonal
// self-affinity; hostname anti-affinity shared by the class), cpu from
// {100m, 250m, 500m, 1, 1.5} and memory from 100Mi to 4Gi.
func karpenterMix(n int, seed uint64) []*corev1.Pod {
	rng := rand.New(rand.NewPCG(seed, seed^0x51ed270b))
	cpus := []int64{100, 250, 500, 1000, 1500}
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		class := i % 5
		app := fmt.Sprintf("class-%d", class)
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%05d", i), Namespace: "bench", Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU:    *resource.NewMilliQuantity(cpus[rng.IntN(len(cpus))], resource.DecimalSI),
					corev1.ResourceMemory: *resource.NewQuantity((100+rng.Int64N(3997))<<20, resource.BinarySI),
				}},
			}}},
		}
		switch class {
		case 1:
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{spreadConstraint(offerings.LabelZone, app)}
		case 2:
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{spreadConstraint(offerings.LabelHostname, app)}
		case 3:
			p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{affinityTerm(offerings.LabelZone, app)},
			}}
		case 4:
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{affinityTerm(offerings.LabelHostname, app)},
			}}
		}
		pods[i] = p
	}
	return pods
}

func BenchmarkSchedulingKarpenterMix(b *testing.B) {
	types := karpenterCatalog()
	for _, n := range []int{1000, 5000, 20000} {
		b.Run(fmt.Sprintf("pods=%d", n), func(b *testing.B) {
			pods := karpenterMix(n, 42)
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
