// Command spot-deployment replays the classic Karpenter Spot walkthrough on
// fleetpack, entirely in memory: an in-memory Kubernetes cluster, the real
// AWS cloud provider talking to a fake EC2 built from the embedded us-east-1
// catalog, fleetpack's provisioner and interruption handler, and a virtual
// clock. No AWS account and no cluster are needed, and it finishes in
// seconds.
//
//	go run ./examples/spot-deployment       # the timeline
//	go run ./examples/spot-deployment -v    # plus fleetpack's own logs on stderr
//
// The story:
//
//  1. A "default" NodePool allows Spot and on-demand; a "batch" NodePool
//     allows Spot only.
//  2. Deployment inflate-spot (pause, 1 cpu, 256M, nodeSelector intent=apps
//     and karpenter.sh/capacity-type=spot) is scaled 0 -> 2: one Spot node
//     appears, listed as kubectl get node -L ... lists it.
//  3. A Spot interruption notice arrives for that node: it is cordoned, its
//     Spot pool is marked unavailable for 3 minutes, a replacement is launched
//     in another pool, the node is drained and removed.
//  4. A rebalance recommendation arrives for the replacement: a new node is
//     launched first and, once it is Ready, the at-risk node is drained.
//  5. Spot capacity runs out everywhere: a Deployment on the default NodePool
//     falls back to on-demand; one on the Spot-only NodePool stays pending
//     with the reason, until Spot capacity returns.
//  6. Spot returns: the on-demand fallback nodes go back to Spot
//     (consolidation replaces them when that saves).
//  7. inflate is scaled 3 -> 12 -> 4: the scale-in leaves half-empty nodes,
//     and consolidation, after consolidateAfter and its 15-second
//     validation, replaces or removes them; the bill before and after is
//     shown.
//  8. Everything is scaled to 0: each node is removed once it has been empty
//     for its NodePool's consolidateAfter.
//
// Timestamps are virtual (hh:mm:ss since the start). The summary shows what
// was launched and what it cost against the same nodes on-demand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fleetpack/fleetpack/cloudprovider/aws/fake"
	"github.com/fleetpack/fleetpack/offerings"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// nodePools are the walkthrough's NodePools.
const nodePools = `
apiVersion: fleetpack.dev/v1
kind: NodePool
metadata:
  name: default
spec:
  template:
    metadata:
      labels:
        intent: apps
    spec:
      requirements:
        - key: karpenter.sh/capacity-type
          operator: In
          values: ["spot", "on-demand"]
        - key: karpenter.k8s.aws/instance-category
          operator: In
          values: ["c", "m", "r"]
        - key: karpenter.k8s.aws/instance-generation
          operator: Gt
          values: ["4"]
  limits:
    cpu: "1000"
  disruption:
    consolidateAfter: 30s
---
apiVersion: fleetpack.dev/v1
kind: NodePool
metadata:
  name: batch
spec:
  template:
    metadata:
      labels:
        intent: batch
    spec:
      requirements:
        - key: karpenter.sh/capacity-type
          operator: In
          values: ["spot"]
        - key: karpenter.k8s.aws/instance-category
          operator: In
          values: ["c", "m", "r"]
  disruption:
    consolidateAfter: 30s
`

var appsSelector = map[string]string{"intent": "apps"}

