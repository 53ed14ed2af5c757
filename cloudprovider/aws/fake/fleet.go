package fake

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

type candidate struct {
	spec     *types.FleetLaunchTemplateSpecification
	ov       *types.FleetLaunchTemplateOverridesRequest
	key      PoolKey
	sub      *subnet
	price    float64
	priority float64
	index    int
}

// CreateFleet launches an instant fleet. See the package documentation for
// how overrides are ranked and how failures are reported.
func (f *EC2) CreateFleet(ctx context.Context, in *ec2.CreateFleetInput, _ ...func(*ec2.Options)) (*ec2.CreateFleetOutput, error) {
	if err := f.begin(ctx, OpCreateFleet, in); err != nil {
		return nil, err
	}
	out, err := f.createFleet(in)
	return out, f.finish(err)
}

func (f *EC2) createFleet(in *ec2.CreateFleetInput) (*ec2.CreateFleetOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in == nil {
		return nil, APIError("MissingParameter", "The request must contain the parameter LaunchTemplateConfigs.")
	}
	if in.ClientToken != nil {
		if prev, ok := f.tokens[*in.ClientToken]; ok {
			return prev, nil
		}
	}
	if in.Type != types.FleetTypeInstant {
		return nil, APIError("InvalidParameterValue", fmt.Sprintf("fake EC2 supports only instant fleets, got Type %q", in.Type))
	}
	tc := in.TargetCapacitySpecification
	if tc == nil || tc.TotalTargetCapacity == nil {
		return nil, APIError("MissingParameter", "The request must contain the parameter TargetCapacitySpecification.TotalTargetCapacity.")
	}
	if *tc.TotalTargetCapacity < 1 {
		return nil, APIError("InvalidTargetCapacity", fmt.Sprintf("TotalTargetCapacity must be at least 1, got %d.", *tc.TotalTargetCapacity))
	}
	ct := string(tc.DefaultTargetCapacityType)
	if ct != Spot && ct != OnDemand {
		return nil, APIError("InvalidParameterValue", fmt.Sprintf("DefaultTargetCapacityType %q is not spot or on-demand.", ct))
	}
	cands, err := f.candidates(in, ct)
	if err != nil {
		return nil, err
	}
	ranked, err := f.rank(in, ct, cands)
	if err != nil {
		return nil, err
	}

	out := &ec2.CreateFleetOutput{FleetId: ptr(fmt.Sprintf("fleet-%08x-%04x", f.seq+1, len(f.tokens)))}
	lifecycle := types.InstanceLifecycle(ct)
	fail := func(c *candidate, code, message string) {
		out.Errors = append(out.Errors, types.CreateFleetError{
			ErrorCode:                  ptr(code),
			ErrorMessage:               ptr(message),
			Lifecycle:                  lifecycle,
			LaunchTemplateAndOverrides: echo(c),
		})
	}
	want := int(*tc.TotalTargetCapacity)
	tags := instanceTags(in.TagSpecifications)
launch:
	for _, c := range ranked {
		if want == 0 {
			break
		}
		if pe, ok := f.poolErrors[c.key]; ok {
			fail(c, pe.code, pe.message)
			continue
		}
		if !f.offered(c.key) {
			fail(c, "Unsupported", fmt.Sprintf("Your requested instance type (%s) is not supported in your requested Availability Zone (%s).", c.key.InstanceType, c.key.Zone))
			continue
		}
		if c.ov.MaxPrice != nil && ct == Spot {
			if maxPrice, err := strconv.ParseFloat(*c.ov.MaxPrice, 64); err == nil && maxPrice < c.price {
				fail(c, "SpotMaxPriceTooLow", fmt.Sprintf("Your Spot request price of %s is lower than the minimum required Spot request fulfillment price of %.4f.", *c.ov.MaxPrice, c.price))
				continue
			}
		}
		var ids []string
		for want > 0 {
			if ct == Spot && f.spotQuota >= 0 && f.liveSpot() >= f.spotQuota {
				fail(c, "MaxSpotInstanceCountExceeded", "Max spot instance count exceeded")
				break launch
			}
			vcpus := f.types[c.key.InstanceType].vcpus
			if ct == OnDemand && f.vcpuQuota >= 0 && f.liveOnDemandVCPUs()+vcpus > f.vcpuQuota {
				fail(c, "VcpuLimitExceeded", fmt.Sprintf("You have requested more vCPU capacity than your current vCPU limit of %d allows for the instance bucket that the specified instance type belongs to.", f.vcpuQuota))
				break
			}
			if f.remaining(c.key) <= 0 {
				if ct == Spot {
					fail(c, "UnfulfillableCapacity", "Unable to fulfill capacity due to your request configuration. Please adjust your request and try again.")
				} else {
					fail(c, "InsufficientInstanceCapacity", fmt.Sprintf("We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). Our system will be working on provisioning additional capacity.", c.key.InstanceType, c.key.Zone))
				}
				break
			}
			if c.sub.free <= 0 {
				fail(c, "InsufficientFreeAddressesInSubnet", fmt.Sprintf("There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", *c.sub.s.SubnetId))
				break
			}
			ids = append(ids, f.launch(c, vcpus, tags))
			want--
		}
		if len(ids) > 0 {
			ov := echo(c)
			out.Instances = append(out.Instances, types.CreateFleetInstance{
				InstanceIds:                ids,
				InstanceType:               types.InstanceType(c.key.InstanceType),
				Lifecycle:                  lifecycle,
				LaunchTemplateAndOverrides: ov,
				AvailabilityZone:           ptr(c.key.Zone),
				SubnetId:                   c.sub.s.SubnetId,
			})
		}
	}
	if in.ClientToken != nil {
		f.tokens[*in.ClientToken] = out
	}
	return out, nil
}

