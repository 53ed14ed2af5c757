package e2e

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fleetpack/fleetpack/provisioning"
)

// consolidationPool is one pool of large Spot nodes (three 500m pods
// each), consolidating underutilized nodes by default, one at a time (the
// default budget of 10%).
var consolidationPool = fmt.Sprintf(spotPool, "spot", 10)

// TestControlPlaneConsolidation runs consolidation on a real control plane:
// six web pods on large Spot nodes, then a scale-in that leaves one pod on
// each of two nodes (pod-deletion-cost steers which pods the ReplicaSet
// deletes). Consolidation validates its move after the delay, taints the
// node it empties, evicts its pod through the Eviction API under a
// PodDisruptionBudget (minAvailable 1), and deletes the node and its
// instance: both pods end Ready on one node, never fewer than one Ready,
// and the instances alive are exactly the nodes'; scaled to 0, no node or
// instance is left.
func TestControlPlaneConsolidation(t *testing.T) {
	e := newEnv(t, consolidationPool, func(o *provisioning.Options) {
		o.Consolidation = provisioning.ConsolidationOptions{Enabled: true, ValidationDelay: time.Second}
	})
	const phase = 3 * time.Minute
	e.createWeb(1)
	e.scale(6)
	e.waitFor("6 web pods Ready on fleetpack's nodes", phase, func() (bool, error) { return e.settledOn(6) })

	// Keep one pod on each of two nodes: the ReplicaSet deletes the pods
	// of lowest deletion cost first.
	kept := map[string]bool{}
	for _, p := range e.webPods() {
		if len(kept) < 2 && !kept[p.Spec.NodeName] {
			kept[p.Spec.NodeName] = true
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"100"}}}`, "controller.kubernetes.io/pod-deletion-cost")
			if _, err := e.client.CoreV1().Pods(e.ns).Patch(e.ctx, p.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(kept) != 2 {
		t.Fatalf("6 pods on %d nodes, want at least 2 nodes", len(kept))
	}
	mark := len(e.cluster.timeline())
	e.ready.reset()
	e.scale(2)
	e.waitFor("2 web pods Ready on one node, the other nodes and instances gone", phase, func() (bool, error) {
		if len(e.managedNodes()) != 1 {
			return false, nil
		}
		return e.settledOn(2)
	})
	if fewest := e.ready.fewestReady(); fewest < 1 {
		t.Errorf("only %d web pods Ready at one point, the budget says 1", fewest)
	}
	steps := e.stepsSince(mark)
	survivor := e.managedNodes()[0].Name
	moved := false
	for half := range kept {
		if half == survivor {
			continue
		}
		taint := first(steps, func(s step) bool { return s.verb == "taint" && s.obj == half })
		evict := first(steps, func(s step) bool { return s.verb == "evict" && s.node == half })
		deleted := first(steps, func(s step) bool { return s.verb == "delete" && s.obj == half })
		if taint < 0 || evict < 0 || deleted < 0 || taint > evict || evict > deleted {
			t.Errorf("half-empty node %s: want taint, eviction, delete in that order (%d, %d, %d):\n%s", half, taint, evict, deleted, e.timelineText())
		}
		moved = true
	}
	if !moved {
		t.Errorf("no half-empty node was consolidated:\n%s", e.timelineText())
	}
	// Scale to 0: every node and instance goes, and the control plane,
	// shared with the other tests, is left with none of this test's nodes.
	e.scale(0)
	e.waitFor("every node and instance gone after scale to 0", phase, func() (bool, error) {
		return len(e.managedNodes()) == 0 && len(e.stack.EC2.LiveInstances()) == 0 && len(e.webPods()) == 0, nil
	})
	for _, s := range e.cluster.timeline() {
		if s.err != nil && !provisioning.IsNotFound(s.err) {
			t.Errorf("a write failed: %s", s)
		}
		if s.verb == "untaint" {
			t.Errorf("a move was abandoned: %s", s)
		}
	}
	t.Logf("timeline:\n%s", e.timelineText())
}
