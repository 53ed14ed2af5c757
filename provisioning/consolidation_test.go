package provisioning_test

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/cloudprovider/aws/fake"
	"github.com/fleetpack/fleetpack/internal/stack"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
	"github.com/fleetpack/fleetpack/provisioning/disruption"
)

const onDemandPoolYAML = `
apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: default
spec:
  template:
    spec:
      requirements:
      - key: kubernetes.io/arch
        operator: In
        values: ["amd64"]
      - key: karpenter.k8s.aws/instance-family
        operator: In
        values: ["c5", "m5"]
  disruption:
    consolidationPolicy: WhenEmptyOrUnderutilized
    consolidateAfter: 30s
    budgets:
    - nodes: "100%"
`

// newConsolidationEnv is awsEnv with a Provisioner that consolidates.
func newConsolidationEnv(t *testing.T) (*awsEnv, *provisioning.Metrics) {
	metrics, err := provisioning.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &awsEnv{t: t, ctx: t.Context(), Stack: stack.New(t, stack.Options{
		Pools: onDemandPoolYAML, ClusterName: "e2e",
		MemoryCluster: provisioning.MemoryClusterOptions{NodeReadyDelay: 40 * time.Second, RecreateControlledPods: true},
		Provisioner:   provisioning.Options{Metrics: metrics, Consolidation: provisioning.ConsolidationOptions{Enabled: true}},
	})}, metrics
}

// consolidate runs one Consolidate step and returns its wake time.
func (e *awsEnv) consolidate() ([]string, time.Time) {
	e.t.Helper()
	removed, next, err := e.Provisioner.Consolidate(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return removed, next
}

// stepTo moves the fake clock to t (never back).
func (e *awsEnv) stepTo(t time.Time) {
	if d := t.Sub(e.FakeClock.Now()); d > 0 {
		e.FakeClock.Step(d)
	}
}

func (e *awsEnv) nodes() []*corev1.Node {
	nodes, err := e.Memory.ListNodes(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return nodes
}

// bill is the nodes' hourly bill under the env's NodePool, which states
// no per-node costs and keeps the Baseline burstable policy.
func (e *awsEnv) bill(catalog []*offerings.InstanceType) float64 {
	total := 0.0
	for _, n := range e.nodes() {
		for _, it := range catalog {
			if it.Name == n.Labels[offerings.LabelInstanceType] {
				for _, o := range it.Offerings {
					if o.Zone == n.Labels[offerings.LabelZone] && o.CapacityType == n.Labels[offerings.LabelCapacityType] {
						total += offerings.NodeBill(it, o, offerings.NodeCosts{}, offerings.BurstableBaseline, 0)
					}
				}
			}
		}
	}
	return total
}

func hasDisruptedTaint(n *corev1.Node) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == provisioning.TaintKeyDisrupted })
}

