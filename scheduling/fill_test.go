package scheduling

import (
	"fmt"
	"math"
	"testing"

	"github.com/fleetpack/fleetpack/offerings"
)

// greedyBill is the bill of the greedy's plan alone (merged and
// dissolved, as Solve finishes it), without the fill or the fleet.
func greedyBill(t *testing.T, in Input) float64 {
	t.Helper()
	s, err := newSolver(in)
	if err != nil {
		t.Fatal(err)
	}
	s.sortPods()
	vts := s.fleetTemplates()
	s.placeAll(s.pods)
	s.mergeClaims(vts)
	s.dissolveClaims(vts)
	return planBill(s.claims)
}

func planTotal(p *Plan) float64 {
	bill := 0.0
	for _, c := range p.NodeClaims {
		bill += c.Price()
	}
	return bill
}

// TestFillPacksWholePods: two 8-cpu pods never share a 16-cpu node (15.9
// allocatable), which the greedy's dual prices cannot see. By hand: each
// 200Gi pod takes a mem.4xlarge with one 8-cpu pod beside it, seven 8-cpu
// pods fill a wide.16xlarge, and the last three take a half.4xlarge each:
// 4 x $0.90 + $1.68 + 3 x $0.40, plus eight root volumes. Nothing cheaper
// holds them (two wide nodes for the last ten cost $3.36, not $2.88).
func TestFillPacksWholePods(t *testing.T) {
	half := makeType(typeSpec{name: "half.4xlarge", cpu: "16", memory: "32Gi", price: 0.40, noSpot: true, overhead: true})
	wide := makeType(typeSpec{name: "wide.16xlarge", cpu: "64", memory: "128Gi", price: 1.68, noSpot: true, overhead: true})
	mem := makeType(typeSpec{name: "mem.4xlarge", cpu: "16", memory: "256Gi", price: 0.90, noSpot: true, overhead: true})
	pods := replicas(14, "8", "1Gi")
	for i := range 4 {
		pods = append(pods, makePod(fmt.Sprintf("db-%d", i), "1", "200Gi"))
	}
	in := Input{Pods: pods, Templates: []*NodeTemplate{defaultTemplate([]*offerings.InstanceType{half, wide, mem})}}
	plan := solveChecked(t, in)
	got, greedy := planTotal(plan), greedyBill(t, in)
	counts := map[string]int{}
	for _, c := range plan.NodeClaims {
		counts[c.InstanceTypes[0].Name]++
	}
	want := 4*0.90 + 1.68 + 3*0.40 + 8*(offerings.NodeCosts{}).Hourly()
	if math.Abs(got-want) > 1e-9 || counts["mem.4xlarge"] != 4 || counts["wide.16xlarge"] != 1 || counts["half.4xlarge"] != 3 {
		t.Errorf("plan %v bills $%.4f, want 4 mem.4xlarge, 1 wide.16xlarge and 3 half.4xlarge at $%.4f", counts, got, want)
	}
	// The case must need the fill: were the greedy to find this plan
	// alone, the test would no longer show what the fill adds.
	if greedy <= want+1e-9 {
		t.Errorf("the greedy alone bills $%.4f: the case no longer exercises the fill", greedy)
	}
}

// TestFillAfterExistingNodes: existing nodes take what the greedy would give
// them, largest pods first, and the fill packs the rest: two 8-cpu pods on
// the 16-cpu node, the other twelve seven and five to a wide.16xlarge
// (two at $1.68 bill less than one and five half.4xlarge at $0.40).
func TestFillAfterExistingNodes(t *testing.T) {
	half := makeType(typeSpec{name: "half.4xlarge", cpu: "16", memory: "32Gi", price: 0.40, noSpot: true, overhead: true})
	wide := makeType(typeSpec{name: "wide.16xlarge", cpu: "64", memory: "128Gi", price: 1.68, noSpot: true, overhead: true})
	in := Input{
		Pods:      replicas(14, "8", "1Gi"),
		Nodes:     []ExistingNode{{Node: makeNode("n1", "16", "32Gi", nil)}},
		Templates: []*NodeTemplate{defaultTemplate([]*offerings.InstanceType{half, wide})},
	}
	plan := solveChecked(t, in)
	onNode := 0
	for _, np := range plan.ExistingNodes {
		onNode += len(np.Pods)
	}
	counts := map[string]int{}
	for _, c := range plan.NodeClaims {
		counts[c.InstanceTypes[0].Name]++
	}
	want := 2 * (1.68 + (offerings.NodeCosts{}).Hourly())
	if onNode != 2 || counts["wide.16xlarge"] != 2 || len(plan.NodeClaims) != 2 || math.Abs(planTotal(plan)-want) > 1e-9 {
		t.Errorf("%d pods on n1 and claims %v at $%.4f, want 2 on n1 and 2 wide.16xlarge at $%.4f", onNode, counts, planTotal(plan), want)
	}
}
