package kubecluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/fleetpack/fleetpack/internal/fixture"
	"github.com/fleetpack/fleetpack/provisioning"
)

var (
	podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	pdbsGVR = schema.GroupVersionResource{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"}
	pdbsGVK = schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"}
)

func testPod(name string, labels map[string]string) *corev1.Pod {
	p := fixture.Pod("default", name, fixture.Labels(labels), fixture.WithUID("uid-"+name))
	p.ResourceVersion = "1"
	return p
}

// uidConflict is the API server's answer to a write whose UID precondition
// does not match the stored pod.
func uidConflict(pod *corev1.Pod, uid types.UID) error {
	return apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, pod.Name,
		fmt.Errorf("Precondition failed: UID in precondition: %s, UID in object meta: %s", uid, pod.UID))
}

// emulateAPIServer adds the behaviour the fake clientset lacks, answering as
// the API server does: pods/binding sets spec.nodeName once; pods/eviction
// deletes the pod unless a budget forbids it (the label protected=true, or a
// stored PodDisruptionBudget whose status allows no disruption), with 429;
// UID preconditions are checked; a nomination of a bound pod is refused.
func emulateAPIServer(t *testing.T, client *fake.Clientset) {
	tracker := client.Tracker()
	getPod := func(namespace, name string) (*corev1.Pod, error) {
		obj, err := tracker.Get(podsGVR, namespace, name)
		if err != nil {
			return nil, err
		}
		return obj.(*corev1.Pod), nil
	}
	client.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		create := action.(k8stesting.CreateAction)
		switch action.GetSubresource() {
		case "binding":
			b := create.GetObject().(*corev1.Binding)
			pod, err := getPod(action.GetNamespace(), b.Name)
			if err != nil {
				return true, nil, err
			}
			if b.UID != "" && b.UID != pod.UID {
				return true, nil, uidConflict(pod, b.UID)
			}
			if pod.Spec.NodeName != "" {
				return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "pods/binding"}, b.Name,
					fmt.Errorf("pod %s is already assigned to node %q", b.Name, pod.Spec.NodeName))
			}
			pod.Spec.NodeName = b.Target.Name
			return true, nil, tracker.Update(podsGVR, pod, pod.Namespace)
		case "eviction":
			ev := create.GetObject().(*policyv1.Eviction)
			pod, err := getPod(action.GetNamespace(), ev.Name)
			if err != nil {
				return true, nil, err
			}
			if ev.DeleteOptions == nil || ev.DeleteOptions.Preconditions == nil || ev.DeleteOptions.Preconditions.UID == nil {
				t.Errorf("eviction of %s without the pod's UID as precondition", ev.Name)
			} else if uid := *ev.DeleteOptions.Preconditions.UID; uid != pod.UID {
				return true, nil, uidConflict(pod, uid)
			}
			blocked := pod.Labels["protected"] == "true"
			if !blocked && pod.Spec.NodeName != "" && pod.Status.Phase != corev1.PodPending {
				if blocked, err = budgetBlocks(client, pod); err != nil {
					return true, nil, err
				}
			}
			if blocked {
				return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
			}
			return true, nil, tracker.Delete(podsGVR, pod.Namespace, pod.Name)
		}
		return false, nil, nil
	})
	client.PrependReactor("delete", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		del := action.(k8stesting.DeleteActionImpl)
		if del.DeleteOptions.Preconditions == nil || del.DeleteOptions.Preconditions.UID == nil {
			return false, nil, nil
		}
		pod, err := getPod(action.GetNamespace(), del.Name)
		if err != nil {
			return true, nil, err
		}
		if uid := *del.DeleteOptions.Preconditions.UID; uid != pod.UID {
			return true, nil, uidConflict(pod, uid)
		}
		return false, nil, nil
	})
	client.PrependReactor("patch", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		patch := action.(k8stesting.PatchAction)
		if action.GetSubresource() != "status" || !strings.Contains(string(patch.GetPatch()), "nominatedNodeName") {
			return false, nil, nil
		}
		pod, err := getPod(action.GetNamespace(), patch.GetName())
		if err != nil || pod.Spec.NodeName == "" {
			return false, nil, nil
		}
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, pod.Name, field.ErrorList{
			field.Forbidden(field.NewPath("status", "nominatedNodeName"), "may not be set on pods that are already bound to a node"),
		})
	})
}

