package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
	"github.com/fleetpack/fleetpack/scheduling"
)

// dryRun prints the plan for the cluster's pending pods, then again after
// every change, until ctx is done (or after the first plan with once).
func dryRun(ctx context.Context, cluster provisioning.Cluster, pools []*provisioning.NodePool, catalog []*offerings.InstanceType, once bool, out io.Writer) error {
	changes := cluster.Changes(ctx)
	last := ""
	for {
		in, err := clusterInput(ctx, cluster, pools, catalog)
		if err != nil {
			return err
		}
		plan, err := scheduling.Solve(in)
		if err != nil {
			return fmt.Errorf("solving: %w", err)
		}
		text := formatPlan(plan)
		if text != last {
			fmt.Fprint(out, text)
			last = text
		}
		if once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changes:
		}
	}
}

// clusterInput reads the cluster and builds the solver's input with
// provisioning.SolverInput, as the Provisioner's pass does, so that the
// printed plan is the one Run would make.
func clusterInput(ctx context.Context, cluster provisioning.Cluster, pools []*provisioning.NodePool, catalog []*offerings.InstanceType) (scheduling.Input, error) {
	pods, err := cluster.ListPods(ctx)
	if err != nil {
		return scheduling.Input{}, err
	}
	nodes, err := cluster.ListNodes(ctx)
	if err != nil {
		return scheduling.Input{}, err
	}
	return provisioning.SolverInput(provisioning.ClusterState{Nodes: nodes, Pods: pods},
		provisioning.SolverInputOptions{NodePools: pools, Catalog: catalog})
}

// formatPlan renders a plan as the dry run prints it.
func formatPlan(plan *scheduling.Plan) string {
	// One CheapestBill per claim: the launch lines are written first and
	// the totals, summed meanwhile, head them.
	var lines strings.Builder
	var bill, list float64
	for _, c := range plan.NodeClaims {
		it, o, nodeBill, ok := c.CheapestBill()
		name := "-"
		if ok {
			name = it.Name
			bill, list = bill+nodeBill, list+o.Price // list: the billed offering's
		}
		fmt.Fprintf(&lines, "  launch nodepool=%s cheapest=%s %s %s $%.4f/h billed, $%.4f/h list (of %d types) pods=%s\n",
			c.Template.NodePool, name, o.CapacityType, o.Zone, nodeBill, o.Price, len(c.InstanceTypes), podNames(c.Pods))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "plan: %d new nodes ($%.4f/hour billed, $%.4f/hour list), %d pods onto existing nodes, %d unschedulable\n",
		len(plan.NodeClaims), bill, list, placedOnExisting(plan), len(plan.Unschedulable))
	b.WriteString(lines.String())
	for _, e := range plan.ExistingNodes {
		fmt.Fprintf(&b, "  existing node=%s pods=%s\n", e.Node.Name, podNames(e.Pods))
	}
	for _, u := range plan.Unschedulable {
		fmt.Fprintf(&b, "  unschedulable pod=%s/%s: %s\n", u.Pod.Namespace, u.Pod.Name, u.Reason)
	}
	return b.String()
}

func placedOnExisting(plan *scheduling.Plan) int {
	n := 0
	for _, e := range plan.ExistingNodes {
		n += len(e.Pods)
	}
	return n
}

func podNames(pods []*corev1.Pod) string {
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.Namespace + "/" + p.Name
	}
	return strings.Join(names, ",")
}
