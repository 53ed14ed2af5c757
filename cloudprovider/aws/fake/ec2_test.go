package fake

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func info(name string, vcpus int32) types.InstanceTypeInfo {
	return types.InstanceTypeInfo{
		InstanceType:          types.InstanceType(name),
		VCpuInfo:              &types.VCpuInfo{DefaultVCpus: ptr(vcpus)},
		MemoryInfo:            &types.MemoryInfo{SizeInMiB: ptr(int64(vcpus) * 4096)},
		ProcessorInfo:         &types.ProcessorInfo{SupportedArchitectures: []types.ArchitectureType{types.ArchitectureTypeX8664}},
		SupportedUsageClasses: []types.UsageClassType{types.UsageClassTypeOnDemand, types.UsageClassTypeSpot},
	}
}

// newPools sets up four types in one zone: a is cheapest and shallowest, d
// dearest and deepest.
func newPools(t *testing.T) (*EC2, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	f := New(Options{Clock: clk})
	for _, it := range []struct {
		name        string
		od, spot    float64
		depth, vcpu int
	}{
		{"a.large", 0.10, 0.01, 1, 2},
		{"b.large", 0.20, 0.02, 50, 2},
		{"c.large", 0.30, 0.03, 500, 2},
		{"d.large", 0.40, 0.10, 1000, 4},
	} {
		f.AddInstanceType(info(it.name, int32(it.vcpu)), it.od, "us-east-1a", "us-east-1b")
		f.SetSpotPrice(it.name, "us-east-1a", it.spot)
		f.SetCapacity(Spot, it.name, "us-east-1a", it.depth)
		f.SetCapacity(OnDemand, it.name, "us-east-1a", it.depth)
	}
	f.AddSubnet("subnet-a", "us-east-1a", 100, map[string]string{"role": "nodes"})
	f.AddSubnet("subnet-b", "us-east-1b", 100, map[string]string{"role": "nodes"})
	return f, clk
}

func fleetInput(ct string, strategy string, priorities map[string]float64, names ...string) *ec2.CreateFleetInput {
	var ovs []types.FleetLaunchTemplateOverridesRequest
	for _, n := range names {
		ov := types.FleetLaunchTemplateOverridesRequest{InstanceType: types.InstanceType(n), SubnetId: ptr("subnet-a"), AvailabilityZone: ptr("us-east-1a")}
		if p, ok := priorities[n]; ok {
			ov.Priority = ptr(p)
		}
		ovs = append(ovs, ov)
	}
	in := &ec2.CreateFleetInput{
		Type: types.FleetTypeInstant,
		LaunchTemplateConfigs: []types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateName: ptr("lt"), Version: ptr("$Latest")},
			Overrides:                   ovs,
		}},
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: ptr(int32(1)), DefaultTargetCapacityType: types.DefaultTargetCapacityType(ct)},
		TagSpecifications:           []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: ptr("team"), Value: ptr("x")}}}},
	}
	if ct == Spot {
		in.SpotOptions = &types.SpotOptionsRequest{AllocationStrategy: types.SpotAllocationStrategy(strategy)}
	} else {
		in.OnDemandOptions = &types.OnDemandOptionsRequest{AllocationStrategy: types.FleetOnDemandAllocationStrategy(strategy)}
	}
	return in
}

var all = []string{"a.large", "b.large", "c.large", "d.large"}

