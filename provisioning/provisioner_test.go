package provisioning

import (
	"context"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/fleetpack/fleetpack/cloudprovider"
	"github.com/fleetpack/fleetpack/internal/fixture"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

func offer(zone, ct string, price float64) offerings.Offering {
	return offerings.Offering{Zone: zone, CapacityType: ct, Price: price, Available: true}
}

// testCatalog has two zones, spot at about 40% of on-demand.
func testCatalog() []*offerings.InstanceType {
	mk := func(name, arch string, cpu, memGi int64, od float64) *offerings.InstanceType {
		it := testInstanceType(name, arch, cpu, memGi, 29,
			offer("us-east-1a", offerings.CapacityTypeSpot, od*0.4), offer("us-east-1b", offerings.CapacityTypeSpot, od*0.42),
			offer("us-east-1a", offerings.CapacityTypeOnDemand, od), offer("us-east-1b", offerings.CapacityTypeOnDemand, od))
		it.Labels[offerings.LabelInstanceCategory] = name[:1]
		return it
	}
	return []*offerings.InstanceType{
		mk("m5.large", "amd64", 2, 8, 0.096),
		mk("m5.xlarge", "amd64", 4, 16, 0.192),
		mk("c5.large", "amd64", 2, 4, 0.085),
		mk("m6g.large", "arm64", 2, 8, 0.077),
	}
}

func pool(name string, weight int32, reqs ...corev1.NodeSelectorRequirement) *NodePool {
	np := &NodePool{}
	np.APIVersion, np.Kind, np.Name = APIVersion, Kind, name
	if weight > 0 {
		np.Spec.Weight = &weight
	}
	np.Spec.Template.Spec.Requirements = append([]corev1.NodeSelectorRequirement{
		{Key: offerings.LabelArch, Operator: corev1.NodeSelectorOpIn, Values: []string{"amd64"}},
	}, reqs...)
	np.Spec.Disruption.ConsolidateAfter = &NillableDuration{Duration: 30 * time.Second}
	return np
}

func capacityTypes(cts ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: offerings.LabelCapacityType, Operator: corev1.NodeSelectorOpIn, Values: cts}
}

type env struct {
	t       *testing.T
	ctx     context.Context
	clock   *clocktesting.FakeClock
	cluster *MemoryCluster
	cloud   *fakeCloud
	prov    *Provisioner
	reg     *prometheus.Registry
	metrics *Metrics
}

