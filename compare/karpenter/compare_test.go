package main

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/internal/workload"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

func TestConvertedTypesKeepCapacityAllocatableLabelsAndOfferings(t *testing.T) {
	catalog, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range append(catalog, workload.KarpenterCatalog()...) {
		kt := karpenterInstanceType(it)
		want, got := it.Allocatable(), kt.Allocatable()
		if len(got) != len(want) {
			t.Fatalf("%s: karpenter allocatable %v, fleetpack %v", it.Name, got, want)
		}
		for name, q := range want {
			if g := got[name]; g.Cmp(q) != 0 {
				t.Fatalf("%s: karpenter allocatable %s is %s, fleetpack %s", it.Name, name, g.String(), q.String())
			}
		}
		for k, v := range it.Labels {
			if !kt.Requirements.Get(k).Has(v) || kt.Requirements.Get(k).Len() != 1 {
				t.Fatalf("%s: label %s=%s becomes requirement %s", it.Name, k, v, kt.Requirements.Get(k))
			}
		}
		if len(kt.Offerings) != len(it.Offerings) {
			t.Fatalf("%s: %d karpenter offerings, %d fleetpack", it.Name, len(kt.Offerings), len(it.Offerings))
		}
		for i, o := range it.Offerings {
			ko := kt.Offerings[i]
			if ko.Price != o.Price || ko.Available != o.Available ||
				ko.Zone() != o.Zone || ko.CapacityType() != o.CapacityType {
				t.Fatalf("%s: offering %d is %s/%s $%v available=%v in karpenter, %+v in fleetpack", it.Name, i, ko.Zone(), ko.CapacityType(), ko.Price, ko.Available, o)
			}
		}
	}
}

// smallWorkload is three pods of 600m on two instance types (1 and 2
// vCPUs): the third keeps away from pods labelled app=alone, the second
// among them, by hostname anti-affinity.
func smallWorkload() Workload {
	pods := workload.Shaped(3, 1, func(*rand.Rand) (int64, int64) { return 600, 512 })
	pods[1].Labels["app"] = "alone"
	pods[2].Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{workload.AffinityTerm(offerings.LabelHostname, "alone")},
	}}
	types := workload.KarpenterCatalog()[:2] // 1 and 2 vCPUs
	return Workload{Name: "small", Pods: pods, InstanceTypes: types}
}

func TestValidateRejectsDishonestPlans(t *testing.T) {
	w := smallWorkload()
	p0, p1, p2 := w.Pods[0], w.Pods[1], w.Pods[2]
	all := func(string, string) bool { return true }
	one, two := w.InstanceTypes[:1], w.InstanceTypes[1:]
	var pool scheduling.Requirements
	for name, tc := range map[string]struct {
		plan    Plan
		wantErr string
	}{
		"valid":             {Plan{Nodes: []Node{{Types: two, Allows: all, Pods: []*corev1.Pod{p0, p1}}, {Types: one, Allows: all, Pods: []*corev1.Pod{p2}}}}, ""},
		"valid, one failed": {Plan{Nodes: []Node{{Types: two, Allows: all, Pods: []*corev1.Pod{p0, p1}}}, Unschedulable: []*corev1.Pod{p2}}, ""},
		"a pod missing":     {Plan{Nodes: []Node{{Types: two, Allows: all, Pods: []*corev1.Pod{p0, p1}}}}, "neither placed nor reported"},
		"a pod twice":       {Plan{Nodes: []Node{{Types: two, Allows: all, Pods: []*corev1.Pod{p0, p1}}, {Types: one, Allows: all, Pods: []*corev1.Pod{p2}}}, Unschedulable: []*corev1.Pod{p1}}, "placed twice"},
		"overfull node":     {Plan{Nodes: []Node{{Types: one, Allows: all, Pods: []*corev1.Pod{p0, p1}}, {Types: one, Allows: all, Pods: []*corev1.Pod{p2}}}}, "do not fit"},
		"anti-affinity":     {Plan{Nodes: []Node{{Types: two, Allows: all, Pods: []*corev1.Pod{p1, p2}}, {Types: one, Allows: all, Pods: []*corev1.Pod{p0}}}}, "anti-affinity"},
	} {
		priced, _, err := tc.plan.Price(&pool, nil)
		if err != nil {
			t.Fatalf("%s: pricing: %v", name, err)
		}
		err = tc.plan.Validate(w, priced)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one saying %q", name, err, tc.wantErr)
		}
	}
}

