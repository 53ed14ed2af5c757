package scheduling

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/offerings"
)

// A daemonset binding host port 9100 runs on every new node; a pending pod
// wanting host port 9100 can never run there.
func TestRegressionDaemonSetHostPort(t *testing.T) {
	ds := makePod("node-exporter", "10m", "10Mi", withHostPort(9100))
	pod := makePod("app", "1", "1Gi", withHostPort(9100))
	plan, err := Solve(Input{Pods: []*corev1.Pod{pod}, DaemonSetPods: []*corev1.Pod{ds}, Templates: []*NodeTemplate{defaultTemplate(testCatalog())}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.NodeClaims) > 0 {
		t.Errorf("pod placed on a claim whose daemonset already binds host port 9100: %v", podNames(plan.NodeClaims[0].Pods))
	}
}

// A pod pinned by matchFields metadata.name to an existing node with room.
func TestRegressionMatchFieldsExistingNode(t *testing.T) {
	node := makeNode("n1", "4", "16Gi", map[string]string{"kubernetes.io/hostname": "n1"})
	pod := makePod("pinned", "1", "1Gi")
	ensureNodeAffinity(pod)
	pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}},
	}}}
	plan, err := Solve(Input{Pods: []*corev1.Pod{pod}, Nodes: []ExistingNode{{Node: node}}, Templates: []*NodeTemplate{defaultTemplate(testCatalog())}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.ExistingNodes) == 0 {
		for _, u := range plan.Unschedulable {
			t.Errorf("unschedulable: %s", u.Error())
		}
	}
}

func TestRegressionReasonDeterministic(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 30; i++ {
		pod := makePod("x", "1", "1Gi", withRequest("example.com/a", "1"), withRequest("example.com/b", "1"), withRequest("example.com/c", "1"))
		plan, err := Solve(Input{Pods: []*corev1.Pod{pod}, Templates: []*NodeTemplate{defaultTemplate(testCatalog())}})
		if err != nil {
			t.Fatal(err)
		}
		seen[plan.Unschedulable[0].Reason] = true
	}
	if len(seen) > 1 {
		for r := range seen {
			t.Errorf("reason: %s", r)
		}
	}
}

