// Command plan is a what-if tool for fleetpack's solver: it reads Kubernetes
// manifests and prints the nodes fleetpack would launch for them, without a
// cluster or an AWS account.
//
//	go run ./examples/plan -f examples/plan/scenario.yaml
//	go run ./examples/plan -f pools.yaml -f workloads.yaml -o json
//	go run ./examples/plan -f scenario.yaml -unavailable spot:m6g.large:us-east-1a,spot:*:us-east-1b
//
// The files are multi-document YAML holding:
//
//   - NodePool (fleetpack.dev/v1): what may be launched; at least one.
//   - Pod, Deployment, StatefulSet (apps/v1): pending pods. Workloads are
//     expanded to spec.replicas pods named <name>-<index> carrying the pod
//     template's labels. A Pod with spec.nodeName runs on that Node.
//   - DaemonSet (apps/v1): its pod template is overhead on every new node it
//     fits.
//   - Node (v1): existing nodes; pending pods are placed on them first.
//
// Flags:
//
//	-f FILE          input file, repeatable (required)
//	-catalog FILE    instance-type catalog JSON (offerings.CatalogFile); default
//	                 the embedded us-east-1 catalog
//	-unavailable L   comma-separated capacityType:instanceType:zone offerings to
//	                 treat as unavailable ("*" matches any type or zone)
//	-o text|json     output format; json is the contract in docs/plan-json.md
//
// One plan takes at most 100,000 pods (pending and bound, over all files);
// more, or a workload with more replicas, is an error naming the document.
//
// Invalid input exits with status 1 and a message naming the file, the
// document, the object and the field; nothing else is printed.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
	"github.com/fleetpack/fleetpack/scheduling"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// fileList is a repeatable -f flag.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

// run is the whole tool: it parses args, reads the files, solves and writes
// the plan to stdout. Errors go to stderr and make it return non-zero; the
// plan is written only when everything succeeded.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files fileList
	fs.Var(&files, "f", "input YAML file (repeatable)")
	catalogPath := fs.String("catalog", "", "instance-type catalog JSON (default: the embedded us-east-1 catalog)")
	unavailable := fs.String("unavailable", "", "comma-separated capacityType:instanceType:zone offerings to treat as unavailable (* matches any type or zone)")
	output := fs.String("o", "text", "output format: text or json")
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
	sc, err := loadFiles(files)
	if err != nil {
		return fail(err)
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

// buildInput turns the scenario into the solver's input: one template per
// NodePool, with limits reduced by what the pool's existing nodes hold.
func buildInput(sc *scenario, catalog []*offerings.InstanceType) (scheduling.Input, error) {
	in := scheduling.Input{Pods: sc.pending, DaemonSetPods: sc.daemonSets}
	used := map[string]corev1.ResourceList{}
	for _, node := range sc.nodes {
		provisioning.AddNodeUsage(used, node)
		in.Nodes = append(in.Nodes, scheduling.ExistingNode{Node: node, Pods: sc.bound[node.Name]})
	}
	for _, np := range sc.pools {
		t, err := np.Template(catalog, used[np.Name])
		if err != nil {
			return in, err
		}
		in.Templates = append(in.Templates, t)
	}
	return in, nil
}
