package main

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/internal/workload"
	"github.com/fleetpack/fleetpack/offerings"
)

// A Workload is one problem both schedulers solve: pending pods, the
// daemonset pods every node runs, the instance types of one NodePool and
// that NodePool's requirements.
type Workload struct {
	Name          string
	Pods          []*corev1.Pod
	DaemonSetPods []*corev1.Pod
	InstanceTypes []*offerings.InstanceType
	Requirements  []corev1.NodeSelectorRequirement
}

// Workload sizes: sizeSmall is what CI runs; the documented table has both.
const (
	sizeSmall = 1000
	sizeLarge = 5000
)

// capacityTypes requires the given capacity types.
func capacityTypes(types ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: offerings.LabelCapacityType, Operator: corev1.NodeSelectorOpIn, Values: types}
}

// Workloads returns the comparison's workloads in table order, each once
// without daemonsets and once with workload.DaemonSets (name suffix "+ds").
// sizes are the pod counts of the sized workloads (karpentermix, mixed,
// mixed-cmr); microservices has its own fixed size.
func Workloads(sizes []int) ([]Workload, error) {
	catalog, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		return nil, fmt.Errorf("loading the default catalog: %w", err)
	}
	karpenterTypes := workload.KarpenterCatalog()
	// Spot and on-demand, as BenchmarkScheduling's NodePool allows.
	anyCapacity := capacityTypes(offerings.CapacityTypeSpot, offerings.CapacityTypeOnDemand)
	cmr := []corev1.NodeSelectorRequirement{
		anyCapacity,
		{Key: offerings.LabelInstanceCategory, Operator: corev1.NodeSelectorOpIn, Values: []string{"c", "m", "r"}},
		{Key: offerings.LabelInstanceGeneration, Operator: corev1.NodeSelectorOpGt, Values: []string{"2"}},
	}
	var base []Workload
	for _, n := range sizes {
		base = append(base, Workload{Name: fmt.Sprintf("karpentermix-%d", n), Pods: workload.KarpenterMix(n, 42), InstanceTypes: karpenterTypes,
			Requirements: []corev1.NodeSelectorRequirement{anyCapacity}})
	}
	for _, n := range sizes {
		base = append(base, Workload{Name: fmt.Sprintf("mixed-%d", n), Pods: workload.Mixed(n, 42), InstanceTypes: catalog,
			Requirements: []corev1.NodeSelectorRequirement{anyCapacity}})
	}
	for _, n := range sizes {
		base = append(base, Workload{Name: fmt.Sprintf("mixed-cmr-%d", n), Pods: workload.Mixed(n, 42), InstanceTypes: catalog, Requirements: cmr})
	}
	base = append(base, Workload{Name: "microservices", Pods: workload.Microservices(workload.MicroservicesReplicas), InstanceTypes: catalog,
		Requirements: []corev1.NodeSelectorRequirement{capacityTypes(offerings.CapacityTypeOnDemand)}})
	out := make([]Workload, 0, 2*len(base))
	for _, w := range base {
		withDS := w
		withDS.Name += "+ds"
		withDS.DaemonSetPods = workload.DaemonSets()
		out = append(out, w, withDS)
	}
	return out, nil
}
