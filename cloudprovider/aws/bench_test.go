package aws

import (
	"cmp"
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/cloudprovider/aws/fake"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

// BenchmarkCreateFleetRequest measures building the CreateFleet request of
// a claim of 60 real instance types (6 zones, Spot and on-demand each):
// applying the unavailable offerings, choosing the capacity type, the
// on-demand price cap, the overrides and the tags. Target: under 50µs.
func BenchmarkCreateFleetRequest(b *testing.B) {
	catalog, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	// What a claim for a few pods gets: every type with 4 vCPUs (that has
	// Spot), cheapest first, capped at 60.
	var its []*offerings.InstanceType
	for _, it := range catalog {
		if _, spot := it.CheapestOffering(func(o offerings.Offering) bool { return o.CapacityType == "spot" }); spot && it.Labels[offerings.LabelInstanceCPU] == "4" {
			its = append(its, it)
		}
	}
	odPrice := func(it *offerings.InstanceType) float64 {
		o, _ := it.CheapestOffering(func(o offerings.Offering) bool { return o.CapacityType == "on-demand" })
		return o.Price
	}
	slices.SortStableFunc(its, func(a, b *offerings.InstanceType) int { return cmp.Compare(odPrice(a), odPrice(b)) })
	its = its[:min(len(its), scheduling.DefaultMaxInstanceTypes)]
	unavail := offerings.NewUnavailableOfferings(offerings.UnavailableOfferingsOptions{Logger: quietLogger()})
	p, err := New(fake.New(fake.Options{}), Options{
		ClusterName:     "bench",
		LaunchTemplates: map[string]LaunchTemplate{"amd64": {Name: "amd"}, "arm64": {Name: "arm"}},
		SubnetIDs:       []string{"unused"},
		Catalog:         StaticCatalog(catalog),
		Unavailable:     unavail,
		Logger:          quietLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	reqs, _ := scheduling.NewRequirements(corev1.NodeSelectorRequirement{Key: offerings.LabelCapacityType, Operator: corev1.NodeSelectorOpIn, Values: []string{"spot", "on-demand"}})
	claim := &scheduling.NodeClaim{
		Template:      &scheduling.NodeTemplate{NodePool: "default", Labels: map[string]string{}},
		Hostname:      "bench-0",
		Requirements:  reqs,
		InstanceTypes: its,
	}
	subnets := map[string]string{}
	for _, z := range []string{"a", "b", "c", "d", "e", "f"} {
		subnets["us-east-1"+z] = "subnet-" + z
	}
	b.Run("marks=0", func(b *testing.B) { benchRequest(b, p, claim, subnets) })
	// A few marks, as a busy cluster has: Apply then checks every offering.
	unavail.MarkUnavailable(context.Background(), "bench", "spot", its[0].Name, "us-east-1a")
	unavail.MarkFamilyUnavailable(context.Background(), "bench", "spot", offerings.Family(its[10].Name), "")
	b.Run("marks=2", func(b *testing.B) { benchRequest(b, p, claim, subnets) })
}

func benchRequest(b *testing.B, p *Provider, claim *scheduling.NodeClaim, subnets map[string]string) {
	b.ReportAllocs()
	overridesN := 0
	for b.Loop() {
		ct, pools := p.choosePools(claim, true, true, subnets)
		in := p.fleetRequest(claim, ct, pools, DefaultSpotAllocationStrategy, "token")
		overridesN = 0
		for _, c := range in.LaunchTemplateConfigs {
			overridesN += len(c.Overrides)
		}
	}
	b.ReportMetric(float64(overridesN), "overrides")
	if overridesN < 200 {
		b.Fatalf("only %d overrides; the benchmark should exercise most of 60 types x 6 zones", overridesN)
	}
}