func TestAllocationStrategies(t *testing.T) {
	prio := map[string]float64{"a.large": 3, "b.large": 1, "c.large": 2, "d.large": 0}
	tests := []struct {
		name     string
		ct       string
		strategy string
		prio     map[string]float64
		drain    []string
		want     string
	}{
		{"lowest-price takes the cheapest", Spot, "lowest-price", nil, nil, "a.large"},
		{"empty strategy is lowest-price", Spot, "", nil, nil, "a.large"},
		{"capacity-optimized takes the deepest", Spot, "capacity-optimized", nil, nil, "d.large"},
		{"price-capacity-optimized: deepest of the 3 cheapest", Spot, "price-capacity-optimized", nil, nil, "c.large"},
		{"price-capacity-optimized skips a drained pool", Spot, "price-capacity-optimized", nil, []string{"c.large"}, "b.large"},
		{"capacity-optimized-prioritized honours priority", Spot, "capacity-optimized-prioritized", prio, nil, "d.large"},
		{"capacity-optimized-prioritized puts capacity first", Spot, "capacity-optimized-prioritized", prio, []string{"d.large"}, "b.large"},
		{"on-demand lowest-price", OnDemand, "lowest-price", nil, nil, "a.large"},
		{"on-demand prioritized", OnDemand, "prioritized", prio, nil, "d.large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := newPools(t)
			for _, n := range tt.drain {
				f.DrainPool(tt.ct, n, "us-east-1a")
			}
			out, err := f.CreateFleet(context.Background(), fleetInput(tt.ct, tt.strategy, tt.prio, all...))
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Instances) != 1 || len(out.Instances[0].InstanceIds) != 1 {
				t.Fatalf("instances = %+v, want one", out.Instances)
			}
			got := out.Instances[0]
			ov := got.LaunchTemplateAndOverrides.Overrides
			if string(got.InstanceType) != tt.want || string(ov.InstanceType) != tt.want || *ov.AvailabilityZone != "us-east-1a" || *ov.SubnetId != "subnet-a" ||
				string(got.Lifecycle) != tt.ct || *got.LaunchTemplateAndOverrides.LaunchTemplateSpecification.LaunchTemplateName != "lt" {
				t.Errorf("launched %s (override %+v, lifecycle %s), want %s in us-east-1a/subnet-a as %s", got.InstanceType, ov, got.Lifecycle, tt.want, tt.ct)
			}
			// Empty pools ranked after the choice are not reported.
			for _, e := range out.Errors {
				if string(e.LaunchTemplateAndOverrides.Overrides.InstanceType) != "" && !contains(tt.drain, string(e.LaunchTemplateAndOverrides.Overrides.InstanceType)) {
					t.Errorf("unexpected error %s for %s", *e.ErrorCode, e.LaunchTemplateAndOverrides.Overrides.InstanceType)
				}
			}
			if n := f.Capacity(tt.ct, tt.want, "us-east-1a"); n < 0 {
				t.Errorf("capacity went negative")
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestErrorShapes(t *testing.T) {
	t.Run("spot: UnfulfillableCapacity per override, no instance, no top-level error", func(t *testing.T) {
		f, _ := newPools(t)
		for _, n := range all {
			f.DrainPool(Spot, n, "us-east-1a")
		}
		out, err := f.CreateFleet(context.Background(), fleetInput(Spot, "price-capacity-optimized", nil, all...))
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Instances) != 0 || len(out.Errors) != 4 {
			t.Fatalf("instances %d errors %d, want 0 and 4", len(out.Instances), len(out.Errors))
		}
		seen := map[string]bool{}
		for _, e := range out.Errors {
			ov := e.LaunchTemplateAndOverrides.Overrides
			if *e.ErrorCode != "UnfulfillableCapacity" || e.Lifecycle != types.InstanceLifecycleSpot || *ov.AvailabilityZone != "us-east-1a" || *ov.SubnetId != "subnet-a" {
				t.Errorf("error %s/%s lifecycle %s override %+v", *e.ErrorCode, *e.ErrorMessage, e.Lifecycle, ov)
			}
			seen[string(ov.InstanceType)] = true
		}
		if len(seen) != 4 {
			t.Errorf("errors cover %v, want every override once", seen)
		}
	})
	t.Run("on-demand: InsufficientInstanceCapacity", func(t *testing.T) {
		f, _ := newPools(t)
		f.DrainPool(OnDemand, "a.large", "us-east-1a")
		out, err := f.CreateFleet(context.Background(), fleetInput(OnDemand, "lowest-price", nil, "a.large"))
		if err != nil || len(out.Errors) != 1 || *out.Errors[0].ErrorCode != "InsufficientInstanceCapacity" || out.Errors[0].Lifecycle != types.InstanceLifecycleOnDemand {
			t.Fatalf("out %+v err %v", out, err)
		}
	})
	t.Run("partial: errors beside instances", func(t *testing.T) {
		f, _ := newPools(t)
		f.DrainPool(Spot, "a.large", "us-east-1a")
		out, err := f.CreateFleet(context.Background(), fleetInput(Spot, "lowest-price", nil, all...))
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Errors) != 1 || string(out.Errors[0].LaunchTemplateAndOverrides.Overrides.InstanceType) != "a.large" ||
			len(out.Instances) != 1 || out.Instances[0].InstanceType != "b.large" {
			t.Fatalf("errors %+v instances %+v, want a.large's error and b.large launched", out.Errors, out.Instances)
		}
	})
	t.Run("unsupported pool, forced error, full subnet, max price", func(t *testing.T) {
		f, _ := newPools(t)
		f.SetPoolError(Spot, "a.large", "us-east-1a", "InsufficientCapacity", "forced")
		in := fleetInput(Spot, "lowest-price", nil, "a.large", "b.large", "c.large")
		in.LaunchTemplateConfigs[0].Overrides[1].MaxPrice = ptr("0.015")
		f.SetSubnetFree("subnet-a", 0)
		// c.large has no Spot price in us-east-1b: not offered there.
		in.LaunchTemplateConfigs[0].Overrides = append(in.LaunchTemplateConfigs[0].Overrides,
			types.FleetLaunchTemplateOverridesRequest{InstanceType: "c.large", SubnetId: ptr("subnet-b")})
		out, err := f.CreateFleet(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		codes := map[string]string{}
		for _, e := range out.Errors {
			codes[string(e.LaunchTemplateAndOverrides.Overrides.InstanceType)+"/"+*e.LaunchTemplateAndOverrides.Overrides.AvailabilityZone] = *e.ErrorCode
		}
		want := map[string]string{
			"a.large/us-east-1a": "InsufficientCapacity",
			"b.large/us-east-1a": "SpotMaxPriceTooLow",
			"c.large/us-east-1a": "InsufficientFreeAddressesInSubnet",
			"c.large/us-east-1b": "Unsupported",
		}
		if fmt.Sprint(codes) != fmt.Sprint(want) || len(out.Instances) != 0 {
			t.Errorf("codes = %v, want %v (and no instance)", codes, want)
		}
	})
	t.Run("quotas", func(t *testing.T) {
		f, _ := newPools(t)
		f.SetSpotQuota(1)
		out1, _ := f.CreateFleet(context.Background(), fleetInput(Spot, "lowest-price", nil, all...))
		out2, _ := f.CreateFleet(context.Background(), fleetInput(Spot, "lowest-price", nil, all...))
		if len(out1.Instances) != 1 || len(out2.Instances) != 0 || len(out2.Errors) != 1 || *out2.Errors[0].ErrorCode != "MaxSpotInstanceCountExceeded" {
			t.Fatalf("second launch past the quota: %+v", out2)
		}
		if _, err := f.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: out1.Instances[0].InstanceIds}); err != nil {
			t.Fatal(err)
		}
		if out3, _ := f.CreateFleet(context.Background(), fleetInput(Spot, "lowest-price", nil, all...)); len(out3.Instances) != 1 {
			t.Error("quota not freed by termination")
		}
		f.SetVCPUQuota(3)
		out4, _ := f.CreateFleet(context.Background(), fleetInput(OnDemand, "prioritized", map[string]float64{"d.large": 0, "a.large": 1}, "d.large", "a.large"))
		if len(out4.Instances) != 1 || out4.Instances[0].InstanceType != "a.large" || len(out4.Errors) != 1 || *out4.Errors[0].ErrorCode != "VcpuLimitExceeded" {
			t.Errorf("vCPU quota: %+v", out4)
		}
	})
}

