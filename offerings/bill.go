package offerings

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The facts below are copied from EC2's documentation and price list
// (us-east-1, Linux): the burstable credit table per instance size, the
// surplus-credit rate of unlimited mode, EBS volume prices and the public
// IPv4 charge. They are compiled in; nothing is read at run time.
const (
	// SurplusCreditPerVCPUHour is what a burstable instance in unlimited
	// mode (the default for T3, T3a and T4g) pays per vCPU-hour of cpu
	// used above its baseline once its earned credits are spent (Linux).
	SurplusCreditPerVCPUHour = 0.05
	// PublicIPv4PerHour is the hourly charge for a public IPv4 address.
	PublicIPv4PerHour = 0.005
	// HoursPerMonth converts EBS's per-GB-month prices to hourly ones.
	HoursPerMonth = 730
	// DefaultRootVolumeGiB and DefaultRootVolumeType are the root volume
	// Karpenter's AL2023 AMI family gives a node: 20 GiB of gp3.
	DefaultRootVolumeGiB  = 20
	DefaultRootVolumeType = "gp3"
)

// RootVolumePricePerGiBMonth returns the EBS price of a volume type in USD
// per GiB-month (gp3, gp2, io1, st1, sc1; provisioned IOPS and throughput
// beyond gp3's included 3,000 IOPS and 125 MiB/s are not modelled), and
// false for a type it does not know.
func RootVolumePricePerGiBMonth(volumeType string) (float64, bool) {
	switch volumeType {
	case "gp3":
		return 0.08, true
	case "gp2":
		return 0.10, true
	case "io1":
		return 0.125, true
	case "st1":
		return 0.045, true
	case "sc1":
		return 0.015, true
	}
	return 0, false
}

// NodeCosts is what a node costs per hour besides its instance: its root
// volume, a public IPv4 address if it gets one, and any per-node charge
// the user states (per-host agent licences are billed that way).
type NodeCosts struct {
	// RootVolumeGiB is the root volume's size; 0 means DefaultRootVolumeGiB.
	RootVolumeGiB int64
	// RootVolumeType is the EBS volume type; "" means DefaultRootVolumeType.
	// A type RootVolumePricePerGiBMonth does not know is priced as gp3
	// (NodePool validation rejects such types before they get here).
	RootVolumeType string
	// PublicIPv4 is true when every node gets a public IPv4 address.
	PublicIPv4 bool
	// ExtraHourly is a per-node hourly cost in USD the user states.
	ExtraHourly float64
}

// Hourly is the per-node cost in USD per hour, besides the instance.
func (c NodeCosts) Hourly() float64 {
	size := c.RootVolumeGiB
	if size <= 0 {
		size = DefaultRootVolumeGiB
	}
	perGiB, ok := RootVolumePricePerGiBMonth(c.RootVolumeType)
	if !ok {
		perGiB, _ = RootVolumePricePerGiBMonth(DefaultRootVolumeType)
	}
	hourly := float64(size)*perGiB/HoursPerMonth + c.ExtraHourly
	if c.PublicIPv4 {
		hourly += PublicIPv4PerHour
	}
	return hourly
}

// BurstablePolicy says how a NodePool treats burstable types (t2, t3, t3a,
// t4g), whose vCPUs sustain only a baseline share without spending credits.
type BurstablePolicy string

const (
	// BurstableBaseline, the default, offers pods only a burstable type's
	// baseline cpu: a cpu request is a guarantee, and a node cannot
	// guarantee more than it sustains. See BaselineAllocatableCPUMilli.
	BurstableBaseline BurstablePolicy = "Baseline"
	// BurstableCredits offers pods every vCPU, and prices requested cpu
	// above the baseline at SurplusCreditPerVCPUHour (unlimited mode).
	BurstableCredits BurstablePolicy = "Credits"
	// BurstableExclude keeps burstable types out of the NodePool.
	BurstableExclude BurstablePolicy = "Exclude"
)

// Validate returns an error for a policy other than "" (Baseline) and the
// three named ones.
func (p BurstablePolicy) Validate() error {
	switch p {
	case "", BurstableBaseline, BurstableCredits, BurstableExclude:
		return nil
	}
	return fmt.Errorf("unknown burstable policy %q: want %s, %s or %s", string(p), BurstableBaseline, BurstableCredits, BurstableExclude)
}

