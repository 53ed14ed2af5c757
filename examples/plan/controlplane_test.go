package main

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fleetpack/fleetpack/internal/testcontrolplane"
)

// TestControlPlanePlanKubeconfig plans a live cluster: a real API server
// holding a Ready node, a pod running on it, a pod nominated to it, a
// pending pod and a daemonset that runs nowhere yet; the NodePool comes from
// a file. The nominated pod is not planned again and takes room on the node,
// the pending pod that does not fit next to it gets a new node, and the
// daemonset is overhead on that node.
func TestControlPlanePlanKubeconfig(t *testing.T) {
	cp := testcontrolplane.Start(t, testcontrolplane.Options{WithoutScheduler: true, WithoutControllerManager: true})
	ctx := t.Context()
	admin := cp.Client(t)
	ns := cp.Namespace(t)

	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("29")}
	node, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "plan-node-a", Labels: map[string]string{corev1.LabelArchStable: "amd64", corev1.LabelOSStable: "linux", corev1.LabelHostname: "plan-node-a"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status = corev1.NodeStatus{Capacity: res, Allocatable: res, Conditions: []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
	}}}
	if _, err := admin.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{clusterPod("running", node.Name, "250m"), clusterPod("nominated", "", "1500m"), clusterPod("web", "", "1"), clusterPod("small", "", "100m")} {
		p.Namespace, p.UID = ns, types.UID("")
		p.Spec.Containers[0].Image = "registry.k8s.io/pause:3.10"
		created, err := admin.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Name == "nominated" {
			created.Status.NominatedNodeName = node.Name
			if _, err := admin.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	agent := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns}}
	agent.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}}
	agent.Spec.Template.Labels = map[string]string{"app": "agent"}
	agent.Spec.Template.Spec.Containers = []corev1.Container{{Name: "a", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
	}}}
	if _, err := admin.AppsV1().DaemonSets(ns).Create(ctx, agent, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	p := runJSON(t, "-kubeconfig", cp.Kubeconfig(), "-f", "testdata/pools.yaml")
	where := allPods(t, p)
	if len(where) != 2 || where[ns+"/small"] != "node plan-node-a" || where[ns+"/web"] != "claim 0 (default)" {
		t.Errorf("placements %v: want %s/small on plan-node-a, %s/web on a new node, the nominated pod not planned", where, ns, ns)
	}
	for _, c := range p.NodeClaims {
		if c.DaemonSetRequests["cpu"] != "250m" {
			t.Errorf("claim %s: daemonSetRequests %v, want the agent's 250m cpu", c.NodePool, c.DaemonSetRequests)
		}
	}
}