func newEnv(t *testing.T, pools ...*NodePool) *env {
	t.Helper()
	fc := clocktesting.NewFakeClock(testEpoch)
	e := &env{t: t, ctx: t.Context(), clock: fc, reg: prometheus.NewRegistry()}
	e.cluster = NewMemoryCluster(fc, MemoryClusterOptions{NodeReadyDelay: 30 * time.Second, RecreateControlledPods: true})
	e.cloud = newFakeCloud(testCatalog())
	m, err := NewMetrics(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	e.metrics = m
	e.prov, err = New(e.cluster, e.cloud, pools, Options{Clock: fc, Metrics: m, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) addPods(deployment string, n int, cpu, mem string, selector map[string]string) []*corev1.Pod {
	e.t.Helper()
	var out []*corev1.Pod
	for i := range n {
		p := fixture.Pod("default", deployment+"-"+string(rune('a'+i)), fixture.Labels(map[string]string{"app": deployment}),
			fixture.OwnedBy("ReplicaSet", deployment), fixture.NodeSelector(selector), fixture.Requests(cpu, mem))
		if err := e.cluster.CreatePod(e.ctx, p); err != nil {
			e.t.Fatal(err)
		}
		q, _ := e.cluster.GetPod(p.Namespace, p.Name)
		out = append(out, q)
	}
	return out
}

func (e *env) provision() *Result {
	e.t.Helper()
	res, err := e.prov.Provision(e.ctx)
	if err != nil {
		e.t.Fatalf("Provision: %v", err)
	}
	return res
}

func (e *env) nodes() []*corev1.Node {
	nodes, _ := e.cluster.ListNodes(e.ctx)
	return nodes
}

func (e *env) pod(name string) *corev1.Pod {
	p, err := e.cluster.GetPod("default", name)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// TestSpotWalkthrough is Karpenter's Spot walkthrough: inflate-spot (1 cpu,
// 256M, nodeSelector intent=apps and capacity-type spot) scaled 0 -> 2 gets
// one Spot node carrying the labels users list; scaled back to 0, its node
// goes after consolidateAfter.
func TestSpotWalkthrough(t *testing.T) {
	spot := pool("spot", 0, capacityTypes("spot"))
	spot.Spec.Template.Metadata.Labels = map[string]string{"intent": "apps"}
	def := pool("default", 0)
	e := newEnv(t, spot, def)

	if res := e.provision(); len(res.Launched) != 0 {
		t.Fatalf("launched %d nodes with no pods", len(res.Launched))
	}
	e.addPods("inflate-spot", 2, "1", "256M", map[string]string{"intent": "apps", offerings.LabelCapacityType: "spot"})
	res := e.provision()
	if len(res.Launched) != 1 || len(res.Unschedulable) != 0 {
		t.Fatalf("launched %d nodes, unschedulable %v; want 1 node", len(res.Launched), res.Unschedulable)
	}
	node := res.Launched[0].Node
	for k, want := range map[string]string{
		"intent": "apps", offerings.LabelNodePool: "spot", offerings.LabelCapacityType: "spot",
		offerings.LabelInstanceType: "c5.large", offerings.LabelZone: "us-east-1a", offerings.LabelArch: "amd64",
	} {
		if got := node.Labels[k]; got != want {
			t.Errorf("node label %s = %q, want %q", k, got, want)
		}
	}
	if len(res.Launched[0].Pods) != 2 {
		t.Errorf("pods on the node: %d, want 2", len(res.Launched[0].Pods))
	}
	for _, name := range []string{"inflate-spot-a", "inflate-spot-b"} {
		if got := e.pod(name).Status.NominatedNodeName; got != node.Name {
			t.Errorf("%s nominated to %q, want %q", name, got, node.Name)
		}
	}
	if got := metricValue(e.metrics.NodesLaunched.WithLabelValues("spot", "spot")); got != 1 {
		t.Errorf("nodes launched metric = %v", got)
	}
	// The node's bill is its offering's list price plus the default root
	// volume (20 GiB gp3).
	bill, list := metricValue(e.metrics.LaunchedHourlyCost.WithLabelValues("spot", "bill")), metricValue(e.metrics.LaunchedHourlyCost.WithLabelValues("spot", "list"))
	if list <= 0 || math.Abs(bill-list-(offerings.NodeCosts{}).Hourly()) > 1e-9 {
		t.Errorf("launched hourly cost: bill %v, list %v; want the bill %v above the list price", bill, list, (offerings.NodeCosts{}).Hourly())
	}

	// The node becomes Ready and the pods bind.
	e.clock.Step(30 * time.Second)
	for _, name := range []string{"inflate-spot-a", "inflate-spot-b"} {
		if got := e.pod(name).Spec.NodeName; got != node.Name {
			t.Errorf("%s bound to %q, want %q", name, got, node.Name)
		}
	}
	if res := e.provision(); len(res.Launched) != 0 {
		t.Fatalf("second pass launched %d nodes", len(res.Launched))
	}
	if removed, _, _ := e.prov.RemoveEmptyNodes(e.ctx); len(removed) != 0 {
		t.Fatalf("removed a busy node: %v", removed)
	}

	// Scale to 0.
	for _, name := range []string{"inflate-spot-a", "inflate-spot-b"} {
		if err := e.cluster.DeletePodNoRecreate(e.ctx, "default", name); err != nil {
			t.Fatal(err)
		}
	}
	removed, next, err := e.prov.RemoveEmptyNodes(e.ctx)
	if err != nil || len(removed) != 0 {
		t.Fatalf("removed %v (err %v) before consolidateAfter", removed, err)
	}
	if want := e.clock.Now().Add(30 * time.Second); !next.Equal(want) {
		t.Errorf("next removal at %s, want %s", next, want)
	}
	e.clock.Step(29 * time.Second)
	if removed, _, _ := e.prov.RemoveEmptyNodes(e.ctx); len(removed) != 0 {
		t.Fatalf("removed %v a second early", removed)
	}
	e.clock.Step(time.Second)
	removed, _, err = e.prov.RemoveEmptyNodes(e.ctx)
	if err != nil || len(removed) != 1 || removed[0] != node.Name {
		t.Fatalf("removed %v (err %v), want %s", removed, err, node.Name)
	}
	if len(e.nodes()) != 0 || e.cloud.running() != 0 {
		t.Errorf("after removal: %d nodes, %d instances", len(e.nodes()), e.cloud.running())
	}
	if got := metricValue(e.metrics.NodesTerminated.WithLabelValues("spot", "spot", "empty")); got != 1 {
		t.Errorf("nodes terminated metric = %v", got)
	}
}

func TestInFlightCapacityIsNotLaunchedTwice(t *testing.T) {
	e := newEnv(t, pool("default", 0))
	e.addPods("web", 3, "1", "1Gi", nil)
	res := e.provision()
	if len(res.Launched) == 0 || res.Pods() != 3 {
		t.Fatalf("first pass: launched %d, placed %d", len(res.Launched), res.Pods())
	}
	launched := len(res.Launched)
	// Before the nodes are Ready nothing is pending.
	if res := e.provision(); len(res.Launched) != 0 || res.Pods() != 0 {
		t.Fatalf("second pass launched %d, placed %d", len(res.Launched), res.Pods())
	}
	// Whatever the solver bought (c5.large x2 or one m5.xlarge), a cpu is
	// left free: a small pod is nominated to the in-flight node, no launch.
	e.addPods("small", 1, "100m", "64Mi", nil)
	res = e.provision()
	if len(res.Launched) != 0 || len(res.Existing) != 1 {
		t.Fatalf("small pod: launched %d, existing placements %d; want it on in-flight capacity", len(res.Launched), len(res.Existing))
	}
	if got := e.pod("small-a").Status.NominatedNodeName; got != res.Existing[0].Node.Name {
		t.Errorf("small pod nominated to %q, want %q", got, res.Existing[0].Node.Name)
	}
	if got := len(e.nodes()); got != launched+len(res.Launched) {
		t.Errorf("cluster has %d nodes, want %d", got, launched+len(res.Launched))
	}
}

func TestLimitsStopLaunches(t *testing.T) {
	np := pool("default", 0)
	np.Spec.Limits = corev1.ResourceList{scheduling.ResourceNodes: resource.MustParse("1")}
	e := newEnv(t, np)
	// Each pod needs its own m5.xlarge-sized node.
	e.addPods("big", 3, "3", "2Gi", nil)
	res := e.provision()
	if len(res.Launched) != 1 || len(res.Unschedulable) != 2 {
		t.Fatalf("launched %d, unschedulable %d; want 1 and 2", len(res.Launched), len(res.Unschedulable))
	}
	// Limits count in-flight nodes: the next pass launches nothing either.
	res = e.provision()
	if len(res.Launched) != 0 || len(res.Unschedulable) != 2 {
		t.Fatalf("second pass launched %d, unschedulable %d", len(res.Launched), len(res.Unschedulable))
	}
	var failed int
	for _, ev := range e.cluster.Events() {
		if ev.Reason == "FailedScheduling" && strings.HasPrefix(ev.Object, "Pod default/big-") {
			failed++
		}
	}
	if failed != 4 {
		t.Errorf("FailedScheduling events: %d, want 4", failed)
	}
	// Raising the limit lets the pods through on the next pass.
	np2 := pool("default", 0)
	np2.Spec.Limits = corev1.ResourceList{scheduling.ResourceNodes: resource.MustParse("3")}
	if err := e.prov.SetNodePools([]*NodePool{np2}); err != nil {
		t.Fatal(err)
	}
	if res := e.provision(); len(res.Launched) != 2 {
		t.Fatalf("after raising the limit launched %d, want 2", len(res.Launched))
	}
}

func TestWeightsPickNodePool(t *testing.T) {
	cheap := pool("cheap", 10, capacityTypes("spot"))
	preferred := pool("preferred", 90, capacityTypes("on-demand"))
	e := newEnv(t, cheap, preferred)
	e.addPods("web", 1, "1", "1Gi", nil)
	res := e.provision()
	if len(res.Launched) != 1 || res.Launched[0].NodePool != "preferred" {
		t.Fatalf("launched %+v, want one node from the weight-90 pool", res.Launched)
	}
	if ct := res.Launched[0].Node.Labels[offerings.LabelCapacityType]; ct != "on-demand" {
		t.Errorf("capacity type %q", ct)
	}
}

func TestICEOnEverySpotPoolFallsBackToOnDemand(t *testing.T) {
	np := pool("flex", 0, capacityTypes("spot", "on-demand"))
	e := newEnv(t, np)
	var all []cloudprovider.OfferingKey
	for _, it := range testCatalog() {
		for _, o := range it.Offerings {
			if o.CapacityType == offerings.CapacityTypeSpot {
				all = append(all, cloudprovider.OfferingKey{CapacityType: o.CapacityType, InstanceType: it.Name, Zone: o.Zone})
			}
		}
	}
	e.cloud.setNoCapacity(all...)
	e.addPods("web", 2, "1", "1Gi", nil)
	res := e.provision()
	if len(res.Launched) != 1 || len(res.Unschedulable) != 0 {
		t.Fatalf("launched %d, unschedulable %v", len(res.Launched), res.Unschedulable)
	}
	if ct := res.Launched[0].Node.Labels[offerings.LabelCapacityType]; ct != "on-demand" {
		t.Fatalf("capacity type %q, want on-demand", ct)
	}
	if got := metricValue(e.metrics.LaunchFailures.WithLabelValues("flex", "insufficient_capacity")); got < 1 {
		t.Errorf("launch failures metric = %v", got)
	}
	var unavailable float64
	for _, k := range all {
		unavailable += metricValue(e.metrics.UnavailableOfferings.WithLabelValues(k.CapacityType, k.InstanceType, k.Zone))
	}
	if unavailable == 0 {
		t.Error("no unavailable offerings recorded")
	}
	if e.cloud.running() != 1 {
		t.Errorf("%d instances running, want 1", e.cloud.running())
	}
}

func TestICEOnSpotOnlyPoolReportsPods(t *testing.T) {
	e := newEnv(t, pool("spot", 0, capacityTypes("spot")))
	var all []cloudprovider.OfferingKey
	for _, it := range testCatalog() {
		for _, o := range it.Offerings {
			all = append(all, cloudprovider.OfferingKey{CapacityType: o.CapacityType, InstanceType: it.Name, Zone: o.Zone})
		}
	}
	e.cloud.setNoCapacity(all...)
	e.addPods("web", 1, "1", "1Gi", nil)
	res := e.provision()
	if len(res.Launched) != 0 || len(res.Unschedulable) != 1 {
		t.Fatalf("launched %d, unschedulable %d", len(res.Launched), len(res.Unschedulable))
	}
	if e.pod("web-a").Spec.NodeName != "" || e.pod("web-a").Status.NominatedNodeName != "" {
		t.Error("pod placed although nothing launched")
	}
	if e.cloud.creates > DefaultMaxICERetries+1 {
		t.Errorf("%d Create calls, want at most %d", e.cloud.creates, DefaultMaxICERetries+1)
	}
}

func TestFailedLaunchLeaksNothingAndLosesNoPod(t *testing.T) {
	e := newEnv(t, pool("default", 0))
	e.cloud.createErr = errBoom
	e.addPods("web", 2, "1", "1Gi", nil)
	res := e.provision()
	if len(res.Launched) != 0 || len(res.Unschedulable) != 2 {
		t.Fatalf("launched %d, unschedulable %d", len(res.Launched), len(res.Unschedulable))
	}
	if !strings.Contains(res.Unschedulable[0].Reason, "boom") {
		t.Errorf("reason %q does not carry the launch error", res.Unschedulable[0].Reason)
	}
	if pending, _ := e.prov.PendingPods(e.ctx); len(pending) != 2 {
		t.Fatalf("%d pods pending after failed launch, want 2", len(pending))
	}
	e.cloud.createErr = nil
	if res := e.provision(); len(res.Launched) != 1 || res.Pods() != 2 {
		t.Fatalf("retry launched %d placing %d", len(res.Launched), res.Pods())
	}
}

// failingRegistration fails CreateNode, as an API server might.
type failingRegistration struct{ *MemoryCluster }

func (failingRegistration) CreateNode(context.Context, *corev1.Node) error { return errBoom }

func TestRegistrationFailureTerminatesInstance(t *testing.T) {
	e := newEnv(t, pool("default", 0))
	prov, err := New(failingRegistration{e.cluster}, e.cloud, e.prov.NodePools(), Options{Clock: e.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.addPods("web", 1, "1", "1Gi", nil)
	res, err := prov.Provision(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Launched) != 0 || len(res.Unschedulable) != 1 {
		t.Fatalf("launched %d, unschedulable %d", len(res.Launched), len(res.Unschedulable))
	}
	if e.cloud.creates != 1 || e.cloud.running() != 0 {
		t.Fatalf("creates %d, running %d: the instance leaked", e.cloud.creates, e.cloud.running())
	}
}

// registeredThenFailing registers the node (as a kubelet that got there
// first would have) and then fails, as a failed label patch does.
type registeredThenFailing struct{ *MemoryCluster }

func (c registeredThenFailing) CreateNode(ctx context.Context, node *corev1.Node) error {
	if err := c.MemoryCluster.CreateNode(ctx, node); err != nil {
		return err
	}
	return errBoom
}

// TestRegistrationFailureRemovesRegisteredNode: when registration fails
// after the node object exists, the instance is terminated and the node
// object goes with it, rather than lingering unowned and NotReady.
func TestRegistrationFailureRemovesRegisteredNode(t *testing.T) {
	e := newEnv(t, pool("default", 0))
	prov, err := New(registeredThenFailing{e.cluster}, e.cloud, e.prov.NodePools(), Options{Clock: e.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.addPods("web", 1, "1", "1Gi", nil)
	if _, err := prov.Provision(e.ctx); err != nil {
		t.Fatal(err)
	}
	if e.cloud.creates != 1 || e.cloud.running() != 0 {
		t.Fatalf("creates %d, running %d: the instance leaked", e.cloud.creates, e.cloud.running())
	}
	if nodes := e.nodes(); len(nodes) != 0 {
		t.Fatalf("nodes after the failed registration: %d, want the registered one removed", len(nodes))
	}
}

func TestProvisionNowReplacesLeavingNode(t *testing.T) {
	e := newEnv(t, pool("default", 0))
	pods := e.addPods("web", 2, "1", "1Gi", nil)
	first := e.provision()
	e.clock.Step(30 * time.Second)
	old := first.Launched[0].Node.Name
	for _, p := range pods {
		if got := e.pod(p.Name).Spec.NodeName; got != old {
			t.Fatalf("%s not bound: %q", p.Name, got)
		}
	}
	// Interruption: cordon, provision replacements for the node's pods.
	if err := e.cluster.Cordon(e.ctx, old); err != nil {
		t.Fatal(err)
	}
	var bound []*corev1.Pod
	for _, p := range pods {
		bound = append(bound, e.pod(p.Name))
	}
	res, err := e.prov.ProvisionNow(e.ctx, bound)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Launched) != 1 || res.Launched[0].Node.Name == old {
		t.Fatalf("ProvisionNow launched %+v", res.Launched)
	}
	replacement := res.Launched[0].Node.Name
	// A duplicate notice asks again: the pods are covered, nothing launches.
	dup, err := e.prov.ProvisionNow(e.ctx, bound)
	if err != nil {
		t.Fatal(err)
	}
	if len(dup.Launched) != 0 || dup.Pods() != 2 || dup.Existing[0].Node.Name != replacement {
		t.Fatalf("duplicate ProvisionNow: launched %d, placed %d", len(dup.Launched), dup.Pods())
	}
	// While the drain waits (a budget, say), the replacement's capacity is
	// held: other pending pods get capacity of their own...
	e.addPods("other", 2, "1", "1Gi", nil)
	other := e.provision()
	if other.Pods() != 2 {
		t.Fatalf("other pods: placed %d", other.Pods())
	}
	for _, pl := range other.Existing {
		if pl.Node.Name == replacement {
			t.Fatalf("pending pods took the capacity reserved for the drain: %d pods", len(pl.Pods))
		}
	}
	// ...and the replacement is not reaped as empty mid-drain.
	e.clock.Step(30 * time.Second)
	_, _, _ = e.prov.RemoveEmptyNodes(e.ctx)
	e.clock.Step(time.Minute)
	if removed, _, _ := e.prov.RemoveEmptyNodes(e.ctx); slices.Contains(removed, replacement) {
		t.Fatal("replacement removed as empty while the drain waits")
	}
	// Drain: the evicted pods come back pending and land on the replacement
	// without another launch.
	for _, p := range bound {
		if err := e.cluster.Evict(e.ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	again := e.provision()
	if len(again.Launched) != 0 || again.Pods() != 2 {
		t.Fatalf("after drain: launched %d, placed %d; want 0 and 2", len(again.Launched), again.Pods())
	}
	for _, pl := range again.Existing {
		if pl.Node.Name != replacement {
			t.Errorf("replacement pods went to %s, want %s", pl.Node.Name, replacement)
		}
	}
}

func TestNominationExpires(t *testing.T) {
	e := newEnv(t, pool("default", 0))
	e.addPods("web", 1, "1", "1Gi", nil)
	res := e.provision()
	node := res.Launched[0].Node.Name
	// Something keeps the pod from binding: the node is cordoned.
	if err := e.cluster.Cordon(e.ctx, node); err != nil {
		t.Fatal(err)
	}
	e.clock.Step(30 * time.Second) // node Ready
	if pending, _ := e.prov.PendingPods(e.ctx); len(pending) != 0 {
		t.Fatalf("pod pending while its nomination is fresh")
	}
	e.clock.Step(DefaultNominationTTL + time.Second)
	res = e.provision()
	if len(res.Launched) != 1 || res.Launched[0].Node.Name == node {
		t.Fatalf("after nomination expiry launched %+v, want a new node", res.Launched)
	}
}

func TestDaemonSetOverheadAndStartupTaints(t *testing.T) {
	np := pool("default", 0)
	np.Spec.Template.Spec.StartupTaints = []corev1.Taint{{Key: "example.com/agent-not-ready", Effect: corev1.TaintEffectNoExecute}}
	e := newEnv(t, np)
	e.addPods("web", 1, "1", "1Gi", nil)
	res := e.provision()
	node := res.Launched[0].Node
	if !slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == "example.com/agent-not-ready" }) {
		t.Fatalf("node lacks startup taint: %v", node.Spec.Taints)
	}
	// A daemonset pod runs on the node; it does not keep the node busy.
	ctrl := true
	ds := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "agent-1", Namespace: "kube-system",
		OwnerReferences: []metav1.OwnerReference{{Kind: "DaemonSet", Name: "agent", UID: types.UID("ds"), Controller: &ctrl}}},
		Spec: corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m")}}}}}}
	if err := e.cluster.CreatePod(e.ctx, ds); err != nil {
		t.Fatal(err)
	}
	// A second pod that tolerates nothing still fits the in-flight node: the
	// startup taint does not count.
	e.addPods("more", 1, "100m", "64Mi", nil)
	res = e.provision()
	if len(res.Launched) != 0 || len(res.Existing) != 1 || res.Existing[0].Node.Name != node.Name {
		t.Fatalf("second pod: launched %d existing %+v", len(res.Launched), res.Existing)
	}
	e.clock.Step(30 * time.Second)
	for _, name := range []string{"web-a", "more-a"} {
		_ = e.cluster.DeletePodNoRecreate(e.ctx, "default", name)
	}
	_, _, _ = e.prov.RemoveEmptyNodes(e.ctx)
	e.clock.Step(30 * time.Second)
	if removed, _, _ := e.prov.RemoveEmptyNodes(e.ctx); len(removed) != 1 {
		t.Fatalf("node with only a daemonset pod not removed: %v", removed)
	}
}

func TestUnplaceablePodIsReported(t *testing.T) {
	e := newEnv(t, pool("default", 0))
	e.addPods("huge", 1, "64", "1Gi", nil)
	res := e.provision()
	if len(res.Launched) != 0 || len(res.Unschedulable) != 1 || res.Unschedulable[0].Reason == "" {
		t.Fatalf("launched %d, unschedulable %+v", len(res.Launched), res.Unschedulable)
	}
	if got := metricValue(e.metrics.PodsUnschedulable); got != 1 {
		t.Errorf("unschedulable metric = %v", got)
	}
}

func TestNewValidates(t *testing.T) {
	bad := pool("bad", 0)
	w := int32(500)
	bad.Spec.Weight = &w
	if _, err := New(NewMemoryCluster(clocktesting.NewFakeClock(testEpoch), MemoryClusterOptions{}), newFakeCloud(nil), []*NodePool{bad}, Options{}); err == nil || !strings.Contains(err.Error(), "spec.weight") {
		t.Fatalf("New with invalid pool: %v", err)
	}
	if _, err := New(NewMemoryCluster(clocktesting.NewFakeClock(testEpoch), MemoryClusterOptions{}), newFakeCloud(nil), []*NodePool{pool("a", 0), pool("a", 0)}, Options{}); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("New with duplicate pools: %v", err)
	}
	if _, err := New(NewMemoryCluster(clocktesting.NewFakeClock(testEpoch), MemoryClusterOptions{}), newFakeCloud(nil), nil, Options{BatchIdleDuration: time.Minute, BatchMaxDuration: time.Second}); err == nil {
		t.Fatal("New accepted max window shorter than idle window")
	}
}

func TestMetricsRegisterOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("registering twice on one registry succeeded")
	}
}

// metricValue reads a counter or gauge.
func metricValue(m prometheus.Metric) float64 {
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		panic(err)
	}
	switch {
	case out.Counter != nil:
		return out.Counter.GetValue()
	case out.Gauge != nil:
		return out.Gauge.GetValue()
	}
	return 0
}

func TestNodeThatNeverBecomesReadyIsTerminated(t *testing.T) {
	e := newEnv(t, pool("default", 0))
	// The virtual kubelet never reports.
	e.cluster = NewMemoryCluster(e.clock, MemoryClusterOptions{NodeReadyDelay: 24 * time.Hour})
	prov, err := New(e.cluster, e.cloud, e.prov.NodePools(), Options{Clock: e.clock, Metrics: e.metrics, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.prov = prov
	e.addPods("web", 1, "1", "1Gi", nil)
	res := e.provision()
	stuck := res.Launched[0].Node.Name
	removed, next, err := prov.RemoveEmptyNodes(e.ctx)
	if err != nil || len(removed) != 0 {
		t.Fatalf("removed %v (%v) at once", removed, err)
	}
	if want := e.clock.Now().Add(DefaultLaunchTimeout); !next.Equal(want) {
		t.Errorf("next check %s, want %s", next, want)
	}
	e.clock.Step(DefaultLaunchTimeout)
	removed, _, err = prov.RemoveEmptyNodes(e.ctx)
	if err != nil || len(removed) != 1 || removed[0] != stuck {
		t.Fatalf("removed %v (%v), want %s", removed, err, stuck)
	}
	if e.cloud.running() != 0 {
		t.Fatal("instance of the stuck node not terminated")
	}
	if got := metricValue(e.metrics.NodesTerminated.WithLabelValues("default", "on-demand", "launch_timeout")); got != 1 {
		t.Errorf("terminated metric %v", got)
	}
	// Its pod is pending again and gets a new node.
	res = e.provision()
	if len(res.Launched) != 1 || res.Launched[0].Node.Name == stuck {
		t.Fatalf("pod not re-provisioned: %+v", res.Launched)
	}
}

// gatedCloud holds every Create until the test releases it, recording how
// many run at once.
type gatedCloud struct {
	*fakeCloud
	started chan struct{}
	gate    chan struct{}
	mu      sync.Mutex
	running int
	peak    int
}

func (g *gatedCloud) Create(ctx context.Context, claim *scheduling.NodeClaim) (*corev1.Node, error) {
	g.mu.Lock()
	g.running++
	g.peak = max(g.peak, g.running)
	g.mu.Unlock()
	g.started <- struct{}{}
	<-g.gate
	defer func() {
		g.mu.Lock()
		g.running--
		g.mu.Unlock()
	}()
	return g.fakeCloud.Create(ctx, claim)
}

func TestLaunchesAreConcurrentAndBounded(t *testing.T) {
	e := newEnv(t, pool("default", 0))
	cloud := &gatedCloud{fakeCloud: e.cloud, started: make(chan struct{}, 16), gate: make(chan struct{})}
	prov, err := New(e.cluster, cloud, e.prov.NodePools(), Options{Clock: e.clock, MaxConcurrentLaunches: 2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.addPods("big", 6, "3", "2Gi", nil) // one node each
	done := make(chan *Result)
	go func() {
		res, err := prov.Provision(e.ctx)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	// Two launches run at once before either finishes...
	<-cloud.started
	<-cloud.started
	// Each release frees a slot for one more launch, until all six started.
	for i := range 6 {
		cloud.gate <- struct{}{}
		if i < 4 {
			<-cloud.started
		}
	}
	res := <-done
	if len(res.Launched) != 6 {
		t.Fatalf("launched %d, want 6", len(res.Launched))
	}
	// ...and never more than two.
	if cloud.peak != 2 {
		t.Errorf("peak concurrent launches %d, want 2", cloud.peak)
	}
}

func TestConcurrentPassesDoNotLaunchTwice(t *testing.T) {
	e := newEnv(t, pool("default", 0))
	e.addPods("web", 8, "1", "1Gi", nil)
	var wg sync.WaitGroup
	results := make([]*Result, 4)
	for i := range results {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				results[i], err = e.prov.Provision(e.ctx)
			} else {
				pending, _ := e.prov.PendingPods(e.ctx)
				results[i], err = e.prov.ProvisionNow(e.ctx, pending)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	launched := 0
	for _, r := range results {
		launched += len(r.Launched)
	}
	if nodes := len(e.nodes()); nodes != launched || e.cloud.running() != launched {
		t.Errorf("%d nodes, %d instances, %d launched", nodes, e.cloud.running(), launched)
	}
	// 8 one-cpu pods: the first pass buys what it needs; later passes buy
	// nothing. Compare with one pass on a fresh cluster.
	fresh := newEnv(t, pool("default", 0))
	fresh.addPods("web", 8, "1", "1Gi", nil)
	if want := len(fresh.provision().Launched); launched != want {
		t.Errorf("concurrent passes launched %d nodes, one pass launches %d", launched, want)
	}
	if pending, _ := e.prov.PendingPods(e.ctx); len(pending) != 0 {
		t.Errorf("%d pods left pending", len(pending))
	}
}