func apiCode(err error) string {
	var ae *smithy.GenericAPIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

func TestTopLevelErrorsAndFaults(t *testing.T) {
	f, _ := newPools(t)
	ctx := context.Background()
	bad := fleetInput(Spot, "lowest-price", nil, "a.large")
	bad.TargetCapacitySpecification = nil
	if _, err := f.CreateFleet(ctx, bad); apiCode(err) != "MissingParameter" {
		t.Errorf("missing target: %v", err)
	}
	bad = fleetInput(Spot, "lowest-price", nil, "a.large")
	bad.LaunchTemplateConfigs[0].Overrides[0].SubnetId = ptr("subnet-nope")
	if _, err := f.CreateFleet(ctx, bad); apiCode(err) != "InvalidSubnetID.NotFound" {
		t.Errorf("unknown subnet: %v", err)
	}
	bad = fleetInput(Spot, "lowest-price", nil, "a.large")
	bad.LaunchTemplateConfigs[0].Overrides[0].AvailabilityZone = ptr("us-east-1b")
	if _, err := f.CreateFleet(ctx, bad); apiCode(err) != "InvalidParameterValue" {
		t.Errorf("zone/subnet mismatch: %v", err)
	}
	bad = fleetInput(Spot, "lowest-price", nil, "a.large")
	bad.Type = types.FleetTypeMaintain
	if _, err := f.CreateFleet(ctx, bad); apiCode(err) != "InvalidParameterValue" {
		t.Errorf("maintain fleet: %v", err)
	}
	f.AddLaunchTemplate("other")
	if _, err := f.CreateFleet(ctx, fleetInput(Spot, "lowest-price", nil, "a.large")); apiCode(err) != "InvalidLaunchTemplateName.NotFoundException" {
		t.Errorf("unknown launch template: %v", err)
	}
	f.AddLaunchTemplate("lt")

	f.ThrottleNext(OpCreateFleet, 2)
	for i := 0; i < 2; i++ {
		_, err := f.CreateFleet(ctx, fleetInput(Spot, "lowest-price", nil, "a.large"))
		var ae *smithy.GenericAPIError
		if !errors.As(err, &ae) || ae.Code != "RequestLimitExceeded" || ae.ErrorFault() != smithy.FaultClient {
			t.Errorf("throttled call %d: %v", i, err)
		}
	}
	if _, err := f.DescribeSubnets(ctx, nil); err != nil {
		t.Errorf("throttling CreateFleet throttled DescribeSubnets: %v", err)
	}
	if out, err := f.CreateFleet(ctx, fleetInput(Spot, "lowest-price", nil, "a.large")); err != nil || len(out.Instances) != 1 {
		t.Errorf("after throttling: %v", err)
	}
	f.FailNext("", APIError("InternalError", "boom"))
	if _, err := f.DescribeInstances(ctx, nil); apiCode(err) != "InternalError" {
		t.Errorf("FailNext: %v", err)
	}
	f.SetHook(func(_ context.Context, op string) error {
		if op == OpTerminateInstances {
			return APIError("UnauthorizedOperation", "no")
		}
		return nil
	})
	if _, err := f.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-1"}}); apiCode(err) != "UnauthorizedOperation" {
		t.Errorf("hook error: %v", err)
	}
	calls := f.Calls()
	last := calls[len(calls)-1]
	if last.Op != OpTerminateInstances || apiCode(last.Err) != "UnauthorizedOperation" {
		t.Errorf("last call recorded as %+v", last)
	}
	if n := f.CallCount(OpCreateFleet); n != 8 {
		t.Errorf("CreateFleet calls = %d, want 8", n)
	}
	if n := len(f.CreateFleetInputs()); n != 8 {
		t.Errorf("CreateFleetInputs = %d, want 8", n)
	}
}

