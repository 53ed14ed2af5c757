package kubecluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/fleetpack/fleetpack/internal/fixture"
	"github.com/fleetpack/fleetpack/internal/testcontrolplane"
	"github.com/fleetpack/fleetpack/provisioning"
)

// The contract of provisioning.Cluster: every behaviour the Provisioner and
// the interruption handler rely on, run against each implementation —
// MemoryCluster, this package's Cluster on the fake clientset (with the API
// server behaviours it lacks emulated), and this package's Cluster on a real
// control plane. Where they differ, the real API server is right.

var controlPlane = testcontrolplane.Shared{Options: testcontrolplane.Options{
	// The contract binds pods itself, standing in for the scheduler.
	WithoutScheduler: true,
}}

func TestMain(m *testing.M) { os.Exit(controlPlane.Main(m)) }

// contractEnv is one implementation under the contract, with the other
// actors of a cluster (users, kubelets, schedulers, the disruption
// controller) standing around it.
type contractEnv struct {
	cluster provisioning.Cluster
	ctx     context.Context
	ns      string
	// nodePrefix keeps node names (cluster-scoped) apart between tests
	// sharing a control plane.
	nodePrefix string
	// createPod creates pod as a user or workload controller would and
	// returns it as stored (with its UID).
	createPod func(t *testing.T, pod *corev1.Pod) *corev1.Pod
	// storedPod reads the pod named name from where the cluster keeps it
	// (the API server, not a cache).
	storedPod func(t *testing.T, name string) *corev1.Pod
	// deletePod deletes the pod named name as a user would.
	deletePod func(t *testing.T, name string)
	// registerNode creates a Ready node as its kubelet would.
	registerNode func(t *testing.T, node *corev1.Node)
	// run binds pod to node as a scheduler would, and reports it Running
	// and Ready as the node's kubelet would.
	run func(t *testing.T, pod *corev1.Pod, node string)
	// budget creates pdb and waits until its status counts expected pods,
	// as the disruption controller computes it.
	budget func(t *testing.T, pdb *policyv1.PodDisruptionBudget, expected int32)
	// events returns the events recorded so far, as "Kind name Type Reason
	// Message" (name is the object's name, without namespace).
	events func(t *testing.T) []string
}

func (e *contractEnv) pod(name string, opts ...fixture.PodOption) *corev1.Pod {
	return fixture.Pod(e.ns, name, opts...)
}

func (e *contractEnv) nodeName(name string) string { return e.nodePrefix + name }

// listedPod returns the pod named name as the cluster lists it, or nil.
func (e *contractEnv) listedPod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	pods, err := e.cluster.ListPods(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if p.Namespace == e.ns && p.Name == name {
			return p
		}
	}
	return nil
}

// listedNode returns the node named name as the cluster lists it, or nil.
func (e *contractEnv) listedNode(t *testing.T, name string) *corev1.Node {
	t.Helper()
	nodes, err := e.cluster.ListNodes(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// eventually waits on the cluster's change notifications until cond holds.
// The notifications are the sync points; an implementation that is
// synchronous (MemoryCluster) holds at once.
func (e *contractEnv) eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	changes := e.cluster.Changes(ctx)
	for !cond() {
		select {
		case _, ok := <-changes:
			if !ok {
				t.Fatalf("%s: never happened", what)
			}
		case <-ctx.Done():
			t.Fatalf("%s: never happened", what)
		}
	}
}

// listedPodWith waits until the listed pod named name satisfies cond and
// returns it.
func (e *contractEnv) listedPodWith(t *testing.T, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var p *corev1.Pod
	e.eventually(t, "pod "+name+" "+what, func() bool {
		p = e.listedPod(t, name)
		return p != nil && cond(p)
	})
	return p
}

func (e *contractEnv) listedNodeWith(t *testing.T, name, what string, cond func(*corev1.Node) bool) *corev1.Node {
	t.Helper()
	var n *corev1.Node
	e.eventually(t, "node "+name+" "+what, func() bool {
		n = e.listedNode(t, name)
		return n != nil && cond(n)
	})
	return n
}

// runningPods creates n pods labelled app=name on a Ready node of their own,
// Running and Ready, and returns them as stored.
func (e *contractEnv) runningPods(t *testing.T, name string, n int) []*corev1.Pod {
	t.Helper()
	node := e.nodeName(name + "-node")
	e.registerNode(t, fixture.Node(node, fixture.Ready()))
	var pods []*corev1.Pod
	for i := range n {
		p := e.createPod(t, e.pod(fmt.Sprintf("%s-%d", name, i), fixture.Labels(map[string]string{"app": name})))
		e.run(t, p, node)
		pods = append(pods, p)
	}
	for _, p := range pods {
		e.listedPodWith(t, p.Name, "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	}
	return pods
}

func minAvailable(e *contractEnv, app string, n int32) *policyv1.PodDisruptionBudget {
	v := intstr.FromInt32(n)
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: e.ns},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &v, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		},
	}
}

