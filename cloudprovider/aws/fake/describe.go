package fake

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// stateCode is EC2's numeric code for an instance state.
func stateCode(name types.InstanceStateName) int32 {
	switch name {
	case types.InstanceStateNameRunning:
		return 16
	case types.InstanceStateNameShuttingDown:
		return 32
	case types.InstanceStateNameTerminated:
		return 48
	case types.InstanceStateNameStopping:
		return 64
	case types.InstanceStateNameStopped:
		return 80
	}
	return 0 // pending
}

func setState(in *types.Instance, name types.InstanceStateName) {
	in.State = &types.InstanceState{Name: name, Code: ptr(stateCode(name))}
}

// advance brings an instance's state up to date with the clock; the caller
// holds f.mu.
func (f *EC2) advance(in *instance) {
	if in.inst.State.Name == types.InstanceStateNamePending && !f.clock.Now().Before(in.launched.Add(f.opts.StartupDelay)) {
		setState(&in.inst, types.InstanceStateNameRunning)
	}
}

// TerminateInstances terminates instances. Like EC2, an unknown id fails the
// whole call with InvalidInstanceID.NotFound, and terminating an instance
// that is already terminated succeeds and reports it terminated before and
// after.
func (f *EC2) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	if err := f.begin(ctx, OpTerminateInstances, in); err != nil {
		return nil, err
	}
	out, err := f.terminate(in)
	return out, f.finish(err)
}

func (f *EC2) terminate(in *ec2.TerminateInstancesInput) (*ec2.TerminateInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in == nil || len(in.InstanceIds) == 0 {
		return nil, APIError("MissingParameter", "The request must contain the parameter InstanceId.")
	}
	if err := f.checkIDs(in.InstanceIds); err != nil {
		return nil, err
	}
	out := &ec2.TerminateInstancesOutput{}
	for _, id := range in.InstanceIds {
		inst := f.instances[id]
		f.advance(inst)
		prev := *inst.inst.State
		if !inst.terminate {
			inst.terminate = true
			// Capacity and the address return to their pool and subnet.
			f.capacity[inst.pool] = f.remaining(inst.pool) + 1
			if s := f.subnets[aws(inst.inst.SubnetId)]; s != nil {
				s.free++
			}
			setState(&inst.inst, types.InstanceStateNameTerminated)
		}
		cur := *inst.inst.State
		out.TerminatingInstances = append(out.TerminatingInstances, types.InstanceStateChange{InstanceId: ptr(id), PreviousState: &prev, CurrentState: &cur})
	}
	return out, nil
}

