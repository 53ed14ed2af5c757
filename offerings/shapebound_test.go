package offerings

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func shapeType(name string, cpuMilli, memMiB int64, price float64) *InstanceType {
	return &InstanceType{
		Name: name,
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(cpuMilli, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(memMiB<<20, resource.BinarySI),
		},
		Offerings: []Offering{{Zone: "z", CapacityType: CapacityTypeOnDemand, Price: price, Available: true}},
	}
}

func TestShapeLowerBoundHandCases(t *testing.T) {
	small := shapeType("small", 2000, 512, 0.001) // cheap cpu, fits no 1Gi pod
	mem := shapeType("mem", 1000, 8192, 0.08)
	gen := shapeType("gen", 4000, 8192, 0.16)
	types := []*InstanceType{small, mem, gen}
	pod := PodShape{CPUMilli: 1000, MemoryBytes: 1 << 30, Count: 4}

	// The fluid bound buys the cpu from "small", which no pod fits.
	fluid := CostLowerBound(types, 4000, 4<<30)
	shape := ShapeLowerBound(types, []PodShape{pod})
	if shape <= fluid {
		t.Fatalf("shape bound %.4f should beat the fluid bound %.4f here", shape, fluid)
	}
	// One gen node holds all four pods exactly: the bound cannot exceed it.
	if shape > 0.16+1e-9 {
		t.Fatalf("shape bound %.4f exceeds a feasible plan costing 0.16", shape)
	}
	if got := ShapeLowerBound(types, nil); got != 0 {
		t.Fatalf("no pods: got %v, want 0", got)
	}
	if got := ShapeLowerBound(types, []PodShape{{CPUMilli: 64000, MemoryBytes: 1, Count: 1}}); !math.IsInf(got, 1) {
		t.Fatalf("a pod no type fits: got %v, want +Inf", got)
	}
}

// TestShapeLowerBoundNeverExceedsOptimum packs tiny random problems
// exhaustively and checks the bound stays at or under the cheapest plan.
func TestShapeLowerBoundNeverExceedsOptimum(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := range 300 {
		var types []*InstanceType
		for i := range 1 + rng.IntN(3) {
			types = append(types, shapeType(fmt.Sprintf("t%d", i), int64(1000+rng.IntN(4)*1000), int64(1024+rng.IntN(4)*1024), 0.01+rng.Float64()))
		}
		var pods [][2]int64
		for range 1 + rng.IntN(4) {
			pods = append(pods, [2]int64{int64(250 + rng.IntN(4)*250), int64(256+rng.IntN(4)*256) << 20})
		}
		shapes := make([]PodShape, len(pods))
		for i, p := range pods {
			shapes[i] = PodShape{CPUMilli: p[0], MemoryBytes: p[1], Count: 1}
		}
		best := optimalPacking(types, pods)
		if lb := ShapeLowerBound(types, shapes); lb > best+1e-9 {
			t.Fatalf("trial %d: bound %.6f exceeds the optimal plan %.6f", trial, lb, best)
		}
	}
}

// optimalPacking tries every assignment of pods to at most len(pods) nodes
// of every type, returning the cheapest feasible total (+Inf if none).
func optimalPacking(types []*InstanceType, pods [][2]int64) float64 {
	n := len(pods)
	best := math.Inf(1)
	assign := make([]int, n) // node index per pod
	var rec func(i, nodes int)
	rec = func(i, nodes int) {
		if i == n {
			// Cheapest type per node that fits its pods.
			total := 0.0
			for node := range nodes {
				var c, m int64
				for j, a := range assign {
					if a == node {
						c, m = c+pods[j][0], m+pods[j][1]
					}
				}
				cheapest := math.Inf(1)
				for _, it := range types {
					o, _ := it.CheapestOffering(nil)
					if c <= allocatableMilli(it, corev1.ResourceCPU) && m*1000 <= allocatableMilli(it, corev1.ResourceMemory) {
						cheapest = min(cheapest, o.Price)
					}
				}
				total += cheapest
			}
			best = min(best, total)
			return
		}
		for node := 0; node <= nodes && node < n; node++ {
			assign[i] = node
			rec(i+1, max(nodes, node+1))
		}
	}
	rec(0, 0)
	return best
}
