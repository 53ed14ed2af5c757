package scheduling

import (
	"fmt"
	"math"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
)

// greedyAlone is the solver after the greedy alone has packed in's pods
// (merged and dissolved, as Solve does), without the fill or the fleet.
func greedyAlone(t *testing.T, in Input) *solver {
	t.Helper()
	s, err := newSolver(in)
	if err != nil {
		t.Fatal(err)
	}
	s.sortPods()
	s.packGreedily(s.pods, s.sharedTemplates())
	return s
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
	got, greedy := planTotal(plan), planBill(greedyAlone(t, in).claims)
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

// decodeUnconstrained builds, from data, a problem the fill applies to:
// replicated pods without constraints (up to eight shapes, up to about
// 1,500 pods, so that both sides of greedyAlongside are reached), synthetic
// types with lopsided shapes and prices, and up to three existing nodes.
func decodeUnconstrained(data []byte) Input {
	s := &byteSource{b: data}
	var types []*offerings.InstanceType
	for i := range 2 + s.next()%5 {
		cpu := 1 << (1 + s.next()%6) // 2 to 64
		memPerCPU := 1 << (s.next() % 4)
		types = append(types, makeType(typeSpec{
			name: fmt.Sprintf("t%d.x%d", i, cpu), cpu: fmt.Sprint(cpu), memory: fmt.Sprintf("%dGi", cpu*memPerCPU),
			price: float64(cpu) * (0.02 + float64(s.next()%16)/400), pods: int64(8 + s.next()%100), overhead: s.next()%2 == 0,
		}))
	}
	in := Input{Templates: []*NodeTemplate{defaultTemplate(types)}}
	cpus := []string{"100m", "250m", "500m", "1", "2", "3", "7", "8"}
	mems := []string{"128Mi", "512Mi", "1Gi", "3Gi", "8Gi", "20Gi"}
	for shape := range 1 + s.next()%8 {
		cpu, mem := pick(s, cpus...), pick(s, mems...)
		for i := range s.next() + s.next()%3*s.next() {
			in.Pods = append(in.Pods, makePod(fmt.Sprintf("s%d-%04d", shape, i), cpu, mem))
		}
	}
	for i := range s.next() % 4 {
		in.Nodes = append(in.Nodes, ExistingNode{Node: makeNode(fmt.Sprintf("n%d", i), pick(s, "4", "16", "64"), pick(s, "8Gi", "64Gi"), nil)})
	}
	if s.next()%2 == 0 {
		in.DaemonSetPods = []*corev1.Pod{makePod("ds", pick(s, "50m", "300m"), pick(s, "64Mi", "500Mi"))}
	}
	return in
}

// FuzzFill holds the fill to what the greedy gives: on unconstrained pods,
// with or without existing nodes, the plan is valid (checkPlan), existing
// nodes take exactly the pods the greedy puts on them, and where the greedy
// runs alongside (greedyAlongside) the plan bills no more than its plan.
func FuzzFill(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 5, 1, 3, 0, 200, 1, 9, 4, 2, 2, 7, 6, 40, 0, 0, 3, 3, 120, 2, 9})
	f.Add([]byte{4, 4, 2, 1, 1, 0, 90, 0, 6, 3, 15, 5, 3, 2, 250, 2, 250, 1, 1, 7, 1, 0, 2, 3, 0, 1, 1})
	for seed := range 12 {
		f.Add(seedBytes(uint32(seed*2654435761+7), 48))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := decodeUnconstrained(data)
		plan, err := Solve(in)
		if err != nil {
			t.Fatalf("Solve: %v", err)
		}
		checkPlan(t, in, plan)

		s := greedyAlone(t, in)
		greedyOn := map[string]int{}
		for _, n := range s.nodes {
			greedyOn[n.node.Name] = len(n.placed)
		}
		for _, np := range plan.ExistingNodes {
			if greedyOn[np.Node.Name] != len(np.Pods) {
				t.Errorf("node %s: %d pods, the greedy puts %d there", np.Node.Name, len(np.Pods), greedyOn[np.Node.Name])
			}
			delete(greedyOn, np.Node.Name)
		}
		for name, n := range greedyOn {
			if n > 0 {
				t.Errorf("node %s: no pods, the greedy puts %d there", name, n)
			}
		}
		if len(in.Pods) <= greedyAlongside && len(s.plan.Unschedulable) == 0 {
			if got, greedy := planTotal(plan), planBill(s.claims); got > greedy*(1+1e-9)+1e-12 {
				t.Errorf("plan bills $%.4f, the greedy's $%.4f", got, greedy)
			}
		}
	})
}
