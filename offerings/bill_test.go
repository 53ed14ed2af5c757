package offerings

import (
	"math"
	"testing"
)

func catalogType(t *testing.T, name string) *InstanceType {
	t.Helper()
	types, err := DefaultCatalog(CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range types {
		if it.Name == name {
			return it
		}
	}
	t.Fatalf("%s not in the catalog", name)
	return nil
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestNodeCostsHourly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		costs NodeCosts
		want  float64
	}{
		{"default is 20 GiB gp3", NodeCosts{}, 20 * 0.08 / 730},
		{"100 GiB gp2", NodeCosts{RootVolumeGiB: 100, RootVolumeType: "gp2"}, 100 * 0.10 / 730},
		{"public IPv4", NodeCosts{PublicIPv4: true}, 20*0.08/730 + 0.005},
		{"licence", NodeCosts{RootVolumeGiB: 50, RootVolumeType: "io1", ExtraHourly: 0.01}, 50*0.125/730 + 0.01},
		{"unknown volume type priced as gp3", NodeCosts{RootVolumeType: "magnetic"}, 20 * 0.08 / 730},
	} {
		if got := tc.costs.Hourly(); !near(got, tc.want) {
			t.Errorf("%s: Hourly() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBurstableFacts(t *testing.T) {
	for name, want := range map[string]int64{"t3a.nano": 100, "t3.micro": 200, "t4g.small": 400, "t3.2xlarge": 3200, "t2.micro": 100, "t2.2xlarge": 1360, "m5.large": 0, "c6g.medium": 0} {
		it := catalogType(t, name)
		got, ok := it.BurstableBaselineMilli()
		if got != want || ok != (want > 0) {
			t.Errorf("%s: BurstableBaselineMilli() = %d, %v; want %d", name, got, ok, want)
		}
		if IsBurstableName(name) != (want > 0) {
			t.Errorf("IsBurstableName(%s) = %v", name, !(want > 0))
		}
		if c := it.DeepCopy(); c.BaselineCPUMilli != it.BaselineCPUMilli {
			t.Errorf("%s: DeepCopy lost the baseline", name)
		}
	}
}

func TestBaselineAllocatableCPU(t *testing.T) {
	// t3.micro: 2 vCPUs, kube-reserved 60m+10m = 70m, baseline 200m.
	micro := catalogType(t, "t3.micro")
	if got := micro.BaselineAllocatableCPUMilli(); got != 130 {
		t.Errorf("t3.micro baseline allocatable = %dm, want 130m", got)
	}
	// t3a.nano sustains 100m, less the 70m reserved: 30m.
	if got := catalogType(t, "t3a.nano").BaselineAllocatableCPUMilli(); got != 30 {
		t.Errorf("t3a.nano baseline allocatable = %dm, want 30m", got)
	}
	m5 := catalogType(t, "m5.large")
	alloc := m5.Allocatable()["cpu"]
	if got := m5.BaselineAllocatableCPUMilli(); got != alloc.MilliValue() {
		t.Errorf("m5.large (not burstable) = %dm, want its allocatable %dm", got, alloc.MilliValue())
	}
}

func TestNodeBill(t *testing.T) {
	micro := catalogType(t, "t3.micro")
	o := Offering{Zone: "us-east-1a", CapacityType: CapacityTypeOnDemand, Price: 0.0104, Available: true}
	volume := 20 * 0.08 / 730
	for _, tc := range []struct {
		name      string
		it        *InstanceType
		costs     NodeCosts
		policy    BurstablePolicy
		requested int64
		want      float64
	}{
		{"baseline mode never pays credits", micro, NodeCosts{}, BurstableBaseline, 1500, 0.0104 + volume},
		{"default policy is baseline", micro, NodeCosts{}, "", 1500, 0.0104 + volume},
		{"credits under the baseline", micro, NodeCosts{}, BurstableCredits, 150, 0.0104 + volume},
		// 1,500m requested, 200m baseline: 1.3 vCPU x $0.05.
		{"credits above the baseline", micro, NodeCosts{}, BurstableCredits, 1500, 0.0104 + volume + 1.3*0.05},
		{"credits with a public address", micro, NodeCosts{PublicIPv4: true}, BurstableCredits, 1200, 0.0104 + volume + 0.005 + 0.05},
		{"not burstable pays no credits", catalogType(t, "m5.large"), NodeCosts{}, BurstableCredits, 1900, 0.0104 + volume},
	} {
		if got := NodeBill(tc.it, o, tc.costs, tc.policy, tc.requested); !near(got, tc.want) {
			t.Errorf("%s: NodeBill = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBurstablePolicyValidate(t *testing.T) {
	for _, p := range []BurstablePolicy{"", BurstableBaseline, BurstableCredits, BurstableExclude} {
		if err := p.Validate(); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	if err := BurstablePolicy("Unlimited").Validate(); err == nil {
		t.Error("Unlimited: want an error")
	}
}
