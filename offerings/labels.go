package offerings

import corev1 "k8s.io/api/core/v1"

// Further Karpenter instance-type labels the catalog sets, beside those in
// types.go. Each is single-valued on a node.
const (
	LabelInstanceCPUManufacturer  = "karpenter.k8s.aws/instance-cpu-manufacturer"
	LabelInstanceGPUManufacturer  = "karpenter.k8s.aws/instance-gpu-manufacturer"
	LabelInstanceAcceleratorName  = "karpenter.k8s.aws/instance-accelerator-name"
	LabelInstanceAcceleratorCount = "karpenter.k8s.aws/instance-accelerator-count"
)

// ResourceHabanaGaudi is the extended resource of Habana Gaudi accelerators
// (dl1 instances), as their device plugin names it.
const ResourceHabanaGaudi corev1.ResourceName = "habana.ai/gaudi"
