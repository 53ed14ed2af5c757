package scheduling

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/fleetpack/fleetpack/offerings"
)

var update = flag.Bool("update", false, "rewrite the golden plans in testdata/golden from the solver's output")

// scenario is one data-driven test problem, read from
// testdata/scenarios/*.yaml. Instance types are named from testCatalog.
type scenario struct {
	Description      string `json:"description"`
	MaxInstanceTypes int    `json:"maxInstanceTypes,omitempty"`
	// Unavailable marks offerings "type/zone/capacity-type" unavailable.
	Unavailable []string           `json:"unavailable,omitempty"`
	Templates   []scenarioTemplate `json:"templates"`
	Nodes       []scenarioNode     `json:"nodes,omitempty"`
	DaemonSets  []corev1.Pod       `json:"daemonSets,omitempty"`
	// Namespaces give namespaceSelectors the labels to match.
	Namespaces []corev1.Namespace `json:"namespaces,omitempty"`
	// Pods are pending pods; the annotation replicasAnnotation: "N" stands
	// for N copies named <name>-0 ... <name>-(N-1).
	Pods []corev1.Pod `json:"pods"`
}

const replicasAnnotation = "test.fleetpack.io/replicas"

type scenarioTemplate struct {
	NodePool      string                           `json:"nodePool"`
	Weight        int32                            `json:"weight,omitempty"`
	Requirements  []corev1.NodeSelectorRequirement `json:"requirements,omitempty"`
	Labels        map[string]string                `json:"labels,omitempty"`
	Taints        []corev1.Taint                   `json:"taints,omitempty"`
	StartupTaints []corev1.Taint                   `json:"startupTaints,omitempty"`
	Limits        corev1.ResourceList              `json:"limits,omitempty"`
	InstanceTypes []string                         `json:"instanceTypes,omitempty"` // empty: the whole test catalog
}

type scenarioNode struct {
	Node corev1.Node  `json:"node"`
	Pods []corev1.Pod `json:"pods,omitempty"`
}

// input turns the scenario into a solver Input.
func (sc *scenario) input() (Input, error) {
	catalog := testCatalog()
	for _, u := range sc.Unavailable {
		parts := strings.Split(u, "/")
		if len(parts) != 3 {
			return Input{}, fmt.Errorf("unavailable %q: want type/zone/capacity-type", u)
		}
		found := false
		for _, it := range catalog {
			for i := range it.Offerings {
				if o := &it.Offerings[i]; it.Name == parts[0] && o.Zone == parts[1] && o.CapacityType == parts[2] {
					o.Available, found = false, true
				}
			}
		}
		if !found {
			return Input{}, fmt.Errorf("unavailable %q: no such offering", u)
		}
	}
	in := Input{MaxInstanceTypes: sc.MaxInstanceTypes}
	for i, st := range sc.Templates {
		reqs, err := NewRequirements(st.Requirements...)
		if err != nil {
			return Input{}, fmt.Errorf("templates[%d].requirements%w", i, err)
		}
		t := &NodeTemplate{NodePool: st.NodePool, Weight: st.Weight, Requirements: reqs, Labels: st.Labels,
			Taints: st.Taints, StartupTaints: st.StartupTaints, Limits: st.Limits, InstanceTypes: catalog}
		if len(st.InstanceTypes) > 0 {
			t.InstanceTypes = nil
			for _, name := range st.InstanceTypes {
				idx := slices.IndexFunc(catalog, func(it *offerings.InstanceType) bool { return it.Name == name })
				if idx < 0 {
					return Input{}, fmt.Errorf("templates[%d].instanceTypes: %q is not in the test catalog", i, name)
				}
				t.InstanceTypes = append(t.InstanceTypes, catalog[idx])
			}
		}
		in.Templates = append(in.Templates, t)
	}
	for i := range sc.Nodes {
		n := ExistingNode{Node: &sc.Nodes[i].Node}
		for j := range sc.Nodes[i].Pods {
			n.Pods = append(n.Pods, &sc.Nodes[i].Pods[j])
		}
		in.Nodes = append(in.Nodes, n)
	}
	for i := range sc.Namespaces {
		in.Namespaces = append(in.Namespaces, &sc.Namespaces[i])
	}
	for i := range sc.DaemonSets {
		in.DaemonSetPods = append(in.DaemonSetPods, &sc.DaemonSets[i])
	}
	for i := range sc.Pods {
		p := &sc.Pods[i]
		if p.Namespace == "" {
			p.Namespace = "default"
		}
		r, ok := p.Annotations[replicasAnnotation]
		if !ok {
			in.Pods = append(in.Pods, p)
			continue
		}
		n, err := strconv.Atoi(r)
		if err != nil || n < 1 {
			return Input{}, fmt.Errorf("pods[%d] (%s): annotation %s: want a positive integer, got %q", i, p.Name, replicasAnnotation, r)
		}
		for j := range n {
			c := p.DeepCopy()
			c.Name = fmt.Sprintf("%s-%d", p.Name, j)
			in.Pods = append(in.Pods, c)
		}
	}
	return in, nil
}