func (f *EC2) checkIDs(ids []string) error {
	var missing []string
	for _, id := range ids {
		if !strings.HasPrefix(id, "i-") {
			return APIError("InvalidInstanceID.Malformed", fmt.Sprintf("Invalid id: %q", id))
		}
		if f.instances[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) == 1 {
		return APIError("InvalidInstanceID.NotFound", fmt.Sprintf("The instance ID '%s' does not exist", missing[0]))
	}
	if len(missing) > 1 {
		return APIError("InvalidInstanceID.NotFound", fmt.Sprintf("The instance IDs '%s' do not exist", strings.Join(missing, ", ")))
	}
	return nil
}

func aws(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// filterFunc returns the values a resource has for a filter name, and false
// if the name is not supported.
type filterFunc func(name string) ([]string, bool)

// matchFilters applies EC2 filter semantics: values of one filter are ORed,
// filters are ANDed, '*' and '?' are wildcards.
func matchFilters(filters []types.Filter, values filterFunc) (bool, error) {
	for _, flt := range filters {
		name := aws(flt.Name)
		have, ok := values(name)
		if !ok {
			return false, APIError("InvalidParameterValue", fmt.Sprintf("The filter '%s' is invalid", name))
		}
		hit := false
		for _, want := range flt.Values {
			for _, h := range have {
				if wildcard(want, h) {
					hit = true
				}
			}
		}
		if !hit {
			return false, nil
		}
	}
	return true, nil
}

// wildcard matches s against a pattern with * and ?.
func wildcard(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if wildcard(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && wildcard(pattern[1:], s[1:])
	default:
		return s != "" && s[0] == pattern[0] && wildcard(pattern[1:], s[1:])
	}
}

func tagFilter(tags []types.Tag, name string) ([]string, bool) {
	switch {
	case name == "tag-key":
		out := make([]string, 0, len(tags))
		for _, t := range tags {
			out = append(out, aws(t.Key))
		}
		return out, true
	case name == "tag-value":
		out := make([]string, 0, len(tags))
		for _, t := range tags {
			out = append(out, aws(t.Value))
		}
		return out, true
	case strings.HasPrefix(name, "tag:"):
		key := strings.TrimPrefix(name, "tag:")
		for _, t := range tags {
			if aws(t.Key) == key {
				return []string{aws(t.Value)}, true
			}
		}
		return nil, true
	}
	return nil, false
}

// DescribeInstances supports InstanceIds (unknown ids fail the call with
// InvalidInstanceID.NotFound), pagination, and the filters instance-id,
// instance-state-name, instance-type, availability-zone, subnet-id,
// instance-lifecycle, tag:<key>, tag-key and tag-value.
func (f *EC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if err := f.begin(ctx, OpDescribeInstances, in); err != nil {
		return nil, err
	}
	out, err := f.describeInstances(in)
	return out, f.finish(err)
}

func (f *EC2) describeInstances(in *ec2.DescribeInstancesInput) (*ec2.DescribeInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in == nil {
		in = &ec2.DescribeInstancesInput{}
	}
	if len(in.InstanceIds) > 0 && in.MaxResults != nil {
		return nil, APIError("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
	}
	ids := f.instanceIDs
	if len(in.InstanceIds) > 0 {
		if err := f.checkIDs(in.InstanceIds); err != nil {
			return nil, err
		}
		ids = in.InstanceIds
	}
	var matched []types.Instance
	for _, id := range ids {
		inst := f.instances[id]
		f.advance(inst)
		ok, err := matchFilters(in.Filters, func(name string) ([]string, bool) {
			i := &inst.inst
			switch name {
			case "instance-id":
				return []string{id}, true
			case "instance-state-name":
				return []string{string(i.State.Name)}, true
			case "instance-type":
				return []string{string(i.InstanceType)}, true
			case "availability-zone":
				return []string{aws(i.Placement.AvailabilityZone)}, true
			case "subnet-id":
				return []string{aws(i.SubnetId)}, true
			case "instance-lifecycle":
				return []string{string(i.InstanceLifecycle)}, true
			}
			return tagFilter(i.Tags, name)
		})
		if err != nil {
			return nil, err
		}
		if ok {
			matched = append(matched, copyInstance(inst.inst))
		}
	}
	items, next, err := page(matched, in.MaxResults, in.NextToken, 1000)
	if err != nil {
		return nil, err
	}
	out := &ec2.DescribeInstancesOutput{NextToken: next}
	for _, i := range items {
		out.Reservations = append(out.Reservations, types.Reservation{
			ReservationId: ptr("r-" + strings.TrimPrefix(aws(i.InstanceId), "i-")),
			OwnerId:       ptr("123456789012"),
			Instances:     []types.Instance{i},
		})
	}
	return out, nil
}

func copyInstance(i types.Instance) types.Instance {
	i.Tags = slices.Clone(i.Tags)
	if i.State != nil {
		s := *i.State
		i.State = &s
	}
	if i.Placement != nil {
		p := *i.Placement
		i.Placement = &p
	}
	return i
}

// DescribeSubnets supports SubnetIds, pagination and the filters subnet-id,
// availability-zone, vpc-id, state, tag:<key>, tag-key and tag-value.
func (f *EC2) DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	if err := f.begin(ctx, OpDescribeSubnets, in); err != nil {
		return nil, err
	}
	out, err := f.describeSubnets(in)
	return out, f.finish(err)
}

func (f *EC2) describeSubnets(in *ec2.DescribeSubnetsInput) (*ec2.DescribeSubnetsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in == nil {
		in = &ec2.DescribeSubnetsInput{}
	}
	ids := f.subnetIDs
	if len(in.SubnetIds) > 0 {
		for _, id := range in.SubnetIds {
			if f.subnets[id] == nil {
				return nil, APIError("InvalidSubnetID.NotFound", fmt.Sprintf("The subnet ID '%s' does not exist", id))
			}
		}
		ids = in.SubnetIds
	}
	var matched []types.Subnet
	for _, id := range ids {
		s := f.subnets[id]
		ok, err := matchFilters(in.Filters, func(name string) ([]string, bool) {
			switch name {
			case "subnet-id":
				return []string{id}, true
			case "availability-zone":
				return []string{aws(s.s.AvailabilityZone)}, true
			case "vpc-id":
				return []string{aws(s.s.VpcId)}, true
			case "state":
				return []string{string(s.s.State)}, true
			}
			return tagFilter(s.s.Tags, name)
		})
		if err != nil {
			return nil, err
		}
		if ok {
			c := s.s
			c.Tags = slices.Clone(c.Tags)
			c.AvailableIpAddressCount = ptr(int32(max(s.free, 0)))
			matched = append(matched, c)
		}
	}
	items, next, err := page(matched, in.MaxResults, in.NextToken, 1000)
	if err != nil {
		return nil, err
	}
	return &ec2.DescribeSubnetsOutput{Subnets: items, NextToken: next}, nil
}

// DescribeInstanceTypes supports InstanceTypes (unknown names fail with
// InvalidInstanceType) and pagination (MaxResults 5..100).
func (f *EC2) DescribeInstanceTypes(ctx context.Context, in *ec2.DescribeInstanceTypesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	if err := f.begin(ctx, OpDescribeInstanceTypes, in); err != nil {
		return nil, err
	}
	out, err := f.describeInstanceTypes(in)
	return out, f.finish(err)
}

func (f *EC2) describeInstanceTypes(in *ec2.DescribeInstanceTypesInput) (*ec2.DescribeInstanceTypesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in == nil {
		in = &ec2.DescribeInstanceTypesInput{}
	}
	if len(in.Filters) > 0 {
		return nil, APIError("InvalidParameterValue", "fake EC2 does not support DescribeInstanceTypes filters")
	}
	names := f.typeNames
	if len(in.InstanceTypes) > 0 {
		names = nil
		for _, t := range in.InstanceTypes {
			if f.types[string(t)] == nil {
				return nil, APIError("InvalidInstanceType", fmt.Sprintf("The following supplied instance types do not exist: [%s]", t))
			}
			names = append(names, string(t))
		}
	}
	infos := make([]types.InstanceTypeInfo, 0, len(names))
	for _, n := range names {
		infos = append(infos, f.types[n].info)
	}
	items, next, err := page(infos, in.MaxResults, in.NextToken, 100)
	if err != nil {
		return nil, err
	}
	return &ec2.DescribeInstanceTypesOutput{InstanceTypes: items, NextToken: next}, nil
}

// DescribeInstanceTypeOfferings supports LocationType region (the default)
// and availability-zone, the filters instance-type and location, and
// pagination (MaxResults 5..1000).
func (f *EC2) DescribeInstanceTypeOfferings(ctx context.Context, in *ec2.DescribeInstanceTypeOfferingsInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error) {
	if err := f.begin(ctx, OpDescribeInstanceTypeOfferings, in); err != nil {
		return nil, err
	}
	out, err := f.describeOfferings(in)
	return out, f.finish(err)
}

func (f *EC2) describeOfferings(in *ec2.DescribeInstanceTypeOfferingsInput) (*ec2.DescribeInstanceTypeOfferingsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in == nil {
		in = &ec2.DescribeInstanceTypeOfferingsInput{}
	}
	lt := in.LocationType
	if lt == "" {
		lt = types.LocationTypeRegion
	}
	if lt != types.LocationTypeRegion && lt != types.LocationTypeAvailabilityZone {
		return nil, APIError("InvalidParameterValue", fmt.Sprintf("fake EC2 does not support LocationType %q", lt))
	}
	var all []types.InstanceTypeOffering
	for _, n := range f.typeNames {
		it := f.types[n]
		var locations []string
		if lt == types.LocationTypeRegion {
			locations = []string{f.opts.Region}
		} else {
			locations = sortedKeys(it.zones)
		}
		for _, loc := range locations {
			o := types.InstanceTypeOffering{InstanceType: types.InstanceType(n), Location: ptr(loc), LocationType: lt}
			ok, err := matchFilters(in.Filters, func(name string) ([]string, bool) {
				switch name {
				case "instance-type":
					return []string{n}, true
				case "location":
					return []string{loc}, true
				}
				return nil, false
			})
			if err != nil {
				return nil, err
			}
			if ok {
				all = append(all, o)
			}
		}
	}
	items, next, err := page(all, in.MaxResults, in.NextToken, 1000)
	if err != nil {
		return nil, err
	}
	return &ec2.DescribeInstanceTypeOfferingsOutput{InstanceTypeOfferings: items, NextToken: next}, nil
}

// DescribeSpotPriceHistory returns, per (instance type, zone), the price in
// effect at StartTime (default now) and every change after it up to EndTime,
// newest first, as EC2 does. It supports InstanceTypes, AvailabilityZone,
// ProductDescriptions (every pool is "Linux/UNIX"), the filters
// instance-type, availability-zone and product-description, and pagination.
func (f *EC2) DescribeSpotPriceHistory(ctx context.Context, in *ec2.DescribeSpotPriceHistoryInput, _ ...func(*ec2.Options)) (*ec2.DescribeSpotPriceHistoryOutput, error) {
	if err := f.begin(ctx, OpDescribeSpotPriceHistory, in); err != nil {
		return nil, err
	}
	out, err := f.describeSpotPrices(in)
	return out, f.finish(err)
}

const productLinux = "Linux/UNIX"

func (f *EC2) describeSpotPrices(in *ec2.DescribeSpotPriceHistoryInput) (*ec2.DescribeSpotPriceHistoryOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in == nil {
		in = &ec2.DescribeSpotPriceHistoryInput{}
	}
	now := f.clock.Now()
	start, end := now, now
	if in.StartTime != nil {
		start = *in.StartTime
	}
	if in.EndTime != nil {
		end = *in.EndTime
	}
	if len(in.ProductDescriptions) > 0 && !slices.Contains(in.ProductDescriptions, productLinux) {
		return &ec2.DescribeSpotPriceHistoryOutput{}, nil
	}
	keys := make([]PoolKey, 0, len(f.spotPrices))
	for k := range f.spotPrices {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b PoolKey) int {
		return strings.Compare(a.InstanceType+" "+a.Zone, b.InstanceType+" "+b.Zone)
	})
	var all []types.SpotPrice
	for _, k := range keys {
		it := f.types[k.InstanceType]
		if it == nil || !it.zones[k.Zone] || !f.supportsSpot(it) {
			continue
		}
		if len(in.InstanceTypes) > 0 && !slices.Contains(in.InstanceTypes, types.InstanceType(k.InstanceType)) {
			continue
		}
		if in.AvailabilityZone != nil && *in.AvailabilityZone != k.Zone {
			continue
		}
		ok, err := matchFilters(in.Filters, func(name string) ([]string, bool) {
			switch name {
			case "instance-type":
				return []string{k.InstanceType}, true
			case "availability-zone":
				return []string{k.Zone}, true
			case "product-description":
				return []string{productLinux}, true
			}
			return nil, false
		})
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		h := f.spotPrices[k]
		for i := len(h) - 1; i >= 0; i-- {
			if h[i].at.After(end) {
				continue
			}
			all = append(all, spotPrice(k, h[i]))
			if !h[i].at.After(start) {
				break // the price in effect at start; older ones are out of range
			}
		}
	}
	items, next, err := page(all, in.MaxResults, in.NextToken, 1000)
	if err != nil {
		return nil, err
	}
	return &ec2.DescribeSpotPriceHistoryOutput{SpotPriceHistory: items, NextToken: next}, nil
}

func spotPrice(k PoolKey, p pricePoint) types.SpotPrice {
	return types.SpotPrice{
		AvailabilityZone:   ptr(k.Zone),
		InstanceType:       types.InstanceType(k.InstanceType),
		ProductDescription: types.RIProductDescription(productLinux),
		SpotPrice:          ptr(fmt.Sprintf("%.6f", p.price)),
		Timestamp:          ptr(p.at.UTC().Truncate(time.Second)),
	}
}
