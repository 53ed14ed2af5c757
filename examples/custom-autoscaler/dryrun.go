package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

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

// clusterInput builds the solver's input from the cluster the way the
// provisioner does: pending pods, existing nodes with the pods bound to
// them, one daemonset pod per running daemonset, and a template per NodePool
// whose limits are reduced by the pool's nodes.
func clusterInput(ctx context.Context, cluster provisioning.Cluster, pools []*provisioning.NodePool, catalog []*offerings.InstanceType) (scheduling.Input, error) {
	var in scheduling.Input
	pods, err := cluster.ListPods(ctx)
	if err != nil {
		return in, err
	}
	nodes, err := cluster.ListNodes(ctx)
	if err != nil {
		return in, err
	}
	bound := map[string][]*corev1.Pod{}
	daemonSets := map[types.UID]*corev1.Pod{}
	for _, p := range pods {
		if provisioning.IsTerminal(p) || p.DeletionTimestamp != nil {
			continue
		}
		if provisioning.IsDaemonSetPod(p) {
			for _, ref := range p.OwnerReferences {
				if ref.Controller != nil && *ref.Controller && daemonSets[ref.UID] == nil {
					t := p.DeepCopy()
					t.Spec.NodeName = ""
					// The daemonset controller pins each pod to its node
					// with a matchFields term; a template for new nodes
					// must not carry it.
					t.Spec.Affinity = nil
					t.Status = corev1.PodStatus{}
					daemonSets[ref.UID] = t
				}
			}
		}
		switch {
		case p.Spec.NodeName != "":
			bound[p.Spec.NodeName] = append(bound[p.Spec.NodeName], p)
		case !provisioning.IsDaemonSetPod(p) && len(p.Spec.SchedulingGates) == 0:
			in.Pods = append(in.Pods, p)
		}
	}
	used := map[string]corev1.ResourceList{}
	for _, n := range nodes {
		if n.DeletionTimestamp != nil {
			continue
		}
		provisioning.AddNodeUsage(used, n)
		in.Nodes = append(in.Nodes, scheduling.ExistingNode{Node: n, Pods: bound[n.Name]})
	}
	for _, uid := range slices.Sorted(maps.Keys(daemonSets)) {
		in.DaemonSetPods = append(in.DaemonSetPods, daemonSets[uid])
	}
	for _, np := range pools {
		t, err := np.Template(catalog, used[np.Name])
		if err != nil {
			return in, err
		}
		in.Templates = append(in.Templates, t)
	}
	return in, nil
}

// formatPlan renders a plan as the dry run prints it.
func formatPlan(plan *scheduling.Plan) string {
	var b strings.Builder
	var bill, list float64
	for _, c := range plan.NodeClaims {
		bill += c.Price()
		list += c.ListPrice()
	}
	fmt.Fprintf(&b, "plan: %d new nodes ($%.4f/hour billed, $%.4f/hour list), %d pods onto existing nodes, %d unschedulable\n",
		len(plan.NodeClaims), bill, list, placedOnExisting(plan), len(plan.Unschedulable))
	for _, c := range plan.NodeClaims {
		it, o, nodeBill, _ := c.CheapestBill()
		name := "-"
		if it != nil {
			name = it.Name
		}
		fmt.Fprintf(&b, "  launch nodepool=%s cheapest=%s %s %s $%.4f/h billed, $%.4f/h list (of %d types) pods=%s\n",
			c.Template.NodePool, name, o.CapacityType, o.Zone, nodeBill, o.Price, len(c.InstanceTypes), podNames(c.Pods))
	}
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
