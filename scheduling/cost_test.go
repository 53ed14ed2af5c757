package scheduling

import (
	"fmt"
	"math"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
)

// realCatalog is the embedded catalog's burstable families and a few
// general-purpose, compute and memory ones: enough choice, and a quick
// checkPlan.
func realCatalog(t *testing.T) []*offerings.InstanceType {
	t.Helper()
	types, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*offerings.InstanceType
	for _, it := range types {
		switch it.Labels[offerings.LabelInstanceFamily] {
		case "t2", "t3", "t3a", "t4g", "m5", "m6g", "m7i", "c5", "c6a", "c6g", "c7g", "r6g", "r7i":
			out = append(out, it)
		}
	}
	return out
}

func replicas(n int, cpu, memory string) []*corev1.Pod {
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		pods[i] = makePod(fmt.Sprintf("web-%02d", i), cpu, memory)
	}
	return pods
}

func solveChecked(t *testing.T, in Input) *Plan {
	t.Helper()
	plan, err := Solve(in)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, in, plan)
	if len(plan.Unschedulable) > 0 {
		t.Fatalf("unschedulable: %v", plan.Unschedulable[0])
	}
	return plan
}

func isBurstable(it *offerings.InstanceType) bool {
	_, ok := it.BurstableBaselineMilli()
	return ok
}

// A 1-cpu request is a guarantee: under the default Baseline policy no
// claim may list a burstable type that sustains less, such as t3.micro
// (0.2 vCPU), which the list price alone would pick.
func TestBaselineKeepsGuaranteesOffSmallBurstables(t *testing.T) {
	types := realCatalog(t)
	for _, n := range []int{1, 10} {
		in := Input{Pods: replicas(n, "1", "512Mi"), Templates: []*NodeTemplate{defaultTemplate(types)}}
		plan := solveChecked(t, in)
		for _, c := range plan.NodeClaims {
			cpu := c.PodRequests.Cpu().MilliValue()
			for _, it := range c.InstanceTypes {
				if isBurstable(it) && it.BaselineAllocatableCPUMilli() < cpu {
					t.Errorf("%d pods: claim %s lists %s, which sustains %dm for %dm of requests", n, c.Hostname, it.Name, it.BaselineAllocatableCPUMilli(), cpu)
				}
			}
		}
	}
}

// Under Credits a burstable type offers every vCPU, and the claim is billed
// the surplus credits of its requests above the baseline.
func TestCreditsBillsSurplus(t *testing.T) {
	types := realCatalog(t)
	tmpl := defaultTemplate(types)
	tmpl.Requirements = mustRequirements(req(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "on-demand"), req(offerings.LabelInstanceFamily, corev1.NodeSelectorOpIn, "t3"))
	tmpl.Burstable = offerings.BurstableCredits
	plan := solveChecked(t, Input{Pods: replicas(1, "1", "512Mi"), Templates: []*NodeTemplate{tmpl}})
	if len(plan.NodeClaims) != 1 {
		t.Fatalf("want one claim, got %d", len(plan.NodeClaims))
	}
	c := plan.NodeClaims[0]
	// t3.micro: $0.0104 + 20 GiB gp3 + (1,000m - 200m baseline) x $0.05.
	want := 0.0104 + 20*0.08/730 + 0.8*0.05
	if c.InstanceTypes[0].Name != "t3.micro" || math.Abs(c.Price()-want) > 1e-9 {
		t.Errorf("claim %v billed $%g, want t3.micro first at $%g", typeNames(c.InstanceTypes), c.Price(), want)
	}
	if c.ListPrice() != 0.0104 {
		t.Errorf("ListPrice = %g, want t3.micro's 0.0104", c.ListPrice())
	}

	// Under Baseline, the same pool has no t3 that sustains 1 cpu but
	// t3.xlarge (1.6 vCPU) and t3.2xlarge.
	tmpl.Burstable = offerings.BurstableBaseline
	plan = solveChecked(t, Input{Pods: replicas(1, "1", "512Mi"), Templates: []*NodeTemplate{tmpl}})
	if got := plan.NodeClaims[0].InstanceTypes[0].Name; got != "t3.xlarge" {
		t.Errorf("Baseline: first type %s, want t3.xlarge", got)
	}
}

// The solver minimises the load-dependent bill: cpu-heavy pods under
// Credits avoid burstable types, whose surplus credits cost more than a
// compute type's vCPUs.
func TestCreditsAvoidsSurplusForBusyPods(t *testing.T) {
	types := realCatalog(t)
	tmpl := defaultTemplate(types)
	tmpl.Requirements = mustRequirements(req(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "on-demand"))
	tmpl.Burstable = offerings.BurstableCredits
	plan := solveChecked(t, Input{Pods: replicas(20, "1800m", "1Gi"), Templates: []*NodeTemplate{tmpl}})
	for _, c := range plan.NodeClaims {
		if it, _, _, _ := c.CheapestBill(); isBurstable(it) {
			t.Errorf("claim %s billed as burstable %s ($%g) for %v cpu", c.Hostname, it.Name, c.Price(), c.PodRequests.Cpu())
		}
	}
}

func TestExcludeKeepsBurstablesOut(t *testing.T) {
	types := realCatalog(t)
	tmpl := defaultTemplate(types)
	tmpl.Burstable = offerings.BurstableExclude
	plan := solveChecked(t, Input{Pods: replicas(30, "100m", "128Mi"), Templates: []*NodeTemplate{tmpl}})
	for _, c := range plan.NodeClaims {
		for _, it := range c.InstanceTypes {
			if isBurstable(it) {
				t.Errorf("claim %s lists burstable %s", c.Hostname, it.Name)
			}
		}
	}
}