func started(t *testing.T, objects ...runtime.Object) (*Cluster, *fake.Clientset, context.Context) {
	t.Helper()
	client := fake.NewClientset(objects...)
	emulateAPIServer(t, client)
	c, err := New(client, Options{Clock: clocktesting.NewFakePassiveClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c, client, ctx
}

// eventually waits on change notifications until cond holds. Informers
// deliver asynchronously; the notifications are the sync points.
func eventually(t *testing.T, changes <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-changes:
		case <-deadline:
			t.Fatal("condition never held")
		}
	}
}

func TestListsAndChanges(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	c, client, ctx := started(t, node, testPod("a", nil))
	pods, err := c.ListPods(ctx)
	if err != nil || len(pods) != 1 || pods[0].Name != "a" {
		t.Fatalf("ListPods = %v, %v", pods, err)
	}
	nodes, err := c.ListNodes(ctx)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("ListNodes = %v, %v", nodes, err)
	}
	// Returned objects are copies.
	pods[0].Labels = map[string]string{"mutated": "yes"}
	if again, _ := c.ListPods(ctx); again[0].Labels["mutated"] != "" {
		t.Fatal("ListPods returned the cache's object")
	}
	changes := c.Changes(ctx)
	if _, err := client.CoreV1().Pods("default").Create(ctx, testPod("b", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, changes, func() bool { p, _ := c.ListPods(ctx); return len(p) == 2 })
	if _, err := c.GetNode(ctx, "missing"); !provisioning.IsNotFound(err) {
		t.Fatalf("GetNode(missing) = %v", err)
	}
}

func TestCreatedNodesAreVisibleBeforeTheCacheCatchesUp(t *testing.T) {
	client := fake.NewClientset()
	c, err := New(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Not started: the cache stays empty, as a lagging one would be.
	ctx := t.Context()
	if err := c.CreateNode(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "new"}}); err != nil {
		t.Fatal(err)
	}
	nodes, _ := c.ListNodes(ctx)
	if len(nodes) != 1 || nodes[0].Name != "new" {
		t.Fatalf("ListNodes = %v, want the created node", nodes)
	}
	if _, err := c.GetNode(ctx, "new"); err != nil {
		t.Fatal(err)
	}
	var fm string
	for _, a := range client.Actions() {
		if ca, ok := a.(k8stesting.CreateActionImpl); ok && a.GetResource().Resource == "nodes" {
			fm = ca.CreateOptions.FieldManager
		}
	}
	if fm != DefaultFieldManager {
		t.Errorf("create field manager %q", fm)
	}
	// Creating it again (the kubelet registered first) is not an error.
	if err := c.CreateNode(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "new"}}); err != nil {
		t.Fatalf("re-create: %v", err)
	}
	if err := c.DeleteNode(ctx, "new"); err != nil {
		t.Fatal(err)
	}
	if nodes, _ := c.ListNodes(ctx); len(nodes) != 0 {
		t.Fatalf("deleted node still listed")
	}
	if err := c.DeleteNode(ctx, "new"); !provisioning.IsNotFound(err) {
		t.Fatalf("deleting twice: %v", err)
	}
}