// goneOrTerminating reports whether the pod named name is no longer listed,
// or is being deleted (on a real API server a bound pod stays until its
// kubelet confirms).
func (e *contractEnv) goneOrTerminating(t *testing.T, name string) bool {
	p := e.listedPod(t, name)
	return p == nil || p.DeletionTimestamp != nil
}

type behaviour struct {
	name string
	run  func(t *testing.T, e *contractEnv)
}

// contract lists the behaviours every Cluster must have.
var contract = []behaviour{
	{"ListsPodsAndNodesOthersCreated", func(t *testing.T, e *contractEnv) {
		stored := e.createPod(t, e.pod("listed"))
		e.registerNode(t, fixture.Node(e.nodeName("listed"), fixture.Ready(), fixture.NodeLabels(map[string]string{"role": "test"})))
		p := e.listedPodWith(t, "listed", "listed", func(*corev1.Pod) bool { return true })
		if p.UID != stored.UID || p.Status.Phase != corev1.PodPending {
			t.Errorf("listed pod UID %s phase %s, want %s Pending", p.UID, p.Status.Phase, stored.UID)
		}
		n := e.listedNodeWith(t, e.nodeName("listed"), "listed", func(*corev1.Node) bool { return true })
		if n.Labels["role"] != "test" || !provisioning.IsNodeReady(n) {
			t.Errorf("listed node labels %v ready %v", n.Labels, provisioning.IsNodeReady(n))
		}
	}},
	{"ChangesSignalEachPodAndNodeChange", func(t *testing.T, e *contractEnv) {
		ctx, cancel := context.WithCancel(e.ctx)
		changes := e.cluster.Changes(ctx)
		expectChange := func(what string) {
			t.Helper()
			select {
			case <-changes:
			case <-time.After(30 * time.Second):
				t.Fatalf("no change notification after %s", what)
			}
		}
		e.createPod(t, e.pod("watched"))
		expectChange("a pod was created")
		e.listedPodWith(t, "watched", "listed", func(*corev1.Pod) bool { return true })
		e.registerNode(t, fixture.Node(e.nodeName("watched"), fixture.Ready()))
		e.listedNodeWith(t, e.nodeName("watched"), "listed", func(*corev1.Node) bool { return true })
		// Drain what has piled up, then expect a fresh signal for a cordon.
		for drained := false; !drained; {
			select {
			case <-changes:
			default:
				drained = true
			}
		}
		if err := e.cluster.Cordon(e.ctx, e.nodeName("watched")); err != nil {
			t.Fatal(err)
		}
		expectChange("a node was cordoned")
		cancel()
		for range changes {
		}
	}},
	{"ListedObjectsAreCopies", func(t *testing.T, e *contractEnv) {
		e.createPod(t, e.pod("copied"))
		e.registerNode(t, fixture.Node(e.nodeName("copied"), fixture.Ready()))
		p := e.listedPodWith(t, "copied", "listed", func(*corev1.Pod) bool { return true })
		n := e.listedNodeWith(t, e.nodeName("copied"), "listed", func(*corev1.Node) bool { return true })
		p.Labels = map[string]string{"mutated": "yes"}
		n.Spec.Unschedulable = true
		if again := e.listedPod(t, "copied"); again.Labels["mutated"] != "" {
			t.Error("changing a listed pod changed the cluster's")
		}
		if again, err := e.cluster.GetNode(e.ctx, n.Name); err != nil || again.Spec.Unschedulable {
			t.Errorf("changing a listed node changed the cluster's (%v)", err)
		}
	}},
	{"GetNodeOfAMissingNodeIsNotFound", func(t *testing.T, e *contractEnv) {
		if _, err := e.cluster.GetNode(e.ctx, e.nodeName("missing")); !provisioning.IsNotFound(err) {
			t.Fatalf("GetNode(missing) = %v, want IsNotFound", err)
		}
	}},
	{"CreatedNodeIsVisibleAtOnce", func(t *testing.T, e *contractEnv) {
		name := e.nodeName("created")
		if err := e.cluster.CreateNode(e.ctx, fixture.Node(name, fixture.NodeLabels(map[string]string{"pool": "a"}))); err != nil {
			t.Fatal(err)
		}
		// No waiting: the Provisioner's next pass must count it.
		if n := e.listedNode(t, name); n == nil || n.Labels["pool"] != "a" {
			t.Fatalf("ListNodes right after CreateNode: %v", n)
		}
		if n, err := e.cluster.GetNode(e.ctx, name); err != nil || provisioning.IsNodeReady(n) {
			t.Fatalf("GetNode right after CreateNode: ready=%v, %v; want a node not Ready yet", err == nil && provisioning.IsNodeReady(n), err)
		}
	}},
	{"CreateNodeAfterTheKubeletRegisteredAddsMissingLabels", func(t *testing.T, e *contractEnv) {
		name := e.nodeName("registered")
		e.registerNode(t, fixture.Node(name, fixture.Ready(), fixture.NodeLabels(map[string]string{
			"kubernetes.io/arch": "arm64", "topology.kubernetes.io/zone": "us-east-1a",
		})))
		e.listedNodeWith(t, name, "registered", func(*corev1.Node) bool { return true })
		err := e.cluster.CreateNode(e.ctx, fixture.Node(name, fixture.NodeLabels(map[string]string{
			"karpenter.sh/nodepool": "default", provisioning.LabelManagedBy: provisioning.ManagedBy,
			"topology.kubernetes.io/zone": "us-east-1b",
		})))
		if err != nil {
			t.Fatalf("CreateNode of a node the kubelet registered: %v", err)
		}
		n := e.listedNodeWith(t, name, "labelled", func(n *corev1.Node) bool { return n.Labels["karpenter.sh/nodepool"] == "default" })
		want := map[string]string{
			"karpenter.sh/nodepool": "default", provisioning.LabelManagedBy: provisioning.ManagedBy,
			"kubernetes.io/arch": "arm64", "topology.kubernetes.io/zone": "us-east-1a", // the kubelet's value stays
		}
		for k, v := range want {
			if n.Labels[k] != v {
				t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
			}
		}
		if !provisioning.IsNodeReady(n) {
			t.Error("the kubelet's Ready condition was lost")
		}
	}},
	{"CordonIsIdempotentAndTouchesNothingElse", func(t *testing.T, e *contractEnv) {
		name := e.nodeName("cordoned")
		e.registerNode(t, fixture.Node(name, fixture.Ready(), fixture.NodeLabels(map[string]string{"keep": "me"})))
		e.listedNodeWith(t, name, "registered", func(*corev1.Node) bool { return true })
		for range 2 {
			if err := e.cluster.Cordon(e.ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		n := e.listedNodeWith(t, name, "cordoned", func(n *corev1.Node) bool { return n.Spec.Unschedulable })
		if n.Labels["keep"] != "me" || !provisioning.IsNodeReady(n) {
			t.Errorf("cordon changed more: labels %v ready %v", n.Labels, provisioning.IsNodeReady(n))
		}
	}},
	{"CordonOrAnnotateOfAMissingNodeIsNotFound", func(t *testing.T, e *contractEnv) {
		if err := e.cluster.Cordon(e.ctx, e.nodeName("missing")); !provisioning.IsNotFound(err) {
			t.Errorf("Cordon(missing) = %v", err)
		}
		if err := e.cluster.AnnotateNode(e.ctx, e.nodeName("missing"), map[string]string{"a": "1"}); !provisioning.IsNotFound(err) {
			t.Errorf("AnnotateNode(missing) = %v", err)
		}
	}},
	{"AnnotateNodeSetsAndRemovesOnlyTheNamedAnnotations", func(t *testing.T, e *contractEnv) {
		name := e.nodeName("annotated")
		n := fixture.Node(name, fixture.Ready())
		n.Annotations = map[string]string{"keep": "me", "old": "x"}
		e.registerNode(t, n)
		e.listedNodeWith(t, name, "registered", func(*corev1.Node) bool { return true })
		record := `{"kind":"spot-interruption"}`
		if err := e.cluster.AnnotateNode(e.ctx, name, map[string]string{"fleetpack.dev/interruption": record, "old": ""}); err != nil {
			t.Fatal(err)
		}
		got := e.listedNodeWith(t, name, "annotated", func(n *corev1.Node) bool { return n.Annotations["fleetpack.dev/interruption"] != "" })
		if got.Annotations["fleetpack.dev/interruption"] != record || got.Annotations["keep"] != "me" {
			t.Errorf("annotations %v", got.Annotations)
		}
		if _, has := got.Annotations["old"]; has {
			t.Errorf("annotation mapped to \"\" not removed: %v", got.Annotations)
		}
	}},
	{"NominateRecordsTheNodeAtOnce", func(t *testing.T, e *contractEnv) {
		node := e.nodeName("nominated")
		if err := e.cluster.CreateNode(e.ctx, fixture.Node(node)); err != nil {
			t.Fatal(err)
		}
		e.createPod(t, e.pod("nominated"))
		p := e.listedPodWith(t, "nominated", "listed", func(*corev1.Pod) bool { return true })
		if err := e.cluster.Nominate(e.ctx, p, node); err != nil {
			t.Fatal(err)
		}
		// At once, so the next pass does not provision for it again...
		if got := e.listedPod(t, "nominated"); got.Status.NominatedNodeName != node || got.Spec.NodeName != "" {
			t.Fatalf("right after Nominate: nominated %q bound %q", got.Status.NominatedNodeName, got.Spec.NodeName)
		}
		// ...and stored, so it survives the cluster's view catching up.
		if got := e.storedPod(t, "nominated"); got.Status.NominatedNodeName != node {
			t.Fatalf("stored nomination %q, want %s", got.Status.NominatedNodeName, node)
		}
	}},
	{"NominateOfAPodBoundMeanwhileIsBenign", func(t *testing.T, e *contractEnv) {
		node := e.nodeName("bound-first")
		e.registerNode(t, fixture.Node(node, fixture.Ready()))
		e.createPod(t, e.pod("raced"))
		stale := e.listedPodWith(t, "raced", "listed", func(*corev1.Pod) bool { return true })
		// The scheduler binds the pod between the Provisioner's read and
		// its nomination.
		e.run(t, stale, node)
		if err := e.cluster.Nominate(e.ctx, stale, e.nodeName("other")); err != nil {
			t.Fatalf("Nominate of a pod bound meanwhile: %v, want nil", err)
		}
		p := e.listedPodWith(t, "raced", "bound", func(p *corev1.Pod) bool { return p.Spec.NodeName != "" })
		if p.Spec.NodeName != node || p.Status.NominatedNodeName != "" {
			t.Fatalf("pod bound to %q nominated %q, want bound to %s alone", p.Spec.NodeName, p.Status.NominatedNodeName, node)
		}
	}},
	{"NominateOfAGonePodIsNotFound", func(t *testing.T, e *contractEnv) {
		stored := e.createPod(t, e.pod("gone"))
		e.deletePod(t, "gone")
		if err := e.cluster.Nominate(e.ctx, stored, e.nodeName("any")); !provisioning.IsNotFound(err) {
			t.Fatalf("Nominate of a deleted pod: %v, want IsNotFound", err)
		}
	}},
	{"BindBindsOnceAndRefusesASecondNode", func(t *testing.T, e *contractEnv) {
		first, second := e.nodeName("bind-1"), e.nodeName("bind-2")
		e.registerNode(t, fixture.Node(first, fixture.Ready()))
		e.registerNode(t, fixture.Node(second, fixture.Ready()))
		stored := e.createPod(t, e.pod("bound"))
		if err := e.cluster.Bind(e.ctx, stored, first); err != nil {
			t.Fatal(err)
		}
		e.listedPodWith(t, "bound", "bound", func(p *corev1.Pod) bool { return p.Spec.NodeName == first })
		if err := e.cluster.Bind(e.ctx, stored, second); err == nil {
			t.Fatal("a second Bind to another node succeeded")
		}
		if p := e.listedPod(t, "bound"); p.Spec.NodeName != first {
			t.Fatalf("pod moved to %q", p.Spec.NodeName)
		}
	}},
	{"WritesToAPodReplacedUnderTheSameNameAreNotFound", func(t *testing.T, e *contractEnv) {
		e.registerNode(t, fixture.Node(e.nodeName("stale"), fixture.Ready()))
		old := e.createPod(t, e.pod("stale"))
		e.deletePod(t, "stale")
		fresh := e.createPod(t, e.pod("stale"))
		if err := e.cluster.Bind(e.ctx, old, e.nodeName("stale")); !provisioning.IsNotFound(err) {
			t.Errorf("Bind of the old pod: %v, want IsNotFound", err)
		}
		if err := e.cluster.Evict(e.ctx, old); !provisioning.IsNotFound(err) {
			t.Errorf("Evict of the old pod: %v, want IsNotFound", err)
		}
		if err := e.cluster.DeletePod(e.ctx, old); !provisioning.IsNotFound(err) {
			t.Errorf("DeletePod of the old pod: %v, want IsNotFound", err)
		}
		p := e.listedPodWith(t, "stale", "listed", func(p *corev1.Pod) bool { return p.UID == fresh.UID })
		if p.Spec.NodeName != "" || p.DeletionTimestamp != nil {
			t.Errorf("the new pod was acted on: bound %q deleting %v", p.Spec.NodeName, p.DeletionTimestamp != nil)
		}
	}},
	{"EvictWithoutABudgetRemovesThePod", func(t *testing.T, e *contractEnv) {
		pods := e.runningPods(t, "free", 1)
		if err := e.cluster.Evict(e.ctx, pods[0]); err != nil {
			t.Fatal(err)
		}
		e.eventually(t, "evicted pod gone or terminating", func() bool { return e.goneOrTerminating(t, pods[0].Name) })
	}},
	{"EvictBlockedByABudgetIsEvictionBlocked", func(t *testing.T, e *contractEnv) {
		pods := e.runningPods(t, "guarded", 2)
		e.budget(t, minAvailable(e, "guarded", 2), 2)
		err := e.cluster.Evict(e.ctx, pods[0])
		if !provisioning.IsEvictionBlocked(err) {
			t.Fatalf("Evict under a budget allowing nothing: %v, want IsEvictionBlocked", err)
		}
		if p := e.listedPod(t, pods[0].Name); p == nil || p.DeletionTimestamp != nil {
			t.Fatal("the blocked pod is going anyway")
		}
	}},
	{"BudgetAllowsExactlyItsDisruptions", func(t *testing.T, e *contractEnv) {
		pods := e.runningPods(t, "counted", 3)
		e.budget(t, minAvailable(e, "counted", 2), 3)
		if err := e.cluster.Evict(e.ctx, pods[0]); err != nil {
			t.Fatalf("first eviction (budget allows one): %v", err)
		}
		if err := e.cluster.Evict(e.ctx, pods[1]); !provisioning.IsEvictionBlocked(err) {
			t.Fatalf("second eviction: %v, want IsEvictionBlocked", err)
		}
	}},
	{"EvictOfAPendingPodIgnoresItsBudget", func(t *testing.T, e *contractEnv) {
		stored := e.createPod(t, e.pod("waiting", fixture.Labels(map[string]string{"app": "waiting"})))
		e.budget(t, minAvailable(e, "waiting", 1), 1)
		if err := e.cluster.Evict(e.ctx, stored); err != nil {
			t.Fatalf("Evict of a pending pod under a budget: %v", err)
		}
		e.eventually(t, "pending pod gone", func() bool { return e.listedPod(t, "waiting") == nil })
	}},
	{"EvictOrDeleteOfAGonePodIsNotFound", func(t *testing.T, e *contractEnv) {
		stored := e.createPod(t, e.pod("deleted"))
		if err := e.cluster.DeletePod(e.ctx, stored); err != nil {
			t.Fatal(err)
		}
		e.eventually(t, "deleted pod gone", func() bool { return e.listedPod(t, "deleted") == nil })
		if err := e.cluster.Evict(e.ctx, stored); !provisioning.IsNotFound(err) {
			t.Errorf("Evict of a deleted pod: %v, want IsNotFound", err)
		}
		if err := e.cluster.DeletePod(e.ctx, stored); !provisioning.IsNotFound(err) {
			t.Errorf("DeletePod twice: %v, want IsNotFound", err)
		}
	}},
	{"DeleteNodeRemovesItAndTwiceIsNotFound", func(t *testing.T, e *contractEnv) {
		name := e.nodeName("deleted")
		if err := e.cluster.CreateNode(e.ctx, fixture.Node(name)); err != nil {
			t.Fatal(err)
		}
		e.listedNodeWith(t, name, "listed", func(*corev1.Node) bool { return true })
		if err := e.cluster.DeleteNode(e.ctx, name); err != nil {
			t.Fatal(err)
		}
		e.eventually(t, "node "+name+" gone", func() bool { return e.listedNode(t, name) == nil })
		if _, err := e.cluster.GetNode(e.ctx, name); !provisioning.IsNotFound(err) {
			t.Errorf("GetNode of a deleted node: %v", err)
		}
		if err := e.cluster.DeleteNode(e.ctx, name); !provisioning.IsNotFound(err) {
			t.Errorf("DeleteNode twice: %v, want IsNotFound", err)
		}
	}},
	{"EventsAreRecordedOnPodsAndNodes", func(t *testing.T, e *contractEnv) {
		rec, ok := e.cluster.(provisioning.EventRecorder)
		if !ok {
			t.Fatal("the cluster records no events")
		}
		pod := e.createPod(t, e.pod("evented"))
		node := fixture.Node(e.nodeName("evented"))
		rec.Event(e.ctx, pod, corev1.EventTypeWarning, "FailedScheduling", "Failed to provision capacity: no NodePool fits")
		rec.Event(e.ctx, node, corev1.EventTypeNormal, "RemovedEmptyNode", "empty for 30s")
		want := []string{
			"Pod evented Warning FailedScheduling Failed to provision capacity: no NodePool fits",
			"Node " + node.Name + " Normal RemovedEmptyNode empty for 30s",
		}
		got := strings.Join(e.events(t), "\n")
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("event %q not recorded; recorded:\n%s", w, got)
			}
		}
	}},
}