func TestRegressionHostnameSelector(t *testing.T) {
	node := makeNode("n1", "2", "4Gi", map[string]string{"kubernetes.io/hostname": "n1"})
	pod := makePod("pinned", "3", "1Gi", withNodeSelector("kubernetes.io/hostname", "n1"))
	plan, err := Solve(Input{Pods: []*corev1.Pod{pod}, Nodes: []ExistingNode{{Node: node}}, Templates: []*NodeTemplate{defaultTemplate(testCatalog())}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range plan.NodeClaims {
		t.Errorf("claim %s for pod pinned to hostname n1: reqs %s pods %v", c.Hostname, c.Requirements.String(), podNames(c.Pods))
	}
}

func TestRegressionSharedClaimRequirements(t *testing.T) {
	pods := []*corev1.Pod{makePod("a", "30", "1Gi"), makePod("b", "30", "1Gi")}
	plan, err := Solve(Input{Pods: pods, Templates: []*NodeTemplate{defaultTemplate(testCatalog())}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.NodeClaims) != 2 {
		t.Fatalf("claims %d", len(plan.NodeClaims))
	}
	before := plan.NodeClaims[1].Requirements.String()
	r2, _ := NewRequirement(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "spot")
	plan.NodeClaims[0].Requirements.Add(r2)
	if after := plan.NodeClaims[1].Requirements.String(); after != before {
		t.Errorf("claim 1 requirements changed by editing claim 0: %s -> %s", before, after)
	}
}

func TestRegressionResumeSkipsPortFreeNode(t *testing.T) {
	n1 := makeNode("n1", "4", "8Gi", nil)
	n2 := makeNode("n2", "1", "8Gi", nil)
	running := makePod("running", "100m", "100Mi", withHostPort(8080))
	a := makePod("a", "1", "1Gi", withHostPort(8080))
	b := makePod("b", "1", "1Gi", withHostPort(9090))
	plan, err := Solve(Input{Pods: []*corev1.Pod{a, b}, Nodes: []ExistingNode{{Node: n1, Pods: []*corev1.Pod{running}}, {Node: n2}}, Templates: []*NodeTemplate{defaultTemplate(testCatalog())}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range plan.Unschedulable {
		t.Errorf("%s (n1 has room and port 9090 free)", u.Error())
	}
	for _, e := range plan.ExistingNodes {
		t.Logf("%s: %v", e.Node.Name, podNames(e.Pods))
	}
	for _, c := range plan.NodeClaims {
		t.Errorf("new claim for %v although n1 has room and port 9090 free", podNames(c.Pods))
	}
}

func TestRegressionResumeAcrossTopology(t *testing.T) {
	n1 := makeNode("n1", "4", "8Gi", map[string]string{"kubernetes.io/hostname": "n1"})
	n2 := makeNode("n2", "1", "8Gi", map[string]string{"kubernetes.io/hostname": "n2"})
	running := makePod("running", "100m", "100Mi", withLabels("app", "x"))
	a := makePod("a", "1", "1Gi", withPodAffinity(requiredAntiAffinity, "kubernetes.io/hostname", map[string]string{"app": "x"}))
	b := makePod("b", "1", "1Gi")
	plan, err := Solve(Input{Pods: []*corev1.Pod{a, b}, Nodes: []ExistingNode{{Node: n1, Pods: []*corev1.Pod{running}}, {Node: n2}}, Templates: []*NodeTemplate{defaultTemplate(testCatalog())}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range plan.ExistingNodes {
		t.Logf("%s: %v", e.Node.Name, podNames(e.Pods))
	}
	for _, c := range plan.NodeClaims {
		t.Errorf("new claim for %v although n1 has room", podNames(c.Pods))
	}
}

func TestRegressionResumeAcrossLabels(t *testing.T) {
	n1 := makeNode("n1", "4", "8Gi", map[string]string{"kubernetes.io/hostname": "n1"})
	n2 := makeNode("n2", "1", "8Gi", map[string]string{"kubernetes.io/hostname": "n2"})
	running := makePod("running", "100m", "100Mi", withPodAffinity(requiredAntiAffinity, "kubernetes.io/hostname", map[string]string{"app": "y"}))
	a := makePod("a", "1", "1Gi", withLabels("app", "y"))
	b := makePod("b", "1", "1Gi")
	plan, err := Solve(Input{Pods: []*corev1.Pod{a, b}, Nodes: []ExistingNode{{Node: n1, Pods: []*corev1.Pod{running}}, {Node: n2}}, Templates: []*NodeTemplate{defaultTemplate(testCatalog())}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range plan.ExistingNodes {
		t.Logf("%s: %v", e.Node.Name, podNames(e.Pods))
	}
	for _, c := range plan.NodeClaims {
		t.Errorf("new claim for %v although n1 has room", podNames(c.Pods))
	}
}

func TestRegressionOddInputs(t *testing.T) {
	zero := makeType(typeSpec{name: "z.zero", cpu: "0", memory: "0", price: 0.1})
	huge := makeType(typeSpec{name: "h.huge", cpu: "9000000000", memory: "8Ei", price: 1})
	noOff := makeType(typeSpec{name: "n.nooff", cpu: "4", memory: "8Gi", price: 1})
	noOff.Offerings = nil
	empty := &corev1.Pod{}
	empty.Name = "empty"
	big := makePod("big", "9000000000", "7Ei")
	big2 := makePod("big2", "9000000000", "7Ei")
	neg := makePod("neg", "-1", "-1Gi")
	tmpl := &NodeTemplate{NodePool: "p", InstanceTypes: []*offerings.InstanceType{zero, huge, noOff}}
	tmpl2 := &NodeTemplate{NodePool: "q"}
	for _, in := range []Input{
		{Pods: []*corev1.Pod{empty, big, big2, neg}, Templates: []*NodeTemplate{tmpl, tmpl2}, Nodes: []ExistingNode{{Node: &corev1.Node{}, Pods: []*corev1.Pod{nil}}}, Namespaces: []*corev1.Namespace{nil}, MaxInstanceTypes: -3},
		{Pods: []*corev1.Pod{empty}},
		{},
	} {
		plan, err := Solve(in)
		if err != nil {
			t.Fatalf("odd but well-formed input rejected: %v", err)
		}
		// Every pod is accounted for exactly once, and no claim lists a
		// type that cannot hold its pods.
		seen := map[*corev1.Pod]int{}
		for _, c := range plan.NodeClaims {
			for _, p := range c.Pods {
				seen[p]++
			}
			for _, it := range c.InstanceTypes {
				if it == zero || it == noOff {
					t.Errorf("claim %v lists %s, which can hold nothing", podNames(c.Pods), it.Name)
				}
			}
		}
		for _, u := range plan.Unschedulable {
			seen[u.Pod]++
		}
		for _, e := range plan.ExistingNodes {
			for _, p := range e.Pods {
				seen[p]++
			}
		}
		for _, p := range in.Pods {
			if seen[p] != 1 {
				t.Errorf("pod %q accounted for %d times, want 1", p.Name, seen[p])
			}
		}
	}
}

func TestRegressionHostnameSpreadNoNewNode(t *testing.T) {
	n1 := makeNode("n1", "4", "8Gi", map[string]string{"kubernetes.io/hostname": "n1"})
	running := makePod("running", "100m", "100Mi", withLabels("app", "x"))
	p := makePod("p", "1", "1Gi", withLabels("app", "x"), withSpread("kubernetes.io/hostname", 1, corev1.DoNotSchedule, map[string]string{"app": "x"}))
	tmpl := defaultTemplate(testCatalog())
	tmpl.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	plan, err := Solve(Input{Pods: []*corev1.Pod{p}, Nodes: []ExistingNode{{Node: n1, Pods: []*corev1.Pod{running}}}, Templates: []*NodeTemplate{tmpl}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range plan.Unschedulable {
		t.Errorf("%s (kube-scheduler: only n1 eligible, skew 0)", u.Error())
	}
}

func TestRegressionNodePoolSelector(t *testing.T) {
	p := makePod("p", "1", "1Gi", withNodeSelector(offerings.LabelNodePool, "gpu"))
	plan, err := Solve(Input{Pods: []*corev1.Pod{p}, Templates: []*NodeTemplate{defaultTemplate(testCatalog())}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range plan.NodeClaims {
		t.Errorf("pod selecting nodepool gpu placed on a claim of nodepool %s (labels %v)", c.Template.NodePool, c.Labels())
	}
}

func TestRegressionSecondTermPNSBeforeSoftSpread(t *testing.T) {
	zone := offerings.LabelZone
	n1 := withNodeTaints(makeNode("n1", "8", "16Gi", map[string]string{zone: "test-1a"}), corev1.Taint{Key: "spare", Effect: corev1.TaintEffectPreferNoSchedule})
	n2 := makeNode("n2", "8", "16Gi", map[string]string{zone: "test-1a"})
	r1 := makePod("r1", "100m", "100Mi", withLabels("app", "x"))
	r2 := makePod("r2", "100m", "100Mi", withLabels("app", "x"))
	p := makePod("p", "1", "1Gi", withLabels("app", "x"),
		withSpread("kubernetes.io/hostname", 1, corev1.ScheduleAnyway, map[string]string{"app": "x"}),
		withRequiredTerms([]corev1.NodeSelectorRequirement{req("nonexistent", corev1.NodeSelectorOpIn, "v")},
			[]corev1.NodeSelectorRequirement{req(zone, corev1.NodeSelectorOpIn, "test-1a")}))
	limited := defaultTemplate(testCatalog())
	limited.Limits = corev1.ResourceList{ResourceNodes: resource.MustParse("0")}
	plan, err := Solve(Input{Pods: []*corev1.Pod{p}, Nodes: []ExistingNode{{Node: n1}, {Node: n2, Pods: []*corev1.Pod{r1, r2}}}, Templates: []*NodeTemplate{limited}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range plan.ExistingNodes {
		if e.Node.Name == "n1" {
			t.Errorf("placed on PreferNoSchedule-tainted n1 though untainted n2 fits once ScheduleAnyway spread is relaxed")
		}
		t.Logf("%s: %v", e.Node.Name, podNames(e.Pods))
	}
	for _, c := range plan.NodeClaims {
		t.Logf("claim %v", podNames(c.Pods))
	}
	for _, u := range plan.Unschedulable {
		t.Logf("%s", u.Error())
	}
}
func TestRegressionOneTermControl(t *testing.T) {
	zone := offerings.LabelZone
	n1 := withNodeTaints(makeNode("n1", "8", "16Gi", map[string]string{zone: "test-1a"}), corev1.Taint{Key: "spare", Effect: corev1.TaintEffectPreferNoSchedule})
	n2 := makeNode("n2", "8", "16Gi", map[string]string{zone: "test-1a"})
	r1 := makePod("r1", "100m", "100Mi", withLabels("app", "x"))
	r2 := makePod("r2", "100m", "100Mi", withLabels("app", "x"))
	p := makePod("p", "1", "1Gi", withLabels("app", "x"),
		withSpread("kubernetes.io/hostname", 1, corev1.ScheduleAnyway, map[string]string{"app": "x"}),
		withRequiredTerms(
			[]corev1.NodeSelectorRequirement{req(zone, corev1.NodeSelectorOpIn, "test-1a")}))
	limited := defaultTemplate(testCatalog())
	limited.Limits = corev1.ResourceList{ResourceNodes: resource.MustParse("0")}
	plan, err := Solve(Input{Pods: []*corev1.Pod{p}, Nodes: []ExistingNode{{Node: n1}, {Node: n2, Pods: []*corev1.Pod{r1, r2}}}, Templates: []*NodeTemplate{limited}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range plan.ExistingNodes {
		if e.Node.Name == "n1" {
			t.Errorf("placed on PreferNoSchedule-tainted n1 though untainted n2 fits once ScheduleAnyway spread is relaxed")
		}
		t.Logf("%s: %v", e.Node.Name, podNames(e.Pods))
	}
	for _, c := range plan.NodeClaims {
		t.Logf("claim %v", podNames(c.Pods))
	}
	for _, u := range plan.Unschedulable {
		t.Logf("%s", u.Error())
	}
}

// Without templates no new node can be made, so hostname spread's minimum is
// over the existing nodes, as in Kubernetes.
func TestHostnameSpreadWithoutTemplatesUsesExistingNodes(t *testing.T) {
	running := func(name string) *corev1.Pod { return makePod(name, "100m", "64Mi", withLabels("app", "web")) }
	in := Input{
		Nodes: []ExistingNode{
			{Node: makeNode("n1", "4", "8Gi", map[string]string{}), Pods: []*corev1.Pod{running("r1")}},
			{Node: makeNode("n2", "4", "8Gi", map[string]string{}), Pods: []*corev1.Pod{running("r2")}},
		},
		Pods: []*corev1.Pod{makePod("new", "100m", "64Mi", withLabels("app", "web"), func(p *corev1.Pod) {
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.DoNotSchedule,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			}}
		})},
	}
	plan, err := Solve(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Unschedulable) != 0 || len(plan.ExistingNodes) != 1 || plan.ExistingNodes[0].Node.Name != "n1" {
		t.Fatalf("want the pod on n1 (skew 2-1 = 1 allowed); unschedulable=%v placements=%d", plan.Unschedulable, len(plan.ExistingNodes))
	}
}

// TestRunMemoResumesBeforeChangedClaims checks where a run of identical
// pods resumes once other pods came in between: at the previous pod's claim,
// unless a pod was placed since on an earlier claim or node, which may now
// answer differently.
func TestRunMemoResumesBeforeChangedClaims(t *testing.T) {
	topo := newTopology(nil, nil, nil, nil)
	class := &podClass{}
	v := &variant{class: class}
	pod := func(cpu int64) *podInfo { return &podInfo{class: class, requests: vec{cpu, 1 << 30}} }
	first, next, other := pod(1000), pod(1000), pod(500)
	var r runMemo
	check := func(step string, p *podInfo, wantNode, wantClaim int) {
		t.Helper()
		if n, c := r.resumeFrom(topo, p, v, levelAll); n != wantNode || c != wantClaim {
			t.Errorf("%s: resumes at node %d, claim %d; want node %d, claim %d", step, n, c, wantNode, wantClaim)
		}
	}
	check("nothing placed yet", next, 0, 0)
	r.changed(5)
	r.remember(topo, lastPlacement{pod: first, variant: v, level: levelAll, node: 2, claim: 5})
	check("right after an identical pod", next, 2, 5)
	check("a pod of other requests", other, 0, 0)
	r.changed(7)
	r.remember(topo, lastPlacement{pod: other, variant: v, level: levelAll, node: 2, claim: 7})
	check("after a placement on a later claim", next, 2, 5)
	check("the other run", pod(500), 2, 7)
	r.changed(3)
	check("after a placement on an earlier claim", next, 2, 3)
	r.changed(-1 - 1)
	check("after a placement on an earlier node", next, 1, 3)
	if n, c := r.resumeFrom(topo, next, v, levelNoAffinity); n != 0 || c != 0 {
		t.Errorf("another relaxation level resumes at node %d, claim %d; want the start", n, c)
	}
}