// planSummary is a readable, comparable rendering of a Plan.
type planSummary struct {
	Claims []claimSummary `json:"claims,omitempty"`
	// Placements maps existing node names to the pods placed there.
	Placements map[string][]string `json:"placements,omitempty"`
	// Unschedulable holds each PodError's message, sorted.
	Unschedulable []string `json:"unschedulable,omitempty"`
}

type claimSummary struct {
	NodePool string   `json:"nodePool"`
	Pods     []string `json:"pods"`
	// InstanceTypes are the first few types, cheapest first, and
	// InstanceTypeCount how many the claim lists in all.
	InstanceTypes     []string `json:"instanceTypes"`
	InstanceTypeCount int      `json:"instanceTypeCount"`
	// Zones and CapacityTypes are those of the available offerings the
	// claim's requirements allow on its listed types.
	Zones         []string `json:"zones"`
	CapacityTypes []string `json:"capacityTypes"`
	// Cheapest is the cheapest offering: "type zone capacity-type $price".
	Cheapest string `json:"cheapest"`
	// Requests and DaemonSetRequests render PodRequests and
	// DaemonSetRequests: "cpu 1500m, memory 1Gi, pods 2".
	Requests          string `json:"requests"`
	DaemonSetRequests string `json:"daemonSetRequests,omitempty"`
}

// describeList renders a ResourceList in name order.
func describeList(list corev1.ResourceList) string {
	parts := make([]string, 0, len(list))
	for _, name := range sortedNames(list) {
		q := list[name]
		parts = append(parts, fmt.Sprintf("%s %s", name, q.String()))
	}
	return strings.Join(parts, ", ")
}

// summarizePlan renders plan, listing at most firstTypes instance types per
// claim (all when firstTypes is 0).
func summarizePlan(plan *Plan, firstTypes int) planSummary {
	var s planSummary
	for _, c := range plan.NodeClaims {
		cs := claimSummary{NodePool: c.Template.NodePool, Pods: podNames(c.Pods), InstanceTypes: typeNames(c.InstanceTypes), InstanceTypeCount: len(c.InstanceTypes),
			Requests: describeList(c.PodRequests), DaemonSetRequests: describeList(c.DaemonSetRequests)}
		if firstTypes > 0 && len(cs.InstanceTypes) > firstTypes {
			cs.InstanceTypes = cs.InstanceTypes[:firstTypes]
		}
		for _, it := range c.InstanceTypes {
			for _, o := range c.Offerings(it) {
				if !slices.Contains(cs.Zones, o.Zone) {
					cs.Zones = append(cs.Zones, o.Zone)
				}
				if !slices.Contains(cs.CapacityTypes, o.CapacityType) {
					cs.CapacityTypes = append(cs.CapacityTypes, o.CapacityType)
				}
			}
		}
		slices.Sort(cs.Zones)
		slices.Sort(cs.CapacityTypes)
		if it, o, ok := c.CheapestOffering(); ok {
			cs.Cheapest = fmt.Sprintf("%s %s %s $%.4f", it.Name, o.Zone, o.CapacityType, o.Price)
		}
		s.Claims = append(s.Claims, cs)
	}
	for _, np := range plan.ExistingNodes {
		if s.Placements == nil {
			s.Placements = map[string][]string{}
		}
		s.Placements[np.Node.Name] = podNames(np.Pods)
	}
	for _, e := range plan.Unschedulable {
		s.Unschedulable = append(s.Unschedulable, e.Error())
	}
	slices.Sort(s.Unschedulable)
	return s
}

func mustYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestScenarios solves every testdata/scenarios/*.yaml problem, checks the
// plan's invariants, and compares it with testdata/golden/<name>.yaml.
// Run with -update to rewrite the goldens, then review the diff.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata/scenarios")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var sc scenario
			if err := yaml.UnmarshalStrict(data, &sc); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			in, err := sc.input()
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			plan, err := Solve(in)
			if err != nil {
				t.Fatalf("Solve: %v", err)
			}
			checkPlan(t, in, plan)
			got := "# Golden plan for " + file + ": " + sc.Description + "\n" +
				"# Regenerate with: go test ./scheduling -run TestScenarios -update\n" +
				mustYAML(summarizePlan(plan, 5))
			golden := filepath.Join("testdata", "golden", name+".yaml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("plan differs from %s (run with -update to accept):\n--- want\n%s\n--- got\n%s", golden, want, got)
			}
		})
	}
}