// burstableBaselineMilli is the cpu a burstable type sustains, in
// millicores: vCPUs x baseline share per vCPU (EC2's credit table: credits
// earned per hour / 60). It is false for a type that is not burstable.
func burstableBaselineMilli(family, size string) (int64, bool) {
	// T3, T3a and T4g share one table; T2's smaller sizes have one vCPU.
	var t2 bool
	switch family {
	case "t3", "t3a", "t4g":
	case "t2":
		t2 = true
	default:
		return 0, false
	}
	switch size {
	case "nano":
		return pick(t2, 50, 100), true
	case "micro":
		return pick(t2, 100, 200), true
	case "small":
		return pick(t2, 200, 400), true
	case "medium":
		return 400, true
	case "large":
		return 600, true
	case "xlarge":
		return pick(t2, 900, 1600), true
	case "2xlarge":
		return pick(t2, 1360, 3200), true
	}
	return 0, false
}

func pick(cond bool, yes, no int64) int64 {
	if cond {
		return yes
	}
	return no
}

// IsBurstableName reports whether an EC2 instance type name (e.g.
// "t3.micro") is a burstable type with a known baseline.
func IsBurstableName(name string) bool {
	family, size, _ := strings.Cut(name, ".")
	_, ok := burstableBaselineMilli(family, size)
	return ok
}

// BurstableBaselineMilli returns the cpu a burstable type sustains without
// spending credits, in millicores (t3.micro: 2 vCPUs at 10% = 200), and
// false for a type that is not burstable. The catalog sets it (field
// BaselineCPUMilli) from EC2's credit table.
func (it *InstanceType) BurstableBaselineMilli() (int64, bool) {
	return it.BaselineCPUMilli, it.BaselineCPUMilli > 0
}

// BaselineAllocatableCPUMilli is the cpu a node of type it offers pods under
// BurstableBaseline: its allocatable cpu less the vCPU share above the
// baseline (capacity - baseline), never below zero. The node's own
// reservations (kube-reserved, system-reserved) come out of the baseline
// too, since the machine as a whole sustains only that much. A type that is
// not burstable offers its allocatable cpu unchanged.
//
// t3.micro: 2,000m capacity, 70m kube-reserved, 200m baseline: 1,930m
// allocatable becomes 130m.
func (it *InstanceType) BaselineAllocatableCPUMilli() int64 {
	alloc := it.Allocatable()[corev1.ResourceCPU]
	milli := alloc.MilliValue()
	baseline, ok := it.BurstableBaselineMilli()
	if !ok {
		return milli
	}
	capacity := it.Capacity[corev1.ResourceCPU]
	return max(0, milli-(capacity.MilliValue()-baseline))
}

// SurplusCreditHourly is what a node of type it pays per hour for surplus
// credits when its pods and daemonsets request requestedCPUMilli of cpu and
// use what they request: the cpu above the baseline at
// SurplusCreditPerVCPUHour. It is 0 for a type that is not burstable.
func (it *InstanceType) SurplusCreditHourly(requestedCPUMilli int64) float64 {
	baseline, ok := it.BurstableBaselineMilli()
	if !ok || requestedCPUMilli <= baseline {
		return 0
	}
	return float64(requestedCPUMilli-baseline) / 1000 * SurplusCreditPerVCPUHour
}

// NodeBill is what AWS charges per hour for one node of type it bought as
// offering o, carrying requestedCPUMilli of cpu requests (pods and
// daemonsets): the offering's price, the per-node costs, and under
// BurstableCredits the surplus credits for requested cpu above a burstable
// type's baseline. Requests are taken as use: a pod may use less, but the
// plan must afford what it asks for. Every report prices nodes with it.
func NodeBill(it *InstanceType, o Offering, costs NodeCosts, policy BurstablePolicy, requestedCPUMilli int64) float64 {
	bill := o.Price + costs.Hourly()
	if policy == BurstableCredits {
		bill += it.SurplusCreditHourly(requestedCPUMilli)
	}
	return bill
}
