// Command plan is a what-if tool for fleetpack's solver: it reads Kubernetes
// manifests and prints the nodes fleetpack would launch for them, without a
// cluster or an AWS account.
//
//	go run ./examples/plan -f examples/plan/scenario.yaml
//	go run ./examples/plan -f pools.yaml -f workloads.yaml -o json
//	go run ./examples/plan -f scenario.yaml -unavailable spot:m6g.large:us-east-1a,spot:*:us-east-1b
//	go run ./examples/plan -kubeconfig ~/.kube/config -f nodepools.yaml
//
// The files are multi-document YAML holding:
//
//   - NodePool (fleetpack.dev/v1, or Karpenter's karpenter.sh/v1 as it is):
//     what may be launched; at least one.
//   - Pod, Deployment, StatefulSet (apps/v1): pending pods. Workloads are
//     expanded to spec.replicas pods named <name>-<index> carrying the pod
//     template's labels. A Pod with spec.nodeName runs on that Node.
//   - DaemonSet (apps/v1): its pod template is overhead on every new node it
//     fits.
//   - Node (v1): existing nodes; pending pods are placed on them first.
//
// With -kubeconfig, the pods, nodes and daemonsets come from a live cluster
// (read only: the tool lists them and writes nothing) and the files give the
// NodePools, plus any workloads to plan on top of the cluster's; Node
// documents are refused then. The input is built by
// provisioning.SolverInput, as the Provisioner's pass builds it, so pods
// nominated to a node, startup taints and daemonset affinity count as they
// do for a running fleetpack.
//
// Flags:
//
//	-f FILE          input file, repeatable (required)
//	-kubeconfig FILE read pods, nodes and daemonsets from this cluster
//	-catalog FILE    instance-type catalog JSON (offerings.CatalogFile); default
//	                 the embedded us-east-1 catalog
//	-unavailable L   comma-separated capacityType:instanceType:zone offerings to
//	                 treat as unavailable ("*" matches any type or zone)
//	-o text|json     output format; json is the contract in docs/plan-json.md
//	-consolidate     also print what consolidation would do to the Nodes
//	                 (text output only): every node of a known NodePool is
//	                 taken as fleetpack's, and a node without a Ready
//	                 condition as Ready since long ago
//
// One plan takes at most 100,000 pods (pending and bound, over all files);
// more, or a workload with more replicas, is an error naming the document.
//
// Invalid input exits with status 1 and a message naming the file, the
// document, the object and the field; nothing else is printed.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
	"github.com/fleetpack/fleetpack/scheduling"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// fileList is a repeatable -f flag.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

// run is the whole tool: it parses args, reads the files, solves and writes
// the plan to stdout. Errors go to stderr and make it return non-zero; the
// plan is written only when everything succeeded.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files fileList
	fs.Var(&files, "f", "input YAML file (repeatable)")
	catalogPath := fs.String("catalog", "", "instance-type catalog JSON (default: the embedded us-east-1 catalog)")
	unavailable := fs.String("unavailable", "", "comma-separated capacityType:instanceType:zone offerings to treat as unavailable (* matches any type or zone)")
	output := fs.String("o", "text", "output format: text or json")
	consolidate := fs.Bool("consolidate", false, "also print what consolidation would do to the nodes (text output only)")
	kubeconfig := fs.String("kubeconfig", "", "read pods, nodes and daemonsets from this cluster; the files give NodePools and extra workloads")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "plan: %v\n", err)
		return 1
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q (input files go after -f)", fs.Arg(0)))
	}
	if len(files) == 0 {
		return fail(errors.New("no input: give at least one -f FILE"))
	}
	if *output != "text" && *output != "json" {
		return fail(fmt.Errorf("-o: must be text or json, got %q", *output))
	}
	if *consolidate && *output != "text" {
		return fail(errors.New("-consolidate: works with -o text only"))
	}
	sc, err := loadFiles(files)
	if err != nil {
		return fail(err)
	}
	if *kubeconfig != "" {
		if err := addCluster(ctx, sc, *kubeconfig); err != nil {
			return fail(err)
		}
	}
	catalog, err := loadCatalog(*catalogPath)
	if err != nil {
		return fail(err)
	}
	catalog, err = markUnavailable(catalog, *unavailable)
	if err != nil {
		return fail(err)
	}
	in, err := buildInput(sc, catalog)
	if err != nil {
		return fail(err)
	}
	plan, err := scheduling.Solve(in)
	if err != nil {
		return fail(fmt.Errorf("solving: %w", err))
	}
	report := newReport(plan, in)
	var buf bytes.Buffer
	if *output == "json" {
		err = report.writeJSON(&buf)
	} else {
		err = report.writeText(&buf)
	}
	if err != nil {
		return fail(err)
	}
	if *consolidate {
		if err := writeConsolidation(&buf, sc, in, catalog); err != nil {
			return fail(err)
		}
	}
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return fail(err)
	}
	return 0
}

func loadCatalog(path string) ([]*offerings.InstanceType, error) {
	if path == "" {
		return offerings.DefaultCatalog(offerings.CatalogOptions{})
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-catalog: %w", err)
	}
	defer f.Close()
	types, err := offerings.LoadCatalog(f, offerings.CatalogOptions{})
	if err != nil {
		return nil, fmt.Errorf("-catalog %s: %w", path, err)
	}
	return types, nil
}

// markUnavailable returns the catalog with the listed offerings unavailable.
// Entries are capacityType:instanceType:zone; "*" matches any type or zone.
// An entry that matches no offering is an error, so that a typo is not a
// silent no-op.
func markUnavailable(types []*offerings.InstanceType, list string) ([]*offerings.InstanceType, error) {
	if strings.TrimSpace(list) == "" {
		return types, nil
	}
	out := slices.Clone(types)
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		parts := strings.Split(entry, ":")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return nil, fmt.Errorf("-unavailable: entry %q: must be capacityType:instanceType:zone", entry)
		}
		ct, typ, zone := parts[0], parts[1], parts[2]
		if ct != offerings.CapacityTypeSpot && ct != offerings.CapacityTypeOnDemand {
			return nil, fmt.Errorf("-unavailable: entry %q: capacity type must be %q or %q, got %q", entry, offerings.CapacityTypeSpot, offerings.CapacityTypeOnDemand, ct)
		}
		matched := false
		for i, it := range out {
			if typ != "*" && it.Name != typ {
				continue
			}
			for j, o := range it.Offerings {
				if o.CapacityType != ct || (zone != "*" && o.Zone != zone) {
					continue
				}
				matched = true
				if !o.Available {
					continue
				}
				if out[i] == types[i] {
					c := *it
					c.Offerings = slices.Clone(it.Offerings)
					out[i] = &c
				}
				out[i].Offerings[j].Available = false
			}
		}
		if !matched {
			return nil, fmt.Errorf("-unavailable: entry %q matches no offering in the catalog", entry)
		}
	}
	return out, nil
}

// buildInput turns the scenario into the solver's input with
// provisioning.SolverInput: one template per NodePool, with limits reduced
// by what the pool's existing nodes hold.
func buildInput(sc *scenario, catalog []*offerings.InstanceType) (scheduling.Input, error) {
	pods := slices.Clone(sc.pending)
	for _, node := range sc.nodes {
		pods = append(pods, sc.bound[node.Name]...)
	}
	return provisioning.SolverInput(
		provisioning.ClusterState{Nodes: sc.nodes, Pods: pods, DaemonSets: sc.daemonSets},
		provisioning.SolverInputOptions{NodePools: sc.pools, Catalog: catalog})
}
