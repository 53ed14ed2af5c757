package disruption

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

func TestEmptyNodesAreRemovedAfterConsolidateAfter(t *testing.T) {
	w := newWorld(t, "m5")
	w.addNode("busy", "m5.large", offerings.CapacityTypeOnDemand, pod("1500m", "6Gi"))
	w.addNode("empty", "m5.xlarge", offerings.CapacityTypeOnDemand)
	d := w.decide()
	if len(d.Commands) != 1 || d.Commands[0].Method != MethodEmpty || !slices.Equal(d.Commands[0].Candidates, []string{"empty"}) {
		t.Fatalf("commands = %v, want the empty node removed", d.Commands)
	}
	if d.Commands[0].Saving <= 0 || len(d.Commands[0].Replacements) != 0 {
		t.Errorf("empty removal saving %v replacements %d", d.Commands[0].Saving, len(d.Commands[0].Replacements))
	}

	w.in.Nodes[1].QuietSince = w.in.Now.Add(-10 * time.Second)
	d = w.decide()
	if slices.Contains(methods(d), MethodEmpty) || skipped(d, "empty") != SkipConsolidateAfter {
		t.Fatalf("a node emptied 10s ago: commands %v, skip %q", d.Commands, skipped(d, "empty"))
	}
	if want := w.in.Now.Add(50 * time.Second); !d.Wake.Equal(want) {
		t.Errorf("wake = %v, want %v", d.Wake, want)
	}
}

func TestSingleNodeDeleteAndReplace(t *testing.T) {
	w := newWorld(t, "m5")
	// big has room for small's pod: small is deleted (big's pod may not move).
	w.addNode("big", "m5.2xlarge", offerings.CapacityTypeOnDemand, heldPod("4", "8Gi"))
	w.addNode("small", "m5.xlarge", offerings.CapacityTypeOnDemand, pod("1", "2Gi"))
	d := w.decide()
	if len(d.Commands) != 1 || len(d.Commands[0].Replacements) != 0 || !slices.Equal(d.Commands[0].Candidates, []string{"small"}) {
		t.Fatalf("commands = %v, want small deleted", d.Commands)
	}

	// One oversized node with one small pod: replaced by one cheaper node.
	w = newWorld(t, "m5")
	w.addNode("huge", "m5.4xlarge", offerings.CapacityTypeOnDemand, pod("1", "2Gi"))
	d = w.decide()
	if len(d.Commands) != 1 || d.Commands[0].Method != MethodSingleNode || len(d.Commands[0].Replacements) != 1 {
		t.Fatalf("commands = %v, want one replacement", d.Commands)
	}
	cmd := d.Commands[0]
	if cmd.Saving <= 0 || cmd.Replacements[0].Price() >= w.in.Nodes[0].Price {
		t.Errorf("replacement $%v for a $%v node, saving %v", cmd.Replacements[0].Price(), w.in.Nodes[0].Price, cmd.Saving)
	}
	for _, it := range cmd.Replacements[0].InstanceTypes {
		if p := cheapestBill(it, cmd.Replacements[0]); p >= w.in.Nodes[0].Price {
			t.Errorf("replacement may launch %s at $%v, no cheaper than the node", it.Name, p)
		}
	}

	// A well-fitted node stays.
	w = newWorld(t, "m5")
	w.addNode("fit", "m5.large", offerings.CapacityTypeOnDemand, pod("1500m", "6Gi"))
	if d = w.decide(); len(d.Commands) != 0 {
		t.Fatalf("commands = %v for a well-fitted node", d.Commands)
	}
}

// cheapestBill is the least a node of type it launched for claim c bills.
func cheapestBill(it *offerings.InstanceType, c *scheduling.NodeClaim) float64 {
	best := 1e9
	for _, o := range c.Offerings(it) {
		best = min(best, offerings.NodeBill(it, o, c.Template.NodeCosts, c.Template.Burstable, 0))
	}
	return best
}

