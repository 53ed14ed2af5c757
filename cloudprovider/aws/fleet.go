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
type pool struct {
	key      cloudprovider.OfferingKey
	it       *offerings.InstanceType
	price    float64
	subnetID string
	arch     string
	rank     int
}

// pools returns the claim's launchable pools of capacity type ct, in the
// claim's order (cheapest type first, then the type's offering order): one
// per (instance type, zone) whose offering is available, allowed by the
// claim's requirements, not marked unavailable, in a zone with a usable
// subnet, of an architecture with a launch template, and not pricier than
// maxPrice (when maxPrice > 0).
//
// its is the claim's instance types with the unavailable offerings applied.
func (p *Provider) pools(claim *scheduling.NodeClaim, its []*offerings.InstanceType, ct string, subnets map[string]string, maxPrice float64) []pool {
	out := make([]pool, 0, len(its)*len(subnets))
	for rank, it := range its {
		arch := it.Labels[offerings.LabelArch]
		if arch == "" {
			arch = "amd64"
		}
		if _, ok := p.opts.LaunchTemplates[arch]; !ok {
			continue
		}
		for _, o := range it.Offerings {
			if o.CapacityType != ct || !o.Available || (maxPrice > 0 && o.Price > maxPrice) {
				continue
			}
			subnet, ok := subnets[o.Zone]
			if !ok {
				continue
			}
			// The same checks as claim.Offerings, without its allocation:
			// this loop runs for every launch.
			if !claim.Requirements.Allows(offerings.LabelZone, o.Zone) || !claim.Requirements.Allows(offerings.LabelCapacityType, ct) {
				continue
			}
			out = append(out, pool{
				key:      cloudprovider.OfferingKey{CapacityType: ct, InstanceType: it.Name, Zone: o.Zone},
				it:       it,
				price:    o.Price,
				subnetID: subnet,
				arch:     arch,
				rank:     rank,
			})
		}
	}
	return out
}

// choosePools picks the capacity type for the next CreateFleet and its
// pools: Spot when the claim allows it and a Spot pool is left that is not
// pricier than the cheapest on-demand pool (when on-demand is allowed too),
// else on-demand.
func (p *Provider) choosePools(claim *scheduling.NodeClaim, allowSpot, allowOD bool, subnets map[string]string) (string, []pool) {
	// One Apply per attempt: it snapshots the marks once instead of a cache
	// lookup per offering.
	its := p.unavailable.Apply(claim.InstanceTypes[:min(len(claim.InstanceTypes), p.opts.MaxInstanceTypes)])
	var od []pool
	if allowOD {
		od = p.pools(claim, its, offerings.CapacityTypeOnDemand, subnets, 0)
	}
	if allowSpot {
		maxPrice := 0.0
		if len(od) > 0 {
			maxPrice = od[0].price
			for _, o := range od[1:] {
				maxPrice = min(maxPrice, o.price)
			}
		}
		if spot := p.pools(claim, its, offerings.CapacityTypeSpot, subnets, maxPrice); len(spot) > 0 {
			return offerings.CapacityTypeSpot, spot
		}
	}
	return offerings.CapacityTypeOnDemand, od
}

// fleetRequest builds the instant CreateFleet request for pools of capacity
// type ct: one launch template config per architecture, one override per
// pool carrying its zone and subnet (so errors map back to the pool).
func (p *Provider) fleetRequest(claim *scheduling.NodeClaim, ct string, pools []pool, strategy types.SpotAllocationStrategy, token string) *ec2.CreateFleetInput {
	var configs []types.FleetLaunchTemplateConfigRequest
	archIndex := make(map[string]int, 2)
	for i := range pools {
		pl := &pools[i]
		idx, ok := archIndex[pl.arch]
		if !ok {
			lt := p.opts.LaunchTemplates[pl.arch]
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
			archIndex[pl.arch] = idx
			configs = append(configs, types.FleetLaunchTemplateConfigRequest{
				LaunchTemplateSpecification: spec,
				Overrides:                   make([]types.FleetLaunchTemplateOverridesRequest, 0, len(pools)),
			})
		}
		ov := types.FleetLaunchTemplateOverridesRequest{
			InstanceType:     types.InstanceType(pl.key.InstanceType),
			SubnetId:         &pl.subnetID,
			AvailabilityZone: &pl.key.Zone,
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
