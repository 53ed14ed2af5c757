package scheduling

import (
	"math"
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

// The test catalog, cheapest spot price first (every type has 100m cpu and
// 256Mi memory of overhead, 110 pods and 20Gi ephemeral storage):
//
//	m6g.large   2cpu  8Gi arm64 $0.0308   c5.large   2cpu  4Gi $0.0340
//	m5.large    2cpu  8Gi       $0.0384   m6g.xlarge 4cpu 16Gi arm64 $0.0616
//	c5.xlarge   4cpu  8Gi       $0.0680   m5.xlarge  4cpu 16Gi $0.0768
//	m6g.2xlarge 8cpu 32Gi arm64 $0.1232   c5.2xlarge 8cpu 16Gi $0.1360
//	m5.2xlarge  8cpu 32Gi       $0.1536   g4dn.xlarge 4cpu 16Gi 1 GPU $0.2104
//	... up to the 8xlarge sizes (32 cpu).

// wantClaim describes a NodeClaim a test expects.
type wantClaim struct {
	pool string
	pods []string // in any order
	// firstTypes is a prefix of the claim's instance types; typeCount, when
	// not zero, their number.
	firstTypes []string
	typeCount  int
	// everyType must hold for every listed type.
	everyType func(it *offerings.InstanceType) bool
	// zones and capacityTypes, when set, are exactly those the claim may
	// launch in.
	zones         []string
	capacityTypes []string
	// cpu, when set, is the claim's PodRequests cpu; dsCPU its
	// DaemonSetRequests cpu.
	cpu, dsCPU string
}

type solveCase struct {
	name       string
	pods       []*corev1.Pod
	nodes      []ExistingNode
	daemonSets []*corev1.Pod
	// templates defaults to defaultTemplate(testCatalog()).
	templates func(catalog []*offerings.InstanceType) []*NodeTemplate
	maxTypes  int
	// claims are the expected claims in plan order; placements maps node
	// names to pods placed there; unschedulable maps pod names to a
	// substring of their reason. Anything not listed must not happen.
	claims        []wantClaim
	placements    map[string][]string
	unschedulable map[string]string
}

func runSolveCases(t *testing.T, cases []solveCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			catalog := testCatalog()
			in := Input{Pods: tc.pods, Nodes: tc.nodes, DaemonSetPods: tc.daemonSets, MaxInstanceTypes: tc.maxTypes}
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
					t.Logf("plan:\n%s", mustYAML(summarizePlan(plan, 0)))
				}
			}()
			assertPlan(t, tc, plan)
		})
	}
}

