package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/cloudprovider"
	"github.com/fleetpack/fleetpack/cloudprovider/aws/fake"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

func TestCreatePicksSpotWithRightRequest(t *testing.T) {
	e := newEnv(t)
	node, err := e.p.Create(context.Background(), e.claim())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	ins := e.ec2.CreateFleetInputs()
	if len(ins) != 1 {
		t.Fatalf("CreateFleet calls = %d, want 1", len(ins))
	}
	in := ins[0]
	if in.Type != types.FleetTypeInstant || *in.TargetCapacitySpecification.TotalTargetCapacity != 1 ||
		in.TargetCapacitySpecification.DefaultTargetCapacityType != types.DefaultTargetCapacityTypeSpot {
		t.Errorf("request type/target = %s/%d/%s, want instant/1/spot", in.Type, *in.TargetCapacitySpecification.TotalTargetCapacity, in.TargetCapacitySpecification.DefaultTargetCapacityType)
	}
	if in.SpotOptions == nil || in.SpotOptions.AllocationStrategy != types.SpotAllocationStrategyPriceCapacityOptimized {
		t.Errorf("SpotOptions = %+v, want price-capacity-optimized", in.SpotOptions)
	}
	if in.ClientToken == nil || *in.ClientToken == "" {
		t.Error("ClientToken not set")
	}
	// One launch template config per architecture, each override with its
	// zone and that zone's subnet.
	if len(in.LaunchTemplateConfigs) != 2 {
		t.Fatalf("launch template configs = %d, want 2 (arm64, amd64)", len(in.LaunchTemplateConfigs))
	}
	if lt := in.LaunchTemplateConfigs[0].LaunchTemplateSpecification; deref(lt.LaunchTemplateId) != "lt-0arm64" || deref(lt.Version) != "$Latest" {
		t.Errorf("arm64 template = %+v", lt)
	}
	if lt := in.LaunchTemplateConfigs[1].LaunchTemplateSpecification; deref(lt.LaunchTemplateName) != "fleetpack-amd64" {
		t.Errorf("amd64 template = %+v", lt)
	}
	want := map[poolKey]string{}
	for _, it := range e.catalog {
		for _, z := range zones {
			want[poolKey{it.Name, z}] = "subnet-" + z
		}
	}
	got := overrideKeys(in.LaunchTemplateConfigs)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("overrides = %v, want %v", got, want)
	}
	for _, o := range overrides(in.LaunchTemplateConfigs) {
		if o.Priority != nil {
			t.Errorf("override %s has Priority under price-capacity-optimized", o.InstanceType)
		}
	}
	tags := map[string]string{}
	for _, tg := range in.TagSpecifications[0].Tags {
		tags[*tg.Key] = *tg.Value
	}
	for k, v := range map[string]string{TagManagedBy: ManagedBy, "kubernetes.io/cluster/test": "owned", TagNodePool: "default", TagClaim: "hostname-placeholder-0001"} {
		if tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, tags[k], v)
		}
	}

	// The node.
	live := e.ec2.LiveInstances()
	if len(live) != 1 {
		t.Fatalf("live instances = %d, want 1", len(live))
	}
	inst := live[0]
	zone := *inst.Placement.AvailabilityZone
	if node.Name != *inst.PrivateDnsName {
		t.Errorf("node name = %q, want private DNS name %q", node.Name, *inst.PrivateDnsName)
	}
	if want := "aws:///" + zone + "/" + *inst.InstanceId; node.Spec.ProviderID != want {
		t.Errorf("providerID = %q, want %q", node.Spec.ProviderID, want)
	}
	wantLabels := map[string]string{
		offerings.LabelCapacityType: "spot",
		offerings.LabelInstanceType: string(inst.InstanceType),
		offerings.LabelZone:         zone,
		offerings.LabelNodePool:     "default",
		offerings.LabelOS:           "linux",
		offerings.LabelRegion:       "us-east-1",
		"intent":                    "apps",
	}
	for k, v := range wantLabels {
		if node.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, node.Labels[k], v)
		}
	}
	var it *offerings.InstanceType
	for _, c := range e.catalog {
		if c.Name == string(inst.InstanceType) {
			it = c
		}
	}
	if node.Labels[offerings.LabelArch] != it.Labels[offerings.LabelArch] || node.Labels[offerings.LabelInstanceFamily] != it.Labels[offerings.LabelInstanceFamily] {
		t.Errorf("labels %v lack the instance type's labels %v", node.Labels, it.Labels)
	}
	if len(node.Spec.Taints) != 2 || node.Spec.Taints[0].Key != "dedicated" || node.Spec.Taints[1].Key != "node.cilium.io/agent-not-ready" {
		t.Errorf("taints = %v, want template taints then startup taints", node.Spec.Taints)
	}
	cpu := node.Status.Capacity[corev1.ResourceCPU]
	alloc := node.Status.Allocatable[corev1.ResourceCPU]
	if cpu.Cmp(it.Capacity[corev1.ResourceCPU]) != 0 || alloc.MilliValue() != cpu.MilliValue()-80 {
		t.Errorf("cpu capacity/allocatable = %s/%s, want %s and 80m less", cpu.String(), alloc.String(), it.Capacity.Cpu().String())
	}
	if inst.InstanceLifecycle != types.InstanceLifecycleTypeSpot {
		t.Errorf("instance lifecycle = %q, want spot", inst.InstanceLifecycle)
	}
}

