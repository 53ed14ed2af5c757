package offerings

import (
	"bytes"
	_ "embed" // the default catalog is compiled in
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

//go:generate go run ./internal/gen -data ../../shared/data -out catalog/us-east-1.json -allocatable-out testdata/karpenter_allocatable_al2023.json

// CatalogFormat is the value of CatalogFile.Format that LoadCatalog accepts.
const CatalogFormat = "fleetpack-catalog/v1"

// Defaults used when CatalogOptions leaves a field zero, and the constants of
// Karpenter's AL2023 overhead computation that the catalog reproduces.
const (
	// DefaultRootVolume is the root EBS volume Karpenter's AL2023 AMI family
	// gives a node when no block device mapping says otherwise.
	DefaultRootVolume = "20Gi"
	// DefaultMaxPods is the pod limit of a type without ENI data, which is
	// kubelet's own default.
	DefaultMaxPods = 110
	// VMMemoryOverheadPercent is the share of an instance's nominal memory that
	// the hypervisor and firmware keep (Karpenter's vmMemoryOverheadPercent
	// default, 7.5%).
	VMMemoryOverheadPercent = 0.075
	// gravitonCMAMiB is the contiguous memory Graviton (arm64) kernels reserve.
	gravitonCMAMiB = 64
)

// CatalogFile is the JSON document LoadCatalog reads and the embedded default
// catalog (catalog/us-east-1.json, written by offerings/internal/gen) is.
// Unknown fields are rejected so that a typo is an error, not a silent default.
type CatalogFile struct {
	// Format must be CatalogFormat.
	Format string `json:"format"`
	// Description says, in prose, where the data comes from and what it means.
	Description string `json:"description,omitempty"`
	// Region is the EC2 region, e.g. "us-east-1"; it becomes the
	// topology.kubernetes.io/region label.
	Region string `json:"region"`
	// Zones lists the availability zones every type is offered in.
	Zones []string `json:"zones"`
	// Sources names the data each field was taken from.
	Sources []string `json:"sources,omitempty"`
	// Skipped lists types present in the source data but left out, with why.
	Skipped []CatalogSkipped `json:"skipped,omitempty"`
	// InstanceTypes is one entry per type, sorted by name.
	InstanceTypes []CatalogInstanceType `json:"instanceTypes"`
}

// CatalogSkipped records a source type that the catalog leaves out.
type CatalogSkipped struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// CatalogInstanceType is what the catalog keeps about one EC2 instance type:
// only what the scheduler and the cloud provider use.
type CatalogInstanceType struct {
	// Name is the EC2 instance type, e.g. "m5.large".
	Name string `json:"name"`
	// Family is the part of Name before the first ".", e.g. "m5".
	Family string `json:"family"`
	// Category is the family's letters, e.g. "m" (label instance-category).
	Category string `json:"category"`
	// Generation is the family's number, e.g. 5 (label instance-generation).
	Generation int `json:"generation"`
	// Size is the part of Name after the first ".", e.g. "large".
	Size string `json:"size"`
	// VCPU is the default number of vCPUs.
	VCPU int64 `json:"vcpu"`
	// MemoryMiB is the nominal memory EC2 advertises, before any overhead.
	MemoryMiB int64 `json:"memoryMiB"`
	// Arch is the Kubernetes architecture: "amd64" or "arm64".
	Arch string `json:"arch"`
	// CPUManufacturer is "intel", "amd" or "aws" ("" when unknown).
	CPUManufacturer string `json:"cpuManufacturer,omitempty"`
	// GPUName, GPUCount and GPUManufacturer ("nvidia", "amd" or "habana")
	// describe the type's GPUs. GPUCount is 0 for fractional-GPU types.
	GPUName         string `json:"gpuName,omitempty"`
	GPUCount        int64  `json:"gpuCount,omitempty"`
	GPUManufacturer string `json:"gpuManufacturer,omitempty"`
	// AcceleratorName and AcceleratorCount describe non-GPU accelerators;
	// "inferentia*" and "trainium*" are exposed as aws.amazon.com/neuron.
	AcceleratorName  string `json:"acceleratorName,omitempty"`
	AcceleratorCount int64  `json:"acceleratorCount,omitempty"`
	// DefaultCardENIs is the number of ENIs on the default network card and
	// IPv4PerENI the IPv4 addresses per ENI; the VPC CNI's pod limit is
	// DefaultCardENIs*(IPv4PerENI-1)+2. Both are 0 when unknown.
	DefaultCardENIs int64 `json:"defaultCardENIs,omitempty"`
	IPv4PerENI      int64 `json:"ipv4PerENI,omitempty"`
	// MaxPods, when non-zero, is the pod limit of a type without ENI data.
	// Without either, the limit is DefaultMaxPods.
	MaxPods int64 `json:"maxPods,omitempty"`
	// OnDemandPrice is the Linux on-demand price in USD per hour. Required.
	OnDemandPrice float64 `json:"onDemandPrice"`
	// SpotPrice is a region-level Spot price estimate in USD per hour; 0 means
	// the type has no Spot offering. It is an estimate, not an observed price:
	// see LoadCatalog for how it is spread over zones.
	SpotPrice float64 `json:"spotPrice,omitempty"`
	// BareMetal is true for .metal types.
	BareMetal bool `json:"bareMetal,omitempty"`
}

// CatalogOptions adjusts how catalog entries become InstanceTypes, the way an
// EC2NodeClass's kubelet and block-device settings do in Karpenter.
type CatalogOptions struct {
	// MaxPods, when positive, caps every type's pod capacity (kubelet
	// --max-pods); the kube-reserved memory follows the capped value. 0 keeps
	// the ENI-derived limit. Unlike Karpenter, which replaces the ENI limit,
	// this only lowers it: without prefix delegation the VPC CNI cannot give
	// more pods an address than the ENI limit.
	MaxPods int32
	// SystemReserved is kubelet's system-reserved; default none.
	SystemReserved corev1.ResourceList
	// RootVolume is the root volume size, the node's ephemeral-storage
	// capacity; zero means DefaultRootVolume (20Gi).
	RootVolume resource.Quantity
}

//go:embed catalog/us-east-1.json
var defaultCatalogJSON []byte

// DefaultCatalog returns the embedded us-east-1 catalog (zones us-east-1a to
// us-east-1f) as InstanceTypes sorted by name. See LoadCatalog for what each
// type carries. Types without a known on-demand price are not in it; the
// catalog file's "skipped" list names them.
func DefaultCatalog(opts CatalogOptions) ([]*InstanceType, error) {
	return LoadCatalog(bytes.NewReader(defaultCatalogJSON), opts)
}

// DefaultCatalogFile returns the embedded us-east-1 catalog document itself:
// its region, zones, sources, skipped types and raw entries.
func DefaultCatalogFile() (*CatalogFile, error) {
	return ParseCatalogFile(bytes.NewReader(defaultCatalogJSON))
}

// ParseCatalogFile decodes and validates a catalog document without building
// InstanceTypes. Errors name the offending type (index and name) and field.
func ParseCatalogFile(r io.Reader) (*CatalogFile, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var f CatalogFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("offerings: decoding catalog: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("offerings: decoding catalog: unexpected data after the JSON document")
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate checks the whole document and returns the first problem found,
// naming the object and field.
func (f *CatalogFile) Validate() error {
	if f.Format != CatalogFormat {
		return fmt.Errorf("offerings: catalog field format: want %q, got %q", CatalogFormat, f.Format)
	}
	if f.Region == "" {
		return errors.New("offerings: catalog field region: must not be empty")
	}
	if len(f.Zones) == 0 {
		return errors.New("offerings: catalog field zones: must list at least one zone")
	}
	seenZones := map[string]bool{}
	for i, z := range f.Zones {
		if z == "" {
			return fmt.Errorf("offerings: catalog field zones[%d]: must not be empty", i)
		}
		if seenZones[z] {
			return fmt.Errorf("offerings: catalog field zones[%d]: duplicate zone %q", i, z)
		}
		seenZones[z] = true
	}
	seen := map[string]int{}
	for i := range f.InstanceTypes {
		t := &f.InstanceTypes[i]
		if err := t.validate(); err != nil {
			return fmt.Errorf("offerings: catalog instanceTypes[%d] (%q): %w", i, t.Name, err)
		}
		if j, ok := seen[t.Name]; ok {
			return fmt.Errorf("offerings: catalog instanceTypes[%d] (%q): field name: duplicate of instanceTypes[%d]", i, t.Name, j)
		}
		seen[t.Name] = i
	}
	return nil
}

func (t *CatalogInstanceType) validate() error {
	family, size, ok := strings.Cut(t.Name, ".")
	switch {
	case t.Name == "":
		return errors.New("field name: must not be empty")
	case !ok || family == "" || size == "":
		return errors.New(`field name: must be "family.size"`)
	case t.Family != family:
		return fmt.Errorf("field family: must be %q (the name before the first \".\"), got %q", family, t.Family)
	case t.Size != size:
		return fmt.Errorf("field size: must be %q (the name after the first \".\"), got %q", size, t.Size)
	case t.Category == "":
		return errors.New("field category: must not be empty")
	case t.Generation < 0:
		return fmt.Errorf("field generation: must not be negative, got %d", t.Generation)
	case t.VCPU <= 0:
		return fmt.Errorf("field vcpu: must be positive, got %d", t.VCPU)
	case t.VCPU > 1<<20:
		return fmt.Errorf("field vcpu: implausibly large, got %d", t.VCPU)
	case t.MemoryMiB <= 0:
		return fmt.Errorf("field memoryMiB: must be positive, got %d", t.MemoryMiB)
	case t.MemoryMiB > 1<<32:
		return fmt.Errorf("field memoryMiB: implausibly large, got %d", t.MemoryMiB)
	case t.Arch != "amd64" && t.Arch != "arm64":
		return fmt.Errorf(`field arch: must be "amd64" or "arm64", got %q`, t.Arch)
	case t.GPUCount < 0 || t.GPUCount > 1<<20:
		return fmt.Errorf("field gpuCount: must be in [0, 2^20], got %d", t.GPUCount)
	case t.GPUCount > 0 && t.GPUName == "":
		return errors.New("field gpuName: required when gpuCount is positive")
	case t.GPUName != "" && !knownGPUManufacturer(t.GPUManufacturer):
		return fmt.Errorf(`field gpuManufacturer: must be "nvidia", "amd" or "habana" for a GPU type, got %q`, t.GPUManufacturer)
	case t.AcceleratorCount < 0 || t.AcceleratorCount > 1<<20:
		return fmt.Errorf("field acceleratorCount: must be in [0, 2^20], got %d", t.AcceleratorCount)
	case t.AcceleratorCount > 0 && t.AcceleratorName == "":
		return errors.New("field acceleratorName: required when acceleratorCount is positive")
	case t.DefaultCardENIs < 0 || t.DefaultCardENIs > 1<<16:
		return fmt.Errorf("field defaultCardENIs: must be in [0, 65536], got %d", t.DefaultCardENIs)
	case t.IPv4PerENI < 0 || t.IPv4PerENI > 1<<16:
		return fmt.Errorf("field ipv4PerENI: must be in [0, 65536], got %d", t.IPv4PerENI)
	case (t.DefaultCardENIs == 0) != (t.IPv4PerENI == 0):
		return errors.New("fields defaultCardENIs and ipv4PerENI: give both or neither")
	case t.MaxPods < 0 || t.MaxPods > 1<<20:
		return fmt.Errorf("field maxPods: must be in [0, 2^20], got %d", t.MaxPods)
	case t.MaxPods > 0 && t.DefaultCardENIs > 0:
		return errors.New("field maxPods: only for types without ENI data (defaultCardENIs, ipv4PerENI)")
	case !(t.OnDemandPrice > 0) || math.IsInf(t.OnDemandPrice, 0):
		return fmt.Errorf("field onDemandPrice: must be a positive number, got %v", t.OnDemandPrice)
	case !(t.SpotPrice >= 0) || math.IsInf(t.SpotPrice, 0):
		return fmt.Errorf("field spotPrice: must be zero (no Spot) or a positive number, got %v", t.SpotPrice)
	}
	return nil
}

func knownGPUManufacturer(m string) bool {
	return m == "nvidia" || m == "amd" || m == "habana"
}

// LoadCatalog reads a catalog document (the format of CatalogFile) and returns
// its types as InstanceTypes sorted by name. Malformed input is an error that
// names the type (index and name) and the field.
//
// Each type gets, matching Karpenter's AL2023 computation:
//   - Capacity: cpu (vcpu); memory (memoryMiB, less the 64Mi Graviton kernels
//     reserve on arm64, less VMMemoryOverheadPercent of that rounded up to a
//     MiB - Karpenter subtracts this VM overhead from capacity, not as
//     overhead, and so do we); pods (DefaultCardENIs*(IPv4PerENI-1)+2, else
//     MaxPods, else 110; capped by opts.MaxPods); ephemeral-storage (the root
//     volume); and nvidia.com/gpu, amd.com/gpu, habana.ai/gaudi or
//     aws.amazon.com/neuron when the type has them.
//   - Overhead: kube-reserved cpu by the EKS formula (6% of the first core,
//     1% of the second, 0.5% of the third and fourth, 0.25% of the rest),
//     kube-reserved memory 11Mi per pod + 255Mi, kube-reserved
//     ephemeral-storage 1Gi; system-reserved from opts; eviction threshold
//     memory 100Mi and ephemeral-storage 10% of the root volume.
//   - Labels: instance-type, arch, os=linux, region, and the
//     karpenter.k8s.aws/instance-* family, category, generation, size, cpu,
//     memory, cpu-manufacturer, and for GPU or accelerator types their name,
//     manufacturer and count. Zone and capacity type are not labels: they come
//     from the offering a node is bought from.
//   - Offerings: on-demand in every zone at onDemandPrice and, when spotPrice
//     is set, Spot in every zone at a price derived from it, all Available.
//     The Spot prices are ESTIMATES: the data has one region-level estimate
//     per type (on-demand x (1 - Spot Advisor savings)), which each zone
//     varies by SpotZoneFactor, capped at the on-demand price.
func LoadCatalog(r io.Reader, opts CatalogOptions) ([]*InstanceType, error) {
	f, err := ParseCatalogFile(r)
	if err != nil {
		return nil, err
	}
	return f.Build(opts)
}

// Build builds the InstanceTypes of a validated catalog document,
// sorted by name. See LoadCatalog.
func (f *CatalogFile) Build(opts CatalogOptions) ([]*InstanceType, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if opts.MaxPods < 0 {
		return nil, fmt.Errorf("offerings: CatalogOptions.MaxPods: must not be negative, got %d", opts.MaxPods)
	}
	for name, q := range opts.SystemReserved {
		if q.Sign() < 0 {
			return nil, fmt.Errorf("offerings: CatalogOptions.SystemReserved[%s]: must not be negative, got %s", name, q.String())
		}
	}
	root := opts.RootVolume
	if root.IsZero() {
		root = resource.MustParse(DefaultRootVolume)
	}
	if root.Sign() < 0 {
		return nil, fmt.Errorf("offerings: CatalogOptions.RootVolume: must not be negative, got %s", root.String())
	}
	types := make([]*InstanceType, 0, len(f.InstanceTypes))
	for i := range f.InstanceTypes {
		types = append(types, f.InstanceTypes[i].build(f.Region, f.Zones, opts, root))
	}
	sort.Slice(types, func(i, j int) bool { return types[i].Name < types[j].Name })
	return types, nil
}

// ENIPods is the VPC CNI's pod limit for a type, or 0 when the type has no
// ENI data: ENIs on the default card x (IPv4 per ENI - 1) + 2.
func (t *CatalogInstanceType) ENIPods() int64 {
	if t.DefaultCardENIs <= 0 || t.IPv4PerENI <= 0 {
		return 0
	}
	return t.DefaultCardENIs*(t.IPv4PerENI-1) + 2
}

func (t *CatalogInstanceType) pods(capPods int32) int64 {
	pods := t.ENIPods()
	if pods == 0 {
		pods = t.MaxPods
	}
	if pods == 0 {
		pods = DefaultMaxPods
	}
	if capPods > 0 && int64(capPods) < pods {
		pods = int64(capPods)
	}
	return pods
}

// capacityMemoryMiB is the memory Karpenter reports as capacity: nominal, less
// the Graviton CMA reservation, less the VM overhead rounded up to a MiB.
func (t *CatalogInstanceType) capacityMemoryMiB() int64 {
	mib := t.MemoryMiB
	if t.Arch == "arm64" {
		mib -= gravitonCMAMiB
	}
	mib -= int64(math.Ceil(float64(mib) * VMMemoryOverheadPercent))
	if mib < 0 {
		mib = 0
	}
	return mib
}

func (t *CatalogInstanceType) build(region string, zones []string, opts CatalogOptions, root resource.Quantity) *InstanceType {
	pods := t.pods(opts.MaxPods)
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(t.VCPU, resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(t.capacityMemoryMiB()*mib, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(pods, resource.DecimalSI),
		corev1.ResourceEphemeralStorage: root.DeepCopy(),
	}
	if t.GPUCount > 0 {
		capacity[gpuResource(t.GPUManufacturer)] = *resource.NewQuantity(t.GPUCount, resource.DecimalSI)
	}
	if t.AcceleratorCount > 0 && isNeuron(t.AcceleratorName) {
		capacity[ResourceNeuron] = *resource.NewQuantity(t.AcceleratorCount, resource.DecimalSI)
	}

	labels := map[string]string{
		LabelInstanceType:       t.Name,
		LabelArch:               t.Arch,
		LabelOS:                 string(corev1.Linux),
		LabelRegion:             region,
		LabelInstanceFamily:     t.Family,
		LabelInstanceCategory:   t.Category,
		LabelInstanceGeneration: strconv.Itoa(t.Generation),
		LabelInstanceSize:       t.Size,
		LabelInstanceCPU:        strconv.FormatInt(t.VCPU, 10),
		LabelInstanceMemory:     strconv.FormatInt(t.MemoryMiB, 10),
	}
	if t.CPUManufacturer != "" {
		labels[LabelInstanceCPUManufacturer] = t.CPUManufacturer
	}
	// Like Karpenter, GPU labels appear whenever EC2 lists a GPU, including
	// fractional-GPU types whose count is 0.
	if t.GPUName != "" {
		labels[LabelInstanceGPUName] = t.GPUName
		labels[LabelInstanceGPUManufacturer] = t.GPUManufacturer
		labels[LabelInstanceGPUCount] = strconv.FormatInt(t.GPUCount, 10)
	}
	if t.AcceleratorName != "" {
		labels[LabelInstanceAcceleratorName] = t.AcceleratorName
		labels[LabelInstanceAcceleratorCount] = strconv.FormatInt(t.AcceleratorCount, 10)
	}

	systemReserved := corev1.ResourceList{}
	for name, q := range opts.SystemReserved {
		systemReserved[name] = q.DeepCopy()
	}
	nodefs := int64(math.Ceil(float64(root.Value()) / 100 * 10))

	offerings := make([]Offering, 0, 2*len(zones))
	for _, z := range zones {
		offerings = append(offerings, Offering{Zone: z, CapacityType: CapacityTypeOnDemand, Price: t.OnDemandPrice, Available: true})
		if t.SpotPrice > 0 {
			price := math.Min(t.SpotPrice*SpotZoneFactor(t.Name, z), t.OnDemandPrice)
			offerings = append(offerings, Offering{Zone: z, CapacityType: CapacityTypeSpot, Price: price, Available: true})
		}
	}
	baseline, _ := burstableBaselineMilli(t.Family, t.Size)
	return &InstanceType{
		Name:             t.Name,
		Capacity:         capacity,
		Labels:           labels,
		BaselineCPUMilli: baseline,
		Overhead: Overhead{
			KubeReserved:   kubeReserved(t.VCPU*1000, pods),
			SystemReserved: systemReserved,
			EvictionThreshold: corev1.ResourceList{
				corev1.ResourceMemory:           *resource.NewQuantity(100*mib, resource.BinarySI),
				corev1.ResourceEphemeralStorage: *resource.NewQuantity(nodefs, resource.BinarySI),
			},
		},
		Offerings: offerings,
	}
}

const mib = 1 << 20

func gpuResource(manufacturer string) corev1.ResourceName {
	switch manufacturer {
	case "amd":
		return ResourceAMDGPU
	case "habana":
		return ResourceHabanaGaudi
	default:
		return ResourceNvidiaGPU
	}
}

// isNeuron reports whether an accelerator is an AWS Neuron device
// (Inferentia, Trainium), which the Neuron device plugin exposes as
// aws.amazon.com/neuron.
func isNeuron(name string) bool {
	return strings.HasPrefix(name, "inferentia") || strings.HasPrefix(name, "trainium")
}

// kubeReserved is Karpenter's kube-reserved for a node: cpu by the EKS
// formula, memory 11Mi per pod + 255Mi, ephemeral-storage 1Gi.
func kubeReserved(cpuMilli, pods int64) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewMilliQuantity(KubeReservedCPUMilli(cpuMilli), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(KubeReservedMemoryMiB(pods)*mib, resource.BinarySI),
		corev1.ResourceEphemeralStorage: resource.MustParse("1Gi"),
	}
}

// KubeReservedCPUMilli is the EKS kube-reserved cpu for a node with cpuMilli
// millicores: 6% of the first core, 1% of the second, 0.5% of the third and
// fourth and 0.25% of everything above, each band rounded down to a
// millicore as Karpenter does.
func KubeReservedCPUMilli(cpuMilli int64) int64 {
	var total int64
	for _, band := range []struct {
		start, end int64
		share      float64
	}{
		{0, 1000, 0.06},
		{1000, 2000, 0.01},
		{2000, 4000, 0.005},
		{4000, math.MaxInt64, 0.0025},
	} {
		if cpuMilli <= band.start {
			break
		}
		width := min(cpuMilli, band.end) - band.start
		total += int64(float64(width) * band.share)
	}
	return total
}

// KubeReservedMemoryMiB is the EKS kube-reserved memory for a node that runs
// at most pods pods: 11MiB per pod plus 255MiB.
func KubeReservedMemoryMiB(pods int64) int64 {
	return 11*pods + 255
}

// SpotZoneFactor is the documented, deterministic rule that spreads a type's
// region-level Spot estimate over zones: a multiplier in [0.95, 1.05] taken
// from the FNV-1a hash of "instanceType/zone". It only makes zones differ
// plausibly; it is not market data.
func SpotZoneFactor(instanceType, zone string) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(instanceType + "/" + zone))
	return 0.95 + 0.10*float64(h.Sum64()%10001)/10000
}

// WithMaxPods returns copies of types whose pod capacity is capped at maxPods
// and whose kube-reserved memory is recomputed for the new pod count (11Mi per
// pod + 255Mi), as a NodePool that sets kubelet max-pods (e.g. 110) would see
// them. Types already within the cap are returned as they are (shared), as is
// the whole input when maxPods <= 0. The inputs are never modified.
func WithMaxPods(types []*InstanceType, maxPods int32) []*InstanceType {
	out := make([]*InstanceType, len(types))
	for i, it := range types {
		out[i] = it
		if maxPods <= 0 || it == nil {
			continue
		}
		pods, ok := it.Capacity[corev1.ResourcePods]
		if !ok || pods.Value() <= int64(maxPods) {
			continue
		}
		c := it.DeepCopy()
		c.Capacity[corev1.ResourcePods] = *resource.NewQuantity(int64(maxPods), resource.DecimalSI)
		if c.Overhead.KubeReserved == nil {
			c.Overhead.KubeReserved = corev1.ResourceList{}
		}
		c.Overhead.KubeReserved[corev1.ResourceMemory] = *resource.NewQuantity(KubeReservedMemoryMiB(int64(maxPods))*mib, resource.BinarySI)
		out[i] = c
	}
	return out
}