func assertPlan(t *testing.T, tc solveCase, plan *Plan) {
	t.Helper()
	if len(plan.NodeClaims) != len(tc.claims) {
		t.Errorf("got %d claims, want %d", len(plan.NodeClaims), len(tc.claims))
	}
	for i := range min(len(plan.NodeClaims), len(tc.claims)) {
		got, want := plan.NodeClaims[i], tc.claims[i]
		if want.pool == "" {
			want.pool = "default"
		}
		if got.Template.NodePool != want.pool {
			t.Errorf("claim %d: nodepool %s, want %s", i, got.Template.NodePool, want.pool)
		}
		if g := sortedCopy(podNames(got.Pods)); !slices.Equal(g, sortedCopy(want.pods)) {
			t.Errorf("claim %d: pods %v, want %v", i, g, sortedCopy(want.pods))
		}
		names := typeNames(got.InstanceTypes)
		if len(names) < len(want.firstTypes) || !slices.Equal(names[:len(want.firstTypes)], want.firstTypes) {
			t.Errorf("claim %d: instance types %v, want them to start %v", i, names, want.firstTypes)
		}
		if want.typeCount != 0 && len(names) != want.typeCount {
			t.Errorf("claim %d: %d instance types %v, want %d", i, len(names), names, want.typeCount)
		}
		if want.everyType != nil {
			for _, it := range got.InstanceTypes {
				if !want.everyType(it) {
					t.Errorf("claim %d: instance type %s is not one the pods may have", i, it.Name)
				}
			}
		}
		zones, cts := claimOfferingSets(got)
		if want.zones != nil && !slices.Equal(zones, want.zones) {
			t.Errorf("claim %d: zones %v, want %v", i, zones, want.zones)
		}
		if want.capacityTypes != nil && !slices.Equal(cts, want.capacityTypes) {
			t.Errorf("claim %d: capacity types %v, want %v", i, cts, want.capacityTypes)
		}
		if want.cpu != "" {
			if q := got.PodRequests[corev1.ResourceCPU]; q.Cmp(resource.MustParse(want.cpu)) != 0 {
				t.Errorf("claim %d: pod cpu requests %s, want %s", i, q.String(), want.cpu)
			}
		}
		if want.dsCPU != "" {
			if q := got.DaemonSetRequests[corev1.ResourceCPU]; q.Cmp(resource.MustParse(want.dsCPU)) != 0 {
				t.Errorf("claim %d: daemonset cpu requests %s, want %s", i, q.String(), want.dsCPU)
			}
		}
	}
	placed := map[string][]string{}
	for _, np := range plan.ExistingNodes {
		placed[np.Node.Name] = sortedCopy(podNames(np.Pods))
	}
	want := map[string][]string{}
	for n, pods := range tc.placements {
		want[n] = sortedCopy(pods)
	}
	if !reflect.DeepEqual(placed, want) {
		t.Errorf("placements %v, want %v", placed, want)
	}
	reasons := map[string]string{}
	for _, e := range plan.Unschedulable {
		reasons[e.Pod.Name] = e.Error()
	}
	for name, substr := range tc.unschedulable {
		r, ok := reasons[name]
		if !ok {
			t.Errorf("pod %s was placed, want it unschedulable with %q", name, substr)
		} else if !strings.Contains(r, substr) {
			t.Errorf("pod %s: reason %q, want it to contain %q", name, r, substr)
		}
	}
	for name, r := range reasons {
		if _, ok := tc.unschedulable[name]; !ok {
			t.Errorf("pod %s unexpectedly unschedulable: %s", name, r)
		}
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func claimOfferingSets(c *NodeClaim) (zones, capacityTypes []string) {
	for _, it := range c.InstanceTypes {
		for _, o := range c.Offerings(it) {
			if !slices.Contains(zones, o.Zone) {
				zones = append(zones, o.Zone)
			}
			if !slices.Contains(capacityTypes, o.CapacityType) {
				capacityTypes = append(capacityTypes, o.CapacityType)
			}
		}
	}
	slices.Sort(zones)
	slices.Sort(capacityTypes)
	return zones, capacityTypes
}

func labelIs(key, value string) func(*offerings.InstanceType) bool {
	return func(it *offerings.InstanceType) bool { return it.Labels[key] == value }
}

func pods(prefix string, n int, cpu, memory string, opts ...podOpt) []*corev1.Pod {
	out := make([]*corev1.Pod, n)
	for i := range out {
		out[i] = makePod(prefix+"-"+string(rune('a'+i)), cpu, memory, opts...)
	}
	return out
}

func TestSolveResources(t *testing.T) {
	runSolveCases(t, []solveCase{
		{
			// m6g.large spot at $0.0308 (+$0.0022 of root volume), c5.large
			// within 10% of it; m5.large ($0.0384 spot) is not.
			name: "a small pod gets the types billed within the tolerance of the cheapest, cheapest first",
			pods: []*corev1.Pod{makePod("web", "1", "1Gi")},
			claims: []wantClaim{{pods: []string{"web"}, typeCount: 2, cpu: "1",
				firstTypes: []string{"m6g.large", "c5.large"},
				zones:      testZones, capacityTypes: []string{"on-demand", "spot"}}},
		},
		{
			name:     "MaxInstanceTypes caps the list",
			pods:     []*corev1.Pod{makePod("web", "1", "1Gi")},
			maxTypes: 1,
			claims:   []wantClaim{{pods: []string{"web"}, typeCount: 1, firstTypes: []string{"m6g.large"}}},
		},
		{
			name:   "per-type overhead is subtracted: 1950m does not fit a 2 cpu type",
			pods:   []*corev1.Pod{makePod("web", "1950m", "1Gi")},
			claims: []wantClaim{{pods: []string{"web"}, firstTypes: []string{"m6g.xlarge"}, typeCount: 1}},
		},
		{
			name:   "memory decides: 6Gi leaves out c5.large",
			pods:   []*corev1.Pod{makePod("cache", "500m", "6Gi")},
			claims: []wantClaim{{pods: []string{"cache"}, firstTypes: []string{"m6g.large"}, everyType: func(it *offerings.InstanceType) bool { return it.Name != "c5.large" }}},
		},
		{
			name:   "an init container larger than the app containers sizes the pod",
			pods:   []*corev1.Pod{makePod("migrate", "500m", "1Gi", withInitContainer("3", "1Gi"))},
			claims: []wantClaim{{pods: []string{"migrate"}, cpu: "3", firstTypes: []string{"m6g.xlarge"}}},
		},
		{
			name:   "app containers summed beat a smaller init container",
			pods:   []*corev1.Pod{makePod("multi", "1500m", "1Gi", withContainer("1500m", ""), withInitContainer("2", ""))},
			claims: []wantClaim{{pods: []string{"multi"}, cpu: "3", firstTypes: []string{"m6g.xlarge"}}},
		},
		{
			name: "sidecars add to the app and to init containers after them",
			// init peak: 1 (sidecar) + 2.5 = 3.5; steady: 1 + 1 = 2.
			pods:   []*corev1.Pod{makePod("mesh", "1", "", withSidecar("1", ""), withInitContainer("2500m", ""))},
			claims: []wantClaim{{pods: []string{"mesh"}, cpu: "3500m", firstTypes: []string{"m6g.xlarge"}}},
		},
		{
			name:   "pod overhead counts",
			pods:   []*corev1.Pod{makePod("kata", "1800m", "1Gi", withOverhead("250m", "128Mi"))},
			claims: []wantClaim{{pods: []string{"kata"}, cpu: "2050m", firstTypes: []string{"m6g.xlarge"}}},
		},
		{
			name: "GPU pods only get GPU types, one GPU each",
			pods: pods("train", 2, "1", "2Gi", withRequest(offerings.ResourceNvidiaGPU, "1")),
			claims: []wantClaim{
				{pods: []string{"train-a"}, firstTypes: []string{"g4dn.xlarge"}, typeCount: 1},
				{pods: []string{"train-b"}, firstTypes: []string{"g4dn.xlarge"}, typeCount: 1},
			},
		},
		{
			name:          "more GPUs than any type has",
			pods:          []*corev1.Pod{makePod("big-train", "1", "2Gi", withRequest(offerings.ResourceNvidiaGPU, "4"))},
			unschedulable: map[string]string{"big-train": "pod default/big-train: no instance type has 4 nvidia.com/gpu after overhead; largest allocatable is 1"},
		},
		{
			name:          "a resource no type offers",
			pods:          []*corev1.Pod{makePod("inferentia", "1", "2Gi", withRequest(offerings.ResourceNeuron, "1"))},
			unschedulable: map[string]string{"inferentia": "no instance type has 1 aws.amazon.com/neuron after overhead; none offers aws.amazon.com/neuron"},
		},
		{
			name: "ephemeral storage fits up to what types have",
			pods: []*corev1.Pod{
				makePod("scratch", "1", "1Gi", withRequest(corev1.ResourceEphemeralStorage, "15Gi")),
				makePod("too-much-scratch", "1", "1Gi", withRequest(corev1.ResourceEphemeralStorage, "30Gi")),
			},
			claims:        []wantClaim{{pods: []string{"scratch"}, firstTypes: []string{"m6g.large"}}},
			unschedulable: map[string]string{"too-much-scratch": "no instance type has 30Gi ephemeral-storage after overhead; largest allocatable is 20Gi"},
		},
		{
			name:          "a pod larger than any type gets a specific reason",
			pods:          []*corev1.Pod{makePod("huge", "96", "1Gi")},
			unschedulable: map[string]string{"huge": "pod default/huge: no instance type has 96 cpu after overhead; largest allocatable is 31900m"},
		},
		{
			name:          "memory larger than any type",
			pods:          []*corev1.Pod{makePod("huge-mem", "1", "200Gi")},
			unschedulable: map[string]string{"huge-mem": "no instance type has 200Gi memory after overhead; largest allocatable is 130816Mi"},
		},
		{
			name: "max-pods caps pods per node",
			pods: pods("tiny", 5, "10m", "16Mi"),
			templates: func([]*offerings.InstanceType) []*NodeTemplate {
				return []*NodeTemplate{defaultTemplate([]*offerings.InstanceType{makeType(typeSpec{name: "t3.nano", cpu: "2", memory: "4Gi", pods: 3, price: 0.01})})}
			},
			claims: []wantClaim{{pods: []string{"tiny-a", "tiny-b", "tiny-c"}}, {pods: []string{"tiny-d", "tiny-e"}}},
		},
		{
			name:       "daemonset pods take pod slots too",
			pods:       pods("tiny", 4, "10m", "16Mi"),
			daemonSets: []*corev1.Pod{makePod("logs", "10m", "16Mi")},
			templates: func([]*offerings.InstanceType) []*NodeTemplate {
				return []*NodeTemplate{defaultTemplate([]*offerings.InstanceType{makeType(typeSpec{name: "t3.nano", cpu: "2", memory: "4Gi", pods: 3, price: 0.01})})}
			},
			claims: []wantClaim{{pods: []string{"tiny-a", "tiny-b"}}, {pods: []string{"tiny-c", "tiny-d"}}},
		},
		{
			name: "pods pack onto one node when that is cheapest",
			pods: pods("web", 4, "900m", "1Gi"),
			// 3.6 cpu: one m6g.xlarge ($0.0616) beats two m6g.large ($0.0616)
			// or more; either way the plan must hold all four.
			claims: []wantClaim{{pods: []string{"web-a", "web-b", "web-c", "web-d"}, firstTypes: []string{"m6g.xlarge"}}},
		},
	})
}

func TestSolveNodeSelection(t *testing.T) {
	zoneA := func(catalog []*offerings.InstanceType) []*NodeTemplate {
		tmpl := defaultTemplate(catalog)
		tmpl.Requirements = mustRequirements(req(offerings.LabelZone, corev1.NodeSelectorOpIn, "test-1a"))
		return []*NodeTemplate{tmpl}
	}
	runSolveCases(t, []solveCase{
		{
			name:   "nodeSelector on arch",
			pods:   []*corev1.Pod{makePod("x86", "1", "1Gi", withNodeSelector(offerings.LabelArch, "amd64"))},
			claims: []wantClaim{{pods: []string{"x86"}, firstTypes: []string{"c5.large"}, typeCount: 1, everyType: labelIs(offerings.LabelArch, "amd64")}},
		},
		{
			name: "nodeSelector on zone and capacity type narrows the offerings",
			pods: []*corev1.Pod{makePod("pinned", "1", "1Gi", withNodeSelector(offerings.LabelZone, "test-1b", offerings.LabelCapacityType, "on-demand"))},
			claims: []wantClaim{{pods: []string{"pinned"}, firstTypes: []string{"m6g.large"},
				zones: []string{"test-1b"}, capacityTypes: []string{"on-demand"}}},
		},
		{
			name:   "nodeSelector on instance type",
			pods:   []*corev1.Pod{makePod("picky", "1", "1Gi", withNodeSelector(offerings.LabelInstanceType, "m5.2xlarge"))},
			claims: []wantClaim{{pods: []string{"picky"}, firstTypes: []string{"m5.2xlarge"}, typeCount: 1}},
		},
		{
			name: "pods with different selectors do not share a claim",
			pods: []*corev1.Pod{
				makePod("arm", "1", "1Gi", withNodeSelector(offerings.LabelArch, "arm64")),
				makePod("x86", "500m", "1Gi", withNodeSelector(offerings.LabelArch, "amd64")),
			},
			claims: []wantClaim{
				{pods: []string{"arm"}, everyType: labelIs(offerings.LabelArch, "arm64")},
				{pods: []string{"x86"}, everyType: labelIs(offerings.LabelArch, "amd64")},
			},
		},
		{
			name:          "nodeSelector on a label no node of the pool carries",
			pods:          []*corev1.Pod{makePod("team", "1", "1Gi", withNodeSelector("team", "a"))},
			unschedulable: map[string]string{"team": "requires team In [a], which nodes of this nodepool do not have"},
		},
		{
			name: "nodeSelector on a template label",
			pods: []*corev1.Pod{makePod("team", "1", "1Gi", withNodeSelector("team", "a"))},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				tmpl := defaultTemplate(catalog)
				tmpl.Labels = map[string]string{"team": "a"}
				return []*NodeTemplate{tmpl}
			},
			claims: []wantClaim{{pods: []string{"team"}, firstTypes: []string{"m6g.large"}}},
		},
		{
			name:          "nodeSelector on a value no type has",
			pods:          []*corev1.Pod{makePod("mainframe", "1", "1Gi", withNodeSelector(offerings.LabelArch, "s390x"))},
			unschedulable: map[string]string{"mainframe": "no instance type matches kubernetes.io/arch In [s390x]"},
		},
		{
			name: "required node affinity: terms are ORed",
			pods: []*corev1.Pod{makePod("either", "1", "1Gi", withRequiredTerms(
				[]corev1.NodeSelectorRequirement{req(offerings.LabelArch, corev1.NodeSelectorOpIn, "s390x")},
				[]corev1.NodeSelectorRequirement{req(offerings.LabelInstanceFamily, corev1.NodeSelectorOpIn, "m5")},
			))},
			claims: []wantClaim{{pods: []string{"either"}, firstTypes: []string{"m5.large"}, typeCount: 1, everyType: labelIs(offerings.LabelInstanceFamily, "m5")}},
		},
		{
			name: "required node affinity: expressions in a term are ANDed",
			pods: []*corev1.Pod{makePod("both", "1", "1Gi", withRequiredTerms(
				[]corev1.NodeSelectorRequirement{
					req(offerings.LabelArch, corev1.NodeSelectorOpNotIn, "arm64"),
					req(offerings.LabelInstanceFamily, corev1.NodeSelectorOpIn, "m5", "m6g"),
					req(offerings.LabelInstanceGPUCount, corev1.NodeSelectorOpDoesNotExist),
				},
			))},
			claims: []wantClaim{{pods: []string{"both"}, firstTypes: []string{"m5.large"}, typeCount: 1}},
		},
		{
			name: "required node affinity with Gt on a label only some types carry",
			pods: []*corev1.Pod{makePod("gpu-label", "1", "1Gi", withRequiredTerms(
				[]corev1.NodeSelectorRequirement{req(offerings.LabelInstanceGPUCount, corev1.NodeSelectorOpGt, "0")},
			))},
			claims: []wantClaim{{pods: []string{"gpu-label"}, firstTypes: []string{"g4dn.xlarge"}, typeCount: 1}},
		},
		{
			name: "DoesNotExist on a label only some types carry picks the others",
			pods: []*corev1.Pod{makePod("no-gpu", "1", "1Gi", withRequiredTerms(
				[]corev1.NodeSelectorRequirement{req(offerings.LabelInstanceGPUName, corev1.NodeSelectorOpDoesNotExist)},
			))},
			claims: []wantClaim{{pods: []string{"no-gpu"}, typeCount: 2, everyType: func(it *offerings.InstanceType) bool {
				return it.Labels[offerings.LabelInstanceGPUName] == ""
			}}},
		},
		{
			name: "a template's DoesNotExist on a label its nodes never carry is met",
			pods: []*corev1.Pod{makePod("plain", "1", "1Gi"), makePod("wants-team", "1", "1Gi", withNodeSelector("team", "a"))},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				tmpl := defaultTemplate(catalog)
				tmpl.Requirements = mustRequirements(req("team", corev1.NodeSelectorOpDoesNotExist))
				return []*NodeTemplate{tmpl}
			},
			claims:        []wantClaim{{pods: []string{"plain"}, firstTypes: []string{"m6g.large"}}},
			unschedulable: map[string]string{"wants-team": "requires team In [a] but the nodepool allows team DoesNotExist"},
		},
		{
			name: "a template's NotIn on a custom label lets a pod pick another value",
			pods: []*corev1.Pod{makePod("team-b", "1", "1Gi", withNodeSelector("team", "b")), makePod("team-a", "1", "1Gi", withNodeSelector("team", "a"))},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				tmpl := defaultTemplate(catalog)
				tmpl.Requirements = mustRequirements(req("team", corev1.NodeSelectorOpNotIn, "a"))
				return []*NodeTemplate{tmpl}
			},
			claims:        []wantClaim{{pods: []string{"team-b"}}},
			unschedulable: map[string]string{"team-a": "requires team In [a] but the nodepool allows team NotIn [a]"},
		},
		{
			name: "required node affinity that no term can meet",
			pods: []*corev1.Pod{makePod("nowhere", "1", "1Gi", withRequiredTerms(
				[]corev1.NodeSelectorRequirement{req(offerings.LabelZone, corev1.NodeSelectorOpIn, "mars-1a")},
			))},
			unschedulable: map[string]string{"nowhere": "nowhere"},
		},
		{
			name:   "preferred node affinity is honoured when it can be",
			pods:   []*corev1.Pod{makePod("prefers-x86", "1", "1Gi", withPreferred(1, req(offerings.LabelArch, corev1.NodeSelectorOpIn, "amd64")))},
			claims: []wantClaim{{pods: []string{"prefers-x86"}, firstTypes: []string{"c5.large"}, everyType: labelIs(offerings.LabelArch, "amd64")}},
		},
		{
			name: "preferences are relaxed lowest weight first: the lighter unmet zone goes, the heavier arch stays",
			pods: []*corev1.Pod{makePod("prefs", "1", "1Gi",
				withPreferred(1, req(offerings.LabelZone, corev1.NodeSelectorOpIn, "test-1b")),
				withPreferred(50, req(offerings.LabelArch, corev1.NodeSelectorOpIn, "amd64")))},
			templates: zoneA,
			claims: []wantClaim{{pods: []string{"prefs"}, firstTypes: []string{"c5.large"}, zones: []string{"test-1a"},
				everyType: labelIs(offerings.LabelArch, "amd64")}},
		},
		{
			name: "an unmet heavier preference is dropped after the lighter ones",
			pods: []*corev1.Pod{makePod("prefs", "1", "1Gi",
				withPreferred(50, req(offerings.LabelZone, corev1.NodeSelectorOpIn, "test-1b")),
				withPreferred(1, req(offerings.LabelArch, corev1.NodeSelectorOpIn, "amd64")))},
			templates: zoneA,
			// Dropping the light arch preference does not make the heavy zone
			// one possible, so both go: the cheapest type is arm64.
			claims: []wantClaim{{pods: []string{"prefs"}, firstTypes: []string{"m6g.large"}, zones: []string{"test-1a"}}},
		},
		{
			name: "a preference does not stop a pod that needs more than the preferred types have",
			pods: []*corev1.Pod{makePod("big", "20", "100Gi", withPreferred(10, req(offerings.LabelInstanceFamily, corev1.NodeSelectorOpIn, "c5")))},
			// c5.8xlarge has 64Gi: the preference is dropped.
			claims: []wantClaim{{pods: []string{"big"}, firstTypes: []string{"m6g.8xlarge"}, typeCount: 1}},
		},
	})
}

