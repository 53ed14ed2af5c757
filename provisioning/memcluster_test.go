package provisioning

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/fleetpack/fleetpack/internal/fixture"
)

var testEpoch = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func ownedPod(name, owner string, labels map[string]string) *corev1.Pod {
	return fixture.Pod("default", name, fixture.Labels(labels), fixture.OwnedBy("ReplicaSet", owner))
}

func readyNode(name string) *corev1.Node { return fixture.Node(name, fixture.Ready()) }

func TestMemoryClusterNodeReadyAfterDelayBindsNominatedPods(t *testing.T) {
	ctx := t.Context()
	fc := clocktesting.NewFakeClock(testEpoch)
	c := NewMemoryCluster(fc, MemoryClusterOptions{NodeReadyDelay: 30 * time.Second})
	changes := c.Changes(ctx)
	if err := c.CreatePod(ctx, ownedPod("web-1", "web", nil)); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateNode(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}); err != nil {
		t.Fatal(err)
	}
	<-changes
	pod, _ := c.GetPod("default", "web-1")
	if err := c.Nominate(ctx, pod, "n1"); err != nil {
		t.Fatal(err)
	}
	n, _ := c.GetNode(ctx, "n1")
	if IsNodeReady(n) {
		t.Fatal("node ready before its delay")
	}
	pod, _ = c.GetPod("default", "web-1")
	if pod.Spec.NodeName != "" || pod.Status.NominatedNodeName != "n1" {
		t.Fatalf("pod bound before node ready: node %q nominated %q", pod.Spec.NodeName, pod.Status.NominatedNodeName)
	}
	<-changes // drain
	fc.Step(29 * time.Second)
	if n, _ := c.GetNode(ctx, "n1"); IsNodeReady(n) {
		t.Fatal("node ready 1s early")
	}
	fc.Step(time.Second)
	select {
	case <-changes:
	default:
		t.Fatal("no change notification when the node became ready")
	}
	if n, _ := c.GetNode(ctx, "n1"); !IsNodeReady(n) {
		t.Fatal("node not ready after its delay")
	}
	pod, _ = c.GetPod("default", "web-1")
	if pod.Spec.NodeName != "n1" || pod.Status.Phase != corev1.PodRunning {
		t.Fatalf("pod not bound: node %q phase %s", pod.Spec.NodeName, pod.Status.Phase)
	}
}

func TestMemoryClusterChangesClosesOnCancel(t *testing.T) {
	c := NewMemoryCluster(clocktesting.NewFakeClock(testEpoch), MemoryClusterOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	ch := c.Changes(ctx)
	cancel()
	for range ch {
	}
}

func TestMemoryClusterEvictHonoursPDB(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(n int) *intstr.IntOrString { v := intstr.FromInt32(int32(n)); return &v }
	tests := []struct {
		name           string
		minAvail       *intstr.IntOrString
		maxUnavail     *intstr.IntOrString
		running        int
		pending        int
		wantEvictions  int // of the running pods, evicted in turn until blocked
		evictPendingOK bool
	}{
		{name: "minAvailable 2 of 3", minAvail: num(2), running: 3, wantEvictions: 1, evictPendingOK: true},
		{name: "maxUnavailable 1 of 4", maxUnavail: num(1), running: 4, wantEvictions: 1, evictPendingOK: true},
		{name: "minAvailable 50% of 4 rounds up", minAvail: pct("50%"), running: 4, wantEvictions: 2, evictPendingOK: true},
		{name: "maxUnavailable 30% of 4 rounds up to 2", maxUnavail: pct("30%"), running: 4, wantEvictions: 2, evictPendingOK: true},
		{name: "maxUnavailable 0 blocks", maxUnavail: num(0), running: 2, wantEvictions: 0, evictPendingOK: true},
		{name: "pending pods count as expected", minAvail: num(3), running: 3, pending: 1, wantEvictions: 0, evictPendingOK: true},
		{name: "maxUnavailable 1 with one already pending", maxUnavail: num(1), running: 3, pending: 1, wantEvictions: 0, evictPendingOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			c := NewMemoryCluster(clocktesting.NewFakeClock(testEpoch), MemoryClusterOptions{})
			if err := c.CreateNode(ctx, readyNode("n1")); err != nil {
				t.Fatal(err)
			}
			app := map[string]string{"app": "web"}
			var running []*corev1.Pod
			for i := range tc.running {
				p := ownedPod("web-"+string(rune('a'+i)), "web", app)
				p.Spec.NodeName = "n1"
				if err := c.CreatePod(ctx, p); err != nil {
					t.Fatal(err)
				}
				running = append(running, p)
			}
			for i := range tc.pending {
				if err := c.CreatePod(ctx, ownedPod("web-pending-"+string(rune('a'+i)), "web", app)); err != nil {
					t.Fatal(err)
				}
			}
			// An unrelated pod without a budget is always evictable.
			other := ownedPod("other", "other", map[string]string{"app": "other"})
			other.Spec.NodeName = "n1"
			_ = c.CreatePod(ctx, other)
			pdb := &policyv1.PodDisruptionBudget{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
				Spec: policyv1.PodDisruptionBudgetSpec{
					MinAvailable: tc.minAvail, MaxUnavailable: tc.maxUnavail,
					Selector: &metav1.LabelSelector{MatchLabels: app},
				},
			}
			if err := c.CreatePDB(ctx, pdb); err != nil {
				t.Fatal(err)
			}
			// ListPDBs reports as many disruptions allowed as evictions pass.
			if pdbs, err := c.ListPDBs(ctx); err != nil || len(pdbs) != 1 || int(pdbs[0].Status.DisruptionsAllowed) != tc.wantEvictions {
				t.Errorf("ListPDBs = %v, %v; want disruptionsAllowed %d", pdbs, err, tc.wantEvictions)
			}
			evicted := 0
			for _, p := range running {
				err := c.Evict(ctx, p)
				if err == nil {
					evicted++
					continue
				}
				if !IsEvictionBlocked(err) {
					t.Fatalf("evict %s: unexpected error %v", p.Name, err)
				}
				break
			}
			if evicted != tc.wantEvictions {
				t.Errorf("evicted %d, want %d", evicted, tc.wantEvictions)
			}
			if err := c.Evict(ctx, other); err != nil {
				t.Errorf("evicting pod without budget: %v", err)
			}
			if tc.pending > 0 {
				p, _ := c.GetPod("default", "web-pending-a")
				if err := c.Evict(ctx, p); (err == nil) != tc.evictPendingOK {
					t.Errorf("evicting pending pod: %v", err)
				}
			}
		})
	}
}

