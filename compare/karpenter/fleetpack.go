package main

import (
	"fmt"

	"github.com/fleetpack/fleetpack/scheduling"
)

// fleetpackSolver solves a Workload with fleetpack's scheduling.Solve. Its
// input is built once and reused by every solve, with the workload's
// instance types compiled into a scheduling.Catalog: the counterpart of
// Karpenter's cloudprovider.InstanceType objects, which are built once
// outside its timing too. Everything that depends on the pods, the
// NodePool or the daemonsets (the template's type filter, daemonset
// overhead, the dual prices) is still worked out inside each solve, as
// Karpenter's NewScheduler does inside its.
type fleetpackSolver struct {
	input scheduling.Input
}

func newFleetpackSolver(w Workload, pool scheduling.Requirements) (*fleetpackSolver, error) {
	catalog, err := scheduling.NewCatalog(w.InstanceTypes)
	if err != nil {
		return nil, fmt.Errorf("compiling the instance types: %w", err)
	}
	return &fleetpackSolver{input: scheduling.Input{
		Pods:          w.Pods,
		DaemonSetPods: w.DaemonSetPods,
		Templates:     []*scheduling.NodeTemplate{{NodePool: "default", Requirements: pool, InstanceTypes: w.InstanceTypes}},
		Catalog:       catalog,
	}}, nil
}

// solve runs scheduling.Solve once: the part that is timed.
func (f *fleetpackSolver) solve() (*scheduling.Plan, error) {
	return scheduling.Solve(f.input)
}

// fleetpackPlan reduces fleetpack's plan to a Plan.
func fleetpackPlan(p *scheduling.Plan) (*Plan, error) {
	if len(p.ExistingNodes) > 0 {
		return nil, fmt.Errorf("fleetpack placed pods on %d existing nodes, and the workload has none", len(p.ExistingNodes))
	}
	out := &Plan{Nodes: make([]Node, len(p.NodeClaims))}
	for i, c := range p.NodeClaims {
		out.Nodes[i] = Node{Types: c.InstanceTypes, Allows: c.Requirements.Allows, Pods: c.Pods}
	}
	for _, e := range p.Unschedulable {
		out.Unschedulable = append(out.Unschedulable, e.Pod)
	}
	return out, nil
}