// The whole loop on the in-memory cluster and fake EC2, stepping the fake
// clock only to the wake times Consolidate reports (and to node readiness):
// a scale-in leaves two nodes holding a pod each; consolidation waits
// consolidateAfter, decides, validates after 15s, launches what replaces
// them, drains through the Eviction API and terminates them: one node
// is left, for less.
func TestE2EConsolidationAfterScaleIn(t *testing.T) {
	e, metrics := newConsolidationEnv(t)
	catalog, _ := offerings.DefaultCatalog(offerings.CatalogOptions{})
	e.scale("a", 3, "1", "1Gi", nil)
	e.provision()
	e.FakeClock.Step(40 * time.Second)
	e.scale("b", 3, "1", "1Gi", nil)
	e.provision()
	e.FakeClock.Step(40 * time.Second)
	if n := len(e.nodes()); n != 2 {
		t.Fatalf("%d nodes, want 2", n)
	}
	e.consolidate() // sees the nodes full
	before := e.bill(catalog)
	pods, _ := e.Memory.ListPods(e.ctx)
	for _, p := range pods {
		if p.Name != "a-a" && p.Name != "b-a" {
			if err := e.Memory.DeletePodNoRecreate(e.ctx, p.Namespace, p.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, wake := e.consolidate()
	if want := e.FakeClock.Now().Add(30 * time.Second); !wake.Equal(want) {
		t.Fatalf("after the scale-in, wake %v, want consolidateAfter later %v", wake, want)
	}
	e.stepTo(wake)
	_, due := e.consolidate()
	if want := e.FakeClock.Now().Add(provisioning.DefaultValidationDelay); !due.Equal(want) {
		t.Fatalf("decided: wake %v, want the validation delay %v", due, want)
	}
	for _, n := range e.nodes() {
		if hasDisruptedTaint(n) {
			t.Fatalf("node %s tainted before validation", n.Name)
		}
	}
	e.stepTo(due)
	var removed []string
	for i := 0; i < 20 && len(e.nodes()) > 1; i++ {
		r, next := e.consolidate()
		removed = append(removed, r...)
		e.provision() // the evicted pods' replicas are nominated, as Run would
		if next.After(e.FakeClock.Now()) {
			if ready := e.FakeClock.Now().Add(40 * time.Second); ready.Before(next) {
				next = ready // a replacement's kubelet reports by then
			}
			e.stepTo(next)
		}
	}
	// One node deleted onto the other, or both replaced by one smaller.
	if len(removed) == 0 || len(e.nodes()) != 1 {
		t.Fatalf("removed %v, %d nodes left", removed, len(e.nodes()))
	}
	pods, _ = e.Memory.ListPods(e.ctx)
	for _, p := range pods {
		if p.Spec.NodeName != e.nodes()[0].Name {
			t.Errorf("pod %s on %q after the move", p.Name, p.Spec.NodeName)
		}
	}
	if len(pods) != 2 {
		t.Errorf("%d pods, want the 2 kept", len(pods))
	}
	if after := e.bill(catalog); after >= before {
		t.Errorf("bill %v -> %v", before, after)
	}
	if e.liveInstances() != 1 {
		t.Errorf("%d live instances", e.liveInstances())
	}
	if got := count(t, metrics.ConsolidationEvictions.WithLabelValues("evicted")); got != float64(len(removed)) {
		t.Errorf("evictions %v, want one per removed node (%d)", got, len(removed))
	}
	done := 0.0
	for _, m := range []string{"single-node", "multi-node"} {
		done += count(t, metrics.ConsolidationDecisions.WithLabelValues(m, "done"))
	}
	if done != 1 {
		t.Errorf("done moves %v", done)
	}
	// The node the move filled (or launched) is left alone for the
	// stabilization window, past consolidateAfter.
	e.stepTo(e.FakeClock.Now().Add(time.Minute))
	plan, err := e.Provisioner.ConsolidationPlan(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(plan.Skipped, disruption.Skip{Node: e.nodes()[0].Name, Reason: disruption.SkipStabilizing}) {
		t.Errorf("after the move, skips %v; want %s stabilizing", plan.Skipped, e.nodes()[0].Name)
	}
	// Converged: nothing more to do.
	e.stepTo(e.FakeClock.Now().Add(time.Hour))
	if _, next := e.consolidate(); len(e.nodes()) != 1 || !next.IsZero() {
		t.Errorf("after convergence: %d nodes, wake %v", len(e.nodes()), next)
	}
}

// A pod landing on a candidate during the validation delay abandons the
// move; a replacement that cannot launch untaints the candidate.
func TestConsolidationValidationAndReplacementFailure(t *testing.T) {
	e, metrics := newConsolidationEnv(t)
	e.scale("big", 1, "7", "1Gi", nil)
	e.scale("small", 1, "500m", "512Mi", nil)
	e.provision()
	e.FakeClock.Step(40 * time.Second)
	if n := len(e.nodes()); n != 1 {
		t.Fatalf("%d nodes, want 1", n)
	}
	e.consolidate()
	if err := e.Memory.DeletePodNoRecreate(e.ctx, "default", "big-a"); err != nil {
		t.Fatal(err)
	}
	_, wake := e.consolidate()
	e.stepTo(wake)
	_, due := e.consolidate() // decided: replace the oversized node
	if !due.After(wake) {
		t.Fatalf("no decision: wake %v", due)
	}
	// Churn during the delay: a new pod lands on the node.
	e.scale("late", 1, "100m", "64Mi", nil)
	e.provision()
	e.stepTo(due)
	e.consolidate()
	if got := count(t, metrics.ConsolidationValidationFailures.WithLabelValues("single-node")); got != 1 {
		t.Fatalf("validation failures %v, want 1", got)
	}
	if hasDisruptedTaint(e.nodes()[0]) {
		t.Fatal("candidate tainted after a failed validation")
	}

	// Decide again once the node has been quiet; then EC2 has no capacity.
	_, wake = e.consolidate()
	e.stepTo(wake)
	_, due = e.consolidate()
	e.EC2.DrainCapacityType(fake.OnDemand)
	e.stepTo(due)
	e.consolidate()
	if got := count(t, metrics.ConsolidationDecisions.WithLabelValues("single-node", "replacement_failed")); got != 1 {
		t.Fatalf("replacement failures %v, want 1", got)
	}
	if n := e.nodes(); len(n) != 1 || hasDisruptedTaint(n[0]) {
		t.Fatalf("after the failed replacement: %d nodes, tainted %v", len(n), len(n) == 1 && hasDisruptedTaint(n[0]))
	}
}

func count(t *testing.T, c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// A replacement launched for a move holds the room of the candidate's pods:
// pods that arrive before the drain do not take it (else the moved pods
// find it full and launch yet another node, pending meanwhile), and the
// moved pod's replica lands on the replacement.
func TestConsolidationReplacementIsReservedForTheMovedPods(t *testing.T) {
	e, _ := newConsolidationEnv(t)
	e.scale("a", 3, "1", "1Gi", nil)
	e.provision()
	e.FakeClock.Step(40 * time.Second)
	if n := len(e.nodes()); n != 1 {
		t.Fatalf("%d nodes, want 1", n)
	}
	candidate := e.nodes()[0].Name
	e.consolidate()
	pods, _ := e.Memory.ListPods(e.ctx)
	for _, p := range pods {
		if p.Name != "a-a" {
			if err := e.Memory.DeletePodNoRecreate(e.ctx, p.Namespace, p.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, wake := e.consolidate()
	e.stepTo(wake)
	_, due := e.consolidate()
	e.stepTo(due)
	e.consolidate() // validated: candidate tainted, replacement launched
	var replacement string
	for _, n := range e.nodes() {
		if n.Name != candidate {
			replacement = n.Name
		}
	}
	if replacement == "" {
		t.Fatalf("no replacement launched; nodes %v", e.nodes())
	}
	// A pod the replacement would fit only if the moved pod's room were free.
	e.scale("b", 1, "1", "1Gi", nil)
	e.provision()
	pods, _ = e.Memory.ListPods(e.ctx)
	for _, p := range pods {
		if p.Name == "b-a" && (p.Status.NominatedNodeName == replacement || p.Spec.NodeName == replacement) {
			t.Fatalf("pod b-a took the replacement %s launched for a-a", replacement)
		}
	}
	before := len(e.nodes())
	for i := 0; i < 10 && slices.ContainsFunc(e.nodes(), func(n *corev1.Node) bool { return n.Name == candidate }); i++ {
		_, next := e.consolidate()
		e.provision()
		if next.After(e.FakeClock.Now()) {
			if ready := e.FakeClock.Now().Add(40 * time.Second); ready.Before(next) {
				next = ready // a replacement's kubelet reports by then
			}
			e.stepTo(next)
		}
	}
	e.provision()
	e.FakeClock.Step(40 * time.Second)
	pods, _ = e.Memory.ListPods(e.ctx)
	for _, p := range pods {
		if p.Labels["app"] == "a" && p.Spec.NodeName != replacement && p.Status.NominatedNodeName != replacement {
			t.Errorf("moved pod %s on %q (nominated %q), want the replacement %s", p.Name, p.Spec.NodeName, p.Status.NominatedNodeName, replacement)
		}
	}
	if after := len(e.nodes()); after != before-1 {
		t.Errorf("%d nodes after the move, want %d: the moved pod launched another node", after, before-1)
	}
}
