package scheduling

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/offerings"
)

const (
	zoneKey     = offerings.LabelZone
	hostnameKey = offerings.LabelHostname
	hard        = corev1.DoNotSchedule
	soft        = corev1.ScheduleAnyway
)

// topoCase is one topology behaviour, stated as what a user sees in the
// plan. Fields left zero are not checked, except that no pod may be
// unschedulable unless unschedulable says so.
type topoCase struct {
	name       string
	pods       []*corev1.Pod
	nodes      []ExistingNode
	namespaces []*corev1.Namespace
	// catalog adjusts the test catalog (offerings' availability) before the
	// templates are built from it.
	catalog func([]*offerings.InstanceType)
	// templates defaults to defaultTemplate(catalog).
	templates func([]*offerings.InstanceType) []*NodeTemplate

	// zones is how many pods land in each zone: on existing nodes by their
	// zone label, on claims by the claim's zone requirement, which must then
	// be narrowed to one zone.
	zones map[string]int
	// claimSizes is the number of pods on each claim, largest first.
	claimSizes []int
	// onNodes lists the pods placed on existing nodes, by node.
	onNodes map[string][]string
	// unschedulable is how many pods stay pending; each reason must contain
	// reason.
	unschedulable int
	reason        string
	// check asserts anything else.
	check func(t *testing.T, plan *Plan)
}

func runTopoCases(t *testing.T, cases []topoCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			catalog := testCatalog()
			if tc.catalog != nil {
				tc.catalog(catalog)
			}
			in := Input{Pods: tc.pods, Nodes: tc.nodes, Namespaces: tc.namespaces}
			if tc.templates != nil {
				in.Templates = tc.templates(catalog)
			} else {
				in.Templates = []*NodeTemplate{defaultTemplate(catalog)}
			}
			plan, err := Solve(in)
			if err != nil {
				t.Fatalf("Solve: %v", err)
			}
			checkPlan(t, in, plan)
			defer func() {
				if t.Failed() {
					t.Logf("plan:\n%s", mustYAML(summarizePlan(plan, 3)))
				}
			}()
			if tc.zones != nil {
				if got := zoneCounts(t, in, plan); !maps.Equal(got, tc.zones) {
					t.Errorf("pods per zone %v, want %v", got, tc.zones)
				}
			}
			if tc.claimSizes != nil {
				var sizes []int
				for _, c := range plan.NodeClaims {
					sizes = append(sizes, len(c.Pods))
				}
				slices.Sort(sizes)
				slices.Reverse(sizes)
				if !slices.Equal(sizes, tc.claimSizes) {
					t.Errorf("pods per claim %v, want %v", sizes, tc.claimSizes)
				}
			}
			placed := map[string][]string{}
			for _, np := range plan.ExistingNodes {
				placed[np.Node.Name] = sortedCopy(podNames(np.Pods))
			}
			want := map[string][]string{}
			for n, ps := range tc.onNodes {
				want[n] = sortedCopy(ps)
			}
			if !reflect.DeepEqual(placed, want) {
				t.Errorf("placed on existing nodes %v, want %v", placed, want)
			}
			if len(plan.Unschedulable) != tc.unschedulable {
				t.Errorf("%d pods unschedulable, want %d", len(plan.Unschedulable), tc.unschedulable)
			}
			for _, e := range plan.Unschedulable {
				if tc.reason == "" || !strings.Contains(e.Error(), tc.reason) {
					t.Errorf("unschedulable: %s; want a reason containing %q", e.Error(), tc.reason)
				}
			}
			if tc.check != nil {
				tc.check(t, plan)
			}
		})
	}
}

// claimZone is the one zone a claim's requirements allow, or "" when they
// allow several (or any).
func claimZone(c *NodeClaim) string {
	if r := c.Requirements.Get(zoneKey); r != nil {
		if vals, finite := r.Values(); finite && len(vals) == 1 {
			return vals[0]
		}
	}
	return ""
}

// zoneCounts counts placed pods per zone; a claim must have its zone
// requirement narrowed to one zone.
func zoneCounts(t *testing.T, in Input, plan *Plan) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, c := range plan.NodeClaims {
		z := claimZone(c)
		if z == "" {
			t.Errorf("claim %s (pods %v) has zone requirement %v, want one zone", c.Hostname, podNames(c.Pods), c.Requirements.Get(zoneKey))
			continue
		}
		out[z] += len(c.Pods)
	}
	for _, np := range plan.ExistingNodes {
		out[np.Node.Labels[zoneKey]] += len(np.Pods)
	}
	return out
}

// zoneNode is an existing node in zone with cpu and 8Gi, running bound.
func zoneNode(name, zone, cpu string, bound ...*corev1.Pod) ExistingNode {
	return ExistingNode{
		Node: makeNode(name, cpu, "8Gi", map[string]string{zoneKey: zone, hostnameKey: name, offerings.LabelArch: "amd64"}),
		Pods: bound,
	}
}

