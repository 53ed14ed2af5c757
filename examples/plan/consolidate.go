package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
	"github.com/fleetpack/fleetpack/provisioning/disruption"
	"github.com/fleetpack/fleetpack/scheduling"
)

// writeConsolidation prints what one consolidation pass would decide over
// the scenario's nodes, as a running fleetpack's would (the same
// provisioning.ConsolidationInput and disruption.Decide).
func writeConsolidation(w io.Writer, sc *scenario, in scheduling.Input, catalog []*offerings.InstanceType) error {
	now := time.Now()
	nodes := map[string]*corev1.Node{}
	for _, n := range sc.nodes {
		nodes[n.Name] = readyLongAgo(n, now)
	}
	for i := range in.Nodes {
		in.Nodes[i].Node = readyLongAgo(in.Nodes[i].Node, now)
	}
	din, err := provisioning.ConsolidationInput(now, nodes, in, provisioning.ConsolidationInputOptions{
		NodePools: sc.pools, Catalog: catalog, AssumeManaged: true,
	})
	if err != nil {
		return err
	}
	d, err := disruption.Decide(din)
	if err != nil {
		return fmt.Errorf("consolidation: %w", err)
	}
	fmt.Fprintf(w, "\nConsolidation (%d simulations):\n", d.Simulations)
	if din.Pending > 0 {
		fmt.Fprintf(w, "  nothing while %d pods need capacity\n", din.Pending)
	}
	if len(d.Commands) == 0 && din.Pending == 0 {
		fmt.Fprintln(w, "  no move saves anything")
	}
	for _, c := range d.Commands {
		fmt.Fprintf(w, "  %s: remove %s", c.Method, strings.Join(c.Candidates, ", "))
		for _, r := range c.Replacements {
			if it, o, bill, ok := r.CheapestBill(); ok {
				fmt.Fprintf(w, "; launch %s %s %s ($%.4f/h billed, $%.4f/h list, %d types)", it.Name, o.CapacityType, o.Zone, bill, o.Price, len(r.InstanceTypes))
			}
		}
		fmt.Fprintf(w, "; move %d pods; save $%.4f/h\n", len(c.Pods), c.Saving)
	}
	skips := map[disruption.SkipReason][]string{}
	for _, s := range d.Skipped {
		skips[s.Reason] = append(skips[s.Reason], s.Node)
	}
	for _, r := range slices.Sorted(maps.Keys(skips)) {
		fmt.Fprintf(w, "  skipped (%s): %s\n", r, strings.Join(skips[r], ", "))
	}
	return nil
}

// readyLongAgo gives a node without a Ready condition one, an hour old:
// manifests rarely carry status conditions.
func readyLongAgo(n *corev1.Node, now time.Time) *corev1.Node {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return n
		}
	}
	out := n.DeepCopy()
	out.Status.Conditions = append(out.Status.Conditions, corev1.NodeCondition{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-time.Hour)),
	})
	return out
}