func echo(c *candidate) *types.LaunchTemplateAndOverridesResponse {
	return &types.LaunchTemplateAndOverridesResponse{
		LaunchTemplateSpecification: c.spec,
		Overrides: &types.FleetLaunchTemplateOverrides{
			AvailabilityZone: ptr(c.key.Zone),
			InstanceType:     types.InstanceType(c.key.InstanceType),
			SubnetId:         c.sub.s.SubnetId,
			Priority:         c.ov.Priority,
			MaxPrice:         c.ov.MaxPrice,
			WeightedCapacity: c.ov.WeightedCapacity,
			ImageId:          c.ov.ImageId,
		},
	}
}

// candidates validates the launch template configs and returns one candidate
// per override, as EC2 rejects malformed requests before launching anything.
func (f *EC2) candidates(in *ec2.CreateFleetInput, ct string) ([]*candidate, error) {
	if len(in.LaunchTemplateConfigs) == 0 {
		return nil, APIError("MissingParameter", "The request must contain the parameter LaunchTemplateConfigs.")
	}
	var out []*candidate
	for i := range in.LaunchTemplateConfigs {
		cfg := &in.LaunchTemplateConfigs[i]
		lt := cfg.LaunchTemplateSpecification
		if lt == nil || (lt.LaunchTemplateId == nil && lt.LaunchTemplateName == nil) {
			return nil, APIError("MissingParameter", fmt.Sprintf("LaunchTemplateConfigs[%d]: a launch template id or name is required.", i))
		}
		if len(f.launchTemplates) > 0 {
			if lt.LaunchTemplateId != nil && !f.launchTemplates[*lt.LaunchTemplateId] {
				return nil, APIError("InvalidLaunchTemplateId.NotFound", fmt.Sprintf("The specified launch template, with template ID %s, does not exist.", *lt.LaunchTemplateId))
			}
			if lt.LaunchTemplateId == nil && !f.launchTemplates[*lt.LaunchTemplateName] {
				return nil, APIError("InvalidLaunchTemplateName.NotFoundException", fmt.Sprintf("The specified launch template, with template name %s, does not exist.", *lt.LaunchTemplateName))
			}
		}
		if len(cfg.Overrides) == 0 {
			return nil, APIError("InvalidParameterValue", fmt.Sprintf("LaunchTemplateConfigs[%d]: fake EC2 needs overrides with InstanceType and SubnetId.", i))
		}
		spec := &types.FleetLaunchTemplateSpecification{LaunchTemplateId: lt.LaunchTemplateId, LaunchTemplateName: lt.LaunchTemplateName, Version: lt.Version}
		for j := range cfg.Overrides {
			ov := &cfg.Overrides[j]
			where := fmt.Sprintf("LaunchTemplateConfigs[%d].Overrides[%d]", i, j)
			if ov.InstanceType == "" {
				return nil, APIError("InvalidParameterValue", where+": InstanceType is required by fake EC2.")
			}
			if ov.SubnetId == nil {
				return nil, APIError("InvalidParameterValue", where+": SubnetId is required by fake EC2.")
			}
			sub := f.subnets[*ov.SubnetId]
			if sub == nil {
				return nil, APIError("InvalidSubnetID.NotFound", fmt.Sprintf("The subnet ID '%s' does not exist", *ov.SubnetId))
			}
			zone := *sub.s.AvailabilityZone
			if ov.AvailabilityZone != nil && *ov.AvailabilityZone != zone {
				return nil, APIError("InvalidParameterValue", fmt.Sprintf("%s: subnet %s is in %s, not in AvailabilityZone %s.", where, *ov.SubnetId, zone, *ov.AvailabilityZone))
			}
			c := &candidate{spec: spec, ov: ov, key: PoolKey{ct, string(ov.InstanceType), zone}, sub: sub, index: len(out), priority: math.Inf(1)}
			c.price = f.price(c.key)
			if ov.Priority != nil {
				c.priority = *ov.Priority
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// rank orders candidates as the fleet's allocation strategy would try them.
// Unsupported pools have no price and no depth and sort last.
func (f *EC2) rank(in *ec2.CreateFleetInput, ct string, cands []*candidate) ([]*candidate, error) {
	depth := func(c *candidate) int {
		if !f.offered(c.key) {
			return -1
		}
		return f.remaining(c.key)
	}
	price := func(c *candidate) float64 {
		if !f.offered(c.key) {
			return math.Inf(1)
		}
		return c.price
	}
	byPrice := func(a, b *candidate) int {
		if d := cmpFloat(price(a), price(b)); d != 0 {
			return d
		}
		return a.index - b.index
	}
	byDepth := func(a, b *candidate) int {
		if d := depth(b) - depth(a); d != 0 {
			return d
		}
		return byPrice(a, b)
	}
	byPriority := func(a, b *candidate) int {
		if d := cmpFloat(a.priority, b.priority); d != 0 {
			return d
		}
		return a.index - b.index
	}
	out := slices.Clone(cands)
	if ct == OnDemand {
		strategy := types.FleetOnDemandAllocationStrategyLowestPrice
		if in.OnDemandOptions != nil && in.OnDemandOptions.AllocationStrategy != "" {
			strategy = in.OnDemandOptions.AllocationStrategy
		}
		switch strategy {
		case types.FleetOnDemandAllocationStrategyLowestPrice:
			slices.SortStableFunc(out, byPrice)
		case types.FleetOnDemandAllocationStrategyPrioritized:
			slices.SortStableFunc(out, byPriority)
		default:
			return nil, APIError("InvalidParameterValue", fmt.Sprintf("OnDemandOptions.AllocationStrategy %q is not valid.", strategy))
		}
		return out, nil
	}
	strategy := types.SpotAllocationStrategyLowestPrice
	if in.SpotOptions != nil && in.SpotOptions.AllocationStrategy != "" {
		strategy = in.SpotOptions.AllocationStrategy
	}
	switch strategy {
	case types.SpotAllocationStrategyLowestPrice, types.SpotAllocationStrategyDiversified:
		slices.SortStableFunc(out, byPrice)
	case types.SpotAllocationStrategyCapacityOptimized:
		slices.SortStableFunc(out, byDepth)
	case types.SpotAllocationStrategyCapacityOptimizedPrioritized:
		// Capacity first, priorities best effort: among pools that can
		// launch, the highest priority; empty pools after.
		slices.SortStableFunc(out, func(a, b *candidate) int {
			if ea, eb := depth(a) <= 0, depth(b) <= 0; ea != eb {
				if ea {
					return 1
				}
				return -1
			}
			if d := byPriority(a, b); d != 0 {
				return d
			}
			return byDepth(a, b)
		})
	case types.SpotAllocationStrategyPriceCapacityOptimized:
		// The deepest of the cheapest few pools, then the rest by price.
		slices.SortStableFunc(out, byPrice)
		w := min(f.opts.PriceCapacityWindow, len(out))
		slices.SortStableFunc(out[:w], byDepth)
	default:
		return nil, APIError("InvalidParameterValue", fmt.Sprintf("SpotOptions.AllocationStrategy %q is not valid.", strategy))
	}
	return out, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func instanceTags(specs []types.TagSpecification) []types.Tag {
	var out []types.Tag
	for _, s := range specs {
		if s.ResourceType == types.ResourceTypeInstance {
			out = append(out, s.Tags...)
		}
	}
	return out
}

func (f *EC2) liveSpot() int {
	n := 0
	for _, in := range f.instances {
		if !in.terminate && in.pool.CapacityType == Spot {
			n++
		}
	}
	return n
}

func (f *EC2) liveOnDemandVCPUs() int {
	n := 0
	for _, in := range f.instances {
		if !in.terminate && in.pool.CapacityType == OnDemand {
			n += in.vcpus
		}
	}
	return n
}

// launch creates one instance from candidate c; the caller holds f.mu.
func (f *EC2) launch(c *candidate, vcpus int, tags []types.Tag) string {
	f.seq++
	id := fmt.Sprintf("i-%017x", f.seq)
	ip := fmt.Sprintf("10.%d.%d.%d", (f.seq>>16)&0xff, (f.seq>>8)&0xff, f.seq&0xff)
	domain := "ec2.internal"
	if f.opts.Region != "us-east-1" {
		domain = f.opts.Region + ".compute.internal"
	}
	now := f.clock.Now()
	info := f.types[c.key.InstanceType].info
	inst := types.Instance{
		InstanceId:       ptr(id),
		InstanceType:     types.InstanceType(c.key.InstanceType),
		Placement:        &types.Placement{AvailabilityZone: ptr(c.key.Zone), Tenancy: types.TenancyDefault},
		SubnetId:         c.sub.s.SubnetId,
		VpcId:            c.sub.s.VpcId,
		PrivateIpAddress: ptr(ip),
		PrivateDnsName:   ptr(fmt.Sprintf("ip-%s.%s", dashed(ip), domain)),
		LaunchTime:       ptr(now),
		State:            &types.InstanceState{Name: types.InstanceStateNamePending, Code: ptr(int32(0))},
		Tags:             slices.Clone(tags),
		ImageId:          c.ov.ImageId,
	}
	if info.ProcessorInfo != nil && len(info.ProcessorInfo.SupportedArchitectures) > 0 {
		inst.Architecture = types.ArchitectureValues(info.ProcessorInfo.SupportedArchitectures[0])
	}
	if c.key.CapacityType == Spot {
		inst.InstanceLifecycle = types.InstanceLifecycleTypeSpot
		inst.SpotInstanceRequestId = ptr(fmt.Sprintf("sir-%08x", f.seq))
	}
	f.instances[id] = &instance{inst: inst, pool: c.key, vcpus: vcpus, launched: now}
	f.instanceIDs = append(f.instanceIDs, id)
	f.capacity[c.key] = f.remaining(c.key) - 1
	c.sub.free--
	return id
}

func dashed(ip string) string {
	b := []byte(ip)
	for i := range b {
		if b[i] == '.' {
			b[i] = '-'
		}
	}
	return string(b)
}
