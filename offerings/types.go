package offerings

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Well-known node labels. A node launched by fleetpack carries the instance
// type's labels, its offering's zone and capacity type, and its NodePool's name.
const (
	LabelInstanceType       = corev1.LabelInstanceTypeStable // node.kubernetes.io/instance-type
	LabelArch               = corev1.LabelArchStable         // kubernetes.io/arch
	LabelOS                 = corev1.LabelOSStable           // kubernetes.io/os
	LabelZone               = corev1.LabelTopologyZone       // topology.kubernetes.io/zone
	LabelRegion             = corev1.LabelTopologyRegion     // topology.kubernetes.io/region
	LabelHostname           = corev1.LabelHostname           // kubernetes.io/hostname
	LabelCapacityType       = "karpenter.sh/capacity-type"
	LabelNodePool           = "karpenter.sh/nodepool"
	LabelInstanceFamily     = "karpenter.k8s.aws/instance-family"
	LabelInstanceCategory   = "karpenter.k8s.aws/instance-category"
	LabelInstanceGeneration = "karpenter.k8s.aws/instance-generation"
	LabelInstanceSize       = "karpenter.k8s.aws/instance-size"
	LabelInstanceCPU        = "karpenter.k8s.aws/instance-cpu"
	LabelInstanceMemory     = "karpenter.k8s.aws/instance-memory"
	LabelInstanceGPUName    = "karpenter.k8s.aws/instance-gpu-name"
	LabelInstanceGPUCount   = "karpenter.k8s.aws/instance-gpu-count"
)

// Capacity types an offering can have.
const (
	CapacityTypeSpot     = "spot"
	CapacityTypeOnDemand = "on-demand"
)

// Extended resources that instance types may carry.
const (
	ResourceNvidiaGPU corev1.ResourceName = "nvidia.com/gpu"
	ResourceAMDGPU    corev1.ResourceName = "amd.com/gpu"
	ResourceNeuron    corev1.ResourceName = "aws.amazon.com/neuron"
)

// Offering is one way to buy an instance type: a zone and a capacity type at a
// price. Available is false while EC2 has recently refused that pool.
type Offering struct {
	Zone         string
	CapacityType string
	// Price is in USD per hour.
	Price     float64
	Available bool
}

// Overhead is what a node reserves for itself before pods can use it.
type Overhead struct {
	KubeReserved      corev1.ResourceList
	SystemReserved    corev1.ResourceList
	EvictionThreshold corev1.ResourceList
}

// Total is the sum of the three reservations.
func (o Overhead) Total() corev1.ResourceList {
	total := corev1.ResourceList{}
	for _, list := range []corev1.ResourceList{o.KubeReserved, o.SystemReserved, o.EvictionThreshold} {
		for name, q := range list {
			sum := total[name]
			sum.Add(q)
			total[name] = sum
		}
	}
	return total
}

// InstanceType is an EC2 instance type as the scheduler sees it: what it has,
// what it keeps for itself, the labels a node of that type carries, and where
// and how it can be bought.
type InstanceType struct {
	Name string
	// Capacity is what the machine has: cpu, memory, pods (max-pods),
	// ephemeral-storage, and extended resources such as nvidia.com/gpu.
	Capacity corev1.ResourceList
	// Labels are the single-valued labels every node of this type carries.
	Labels    map[string]string
	Overhead  Overhead
	Offerings []Offering
	// BaselineCPUMilli is, for a burstable type (t2, t3, t3a, t4g), the cpu
	// it sustains without spending credits, in millicores; 0 for a type
	// that is not burstable. The catalog sets it from EC2's credit table.
	BaselineCPUMilli int64
}

// Allocatable is Capacity less Overhead, never below zero.
func (it *InstanceType) Allocatable() corev1.ResourceList {
	alloc := make(corev1.ResourceList, len(it.Capacity))
	overhead := it.Overhead.Total()
	for name, q := range it.Capacity {
		a := q.DeepCopy()
		if o, ok := overhead[name]; ok {
			a.Sub(o)
		}
		if a.Sign() < 0 {
			a = *resource.NewQuantity(0, a.Format)
		}
		alloc[name] = a
	}
	return alloc
}

// CheapestOffering returns the cheapest available offering that keep accepts
// (nil keep accepts all), and false if there is none.
func (it *InstanceType) CheapestOffering(keep func(Offering) bool) (Offering, bool) {
	var best Offering
	found := false
	for _, o := range it.Offerings {
		if !o.Available || (keep != nil && !keep(o)) {
			continue
		}
		if !found || o.Price < best.Price {
			best, found = o, true
		}
	}
	return best, found
}