func sel(kv ...string) map[string]string {
	out := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func namespace(name string, kv ...string) *corev1.Namespace {
	labels := sel(kv...)
	labels[corev1.LabelMetadataName] = name
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func nodeLimit(n int64) func([]*offerings.InstanceType) []*NodeTemplate {
	return func(catalog []*offerings.InstanceType) []*NodeTemplate {
		t := defaultTemplate(catalog)
		t.Limits = corev1.ResourceList{ResourceNodes: *resource.NewQuantity(n, resource.DecimalSI)}
		return []*NodeTemplate{t}
	}
}

func TestTopologySpread(t *testing.T) {
	web := sel("app", "web")
	zoneSpread := func(opts ...spreadOpt) podOpt { return withSpread(zoneKey, 1, hard, web, opts...) }
	// A zone none of whose offerings is available.
	noZone1c := func(catalog []*offerings.InstanceType) { without(catalog, "test-1c") }
	runTopoCases(t, []topoCase{
		{
			name:  "9 replicas spread over 3 zones with maxSkew 1 land 3/3/3",
			pods:  pods("web", 9, "500m", "1Gi", withLabels("app", "web"), zoneSpread()),
			zones: map[string]int{"test-1a": 3, "test-1b": 3, "test-1c": 3},
		},
		{
			name:  "maxSkew 2 still spreads 9 replicas evenly: no zone may lead the emptiest by more than 2",
			pods:  pods("web", 9, "500m", "1Gi", withLabels("app", "web"), withSpread(zoneKey, 2, hard, web)),
			check: zoneSkewAtMost(2),
		},
		{
			name:    "a zone without available offerings is still a domain: one replica per other zone, the rest pending",
			catalog: noZone1c,
			pods:    pods("web", 9, "500m", "1Gi", withLabels("app", "web"), zoneSpread(minDomains(3))),
			zones:   map[string]int{"test-1a": 1, "test-1b": 1},
			// The message, word for word.
			unschedulable: 7,
			reason:        "topology spread on topology.kubernetes.io/zone would exceed maxSkew 1 (zone test-1c has no available offering)",
		},
		{
			name:          "minDomains above the number of zones makes the global minimum 0: one replica per zone",
			pods:          pods("web", 9, "500m", "1Gi", withLabels("app", "web"), zoneSpread(minDomains(4))),
			zones:         map[string]int{"test-1a": 1, "test-1b": 1, "test-1c": 1},
			unschedulable: 6,
			reason:        "topology spread on topology.kubernetes.io/zone would exceed maxSkew 1",
		},
		{
			name:  "pods the selector does not pick neither count nor are bound",
			pods:  append(pods("web", 3, "500m", "1Gi", withLabels("app", "web"), zoneSpread()), pods("batch", 6, "500m", "1Gi", withLabels("app", "batch"))...),
			check: zonesOfApp("web", map[string]int{"test-1a": 1, "test-1b": 1, "test-1c": 1}),
		},
		{
			name: "pods already running count: 2 replicas in test-1a send new ones to test-1b and test-1c",
			nodes: []ExistingNode{zoneNode("node-a", "test-1a", "2",
				makePod("old-1", "1", "", withLabels("app", "web")), makePod("old-2", "1", "", withLabels("app", "web")))},
			pods:  pods("web", 4, "500m", "1Gi", withLabels("app", "web"), zoneSpread()),
			zones: map[string]int{"test-1b": 2, "test-1c": 2},
		},
		{
			name: "finished pods on existing nodes do not count",
			nodes: []ExistingNode{zoneNode("node-a", "test-1a", "2",
				func() *corev1.Pod {
					p := makePod("done", "1", "", withLabels("app", "web"))
					p.Status.Phase = corev1.PodSucceeded
					return p
				}())},
			pods:    pods("web", 3, "500m", "1Gi", withLabels("app", "web"), zoneSpread()),
			zones:   map[string]int{"test-1a": 1, "test-1b": 1, "test-1c": 1},
			onNodes: map[string][]string{"node-a": {"web-a"}},
		},
		{
			name:    "existing nodes with room take spread pods when the skew allows",
			nodes:   []ExistingNode{zoneNode("node-a", "test-1a", "8")},
			pods:    pods("web", 3, "500m", "1Gi", withLabels("app", "web"), zoneSpread()),
			zones:   map[string]int{"test-1a": 1, "test-1b": 1, "test-1c": 1},
			onNodes: map[string][]string{"node-a": {"web-a"}},
		},
		{
			name:  "ScheduleAnyway is relaxed rather than failing: pods bound to test-1a all land there",
			pods:  pods("web", 4, "500m", "1Gi", withLabels("app", "web"), withNodeSelector(zoneKey, "test-1a"), withSpread(zoneKey, 1, soft, web, nodeAffinityPolicy(corev1.NodeInclusionPolicyIgnore))),
			zones: map[string]int{"test-1a": 4},
		},
		{
			name:          "DoNotSchedule with nodeAffinityPolicy Ignore counts the zones the pods cannot use: only one is placed",
			pods:          pods("web", 4, "500m", "1Gi", withLabels("app", "web"), withNodeSelector(zoneKey, "test-1a"), zoneSpread(nodeAffinityPolicy(corev1.NodeInclusionPolicyIgnore))),
			zones:         map[string]int{"test-1a": 1},
			unschedulable: 3,
			reason:        "topology spread on topology.kubernetes.io/zone would exceed maxSkew 1",
		},
		{
			name:  "DoNotSchedule with the default nodeAffinityPolicy Honor only counts the zones the pods may use",
			pods:  pods("web", 4, "500m", "1Gi", withLabels("app", "web"), withNodeSelector(zoneKey, "test-1a"), zoneSpread()),
			zones: map[string]int{"test-1a": 4},
		},
		{
			name: "nodeTaintsPolicy Honor leaves out the zone only a tainted nodepool serves",
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				return taintedZonePools(catalog)
			},
			pods:  pods("web", 4, "500m", "1Gi", withLabels("app", "web"), zoneSpread(nodeTaintsPolicy(corev1.NodeInclusionPolicyHonor))),
			zones: map[string]int{"test-1a": 2, "test-1b": 2},
		},
		{
			name: "the default nodeTaintsPolicy Ignore counts that zone, which stays empty",
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				return taintedZonePools(catalog)
			},
			pods:          pods("web", 4, "500m", "1Gi", withLabels("app", "web"), zoneSpread()),
			zones:         map[string]int{"test-1a": 1, "test-1b": 1},
			unschedulable: 2,
			reason:        "topology spread on topology.kubernetes.io/zone would exceed maxSkew 1",
		},
		{
			name:       "hostname spread with maxSkew 1: one replica per node",
			pods:       pods("web", 4, "500m", "1Gi", withLabels("app", "web"), withSpread(hostnameKey, 1, hard, web)),
			claimSizes: []int{1, 1, 1, 1},
		},
		{
			name:       "hostname spread with maxSkew 2: two replicas per node",
			pods:       pods("web", 4, "500m", "1Gi", withLabels("app", "web"), withSpread(hostnameKey, 2, hard, web)),
			claimSizes: []int{2, 2},
		},
		{
			name:       "hostname spread ScheduleAnyway under a node limit of 1 is relaxed onto one node",
			templates:  nodeLimit(1),
			pods:       pods("web", 4, "500m", "1Gi", withLabels("app", "web"), withSpread(hostnameKey, 1, soft, web)),
			claimSizes: []int{4},
		},
		{
			name:          "hostname spread DoNotSchedule under a node limit of 1 leaves the rest pending",
			templates:     nodeLimit(1),
			pods:          pods("web", 4, "500m", "1Gi", withLabels("app", "web"), withSpread(hostnameKey, 1, hard, web)),
			claimSizes:    []int{1},
			unschedulable: 3,
			// The limit is what a new node would break; the spread is
			// what keeps them off the one there is.
			reason: "node limit reached",
		},
		{
			name: "capacity-type spread puts as many on spot as on on-demand",
			pods: pods("web", 4, "500m", "1Gi", withLabels("app", "web"), withSpread(offerings.LabelCapacityType, 1, hard, web)),
			check: func(t *testing.T, plan *Plan) {
				per := map[string]int{}
				for _, c := range plan.NodeClaims {
					_, cts := claimOfferingSets(c)
					if len(cts) != 1 {
						t.Errorf("claim %s may launch as %v, want one capacity type", c.Hostname, cts)
						continue
					}
					per[cts[0]] += len(c.Pods)
				}
				if want := map[string]int{"spot": 2, "on-demand": 2}; !maps.Equal(per, want) {
					t.Errorf("pods per capacity type %v, want %v", per, want)
				}
			},
		},
		{
			name: "spread over a custom label the nodepool requires (rack In r1, r2) uses both racks",
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				t := defaultTemplate(catalog)
				t.Requirements = mustRequirements(req("rack", corev1.NodeSelectorOpIn, "r1", "r2"))
				return []*NodeTemplate{t}
			},
			pods: pods("web", 4, "500m", "1Gi", withLabels("app", "web"), withSpread("rack", 1, hard, web)),
			check: func(t *testing.T, plan *Plan) {
				per := map[string]int{}
				for _, c := range plan.NodeClaims {
					per[c.Labels()["rack"]] += len(c.Pods)
				}
				if want := map[string]int{"r1": 2, "r2": 2}; !maps.Equal(per, want) {
					t.Errorf("pods per rack %v, want %v", per, want)
				}
			},
		},
		{
			name: "spread over the nodepools' own labels uses both pools",
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				a, b := defaultTemplate(catalog), defaultTemplate(catalog)
				a.NodePool, a.Labels = "blue", map[string]string{"pool": "blue"}
				b.NodePool, b.Labels = "green", map[string]string{"pool": "green"}
				return []*NodeTemplate{a, b}
			},
			pods: pods("web", 4, "500m", "1Gi", withLabels("app", "web"), withSpread("pool", 1, hard, web)),
			check: func(t *testing.T, plan *Plan) {
				per := map[string]int{}
				for _, c := range plan.NodeClaims {
					per[c.Template.NodePool] += len(c.Pods)
				}
				if want := map[string]int{"blue": 2, "green": 2}; !maps.Equal(per, want) {
					t.Errorf("pods per nodepool %v, want %v", per, want)
				}
			},
		},
		{
			name: "matchLabelKeys: the old revision's pods in test-1a do not count for the new revision",
			nodes: []ExistingNode{zoneNode("node-a", "test-1a", "3",
				makePod("old-1", "1", "", withLabels("app", "web", "hash", "v1")),
				makePod("old-2", "1", "", withLabels("app", "web", "hash", "v1")),
				makePod("old-3", "1", "", withLabels("app", "web", "hash", "v1")))},
			pods:  pods("web", 3, "500m", "1Gi", withLabels("app", "web", "hash", "v2"), zoneSpread(matchLabelKeys("hash"))),
			zones: map[string]int{"test-1a": 1, "test-1b": 1, "test-1c": 1},
		},
		{
			name: "without matchLabelKeys the old revision's pods keep the new one out of test-1a",
			nodes: []ExistingNode{zoneNode("node-a", "test-1a", "3",
				makePod("old-1", "1", "", withLabels("app", "web", "hash", "v1")),
				makePod("old-2", "1", "", withLabels("app", "web", "hash", "v1")),
				makePod("old-3", "1", "", withLabels("app", "web", "hash", "v1")))},
			pods: pods("web", 3, "500m", "1Gi", withLabels("app", "web", "hash", "v2"), zoneSpread()),
			check: func(t *testing.T, plan *Plan) {
				for _, c := range plan.NodeClaims {
					if claimZone(c) == "test-1a" {
						t.Errorf("claim %s in test-1a, which already has 3 of the group", c.Hostname)
					}
				}
			},
		},
		{
			// Regression: the unconstrained pod's claim used to stay free to
			// launch in any zone, uncounted, until a spread pod joined it.
			name:  "a pod the selector picks but that carries no constraint is counted in its claim's zone",
			pods:  append(pods("old", 1, "2", "1Gi", withLabels("app", "web")), pods("web", 2, "500m", "1Gi", withLabels("app", "web"), zoneSpread())...),
			zones: map[string]int{"test-1a": 1, "test-1b": 1, "test-1c": 1},
		},
		{
			name:       "zone and hostname spread together: one replica per node, two nodes per zone",
			pods:       pods("web", 6, "500m", "1Gi", withLabels("app", "web"), zoneSpread(), withSpread(hostnameKey, 1, hard, web)),
			zones:      map[string]int{"test-1a": 2, "test-1b": 2, "test-1c": 2},
			claimSizes: []int{1, 1, 1, 1, 1, 1},
		},
		{
			name:       "hostname spread counts the pods already on an existing node",
			nodes:      []ExistingNode{zoneNode("node-a", "test-1a", "8", makePod("old", "500m", "", withLabels("app", "web")))},
			pods:       pods("web", 2, "500m", "1Gi", withLabels("app", "web"), withSpread(hostnameKey, 1, hard, web)),
			claimSizes: []int{1, 1},
		},
		{
			name:  "an existing node without a zone label is no zone: hard zone spread cannot use it",
			nodes: []ExistingNode{{Node: makeNode("unzoned", "8", "16Gi", nil)}},
			pods:  pods("web", 3, "500m", "1Gi", withLabels("app", "web"), zoneSpread()),
			zones: map[string]int{"test-1a": 1, "test-1b": 1, "test-1c": 1},
		},
		{
			// Regression: nodeAffinityPolicy Honor counted the preferred
			// zone as the only domain, and all three went to test-1c.
			name:  "a preferred zone does not shrink the zones hard spread counts",
			pods:  pods("web", 3, "500m", "1Gi", withLabels("app", "web"), withPreferred(10, req(zoneKey, corev1.NodeSelectorOpIn, "test-1c")), zoneSpread()),
			zones: map[string]int{"test-1a": 1, "test-1b": 1, "test-1c": 1},
		},
		{
			// Node preferences are relaxed before ScheduleAnyway spread:
			// the second pod gives up test-1c, not the spread.
			name: "preferred node affinity is relaxed before ScheduleAnyway spread",
			pods: pods("web", 2, "500m", "1Gi", withLabels("app", "web"), withPreferred(10, req(zoneKey, corev1.NodeSelectorOpIn, "test-1c")), withSpread(zoneKey, 1, soft, web)),
			check: func(t *testing.T, plan *Plan) {
				zones := map[string]int{}
				for _, c := range plan.NodeClaims {
					zones[claimZone(c)] += len(c.Pods)
				}
				if zones["test-1c"] != 1 || len(zones) != 2 || zones[""] != 0 {
					t.Errorf("pods per zone %v, want one in test-1c and one elsewhere", zones)
				}
			},
		},
		{
			name: "spread counts only the pod's own namespace",
			nodes: []ExistingNode{zoneNode("node-a", "test-1a", "2",
				makePod("other-1", "1", "", withLabels("app", "web"), withNamespace("other")),
				makePod("other-2", "1", "", withLabels("app", "web"), withNamespace("other")))},
			pods:  pods("web", 3, "500m", "1Gi", withLabels("app", "web"), zoneSpread()),
			zones: map[string]int{"test-1a": 1, "test-1b": 1, "test-1c": 1},
		},
	})
}