// run plays the walkthrough, writing the timeline to stdout. It returns the
// process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("spot-deployment", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "print fleetpack's structured logs to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	logs := io.Discard
	if *verbose {
		logs = stderr
	}
	start := time.Now()
	if err := walkthrough(ctx, stdout, logs); err != nil {
		fmt.Fprintf(stderr, "spot-deployment: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "(simulated in %s of real time)\n", time.Since(start).Round(time.Millisecond))
	return 0
}

// walkthrough plays the story, writing the timeline to out and fleetpack's
// structured logs to logs.
func walkthrough(ctx context.Context, out, logs io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := newSim(ctx, out, logs)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "fleetpack Spot walkthrough: in-memory cluster, fake EC2 (us-east-1 catalog), virtual clock")

	s.step("1. NodePools")
	if err := s.applyNodePools(nodePools); err != nil {
		return err
	}

	s.step("2. Deployment inflate-spot scaled 0 -> 2")
	s.addDeployment("inflate-spot", "1", "256M", map[string]string{"intent": "apps", offerings.LabelCapacityType: offerings.CapacityTypeSpot})
	s.addDeployment("inflate", "1", "256M", appsSelector)
	s.addDeployment("batch-spot", "1", "256M", map[string]string{"intent": "batch"})
	if err := s.scale("inflate-spot", 2); err != nil {
		return err
	}
	if err := s.advanceUntil(3*time.Minute, "inflate-spot running", s.running("inflate-spot", 2)); err != nil {
		return err
	}
	s.kubectlGetNodes(appsSelector)
	if err := s.advance(30 * time.Second); err != nil {
		return err
	}

	if err := s.interruptions(); err != nil {
		return err
	}

	s.step("5. Spot capacity exhausted")
	s.ec2.DrainCapacityType(fake.Spot)
	s.logf("EC2: every Spot pool in us-east-1 is out of capacity")
	if err := s.scale("inflate", 3); err != nil {
		return err
	}
	if err := s.scale("batch-spot", 2); err != nil {
		return err
	}
	if err := s.advanceUntil(3*time.Minute, "inflate running on on-demand", s.running("inflate", 3)); err != nil {
		return err
	}
	s.kubectlGetNodes(appsSelector)
	// Spot stays unavailable for a while: the Spot-only pods keep waiting,
	// retried every 30 seconds.
	if err := s.advance(90 * time.Second); err != nil {
		return err
	}
	if n := len(s.stats.unschedulable); n > 0 {
		s.logf("%s still pending: the batch NodePool allows Spot only", plural(n, "batch-spot pod"))
	}

	s.step("6. Spot capacity returns")
	s.restoreSpot()
	s.logf("EC2: Spot capacity is back; the pools EC2 refused stay skipped until their 3-minute marks expire")
	if err := s.advanceUntil(6*time.Minute, "batch-spot running", s.running("batch-spot", 2)); err != nil {
		return err
	}
	s.kubectlGetNodes(map[string]string{"intent": "batch"})

	s.step("7. Scale-in leaves half-empty nodes; consolidation")
	if err := s.scale("inflate", 12); err != nil {
		return err
	}
	if err := s.advanceUntil(3*time.Minute, "inflate running", s.running("inflate", 12)); err != nil {
		return err
	}
	s.kubectlGetNodes(appsSelector)
	if err := s.scale("inflate", 4); err != nil {
		return err
	}
	before, removedBefore := s.bill(), s.stats.consolidated
	s.logf("after the scale-in: %d nodes, $%.4f/h", len(s.nodes), before)
	// consolidateAfter (30s), then the 15s validation, then the moves.
	if err := s.advance(5 * time.Minute); err != nil {
		return err
	}
	s.kubectlGetNodes(appsSelector)
	s.logf("consolidation: %d nodes removed, %d pods moved in all; bill $%.4f/h -> $%.4f/h", s.stats.consolidated-removedBefore, s.stats.consolidationEvicted, before, s.bill())

	s.step("8. Scale everything to 0")
	for _, name := range []string{"inflate-spot", "inflate", "batch-spot"} {
		if err := s.scale(name, 0); err != nil {
			return err
		}
	}
	if err := s.advanceUntil(2*time.Minute, "every node removed", func() bool { return len(s.nodes) == 0 }); err != nil {
		return err
	}
	s.kubectlGetNodes(appsSelector)
	s.summary()
	return nil
}

// running reports whether the deployment has want pods, all bound.
func (s *sim) running(name string, want int) func() bool {
	return func() bool {
		pods := s.deploymentPods(s.deployments[name])
		if len(pods) != want {
			return false
		}
		for _, p := range pods {
			if p.Spec.NodeName == "" {
				return false
			}
		}
		return true
	}
}

// restoreSpot refills every Spot pool.
func (s *sim) restoreSpot() {
	for _, it := range s.catalog {
		for _, o := range it.Offerings {
			if o.CapacityType == offerings.CapacityTypeSpot {
				s.ec2.SetCapacity(fake.Spot, it.Name, o.Zone, 1000)
			}
		}
	}
}

func (s *sim) summary() {
	st := s.stats
	s.step("Summary")
	var launched []string
	for _, ct := range []string{offerings.CapacityTypeSpot, offerings.CapacityTypeOnDemand} {
		launched = append(launched, fmt.Sprintf("%d %s", st.launched[ct], ct))
	}
	fmt.Fprintf(s.out, "virtual time:          %s\n", s.clk.Since(epoch).Round(time.Second))
	fmt.Fprintf(s.out, "nodes launched:        %s\n", strings.Join(launched, ", "))
	fmt.Fprintf(s.out, "nodes removed:         %d (none left running)\n", st.removed)
	fmt.Fprintf(s.out, "interruption notices:  %d handled\n", st.notices)
	fmt.Fprintf(s.out, "pods evicted:          %d (each re-created by its Deployment and running again; %d by consolidation)\n", st.podsEvicted, st.consolidationEvicted)
	fmt.Fprintf(s.out, "longest pod wait:      %s (pending until bound)\n", st.maxPending.Round(time.Second))
	fmt.Fprintf(s.out, "longest unavailability after a notice: %s (from a pod's eviction until its replacement runs)\n", st.maxUnavailable.Round(time.Second))
	fmt.Fprintf(s.out, "node time:             %.1f node-hours\n", st.nodeSeconds/3600)
	saving := 0.0
	if st.onDemandCost > 0 {
		saving = 100 * (1 - st.cost/st.onDemandCost)
	}
	fmt.Fprintf(s.out, "compute cost:          $%.4f billed, $%.4f list (the same nodes on-demand: $%.4f billed, %.0f%% saved)\n", st.cost, st.listCost, st.onDemandCost, saving)
	fmt.Fprintf(s.out, "EC2 instances live:    %d\n", len(s.ec2.LiveInstances()))
}