func TestSpotAllocationStrategy(t *testing.T) {
	tests := []struct {
		name     string
		option   types.SpotAllocationStrategy
		label    string
		want     types.SpotAllocationStrategy
		priority bool
		wantErr  string
	}{
		{name: "default", want: types.SpotAllocationStrategyPriceCapacityOptimized},
		{name: "provider option", option: types.SpotAllocationStrategyCapacityOptimized, want: types.SpotAllocationStrategyCapacityOptimized},
		{name: "nodepool label wins", option: types.SpotAllocationStrategyCapacityOptimized, label: "lowest-price", want: types.SpotAllocationStrategyLowestPrice},
		{name: "prioritized sets priorities", label: "capacity-optimized-prioritized", want: types.SpotAllocationStrategyCapacityOptimizedPrioritized, priority: true},
		{name: "bad label", label: "diversified", wantErr: `labels[fleetpack.dev/spot-allocation-strategy]: "diversified" is not one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.SpotAllocationStrategy = tt.option })
			var opts []claimOpt
			if tt.label != "" {
				opts = append(opts, withTemplateLabel(LabelSpotAllocationStrategy, tt.label))
			}
			_, err := e.p.Create(context.Background(), e.claim(opts...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if n := e.ec2.CallCount(fake.OpCreateFleet); n != 0 {
					t.Errorf("CreateFleet called %d times for a bad label", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			in := e.ec2.CreateFleetInputs()[0]
			if in.SpotOptions.AllocationStrategy != tt.want {
				t.Errorf("strategy = %s, want %s", in.SpotOptions.AllocationStrategy, tt.want)
			}
			for _, o := range overrides(in.LaunchTemplateConfigs) {
				if (o.Priority != nil) != tt.priority {
					t.Fatalf("override %s priority = %v, want set=%v", o.InstanceType, o.Priority, tt.priority)
				}
				if tt.priority {
					// Priorities follow the claim's cheapest-first order.
					rank := slices.IndexFunc(e.catalog, func(it *offerings.InstanceType) bool { return it.Name == string(o.InstanceType) })
					if *o.Priority != float64(rank) {
						t.Errorf("override %s priority = %v, want %d", o.InstanceType, *o.Priority, rank)
					}
				}
			}
		})
	}
	if _, err := New(fake.New(fake.Options{}), Options{ClusterName: "x", LaunchTemplates: map[string]LaunchTemplate{"amd64": {Name: "a"}}, SubnetIDs: []string{"s"},
		Catalog: StaticCatalog(nil), Unavailable: offerings.NewUnavailableOfferings(offerings.UnavailableOfferingsOptions{}), SpotAllocationStrategy: "cheapest"}); err == nil ||
		!strings.Contains(err.Error(), "SpotAllocationStrategy") {
		t.Errorf("New with a bad strategy: err = %v, want one naming SpotAllocationStrategy", err)
	}
}

func TestSpotPricierThanOnDemandIsDropped(t *testing.T) {
	e := newEnv(t)
	// m5.xlarge Spot in us-east-1a costs more than the cheapest on-demand
	// offering (c6g.large at 0.068).
	for i, o := range e.catalog[3].Offerings {
		if o.CapacityType == "spot" && o.Zone == "us-east-1a" {
			e.catalog[3].Offerings[i].Price = 0.07
		}
	}
	if _, err := e.p.Create(context.Background(), e.claim()); err != nil {
		t.Fatal(err)
	}
	got := overrideKeys(e.ec2.CreateFleetInputs()[0].LaunchTemplateConfigs)
	if _, ok := got[poolKey{"m5.xlarge", "us-east-1a"}]; ok {
		t.Error("spot m5.xlarge/us-east-1a is pricier than on-demand c6g.large but was requested")
	}
	if len(got) != 11 {
		t.Errorf("overrides = %d, want 11", len(got))
	}

	// A Spot-only claim has no on-demand to compare with: it keeps it.
	if _, err := e.p.Create(context.Background(), e.claim(withReq(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "spot"))); err != nil {
		t.Fatal(err)
	}
	got = overrideKeys(e.ec2.CreateFleetInputs()[1].LaunchTemplateConfigs)
	if _, ok := got[poolKey{"m5.xlarge", "us-east-1a"}]; !ok {
		t.Error("spot-only claim lost spot m5.xlarge/us-east-1a")
	}
}

func TestOnDemandOnlyClaim(t *testing.T) {
	e := newEnv(t)
	node, err := e.p.Create(context.Background(), e.claim(withReq(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "on-demand"),
		withReq(offerings.LabelZone, corev1.NodeSelectorOpIn, "us-east-1b")))
	if err != nil {
		t.Fatal(err)
	}
	in := e.ec2.CreateFleetInputs()[0]
	if in.TargetCapacitySpecification.DefaultTargetCapacityType != types.DefaultTargetCapacityTypeOnDemand ||
		in.OnDemandOptions == nil || in.OnDemandOptions.AllocationStrategy != types.FleetOnDemandAllocationStrategyLowestPrice || in.SpotOptions != nil {
		t.Errorf("request = %s %+v %+v, want on-demand lowest-price", in.TargetCapacitySpecification.DefaultTargetCapacityType, in.OnDemandOptions, in.SpotOptions)
	}
	for k := range overrideKeys(in.LaunchTemplateConfigs) {
		if k.zone != "us-east-1b" {
			t.Errorf("override in %s, claim allows only us-east-1b", k.zone)
		}
	}
	// lowest-price on-demand picks the cheapest type.
	if node.Labels[offerings.LabelInstanceType] != "c6g.large" || node.Labels[offerings.LabelCapacityType] != "on-demand" {
		t.Errorf("node = %s/%s, want c6g.large/on-demand", node.Labels[offerings.LabelInstanceType], node.Labels[offerings.LabelCapacityType])
	}
}

func spotPools(catalog []*offerings.InstanceType) []cloudprovider.OfferingKey {
	var out []cloudprovider.OfferingKey
	for _, it := range catalog {
		for _, o := range it.Offerings {
			if o.CapacityType == "spot" {
				out = append(out, cloudprovider.OfferingKey{CapacityType: "spot", InstanceType: it.Name, Zone: o.Zone})
			}
		}
	}
	return out
}

func TestICEOnAllSpotFallsBackToOnDemandInTheSameCall(t *testing.T) {
	e := newEnv(t)
	e.ec2.DrainCapacityType(fake.Spot)
	start := e.clock.Now()
	node, err := e.p.Create(context.Background(), e.claim())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if node.Labels[offerings.LabelCapacityType] != "on-demand" {
		t.Errorf("capacity type = %s, want on-demand", node.Labels[offerings.LabelCapacityType])
	}
	ins := e.ec2.CreateFleetInputs()
	if len(ins) != 2 || ins[0].TargetCapacitySpecification.DefaultTargetCapacityType != "spot" || ins[1].TargetCapacitySpecification.DefaultTargetCapacityType != "on-demand" {
		t.Fatalf("CreateFleet calls = %d, want spot then on-demand", len(ins))
	}
	if *ins[0].ClientToken == *ins[1].ClientToken {
		t.Error("the on-demand attempt reused the spot attempt's client token")
	}
	for _, k := range spotPools(e.catalog) {
		if !e.unavail.IsUnavailable(k.CapacityType, k.InstanceType, k.Zone) {
			t.Errorf("%s not marked unavailable", k)
		}
	}
	if !e.clock.Now().Equal(start) {
		t.Error("fallback waited on the clock")
	}
	// The scheduler's view now shows no Spot.
	its, err := e.p.InstanceTypes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range its {
		for _, o := range it.Offerings {
			if o.Available != (o.CapacityType == "on-demand") {
				t.Errorf("InstanceTypes: %s %s/%s available=%v", it.Name, o.CapacityType, o.Zone, o.Available)
			}
		}
	}
	for _, it := range e.catalog {
		for _, o := range it.Offerings {
			if !o.Available {
				t.Fatalf("InstanceTypes modified the catalog: %s %+v", it.Name, o)
			}
		}
	}
}

func TestSpotOnlyClaimDoesNotFallBack(t *testing.T) {
	e := newEnv(t)
	e.ec2.DrainCapacityType(fake.Spot)
	_, err := e.p.Create(context.Background(), e.claim(withReq(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "spot")))
	var ice *cloudprovider.InsufficientCapacityError
	if !errors.As(err, &ice) {
		t.Fatalf("err = %v, want InsufficientCapacityError", err)
	}
	want := spotPools(e.catalog)
	if len(ice.Tried) != len(want) {
		t.Errorf("tried %d pools, want %d: %v", len(ice.Tried), len(want), ice.Tried)
	}
	for _, k := range want {
		if !slices.Contains(ice.Tried, k) {
			t.Errorf("tried lacks %s", k)
		}
	}
	if !strings.Contains(ice.Reason, "UnfulfillableCapacity") {
		t.Errorf("reason = %q, want EC2's code", ice.Reason)
	}
	for _, in := range e.ec2.CreateFleetInputs() {
		if in.TargetCapacitySpecification.DefaultTargetCapacityType != "spot" {
			t.Error("a spot-only claim asked for on-demand")
		}
	}
	if n := e.ec2.CallCount(fake.OpCreateFleet); n != 1 {
		t.Errorf("CreateFleet calls = %d, want 1 (nothing left to try after the marks)", n)
	}
	if len(e.ec2.LiveInstances()) != 0 {
		t.Error("instances launched")
	}
	// The next Create does not even call EC2: every pool is marked.
	_, err = e.p.Create(context.Background(), e.claim(withReq(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "spot")))
	if !cloudprovider.IsInsufficientCapacity(err) {
		t.Errorf("second Create err = %v, want InsufficientCapacityError", err)
	}
	if n := e.ec2.CallCount(fake.OpCreateFleet); n != 1 {
		t.Errorf("CreateFleet calls = %d after the second Create, want still 1", n)
	}
}

func TestMarksExpireAfterThreeMinutes(t *testing.T) {
	e := newEnv(t)
	e.ec2.DrainPool(fake.Spot, "c6g.large", "us-east-1a")
	claim := e.claim(withTypes("c6g.large"), withReq(offerings.LabelZone, corev1.NodeSelectorOpIn, "us-east-1a"))
	node, err := e.p.Create(context.Background(), claim)
	if err != nil {
		t.Fatal(err)
	}
	if node.Labels[offerings.LabelCapacityType] != "on-demand" {
		t.Fatalf("first launch = %s, want on-demand fallback", node.Labels[offerings.LabelCapacityType])
	}
	e.ec2.SetCapacity(fake.Spot, "c6g.large", "us-east-1a", 5)

	e.clock.Step(3*time.Minute - time.Second)
	if !e.unavail.IsUnavailable("spot", "c6g.large", "us-east-1a") {
		t.Fatal("mark expired early")
	}
	if node, err = e.p.Create(context.Background(), claim); err != nil || node.Labels[offerings.LabelCapacityType] != "on-demand" {
		t.Fatalf("within 3m: %v %v, want on-demand without trying spot", err, node.Labels)
	}
	if n := e.ec2.CallCount(fake.OpCreateFleet); n != 3 {
		t.Errorf("CreateFleet calls = %d, want 3 (spot, on-demand, on-demand)", n)
	}

	e.clock.Step(time.Second)
	if e.unavail.IsUnavailable("spot", "c6g.large", "us-east-1a") {
		t.Fatal("mark outlived 3 minutes")
	}
	if node, err = e.p.Create(context.Background(), claim); err != nil || node.Labels[offerings.LabelCapacityType] != "spot" {
		t.Fatalf("after 3m: %v %v, want spot again", err, node.Labels)
	}
}

func TestOverridesNeverIncludeUnavailableOfferings(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.unavail.MarkUnavailable(ctx, "test", "spot", "m5.large", "us-east-1a")
	e.unavail.MarkFamilyUnavailable(ctx, "test", "spot", "r5", "")
	e.unavail.MarkCapacityTypeUnavailable(ctx, "test", "spot", "us-east-1c")
	// And one offering the catalog itself says is unavailable.
	for i, o := range e.catalog[0].Offerings {
		if o.CapacityType == "spot" && o.Zone == "us-east-1b" {
			e.catalog[0].Offerings[i].Available = false
		}
	}
	if _, err := e.p.Create(ctx, e.claim()); err != nil {
		t.Fatal(err)
	}
	got := overrideKeys(e.ec2.CreateFleetInputs()[0].LaunchTemplateConfigs)
	want := map[poolKey]string{
		{"c6g.large", "us-east-1a"}: "subnet-us-east-1a",
		{"m5.large", "us-east-1b"}:  "subnet-us-east-1b",
		{"m5.xlarge", "us-east-1a"}: "subnet-us-east-1a",
		{"m5.xlarge", "us-east-1b"}: "subnet-us-east-1b",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("overrides = %v, want %v", got, want)
	}
}

func TestSpotQuotaMarksWholeCapacityType(t *testing.T) {
	e := newEnv(t)
	e.ec2.SetSpotQuota(0)
	node, err := e.p.Create(context.Background(), e.claim())
	if err != nil {
		t.Fatal(err)
	}
	if node.Labels[offerings.LabelCapacityType] != "on-demand" {
		t.Errorf("capacity type = %s, want on-demand", node.Labels[offerings.LabelCapacityType])
	}
	if n := e.ec2.CallCount(fake.OpCreateFleet); n != 2 {
		t.Errorf("CreateFleet calls = %d, want 2: one quota error rules out all spot", n)
	}
	for _, z := range append(zones, "us-east-1f") {
		if !e.unavail.IsUnavailable("spot", "x9.huge", z) {
			t.Errorf("spot in %s not marked after MaxSpotInstanceCountExceeded", z)
		}
	}
	if e.unavail.IsUnavailable("on-demand", "m5.large", "us-east-1a") {
		t.Error("on-demand marked by a spot quota error")
	}
}

func TestVCPUQuotaMarksFamily(t *testing.T) {
	e := newEnv(t)
	e.ec2.SetVCPUQuota(1)
	_, err := e.p.Create(context.Background(), e.claim(withReq(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "on-demand"), withTypes("m5.large", "m5.xlarge")))
	if !cloudprovider.IsInsufficientCapacity(err) {
		t.Fatalf("err = %v, want InsufficientCapacityError", err)
	}
	if !e.unavail.IsUnavailable("on-demand", "m5.24xlarge", "us-east-1f") {
		t.Error("VcpuLimitExceeded did not mark the m5 family")
	}
	if e.unavail.IsUnavailable("on-demand", "c6g.large", "us-east-1a") {
		t.Error("VcpuLimitExceeded marked another family")
	}
}

func TestPartialFailure(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.SpotAllocationStrategy = types.SpotAllocationStrategyLowestPrice })
	// lowest-price tries c6g.large (cheapest) first in each zone.
	for _, z := range zones {
		e.ec2.DrainPool(fake.Spot, "c6g.large", z)
	}
	var out *ec2.CreateFleetOutput
	e.withAPI(&tamper{EC2API: e.ec2, after: func(o *ec2.CreateFleetOutput) { out = o }})
	node, err := e.p.Create(context.Background(), e.claim())
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) != 3 || len(out.Instances) != 1 {
		t.Fatalf("fleet answered %d errors and %d instances, want 3 and 1 in one response", len(out.Errors), len(out.Instances))
	}
	if node.Labels[offerings.LabelInstanceType] != "m5.large" || node.Labels[offerings.LabelCapacityType] != "spot" {
		t.Errorf("node = %s/%s, want the next cheapest spot pool m5.large", node.Labels[offerings.LabelInstanceType], node.Labels[offerings.LabelCapacityType])
	}
	for _, z := range zones {
		if !e.unavail.IsUnavailable("spot", "c6g.large", z) {
			t.Errorf("spot c6g.large/%s not marked", z)
		}
		if e.unavail.IsUnavailable("spot", "m5.large", z) {
			t.Errorf("spot m5.large/%s marked though it launched or was not tried", z)
		}
	}
	if n := e.ec2.CallCount(fake.OpCreateFleet); n != 1 {
		t.Errorf("CreateFleet calls = %d, want 1", n)
	}
}

func TestFullSubnetIsSkipped(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.SpotAllocationStrategy = types.SpotAllocationStrategyLowestPrice })
	claim := e.claim(withTypes("c6g.large"), withReq(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "spot"))
	// Warm the subnet cache, then run us-east-1a's only subnet dry behind
	// the cache's back, as another tenant would.
	if _, err := e.p.Create(context.Background(), claim); err != nil {
		t.Fatal(err)
	}
	e.ec2.SetSubnetFree("subnet-us-east-1a", 0)
	e.ec2.SetSpotPrice("c6g.large", "us-east-1a", 0.001) // make 1a the first choice
	node, err := e.p.Create(context.Background(), claim)
	if err != nil {
		t.Fatal(err)
	}
	if node.Labels[offerings.LabelZone] == "us-east-1a" {
		t.Fatal("launched into the full subnet")
	}
	if e.unavail.IsUnavailable("spot", "c6g.large", "us-east-1a") {
		t.Error("a full subnet marked the offering; only the subnet is at fault")
	}
	if _, err := e.p.Create(context.Background(), claim); err != nil {
		t.Fatal(err)
	}
	ins := e.ec2.CreateFleetInputs()
	if _, ok := overrideKeys(ins[len(ins)-1].LaunchTemplateConfigs)[poolKey{"c6g.large", "us-east-1a"}]; ok {
		t.Error("the full subnet's zone is still requested")
	}
	// After SubnetFullTTL and a refresh, the subnet is used again.
	e.ec2.SetSubnetFree("subnet-us-east-1a", 100)
	e.clock.Step(DefaultSubnetFullTTL)
	if node, err = e.p.Create(context.Background(), claim); err != nil || node.Labels[offerings.LabelZone] != "us-east-1a" {
		t.Errorf("after the TTL: %v zone=%s, want us-east-1a", err, node.Labels[offerings.LabelZone])
	}
}

func TestSubnetWithMostFreeAddressesPerZone(t *testing.T) {
	e := newEnv(t)
	e.ec2.AddSubnet("subnet-big-1a", "us-east-1a", 9000, subnetTags)
	e.ec2.AddSubnet("subnet-other-1a", "us-east-1a", 99999, map[string]string{"other": "x"})
	if _, err := e.p.Create(context.Background(), e.claim()); err != nil {
		t.Fatal(err)
	}
	for k, subnet := range overrideKeys(e.ec2.CreateFleetInputs()[0].LaunchTemplateConfigs) {
		want := "subnet-" + k.zone
		if k.zone == "us-east-1a" {
			want = "subnet-big-1a"
		}
		if subnet != want {
			t.Errorf("%v uses %s, want %s", k, subnet, want)
		}
	}
	if n := e.ec2.CallCount(fake.OpDescribeSubnets); n != 1 {
		t.Errorf("DescribeSubnets calls = %d, want 1", n)
	}
	if _, err := e.p.Create(context.Background(), e.claim()); err != nil {
		t.Fatal(err)
	}
	if n := e.ec2.CallCount(fake.OpDescribeSubnets); n != 1 {
		t.Errorf("DescribeSubnets calls = %d after a second Create within the TTL, want 1 (cached)", n)
	}
}

func TestThrottlingIsReturnedForTheSDKRetryer(t *testing.T) {
	e := newEnv(t)
	e.ec2.ThrottleNext(fake.OpCreateFleet, 1)
	_, err := e.p.Create(context.Background(), e.claim())
	if err == nil || cloudprovider.IsInsufficientCapacity(err) {
		t.Fatalf("err = %v, want the throttling error", err)
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "RequestLimitExceeded" {
		t.Fatalf("err = %v, want a wrapped RequestLimitExceeded API error", err)
	}
	// The SDK's standard retryer recognises the fake's error as a throttle,
	// as it does EC2's.
	if !retry.NewStandard().IsErrorRetryable(err) {
		t.Error("the SDK retryer would not retry this error")
	}
	if retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) != awssdk.TrueTernary {
		t.Error("the SDK retryer would not count this error as a throttle")
	}
	if len(e.ec2.LiveInstances()) != 0 {
		t.Error("instances launched")
	}
	its, _ := e.p.InstanceTypes(context.Background())
	for _, it := range its {
		for _, o := range it.Offerings {
			if !o.Available {
				t.Fatalf("throttling marked %s %+v", it.Name, o)
			}
		}
	}
}

func TestNonCapacityFleetErrorsAreNotICE(t *testing.T) {
	e := newEnv(t)
	for _, it := range e.catalog {
		for _, z := range zones {
			e.ec2.SetPoolError(fake.Spot, it.Name, z, "InvalidParameterValue", "bad AMI")
		}
	}
	_, err := e.p.Create(context.Background(), e.claim())
	if err == nil || cloudprovider.IsInsufficientCapacity(err) || !strings.Contains(err.Error(), "InvalidParameterValue: bad AMI") {
		t.Fatalf("err = %v, want a plain error carrying EC2's code and message", err)
	}
	if n := e.ec2.CallCount(fake.OpCreateFleet); n != 1 {
		t.Errorf("CreateFleet calls = %d, want 1 (no fallback on a request error)", n)
	}
	its, _ := e.p.InstanceTypes(context.Background())
	for _, it := range its {
		for _, o := range it.Offerings {
			if !o.Available {
				t.Fatalf("a non-capacity error marked %s %+v", it.Name, o)
			}
		}
	}
}

func TestClassifyFleetError(t *testing.T) {
	tests := map[string]FailureScope{
		"InsufficientInstanceCapacity":                      ScopeOffering,
		"UnfulfillableCapacity":                             ScopeOffering,
		"Unsupported":                                       ScopeOffering,
		"SpotMaxPriceTooLow":                                ScopeOffering,
		"ReservationCapacityExceeded":                       ScopeOffering,
		"InsufficientCapacity":                              ScopeOffering,
		"InstanceLimitExceeded":                             ScopeInstanceType,
		"VcpuLimitExceeded":                                 ScopeFamily,
		"MaxSpotInstanceCountExceeded":                      ScopeCapacityType,
		"MaxFleetCountExceeded":                             ScopeCapacityType,
		"AuthFailure.ServiceLinkedRoleCreationNotPermitted": ScopeCapacityType,
		"InsufficientFreeAddressesInSubnet":                 ScopeSubnet,
		"InvalidParameterValue":                             ScopeNone,
		"RequestLimitExceeded":                              ScopeNone,
		"":                                                  ScopeNone,
	}
	for code, want := range tests {
		if got := ClassifyFleetError(code); got != want {
			t.Errorf("ClassifyFleetError(%q) = %s, want %s", code, got, want)
		}
	}
}

// Instances never leak: whatever fails after CreateFleet returned an
// instance, it is returned or terminated.
func TestInstancesNeverLeak(t *testing.T) {
	t.Run("unknown instance type is terminated", func(t *testing.T) {
		e := newEnv(t)
		e.withAPI(&tamper{EC2API: e.ec2, after: func(o *ec2.CreateFleetOutput) {
			for i := range o.Instances {
				o.Instances[i].InstanceType = "z9.mystery"
			}
		}})
		_, err := e.p.Create(context.Background(), e.claim())
		if err == nil || !strings.Contains(err.Error(), "terminated it") {
			t.Fatalf("err = %v, want an error saying the instance was terminated", err)
		}
		if live := e.ec2.LiveInstances(); len(live) != 0 {
			t.Errorf("leaked %d instances", len(live))
		}
		if len(e.ec2.Instances()) != 1 {
			t.Error("expected one (terminated) instance")
		}
	})
	t.Run("extra instances are terminated", func(t *testing.T) {
		e := newEnv(t)
		e.withAPI(&tamper{EC2API: e.ec2, before: func(in *ec2.CreateFleetInput) {
			in.TargetCapacitySpecification.TotalTargetCapacity = int32Ptr(3)
		}})
		node, err := e.p.Create(context.Background(), e.claim())
		if err != nil {
			t.Fatal(err)
		}
		live := e.ec2.LiveInstances()
		if len(live) != 1 || !strings.HasSuffix(node.Spec.ProviderID, *live[0].InstanceId) {
			t.Errorf("live = %d, want only the returned node's instance", len(live))
		}
	})
	t.Run("describe failing after launch still returns the node", func(t *testing.T) {
		e := newEnv(t)
		e.ec2.FailNext(fake.OpDescribeInstances, fake.APIError("InternalError", "boom"))
		node, err := e.p.Create(context.Background(), e.claim())
		if err != nil {
			t.Fatal(err)
		}
		live := e.ec2.LiveInstances()
		if len(live) != 1 || node.Name != *live[0].InstanceId {
			t.Errorf("node name = %q, want the instance id of the one live instance", node.Name)
		}
	})
	t.Run("caller cancelling after launch still gets the node", func(t *testing.T) {
		e := newEnv(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		e.ec2.SetHook(func(_ context.Context, op string) error {
			if op == fake.OpDescribeInstances {
				cancel()
			}
			return nil
		})
		node, err := e.p.Create(ctx, e.claim())
		if err != nil || node == nil {
			t.Fatalf("Create = %v, %v; want the launched node", node, err)
		}
		if len(e.ec2.LiveInstances()) != 1 {
			t.Error("want the one launched instance live")
		}
		e.ec2.SetHook(nil)
		nodes, err := e.p.List(context.Background())
		if err != nil || len(nodes) != 1 || nodes[0].Spec.ProviderID != node.Spec.ProviderID {
			t.Errorf("List = %v, %v; want the launched node", nodes, err)
		}
	})
}

func TestDeleteGetList(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, err := e.p.Create(ctx, e.claim())
	if err != nil {
		t.Fatal(err)
	}
	c := e.claim(withReq(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "on-demand"))
	c.Template.NodePool = "batch"
	b, err := e.p.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	// Another cluster's instance in the same account is not ours.
	other, err := New(e.ec2, Options{ClusterName: "other", LaunchTemplates: e.p.opts.LaunchTemplates, SubnetSelector: subnetTags,
		Catalog: StaticCatalog(e.catalog), Unavailable: e.unavail, Clock: e.clock, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Create(ctx, e.claim()); err != nil {
		t.Fatal(err)
	}

	nodes, err := e.p.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*corev1.Node{}
	for _, n := range nodes {
		got[n.Spec.ProviderID] = n
	}
	if len(nodes) != 2 || got[a.Spec.ProviderID] == nil || got[b.Spec.ProviderID] == nil {
		t.Fatalf("List = %d nodes %v, want exactly the two of this cluster", len(nodes), got)
	}
	if n := got[b.Spec.ProviderID]; n.Labels[offerings.LabelNodePool] != "batch" || n.Labels[offerings.LabelCapacityType] != "on-demand" ||
		n.Labels[offerings.LabelInstanceType] != b.Labels[offerings.LabelInstanceType] || n.Name != b.Name || n.Status.Capacity.Cpu().Cmp(*b.Status.Capacity.Cpu()) != 0 {
		t.Errorf("List node %v differs from the created one %v", n.Labels, b.Labels)
	}

	g, err := e.p.Get(ctx, a.Spec.ProviderID)
	if err != nil || g.Name != a.Name || g.Labels[offerings.LabelZone] != a.Labels[offerings.LabelZone] || g.Labels[offerings.LabelCapacityType] != "spot" {
		t.Fatalf("Get = %v, %v; want node %s", g, err, a.Name)
	}
	if err := e.p.Delete(ctx, a.Spec.ProviderID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Get(ctx, a.Spec.ProviderID); !cloudprovider.IsNotFound(err) {
		t.Errorf("Get after Delete: %v, want NotFound", err)
	}
	if err := e.p.Delete(ctx, a.Spec.ProviderID); !cloudprovider.IsNotFound(err) {
		t.Errorf("second Delete: %v, want NotFound", err)
	}
	if err := e.p.Delete(ctx, "aws:///us-east-1a/i-00000000000000fff"); !cloudprovider.IsNotFound(err) {
		t.Errorf("Delete of an unknown instance: %v, want NotFound", err)
	}
	if _, err := e.p.Get(ctx, "aws:///us-east-1a/i-00000000000000fff"); !cloudprovider.IsNotFound(err) {
		t.Errorf("Get of an unknown instance: %v, want NotFound", err)
	}
	nodes, _ = e.p.List(ctx)
	if len(nodes) != 1 || nodes[0].Spec.ProviderID != b.Spec.ProviderID {
		t.Errorf("List after Delete = %d nodes, want only %s", len(nodes), b.Spec.ProviderID)
	}
	if err := e.p.Delete(ctx, "gce://x/y"); err == nil || !strings.Contains(err.Error(), "aws:///") {
		t.Errorf("Delete of a foreign provider id: %v, want a parse error", err)
	}
	// A throttled Delete is an error, not NotFound.
	e.ec2.ThrottleNext(fake.OpTerminateInstances, 1)
	if err := e.p.Delete(ctx, b.Spec.ProviderID); err == nil || cloudprovider.IsNotFound(err) {
		t.Errorf("throttled Delete: %v, want a plain error", err)
	}
}

func TestListPaginates(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := 0; i < 1005; i++ {
		if _, err := e.p.Create(ctx, e.claim()); err != nil {
			t.Fatal(err)
		}
	}
	nodes, err := e.p.List(ctx)
	if err != nil || len(nodes) != 1005 {
		t.Fatalf("List = %d, %v; want 1005", len(nodes), err)
	}
	if n := e.ec2.CallCount(fake.OpDescribeInstances); n < 1005+2 {
		t.Errorf("DescribeInstances calls = %d, want pages", n)
	}
}

func TestCreateRejectsBadClaims(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		mutate func(c *scheduling.NodeClaim)
		want   string
	}{
		{"no template", func(c *scheduling.NodeClaim) { c.Template = nil }, "Template: must not be nil"},
		{"no types", func(c *scheduling.NodeClaim) { c.InstanceTypes = nil }, "InstanceTypes: must not be empty"},
		{"no capacity type", func(c *scheduling.NodeClaim) {
			withReq(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "reserved")(c)
		}, "allows neither spot nor on-demand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.claim()
			tt.mutate(c)
			_, err := e.p.Create(context.Background(), c)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), c.Hostname) {
				t.Errorf("err = %v, want %q naming the claim", err, tt.want)
			}
		})
	}
	if _, err := e.p.Create(context.Background(), nil); err == nil {
		t.Error("nil claim accepted")
	}
}