// taintedZonePools is a nodepool in test-1a and test-1b, and a tainted one
// (that the test pods do not tolerate) in test-1c.
func taintedZonePools(catalog []*offerings.InstanceType) []*NodeTemplate {
	open, tainted := defaultTemplate(catalog), defaultTemplate(catalog)
	open.Requirements = mustRequirements(req(zoneKey, corev1.NodeSelectorOpIn, "test-1a", "test-1b"))
	tainted.NodePool = "tainted"
	tainted.Requirements = mustRequirements(req(zoneKey, corev1.NodeSelectorOpIn, "test-1c"))
	tainted.Taints = []corev1.Taint{taint("dedicated", "gpu", corev1.TaintEffectNoSchedule)}
	return []*NodeTemplate{open, tainted}
}

// zoneSkewAtMost checks that the placed pods' zone counts differ by at most
// skew (every pod is placed in these cases).
func zoneSkewAtMost(skew int) func(*testing.T, *Plan) {
	return func(t *testing.T, plan *Plan) {
		per := map[string]int{}
		for _, z := range testZones {
			per[z] = 0
		}
		for _, c := range plan.NodeClaims {
			per[claimZone(c)] += len(c.Pods)
		}
		lo, hi := 1<<30, 0
		for _, n := range per {
			lo, hi = min(lo, n), max(hi, n)
		}
		if hi-lo > skew {
			t.Errorf("pods per zone %v differ by %d, over maxSkew %d", per, hi-lo, skew)
		}
	}
}