func TestSolveTaints(t *testing.T) {
	tainted := func(taints ...corev1.Taint) func([]*offerings.InstanceType) []*NodeTemplate {
		return func(catalog []*offerings.InstanceType) []*NodeTemplate {
			tmpl := defaultTemplate(catalog)
			tmpl.Taints = taints
			return []*NodeTemplate{tmpl}
		}
	}
	dedicated := taint("dedicated", "batch", corev1.TaintEffectNoSchedule)
	runSolveCases(t, []solveCase{
		{
			name:          "a NoSchedule taint keeps pods without a toleration off",
			pods:          []*corev1.Pod{makePod("web", "1", "1Gi")},
			templates:     tainted(dedicated),
			unschedulable: map[string]string{"web": "pod default/web: does not tolerate taint dedicated=batch:NoSchedule"},
		},
		{
			name:          "a NoExecute taint keeps pods without a toleration off",
			pods:          []*corev1.Pod{makePod("web", "1", "1Gi")},
			templates:     tainted(taint("evict", "", corev1.TaintEffectNoExecute)),
			unschedulable: map[string]string{"web": "does not tolerate taint evict:NoExecute"},
		},
		{
			name: "tolerations by Equal, by Exists, and Exists with an empty key",
			pods: []*corev1.Pod{
				makePod("equal", "1", "1Gi", withToleration(tolerateEqual("dedicated", "batch", corev1.TaintEffectNoSchedule))),
				makePod("exists", "1", "1Gi", withToleration(tolerateExists("dedicated", ""))),
				makePod("everything", "1", "1Gi", withToleration(corev1.Toleration{Operator: corev1.TolerationOpExists})),
				makePod("wrong-value", "1", "1Gi", withToleration(tolerateEqual("dedicated", "web", corev1.TaintEffectNoSchedule))),
				makePod("wrong-effect", "1", "1Gi", withToleration(tolerateEqual("dedicated", "batch", corev1.TaintEffectNoExecute))),
			},
			templates: tainted(dedicated),
			claims: []wantClaim{
				{pods: []string{"equal", "everything", "exists"}, firstTypes: []string{"m6g.xlarge"}},
			},
			unschedulable: map[string]string{
				"wrong-value":  "does not tolerate taint dedicated=batch:NoSchedule",
				"wrong-effect": "does not tolerate taint dedicated=batch:NoSchedule",
			},
		},
		{
			name:      "a PreferNoSchedule taint is relaxed when nothing else works",
			pods:      []*corev1.Pod{makePod("web", "1", "1Gi")},
			templates: tainted(taint("spare", "", corev1.TaintEffectPreferNoSchedule)),
			claims:    []wantClaim{{pods: []string{"web"}, firstTypes: []string{"m6g.large"}}},
		},
		{
			name: "PreferNoSchedule is relaxed under every required term, not just the last",
			pods: []*corev1.Pod{makePod("either", "1", "1Gi", withRequiredTerms(
				[]corev1.NodeSelectorRequirement{req(offerings.LabelInstanceFamily, corev1.NodeSelectorOpIn, "m6g")},
				[]corev1.NodeSelectorRequirement{req(offerings.LabelZone, corev1.NodeSelectorOpIn, "test-1b")},
			))},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				tmpl := defaultTemplate(catalog)
				tmpl.Requirements = mustRequirements(req(offerings.LabelZone, corev1.NodeSelectorOpIn, "test-1a"))
				tmpl.Taints = []corev1.Taint{taint("spare", "", corev1.TaintEffectPreferNoSchedule)}
				return []*NodeTemplate{tmpl}
			},
			claims: []wantClaim{{pods: []string{"either"}, typeCount: 1, zones: []string{"test-1a"}, everyType: labelIs(offerings.LabelInstanceFamily, "m6g")}},
		},
		{
			name: "a PreferNoSchedule template is avoided while another works",
			pods: []*corev1.Pod{makePod("web", "1", "1Gi")},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				spare := defaultTemplate(catalog)
				spare.NodePool, spare.Weight = "spare", 10
				spare.Taints = []corev1.Taint{taint("spare", "", corev1.TaintEffectPreferNoSchedule)}
				return []*NodeTemplate{spare, defaultTemplate(catalog)}
			},
			claims: []wantClaim{{pool: "default", pods: []string{"web"}}},
		},
		{
			name: "startup taints need no toleration",
			pods: []*corev1.Pod{makePod("web", "1", "1Gi")},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				tmpl := defaultTemplate(catalog)
				tmpl.StartupTaints = []corev1.Taint{taint("node.cilium.io/agent-not-ready", "true", corev1.TaintEffectNoExecute)}
				return []*NodeTemplate{tmpl}
			},
			claims: []wantClaim{{pods: []string{"web"}, firstTypes: []string{"m6g.large"}}},
		},
		{
			name: "a tainted pool is used by pods that tolerate it, others go elsewhere",
			pods: []*corev1.Pod{
				makePod("batch", "1", "1Gi", withToleration(tolerateEqual("dedicated", "batch", corev1.TaintEffectNoSchedule))),
				makePod("web", "1", "1Gi"),
			},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				batch := defaultTemplate(catalog)
				batch.NodePool, batch.Weight, batch.Taints = "batch", 10, []corev1.Taint{dedicated}
				return []*NodeTemplate{batch, defaultTemplate(catalog)}
			},
			claims: []wantClaim{{pool: "batch", pods: []string{"batch"}}, {pool: "default", pods: []string{"web"}}},
		},
	})
}