func TestMultiNodeConsolidationReplacesManyWithFewer(t *testing.T) {
	w := newWorld(t, "m5")
	for _, name := range []string{"a", "b", "c", "d"} {
		w.addNode(name, "m5.xlarge", offerings.CapacityTypeOnDemand, pod("1", "3Gi"))
	}
	d := w.decide()
	if len(d.Commands) != 1 || d.Commands[0].Method != MethodMultiNode {
		t.Fatalf("commands = %v, want one multi-node move", d.Commands)
	}
	cmd := d.Commands[0]
	if len(cmd.Replacements) >= len(cmd.Candidates) || len(cmd.Candidates) < 2 {
		t.Errorf("%d nodes replaced by %d", len(cmd.Candidates), len(cmd.Replacements))
	}
	if cmd.Saving <= 0 || len(cmd.Pods) != len(cmd.Candidates) {
		t.Errorf("saving %v, pods %d", cmd.Saving, len(cmd.Pods))
	}
}

func TestPolicies(t *testing.T) {
	build := func(policy Policy) *world {
		w := newWorld(t, "m5")
		w.in.Pools[0].Policy = policy
		w.addNode("huge", "m5.4xlarge", offerings.CapacityTypeOnDemand, pod("1", "2Gi"))
		w.addNode("empty", "m5.large", offerings.CapacityTypeOnDemand)
		return w
	}
	if d := build(WhenEmpty).decide(); !slices.Equal(methods(d), []Method{MethodEmpty}) {
		t.Errorf("WhenEmpty: %v, want only the empty removal", methods(d))
	}
	if d := build(WhenEmptyOrUnderutilized).decide(); !slices.Equal(methods(d), []Method{MethodEmpty, MethodSingleNode}) {
		t.Errorf("WhenEmptyOrUnderutilized: %v", methods(d))
	}
	if d := build(Balanced).decide(); !slices.Equal(methods(d), []Method{MethodEmpty, MethodSingleNode}) {
		t.Errorf("Balanced, a large saving for one pod: %v", methods(d))
	}

	// Balanced refuses a small saving that moves most of the pool's pods:
	// ten nodes of m5.xlarge, one node of 10 pods replaced by a slightly
	// smaller one saves little and disrupts most.
	w := newWorld(t, "m5")
	w.in.Pools[0].Policy = Balanced
	var pods []*corev1.Pod
	for range 10 {
		pods = append(pods, pod("300m", "1Gi"))
	}
	w.addNode("crowded", "m5.2xlarge", offerings.CapacityTypeOnDemand, pods...)
	w.addNode("light", "m5.2xlarge", offerings.CapacityTypeOnDemand, pod("6", "24Gi"))
	if d := w.decide(); len(d.Commands) != 0 {
		t.Errorf("Balanced moved %v", d.Commands)
	}
	w.in.Pools[0].Policy = WhenEmptyOrUnderutilized
	if d := w.decide(); len(d.Commands) != 1 {
		t.Errorf("WhenEmptyOrUnderutilized on the same cluster: %v, want the move", d.Commands)
	}

	// A minimum saving blocks small moves.
	w = build(WhenEmptyOrUnderutilized)
	w.in.Pools[0].MinSaving = 10
	if d := w.decide(); !slices.Equal(methods(d), []Method{MethodEmpty}) {
		t.Errorf("MinSaving $10/h: %v", methods(d))
	}
}