// zonesOfApp checks where the pods labelled app=name went.
func zonesOfApp(name string, want map[string]int) func(*testing.T, *Plan) {
	return func(t *testing.T, plan *Plan) {
		got := map[string]int{}
		for _, c := range plan.NodeClaims {
			for _, p := range c.Pods {
				if p.Labels["app"] == name {
					got[claimZone(c)]++
				}
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("app %s pods per zone %v, want %v", name, got, want)
		}
	}
}

func TestTopologyPodAffinity(t *testing.T) {
	x := sel("app", "x")
	db := sel("app", "db")
	// A full node in test-1b running the database.
	dbNode := zoneNode("node-b", "test-1b", "1", makePod("db-0", "1", "", withLabels("app", "db")))
	namespaces := []*corev1.Namespace{namespace("data", "team", "storage"), namespace("other", "team", "web")}
	// Full nodes running a db pod in namespace data (test-1b) and other (test-1c).
	dbNodes := []ExistingNode{
		zoneNode("node-b", "test-1b", "1", makePod("db-data", "1", "", withLabels("app", "db"), withNamespace("data"))),
		zoneNode("node-c", "test-1c", "1", makePod("db-other", "1", "", withLabels("app", "db"), withNamespace("other"))),
	}
	runTopoCases(t, []topoCase{
		{
			name:       "required hostname anti-affinity to their own label puts each replica on its own claim",
			pods:       pods("x", 4, "500m", "1Gi", withLabels("app", "x"), withPodAffinity(requiredAntiAffinity, hostnameKey, x)),
			claimSizes: []int{1, 1, 1, 1},
		},
		{
			name:       "preferred hostname anti-affinity is honoured when nodes can be added",
			pods:       pods("x", 4, "500m", "1Gi", withLabels("app", "x"), withPodAffinity(preferredAntiAffinity, hostnameKey, x)),
			claimSizes: []int{1, 1, 1, 1},
		},
		{
			name:       "preferred hostname anti-affinity under a node limit of 1 is relaxed: all on one claim",
			templates:  nodeLimit(1),
			pods:       pods("x", 4, "500m", "1Gi", withLabels("app", "x"), withPodAffinity(preferredAntiAffinity, hostnameKey, x)),
			claimSizes: []int{4},
		},
		{
			// Preferred affinity (to a pod on a full node) is dropped
			// before preferred anti-affinity, which still spreads them.
			name:  "preferred pod affinity is relaxed before preferred anti-affinity",
			nodes: []ExistingNode{dbNode},
			pods: pods("x", 2, "500m", "1Gi", withLabels("app", "x"),
				withPodAffinity(preferredAffinity, hostnameKey, db), withPodAffinity(preferredAntiAffinity, hostnameKey, x)),
			claimSizes: []int{1, 1},
		},
		{
			name:          "required hostname anti-affinity under a node limit of 2 places two and says why the rest wait",
			templates:     nodeLimit(2),
			pods:          pods("x", 4, "500m", "1Gi", withLabels("app", "x"), withPodAffinity(requiredAntiAffinity, hostnameKey, x)),
			claimSizes:    []int{1, 1},
			unschedulable: 2,
			reason:        "node limit reached",
		},
		{
			name:  "required zone anti-affinity: one replica per zone, the fourth pending",
			pods:  pods("x", 4, "500m", "1Gi", withLabels("app", "x"), withPodAffinity(requiredAntiAffinity, zoneKey, x)),
			zones: map[string]int{"test-1a": 1, "test-1b": 1, "test-1c": 1},
			// Which zone the fourth one was turned away from depends on
			// the order tried; the constraint is what matters.
			unschedulable: 1,
			reason:        "pod anti-affinity on topology.kubernetes.io/zone",
		},
		{
			name:       "anti-affinity with no label selector selects nothing: replicas share a claim",
			pods:       pods("x", 3, "500m", "1Gi", withLabels("app", "x"), withPodAffinity(requiredAntiAffinity, hostnameKey, nil)),
			claimSizes: []int{3},
		},
		{
			name:    "zone anti-affinity allows an existing node without a zone label",
			nodes:   []ExistingNode{{Node: makeNode("unzoned", "8", "16Gi", nil), Pods: []*corev1.Pod{makePod("x-old", "500m", "", withLabels("app", "x"))}}},
			pods:    []*corev1.Pod{makePod("x-new", "500m", "1Gi", withLabels("app", "x"), withPodAffinity(requiredAntiAffinity, zoneKey, x))},
			onNodes: map[string][]string{"unzoned": {"x-new"}},
		},
		{
			name: "matchLabelKeys on anti-affinity: the old revision's pod does not keep the new one off its node",
			nodes: []ExistingNode{zoneNode("node-a", "test-1a", "8",
				makePod("x-old", "500m", "", withLabels("app", "x", "hash", "v1")))},
			pods: []*corev1.Pod{makePod("x-new", "500m", "1Gi", withLabels("app", "x", "hash", "v2"),
				withPodAffinity(requiredAntiAffinity, hostnameKey, x, func(t *corev1.PodAffinityTerm) { t.MatchLabelKeys = []string{"hash"} }))},
			onNodes: map[string][]string{"node-a": {"x-new"}},
		},
		{
			name: "without matchLabelKeys the old revision's pod keeps the new one off its node",
			nodes: []ExistingNode{zoneNode("node-a", "test-1a", "8",
				makePod("x-old", "500m", "", withLabels("app", "x", "hash", "v1")))},
			pods:       []*corev1.Pod{makePod("x-new", "500m", "1Gi", withLabels("app", "x", "hash", "v2"), withPodAffinity(requiredAntiAffinity, hostnameKey, x))},
			claimSizes: []int{1},
		},
		{
			name:  "preferred affinity that the pod's node selector rules out is relaxed",
			nodes: []ExistingNode{dbNode},
			pods:  []*corev1.Pod{makePod("web", "500m", "1Gi", withNodeSelector(zoneKey, "test-1a"), withPodAffinity(preferredAffinity, zoneKey, db))},
			zones: map[string]int{"test-1a": 1},
		},
		{
			name:  "zonal affinity to a pod on a full existing node in test-1b narrows the new claim to test-1b",
			nodes: []ExistingNode{dbNode},
			pods:  []*corev1.Pod{makePod("web", "500m", "1Gi", withLabels("app", "web"), withPodAffinity(requiredAffinity, zoneKey, db))},
			zones: map[string]int{"test-1b": 1},
		},
		{
			name:  "hostname affinity to a pod on a node with room puts the pod on that node",
			nodes: []ExistingNode{zoneNode("node-b", "test-1b", "4", makePod("db-0", "1", "", withLabels("app", "db")))},
			pods: []*corev1.Pod{
				makePod("web-1", "500m", "1Gi", withLabels("app", "web"), withPodAffinity(requiredAffinity, hostnameKey, db)),
				makePod("web-2", "500m", "1Gi", withLabels("app", "web"), withPodAffinity(requiredAffinity, hostnameKey, db)),
			},
			onNodes: map[string][]string{"node-b": {"web-1", "web-2"}},
		},
		{
			name:          "hostname affinity to a pod on a full node cannot be met by a new node",
			nodes:         []ExistingNode{dbNode},
			pods:          []*corev1.Pod{makePod("web", "500m", "1Gi", withLabels("app", "web"), withPodAffinity(requiredAffinity, hostnameKey, db))},
			unschedulable: 1,
			reason:        "pod affinity on kubernetes.io/hostname: no matching pod in a planned node",
		},
		{
			name:  "zonal affinity to pods placed earlier in the same solve follows them",
			pods:  append(pods("db", 1, "3", "1Gi", withLabels("app", "db"), withNodeSelector(zoneKey, "test-1c")), pods("web", 3, "500m", "1Gi", withLabels("app", "web"), withPodAffinity(requiredAffinity, zoneKey, db))...),
			zones: map[string]int{"test-1c": 4},
		},
		{
			// The db pod has no constraint of its own; its claim still gets
			// one zone so that the affinity can find it.
			name: "zonal affinity to an unconstrained pod placed earlier in the same solve joins its zone",
			pods: []*corev1.Pod{
				makePod("db", "3", "1Gi", withLabels("app", "db")),
				makePod("web", "500m", "1Gi", withLabels("app", "web"), withPodAffinity(requiredAffinity, zoneKey, db)),
			},
			check: func(t *testing.T, plan *Plan) {
				zoneOf := map[string]string{}
				for _, c := range plan.NodeClaims {
					for _, p := range c.Pods {
						zoneOf[p.Name] = claimZone(c)
					}
				}
				if zoneOf["web"] == "" || zoneOf["web"] != zoneOf["db"] {
					t.Errorf("web in zone %q, db in %q; want the same zone", zoneOf["web"], zoneOf["db"])
				}
			},
		},
		{
			name:          "affinity to a selector nothing matches, for a pod outside its own selector, stays pending",
			pods:          []*corev1.Pod{makePod("web", "500m", "1Gi", withLabels("app", "web"), withPodAffinity(requiredAffinity, zoneKey, db))},
			unschedulable: 1,
			reason:        "pod affinity on topology.kubernetes.io/zone: no pod matches app=db",
		},
		{
			name:          "affinity with no label selector matches nothing",
			pods:          []*corev1.Pod{makePod("web", "500m", "1Gi", withLabels("app", "web"), withPodAffinity(requiredAffinity, zoneKey, nil))},
			unschedulable: 1,
			reason:        "pod affinity",
		},
		{
			name: "self-affinity with no match anywhere: the first of the group is placed and the rest follow it",
			pods: pods("cache", 3, "500m", "1Gi", withLabels("app", "cache"), withPodAffinity(requiredAffinity, zoneKey, sel("app", "cache"))),
			check: func(t *testing.T, plan *Plan) {
				zones := map[string]int{}
				for _, c := range plan.NodeClaims {
					zones[claimZone(c)] += len(c.Pods)
				}
				if len(zones) != 1 || zones[""] != 0 {
					t.Errorf("pods per zone %v, want all three in one zone", zones)
				}
			},
		},
		{
			name:  "preferred zonal affinity is honoured when it can be",
			nodes: []ExistingNode{dbNode},
			pods:  []*corev1.Pod{makePod("web", "500m", "1Gi", withLabels("app", "web"), withPodAffinity(preferredAffinity, zoneKey, db))},
			zones: map[string]int{"test-1b": 1},
		},
		{
			name:       "preferred affinity to nothing is relaxed",
			pods:       []*corev1.Pod{makePod("web", "500m", "1Gi", withLabels("app", "web"), withPodAffinity(preferredAffinity, zoneKey, db))},
			claimSizes: []int{1},
		},
		{
			name:       "namespaceSelector picks the namespace whose labels match",
			namespaces: namespaces,
			nodes:      dbNodes,
			pods:       []*corev1.Pod{makePod("web", "500m", "1Gi", withPodAffinity(requiredAffinity, zoneKey, db, namespaceSelector("team", "storage")))},
			zones:      map[string]int{"test-1b": 1},
		},
		{
			name:       "namespaces picks the namespace named",
			namespaces: namespaces,
			nodes:      dbNodes,
			pods:       []*corev1.Pod{makePod("web", "500m", "1Gi", withPodAffinity(requiredAffinity, zoneKey, db, inNamespaces("other")))},
			zones:      map[string]int{"test-1c": 1},
		},
		{
			name:       "namespaces and a namespaceSelector that matches nothing: the union is the namespace named",
			namespaces: namespaces,
			nodes:      dbNodes,
			pods:       []*corev1.Pod{makePod("web", "500m", "1Gi", withPodAffinity(requiredAffinity, zoneKey, db, inNamespaces("other"), namespaceSelector("team", "none")))},
			zones:      map[string]int{"test-1c": 1},
		},
		{
			name:       "an empty namespaceSelector picks every namespace",
			namespaces: namespaces,
			nodes:      dbNodes,
			pods:       []*corev1.Pod{makePod("web", "500m", "1Gi", withPodAffinity(requiredAffinity, zoneKey, db, namespaceSelector()))},
			check: func(t *testing.T, plan *Plan) {
				if len(plan.NodeClaims) != 1 || (claimZone(plan.NodeClaims[0]) != "test-1b" && claimZone(plan.NodeClaims[0]) != "test-1c") {
					t.Errorf("want one claim in test-1b or test-1c")
				}
			},
		},
		{
			name:          "without namespaces the term looks only in the pod's own namespace",
			namespaces:    namespaces,
			nodes:         dbNodes,
			pods:          []*corev1.Pod{makePod("web", "500m", "1Gi", withPodAffinity(requiredAffinity, zoneKey, db))},
			unschedulable: 1,
			reason:        "pod affinity",
		},
		{
			// Regression: a listed namespace built without the name label
			// the API server always sets did not match a selector on it.
			name:       "a listed namespace matches a selector on its name label even if the object lacks it",
			namespaces: []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: map[string]string{"team": "storage"}}}},
			nodes:      dbNodes[:1],
			pods:       []*corev1.Pod{makePod("web", "500m", "1Gi", withPodAffinity(requiredAffinity, zoneKey, db, namespaceSelector(corev1.LabelMetadataName, "data")))},
			zones:      map[string]int{"test-1b": 1},
		},
		{
			name:       "a namespace not listed in Input.Namespaces has only its name label",
			namespaces: namespaces,
			nodes: []ExistingNode{zoneNode("node-a", "test-1a", "1",
				makePod("db-x", "1", "", withLabels("app", "db"), withNamespace("unlisted")))},
			pods:  []*corev1.Pod{makePod("web", "500m", "1Gi", withPodAffinity(requiredAffinity, zoneKey, db, namespaceSelector(corev1.LabelMetadataName, "unlisted")))},
			zones: map[string]int{"test-1a": 1},
		},
		{
			name: "anti-affinity is symmetric: an existing pod's hostname anti-affinity keeps app=x off its node",
			nodes: []ExistingNode{zoneNode("node-a", "test-1a", "8",
				makePod("guard", "500m", "", withLabels("app", "guard"), withPodAffinity(requiredAntiAffinity, hostnameKey, x)))},
			pods:       pods("x", 2, "500m", "1Gi", withLabels("app", "x")),
			claimSizes: []int{2},
		},
		{
			name: "the same node takes pods the guard's anti-affinity does not select",
			nodes: []ExistingNode{zoneNode("node-a", "test-1a", "8",
				makePod("guard", "500m", "", withLabels("app", "guard"), withPodAffinity(requiredAntiAffinity, hostnameKey, x)))},
			pods:    pods("y", 2, "500m", "1Gi", withLabels("app", "y")),
			onNodes: map[string][]string{"node-a": {"y-a", "y-b"}},
		},
		{
			name: "an existing pod's zone anti-affinity keeps app=x out of its zone",
			nodes: []ExistingNode{zoneNode("node-a", "test-1a", "8",
				makePod("guard", "500m", "", withLabels("app", "guard"), withPodAffinity(requiredAntiAffinity, zoneKey, x)))},
			pods: pods("x", 2, "500m", "1Gi", withLabels("app", "x")),
			check: func(t *testing.T, plan *Plan) {
				for _, c := range plan.NodeClaims {
					if zones, _ := claimOfferingSets(c); slices.Contains(zones, "test-1a") {
						t.Errorf("claim %s with %v may launch in test-1a, where the guard forbids app=x", c.Hostname, podNames(c.Pods))
					}
				}
				if len(plan.NodeClaims) == 0 {
					t.Errorf("want the pods on a claim")
				}
			},
		},
		{
			// Regression: x joined a's claim, narrowing it to a zone where a
			// was not counted.
			name:  "zone anti-affinity to a pod placed earlier on a claim free to launch anywhere",
			pods:  []*corev1.Pod{makePod("a", "2", "1Gi", withLabels("app", "a")), makePod("x", "500m", "1Gi", withLabels("app", "x"), withPodAffinity(requiredAntiAffinity, zoneKey, sel("app", "a")))},
			check: appsApartInZones("a", "x"),
		},
		{
			// Regression: s narrowed a's claim to test-1a without counting
			// a there, so x joined them.
			name: "zone anti-affinity to a pod whose claim another pod narrowed later",
			pods: []*corev1.Pod{
				makePod("a", "2", "1Gi", withLabels("app", "a")),
				makePod("s", "1", "1Gi", withLabels("app", "s"), withSpread(zoneKey, 1, hard, sel("app", "s"))),
				makePod("x", "500m", "1Gi", withLabels("app", "x"), withPodAffinity(requiredAntiAffinity, zoneKey, sel("app", "a"))),
			},
			check: appsApartInZones("a", "x"),
		},
		{
			name: "pods placed in this solve with hostname anti-affinity keep later matching pods off their claims",
			pods: append(pods("guard", 2, "3", "1Gi", withLabels("app", "guard"), withPodAffinity(requiredAntiAffinity, hostnameKey, x)),
				pods("x", 2, "100m", "128Mi", withLabels("app", "x"))...),
			check: func(t *testing.T, plan *Plan) {
				for _, c := range plan.NodeClaims {
					apps := map[string]bool{}
					for _, p := range c.Pods {
						apps[p.Labels["app"]] = true
					}
					if apps["guard"] && apps["x"] {
						t.Errorf("claim %s holds both a guard and an app=x pod: %v", c.Hostname, podNames(c.Pods))
					}
				}
			},
		},
	})
}