func TestSolveDaemonSetOverhead(t *testing.T) {
	armAgent := makePod("arm-agent", "500m", "128Mi", withNodeSelector(offerings.LabelArch, "arm64"))
	everywhere := makePod("node-exporter", "500m", "128Mi", withToleration(corev1.Toleration{Operator: corev1.TolerationOpExists}))
	plain := makePod("logs", "500m", "128Mi")
	dedicated := func(catalog []*offerings.InstanceType) []*NodeTemplate {
		tmpl := defaultTemplate(catalog)
		tmpl.Taints = []corev1.Taint{taint("dedicated", "batch", corev1.TaintEffectNoSchedule)}
		return []*NodeTemplate{tmpl}
	}
	tolerant := withToleration(tolerateEqual("dedicated", "batch", corev1.TaintEffectNoSchedule))
	runSolveCases(t, []solveCase{
		{
			name:       "a daemonset counts on every type it runs on",
			pods:       []*corev1.Pod{makePod("web", "1500m", "1Gi")},
			daemonSets: []*corev1.Pod{plain},
			// 1.9 cpu allocatable on large types, less 500m: too small.
			claims: []wantClaim{{pods: []string{"web"}, firstTypes: []string{"m6g.xlarge"}, dsCPU: "500m"}},
		},
		{
			name:       "an arm64-only daemonset counts on arm64 types only",
			pods:       []*corev1.Pod{makePod("web", "1500m", "1Gi")},
			daemonSets: []*corev1.Pod{armAgent},
			claims:     []wantClaim{{pods: []string{"web"}, firstTypes: []string{"c5.large"}}},
		},
		{
			name:       "a daemonset that does not tolerate the template's taint adds nothing",
			pods:       []*corev1.Pod{makePod("batch", "1500m", "1Gi", tolerant)},
			daemonSets: []*corev1.Pod{plain},
			templates:  dedicated,
			claims:     []wantClaim{{pods: []string{"batch"}, firstTypes: []string{"m6g.large"}}},
		},
		{
			name:       "a daemonset tolerating everything runs on tainted nodes",
			pods:       []*corev1.Pod{makePod("batch", "1500m", "1Gi", tolerant)},
			daemonSets: []*corev1.Pod{plain, everywhere},
			templates:  dedicated,
			claims:     []wantClaim{{pods: []string{"batch"}, firstTypes: []string{"m6g.xlarge"}, dsCPU: "500m"}},
		},
		{
			name:       "a daemonset ignores startup taints",
			pods:       []*corev1.Pod{makePod("web", "1500m", "1Gi")},
			daemonSets: []*corev1.Pod{plain},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				tmpl := defaultTemplate(catalog)
				tmpl.StartupTaints = []corev1.Taint{taint("agent-not-ready", "", corev1.TaintEffectNoSchedule)}
				return []*NodeTemplate{tmpl}
			},
			claims: []wantClaim{{pods: []string{"web"}, firstTypes: []string{"m6g.xlarge"}, dsCPU: "500m"}},
		},
		{
			name: "a daemonset still runs on a node with a PreferNoSchedule taint",
			pods: []*corev1.Pod{makePod("web", "1500m", "1Gi", withToleration(tolerateExists("spare", "")))},
			// The kube-scheduler only filters on NoSchedule and NoExecute.
			daemonSets: []*corev1.Pod{plain},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				tmpl := defaultTemplate(catalog)
				tmpl.Taints = []corev1.Taint{taint("spare", "", corev1.TaintEffectPreferNoSchedule)}
				return []*NodeTemplate{tmpl}
			},
			claims: []wantClaim{{pods: []string{"web"}, firstTypes: []string{"m6g.xlarge"}, dsCPU: "500m"}},
		},
		{
			name:       "a daemonset avoiding GPU types counts on the others",
			pods:       []*corev1.Pod{makePod("web", "1500m", "1Gi")},
			daemonSets: []*corev1.Pod{makePod("cpu-agent", "500m", "", withRequiredTerms([]corev1.NodeSelectorRequirement{req(offerings.LabelInstanceGPUCount, corev1.NodeSelectorOpDoesNotExist)}))},
			claims:     []wantClaim{{pods: []string{"web"}, firstTypes: []string{"m6g.xlarge"}, dsCPU: "500m"}},
		},
		{
			name:       "daemonset overhead is per template",
			pods:       []*corev1.Pod{makePod("web", "1500m", "1Gi"), makePod("batch", "1500m", "1Gi", tolerant)},
			daemonSets: []*corev1.Pod{plain},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				batch := defaultTemplate(catalog)
				batch.NodePool, batch.Weight = "batch", 10
				batch.Taints = []corev1.Taint{taint("dedicated", "batch", corev1.TaintEffectNoSchedule)}
				return []*NodeTemplate{batch, defaultTemplate(catalog)}
			},
			claims: []wantClaim{
				{pool: "batch", pods: []string{"batch"}, firstTypes: []string{"m6g.large"}},
				{pool: "default", pods: []string{"web"}, firstTypes: []string{"m6g.xlarge"}, dsCPU: "500m"},
			},
		},
		{
			name:       "a daemonset selecting a template label runs only on that template",
			pods:       []*corev1.Pod{makePod("web", "1500m", "1Gi", withNodeSelector("team", "b"))},
			daemonSets: []*corev1.Pod{makePod("team-a-agent", "500m", "", withNodeSelector("team", "a"))},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				a, b := defaultTemplate(catalog), defaultTemplate(catalog)
				a.NodePool, a.Labels = "team-a", map[string]string{"team": "a"}
				b.NodePool, b.Labels = "team-b", map[string]string{"team": "b"}
				return []*NodeTemplate{a, b}
			},
			claims: []wantClaim{{pool: "team-b", pods: []string{"web"}, firstTypes: []string{"m6g.large"}}},
		},
	})
}

