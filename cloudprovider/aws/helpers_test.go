package aws

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/fleetpack/fleetpack/cloudprovider/aws/fake"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

var zones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

var subnetTags = map[string]string{"fleetpack.dev/discovery": "test"}

// itype builds an instance type by hand: offered on-demand at od and on
// Spot at spot (0 = no Spot) in every test zone.
func itype(name, arch string, cpu int64, memGi int64, od, spot float64) *offerings.InstanceType {
	family, size, _ := cutDot(name)
	it := &offerings.InstanceType{
		Name: name,
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewQuantity(cpu, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(memGi<<30, resource.BinarySI),
			corev1.ResourcePods:   *resource.NewQuantity(29, resource.DecimalSI),
		},
		Labels: map[string]string{
			offerings.LabelInstanceType:   name,
			offerings.LabelArch:           arch,
			offerings.LabelOS:             "linux",
			offerings.LabelInstanceFamily: family,
			offerings.LabelInstanceSize:   size,
		},
		Overhead: offerings.Overhead{KubeReserved: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("80m")}},
	}
	for _, z := range zones {
		it.Offerings = append(it.Offerings, offerings.Offering{Zone: z, CapacityType: offerings.CapacityTypeOnDemand, Price: od, Available: true})
		if spot > 0 {
			it.Offerings = append(it.Offerings, offerings.Offering{Zone: z, CapacityType: offerings.CapacityTypeSpot, Price: spot, Available: true})
		}
	}
	return it
}

func cutDot(s string) (string, string, bool) {
	for i := range s {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// testCatalog is cheapest-first by on-demand price, as a claim lists types.
func testCatalog() []*offerings.InstanceType {
	return []*offerings.InstanceType{
		itype("c6g.large", "arm64", 2, 4, 0.068, 0.030),
		itype("m5.large", "amd64", 2, 8, 0.096, 0.040),
		itype("r5.large", "amd64", 2, 16, 0.126, 0.050),
		itype("m5.xlarge", "amd64", 4, 16, 0.192, 0.060),
	}
}

type env struct {
	t       *testing.T
	clock   *clocktesting.FakeClock
	ec2     *fake.EC2
	unavail *offerings.UnavailableOfferings
	catalog []*offerings.InstanceType
	p       *Provider
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t *testing.T, mutate ...func(*Options)) *env {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	catalog := testCatalog()
	e := &env{
		t:       t,
		clock:   clk,
		catalog: catalog,
		ec2:     fake.NewFromCatalog(catalog, fake.Options{Clock: clk}, subnetTags, 4000),
		unavail: offerings.NewUnavailableOfferings(offerings.UnavailableOfferingsOptions{Clock: clk, Logger: quietLogger()}),
	}
	opts := Options{
		ClusterName: "test",
		Region:      "us-east-1",
		LaunchTemplates: map[string]LaunchTemplate{
			"amd64": {Name: "fleetpack-amd64"},
			"arm64": {ID: "lt-0arm64"},
		},
		SubnetSelector: subnetTags,
		Catalog:        StaticCatalog(catalog),
		Unavailable:    e.unavail,
		Clock:          clk,
		Logger:         quietLogger(),
	}
	for _, m := range mutate {
		m(&opts)
	}
	p, err := New(e.ec2, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.p = p
	return e
}

func (e *env) withAPI(api EC2API) *env {
	e.p.api = api
	return e
}

type claimOpt func(*scheduling.NodeClaim)

func withReq(key string, op corev1.NodeSelectorOperator, values ...string) claimOpt {
	return func(c *scheduling.NodeClaim) {
		r, err := scheduling.NewRequirements(corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values})
		if err != nil {
			panic(err)
		}
		c.Requirements = c.Requirements.Intersect(r)
	}
}

func withTypes(names ...string) claimOpt {
	return func(c *scheduling.NodeClaim) {
		var out []*offerings.InstanceType
		for _, n := range names {
			for _, it := range c.InstanceTypes {
				if it.Name == n {
					out = append(out, it)
				}
			}
		}
		c.InstanceTypes = out
	}
}

func withTemplateLabel(k, v string) claimOpt {
	return func(c *scheduling.NodeClaim) { c.Template.Labels[k] = v }
}

// claim builds a NodeClaim by hand from the env's catalog, allowing both
// capacity types unless an option narrows it.
func (e *env) claim(opts ...claimOpt) *scheduling.NodeClaim {
	e.t.Helper()
	reqs, err := scheduling.NewRequirements(
		corev1.NodeSelectorRequirement{Key: offerings.LabelCapacityType, Operator: corev1.NodeSelectorOpIn, Values: []string{"spot", "on-demand"}},
		corev1.NodeSelectorRequirement{Key: "intent", Operator: corev1.NodeSelectorOpIn, Values: []string{"apps"}},
	)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &scheduling.NodeClaim{
		Template: &scheduling.NodeTemplate{
			NodePool:      "default",
			Labels:        map[string]string{"intent": "apps"},
			Taints:        []corev1.Taint{{Key: "dedicated", Value: "apps", Effect: corev1.TaintEffectNoSchedule}},
			StartupTaints: []corev1.Taint{{Key: "node.cilium.io/agent-not-ready", Effect: corev1.TaintEffectNoExecute}},
		},
		Hostname:      "hostname-placeholder-0001",
		Requirements:  reqs,
		InstanceTypes: e.catalog,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// overrides flattens a request's overrides.
func overrides(in []types.FleetLaunchTemplateConfigRequest) []types.FleetLaunchTemplateOverridesRequest {
	var out []types.FleetLaunchTemplateOverridesRequest
	for _, c := range in {
		out = append(out, c.Overrides...)
	}
	return out
}

type poolKey struct{ it, zone string }

func overrideKeys(in []types.FleetLaunchTemplateConfigRequest) map[poolKey]string {
	out := map[poolKey]string{}
	for _, o := range overrides(in) {
		out[poolKey{string(o.InstanceType), deref(o.AvailabilityZone)}] = deref(o.SubnetId)
	}
	return out
}

// tamper wraps an EC2API to alter CreateFleet's input or output.
type tamper struct {
	EC2API
	before func(*ec2.CreateFleetInput)
	after  func(*ec2.CreateFleetOutput)
}

func (t *tamper) CreateFleet(ctx context.Context, in *ec2.CreateFleetInput, opts ...func(*ec2.Options)) (*ec2.CreateFleetOutput, error) {
	if t.before != nil {
		t.before(in)
	}
	out, err := t.EC2API.CreateFleet(ctx, in, opts...)
	if err == nil && t.after != nil {
		t.after(out)
	}
	return out, err
}