func TestNominationOverlay(t *testing.T) {
	pod := testPod("a", nil)
	client := fake.NewClientset(pod)
	c, err := New(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	indexer := c.factory.Core().V1().Pods().Informer().GetIndexer()
	if err := indexer.Add(pod.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	if err := c.Nominate(ctx, pod, "n1"); err != nil {
		t.Fatal(err)
	}
	stored, _ := client.CoreV1().Pods("default").Get(ctx, "a", metav1.GetOptions{})
	if stored.Status.NominatedNodeName != "n1" {
		t.Fatalf("API pod nominated to %q", stored.Status.NominatedNodeName)
	}
	var patch k8stesting.PatchActionImpl
	for _, a := range client.Actions() {
		if pa, ok := a.(k8stesting.PatchActionImpl); ok {
			patch = pa
		}
	}
	if patch.GetSubresource() != "status" || patch.GetPatchType() != types.MergePatchType || patch.PatchOptions.FieldManager != DefaultFieldManager {
		t.Errorf("nominate patch: subresource %q type %q manager %q", patch.GetSubresource(), patch.GetPatchType(), patch.PatchOptions.FieldManager)
	}
	// The cache still holds the old version: the overlay shows the nomination.
	pods, _ := c.ListPods(ctx)
	if pods[0].Status.NominatedNodeName != "n1" {
		t.Fatalf("lagging cache hides the nomination")
	}
	// The cache catches up with a later version where the scheduler cleared
	// it: the cache wins.
	newer := pod.DeepCopy()
	newer.ResourceVersion = "7"
	if err := indexer.Update(newer); err != nil {
		t.Fatal(err)
	}
	pods, _ = c.ListPods(ctx)
	if pods[0].Status.NominatedNodeName != "" {
		t.Fatalf("overlay outlived the cache update")
	}
	if err := c.Nominate(ctx, testPod("missing", nil), "n1"); !provisioning.IsNotFound(err) {
		t.Fatalf("nominating a missing pod: %v", err)
	}
}

func TestCordonBindEvictDelete(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	c, client, ctx := started(t, node, testPod("a", nil), testPod("guarded", map[string]string{"protected": "true"}), testPod("c", nil))

	if err := c.Cordon(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	n, _ := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if !n.Spec.Unschedulable {
		t.Fatal("node not cordoned")
	}
	for _, a := range client.Actions() {
		if pa, ok := a.(k8stesting.PatchActionImpl); ok && pa.GetResource().Resource == "nodes" {
			if pa.GetPatchType() != types.StrategicMergePatchType || pa.PatchOptions.FieldManager != DefaultFieldManager {
				t.Errorf("cordon patch type %q manager %q", pa.GetPatchType(), pa.PatchOptions.FieldManager)
			}
		}
	}
	if err := c.Cordon(ctx, "missing"); !provisioning.IsNotFound(err) {
		t.Errorf("cordon missing: %v", err)
	}

	if err := c.Bind(ctx, testPod("a", nil), "n1"); err != nil {
		t.Fatal(err)
	}
	p, _ := client.CoreV1().Pods("default").Get(ctx, "a", metav1.GetOptions{})
	if p.Spec.NodeName != "n1" {
		t.Fatalf("pod bound to %q", p.Spec.NodeName)
	}
	stale := testPod("c", nil)
	stale.UID = "someone-else"
	if err := c.Bind(ctx, stale, "n1"); err == nil {
		t.Fatal("bind with a stale UID succeeded")
	}

	err := c.Evict(ctx, testPod("guarded", map[string]string{"protected": "true"}))
	if !provisioning.IsEvictionBlocked(err) {
		t.Fatalf("evicting a guarded pod: %v, want EvictionBlockedError", err)
	}
	if err := c.Evict(ctx, testPod("a", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods("default").Get(ctx, "a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("evicted pod still there: %v", err)
	}
	if err := c.Evict(ctx, testPod("a", nil)); !provisioning.IsNotFound(err) {
		t.Fatalf("evicting a gone pod: %v", err)
	}
	if err := c.DeletePod(ctx, testPod("c", nil)); err != nil {
		t.Fatal(err)
	}
	if err := c.DeletePod(ctx, testPod("c", nil)); !provisioning.IsNotFound(err) {
		t.Fatalf("deleting a gone pod: %v", err)
	}
}

func TestAnnotateNode(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{"keep": "me", "old": "x"}}}
	c, client, ctx := started(t, node)
	if err := c.AnnotateNode(ctx, "n1", map[string]string{"fleetpack.dev/interruption": `{"kind":"spot-interruption"}`, "old": ""}); err != nil {
		t.Fatal(err)
	}
	n, err := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"keep": "me", "fleetpack.dev/interruption": `{"kind":"spot-interruption"}`}
	if len(n.Annotations) != len(want) {
		t.Errorf("annotations = %v, want %v", n.Annotations, want)
	}
	for k, v := range want {
		if n.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q (all: %v)", k, n.Annotations[k], v, n.Annotations)
		}
	}
	patches := 0
	for _, a := range client.Actions() {
		if pa, ok := a.(k8stesting.PatchActionImpl); ok && pa.GetResource().Resource == "nodes" {
			patches++
			if pa.GetPatchType() != types.MergePatchType || pa.PatchOptions.FieldManager != DefaultFieldManager {
				t.Errorf("annotation patch type %q manager %q", pa.GetPatchType(), pa.PatchOptions.FieldManager)
			}
		}
	}
	if patches != 1 {
		t.Errorf("%d node patches, want 1", patches)
	}
	if err := c.AnnotateNode(ctx, "missing", map[string]string{"a": "1"}); !provisioning.IsNotFound(err) {
		t.Errorf("annotate missing: %v", err)
	}
}

func TestEvent(t *testing.T) {
	c, client, ctx := started(t)
	c.Event(ctx, testPod("a", nil), corev1.EventTypeWarning, "FailedScheduling", "no nodepool fits")
	c.Event(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, corev1.EventTypeNormal, "RemovedEmptyNode", "empty")
	// Same object, same (fake) instant: still a distinct event.
	c.Event(ctx, testPod("a", nil), corev1.EventTypeNormal, "Nominated", "Pod should schedule on node n1")
	events, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(events.Items) != 3 {
		t.Fatalf("events = %v, %v", events, err)
	}
	kinds := map[string]string{}
	for _, e := range events.Items {
		kinds[e.Reason] = e.InvolvedObject.Kind
		if e.Source.Component != DefaultFieldManager || e.Count != 1 || e.FirstTimestamp.IsZero() {
			t.Errorf("event %+v", e)
		}
	}
	if kinds["FailedScheduling"] != "Pod" || kinds["RemovedEmptyNode"] != "Node" {
		t.Errorf("involved kinds %v", kinds)
	}
}

// TestCreateNodeAfterKubeletLabelsTheNode: when the kubelet registered the
// node first, CreateNode adds the labels it lacks (the NodePool's, the
// ownership mark) and keeps the ones the kubelet set.
func TestCreateNodeAfterKubeletLabelsTheNode(t *testing.T) {
	registered := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-0-1", Labels: map[string]string{
		"kubernetes.io/arch": "arm64", "topology.kubernetes.io/zone": "us-east-1a",
	}}}
	client := fake.NewClientset(registered)
	c, err := New(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	want := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-0-1", Labels: map[string]string{
		"karpenter.sh/nodepool": "default", provisioning.LabelManagedBy: provisioning.ManagedBy,
		"topology.kubernetes.io/zone": "us-east-1b", // the kubelet's value wins
	}}}
	if err := c.CreateNode(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := client.CoreV1().Nodes().Get(ctx, "ip-10-0-0-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"karpenter.sh/nodepool": "default", provisioning.LabelManagedBy: provisioning.ManagedBy,
		"kubernetes.io/arch": "arm64", "topology.kubernetes.io/zone": "us-east-1a",
	} {
		if got.Labels[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, got.Labels[k], v, got.Labels)
		}
	}
	// Nothing missing: no patch.
	client.ClearActions()
	if err := c.CreateNode(ctx, want); err != nil {
		t.Fatal(err)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() == "patch" {
			t.Errorf("patched a node that had every label: %v", a)
		}
	}
}