func TestSolveTemplates(t *testing.T) {
	runSolveCases(t, []solveCase{
		{
			name: "the highest-weight template is used even when dearer",
			pods: []*corev1.Pod{makePod("web", "1", "1Gi")},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				m5 := defaultTemplate(catalog)
				m5.NodePool, m5.Weight = "m5-only", 10
				m5.Requirements = mustRequirements(req(offerings.LabelInstanceFamily, corev1.NodeSelectorOpIn, "m5"))
				return []*NodeTemplate{defaultTemplate(catalog), m5}
			},
			claims: []wantClaim{{pool: "m5-only", pods: []string{"web"}, firstTypes: []string{"m5.large"}, typeCount: 1}},
		},
		{
			name: "equal weights resolve by nodepool name",
			pods: []*corev1.Pod{makePod("web", "1", "1Gi")},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				b, a := defaultTemplate(catalog), defaultTemplate(catalog)
				b.NodePool, a.NodePool = "bravo", "alpha"
				return []*NodeTemplate{b, a}
			},
			claims: []wantClaim{{pool: "alpha", pods: []string{"web"}}},
		},
		{
			name: "a template that cannot hold the pod is skipped for the next",
			pods: []*corev1.Pod{makePod("arm", "1", "1Gi", withNodeSelector(offerings.LabelArch, "arm64"))},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				x86 := defaultTemplate(catalog)
				x86.NodePool, x86.Weight = "x86", 10
				x86.Requirements = mustRequirements(req(offerings.LabelArch, corev1.NodeSelectorOpIn, "amd64"))
				return []*NodeTemplate{x86, defaultTemplate(catalog)}
			},
			claims: []wantClaim{{pool: "default", pods: []string{"arm"}, firstTypes: []string{"m6g.large"}}},
		},
		{
			name: "template requirements on capacity type and zone narrow offerings",
			pods: []*corev1.Pod{makePod("web", "1", "1Gi")},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				tmpl := defaultTemplate(catalog)
				tmpl.Requirements = mustRequirements(
					req(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "on-demand"),
					req(offerings.LabelZone, corev1.NodeSelectorOpNotIn, "test-1a"))
				return []*NodeTemplate{tmpl}
			},
			claims: []wantClaim{{pods: []string{"web"}, zones: []string{"test-1b", "test-1c"}, capacityTypes: []string{"on-demand"}, firstTypes: []string{"m6g.large"}}},
		},
		{
			name: "a node limit stops claims, and the next template takes over",
			pods: pods("big", 3, "20", "10Gi"),
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				capped := defaultTemplate(catalog)
				capped.NodePool, capped.Weight = "capped", 10
				capped.Limits = corev1.ResourceList{ResourceNodes: resource.MustParse("1")}
				overflow := defaultTemplate(catalog)
				overflow.NodePool = "overflow"
				overflow.Limits = corev1.ResourceList{ResourceNodes: resource.MustParse("1")}
				return []*NodeTemplate{capped, overflow}
			},
			claims: []wantClaim{{pool: "capped", pods: []string{"big-a"}}, {pool: "overflow", pods: []string{"big-b"}}},
			unschedulable: map[string]string{
				"big-c": "nodepool capped: node limit reached; nodepool overflow: node limit reached",
			},
		},
		{
			name: "a cpu limit keeps claims to types within it",
			pods: pods("web", 3, "3", "1Gi"),
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				tmpl := defaultTemplate(catalog)
				tmpl.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8")}
				return []*NodeTemplate{tmpl}
			},
			// Two pods fill an 8-cpu type, which uses the limit up.
			claims: []wantClaim{
				{pods: []string{"web-a", "web-b"}, everyType: func(it *offerings.InstanceType) bool { return it.Capacity.Cpu().Value() <= 8 }},
			},
			unschedulable: map[string]string{"web-c": "pod default/web-c: nodepool limits leave cpu 0, too little for any instance type that fits the pod"},
		},
		{
			name: "a memory limit keeps claims to types within it",
			pods: []*corev1.Pod{makePod("web", "1", "1Gi")},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				tmpl := defaultTemplate(catalog)
				tmpl.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("8Gi")}
				return []*NodeTemplate{tmpl}
			},
			claims: []wantClaim{{pods: []string{"web"}, firstTypes: []string{"m6g.large", "c5.large"}, typeCount: 2}},
		},
		{
			name: "a limit too small for any type",
			pods: []*corev1.Pod{makePod("web", "1", "1Gi")},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				tmpl := defaultTemplate(catalog)
				tmpl.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
				return []*NodeTemplate{tmpl}
			},
			unschedulable: map[string]string{"web": "pod default/web: nodepool limits leave cpu 1, too little for any instance type that fits the pod"},
		},
		{
			name: "no templates",
			pods: []*corev1.Pod{makePod("web", "1", "1Gi")},
			templates: func([]*offerings.InstanceType) []*NodeTemplate {
				return nil
			},
			unschedulable: map[string]string{"web": "no node template (NodePool) to create a node from"},
		},
		{
			name: "unavailable offerings are not offered",
			pods: []*corev1.Pod{makePod("web", "1", "1Gi")},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				for _, it := range catalog {
					for i := range it.Offerings {
						if it.Offerings[i].CapacityType == offerings.CapacityTypeSpot || it.Name == "m6g.large" {
							it.Offerings[i].Available = false
						}
					}
				}
				return []*NodeTemplate{defaultTemplate(catalog)}
			},
			claims: []wantClaim{{pods: []string{"web"}, firstTypes: []string{"c5.large"}, capacityTypes: []string{"on-demand"}, typeCount: 1}},
		},
		{
			name: "no offering available at all",
			pods: []*corev1.Pod{makePod("web", "1", "1Gi", withNodeSelector(offerings.LabelZone, "test-1c"))},
			templates: func(catalog []*offerings.InstanceType) []*NodeTemplate {
				for _, it := range catalog {
					for i := range it.Offerings {
						if it.Offerings[i].Zone == "test-1c" {
							it.Offerings[i].Available = false
						}
					}
				}
				return []*NodeTemplate{defaultTemplate(catalog)}
			},
			unschedulable: map[string]string{"web": "no instance type has an available offering for topology.kubernetes.io/zone In [test-1c]"},
		},
	})
}