func runContract(t *testing.T, newEnv func(t *testing.T) *contractEnv) {
	for _, b := range contract {
		t.Run(b.name, func(t *testing.T) { b.run(t, newEnv(t)) })
	}
}

func TestContractMemoryCluster(t *testing.T) {
	runContract(t, func(t *testing.T) *contractEnv {
		clock := clocktesting.NewFakeClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
		// Nodes created by fleetpack stay not Ready: the contract's
		// kubelets are explicit.
		c := provisioning.NewMemoryCluster(clock, provisioning.MemoryClusterOptions{NodeReadyDelay: time.Hour})
		e := &contractEnv{cluster: c, ctx: t.Context(), ns: "contract"}
		e.createPod = func(t *testing.T, pod *corev1.Pod) *corev1.Pod {
			t.Helper()
			if err := c.CreatePod(e.ctx, pod); err != nil {
				t.Fatal(err)
			}
			stored, err := c.GetPod(pod.Namespace, pod.Name)
			if err != nil {
				t.Fatal(err)
			}
			return stored
		}
		e.storedPod = func(t *testing.T, name string) *corev1.Pod {
			p, err := c.GetPod(e.ns, name)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		e.deletePod = func(t *testing.T, name string) {
			if err := c.DeletePodNoRecreate(e.ctx, e.ns, name); err != nil {
				t.Fatal(err)
			}
		}
		e.registerNode = func(t *testing.T, node *corev1.Node) {
			if err := c.CreateNode(e.ctx, node); err != nil {
				t.Fatal(err)
			}
		}
		e.run = func(t *testing.T, pod *corev1.Pod, node string) {
			if err := c.Bind(e.ctx, pod, node); err != nil {
				t.Fatal(err)
			}
		}
		e.budget = func(t *testing.T, pdb *policyv1.PodDisruptionBudget, _ int32) {
			if err := c.CreatePDB(e.ctx, pdb); err != nil {
				t.Fatal(err)
			}
		}
		e.events = func(t *testing.T) []string {
			var out []string
			for _, ev := range c.Events() {
				kind, name, _ := strings.Cut(ev.Object, " ")
				if _, n, namespaced := strings.Cut(name, "/"); namespaced {
					name = n
				}
				out = append(out, strings.Join([]string{kind, name, ev.Type, ev.Reason, ev.Message}, " "))
			}
			return out
		}
		return e
	})
}

// apiEnv builds the contract's environment on client, with this package's
// Cluster started on it.
func apiEnv(t *testing.T, client kubernetes.Interface, ns, nodePrefix string) *contractEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	c, err := New(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e := &contractEnv{cluster: c, ctx: ctx, ns: ns, nodePrefix: nodePrefix}
	e.createPod = func(t *testing.T, pod *corev1.Pod) *corev1.Pod {
		t.Helper()
		stored, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return stored
	}
	e.storedPod = func(t *testing.T, name string) *corev1.Pod {
		t.Helper()
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	e.deletePod = func(t *testing.T, name string) {
		t.Helper()
		zero := int64(0)
		if err := client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		e.eventually(t, "pod "+name+" deleted", func() bool { return e.listedPod(t, name) == nil })
	}
	e.registerNode = func(t *testing.T, node *corev1.Node) {
		t.Helper()
		if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })
		// Status is a subresource: the kubelet reports it after registering.
		patchStatus(t, ctx, client.CoreV1().Nodes().Patch, node.Name, node.Status)
	}
	e.run = func(t *testing.T, pod *corev1.Pod, node string) {
		t.Helper()
		binding := &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: node},
		}
		if err := client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		now := metav1.Now()
		patchStatus(t, ctx, client.CoreV1().Pods(pod.Namespace).Patch, pod.Name, corev1.PodStatus{
			Phase: corev1.PodRunning, StartTime: &now,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			},
		})
	}
	e.events = func(t *testing.T) []string {
		t.Helper()
		var out []string
		for _, evNs := range []string{ns, metav1.NamespaceDefault} {
			list, err := client.CoreV1().Events(evNs).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range list.Items {
				o := ev.InvolvedObject
				if o.Namespace == ns || (o.Kind == "Node" && strings.HasPrefix(o.Name, nodePrefix)) {
					out = append(out, strings.Join([]string{o.Kind, o.Name, ev.Type, ev.Reason, ev.Message}, " "))
				}
			}
		}
		return out
	}
	return e
}