func TestMemoryClusterRecreatesControlledPods(t *testing.T) {
	ctx := t.Context()
	c := NewMemoryCluster(clocktesting.NewFakeClock(testEpoch), MemoryClusterOptions{RecreateControlledPods: true})
	if err := c.CreateNode(ctx, readyNode("n1")); err != nil {
		t.Fatal(err)
	}
	p := ownedPod("web-1", "web", map[string]string{"app": "web"})
	p.Spec.NodeName = "n1"
	_ = c.CreatePod(ctx, p)
	ds := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "ds-1", Namespace: "kube-system", OwnerReferences: []metav1.OwnerReference{{Kind: "DaemonSet", Name: "ds", Controller: new(bool)}}}, Spec: corev1.PodSpec{NodeName: "n1"}}
	*ds.OwnerReferences[0].Controller = true
	_ = c.CreatePod(ctx, ds)
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "n1"}}
	_ = c.CreatePod(ctx, bare)

	old, _ := c.GetPod("default", "web-1")
	if err := c.Evict(ctx, old); err != nil {
		t.Fatal(err)
	}
	pods, _ := c.ListPods(ctx)
	var replacement *corev1.Pod
	for _, q := range pods {
		if q.Labels["app"] == "web" {
			replacement = q
		}
	}
	if replacement == nil || replacement.Name == "web-1" || replacement.UID == old.UID {
		t.Fatalf("evicted pod not re-created under a new name: %+v", replacement)
	}
	if replacement.Spec.NodeName != "" || replacement.Status.Phase != corev1.PodPending {
		t.Fatalf("replacement not pending: node %q phase %s", replacement.Spec.NodeName, replacement.Status.Phase)
	}
	// A stale copy of the evicted pod must not act on anything.
	if err := c.Evict(ctx, old); !IsNotFound(err) {
		t.Fatalf("second eviction: %v, want not found", err)
	}
	// Deleting the node takes its pods: the daemonset and bare pods are gone
	// for good.
	if err := c.DeleteNode(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	pods, _ = c.ListPods(ctx)
	if len(pods) != 1 || pods[0].Name != replacement.Name {
		t.Fatalf("pods after node deletion: %d", len(pods))
	}
	if err := c.DeletePodNoRecreate(ctx, "default", replacement.Name); err != nil {
		t.Fatal(err)
	}
	if pods, _ = c.ListPods(ctx); len(pods) != 0 {
		t.Fatalf("scale-down re-created the pod")
	}
}