func TestHookAddsLatencyWithoutSleeping(t *testing.T) {
	f, _ := newPools(t)
	release := make(chan struct{})
	entered := make(chan string, 1)
	f.SetHook(func(ctx context.Context, op string) error {
		entered <- op
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := f.CreateFleet(context.Background(), fleetInput(Spot, "lowest-price", nil, "a.large"))
		done <- err
	}()
	if op := <-entered; op != OpCreateFleet {
		t.Fatalf("hook saw %s", op)
	}
	select {
	case <-done:
		t.Fatal("call finished while the hook held it")
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A cancelled context ends a held call.
	f.SetHook(func(ctx context.Context, op string) error {
		entered <- op
		<-ctx.Done()
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-entered; cancel() }()
	if _, err := f.DescribeSubnets(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}
}

func TestClientTokenIsIdempotent(t *testing.T) {
	f, _ := newPools(t)
	in := fleetInput(Spot, "lowest-price", nil, all...)
	in.ClientToken = ptr("tok-1")
	a, _ := f.CreateFleet(context.Background(), in)
	b, _ := f.CreateFleet(context.Background(), in)
	if a.Instances[0].InstanceIds[0] != b.Instances[0].InstanceIds[0] || len(f.LiveInstances()) != 1 {
		t.Errorf("a retried request launched again: %v vs %v, %d live", a.Instances, b.Instances, len(f.LiveInstances()))
	}
}

func TestInstanceLifecycleAndDescribe(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	f := New(Options{Clock: clk, StartupDelay: 10 * time.Second})
	f.AddInstanceType(info("a.large", 2), 0.1, "us-east-1a")
	f.SetSpotPrice("a.large", "us-east-1a", 0.01)
	f.SetCapacity(Spot, "a.large", "us-east-1a", 3)
	f.AddSubnet("subnet-a", "us-east-1a", 10, nil)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 3; i++ {
		in := fleetInput(Spot, "lowest-price", nil, "a.large")
		in.TagSpecifications[0].Tags = append(in.TagSpecifications[0].Tags, types.Tag{Key: ptr("n"), Value: ptr(fmt.Sprint(i))})
		out, err := f.CreateFleet(ctx, in)
		if err != nil || len(out.Instances) != 1 {
			t.Fatal(err, out)
		}
		ids = append(ids, out.Instances[0].InstanceIds[0])
	}
	if f.Capacity(Spot, "a.large", "us-east-1a") != 0 {
		t.Error("capacity not consumed")
	}
	subnets, _ := f.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-a"}})
	if *subnets.Subnets[0].AvailableIpAddressCount != 7 {
		t.Errorf("free addresses = %d, want 7", *subnets.Subnets[0].AvailableIpAddressCount)
	}
	describe := func(filters ...types.Filter) []string {
		t.Helper()
		var got []string
		p := ec2.NewDescribeInstancesPaginator(f, &ec2.DescribeInstancesInput{Filters: filters, MaxResults: ptr(int32(5))})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Reservations {
				for _, i := range r.Instances {
					got = append(got, *i.InstanceId)
				}
			}
		}
		return got
	}
	flt := func(name string, values ...string) types.Filter { return types.Filter{Name: ptr(name), Values: values} }
	if got := describe(flt("instance-state-name", "pending")); len(got) != 3 {
		t.Errorf("pending = %v, want 3 before StartupDelay", got)
	}
	clk.Step(10 * time.Second)
	if got := describe(flt("instance-state-name", "running")); len(got) != 3 {
		t.Errorf("running = %v, want 3 after StartupDelay", got)
	}
	if got := describe(flt("tag:n", "1", "2"), flt("tag:team", "x")); fmt.Sprint(got) != fmt.Sprint(ids[1:]) {
		t.Errorf("tag filter = %v, want %v", got, ids[1:])
	}
	if got := describe(flt("tag-key", "n"), flt("instance-id", ids[0])); fmt.Sprint(got) != fmt.Sprint(ids[:1]) {
		t.Errorf("tag-key + instance-id = %v", got)
	}
	if got := describe(flt("tag:team", "*")); len(got) != 3 {
		t.Errorf("wildcard = %v", got)
	}
	if _, err := f.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{flt("colour", "red")}}); apiCode(err) != "InvalidParameterValue" {
		t.Errorf("unknown filter: %v", err)
	}
	if _, err := f.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0000000000000dead"}}); apiCode(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("unknown id: %v", err)
	}

	out, err := f.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[:1]})
	if err != nil || out.TerminatingInstances[0].PreviousState.Name != types.InstanceStateNameRunning || out.TerminatingInstances[0].CurrentState.Name != types.InstanceStateNameTerminated {
		t.Fatalf("terminate: %+v %v", out, err)
	}
	again, err := f.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[:1]})
	if err != nil || again.TerminatingInstances[0].PreviousState.Name != types.InstanceStateNameTerminated {
		t.Errorf("terminating twice: %+v %v", again, err)
	}
	if f.Capacity(Spot, "a.large", "us-east-1a") != 1 {
		t.Error("capacity not returned on termination")
	}
	if got := describe(flt("instance-state-name", "terminated")); fmt.Sprint(got) != fmt.Sprint(ids[:1]) {
		t.Errorf("terminated instances should stay visible: %v", got)
	}
	if _, err := f.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{ids[1], "i-0000000000000dead"}}); apiCode(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("unknown id in terminate: %v", err)
	}
	if len(f.LiveInstances()) != 2 {
		t.Error("a failed terminate terminated something")
	}
}