// appsApartInZones checks that no zone may hold both an app=a and an app=b
// pod, by the zones each claim may launch in.
func appsApartInZones(a, b string) func(*testing.T, *Plan) {
	return func(t *testing.T, plan *Plan) {
		zonesOf := map[string]map[string]bool{a: {}, b: {}}
		for _, c := range plan.NodeClaims {
			zones, _ := claimOfferingSets(c)
			for _, p := range c.Pods {
				if m, ok := zonesOf[p.Labels["app"]]; ok {
					for _, z := range zones {
						m[z] = true
					}
				}
			}
		}
		for z := range zonesOf[a] {
			if zonesOf[b][z] {
				t.Errorf("app=%s and app=%s pods may both land in %s", a, b, z)
			}
		}
		if len(zonesOf[a]) == 0 || len(zonesOf[b]) == 0 {
			t.Errorf("want both apps placed, zones %v", zonesOf)
		}
	}
}

// TestTopologyNarrowsClaims: a pod placed under a zone constraint narrows
// its new claim to one zone, and the claim keeps only instance types with an
// available offering there.
func TestTopologyNarrowsClaims(t *testing.T) {
	catalog := testCatalog()
	without(catalog, "test-1a", "c5.large")
	in := Input{
		Pods:      pods("web", 3, "1", "1Gi", withLabels("app", "web"), withSpread(zoneKey, 1, hard, sel("app", "web"))),
		Templates: []*NodeTemplate{defaultTemplate(catalog)},
	}
	plan, err := Solve(in)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, in, plan)
	seen := map[string]bool{}
	for _, c := range plan.NodeClaims {
		z := claimZone(c)
		seen[z] = true
		zones, _ := claimOfferingSets(c)
		if !slices.Equal(zones, []string{z}) || z == "" {
			t.Errorf("claim %s: zone requirement %v, offerings in %v; want one zone", c.Hostname, c.Requirements.Get(zoneKey), zones)
		}
		if got := c.Labels()[zoneKey]; got != z {
			t.Errorf("claim %s: Labels()[zone] = %q, want %q", c.Hostname, got, z)
		}
		listed := slices.Contains(typeNames(c.InstanceTypes), "c5.large")
		if want := z != "test-1a"; listed != want {
			t.Errorf("claim %s in %s lists c5.large: %v, want %v (types %v)", c.Hostname, z, listed, want, typeNames(c.InstanceTypes))
		}
	}
	if len(seen) != 3 {
		t.Errorf("claims in zones %v, want one in each of %v", slices.Sorted(maps.Keys(seen)), testZones)
	}
	if t.Failed() {
		t.Logf("plan:\n%s", mustYAML(summarizePlan(plan, 0)))
	}
}

