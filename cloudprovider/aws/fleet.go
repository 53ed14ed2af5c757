package aws

import (
	"crypto/rand"
	"encoding/hex"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/fleetpack/fleetpack/cloudprovider"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

// pool is one override of a fleet request: an offering of an instance type,
// the subnet it launches into, and its rank in the claim's list.
// It is kept small: a claim has hundreds and each Create builds them.
type pool struct {
	it       *offerings.InstanceType
	zone     string
	subnetID string
	price    float64
	rank     int32
	arch     int32 // index into Provider.archs
}

func (pl *pool) key(ct string) cloudprovider.OfferingKey {
	return cloudprovider.OfferingKey{CapacityType: ct, InstanceType: pl.it.Name, Zone: pl.zone}
}

// pools returns the claim's launchable pools of capacity type ct, in the
// claim's order (cheapest type first, then the type's offering order): one
// per (instance type, zone) whose offering is available, allowed by the
// claim's requirements, not marked unavailable, in a zone with a usable
// subnet, of an architecture with a launch template, and not pricier than
// maxPrice (when maxPrice > 0).
//
// its is the claim's instance types with the unavailable offerings applied;
// zoneSubnets holds only the zones the claim allows.
func (p *Provider) pools(its []*offerings.InstanceType, ct string, zoneSubnets map[string]string, maxPrice float64) []pool {
	var out []pool
	for rank, it := range its {
		arch := p.archIndex(it)
		if arch < 0 {
			continue
		}
		for _, o := range it.Offerings {
			if o.CapacityType != ct || !o.Available || (maxPrice > 0 && o.Price > maxPrice) {
				continue
			}
			subnet, ok := zoneSubnets[o.Zone]
			if !ok {
				continue
			}
			if out == nil {
				out = make([]pool, 0, (len(its)-rank)*len(zoneSubnets))
			}
			out = append(out, pool{it: it, zone: o.Zone, subnetID: subnet, price: o.Price, rank: int32(rank), arch: arch})
		}
	}
	return out
}

// cheapest returns the price of the cheapest pool pools would return for
// ct, without building them, and false if there is none.
func (p *Provider) cheapest(its []*offerings.InstanceType, ct string, zoneSubnets map[string]string) (float64, bool) {
	best, found := 0.0, false
	for _, it := range its {
		if p.archIndex(it) < 0 {
			continue
		}
		for _, o := range it.Offerings {
			if o.CapacityType != ct || !o.Available || (found && o.Price >= best) {
				continue
			}
			if _, ok := zoneSubnets[o.Zone]; ok {
				best, found = o.Price, true
			}
		}
	}
	return best, found
}

// archIndex returns the index in p.archs of the type's architecture, or -1
// if no launch template serves it.
func (p *Provider) archIndex(it *offerings.InstanceType) int32 {
	arch := it.Labels[offerings.LabelArch]
	if arch == "" {
		arch = "amd64"
	}
	for i, a := range p.archs {
		if a == arch {
			return int32(i)
		}
	}
	return -1
}

// choosePools picks the capacity type for the next CreateFleet and its
// pools: Spot when the claim allows it and a Spot pool is left that is not
// pricier than the cheapest on-demand pool (when on-demand is allowed too),
// else on-demand.
func (p *Provider) choosePools(claim *scheduling.NodeClaim, allowSpot, allowOD bool, subnets map[string]string) (string, []pool) {
	// One Apply per attempt: it snapshots the marks once instead of a cache
	// lookup per offering.
	its := p.unavailable.Apply(claim.InstanceTypes[:min(len(claim.InstanceTypes), p.opts.MaxInstanceTypes)])
	// The claim's zone requirement, checked once per zone rather than per
	// offering.
	zoneSubnets := make(map[string]string, len(subnets))
	for z, s := range subnets {
		if claim.Requirements.Allows(offerings.LabelZone, z) {
			zoneSubnets[z] = s
		}
	}
	if allowSpot {
		maxPrice := 0.0
		if allowOD {
			maxPrice, _ = p.cheapest(its, offerings.CapacityTypeOnDemand, zoneSubnets)
		}
		if spot := p.pools(its, offerings.CapacityTypeSpot, zoneSubnets, maxPrice); len(spot) > 0 {
			return offerings.CapacityTypeSpot, spot
		}
	}
	if !allowOD {
		return offerings.CapacityTypeSpot, nil
	}
	return offerings.CapacityTypeOnDemand, p.pools(its, offerings.CapacityTypeOnDemand, zoneSubnets, 0)
}

// fleetRequest builds the instant CreateFleet request for pools of capacity
// type ct: one launch template config per architecture, one override per
// pool carrying its zone and subnet (so errors map back to the pool).
func (p *Provider) fleetRequest(claim *scheduling.NodeClaim, ct string, pools []pool, strategy types.SpotAllocationStrategy, token string) *ec2.CreateFleetInput {
	perArch := make([]int, len(p.archs))
	for i := range pools {
		perArch[pools[i].arch]++
	}
	configs := make([]types.FleetLaunchTemplateConfigRequest, 0, 2)
	configIndex := make([]int, len(p.archs))
	for i := range configIndex {
		configIndex[i] = -1
	}
	for i := range pools {
		pl := &pools[i]
		idx := configIndex[pl.arch]
		if idx < 0 {
			lt := p.opts.LaunchTemplates[p.archs[pl.arch]]
			spec := &types.FleetLaunchTemplateSpecificationRequest{Version: strPtr("$Latest")}
			if lt.ID != "" {
				spec.LaunchTemplateId = strPtr(lt.ID)
			} else {
				spec.LaunchTemplateName = strPtr(lt.Name)
			}
			if lt.Version != "" {
				spec.Version = strPtr(lt.Version)
			}
			idx = len(configs)
			configIndex[pl.arch] = idx
			configs = append(configs, types.FleetLaunchTemplateConfigRequest{
				LaunchTemplateSpecification: spec,
				Overrides:                   make([]types.FleetLaunchTemplateOverridesRequest, 0, perArch[pl.arch]),
			})
		}
		ov := types.FleetLaunchTemplateOverridesRequest{
			InstanceType:     types.InstanceType(pl.it.Name),
			SubnetId:         &pl.subnetID,
			AvailabilityZone: &pl.zone,
		}
		if ct == offerings.CapacityTypeSpot && strategy == types.SpotAllocationStrategyCapacityOptimizedPrioritized {
			// Lower is preferred: the claim's cheapest type first.
			prio := float64(pl.rank)
			ov.Priority = &prio
		}
		configs[idx].Overrides = append(configs[idx].Overrides, ov)
	}
	in := &ec2.CreateFleetInput{
		Type:                  types.FleetTypeInstant,
		ClientToken:           &token,
		LaunchTemplateConfigs: configs,
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity:       int32Ptr(1),
			DefaultTargetCapacityType: types.DefaultTargetCapacityType(ct),
		},
		TagSpecifications: p.tagSpecifications(claim),
	}
	if ct == offerings.CapacityTypeSpot {
		in.SpotOptions = &types.SpotOptionsRequest{AllocationStrategy: strategy}
	} else {
		in.OnDemandOptions = &types.OnDemandOptionsRequest{AllocationStrategy: types.FleetOnDemandAllocationStrategyLowestPrice}
	}
	return in
}