// Whatever type EC2 launches from a claim's list bills at most
// ClaimPriceTolerance above the claim's price.
func TestClaimListWithinTolerance(t *testing.T) {
	types := realCatalog(t)
	tmpl := defaultTemplate(types)
	tmpl.NodeCosts = offerings.NodeCosts{PublicIPv4: true}
	plan := solveChecked(t, Input{Pods: replicas(7, "1500m", "3Gi"), Templates: []*NodeTemplate{tmpl}})
	for _, c := range plan.NodeClaims {
		cpu := c.PodRequests.Cpu().MilliValue() + c.DaemonSetRequests.Cpu().MilliValue()
		for _, it := range c.InstanceTypes {
			bill := math.Inf(1)
			for _, o := range c.Offerings(it) {
				bill = min(bill, offerings.NodeBill(it, o, tmpl.NodeCosts, tmpl.Burstable, cpu))
			}
			if bill > c.Price()*(1+ClaimPriceTolerance)+1e-12 {
				t.Errorf("claim %s ($%g) lists %s at $%g", c.Hostname, c.Price(), it.Name, bill)
			}
		}
	}
}

// Input.ClaimPriceTolerance widens or narrows the list; a caller that trims
// by its own ceiling asks for every fitting type; a negative one is refused.
func TestClaimPriceToleranceInput(t *testing.T) {
	types := realCatalog(t)
	in := Input{Pods: replicas(7, "1500m", "3Gi"), Templates: []*NodeTemplate{defaultTemplate(types)}}
	listed := func(tolerance float64) (int, float64) {
		in.ClaimPriceTolerance = tolerance
		plan, err := Solve(in) // solveChecked holds lists to the default
		if err != nil {
			t.Fatal(err)
		}
		n, price := 0, 0.0
		for _, c := range plan.NodeClaims {
			n += len(c.InstanceTypes)
			price += c.Price()
		}
		return n, price
	}
	narrow, narrowPrice := listed(0)
	wide, widePrice := listed(math.Inf(1))
	tight, _ := listed(1e-9)
	if !(tight < narrow && narrow < wide) {
		t.Errorf("types listed: tolerance 1e-9 %d, default %d, +Inf %d; want strictly more as it widens", tight, narrow, wide)
	}
	if math.Abs(narrowPrice-widePrice) > 1e-9 {
		t.Errorf("the tolerance changed the plan's bill: $%g against $%g", narrowPrice, widePrice)
	}
	in.ClaimPriceTolerance = -0.1
	if _, err := Solve(in); err == nil || !strings.Contains(err.Error(), "claimPriceTolerance") {
		t.Errorf("negative tolerance: err %v, want one naming claimPriceTolerance", err)
	}
}

func TestBestSingleTypeFleetHandComputed(t *testing.T) {
	// 4-cpu nodes with 100m overhead hold three 1-cpu pods; 2-cpu nodes
	// one. Seven pods: three 4-cpu nodes at $0.20 (Spot, 40% of $0.50),
	// or seven 2-cpu nodes at $0.04 ($0.28): the small type wins, each
	// node plus the default root volume.
	big := makeType(typeSpec{name: "big.xlarge", cpu: "4", memory: "16Gi", price: 0.50, overhead: true})
	small := makeType(typeSpec{name: "small.large", cpu: "2", memory: "8Gi", price: 0.10, overhead: true})
	in := Input{Pods: replicas(7, "1", "1Gi"), Templates: []*NodeTemplate{defaultTemplate([]*offerings.InstanceType{big, small})}}
	f, ok := BestSingleTypeFleet(in)
	volume := (offerings.NodeCosts{}).Hourly()
	if !ok || f.InstanceType != small || f.Nodes != 7 || math.Abs(f.Bill-7*(0.04+volume)) > 1e-12 {
		t.Fatalf("fleet = %v x%d $%g (ok %v), want 7 x small.large at $%g", f.InstanceType.Name, f.Nodes, f.Bill, ok, 7*(0.04+volume))
	}
	// A $0.10 per-node licence tips it: 3 x (0.20 + ...) < 7 x (0.04 + ...).
	in.Templates[0].NodeCosts = offerings.NodeCosts{ExtraHourly: 0.10}
	f, ok = BestSingleTypeFleet(in)
	perNode := in.Templates[0].NodeCosts.Hourly()
	if !ok || f.InstanceType != big || f.Nodes != 3 || math.Abs(f.Bill-3*(0.20+perNode)) > 1e-12 {
		t.Fatalf("with a licence: fleet = %v x%d $%g, want 3 x big.xlarge at $%g", f.InstanceType.Name, f.Nodes, f.Bill, 3*(0.20+perNode))
	}
	plan := solveChecked(t, in)
	bill := 0.0
	for _, c := range plan.NodeClaims {
		bill += c.Price()
	}
	if bill > f.Bill+1e-12 {
		t.Errorf("plan bills $%g, more than the fleet's $%g", bill, f.Bill)
	}
	// A pod with a node selector: the bound does not apply.
	in.Pods = append(in.Pods, makePod("picky", "1", "1Gi", withNodeSelector(offerings.LabelArch, "amd64")))
	if _, ok := BestSingleTypeFleet(in); ok {
		t.Error("the bound applied to a pod with node requirements")
	}
}