// TestTopologyBadConstraints: a malformed constraint is reported on its pod,
// naming the field, and other pods are still planned.
func TestTopologyBadConstraints(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  podOpt
		want string
	}{
		{"maxSkew 0", withSpread(zoneKey, 0, hard, sel("app", "web")), "spec.topologySpreadConstraints[0].maxSkew: must be at least 1, got 0"},
		{"empty spread topologyKey", withSpread("", 1, hard, sel("app", "web")), "spec.topologySpreadConstraints[0].topologyKey: must not be empty"},
		{"empty affinity topologyKey", withPodAffinity(requiredAffinity, "", sel("app", "web")), "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey"},
		{"bad label selector operator", func(p *corev1.Pod) {
			withPodAffinity(requiredAntiAffinity, hostnameKey, nil)(p)
			p.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector = &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}},
			}
		}, "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := makePod("bad", "500m", "1Gi", withLabels("app", "web"), tc.opt)
			good := makePod("good", "500m", "1Gi", withLabels("app", "web"))
			in := Input{Pods: []*corev1.Pod{bad, good}, Templates: []*NodeTemplate{defaultTemplate(testCatalog())}}
			plan, err := Solve(in)
			if err != nil {
				t.Fatal(err)
			}
			checkPlan(t, in, plan)
			if len(plan.Unschedulable) != 1 || plan.Unschedulable[0].Pod != bad || !strings.Contains(plan.Unschedulable[0].Error(), tc.want) {
				t.Fatalf("unschedulable %v, want only pod bad with %q", summarizePlan(plan, 0).Unschedulable, tc.want)
			}
			if len(plan.NodeClaims) != 1 || len(plan.NodeClaims[0].Pods) != 1 {
				t.Errorf("want pod good on one claim, got %s", mustYAML(summarizePlan(plan, 1)))
			}
		})
	}
}

