package workload

import (
	"fmt"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/offerings"
)

// Namespace is the namespace of every pod the generators make.
const Namespace = "bench"

// Mixed returns n pods with cpu from 100m to 8 and memory from 128Mi to
// 32Gi, drawn from a fixed seed so every run solves the same problem. It is
// BenchmarkScheduling's workload.
func Mixed(n int, seed uint64) []*corev1.Pod {
	return Shaped(n, seed, IndependentShape)
}

// A Shape draws one pod's cpu (millicores) and memory (MiB).
type Shape func(rng *rand.Rand) (cpuMilli, memoryMiB int64)

// IndependentShape draws cpu from 100m to 8 and memory from 128Mi to 32Gi
// independently, so some pods are very lopsided.
func IndependentShape(rng *rand.Rand) (int64, int64) {
	cpus := []int64{100, 250, 500, 1000, 1500, 2000, 4000, 8000}
	mems := []int64{128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768}
	cpu := cpus[rng.IntN(len(cpus))]
	return cpu, mems[rng.IntN(len(mems))]
}

// CorrelatedShape draws cpu as IndependentShape does and gives each pod 1,
// 2, 4 or 8 GiB per cpu, as services sized for c, m, r and x families are.
func CorrelatedShape(rng *rand.Rand) (int64, int64) {
	cpus := []int64{100, 250, 500, 1000, 1500, 2000, 4000, 8000}
	cpu := cpus[rng.IntN(len(cpus))]
	return cpu, cpu * []int64{1, 2, 4, 8}[rng.IntN(4)] * 1024 / 1000
}

// SmallShape draws sidecar-sized pods: 50m to 500m, 64Mi to 1Gi.
func SmallShape(rng *rand.Rand) (int64, int64) {
	cpu := []int64{50, 100, 200, 250, 500}[rng.IntN(5)]
	return cpu, []int64{64, 128, 256, 512, 1024}[rng.IntN(5)]
}

// Shaped returns n pods drawn by shape from a fixed seed, spread over 50
// apps (label app=app-0 to app-49).
func Shaped(n int, seed uint64, shape Shape) []*corev1.Pod {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		cpu, mem := shape(rng)
		pods[i] = pod(fmt.Sprintf("pod-%05d", i), fmt.Sprintf("app-%d", i%50), cpu, mem<<20)
	}
	return pods
}

// pod is a pending pod with one container requesting cpuMilli and
// memoryBytes, labelled app=app.
func pod(name, app string, cpuMilli, memoryBytes int64) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    *resource.NewMilliQuantity(cpuMilli, resource.DecimalSI),
				corev1.ResourceMemory: *resource.NewQuantity(memoryBytes, resource.BinarySI),
			}},
		}}},
	}
}

// SpreadConstraint is a hard topology spread (maxSkew 1) over key of the
// pods labelled app=app.
func SpreadConstraint(key, app string) corev1.TopologySpreadConstraint {
	return corev1.TopologySpreadConstraint{
		MaxSkew: 1, TopologyKey: key, WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
	}
}

// AffinityTerm selects the pods labelled app=app within topology key.
func AffinityTerm(key, app string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}
}

// Topology is Mixed where the pods of a third of the 50 apps spread over
// zones (maxSkew 1) and those of a sixth keep one per node.
func Topology(n int, seed uint64) []*corev1.Pod {
	pods := Mixed(n, seed)
	for i, p := range pods {
		app := i % 50
		switch {
		case app < 17:
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{SpreadConstraint(offerings.LabelZone, p.Labels["app"])}
		case app < 25:
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{AffinityTerm(offerings.LabelHostname, p.Labels["app"])},
			}}
		}
	}
	return pods
}
