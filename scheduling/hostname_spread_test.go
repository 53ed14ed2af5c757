package scheduling

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

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
