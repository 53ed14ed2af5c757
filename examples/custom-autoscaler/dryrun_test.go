package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/fleetpack/fleetpack/cloudprovider/aws"
	fakeec2 "github.com/fleetpack/fleetpack/cloudprovider/aws/fake"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
	"github.com/fleetpack/fleetpack/provisioning/kubecluster"
)

// A pool with a startup taint, on-demand only so that the instance the fake
// EC2 launches is the claim's cheapest type.
const taintedPool = `apiVersion: fleetpack.dev/v1
kind: NodePool
metadata:
  name: default
spec:
  template:
    spec:
      startupTaints:
        - key: example.com/agent-not-ready
          effect: NoSchedule
      requirements:
        - key: karpenter.sh/capacity-type
          operator: In
          values: ["on-demand"]
        - key: kubernetes.io/arch
          operator: In
          values: ["amd64"]
`

func readyNode(name, arch, pool, cpu string) *corev1.Node {
	labels := map[string]string{corev1.LabelArchStable: arch, corev1.LabelOSStable: "linux", corev1.LabelHostname: name}
	if pool != "" {
		labels[offerings.LabelNodePool] = pool
	}
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("29")}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{
			Capacity: res, Allocatable: res,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}},
		},
	}
}

// TestDryRunPrintsThePlanRunMakes builds a cluster with each thing the dry
// run once got wrong, prints the dry run's plan, then lets a Provisioner
// make its pass on the same cluster and checks that it did what was
// printed:
//   - a daemonset limited to arm64 nodes (node affinity), which is no
//     overhead on the amd64 nodes the pool launches;
//   - a node still carrying its NodePool's startup taint, which pods need
//     not tolerate;
//   - a pod already nominated to that node, which needs no capacity and
//     takes room on it;
//   - a cordoned node (an interrupted one) that takes no pods.
func TestDryRunPrintsThePlanRunMakes(t *testing.T) {
	controller := true
	armAgent := pod("arm-agent-x", "node-arm", "2")
	armAgent.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "arm-agent", UID: "ds-arm-agent", Controller: &controller}}
	armAgent.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelArchStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"arm64"}}},
			MatchFields:      []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"node-arm"}}},
		}},
	}}}

	armNode := readyNode("node-arm", "arm64", "", "8")
	armNode.Spec.Unschedulable = true // cordoned by an interruption
	tainted := readyNode("node-b", "amd64", "default", "2")
	tainted.Spec.Taints = []corev1.Taint{{Key: "example.com/agent-not-ready", Effect: corev1.TaintEffectNoSchedule}}
	nominated := pod("nominated", "", "1")
	nominated.Status.NominatedNodeName = "node-b"

	objects := []runtime.Object{
		armNode, tainted, armAgent, nominated,
		pod("fits-b", "", "1"), // fits node-b next to the nominated pod
		pod("web-0", "", "1500m"),
		pod("web-1", "", "1500m"),
	}
	client := fake.NewClientset(objects...)
	ctx := t.Context()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cluster, err := kubecluster.New(client, kubecluster.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pools, err := provisioning.ParseNodePools([]byte(taintedPool))
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := dryRun(ctx, cluster, pools, catalog, true, &out); err != nil {
		t.Fatal(err)
	}
	printed := out.String()

	subnets := map[string]string{"karpenter.sh/discovery": "test"}
	provider, err := aws.New(fakeec2.NewFromCatalog(catalog, fakeec2.Options{}, subnets, 100), aws.Options{
		ClusterName: "test", Region: "us-east-1", Catalog: aws.StaticCatalog(catalog), Logger: logger,
		Unavailable:     offerings.NewUnavailableOfferings(offerings.UnavailableOfferingsOptions{}),
		LaunchTemplates: map[string]aws.LaunchTemplate{"amd64": {Name: "lt-amd64"}, "arm64": {Name: "lt-arm64"}},
		SubnetSelector:  subnets,
	})
	if err != nil {
		t.Fatal(err)
	}
	prov, err := provisioning.New(cluster, provider, pools, provisioning.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	res, err := prov.Provision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var made []string
	for _, l := range res.Launched {
		made = append(made, fmt.Sprintf("launch nodepool=%s cheapest=%s %s pods=%s", l.NodePool,
			l.Node.Labels[offerings.LabelInstanceType], l.Node.Labels[offerings.LabelCapacityType], sortedPodNames(l.Pods)))
	}
	for _, e := range res.Existing {
		made = append(made, fmt.Sprintf("existing node=%s pods=%s", e.Node.Name, sortedPodNames(e.Pods)))
	}
	for _, u := range res.Unschedulable {
		made = append(made, "unschedulable pod="+provisioning.PodKey(u.Pod))
	}
	slices.Sort(made)
	if got := planLines(printed); !slices.Equal(got, made) {
		t.Errorf("the dry run printed\n  %s\nbut the pass made\n  %s\n(full dry-run output:\n%s)", strings.Join(got, "\n  "), strings.Join(made, "\n  "), printed)
	}
	if !strings.Contains(printed, "existing node=node-b pods=default/fits-b\n") {
		t.Errorf("fits-b is not placed on the startup-tainted node next to the nominated pod:\n%s", printed)
	}
}

// planLines reduces dry-run output to what a pass can be compared on: each
// launch's pool, cheapest type, capacity type and pods (sorted), each
// existing placement, each unschedulable pod.
func planLines(text string) []string {
	launch := regexp.MustCompile(`^  launch nodepool=(\S+) cheapest=(\S+) (\S+) .* pods=(\S*)$`)
	existing := regexp.MustCompile(`^  existing node=(\S+) pods=(\S*)$`)
	unsched := regexp.MustCompile(`^  unschedulable pod=(\S+): `)
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if m := launch.FindStringSubmatch(line); m != nil {
			out = append(out, fmt.Sprintf("launch nodepool=%s cheapest=%s %s pods=%s", m[1], m[2], m[3], sortedList(m[4])))
		} else if m := existing.FindStringSubmatch(line); m != nil {
			out = append(out, fmt.Sprintf("existing node=%s pods=%s", m[1], sortedList(m[2])))
		} else if m := unsched.FindStringSubmatch(line); m != nil {
			out = append(out, "unschedulable pod="+m[1])
		}
	}
	slices.Sort(out)
	return out
}

func sortedList(csv string) string {
	names := strings.Split(csv, ",")
	slices.Sort(names)
	return strings.Join(names, ",")
}

func sortedPodNames(pods []*corev1.Pod) string {
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = provisioning.PodKey(p)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}