func TestDriftAndExpiration(t *testing.T) {
	w := newWorld(t, "m5")
	w.addNode("n", "m5.large", offerings.CapacityTypeOnDemand, pod("1500m", "6Gi"))
	if d := w.decide(); len(d.Commands) != 0 {
		t.Fatalf("commands %v before drift", d.Commands)
	}
	w.in.Pools[0].Labels = map[string]string{"team": "a"}
	d := w.decide()
	if !slices.Equal(methods(d), []Method{MethodDrift}) || len(d.Commands[0].Replacements) != 1 {
		t.Fatalf("label added to the pool: %v, want a drift replacement", d.Commands)
	}
	w.in.Pools[0].Labels = nil
	w.in.Nodes[0].Node.Annotations = map[string]string{AnnotationTemplateHash: "old"}
	w.in.Pools[0].TemplateHash = "new"
	if d := w.decide(); !slices.Equal(methods(d), []Method{MethodDrift}) {
		t.Fatalf("template hash changed: %v", methods(d))
	}
	w.in.Pools[0].TemplateHash = "old"
	w.in.Pools[0].ExpireAfter = 30 * time.Minute
	if d := w.decide(); !slices.Equal(methods(d), []Method{MethodExpiration}) {
		t.Fatalf("node older than expireAfter: %v", methods(d))
	}
	w.in.Pools[0].ExpireAfter = 2 * time.Hour
	d = w.decide()
	if len(d.Commands) != 0 || !d.Wake.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("before expiry: %v, wake %v", d.Commands, d.Wake)
	}
}

func TestBudgets(t *testing.T) {
	build := func(budgets ...Budget) *world {
		w := newWorld(t, "m5")
		w.in.Pools[0].Budgets = budgets
		w.addNode("busy", "m5.large", offerings.CapacityTypeOnDemand, pod("1500m", "6Gi"))
		for _, n := range []string{"e1", "e2", "e3", "e4", "e5"} {
			w.addNode(n, "m5.large", offerings.CapacityTypeOnDemand)
		}
		return w
	}
	removed := func(d *Decision) int {
		n := 0
		for _, c := range d.Commands {
			if c.Method == MethodEmpty {
				n += len(c.Candidates)
			}
		}
		return n
	}
	if got := removed(build().decide()); got != 1 {
		t.Errorf("default 10%% of 6 nodes: removed %d, want 1 (rounded up)", got)
	}
	d := build(Budget{Nodes: "2"}).decide()
	if got := removed(d); got != 2 {
		t.Errorf("budget 2: removed %d", got)
	}
	if got := skipped(d, "e5"); got != SkipBudget {
		t.Errorf("e5 skip = %q, want budget", got)
	}
	if got := removed(build(Budget{Nodes: "50%"}).decide()); got != 3 {
		t.Errorf("budget 50%% of 6: removed %d, want 3", got)
	}
	w := build(Budget{Nodes: "100%"})
	w.in.Nodes[2].Disrupting = true
	if got := removed(w.decide()); got != 4 {
		t.Errorf("budget 100%% with one disrupting: removed %d, want 4", got)
	}
	if got := removed(build(Budget{Nodes: "100%"}, Budget{Nodes: "0", Reasons: []Reason{ReasonEmpty}}).decide()); got != 0 {
		t.Errorf("a zero budget for Empty: removed %d", got)
	}
	if got := removed(build(Budget{Nodes: "100%"}, Budget{Nodes: "0", Reasons: []Reason{ReasonDrifted}}).decide()); got != 5 {
		t.Errorf("a zero budget for Drifted only: removed %d empties, want 5", got)
	}
	// A window 09:00-11:00 on weekdays forbids disruption; it is 11:00 Monday.
	sched, dur := "0 9 * * 1-5", &metav1.Duration{Duration: 2 * time.Hour}
	w = build(Budget{Nodes: "100%"}, Budget{Nodes: "0", Schedule: &sched, Duration: dur})
	w.in.Now = t0.Add(30 * time.Minute) // 10:30, inside
	if got := removed(w.decide()); got != 0 {
		t.Errorf("inside the zero window: removed %d", got)
	}
	w.in.Now = t0.Add(61 * time.Minute) // 11:01, outside
	if got := removed(w.decide()); got != 5 {
		t.Errorf("after the zero window: removed %d, want 5", got)
	}
}

