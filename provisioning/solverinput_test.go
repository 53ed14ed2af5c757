package provisioning

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

func inputPod(name, node string) *corev1.Pod {
	p := ownedPod(name, "web", nil)
	p.UID = types.UID("uid-" + name)
	p.Spec.NodeName = node
	p.Spec.Containers = []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}
	return p
}

func daemonPod(name, node, ds string) *corev1.Pod {
	p := inputPod(name, node)
	p.OwnerReferences[0].Kind, p.OwnerReferences[0].Name, p.OwnerReferences[0].UID = "DaemonSet", ds, types.UID("uid-"+ds)
	return p
}

func poolNode(name, pool string) *corev1.Node {
	n := readyNode(name)
	n.Labels = map[string]string{offerings.LabelNodePool: pool, offerings.LabelArch: "amd64"}
	n.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
	return n
}

// onNodes maps each existing node in the input to its pods' names.
func onNodes(in scheduling.Input) map[string][]string {
	out := map[string][]string{}
	for _, n := range in.Nodes {
		names := []string{}
		for _, p := range n.Pods {
			names = append(names, p.Name)
		}
		slices.Sort(names)
		out[n.Node.Name] = names
	}
	return out
}

func podNames(pods []*corev1.Pod) []string {
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	return names
}

func TestSolverInputPodsAndNodes(t *testing.T) {
	deleting := poolNode("n-deleting", "default")
	deleting.DeletionTimestamp = &metav1.Time{}
	nominatedByStatus := inputPod("by-status", "")
	nominatedByStatus.Status.NominatedNodeName = "n-a"
	overridden := inputPod("overridden", "")
	overridden.Status.NominatedNodeName = "n-a"
	toDeleting := inputPod("to-deleting", "")
	toDeleting.Status.NominatedNodeName = "n-deleting"
	gated := inputPod("gated", "")
	gated.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "wait"}}
	done := inputPod("done", "n-a")
	done.Status.Phase = corev1.PodSucceeded
	state := ClusterState{
		Nodes: []*corev1.Node{poolNode("n-b", "default"), poolNode("n-a", "default"), poolNode("n-leaving", "default"), deleting},
		Pods: []*corev1.Pod{
			inputPod("bound-a", "n-a"), done, nominatedByStatus, overridden, toDeleting, gated,
			inputPod("by-us", ""), inputPod("pending", ""),
			inputPod("on-leaving", "n-leaving"), inputPod("leaving-unreserved", "n-leaving"),
		},
	}
	opts := SolverInputOptions{
		NodePools: []*NodePool{pool("default", 0)}, Catalog: testCatalog(),
		Nominations:  map[types.UID]string{"uid-by-us": "n-b", "uid-overridden": ""},
		Reservations: map[types.UID]string{"uid-on-leaving": "n-b"},
		Leaving:      map[string]bool{"n-leaving": true},
	}
	in, err := SolverInput(state, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Pending: not bound, not gated, not expected on a live node; an
	// override to "" beats the status, a nomination to a deleting node
	// does not count.
	if got, want := podNames(in.Pods), []string{"overridden", "to-deleting", "pending"}; !slices.Equal(got, want) {
		t.Errorf("pods to place %v, want %v", got, want)
	}
	want := map[string][]string{
		"n-a": {"bound-a", "by-status"},
		"n-b": {"by-us", "on-leaving"}, // a nomination of ours, a reservation
	}
	if got := onNodes(in); len(got) != len(want) || !slices.Equal(got["n-a"], want["n-a"]) || !slices.Equal(got["n-b"], want["n-b"]) {
		t.Errorf("existing nodes %v, want %v (leaving and deleting nodes left out)", got, want)
	}
	// The leaving node still counts against the pool's limits; the
	// deleting one does not.
	opts.NodePools[0].Spec.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("7")}
	in, err = SolverInput(state, opts)
	if err != nil {
		t.Fatal(err)
	}
	left := in.Templates[0].Limits[corev1.ResourceCPU]
	if left.Cmp(resource.MustParse("1")) != 0 {
		t.Errorf("cpu left under the limit %s, want 1 (three 2-cpu nodes count)", left.String())
	}
	// Pods given are solved instead of the pending ones.
	in, _ = SolverInput(state, SolverInputOptions{NodePools: opts.NodePools, Catalog: opts.Catalog, Pods: state.Pods[8:9], Leaving: opts.Leaving})
	if got := podNames(in.Pods); !slices.Equal(got, []string{"on-leaving"}) {
		t.Errorf("pods to place %v", got)
	}
}

