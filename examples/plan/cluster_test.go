package main

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

func clusterPod(name, node, cpu string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("512Mi")},
		}}}},
	}
}

// TestReadClusterPlansTheLiveState reads a (fake) API server the way
// -kubeconfig does and plans it with a NodePool from a file: the pod
// nominated to the node takes room there, the daemonset that has no pod yet
// is overhead on new nodes, and a workload from the file is planned too.
func TestReadClusterPlansTheLiveState(t *testing.T) {
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("29")}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{corev1.LabelArchStable: "amd64", corev1.LabelOSStable: "linux"}},
		Status:     corev1.NodeStatus{Capacity: res, Allocatable: res, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	nominated := clusterPod("nominated", "", "1500m")
	nominated.Status.NominatedNodeName = "node-a"
	agent := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "kube-system", UID: "uid-agent"}}
	agent.Spec.Template.Spec.Containers = []corev1.Container{{Name: "a", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
	}}}
	client := fake.NewClientset(node, nominated, clusterPod("running", "node-a", "250m"), clusterPod("web", "", "1"), agent)

	sc, err := loadFiles([]string{"testdata/pools.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	sc.pending = append(sc.pending, clusterPod("extra", "", "100m"))
	if err := readCluster(t.Context(), client, sc); err != nil {
		t.Fatal(err)
	}
	catalog, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in, err := buildInput(sc, catalog)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := scheduling.Solve(in)
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]string{}
	for _, c := range plan.NodeClaims {
		for _, p := range c.Pods {
			where[p.Name] = "new"
		}
		if cpu := c.DaemonSetRequests[corev1.ResourceCPU]; cpu.Cmp(resource.MustParse("250m")) != 0 {
			t.Errorf("claim daemonset cpu %s, want the agent's 250m", cpu.String())
		}
	}
	for _, e := range plan.ExistingNodes {
		for _, p := range e.Pods {
			where[p.Name] = e.Node.Name
		}
	}
	for _, u := range plan.Unschedulable {
		where[u.Pod.Name] = "unschedulable: " + u.Reason
	}
	for _, a := range client.Actions() {
		if a.GetVerb() != "list" {
			t.Errorf("the tool made a %s %s call; it only reads", a.GetVerb(), a.GetResource().Resource)
		}
	}
	// node-a has 2 cpu: 250m running and 1500m nominated leave room for
	// extra (100m) but not web (1).
	if len(where) != 2 || where["web"] != "new" || where["extra"] != "node-a" {
		t.Errorf("placements %v, want web on a new node and extra on node-a; the nominated pod is not re-planned", where)
	}
}

func TestKubeconfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nodes in files", []string{"-kubeconfig", "/nonexistent", "-f", "testdata/scenario.yaml"}, `Node "node-a"`},
		{"unreadable kubeconfig", []string{"-kubeconfig", "/nonexistent", "-f", "testdata/pools.yaml"}, "-kubeconfig /nonexistent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runPlan(t, tc.args...)
			if code != 1 || out != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1 and a message with %q", code, out, errOut, tc.want)
			}
		})
	}
	sc, err := loadFiles([]string{"testdata/pools.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	sc.pending = append(sc.pending, clusterPod("web", "", "1"))
	if err := readCluster(t.Context(), fake.NewClientset(clusterPod("web", "", "1")), sc); err == nil || !strings.Contains(err.Error(), "default/web") {
		t.Errorf("a pod in the cluster and in the files: error %v", err)
	}

	// The cluster's pods count against the plan's bound with the files'.
	full, err := loadFiles([]string{"testdata/pools.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	filler := clusterPod("from-files", "", "1")
	full.pending = slices.Repeat([]*corev1.Pod{filler}, maxPlanPods)
	if err := readCluster(t.Context(), fake.NewClientset(clusterPod("one-too-many", "", "1")), full); err == nil || !strings.Contains(err.Error(), "more than 100000 pods") {
		t.Errorf("a cluster pod past the bound: error %v, want one naming the bound", err)
	}
}