func TestSolveHostPorts(t *testing.T) {
	node := makeNode("node-1", "8", "32Gi", map[string]string{offerings.LabelArch: "amd64"})
	runSolveCases(t, []solveCase{
		{
			name: "two pods binding one host port need two nodes",
			pods: pods("ingress", 2, "100m", "128Mi", withHostPort(443)),
			claims: []wantClaim{
				{pods: []string{"ingress-a"}, firstTypes: []string{"m6g.large"}},
				{pods: []string{"ingress-b"}, firstTypes: []string{"m6g.large"}},
			},
		},
		{
			name:   "different host ports share a node",
			pods:   []*corev1.Pod{makePod("http", "100m", "128Mi", withHostPort(80)), makePod("https", "100m", "128Mi", withHostPort(443))},
			claims: []wantClaim{{pods: []string{"http", "https"}}},
		},
		{
			name:       "a port taken on an existing node sends the pod to a new one",
			pods:       []*corev1.Pod{makePod("ingress", "100m", "128Mi", withHostPort(443)), makePod("web", "100m", "128Mi")},
			nodes:      []ExistingNode{{Node: node, Pods: []*corev1.Pod{makePod("old-ingress", "100m", "128Mi", withHostPort(443))}}},
			claims:     []wantClaim{{pods: []string{"ingress"}}},
			placements: map[string][]string{"node-1": {"web"}},
		},
	})
}

