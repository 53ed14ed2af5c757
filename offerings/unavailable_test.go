package offerings

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func newTestCache(t *testing.T) (*UnavailableOfferings, *clocktesting.FakeClock, *bytes.Buffer) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var logs bytes.Buffer
	u := NewUnavailableOfferings(UnavailableOfferingsOptions{
		Clock:  clk,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	return u, clk, &logs
}

func TestUnavailableOfferingsGranularity(t *testing.T) {
	ctx := context.Background()
	type probe struct {
		ct, it, zone string
		want         bool
	}
	tests := []struct {
		name   string
		mark   func(u *UnavailableOfferings)
		probes []probe
	}{
		{
			name: "offering",
			mark: func(u *UnavailableOfferings) {
				u.MarkUnavailable(ctx, "InsufficientInstanceCapacity", CapacityTypeSpot, "m5.large", "us-east-1a")
			},
			probes: []probe{
				{CapacityTypeSpot, "m5.large", "us-east-1a", true},
				{CapacityTypeSpot, "m5.large", "us-east-1b", false},
				{CapacityTypeOnDemand, "m5.large", "us-east-1a", false},
				{CapacityTypeSpot, "m5.xlarge", "us-east-1a", false},
			},
		},
		{
			name: "family in a zone",
			mark: func(u *UnavailableOfferings) {
				u.MarkFamilyUnavailable(ctx, "Unsupported", CapacityTypeOnDemand, "m5", "us-east-1c")
			},
			probes: []probe{
				{CapacityTypeOnDemand, "m5.large", "us-east-1c", true},
				{CapacityTypeOnDemand, "m5.24xlarge", "us-east-1c", true},
				{CapacityTypeOnDemand, "m5d.large", "us-east-1c", false},
				{CapacityTypeOnDemand, "m5.large", "us-east-1a", false},
				{CapacityTypeSpot, "m5.large", "us-east-1c", false},
			},
		},
		{
			name: "family in every zone",
			mark: func(u *UnavailableOfferings) {
				u.MarkFamilyUnavailable(ctx, "Unsupported", CapacityTypeSpot, "p5", "")
			},
			probes: []probe{
				{CapacityTypeSpot, "p5.48xlarge", "us-east-1a", true},
				{CapacityTypeSpot, "p5.48xlarge", "us-east-1f", true},
				{CapacityTypeOnDemand, "p5.48xlarge", "us-east-1a", false},
				{CapacityTypeSpot, "p5e.48xlarge", "us-east-1a", false},
			},
		},
		{
			name: "capacity type in a zone",
			mark: func(u *UnavailableOfferings) {
				u.MarkCapacityTypeUnavailable(ctx, "quota", CapacityTypeSpot, "us-east-1b")
			},
			probes: []probe{
				{CapacityTypeSpot, "m5.large", "us-east-1b", true},
				{CapacityTypeSpot, "c7g.xlarge", "us-east-1b", true},
				{CapacityTypeSpot, "m5.large", "us-east-1a", false},
				{CapacityTypeOnDemand, "m5.large", "us-east-1b", false},
			},
		},
		{
			name: "capacity type everywhere",
			mark: func(u *UnavailableOfferings) {
				u.MarkCapacityTypeUnavailable(ctx, "MaxSpotInstanceCountExceeded", CapacityTypeSpot, "")
			},
			probes: []probe{
				{CapacityTypeSpot, "m5.large", "us-east-1a", true},
				{CapacityTypeSpot, "r6i.large", "us-east-1e", true},
				{CapacityTypeOnDemand, "m5.large", "us-east-1a", false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, clk, _ := newTestCache(t)
			tt.mark(u)
			for _, p := range tt.probes {
				if got := u.IsUnavailable(p.ct, p.it, p.zone); got != p.want {
					t.Errorf("IsUnavailable(%s, %s, %s) = %v, want %v", p.ct, p.it, p.zone, got, p.want)
				}
			}
			// Every mark lapses after the TTL on the injected clock.
			clk.Step(DefaultUnavailableTTL)
			for _, p := range tt.probes {
				if u.IsUnavailable(p.ct, p.it, p.zone) {
					t.Errorf("IsUnavailable(%s, %s, %s) after TTL = true", p.ct, p.it, p.zone)
				}
			}
		})
	}
}

func TestUnavailableOfferingsExpiry(t *testing.T) {
	ctx := context.Background()
	u, clk, _ := newTestCache(t)
	u.MarkUnavailable(ctx, "ICE", CapacityTypeSpot, "m5.large", "us-east-1a")
	clk.Step(DefaultUnavailableTTL - time.Second)
	if !u.IsUnavailable(CapacityTypeSpot, "m5.large", "us-east-1a") {
		t.Fatal("mark expired before the TTL")
	}
	// Marking again extends the mark from now.
	u.MarkUnavailable(ctx, "ICE", CapacityTypeSpot, "m5.large", "us-east-1a")
	clk.Step(2 * time.Second)
	if !u.IsUnavailable(CapacityTypeSpot, "m5.large", "us-east-1a") {
		t.Fatal("re-mark did not extend the mark")
	}
	clk.Step(DefaultUnavailableTTL)
	if u.IsUnavailable(CapacityTypeSpot, "m5.large", "us-east-1a") {
		t.Fatal("mark outlived its TTL")
	}

	short := NewUnavailableOfferings(UnavailableOfferingsOptions{Clock: clk, TTL: time.Minute, Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))})
	short.MarkUnavailable(ctx, "ICE", CapacityTypeSpot, "m5.large", "us-east-1a")
	clk.Step(time.Minute)
	if short.IsUnavailable(CapacityTypeSpot, "m5.large", "us-east-1a") {
		t.Fatal("custom TTL ignored")
	}
}

