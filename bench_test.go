package fleetpack_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

// mixedWorkload returns n pods with cpu from 100m to 8 and memory from 128Mi
// to 32Gi, drawn from a fixed seed so every run solves the same problem.
func mixedWorkload(n int, seed uint64) []*corev1.Pod {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	cpus := []int64{100, 250, 500, 1000, 1500, 2000, 4000, 8000}
	mems := []int64{128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768}
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		cpu := cpus[rng.IntN(len(cpus))]
		mem := mems[rng.IntN(len(mems))]
		pods[i] = &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%05d", i), Namespace: "bench", Labels: map[string]string{"app": fmt.Sprintf("app-%d", i%50)}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU:    *resource.NewMilliQuantity(cpu, resource.DecimalSI),
					corev1.ResourceMemory: *resource.NewQuantity(mem<<20, resource.BinarySI),
				}},
			}}},
		}
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
	if lb := offerings.CostLowerBound(types, cpu, mem); lb > 0 {
		b.ReportMetric(cost/lb, "cost/lb")
	}
	if len(plan.Unschedulable) > 0 {
		b.Fatalf("%d pods unschedulable, first: %s", len(plan.Unschedulable), plan.Unschedulable[0].Error())
	}
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