func TestDoNotDisruptAndPDBs(t *testing.T) {
	w := newWorld(t, "m5")
	held := pod("1", "2Gi")
	held.Annotations = map[string]string{AnnotationDoNotDisrupt: "true"}
	w.addNode("pod-held", "m5.4xlarge", offerings.CapacityTypeOnDemand, held)
	n := w.addNode("node-held", "m5.4xlarge", offerings.CapacityTypeOnDemand, pod("1", "2Gi"))
	n.Node.Annotations = map[string]string{AnnotationDoNotDisrupt: "true"}
	timed := pod("1", "2Gi")
	timed.Annotations = map[string]string{AnnotationDoNotDisrupt: "2h"}
	w.addNode("timed", "m5.4xlarge", offerings.CapacityTypeOnDemand, timed)
	guarded := pod("1", "2Gi")
	guarded.Labels = map[string]string{"app": "db"}
	w.addNode("pdb", "m5.4xlarge", offerings.CapacityTypeOnDemand, guarded)
	w.in.PDBs = []*policyv1.PodDisruptionBudget{{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}},
		Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 0},
	}}
	d := w.decide()
	if len(d.Commands) != 0 {
		t.Fatalf("commands %v", d.Commands)
	}
	for node, want := range map[string]SkipReason{"pod-held": SkipDoNotDisruptPod, "node-held": SkipDoNotDisruptNode, "timed": SkipDoNotDisruptPod, "pdb": SkipPDB} {
		if got := skipped(d, node); got != want {
			t.Errorf("%s: skip %q, want %q", node, got, want)
		}
	}
	if want := t0.Add(2 * time.Hour); !d.Wake.Equal(want) {
		t.Errorf("wake %v, want the do-not-disrupt duration's end %v", d.Wake, want)
	}
	w.in.Now = t0.Add(2 * time.Hour)
	w.in.PDBs[0].Status.DisruptionsAllowed = 1
	d = w.decide()
	if len(d.Commands) != 1 || slices.Contains(d.Commands[0].Candidates, "pod-held") || slices.Contains(d.Commands[0].Candidates, "node-held") {
		t.Fatalf("after the duration and with the PDB allowing one: %v", d.Commands)
	}
}

func TestSpotToSpotNeedsFlexibility(t *testing.T) {
	w := newWorld(t).allowSpot()
	w.addNode("spot", "m5.4xlarge", offerings.CapacityTypeSpot, pod("1", "2Gi"))
	d := w.decide()
	if len(d.Commands) != 1 || len(d.Commands[0].Replacements) != 1 {
		t.Fatalf("spot node with one small pod: %v, want a Spot replacement", d.Commands)
	}
	if n := len(d.Commands[0].Replacements[0].InstanceTypes); n < DefaultSpotToSpotMinTypes {
		t.Errorf("replacement keeps %d types, fewer than the floor", n)
	}
	w.in.Pools[0].SpotToSpotMinTypes = 10000
	if d := w.decide(); len(d.Commands) != 0 {
		t.Fatalf("floor of 10000 types: %v, want no move", d.Commands)
	}
}

func TestOnDemandFallbackReturnsToSpot(t *testing.T) {
	w := newWorld(t, "m5").allowSpot()
	// The pod fills an m5.large; on-demand fell back when Spot was out.
	w.addNode("od", "m5.large", offerings.CapacityTypeOnDemand, pod("1500m", "6Gi"))
	for _, it := range w.catalog {
		for i := range it.Offerings {
			if it.Offerings[i].CapacityType == offerings.CapacityTypeSpot {
				it.Offerings[i].Available = false
			}
		}
	}
	if d := w.decide(); len(d.Commands) != 0 {
		t.Fatalf("Spot unavailable: %v", d.Commands)
	}
	w = newWorld(t, "m5").allowSpot() // a fresh catalog: Spot is back
	w.addNode("od", "m5.large", offerings.CapacityTypeOnDemand, pod("1500m", "6Gi"))
	d := w.decide()
	if len(d.Commands) != 1 || len(d.Commands[0].Replacements) != 1 {
		t.Fatalf("Spot back: %v, want a replacement", d.Commands)
	}
	if _, o, _ := d.Commands[0].Replacements[0].CheapestOffering(); o.CapacityType != offerings.CapacityTypeSpot {
		t.Errorf("replacement is %s, want spot", o.CapacityType)
	}
}

