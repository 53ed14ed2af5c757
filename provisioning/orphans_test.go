package provisioning

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/fleetpack/fleetpack/offerings"
)

// removeOrphans runs one RemoveOrphanedNodes pass, failing the test on error.
func (e *env) removeOrphans() ([]string, time.Time) {
	e.t.Helper()
	removed, next, err := e.prov.RemoveOrphanedNodes(e.ctx)
	if err != nil {
		e.t.Fatalf("RemoveOrphanedNodes: %v", err)
	}
	return removed, next
}

// setPools replaces the provisioner's NodePools, failing the test on error.
func (e *env) setPools(pools ...*NodePool) {
	e.t.Helper()
	if err := e.prov.SetNodePools(pools); err != nil {
		e.t.Fatal(err)
	}
}

// budget creates or replaces the PodDisruptionBudget "app" over app=name.
func (e *env) budget(app string, minAvailable int) {
	e.t.Helper()
	v := intstr.FromInt32(int32(minAvailable))
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: "default"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &v,
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		},
	}
	if err := e.cluster.CreatePDB(e.ctx, pdb); err != nil {
		e.t.Fatal(err)
	}
}

// poolNodes returns the names of the nodes labelled with pool.
func (e *env) poolNodes(pool string) []string {
	var out []string
	for _, n := range e.nodes() {
		if n.Labels[offerings.LabelNodePool] == pool {
			out = append(out, n.Name)
		}
	}
	return out
}

// appPods returns the pods labelled app=app, by the node they are bound to
// ("" for pending).
func (e *env) appPods(app string) map[string]int {
	pods, _ := e.cluster.ListPods(e.ctx)
	out := map[string]int{}
	for _, p := range pods {
		if p.Labels["app"] == app {
			out[p.Spec.NodeName]++
		}
	}
	return out
}