func TestMemoryClusterErrors(t *testing.T) {
	ctx := t.Context()
	c := NewMemoryCluster(clocktesting.NewFakeClock(testEpoch), MemoryClusterOptions{})
	p := ownedPod("a", "rs", nil)
	_ = c.CreatePod(ctx, p)
	if err := c.Bind(ctx, p, "missing"); !IsNotFound(err) {
		t.Errorf("bind to missing node: %v", err)
	}
	if err := c.Cordon(ctx, "missing"); !IsNotFound(err) {
		t.Errorf("cordon missing node: %v", err)
	}
	if err := c.DeleteNode(ctx, "missing"); !IsNotFound(err) {
		t.Errorf("delete missing node: %v", err)
	}
	if err := c.CreatePod(ctx, p); err == nil {
		t.Error("duplicate pod accepted")
	}
	_ = c.CreateNode(ctx, readyNode("n1"))
	if err := c.Bind(ctx, p, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Bind(ctx, p, "n1"); err == nil {
		t.Error("double bind accepted")
	}
	if err := c.Cordon(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.GetNode(ctx, "n1"); !n.Spec.Unschedulable {
		t.Error("cordon did not mark node unschedulable")
	}
	c.Event(ctx, p, corev1.EventTypeWarning, "FailedScheduling", "no fit")
	if ev := c.Events(); len(ev) != 1 || ev[0].Object != "Pod default/a" || ev[0].Reason != "FailedScheduling" {
		t.Errorf("events = %+v", ev)
	}
	two := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default"}, Spec: policyv1.PodDisruptionBudgetSpec{
		MinAvailable: &intstr.IntOrString{IntVal: 1}, MaxUnavailable: &intstr.IntOrString{IntVal: 1}}}
	if err := c.CreatePDB(ctx, two); err == nil {
		t.Error("PDB with both minAvailable and maxUnavailable accepted")
	}
}

func TestMemoryClusterAnnotateNode(t *testing.T) {
	ctx := t.Context()
	c := NewMemoryCluster(clocktesting.NewFakeClock(testEpoch), MemoryClusterOptions{})
	if err := c.AnnotateNode(ctx, "missing", map[string]string{"a": "1"}); !IsNotFound(err) {
		t.Errorf("annotate missing node: %v", err)
	}
	n := readyNode("n1")
	n.Annotations = map[string]string{"keep": "me"}
	if err := c.CreateNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	changes := c.Changes(ctx)
	if err := c.AnnotateNode(ctx, "n1", map[string]string{"a": "1", "b": "2"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	default:
		t.Error("annotating sent no change notification")
	}
	got, _ := c.GetNode(ctx, "n1")
	if got.Annotations["a"] != "1" || got.Annotations["b"] != "2" || got.Annotations["keep"] != "me" {
		t.Fatalf("annotations = %v", got.Annotations)
	}
	// The copy returned is the caller's: changing it changes nothing.
	got.Annotations["a"] = "changed"
	if err := c.AnnotateNode(ctx, "n1", map[string]string{"a": "", "b": "3", "never-set": ""}); err != nil {
		t.Fatal(err)
	}
	got, _ = c.GetNode(ctx, "n1")
	if _, ok := got.Annotations["a"]; ok || got.Annotations["b"] != "3" || got.Annotations["keep"] != "me" || len(got.Annotations) != 2 {
		t.Fatalf("after removing a and setting b: annotations = %v", got.Annotations)
	}
	<-changes // the notification of the removal
	// Setting what is already there is no change.
	if err := c.AnnotateNode(ctx, "n1", map[string]string{"b": "3"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
		t.Error("a no-op annotation sent a change notification")
	default:
	}
}

func TestMemoryClusterTaints(t *testing.T) {
	ctx := t.Context()
	c := NewMemoryCluster(clocktesting.NewFakeClock(testEpoch), MemoryClusterOptions{})
	if err := c.CreateNode(ctx, readyNode("n1")); err != nil {
		t.Fatal(err)
	}
	taint := corev1.Taint{Key: TaintKeyDisrupted, Effect: corev1.TaintEffectNoSchedule}
	for range 2 { // idempotent
		if err := c.TaintNode(ctx, "n1", taint); err != nil {
			t.Fatal(err)
		}
	}
	n, _ := c.GetNode(ctx, "n1")
	if got := len(n.Spec.Taints); got != 1 || n.Spec.Taints[0].Key != TaintKeyDisrupted {
		t.Fatalf("taints %v", n.Spec.Taints)
	}
	if err := c.UntaintNode(ctx, "n1", TaintKeyDisrupted); err != nil {
		t.Fatal(err)
	}
	if n, _ = c.GetNode(ctx, "n1"); len(n.Spec.Taints) != 0 {
		t.Fatalf("taints after untaint %v", n.Spec.Taints)
	}
	if err := c.TaintNode(ctx, "gone", taint); !IsNotFound(err) {
		t.Errorf("tainting a missing node: %v", err)
	}
}