func TestCandidateSkips(t *testing.T) {
	w := newWorld(t, "m5")
	w.addNode("foreign", "m5.large", offerings.CapacityTypeOnDemand).Managed = false
	w.addNode("nominated", "m5.large", offerings.CapacityTypeOnDemand).Nominated = true
	w.addNode("cordoned", "m5.large", offerings.CapacityTypeOnDemand).Node.Spec.Unschedulable = true
	w.addNode("starting", "m5.large", offerings.CapacityTypeOnDemand).Node.Status.Conditions[0].Status = corev1.ConditionFalse
	w.addNode("orphan", "m5.large", offerings.CapacityTypeOnDemand).Pool = "gone"
	d := w.decide()
	want := map[string]SkipReason{"foreign": SkipNotManaged, "nominated": SkipNominated, "cordoned": SkipDisrupting, "starting": SkipNotReady, "orphan": SkipNoNodePool}
	for node, reason := range want {
		if got := skipped(d, node); got != reason {
			t.Errorf("%s: skip %q, want %q", node, got, reason)
		}
	}
	if len(d.Commands) != 0 {
		t.Errorf("commands %v", d.Commands)
	}
}

func TestPodDisruptionCost(t *testing.T) {
	p := pod("1", "1Gi")
	if c := PodDisruptionCost(p); c != 1 {
		t.Errorf("plain pod cost %v", c)
	}
	p.Annotations = map[string]string{AnnotationPodDeletionCost: "1000000000"}
	high := PodDisruptionCost(p)
	prio := int32(2000000000)
	p.Spec.Priority = &prio
	if higher := PodDisruptionCost(p); !(high > 1 && higher > high && higher <= 10) {
		t.Errorf("costs %v then %v", high, higher)
	}
	p.Annotations[AnnotationPodDeletionCost] = "-2147483648"
	p.Spec.Priority = nil
	if c := PodDisruptionCost(p); c != 0.1 {
		t.Errorf("lowest cost %v, want the floor 0.1", c)
	}
}

func TestValidateCatchesChurn(t *testing.T) {
	w := newWorld(t, "m5")
	w.addNode("huge", "m5.4xlarge", offerings.CapacityTypeOnDemand, pod("1", "2Gi"))
	d := w.decide()
	if len(d.Commands) != 1 {
		t.Fatalf("commands %v", d.Commands)
	}
	cmd := d.Commands[0]
	if got, err := Validate(w.in, cmd); err != nil || len(got.Replacements) != 1 {
		t.Fatalf("unchanged cluster: %v, %v", got, err)
	}
	// A pod arrived on the candidate: churn.
	w.in.Nodes[0].Pods = append(w.in.Nodes[0].Pods, pod("1", "2Gi"))
	if _, err := Validate(w.in, cmd); err == nil || !strings.Contains(err.Error(), "pods churned") {
		t.Fatalf("new pod: %v", err)
	}
	w.in.Nodes[0].Pods = w.in.Nodes[0].Pods[:1]
	w.in.Nodes[0].Node.Annotations = map[string]string{AnnotationDoNotDisrupt: "true"}
	if _, err := Validate(w.in, cmd); err == nil || !strings.Contains(err.Error(), "no longer a candidate (do_not_disrupt_node)") {
		t.Fatalf("annotated since: %v", err)
	}
	// The pod grew into the whole node: the move no longer saves.
	w.in.Nodes[0].Node.Annotations = nil
	w.in.Nodes[0].Pods[0].Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("15")
	if _, err := Validate(w.in, cmd); err == nil || !strings.Contains(err.Error(), "no longer saves") {
		t.Fatalf("grown pod: %v", err)
	}
}