func (e *env) node(name string) *corev1.Node {
	e.t.Helper()
	n, err := e.cluster.GetNode(e.ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// launchOn provisions n pods of app on pool's nodes and lets them become
// Ready, returning the nodes launched.
func (e *env) launchOn(app string, n int, cpu string) []string {
	e.t.Helper()
	e.addPods(app, n, cpu, "1Gi", nil)
	res := e.provision()
	e.clock.Step(30 * time.Second)
	var names []string
	for _, l := range res.Launched {
		names = append(names, l.Node.Name)
	}
	if got := e.appPods(app)[""]; got != 0 {
		e.t.Fatalf("%d pods of %s not bound", got, app)
	}
	return names
}

func TestOrphanedNodeIsDrainedThroughBudgetAndRemoved(t *testing.T) {
	old, kept := pool("old", 0), pool("kept", 0)
	e := newEnv(t, old)
	nodes := e.launchOn("web", 2, "1")
	if len(nodes) != 1 {
		t.Fatalf("launched %v, want one node", nodes)
	}
	orphan := nodes[0]
	if !IsManaged(e.node(orphan)) {
		t.Fatalf("launched node lacks %s=%s: %v", LabelManagedBy, ManagedBy, e.node(orphan).Labels)
	}
	instance := e.node(orphan).Spec.ProviderID
	e.budget("web", 2) // no disruption allowed

	removedAt := e.clock.Now()
	e.setPools(kept)
	grace := DefaultOrphanGracePeriod
	if removed, next := e.removeOrphans(); len(removed) != 0 || !next.Equal(removedAt.Add(grace)) {
		t.Fatalf("within grace: removed %v, next %s; want none, %s", removed, next, removedAt.Add(grace))
	}
	e.clock.Step(grace - time.Second)
	e.removeOrphans()
	if e.node(orphan).Spec.Unschedulable {
		t.Fatal("node cordoned before the grace period ended")
	}

	// Grace over: cordoned, and replacement capacity launched in the
	// remaining pool before anything is evicted.
	e.clock.Step(time.Second)
	if removed, next := e.removeOrphans(); len(removed) != 0 || !next.Equal(e.clock.Now().Add(orphanDrainRetry)) {
		t.Fatalf("removed %v, next %s", removed, next)
	}
	if !e.node(orphan).Spec.Unschedulable {
		t.Fatal("orphaned node not cordoned")
	}
	replacements := e.poolNodes("kept")
	if len(replacements) == 0 {
		t.Fatal("no replacement capacity launched for the orphan's pods")
	}
	if got := e.appPods("web")[orphan]; got != 2 {
		t.Fatalf("%d pods left on the orphan before its replacement is Ready, want 2", got)
	}
	evictions := func(outcome string) float64 {
		return metricValue(e.metrics.OrphanEvictions.WithLabelValues(outcome))
	}
	if evictions("blocked")+evictions("evicted") != 0 {
		t.Fatal("evicted before the replacement was Ready")
	}

	// Replacement Ready: evictions start, and the budget holds them.
	e.clock.Step(30 * time.Second)
	for range 3 {
		if removed, _ := e.removeOrphans(); len(removed) != 0 {
			t.Fatalf("removed %v while the budget blocks", removed)
		}
		if got := e.appPods("web")[orphan]; got != 2 {
			t.Fatalf("%d pods on the orphan while the budget blocks, want 2", got)
		}
		e.clock.Step(orphanDrainRetry)
	}
	if evictions("blocked") == 0 {
		t.Fatal("no blocked eviction counted")
	}

	// The budget allows one at a time: each evicted pod's replica lands
	// on the replacement before the next goes.
	e.budget("web", 1)
	var removed []string
	for i := 0; len(removed) == 0; i++ {
		if i == 5 {
			t.Fatal("drain did not finish once the budget allowed it")
		}
		removed, _ = e.removeOrphans()
		if res := e.provision(); len(res.Launched) != 0 {
			t.Fatalf("replica launched a new node; the replacement should hold it: %+v", res.Launched)
		}
		e.clock.Step(orphanDrainRetry)
	}
	if !slices.Equal(removed, []string{orphan}) {
		t.Fatalf("removed %v, want %s", removed, orphan)
	}
	if _, err := e.cluster.GetNode(e.ctx, orphan); !IsNotFound(err) {
		t.Fatalf("orphan node still there: %v", err)
	}
	if _, err := e.cloud.Get(e.ctx, instance); err == nil {
		t.Fatal("orphan's instance not terminated")
	}
	got := e.appPods("web")
	onKept := 0
	for _, name := range replacements {
		onKept += got[name]
	}
	if onKept != 2 || len(got) != len(replacements) {
		t.Fatalf("web pods by node %v; want both on the kept pool's nodes %v", got, replacements)
	}
	if evictions("evicted") != 2 {
		t.Fatalf("evicted %v pods, want 2", evictions("evicted"))
	}
	if v := metricValue(e.metrics.NodesTerminated.WithLabelValues("old", offerings.CapacityTypeOnDemand, "orphaned")); v != 1 {
		t.Fatalf("nodes_terminated_total{reason=orphaned} = %v, want 1", v)
	}
	var reasons []string
	for _, ev := range e.cluster.Events() {
		if ev.Object == "Node "+orphan {
			reasons = append(reasons, ev.Reason)
		}
	}
	if !slices.Equal(reasons, []string{"DrainingOrphanedNode", "RemovedOrphanedNode"}) {
		t.Fatalf("events on the node: %v", reasons)
	}
}

func TestNodePoolBackWithinGraceDisruptsNothing(t *testing.T) {
	old, kept := pool("old", 0), pool("kept", 0)
	e := newEnv(t, old, kept)
	e.prov.opts.OrphanGracePeriod = time.Minute
	// Weight sends the pods to "old".
	w := int32(10)
	old.Spec.Weight = &w
	nodes := e.launchOn("web", 1, "1")
	if len(e.poolNodes("old")) != 1 {
		t.Fatalf("nodes %v not in pool old", nodes)
	}
	orphan := nodes[0]

	// A reload drops the pool; a pass sees it missing; it comes back.
	e.setPools(kept)
	e.clock.Step(30 * time.Second)
	e.removeOrphans()
	e.setPools(old, kept)
	e.clock.Step(time.Minute)
	if removed, next := e.removeOrphans(); len(removed) != 0 || !next.IsZero() {
		t.Fatalf("pool back: removed %v, next %s", removed, next)
	}
	// Dropped and back again with no pass in between, then dropped once
	// more: the grace period counts from the last drop.
	e.setPools(kept)
	e.clock.Step(30 * time.Second)
	e.setPools(old, kept)
	e.clock.Step(30 * time.Second)
	e.setPools(kept)
	e.clock.Step(59 * time.Second)
	e.removeOrphans()
	if n := e.node(orphan); n.Spec.Unschedulable || e.appPods("web")[orphan] != 1 || e.cloud.running() != 1 {
		t.Fatalf("node disrupted although its pool was missing for less than the grace period each time: unschedulable %v, pods %v", n.Spec.Unschedulable, e.appPods("web"))
	}
	if v := metricValue(e.metrics.OrphanedNodes.WithLabelValues("waiting")); v != 1 {
		t.Fatalf("orphaned{state=waiting} = %v, want 1", v)
	}
	// Past it, the same node does go.
	e.clock.Step(time.Second)
	e.removeOrphans()
	if !e.node(orphan).Spec.Unschedulable {
		t.Fatal("node not cordoned once its pool stayed missing past the grace period")
	}
}

func TestUnmarkedNodesOfMissingPoolAreUntouched(t *testing.T) {
	old, kept := pool("old", 0), pool("kept", 0)
	e := newEnv(t, old)
	e.prov.opts.OrphanGracePeriod = time.Minute
	ours := e.launchOn("ours", 1, "1")[0]
	// A node Karpenter launched for a NodePool named "old": same label, no
	// fleetpack mark, with a pod and an instance the cloud knows.
	theirs := readyNode("karpenter-node")
	theirs.Labels = map[string]string{offerings.LabelNodePool: "old", offerings.LabelCapacityType: offerings.CapacityTypeOnDemand}
	theirs.Spec.ProviderID = "aws:///us-east-1a/i-karpenter"
	theirs.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("29")}
	theirs.Status.Allocatable = theirs.Status.Capacity
	if err := e.cluster.CreateNode(e.ctx, theirs); err != nil {
		t.Fatal(err)
	}
	e.cloud.mu.Lock()
	e.cloud.instances[theirs.Spec.ProviderID] = theirs.DeepCopy()
	e.cloud.mu.Unlock()
	p := ownedPod("karp-a", "karp", map[string]string{"app": "karp"})
	p.Spec.NodeName = theirs.Name
	if err := e.cluster.CreatePod(e.ctx, p); err != nil {
		t.Fatal(err)
	}

	e.setPools(kept)
	e.clock.Step(time.Minute)
	var removed []string
	for range 4 {
		r, _ := e.removeOrphans()
		removed = append(removed, r...)
		e.provision()
		e.clock.Step(30 * time.Second)
	}
	if !slices.Equal(removed, []string{ours}) {
		t.Fatalf("removed %v, want only fleetpack's node %s", removed, ours)
	}
	n := e.node(theirs.Name)
	if n.Spec.Unschedulable {
		t.Fatal("unmarked node cordoned")
	}
	if got := e.pod("karp-a").Spec.NodeName; got != theirs.Name {
		t.Fatalf("pod on the unmarked node moved to %q", got)
	}
	if _, err := e.cloud.Get(e.ctx, theirs.Spec.ProviderID); err != nil {
		t.Fatalf("unmarked node's instance: %v", err)
	}
}

func TestOrphanDisruptionsAreBounded(t *testing.T) {
	old, kept := pool("old", 0), pool("kept", 0)
	e := newEnv(t, old)
	e.prov.opts.OrphanGracePeriod = time.Minute
	e.prov.opts.MaxOrphanDisruptions = 2
	// Three pods of 3 CPUs: one per node.
	nodes := e.launchOn("web", 3, "3")
	if len(nodes) != 3 {
		t.Fatalf("launched %d nodes, want 3", len(nodes))
	}
	e.budget("web", 3)
	e.setPools(kept)
	e.clock.Step(time.Minute)

	draining := func() int {
		n := 0
		for _, name := range nodes {
			if node, err := e.cluster.GetNode(e.ctx, name); err == nil && node.Spec.Unschedulable {
				n++
			}
		}
		return n
	}
	var removed []string
	maxSeen := 0
	for i := 0; len(removed) < 3; i++ {
		if i == 40 {
			t.Fatalf("drains did not finish: removed %v", removed)
		}
		if i == 4 {
			if got := metricValue(e.metrics.OrphanedNodes.WithLabelValues("queued")); got != 1 {
				t.Fatalf("orphaned{state=queued} = %v while two drains are held, want 1", got)
			}
			e.budget("web", 2) // let them go, one at a time
		}
		r, _ := e.removeOrphans()
		removed = append(removed, r...)
		maxSeen = max(maxSeen, draining())
		if d := draining(); d > 2 {
			t.Fatalf("%d orphaned nodes disrupted at once, bound is 2", d)
		}
		e.provision()
		e.clock.Step(orphanDrainRetry)
	}
	if maxSeen != 2 {
		t.Fatalf("at most %d nodes drained at once, want the bound, 2", maxSeen)
	}
	if got := e.appPods("web"); got[""] != 0 || len(e.poolNodes("old")) != 0 {
		t.Fatalf("after the drains: web pods by node %v, old nodes %v", got, e.poolNodes("old"))
	}
}

// quietCluster is a MemoryCluster whose change notifications the test sends
// itself, so that the loop wakes only when the test says.
type quietCluster struct {
	*MemoryCluster
	changes chan struct{}
}

func (q *quietCluster) Changes(context.Context) <-chan struct{} { return q.changes }

func TestRunDrainsNodesOfDeletedNodePool(t *testing.T) {
	old, kept := pool("old", 0), pool("kept", 0)
	e := newEnv(t, old)
	quiet := &quietCluster{MemoryCluster: e.cluster, changes: make(chan struct{}, 1)}
	poke := func() { quiet.changes <- struct{}{} }
	var err error
	e.prov, err = New(quiet, e.cloud, []*NodePool{old}, Options{Clock: e.clock, Metrics: e.metrics, OrphanGracePeriod: time.Minute, Logger: e.prov.log})
	if err != nil {
		t.Fatal(err)
	}
	waits, batches, removals := startRun(t, e)
	waitFor(t, waits, func(s loopState) bool { return !s.open })
	e.addPods("web", 1, "1", "1Gi", nil)
	poke()
	waitFor(t, waits, func(s loopState) bool { return s.open })
	e.clock.Step(time.Second)
	first := recv(t, batches)
	if len(first.Launched) != 1 {
		t.Fatalf("launched %d", len(first.Launched))
	}
	orphan := first.Launched[0].Node.Name
	e.clock.Step(30 * time.Second) // Ready, bound

	// Dropping the pool wakes the loop, which times the grace period
	// though nothing in the cluster changed.
	due := e.clock.Now().Add(time.Minute)
	e.setPools(kept)
	waitFor(t, waits, func(s loopState) bool { return s.emptyAt.Equal(due) })
	e.clock.Step(time.Minute) // cordon, replacement launched
	waitFor(t, waits, func(s loopState) bool { return s.emptyAt.After(due) })
	if !e.node(orphan).Spec.Unschedulable || len(e.poolNodes("kept")) != 1 {
		t.Fatalf("after the grace period: orphan cordoned %v, kept nodes %v", e.node(orphan).Spec.Unschedulable, e.poolNodes("kept"))
	}
	e.clock.Step(30 * time.Second) // replacement Ready: drain, remove
	if names := recv(t, removals); !slices.Equal(names, []string{orphan}) {
		t.Fatalf("removed %v, want %s", names, orphan)
	}
	poke() // the replica is pending
	waitFor(t, waits, func(s loopState) bool { return s.open })
	e.clock.Step(time.Second)
	if r := recv(t, batches); len(r.Launched) != 0 || r.Pods() != 1 {
		t.Fatalf("replica's batch: launched %d, placed %d; want 0 and 1", len(r.Launched), r.Pods())
	}
	got := e.appPods("web")
	if got[""] != 0 || len(got) != 1 || !slices.Contains(e.poolNodes("kept"), slices.Collect(maps.Keys(got))[0]) {
		t.Fatalf("web pods by node %v; want one on the kept pool %v", got, e.poolNodes("kept"))
	}
	if e.cloud.running() != 1 {
		t.Fatalf("%d instances running, want the replacement only", e.cloud.running())
	}
}

// TestEmptyNodeRemovalSparesUnmarkedNodes: an empty node of a known
// NodePool that fleetpack did not launch (Karpenter's, same label) is never
// reaped as empty, while fleetpack's own empty node is.
func TestEmptyNodeRemovalSparesUnmarkedNodes(t *testing.T) {
	e := newEnv(t, pool("old", 0))
	theirs := readyNode("karpenter-node")
	theirs.Labels = map[string]string{offerings.LabelNodePool: "old", offerings.LabelCapacityType: offerings.CapacityTypeOnDemand}
	theirs.Spec.ProviderID = "aws:///us-east-1a/i-karpenter"
	if err := e.cluster.CreateNode(e.ctx, theirs); err != nil {
		t.Fatal(err)
	}
	ours := readyNode("fleetpack-node")
	ours.Labels = map[string]string{offerings.LabelNodePool: "old", LabelManagedBy: ManagedBy}
	if err := e.cluster.CreateNode(e.ctx, ours); err != nil {
		t.Fatal(err)
	}
	var removed []string
	for range 3 {
		r, _, err := e.prov.RemoveEmptyNodes(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		removed = append(removed, r...)
		e.clock.Step(time.Hour)
	}
	if !slices.Equal(removed, []string{ours.Name}) {
		t.Fatalf("removed %v, want only fleetpack's empty node %s", removed, ours.Name)
	}
	if n := e.node(theirs.Name); n == nil || n.Spec.Unschedulable {
		t.Fatalf("Karpenter's node after removal passes: %+v", n)
	}
}

// TestOrphanPodsDoNotMoveOntoOtherOrphans: a pod drained off one node of a
// deleted NodePool goes to the remaining pool, not onto another node of the
// deleted one that merely waits its turn (and would be drained next).
func TestOrphanPodsDoNotMoveOntoOtherOrphans(t *testing.T) {
	old, kept := pool("old", 0), pool("kept", 0)
	e := newEnv(t, old)
	first := e.launchOn("a", 1, "200m")
	zone := e.node(first[0]).Labels[offerings.LabelZone]
	other := "us-east-1b"
	if zone == other {
		other = "us-east-1a"
	}
	// A second node of the pool, in another zone, with room for a's pod.
	e.addPods("b", 2, "200m", "1Gi", map[string]string{offerings.LabelZone: other})
	e.provision()
	e.clock.Step(30 * time.Second)
	if n := e.poolNodes("old"); len(n) != 2 {
		t.Fatalf("old pool nodes %v, want 2", n)
	}
	orphans := e.poolNodes("old")
	e.setPools(kept)
	e.clock.Step(DefaultOrphanGracePeriod)
	for i := 0; len(e.poolNodes("old")) > 0; i++ {
		if i == 60 {
			t.Fatalf("orphans not removed: %v", e.poolNodes("old"))
		}
		e.removeOrphans()
		e.provision()
		for node := range e.appPods("a") {
			if node != "" && node != first[0] && slices.Contains(orphans, node) {
				t.Fatalf("a's pod moved onto %s, another node of the deleted pool", node)
			}
		}
		e.clock.Step(orphanDrainRetry)
	}
	for node := range e.appPods("a") {
		if node == "" || e.node(node).Labels[offerings.LabelNodePool] != "kept" {
			t.Fatalf("a's pod on %q, want a node of the remaining pool", node)
		}
	}
}
