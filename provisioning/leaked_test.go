package provisioning

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

func instance(id string, launched time.Time) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: id, CreationTimestamp: metav1.NewTime(launched)}, Spec: corev1.NodeSpec{ProviderID: "aws:///a/" + id}}
}

func TestDecideLeaks(t *testing.T) {
	now := testEpoch
	grace := 2 * time.Minute
	registered := instance("i-registered", now.Add(-time.Hour))
	oldLeak := instance("i-old", now.Add(-3*time.Minute))
	young := instance("i-young", now.Add(-30*time.Second))
	unknownSeen := instance("i-unknown-seen", time.Time{})
	unknownNew := instance("i-unknown-new", time.Time{})
	nodes := []*corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "node-of-registered"}, Spec: corev1.NodeSpec{ProviderID: registered.Spec.ProviderID}}}
	suspects := map[string]time.Time{
		unknownSeen.Spec.ProviderID: now.Add(-2 * time.Minute), // first seen a grace ago
		"aws:///a/i-gone":           now.Add(-time.Hour),       // no longer running: forgotten
	}
	v := decideLeaks([]*corev1.Node{registered, oldLeak, young, unknownSeen, unknownNew}, nodes, suspects, now, grace)

	var terminated []string
	for _, n := range v.terminate {
		terminated = append(terminated, n.Name)
	}
	if want := []string{"i-old", "i-unknown-seen"}; !slices.Equal(terminated, want) {
		t.Errorf("terminate %v, want %v (launched or first seen a grace ago, no node)", terminated, want)
	}
	if want := now.Add(90 * time.Second); !v.wake.Equal(want) {
		t.Errorf("wake %s, want %s (i-young's launch + grace)", v.wake, want)
	}
	if got := v.suspects[unknownNew.Spec.ProviderID]; !got.Equal(now) {
		t.Errorf("an instance of unknown launch time is first seen now, got %s", got)
	}
	if _, ok := v.suspects["aws:///a/i-gone"]; ok {
		t.Error("a suspect no longer running is still remembered")
	}
	if _, ok := v.suspects[registered.Spec.ProviderID]; ok {
		t.Error("an instance with a node is a suspect")
	}
}

// A launch whose node never registered (the process died between
// CreateFleet and registering it) is terminated once it has had the grace
// period to register; instances with nodes are never touched.
func TestTerminateLeakedInstances(t *testing.T) {
	e := newEnv(t, pool("default", 0))
	e.addPods("web", 2, "1", "1Gi", nil)
	if res := e.provision(); len(res.Launched) == 0 {
		t.Fatal("nothing launched")
	}
	tracked := e.cloud.running()

	// An instance launched by a pass that died before registering its node.
	tmpl, err := e.prov.NodePools()[0].Template(testCatalog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := scheduling.Solve(scheduling.Input{Pods: []*corev1.Pod{e.addPods("lost", 1, "1", "1Gi", nil)[0]}, Templates: []*scheduling.NodeTemplate{tmpl}})
	if err != nil || len(plan.NodeClaims) != 1 {
		t.Fatalf("solve for the lost launch: %v, %d claims", err, len(plan.NodeClaims))
	}
	leaked, err := e.cloud.Create(e.ctx, plan.NodeClaims[0])
	if err != nil {
		t.Fatal(err)
	}

	gone, wake, err := e.prov.TerminateLeakedInstances(e.ctx)
	if err != nil || len(gone) != 0 {
		t.Fatalf("first sighting: terminated %v (err %v), want none yet", gone, err)
	}
	if want := e.clock.Now().Add(DefaultLeakedInstanceGracePeriod); !wake.Equal(want) {
		t.Fatalf("wake %s, want %s", wake, want)
	}
	// Listing is throttled, and the suspect keeps its due time meanwhile.
	e.clock.Step(10 * time.Second)
	if gone, again, _ := e.prov.TerminateLeakedInstances(e.ctx); len(gone) != 0 || !again.Equal(wake) {
		t.Fatalf("within the listing interval: terminated %v, wake %s, want none and %s", gone, again, wake)
	}
	e.clock.Step(wake.Sub(e.clock.Now()))
	gone, next, err := e.prov.TerminateLeakedInstances(e.ctx)
	if err != nil || !slices.Equal(gone, []string{leaked.Name}) {
		t.Fatalf("at the grace period's end: terminated %v (err %v), want %s", gone, err, leaked.Name)
	}
	if !next.IsZero() {
		t.Errorf("wake %s after the leak is gone, want none", next)
	}
	if got := e.cloud.running(); got != tracked {
		t.Errorf("%d instances running, want the %d with nodes", got, tracked)
	}
	if got := metricValue(e.metrics.NodesTerminated.WithLabelValues("default", leaked.Labels[offerings.LabelCapacityType], "leaked")); got != 1 {
		t.Errorf("leaked terminations metric = %v, want 1", got)
	}
	e.clock.Step(time.Hour)
	if gone, _, _ := e.prov.TerminateLeakedInstances(e.ctx); len(gone) != 0 {
		t.Errorf("terminated %v: instances with nodes are never leaked", gone)
	}
}