// patchStatus sets the status subresource of the object name to status
// with a merge patch (no conflict with other writers of the object).
func patchStatus[T any](t *testing.T, ctx context.Context, patch func(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (T, error), name string, status any) {
	t.Helper()
	data, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("reporting the status of %s: %v", name, err)
	}
}

func TestContractFakeClientset(t *testing.T) {
	runContract(t, func(t *testing.T) *contractEnv {
		client := fake.NewClientset()
		emulateAPIServer(t, client)
		e := apiEnv(t, client, "contract", "")
		// The API server gives a created pod its UID and phase.
		createPod, created := e.createPod, 0
		e.createPod = func(t *testing.T, pod *corev1.Pod) *corev1.Pod {
			created++
			pod.UID = types.UID(fmt.Sprintf("fake-%d", created))
			pod.Status.Phase = corev1.PodPending
			return createPod(t, pod)
		}
		// The fake has no disruption controller: compute the budget's
		// status as it would, from the pods now stored.
		e.budget = func(t *testing.T, pdb *policyv1.PodDisruptionBudget, expected int32) {
			t.Helper()
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil {
				t.Fatal(err)
			}
			pods, err := client.CoreV1().Pods(pdb.Namespace).List(e.ctx, metav1.ListOptions{LabelSelector: sel.String()})
			if err != nil {
				t.Fatal(err)
			}
			var healthy int32
			for _, p := range pods.Items {
				if podReady(&p) {
					healthy++
				}
			}
			pdb.Status = policyv1.PodDisruptionBudgetStatus{
				ExpectedPods: expected, CurrentHealthy: healthy, DesiredHealthy: pdb.Spec.MinAvailable.IntVal,
				DisruptionsAllowed: max(healthy-pdb.Spec.MinAvailable.IntVal, 0),
			}
			if _, err := client.PolicyV1().PodDisruptionBudgets(pdb.Namespace).Create(e.ctx, pdb, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		return e
	})
}

func TestControlPlaneContract(t *testing.T) {
	cp := controlPlane.Get(t)
	client := cp.Client(t)
	runContract(t, func(t *testing.T) *contractEnv {
		ns := cp.Namespace(t)
		e := apiEnv(t, client, ns, ns+"-")
		e.budget = func(t *testing.T, pdb *policyv1.PodDisruptionBudget, expected int32) {
			t.Helper()
			created, err := client.PolicyV1().PodDisruptionBudgets(pdb.Namespace).Create(e.ctx, pdb, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// Evictions are refused until the disruption controller
			// has computed the budget; a drain retries, a test waits.
			err = wait.PollUntilContextTimeout(e.ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				got, err := client.PolicyV1().PodDisruptionBudgets(pdb.Namespace).Get(ctx, pdb.Name, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				return got.Status.ObservedGeneration >= created.Generation && got.Status.ExpectedPods == expected, nil
			})
			if err != nil {
				t.Fatalf("budget %s never computed for %d pods: %v", pdb.Name, expected, err)
			}
		}
		return e
	})
}

func podReady(p *corev1.Pod) bool {
	if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// budgetBlocks reports whether a budget in the pod's namespace that selects
// it allows no disruption now, and takes one disruption from it otherwise,
// as the Eviction API does.
func budgetBlocks(client *fake.Clientset, pod *corev1.Pod) (bool, error) {
	pdbs, err := client.Tracker().List(pdbsGVR, pdbsGVK, pod.Namespace)
	if err != nil {
		return false, err
	}
	for _, obj := range pdbs.(*policyv1.PodDisruptionBudgetList).Items {
		sel, err := metav1.LabelSelectorAsSelector(obj.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		if obj.Status.DisruptionsAllowed <= 0 {
			return true, nil
		}
		obj.Status.DisruptionsAllowed--
		if err := client.Tracker().Update(pdbsGVR, &obj, obj.Namespace); err != nil {
			return false, err
		}
	}
	return false, nil
}
