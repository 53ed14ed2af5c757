package workload

import (
	"fmt"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/fleetpack/fleetpack/offerings"
)

// karpenterZones are the zones of KarpenterCatalog.
var karpenterZones = []string{"test-zone-1", "test-zone-2", "test-zone-3"}

// KarpenterCatalog reproduces the instance types of Karpenter's scheduling
// benchmark: type i has i vCPU, 2i GiB and 10i pods, Spot in zones 1-2 and
// on-demand in zones 1-3, priced by size.
func KarpenterCatalog() []*offerings.InstanceType {
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
		for z, zone := range karpenterZones {
			if z < 2 {
				it.Offerings = append(it.Offerings, offerings.Offering{Zone: zone, CapacityType: offerings.CapacityTypeSpot, Price: price * 0.4, Available: true})
			}
			it.Offerings = append(it.Offerings, offerings.Offering{Zone: zone, CapacityType: offerings.CapacityTypeOnDemand, Price: price, Available: true})
		}
		out = append(out, it)
	}
	return out
}

// KarpenterMix reproduces the pods of Karpenter's scheduling benchmark: five
// equal classes (no constraint; zone spread; hostname spread; zonal
// self-affinity; hostname anti-affinity shared by the class), cpu from
// {100m, 250m, 500m, 1, 1.5} and memory from 100Mi to 4Gi.
func KarpenterMix(n int, seed uint64) []*corev1.Pod {
	rng := rand.New(rand.NewPCG(seed, seed^0x51ed270b))
	cpus := []int64{100, 250, 500, 1000, 1500}
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		class := i % 5
		app := fmt.Sprintf("class-%d", class)
		cpu := cpus[rng.IntN(len(cpus))]
		p := pod(fmt.Sprintf("pod-%05d", i), app, cpu, (100+rng.Int64N(3997))<<20)
		switch class {
		case 1:
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{SpreadConstraint(offerings.LabelZone, app)}
		case 2:
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{SpreadConstraint(offerings.LabelHostname, app)}
		case 3:
			p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{AffinityTerm(offerings.LabelZone, app)},
			}}
		case 4:
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{AffinityTerm(offerings.LabelHostname, app)},
			}}
		}
		pods[i] = p
	}
	return pods
}
