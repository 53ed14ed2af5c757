package fake

import (
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
)

// NewFromCatalog returns a fake EC2 that offers every instance type of
// catalog in the zones and capacity types of its offerings, at their prices
// (Spot prices become the price history's first point), with one subnet per
// zone ("subnet-<zone>", freeAddresses free, tagged with subnetTags) and
// every pool holding opts.DefaultCapacity instances.
func NewFromCatalog(catalog []*offerings.InstanceType, opts Options, subnetTags map[string]string, freeAddresses int) *EC2 {
	f := New(opts)
	zones := map[string]bool{}
	for _, it := range catalog {
		odPrice := 0.0
		var itZones []string
		seen := map[string]bool{}
		spot := false
		for _, o := range it.Offerings {
			if !seen[o.Zone] {
				seen[o.Zone] = true
				itZones = append(itZones, o.Zone)
			}
			switch o.CapacityType {
			case offerings.CapacityTypeOnDemand:
				odPrice = o.Price
			case offerings.CapacityTypeSpot:
				spot = true
			}
		}
		f.AddInstanceType(InstanceTypeInfo(it, spot), odPrice, itZones...)
		for _, o := range it.Offerings {
			zones[o.Zone] = true
			if o.CapacityType == offerings.CapacityTypeSpot {
				f.SetSpotPrice(it.Name, o.Zone, o.Price)
			}
		}
	}
	for _, z := range sortedKeys(zones) {
		f.AddSubnet("subnet-"+z, z, freeAddresses, subnetTags)
	}
	return f
}

// InstanceTypeInfo renders an offerings.InstanceType as DescribeInstanceTypes
// would describe it: nominal vCPUs and memory (the karpenter.k8s.aws labels
// when present, capacity otherwise), architecture, CPU manufacturer, GPUs
// and Neuron devices spelled as EC2 spells them, usage classes, and network
// limits chosen so that the ENI max-pods formula
// (ENIs x (IPv4 per ENI - 1) + 2) gives back the type's pods capacity.
func InstanceTypeInfo(it *offerings.InstanceType, spot bool) types.InstanceTypeInfo {
	info := types.InstanceTypeInfo{
		InstanceType:          types.InstanceType(it.Name),
		CurrentGeneration:     ptr(true),
		SupportedUsageClasses: []types.UsageClassType{types.UsageClassTypeOnDemand},
		Hypervisor:            types.InstanceTypeHypervisorNitro,
		BareMetal:             ptr(strings.HasSuffix(it.Name, ".metal") || strings.Contains(it.Name, ".metal-")),
	}
	if spot {
		info.SupportedUsageClasses = append(info.SupportedUsageClasses, types.UsageClassTypeSpot)
	}
	vcpus := labelInt(it, offerings.LabelInstanceCPU)
	if cpu, ok := it.Capacity[corev1.ResourceCPU]; ok && vcpus == 0 {
		vcpus = cpu.Value()
	}
	info.VCpuInfo = &types.VCpuInfo{DefaultVCpus: ptr(int32(vcpus))}
	memMiB := labelInt(it, offerings.LabelInstanceMemory)
	if mem, ok := it.Capacity[corev1.ResourceMemory]; ok && memMiB == 0 {
		memMiB = mem.Value() / (1 << 20)
	}
	info.MemoryInfo = &types.MemoryInfo{SizeInMiB: ptr(memMiB)}
	arch := types.ArchitectureTypeX8664
	if it.Labels[offerings.LabelArch] == "arm64" {
		arch = types.ArchitectureTypeArm64
	}
	info.ProcessorInfo = &types.ProcessorInfo{SupportedArchitectures: []types.ArchitectureType{arch}}
	if m := it.Labels[offerings.LabelInstanceCPUManufacturer]; m != "" {
		info.ProcessorInfo.Manufacturer = ptr(map[string]string{"intel": "Intel", "amd": "AMD", "aws": "AWS"}[m])
	}
	if pods, ok := it.Capacity[corev1.ResourcePods]; ok && pods.Value() > 2 {
		info.NetworkInfo = &types.NetworkInfo{
			MaximumNetworkInterfaces:  ptr(int32(1)),
			Ipv4AddressesPerInterface: ptr(int32(pods.Value() - 1)),
		}
	}
	if name := it.Labels[offerings.LabelInstanceGPUName]; name != "" {
		info.GpuInfo = &types.GpuInfo{Gpus: []types.GpuDeviceInfo{{
			Count:        ptr(int32(labelInt(it, offerings.LabelInstanceGPUCount))),
			Manufacturer: ptr(map[string]string{"nvidia": "NVIDIA", "amd": "AMD", "habana": "Habana"}[it.Labels[offerings.LabelInstanceGPUManufacturer]]),
			Name:         ptr(strings.ToUpper(name)),
		}}}
	}
	if name := it.Labels[offerings.LabelInstanceAcceleratorName]; name != "" {
		dev := ptr(strings.ToUpper(name[:1]) + name[1:])
		count := ptr(int32(labelInt(it, offerings.LabelInstanceAcceleratorCount)))
		if strings.HasPrefix(name, "inferentia") || strings.HasPrefix(name, "trainium") {
			info.NeuronInfo = &types.NeuronInfo{NeuronDevices: []types.NeuronDeviceInfo{{Name: dev, Count: count}}}
		} else {
			info.InferenceAcceleratorInfo = &types.InferenceAcceleratorInfo{Accelerators: []types.InferenceDeviceInfo{{Name: dev, Count: count}}}
		}
	}
	return info
}

func labelInt(it *offerings.InstanceType, key string) int64 {
	n, _ := strconv.ParseInt(it.Labels[key], 10, 64)
	return n
}