func TestSolverInputStartupTaintsHidden(t *testing.T) {
	np := pool("default", 0)
	startup := corev1.Taint{Key: "example.com/agent-not-ready", Effect: corev1.TaintEffectNoSchedule}
	other := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}
	np.Spec.Template.Spec.StartupTaints = []corev1.Taint{startup}
	mine, foreign := poolNode("mine", "default"), poolNode("foreign", "other")
	mine.Spec.Taints = []corev1.Taint{startup, other}
	foreign.Spec.Taints = []corev1.Taint{startup}
	in, err := SolverInput(ClusterState{Nodes: []*corev1.Node{mine, foreign}}, SolverInputOptions{NodePools: []*NodePool{np}, Catalog: testCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]corev1.Taint{}
	for _, n := range in.Nodes {
		got[n.Node.Name] = n.Node.Spec.Taints
	}
	if !slices.Equal(got["mine"], []corev1.Taint{other}) {
		t.Errorf("taints of the pool's node %v, want only %v", got["mine"], other)
	}
	if len(got["foreign"]) != 1 {
		t.Errorf("another pool's startup taint hidden: %v", got["foreign"])
	}
	if len(mine.Spec.Taints) != 2 {
		t.Error("the caller's node was modified")
	}
}

func TestSolverInputDaemonSets(t *testing.T) {
	running := daemonPod("agent-x", "n-a", "agent")
	running.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: offerings.LabelArch, Operator: corev1.NodeSelectorOpIn, Values: []string{"arm64"}}},
			MatchFields:      []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n-a"}}},
		}},
	}}}
	pinnedOnly := daemonPod("pinned-x", "n-a", "pinned")
	pinnedOnly.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n-a"}}}}},
	}}}
	stale := daemonPod("listed-x", "n-a", "listed")
	listed := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "listed", Namespace: "kube-system", UID: "uid-listed"}}
	listed.Spec.Template.Labels = map[string]string{"app": "listed"}
	listed.Spec.Template.Spec.Containers = []corev1.Container{{Name: "new"}}
	listed.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
	notRunning := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "gpu", Namespace: "kube-system"}}
	notRunning.Spec.Template.Spec.Containers = []corev1.Container{{Name: "gpu"}}
	state := ClusterState{
		Nodes:      []*corev1.Node{poolNode("n-a", "default")},
		Pods:       []*corev1.Pod{running, daemonPod("agent-y", "n-a", "agent"), pinnedOnly, stale},
		DaemonSets: []*appsv1.DaemonSet{listed, notRunning},
	}
	in, err := SolverInput(state, SolverInputOptions{NodePools: []*NodePool{pool("default", 0)}, Catalog: testCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	byOwner := map[string]*corev1.Pod{}
	for _, p := range in.DaemonSetPods {
		if !IsDaemonSetPod(p) || p.Spec.NodeName != "" {
			t.Errorf("daemonset pod %s: not an unbound daemonset pod", p.Name)
		}
		byOwner[p.OwnerReferences[0].Name] = p
	}
	if len(in.DaemonSetPods) != 4 {
		t.Fatalf("%d daemonset pods, want one per daemonset (4): %v", len(in.DaemonSetPods), podNames(in.DaemonSetPods))
	}
	terms := byOwner["agent"].Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchFields) != 0 || len(terms[0].MatchExpressions) != 1 {
		t.Errorf("agent's affinity %+v: want the arch term kept, the node pin dropped", terms)
	}
	if running.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields == nil {
		t.Error("the running pod was modified")
	}
	if a := byOwner["pinned"].Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution; a != nil {
		t.Errorf("pinned's affinity kept: %+v", a)
	}
	if c := byOwner["listed"].Spec.Containers; c[0].Name != "new" || byOwner["listed"].Labels["app"] != "listed" {
		t.Errorf("the listed daemonset's template did not win over its running pod: %+v", c)
	}
	// The controller's tolerations are added once: the template's own
	// not-ready toleration is not doubled.
	if n := len(byOwner["listed"].Spec.Tolerations); n != len(daemonSetTolerations) {
		t.Errorf("listed has %d tolerations, want %d", n, len(daemonSetTolerations))
	}
	gpu := byOwner["gpu"]
	if gpu == nil || !slices.ContainsFunc(gpu.Spec.Tolerations, func(tol corev1.Toleration) bool { return tol.Key == corev1.TaintNodeNotReady }) {
		t.Errorf("the daemonset with no pod: %+v", gpu)
	}
}

func TestSolverInputNamesABrokenPool(t *testing.T) {
	bad := pool("bad", 0)
	bad.Spec.Template.Spec.Requirements = append(bad.Spec.Template.Spec.Requirements, corev1.NodeSelectorRequirement{Key: "x", Operator: "Sideways"})
	in, err := SolverInput(ClusterState{}, SolverInputOptions{NodePools: []*NodePool{bad, pool("good", 0)}, Catalog: testCatalog()})
	if err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("error %v does not name the broken pool", err)
	}
	if len(in.Templates) != 1 || in.Templates[0].NodePool != "good" {
		t.Errorf("templates %v, want only the good pool's", in.Templates)
	}
}