func TestNothingIsDisruptedWhilePodsNeedCapacity(t *testing.T) {
	w := newWorld(t, "m5")
	w.addNode("empty", "m5.large", offerings.CapacityTypeOnDemand)
	d := w.decide()
	if len(d.Commands) != 1 {
		t.Fatalf("commands %v", d.Commands)
	}
	w.in.Pending = 1
	if d := w.decide(); len(d.Commands) != 0 {
		t.Errorf("with a pod pending: %v", d.Commands)
	}
	if _, err := Validate(w.in, d.Commands[0]); err == nil {
		t.Error("validation passed with a pod pending")
	}
}

func TestStabilizationProtectsNodesADisruptionFilled(t *testing.T) {
	w := newWorld(t, "m5")
	w.addNode("big", "m5.2xlarge", offerings.CapacityTypeOnDemand, heldPod("4", "8Gi"))
	w.addNode("small", "m5.xlarge", offerings.CapacityTypeOnDemand, pod("1", "2Gi"))
	d := w.decide()
	if len(d.Commands) != 1 || !slices.Equal(d.Commands[0].Candidates, []string{"small"}) || !slices.Equal(d.Commands[0].Destinations, []string{"big"}) {
		t.Fatalf("commands = %v, want small moved onto big", d.Commands)
	}

	// A node that has taken moved pods keeps its pods for the window,
	// though moving them would save.
	w = newWorld(t, "m5")
	w.addNode("filled", "m5.4xlarge", offerings.CapacityTypeOnDemand, pod("1", "2Gi")).DisruptedInto = w.in.Now.Add(-30 * time.Minute)
	d = w.decide()
	if len(d.Commands) != 0 || skipped(d, "filled") != SkipStabilizing {
		t.Fatalf("commands = %v, skip %q; want filled left alone as stabilizing", d.Commands, skipped(d, "filled"))
	}
	if want := w.in.Now.Add(30 * time.Minute); !d.Wake.Equal(want) {
		t.Errorf("wake = %v, want the window's end %v", d.Wake, want)
	}
	w.in.Now = w.in.Now.Add(30 * time.Minute)
	if d = w.decide(); len(d.Commands) != 1 || d.Commands[0].Method != MethodSingleNode {
		t.Fatalf("after the window: commands = %v, want filled replaced", d.Commands)
	}

	// An empty node is removed whatever the window; a negative window is none.
	w = newWorld(t, "m5")
	w.addNode("emptied", "m5.xlarge", offerings.CapacityTypeOnDemand).DisruptedInto = w.in.Now
	if d = w.decide(); len(d.Commands) != 1 || d.Commands[0].Method != MethodEmpty {
		t.Fatalf("commands = %v, want the empty node removed", d.Commands)
	}
	w = newWorld(t, "m5")
	w.in.Pools[0].Stabilization = -1
	w.addNode("filled", "m5.4xlarge", offerings.CapacityTypeOnDemand, pod("1", "2Gi")).DisruptedInto = w.in.Now
	if d = w.decide(); len(d.Commands) != 1 {
		t.Fatalf("no stabilization: commands = %v, want filled replaced", d.Commands)
	}
}

// Decide is pure: it leaves its Input as it found it.
func TestDecideDoesNotWriteItsInput(t *testing.T) {
	w := newWorld(t, "m5")
	w.addNode("a", "m5.xlarge", offerings.CapacityTypeOnDemand, pod("1", "3Gi"))
	w.addNode("b", "m5.xlarge", offerings.CapacityTypeOnDemand)
	pools := slices.Clone(w.in.Pools)
	w.decide()
	if !reflect.DeepEqual(pools, w.in.Pools) {
		t.Errorf("Decide changed its pools: %+v, was %+v", w.in.Pools, pools)
	}
}