func TestSolveExistingNodes(t *testing.T) {
	amd := func(name, cpu, mem string) *corev1.Node {
		return makeNode(name, cpu, mem, map[string]string{offerings.LabelArch: "amd64", offerings.LabelZone: "test-1a"})
	}
	cordoned := amd("cordoned", "8", "32Gi")
	cordoned.Spec.Unschedulable = true
	deleting := amd("deleting", "8", "32Gi")
	deleting.DeletionTimestamp = &metav1.Time{}
	finished := makePod("finished", "3", "1Gi")
	finished.Status.Phase = corev1.PodSucceeded
	runSolveCases(t, []solveCase{
		{
			name:       "existing nodes are filled before new claims",
			pods:       pods("web", 3, "1", "1Gi"),
			nodes:      []ExistingNode{{Node: amd("node-1", "4", "16Gi")}},
			placements: map[string][]string{"node-1": {"web-a", "web-b", "web-c"}},
		},
		{
			name:       "bound pods use node capacity; finished ones do not",
			pods:       pods("web", 2, "1", "1Gi"),
			nodes:      []ExistingNode{{Node: amd("busy", "4", "16Gi"), Pods: []*corev1.Pod{makePod("running", "2500m", "1Gi"), finished}}},
			claims:     []wantClaim{{pods: []string{"web-b"}}},
			placements: map[string][]string{"busy": {"web-a"}},
		},
		{
			name:   "cordoned and deleting nodes are skipped",
			pods:   []*corev1.Pod{makePod("web", "1", "1Gi")},
			nodes:  []ExistingNode{{Node: cordoned}, {Node: deleting}},
			claims: []wantClaim{{pods: []string{"web"}}},
		},
		{
			name: "node taints are honoured",
			pods: []*corev1.Pod{
				makePod("web", "1", "1Gi"),
				makePod("batch", "1", "1Gi", withToleration(tolerateEqual("dedicated", "batch", corev1.TaintEffectNoSchedule))),
			},
			nodes:      []ExistingNode{{Node: withNodeTaints(amd("batch-node", "8", "32Gi"), taint("dedicated", "batch", corev1.TaintEffectNoSchedule))}},
			claims:     []wantClaim{{pods: []string{"web"}}},
			placements: map[string][]string{"batch-node": {"batch"}},
		},
		{
			name:       "a launching node's not-ready taint does not keep pods off",
			pods:       []*corev1.Pod{makePod("web", "1", "1Gi")},
			nodes:      []ExistingNode{{Node: withNodeTaints(amd("booting", "8", "32Gi"), taint(corev1.TaintNodeNotReady, "", corev1.TaintEffectNoSchedule))}},
			placements: map[string][]string{"booting": {"web"}},
		},
		{
			name: "node labels are matched against selectors",
			pods: []*corev1.Pod{
				makePod("arm", "1", "1Gi", withNodeSelector(offerings.LabelArch, "arm64")),
				makePod("zone-a", "1", "1Gi", withRequiredTerms([]corev1.NodeSelectorRequirement{req(offerings.LabelZone, corev1.NodeSelectorOpIn, "test-1a")})),
			},
			nodes:      []ExistingNode{{Node: amd("x86", "8", "32Gi")}},
			claims:     []wantClaim{{pods: []string{"arm"}, everyType: labelIs(offerings.LabelArch, "arm64")}},
			placements: map[string][]string{"x86": {"zone-a"}},
		},
		{
			name:       "a pod too big for the node goes to a claim",
			pods:       []*corev1.Pod{makePod("big", "6", "1Gi"), makePod("small", "1", "1Gi")},
			nodes:      []ExistingNode{{Node: amd("node-1", "4", "16Gi")}},
			claims:     []wantClaim{{pods: []string{"big"}}},
			placements: map[string][]string{"node-1": {"small"}},
		},
		{
			name: "a node reporting only capacity is filled up to it",
			pods: pods("web", 3, "1", "1Gi"),
			nodes: []ExistingNode{{Node: func() *corev1.Node {
				n := amd("new", "2", "8Gi")
				n.Status.Capacity, n.Status.Allocatable = n.Status.Allocatable, nil
				return n
			}()}},
			claims:     []wantClaim{{pods: []string{"web-c"}}},
			placements: map[string][]string{"new": {"web-a", "web-b"}},
		},
		{
			name: "a node with no room for more pods",
			pods: []*corev1.Pod{makePod("web", "100m", "128Mi")},
			nodes: []ExistingNode{{Node: amd("full", "8", "32Gi"), Pods: slices.Collect(func(yield func(*corev1.Pod) bool) {
				for range 110 {
					if !yield(makePod("running", "10m", "")) {
						return
					}
				}
			})}},
			claims: []wantClaim{{pods: []string{"web"}}},
		},
	})
}

func TestSolveBadPodIsReportedOthersPlanned(t *testing.T) {
	bad := makePod("bad", "1", "1Gi", withRequiredTerms([]corev1.NodeSelectorRequirement{req(offerings.LabelArch, "Near", "amd64")}))
	badPreference := makePod("bad-pref", "1", "1Gi", withPreferred(10, req(offerings.LabelInstanceCPU, corev1.NodeSelectorOpGt, "four")))
	onlyFields := makePod("fields", "1", "1Gi")
	ensureNodeAffinity(onlyFields)
	onlyFields.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchFields: []corev1.NodeSelectorRequirement{req("metadata.name", corev1.NodeSelectorOpIn, "node-7")},
	}}}
	runSolveCases(t, []solveCase{{
		name:   "bad affinity",
		pods:   []*corev1.Pod{bad, badPreference, onlyFields, makePod("good", "1", "1Gi")},
		claims: []wantClaim{{pods: []string{"good"}}},
		unschedulable: map[string]string{
			"bad":      `pod default/bad: spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: "Near" is not one of`,
			"bad-pref": `pod default/bad-pref: spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0].values: operator Gt needs exactly one integer value, got "four"`,
			"fields":   "pod default/fields: is pinned by matchFields to existing nodes (metadata.name In [node-7]); a new node cannot match",
		},
	}})
}

