package aws

import (
	"context"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/fleetpack/fleetpack/cloudprovider/aws/fake"
	"github.com/fleetpack/fleetpack/offerings"
)

// The catalog read back from a fake EC2 built from the embedded catalog is
// the embedded catalog: same capacity, overhead, labels and offerings.
func TestAPICatalogRoundTripsTheEmbeddedCatalog(t *testing.T) {
	want, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	f := fake.NewFromCatalog(want, fake.Options{Clock: clk}, nil, 100)
	c, err := NewAPICatalog(f, APICatalogOptions{Region: "us-east-1", Clock: clk, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.InstanceTypes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("types = %d, want %d", len(got), len(want))
	}
	byName := map[string]*offerings.InstanceType{}
	for _, it := range got {
		byName[it.Name] = it
	}
	diffs := 0
	for _, w := range want {
		g := byName[w.Name]
		if g == nil {
			t.Errorf("%s missing", w.Name)
			continue
		}
		if msg := compareTypes(g, w); msg != "" {
			diffs++
			if diffs <= 10 {
				t.Errorf("%s: %s", w.Name, msg)
			}
		}
	}
	if diffs > 0 {
		t.Errorf("%d types differ", diffs)
	}
	if n := f.CallCount(fake.OpDescribeInstanceTypes); n != (len(want)+99)/100 {
		t.Errorf("DescribeInstanceTypes pages = %d, want %d", n, (len(want)+99)/100)
	}
}

func compareTypes(g, w *offerings.InstanceType) string {
	for name, q := range w.Capacity {
		if gq := g.Capacity[name]; gq.Cmp(q) != 0 {
			return "capacity " + string(name) + " " + gq.String() + " != " + q.String()
		}
	}
	ga, wa := g.Allocatable(), w.Allocatable()
	for name, q := range wa {
		if gq := ga[name]; gq.Cmp(q) != 0 {
			return "allocatable " + string(name) + " " + gq.String() + " != " + q.String()
		}
	}
	if !reflect.DeepEqual(g.Labels, w.Labels) {
		return "labels differ"
	}
	if len(g.Offerings) != len(w.Offerings) {
		return "offering count differs"
	}
	for _, wo := range w.Offerings {
		i := slices.IndexFunc(g.Offerings, func(o offerings.Offering) bool { return o.Zone == wo.Zone && o.CapacityType == wo.CapacityType })
		if i < 0 || math.Abs(g.Offerings[i].Price-wo.Price) > 1e-6 || !g.Offerings[i].Available {
			return "offering " + wo.CapacityType + "/" + wo.Zone + " differs"
		}
	}
	return ""
}

func TestAPICatalogOfferingsFollowEC2(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	f := fake.New(fake.Options{Clock: clk})
	base := testCatalog()[1] // m5.large
	onlyOD := fake.InstanceTypeInfo(base, false)
	onlyOD.InstanceType = "m5.2xlarge"
	f.AddInstanceType(fake.InstanceTypeInfo(base, true), 0.096, "us-east-1a", "us-east-1b")
	f.AddInstanceType(onlyOD, 0.384, "us-east-1a")
	unpriced := fake.InstanceTypeInfo(base, true)
	unpriced.InstanceType = "zz9.large"
	f.AddInstanceType(unpriced, 1, "us-east-1a")
	f.SetSpotPrice("m5.large", "us-east-1a", 0.031)
	f.SetSpotPrice("m5.2xlarge", "us-east-1a", 0.1) // quoted, but the type does not support Spot
	c, err := NewAPICatalog(f, APICatalogOptions{Region: "us-east-1", Clock: clk, Logger: quietLogger(),
		OnDemandPrices: map[string]float64{"m5.large": 0.096, "m5.2xlarge": 0.384}})
	if err != nil {
		t.Fatal(err)
	}
	its, err := c.InstanceTypes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]offerings.Offering{}
	for _, it := range its {
		got[it.Name] = it.Offerings
	}
	want := map[string][]offerings.Offering{
		"m5.large": {
			{Zone: "us-east-1a", CapacityType: "on-demand", Price: 0.096, Available: true},
			{Zone: "us-east-1a", CapacityType: "spot", Price: 0.031, Available: true},
			{Zone: "us-east-1b", CapacityType: "on-demand", Price: 0.096, Available: true},
		},
		"m5.2xlarge": {{Zone: "us-east-1a", CapacityType: "on-demand", Price: 0.384, Available: true}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("offerings = %v, want %v (no Spot where EC2 quotes none or the type has none, unpriced types left out)", got, want)
	}

	// Cached for the refresh period, then re-read; a failed refresh keeps
	// the previous catalog.
	calls := len(f.Calls())
	if _, err := c.InstanceTypes(context.Background()); err != nil || len(f.Calls()) != calls {
		t.Errorf("second read within the period called EC2 (%d -> %d calls)", calls, len(f.Calls()))
	}
	f.SetSpotPrice("m5.large", "us-east-1a", 0.05)
	clk.Step(DefaultCatalogRefresh)
	its, _ = c.InstanceTypes(context.Background())
	if its[0].Name != "m5.2xlarge" || its[1].Offerings[1].Price != 0.05 {
		t.Errorf("after the period: %v, want the new Spot price", its[1].Offerings)
	}
	clk.Step(DefaultCatalogRefresh)
	f.ThrottleNext(fake.OpDescribeSpotPriceHistory, 1)
	its, err = c.InstanceTypes(context.Background())
	if err != nil || len(its) != 2 {
		t.Errorf("failed refresh: %v, %d types; want the previous catalog", err, len(its))
	}

	empty, _ := NewAPICatalog(f, APICatalogOptions{Region: "us-east-1", Clock: clk, Logger: quietLogger()})
	f.ThrottleNext(fake.OpDescribeInstanceTypes, 1)
	if _, err := empty.InstanceTypes(context.Background()); err == nil {
		t.Error("first read failing returned no error")
	}
	if _, err := NewAPICatalog(f, APICatalogOptions{}); err == nil {
		t.Error("missing Region accepted")
	}
}

func TestCategoryGeneration(t *testing.T) {
	for family, want := range map[string]struct {
		cat string
		gen int
	}{"m5": {"m", 5}, "c6gn": {"c", 6}, "u-12tb1": {"u", 1}, "u7i-12tb": {"u", 7}, "mac2-m2pro": {"mac", 2}, "x": {"x", 0}} {
		if c, g := categoryGeneration(family); c != want.cat || g != want.gen {
			t.Errorf("categoryGeneration(%q) = %q, %d; want %q, %d", family, c, g, want.cat, want.gen)
		}
	}
}