func TestSpotPriceHistoryAndCatalogAPIs(t *testing.T) {
	f, clk := newPools(t)
	ctx := context.Background()
	clk.Step(time.Hour)
	f.SetSpotPrice("a.large", "us-east-1a", 0.015)
	cur, err := f.DescribeSpotPriceHistory(ctx, &ec2.DescribeSpotPriceHistoryInput{InstanceTypes: []types.InstanceType{"a.large"}})
	if err != nil || len(cur.SpotPriceHistory) != 1 || *cur.SpotPriceHistory[0].SpotPrice != "0.015000" {
		t.Fatalf("current price: %+v %v", cur, err)
	}
	hist, _ := f.DescribeSpotPriceHistory(ctx, &ec2.DescribeSpotPriceHistoryInput{InstanceTypes: []types.InstanceType{"a.large"}, StartTime: ptr(t0.Add(time.Minute))})
	if len(hist.SpotPriceHistory) != 2 || *hist.SpotPriceHistory[0].SpotPrice != "0.015000" || *hist.SpotPriceHistory[1].SpotPrice != "0.010000" {
		t.Errorf("history = %+v, want newest first, back to the price in effect at StartTime", hist.SpotPriceHistory)
	}
	// Launches rank by the current price: a.large's rise past b.large's
	// 0.02 sends lowest-price to b.large.
	f.SetSpotPrice("a.large", "us-east-1a", 0.025)
	out, _ := f.CreateFleet(ctx, fleetInput(Spot, "lowest-price", nil, "a.large", "b.large"))
	if out.Instances[0].InstanceType != "b.large" {
		t.Errorf("launched %s, want b.large after the price change", out.Instances[0].InstanceType)
	}

	var names []string
	p := ec2.NewDescribeInstanceTypesPaginator(f, &ec2.DescribeInstanceTypesInput{MaxResults: ptr(int32(5))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.InstanceTypes {
			names = append(names, string(it.InstanceType))
		}
	}
	if fmt.Sprint(names) != fmt.Sprint(all) {
		t.Errorf("instance types = %v", names)
	}
	offs, err := f.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{LocationType: types.LocationTypeAvailabilityZone,
		Filters: []types.Filter{{Name: ptr("location"), Values: []string{"us-east-1b"}}}})
	if err != nil || len(offs.InstanceTypeOfferings) != 4 {
		t.Errorf("offerings in us-east-1b: %+v %v", offs, err)
	}
	if _, err := f.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"zz.large"}}); apiCode(err) != "InvalidInstanceType" {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := f.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{NextToken: ptr("garbage")}); apiCode(err) != "InvalidParameterValue" {
		t.Errorf("bad token: %v", err)
	}
}

func TestConcurrentLaunchesNeverOversell(t *testing.T) {
	f, _ := newPools(t)
	f.SetCapacity(Spot, "b.large", "us-east-1a", 20)
	var wg sync.WaitGroup
	var mu sync.Mutex
	launched, failed := 0, 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := f.CreateFleet(context.Background(), fleetInput(Spot, "capacity-optimized", nil, "b.large"))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			launched += len(out.Instances)
			failed += len(out.Errors)
		}()
	}
	wg.Wait()
	if launched != 20 || failed != 30 || len(f.LiveInstances()) != 20 {
		t.Errorf("launched %d, failed %d, live %d; want 20, 30, 20", launched, failed, len(f.LiveInstances()))
	}
}

func TestWildcard(t *testing.T) {
	for _, tt := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"a*", "abc", true}, {"a?c", "abc", true}, {"a?c", "ac", false}, {"*c", "abc", true}, {"x", "y", false}, {"", "", true},
	} {
		if got := wildcard(tt.p, tt.s); got != tt.want {
			t.Errorf("wildcard(%q, %q) = %v", tt.p, tt.s, got)
		}
	}
}