func TestSolveRejectsMalformedInput(t *testing.T) {
	catalog := testCatalog()
	for _, tc := range []struct {
		name string
		in   Input
		want string
	}{
		{"nil pod", Input{Pods: []*corev1.Pod{makePod("a", "1", ""), nil}}, "pods[1]: is nil"},
		{"nil daemonset pod", Input{DaemonSetPods: []*corev1.Pod{nil}}, "daemonSetPods[0]: is nil"},
		{"nil template", Input{Templates: []*NodeTemplate{defaultTemplate(catalog), nil}}, "templates[1]: is nil"},
		{"unnamed template", Input{Templates: []*NodeTemplate{{InstanceTypes: catalog}}}, "templates[0].nodePool: must not be empty"},
		{"nil node", Input{Nodes: []ExistingNode{{}}}, "nodes[0].node: is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Solve(tc.in)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Solve: error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSolveDeterministic solves one varied problem with its pods, nodes and
// templates in many orders and expects the same plan every time.
func TestSolveDeterministic(t *testing.T) {
	catalog := testCatalog()
	var ps []*corev1.Pod
	cpus := []string{"100m", "250m", "500m", "1", "1500m", "2", "3500m", "7"}
	mems := []string{"128Mi", "512Mi", "1Gi", "2Gi", "6Gi", "14Gi"}
	for i := range 60 {
		var opts []podOpt
		switch i % 7 {
		case 1:
			opts = append(opts, withNodeSelector(offerings.LabelArch, "amd64"))
		case 2:
			opts = append(opts, withPreferred(5, req(offerings.LabelZone, corev1.NodeSelectorOpIn, "test-1b")))
		case 3:
			opts = append(opts, withToleration(tolerateEqual("dedicated", "batch", corev1.TaintEffectNoSchedule)))
		case 4:
			opts = append(opts, withHostPort(9100))
		}
		// Several pods are identical but for their names.
		ps = append(ps, makePod("pod-"+string(rune('A'+i%26))+string(rune('a'+i/26)), cpus[(i/3)%len(cpus)], mems[(i/2)%len(mems)], opts...))
	}
	batch := defaultTemplate(catalog)
	batch.NodePool, batch.Taints = "batch", []corev1.Taint{taint("dedicated", "batch", corev1.TaintEffectNoSchedule)}
	nodes := []ExistingNode{
		{Node: makeNode("n1", "4", "8Gi", map[string]string{offerings.LabelArch: "amd64"})},
		{Node: makeNode("n2", "2", "8Gi", map[string]string{offerings.LabelArch: "arm64"})},
	}
	in := Input{Pods: ps, Nodes: nodes, Templates: []*NodeTemplate{defaultTemplate(catalog), batch},
		DaemonSetPods: []*corev1.Pod{makePod("ds", "100m", "100Mi")}}
	first, err := Solve(in)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, in, first)
	want := summarizePlan(first, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		shuffled := in
		shuffled.Pods = slices.Clone(in.Pods)
		shuffled.Nodes = slices.Clone(in.Nodes)
		shuffled.Templates = slices.Clone(in.Templates)
		rng.Shuffle(len(shuffled.Pods), func(a, b int) { shuffled.Pods[a], shuffled.Pods[b] = shuffled.Pods[b], shuffled.Pods[a] })
		rng.Shuffle(len(shuffled.Nodes), func(a, b int) { shuffled.Nodes[a], shuffled.Nodes[b] = shuffled.Nodes[b], shuffled.Nodes[a] })
		rng.Shuffle(len(shuffled.Templates), func(a, b int) {
			shuffled.Templates[a], shuffled.Templates[b] = shuffled.Templates[b], shuffled.Templates[a]
		})
		plan, err := Solve(shuffled)
		if err != nil {
			t.Fatal(err)
		}
		if got := summarizePlan(plan, 0); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffle %d changed the plan:\n%s\nwant:\n%s", i, mustYAML(got), mustYAML(want))
		}
	}
}

func TestNodeClaimAccessors(t *testing.T) {
	catalog := testCatalog()
	tmpl := defaultTemplate(catalog)
	tmpl.Labels = map[string]string{"team": "a"}
	plan, err := Solve(Input{
		Pods:      []*corev1.Pod{makePod("web", "1", "1Gi", withNodeSelector(offerings.LabelZone, "test-1b", offerings.LabelArch, "amd64"))},
		Templates: []*NodeTemplate{tmpl},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.NodeClaims) != 1 {
		t.Fatalf("want one claim, got %s", mustYAML(summarizePlan(plan, 0)))
	}
	c := plan.NodeClaims[0]
	it, o, ok := c.CheapestOffering()
	if !ok || it.Name != "c5.large" || o.Zone != "test-1b" || o.CapacityType != offerings.CapacityTypeSpot {
		t.Errorf("CheapestOffering = %v %+v %v, want c5.large spot in test-1b", it.Name, o, ok)
	}
	if want := o.Price + (offerings.NodeCosts{}).Hourly(); math.Abs(c.Price()-want) > 1e-12 {
		t.Errorf("Price = %g, want the offering's %g plus the default root volume: %g", c.Price(), o.Price, want)
	}
	if c.ListPrice() != o.Price {
		t.Errorf("ListPrice = %g, want %g", c.ListPrice(), o.Price)
	}
	labels := c.Labels()
	for k, v := range map[string]string{"team": "a", offerings.LabelZone: "test-1b", offerings.LabelArch: "amd64", offerings.LabelNodePool: "default"} {
		if labels[k] != v {
			t.Errorf("Labels()[%s] = %q, want %q (labels %v)", k, labels[k], v, labels)
		}
	}
	if _, fixed := labels[offerings.LabelCapacityType]; fixed {
		t.Errorf("Labels() fixes the capacity type, which the claim leaves open: %v", labels)
	}
	for _, off := range c.Offerings(it) {
		if off.Zone != "test-1b" || !off.Available {
			t.Errorf("Offerings(%s) returned %+v outside the claim's requirements", it.Name, off)
		}
	}
	e := &PodError{Pod: makePod("x", "", ""), Reason: "no room"}
	if e.Error() != "pod default/x: no room" {
		t.Errorf("PodError.Error() = %q", e.Error())
	}
}