func (p *Provider) tagSpecifications(claim *scheduling.NodeClaim) []types.TagSpecification {
	tags := make([]types.Tag, 0, len(p.opts.Tags)+4)
	keys := make([]string, 0, len(p.opts.Tags))
	for k := range p.opts.Tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	own := map[string]string{
		TagManagedBy:                          ManagedBy,
		TagClusterPrefix + p.opts.ClusterName: "owned",
		TagNodePool:                           claim.Template.NodePool,
		TagClaim:                              claim.Hostname,
	}
	for _, k := range keys {
		if _, mine := own[k]; !mine {
			tags = append(tags, types.Tag{Key: strPtr(k), Value: strPtr(p.opts.Tags[k])})
		}
	}
	for _, k := range []string{TagManagedBy, TagClusterPrefix + p.opts.ClusterName, TagNodePool, TagClaim} {
		tags = append(tags, types.Tag{Key: strPtr(k), Value: strPtr(own[k])})
	}
	return []types.TagSpecification{
		{ResourceType: types.ResourceTypeInstance, Tags: tags},
		{ResourceType: types.ResourceTypeVolume, Tags: tags},
	}
}

// newClientToken returns a fresh idempotency token for one CreateFleet
// attempt; the SDK's retries of that attempt reuse it, so EC2 launches at
// most once per attempt.
func newClientToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

func int32Ptr(v int32) *int32 { return &v }
