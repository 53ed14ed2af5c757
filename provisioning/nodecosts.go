package provisioning

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

// NodeCostSpec is the part of a NodePool's node template that decides what
// a node costs besides its instance, and how burstable types are used. The
// first two fields are named as on Karpenter's EC2NodeClass, where a
// Karpenter user sets them; fleetpack has no separate node class.
type NodeCostSpec struct {
	// BlockDeviceMappings are the node's EBS volumes. The one marked
	// rootVolume (else the first) is the root volume; with none, the node
	// gets 20Gi of gp3, as Karpenter's AL2023 default.
	BlockDeviceMappings []BlockDeviceMapping `json:"blockDeviceMappings,omitempty"`
	// AssociatePublicIPAddress gives every node a public IPv4 address,
	// billed per hour.
	AssociatePublicIPAddress *bool `json:"associatePublicIPAddress,omitempty"`
	// AdditionalHourlyCost is a per-node cost in USD per hour that AWS's
	// price list does not show, such as a per-host agent licence, as a
	// decimal string ("0.012").
	AdditionalHourlyCost *resource.Quantity `json:"additionalHourlyCost,omitempty"`
	// BurstablePolicy says how burstable types (t2, t3, t3a, t4g) are
	// used: Baseline (the default: pods get only the cpu the type
	// sustains), Credits (every vCPU, requested cpu above the baseline
	// priced at the surplus-credit rate) or Exclude.
	BurstablePolicy offerings.BurstablePolicy `json:"burstablePolicy,omitempty"`
}

// BlockDeviceMapping is one EBS volume of a node, as in an EC2NodeClass.
type BlockDeviceMapping struct {
	// DeviceName is the device, e.g. /dev/xvda.
	DeviceName string `json:"deviceName,omitempty"`
	// RootVolume marks the root volume.
	RootVolume bool `json:"rootVolume,omitempty"`
	// EBS describes the volume.
	EBS *BlockDevice `json:"ebs,omitempty"`
}

// BlockDevice is an EBS volume's size and type.
type BlockDevice struct {
	// VolumeSize is the size, e.g. 20Gi; unset means 20Gi.
	VolumeSize *resource.Quantity `json:"volumeSize,omitempty"`
	// VolumeType is gp3 (the default), gp2, io1, st1 or sc1.
	VolumeType string `json:"volumeType,omitempty"`
}

// maxAdditionalHourlyCost bounds AdditionalHourlyCost: anything above is a
// typo (a monthly figure, say), not a per-node hourly charge.
const maxAdditionalHourlyCost = 100

// NodeCosts returns the per-node costs of the spec: the root volume in
// RootVolumeGiB and RootVolumeType, every other volume and the additional
// hourly cost in ExtraHourly. Call it on a validated spec.
func (s *NodeCostSpec) NodeCosts() offerings.NodeCosts {
	costs := offerings.NodeCosts{PublicIPv4: s.AssociatePublicIPAddress != nil && *s.AssociatePublicIPAddress}
	if q := s.AdditionalHourlyCost; q != nil {
		costs.ExtraHourly = q.AsApproximateFloat64()
	}
	root := s.rootVolume()
	for i, m := range s.BlockDeviceMappings {
		size, volumeType := volumeOf(m)
		if i == root {
			costs.RootVolumeGiB, costs.RootVolumeType = size, volumeType
			continue
		}
		costs.ExtraHourly += offerings.NodeCosts{RootVolumeGiB: size, RootVolumeType: volumeType}.Hourly()
	}
	return costs
}

// rootVolume is the index of the root volume's mapping, -1 if none.
func (s *NodeCostSpec) rootVolume() int {
	for i, m := range s.BlockDeviceMappings {
		if m.RootVolume {
			return i
		}
	}
	if len(s.BlockDeviceMappings) > 0 {
		return 0
	}
	return -1
}

// volumeOf returns a mapping's size in GiB (rounded up) and type, defaults
// filled in.
func volumeOf(m BlockDeviceMapping) (int64, string) {
	size, volumeType := int64(offerings.DefaultRootVolumeGiB), offerings.DefaultRootVolumeType
	if m.EBS != nil {
		if m.EBS.VolumeSize != nil {
			size = (m.EBS.VolumeSize.Value() + (1<<30 - 1)) >> 30
		}
		if m.EBS.VolumeType != "" {
			volumeType = m.EBS.VolumeType
		}
	}
	return size, volumeType
}

func (s *NodeCostSpec) validate(p *field.Path, add func(*field.Path, string, ...any)) {
	roots := 0
	for i, m := range s.BlockDeviceMappings {
		mp := p.Child("blockDeviceMappings").Index(i)
		if m.RootVolume {
			if roots++; roots == 2 {
				add(mp.Child("rootVolume"), "only one mapping may be the root volume")
			}
		}
		if m.EBS == nil {
			continue
		}
		if q := m.EBS.VolumeSize; q != nil && (q.Sign() <= 0 || q.Value() > 64<<40) {
			add(mp.Child("ebs", "volumeSize"), "must be between 1 byte and 64Ti, got %s", q.String())
		}
		if t := m.EBS.VolumeType; t != "" {
			if _, ok := offerings.RootVolumePricePerGiBMonth(t); !ok {
				add(mp.Child("ebs", "volumeType"), "unknown volume type %q: want gp3, gp2, io1, st1 or sc1", t)
			}
		}
	}
	if q := s.AdditionalHourlyCost; q != nil && (q.Sign() < 0 || q.Cmp(*resource.NewQuantity(maxAdditionalHourlyCost, resource.DecimalSI)) > 0) {
		add(p.Child("additionalHourlyCost"), "must be between 0 and %d (USD per node-hour), got %s", maxAdditionalHourlyCost, q.String())
	}
	if err := s.BurstablePolicy.Validate(); err != nil {
		add(p.Child("burstablePolicy"), "%s", err)
	}
}

// LaunchedNodeCost is the hourly bill (offerings.NodeBill) and list price of
// node as launched for claim: the claim's type and offering the node's
// instance-type, zone and capacity-type labels name. When the labels match
// none of the claim's, it falls back to the claim's own Price and ListPrice.
func LaunchedNodeCost(claim *scheduling.NodeClaim, node *corev1.Node) (bill, list float64) {
	requested := claim.PodRequests.Cpu().MilliValue() + claim.DaemonSetRequests.Cpu().MilliValue()
	if it, o, ok := offeringOf(claim.InstanceTypes, node); ok {
		return offerings.NodeBill(it, o, claim.Template.NodeCosts, claim.Template.Burstable, requested), o.Price
	}
	return claim.Price(), claim.ListPrice()
}

// offeringOf finds, among types, the type and offering a node's
// instance-type, zone and capacity-type labels name.
func offeringOf(types []*offerings.InstanceType, node *corev1.Node) (*offerings.InstanceType, offerings.Offering, bool) {
	for _, it := range types {
		if it.Name != node.Labels[offerings.LabelInstanceType] {
			continue
		}
		for _, o := range it.Offerings {
			if o.Zone == node.Labels[offerings.LabelZone] && o.CapacityType == node.Labels[offerings.LabelCapacityType] {
				return it, o, true
			}
		}
	}
	return nil, offerings.Offering{}, false
}
