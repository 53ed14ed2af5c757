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

// withPods gives it a pods capacity.
func withPods(it *InstanceType, pods int64) *InstanceType {
	it.Capacity[corev1.ResourcePods] = *resource.NewQuantity(pods, resource.DecimalSI)
	return it
}

// TestShapeLowerBoundCountsPodSlots: where max-pods binds, the bound pays
// for pod slots even though cpu and memory are nearly free.
func TestShapeLowerBoundCountsPodSlots(t *testing.T) {
	big := withPods(shapeType("big", 64000, 262144, 1), 10)
	tiny := PodShape{CPUMilli: 10, MemoryBytes: 16 << 20, Count: 100}
	// 100 pods, 10 per node: every plan has at least 10 nodes.
	got := ShapeLowerBound([]*InstanceType{big}, []PodShape{tiny})
	if got < 10-1e-6 || got > 10+1e-6 {
		t.Fatalf("bound = %.4f, want 10 (ten nodes' worth of pod slots)", got)
	}
	// A type without a pods capacity adds no pods term, and a dearer type
	// with more slots does not undercut the slot price of the cheaper one.
	roomy := withPods(shapeType("roomy", 64000, 262144, 3), 110)
	if got := ShapeLowerBound([]*InstanceType{big, roomy}, []PodShape{tiny}); got > 10+1e-6 || got < 100*3.0/110-1e-6 {
		t.Fatalf("bound with a roomier type = %.4f, want between %.4f and 10", got, 100*3.0/110)
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
// exhaustively (some types with 1 to 3 pod slots) and checks the bound
// stays at or under the cheapest plan.
func TestShapeLowerBoundNeverExceedsOptimum(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := range 300 {
		var types []*InstanceType
		for i := range 1 + rng.IntN(3) {
			it := shapeType(fmt.Sprintf("t%d", i), int64(1000+rng.IntN(4)*1000), int64(1024+rng.IntN(4)*1024), 0.01+rng.Float64())
			if rng.IntN(2) == 0 {
				withPods(it, int64(1+rng.IntN(3)))
			}
			types = append(types, it)
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
				var c, m, count int64
				for j, a := range assign {
					if a == node {
						c, m, count = c+pods[j][0], m+pods[j][1], count+1
					}
				}
				cheapest := math.Inf(1)
				for _, it := range types {
					o, _ := it.CheapestOffering(nil)
					slots, limited := it.Capacity[corev1.ResourcePods]
					if limited && count > slots.Value() {
						continue
					}
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