func TestUnavailableOfferingsSeqNumFlushAndLog(t *testing.T) {
	ctx := context.Background()
	u, _, logs := newTestCache(t)
	seen := map[uint64]bool{u.SeqNum(): true}
	step := func(what string, f func()) {
		f()
		if seen[u.SeqNum()] {
			t.Errorf("SeqNum %d repeated after %s", u.SeqNum(), what)
		}
		seen[u.SeqNum()] = true
	}
	step("mark", func() { u.MarkUnavailable(ctx, "ICE", CapacityTypeSpot, "m5.large", "us-east-1a") })
	step("same mark", func() { u.MarkUnavailable(ctx, "ICE", CapacityTypeSpot, "m5.large", "us-east-1a") })
	step("family", func() { u.MarkFamilyUnavailable(ctx, "ICE", CapacityTypeSpot, "c5", "") })
	step("capacity type", func() { u.MarkCapacityTypeUnavailable(ctx, "quota", CapacityTypeOnDemand, "") })
	step("flush", u.Flush)
	if u.IsUnavailable(CapacityTypeSpot, "m5.large", "us-east-1a") || u.IsUnavailable(CapacityTypeOnDemand, "x.large", "z") {
		t.Error("Flush left marks")
	}
	out := logs.String()
	for _, want := range []string{"reason=ICE", "instance-type=m5.large", "zone=us-east-1a", "instance-family=c5", "reason=quota", "zone=*"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 4 {
		t.Errorf("%d log lines for 4 marks", n)
	}
}

func testTypes() []*InstanceType {
	mk := func(name string) *InstanceType {
		var os []Offering
		for _, z := range []string{"z1", "z2"} {
			os = append(os,
				Offering{Zone: z, CapacityType: CapacityTypeOnDemand, Price: 1, Available: true},
				Offering{Zone: z, CapacityType: CapacityTypeSpot, Price: 0.4, Available: true})
		}
		return &InstanceType{Name: name, Labels: map[string]string{LabelInstanceType: name}, Offerings: os}
	}
	return []*InstanceType{mk("m5.large"), mk("m5.xlarge"), mk("c5.large")}
}

func available(it *InstanceType) []string {
	var out []string
	for _, o := range it.Offerings {
		if o.Available {
			out = append(out, o.CapacityType+"/"+o.Zone)
		}
	}
	return out
}

func TestUnavailableOfferingsApply(t *testing.T) {
	ctx := context.Background()
	u, clk, _ := newTestCache(t)
	types := testTypes()
	pristine := testTypes()

	out := u.Apply(types)
	if &out[0] == &types[0] || !reflect.DeepEqual(out, types) {
		t.Fatal("Apply with no marks must return an equal, new slice")
	}

	u.MarkUnavailable(ctx, "ICE", CapacityTypeSpot, "m5.large", "z1")
	u.MarkCapacityTypeUnavailable(ctx, "quota", CapacityTypeOnDemand, "z2")
	out = u.Apply(types)
	if !reflect.DeepEqual(types, pristine) {
		t.Fatal("Apply modified its input")
	}
	want := map[string][]string{
		"m5.large":  {"on-demand/z1", "spot/z2"},
		"m5.xlarge": {"on-demand/z1", "spot/z1", "spot/z2"},
		"c5.large":  {"on-demand/z1", "spot/z1", "spot/z2"},
	}
	for i, it := range out {
		if got := available(it); !reflect.DeepEqual(got, want[it.Name]) {
			t.Errorf("%s: available %v, want %v", it.Name, got, want[it.Name])
		}
		if it == types[i] {
			t.Errorf("%s changed but was not copied", it.Name)
		}
		// Apply agrees with IsUnavailable offering by offering.
		for _, o := range it.Offerings {
			if o.Available == u.IsUnavailable(o.CapacityType, it.Name, o.Zone) {
				t.Errorf("%s %s/%s: Apply says available=%v, IsUnavailable agrees", it.Name, o.CapacityType, o.Zone, o.Available)
			}
		}
	}

	u.Flush()
	u.MarkFamilyUnavailable(ctx, "ICE", CapacityTypeSpot, "c5", "")
	out = u.Apply(types)
	if out[0] != types[0] || out[1] != types[1] {
		t.Error("unchanged types should be shared")
	}
	if got := available(out[2]); !reflect.DeepEqual(got, []string{"on-demand/z1", "on-demand/z2"}) {
		t.Errorf("c5.large available %v", got)
	}

	clk.Step(DefaultUnavailableTTL)
	out = u.Apply(types)
	for i := range out {
		if out[i] != types[i] {
			t.Errorf("%s: still changed after the marks expired", out[i].Name)
		}
	}
}

func TestUnavailableOfferingsConcurrent(t *testing.T) {
	ctx := context.Background()
	u, clk, _ := newTestCache(t)
	types := testTypes()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				switch i % 4 {
				case 0:
					u.MarkUnavailable(ctx, "ICE", CapacityTypeSpot, fmt.Sprintf("m5.%dxlarge", i), "z1")
				case 1:
					u.MarkFamilyUnavailable(ctx, "ICE", CapacityTypeOnDemand, fmt.Sprintf("f%d", g), "")
				case 2:
					_ = u.Apply(types)
				case 3:
					_ = u.IsUnavailable(CapacityTypeSpot, "m5.large", "z1")
					_ = u.SeqNum()
					clk.Step(time.Millisecond)
				}
			}
		}(g)
	}
	wg.Wait()
	if u.SeqNum() != 8*100 {
		t.Errorf("SeqNum %d after 800 marks", u.SeqNum())
	}
}

func BenchmarkUnavailableOfferingsApply(b *testing.B) {
	types, err := DefaultCatalog(CatalogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	u := NewUnavailableOfferings(UnavailableOfferingsOptions{Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))})
	for i := 0; i < 20; i++ {
		u.MarkUnavailable(context.Background(), "ICE", CapacityTypeSpot, types[i*50].Name, "us-east-1a")
	}
	for b.Loop() {
		_ = u.Apply(types)
	}
}