func TestPriceTakesTheCheapestOfferingTheNodeAndPoolAllow(t *testing.T) {
	w := smallWorkload()
	onDemand, err := scheduling.NewRequirements(capacityTypes(offerings.CapacityTypeOnDemand))
	if err != nil {
		t.Fatal(err)
	}
	var unrestricted scheduling.Requirements
	zone3 := func(key, value string) bool { return key != offerings.LabelZone || value == "test-zone-3" }
	all := func(string, string) bool { return true }
	// fake-it-2 costs $0.10/h on-demand and $0.04/h Spot (zones 1 and 2
	// only); the root volume adds 20 GiB x $0.08 / 730 h.
	root := 20 * 0.08 / 730
	for name, tc := range map[string]struct {
		pool   *scheduling.Requirements
		allows func(string, string) bool
		want   float64
	}{
		"spot":                          {&unrestricted, all, 0.04 + root},
		"pool wants on-demand":          {&onDemand, all, 0.10 + root},
		"node pinned to spot-less zone": {&unrestricted, zone3, 0.10 + root},
	} {
		plan := Plan{Nodes: []Node{{Types: w.InstanceTypes[1:], Allows: tc.allows, Pods: w.Pods[:1]}}}
		_, bill, err := plan.Price(tc.pool, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if math.Abs(bill-tc.want) > 1e-9 {
			t.Errorf("%s: bill %.6f, want %.6f", name, bill, tc.want)
		}
	}
}

func TestFleetpackPlanPricesAsItsClaimsDo(t *testing.T) {
	ws, err := Workloads([]int{200})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		pool, err := scheduling.NewRequirements(w.Requirements...)
		if err != nil {
			t.Fatal(err)
		}
		fp, err := newFleetpackSolver(w, pool)
		if err != nil {
			t.Fatal(err)
		}
		sp, err := fp.solve()
		if err != nil {
			t.Fatal(err)
		}
		plan, err := fleetpackPlan(sp)
		if err != nil {
			t.Fatal(err)
		}
		_, bill, err := plan.Price(&pool, w.DaemonSetPods)
		if err != nil {
			t.Fatalf("%s: %v", w.Name, err)
		}
		var want float64
		for _, c := range sp.NodeClaims {
			want += c.Price()
		}
		if math.Abs(bill-want) > 1e-6 {
			t.Errorf("%s: the comparison bills fleetpack's plan $%.6f/h, its claims say $%.6f/h", w.Name, bill, want)
		}
	}
}

// TestCompareSmallWorkloads runs the comparison on its 1000-pod workloads
// and the microservices, once each, as CI does: both schedulers' plans must
// be valid and agree on unschedulable pods, and each line must have the
// documented form. The figures themselves are benchmarks' business
// (docs/benchmarks.md), not a test's.
func TestCompareSmallWorkloads(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := runMain(context.Background(), []string{"-sizes", "1000", "-reps", "1", "-v"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	t.Logf("\n%s%s", out.String(), errOut.String())
	line := regexp.MustCompile(`^workload=(\S+) karpenter_bill=\d+\.\d{4} fleetpack_bill=\d+\.\d{4} bill_ratio=\d+\.\d{3} karpenter_nodes=\d+ fleetpack_nodes=\d+ speed_ratio=\d+\.\d single_type_bill=(\d+\.\d{4}|n/a)$`)
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q is not in the documented form", l)
		}
		names = append(names, m[1])
	}
	want := "karpentermix-1000 karpentermix-1000+ds mixed-1000 mixed-1000+ds mixed-cmr-1000 mixed-cmr-1000+ds microservices microservices+ds"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("workloads %s, want %s", got, want)
	}
}