// TestTopologyDeterministic solves a mixed topology workload with pods and
// nodes in many orders and expects the same plan every time.
func TestTopologyDeterministic(t *testing.T) {
	catalog := testCatalog()
	without(catalog, "test-1c", "m6g.large", "m5.large")
	var ps []*corev1.Pod
	for i := range 48 {
		app := fmt.Sprintf("app-%d", i%6)
		opts := []podOpt{withLabels("app", app)}
		switch i % 6 {
		case 0:
			opts = append(opts, withSpread(zoneKey, 1, hard, sel("app", app)))
		case 1:
			opts = append(opts, withPodAffinity(requiredAntiAffinity, hostnameKey, sel("app", app)))
		case 2:
			opts = append(opts, withSpread(hostnameKey, 2, hard, sel("app", app)), withSpread(zoneKey, 1, soft, sel("app", app)))
		case 3:
			opts = append(opts, withPodAffinity(requiredAffinity, zoneKey, sel("app", app)))
		case 4:
			opts = append(opts, withPodAffinity(preferredAntiAffinity, zoneKey, sel("app", app)), withPodAffinity(preferredAffinity, hostnameKey, sel("app", "app-0")))
		}
		cpu := []string{"250m", "500m", "1", "1500m"}[i%4]
		ps = append(ps, makePod(fmt.Sprintf("pod-%02d", i), cpu, "1Gi", opts...))
	}
	nodes := []ExistingNode{
		zoneNode("node-a", "test-1a", "4", makePod("old-0", "1", "", withLabels("app", "app-0"))),
		zoneNode("node-b", "test-1b", "2", makePod("old-3", "500m", "", withLabels("app", "app-3"))),
		zoneNode("node-c", "test-1c", "2"),
	}
	in := Input{Pods: ps, Nodes: nodes, Templates: []*NodeTemplate{defaultTemplate(catalog)}}
	first, err := Solve(in)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, in, first)
	if len(first.Unschedulable) > 0 {
		t.Errorf("unschedulable: %v", summarizePlan(first, 0).Unschedulable)
	}
	want := summarizePlan(first, 0)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 20 {
		shuffled := in
		shuffled.Pods = slices.Clone(in.Pods)
		shuffled.Nodes = slices.Clone(in.Nodes)
		rng.Shuffle(len(shuffled.Pods), func(a, b int) { shuffled.Pods[a], shuffled.Pods[b] = shuffled.Pods[b], shuffled.Pods[a] })
		rng.Shuffle(len(shuffled.Nodes), func(a, b int) { shuffled.Nodes[a], shuffled.Nodes[b] = shuffled.Nodes[b], shuffled.Nodes[a] })
		plan, err := Solve(shuffled)
		if err != nil {
			t.Fatal(err)
		}
		if got := summarizePlan(plan, 0); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffle %d changed the plan:\n%s\nwant:\n%s", i, mustYAML(got), mustYAML(want))
		}
	}
}

// TestTopologySpreadTakesCheapestEmptiestZone: among the zones a spread
// leaves open, equally empty, a pod's claim goes where its node is
// cheapest, not to the first zone by name.
func TestTopologySpreadTakesCheapestEmptiestZone(t *testing.T) {
	catalog := testCatalog()
	discount := map[string]float64{"test-1a": 1, "test-1b": 0.9, "test-1c": 0.8}
	for _, it := range catalog {
		for i := range it.Offerings {
			it.Offerings[i].Price *= discount[it.Offerings[i].Zone]
		}
	}
	in := Input{
		Pods:      pods("web", 2, "1", "1Gi", withLabels("app", "web"), withSpread(zoneKey, 1, hard, sel("app", "web"))),
		Templates: []*NodeTemplate{defaultTemplate(catalog)},
	}
	plan, err := Solve(in)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, in, plan)
	var zones []string
	for _, c := range plan.NodeClaims {
		zones = append(zones, claimZone(c))
	}
	slices.Sort(zones)
	if want := []string{"test-1b", "test-1c"}; !slices.Equal(zones, want) {
		t.Errorf("claims in zones %v, want the two cheapest %v", zones, want)
	}
}
