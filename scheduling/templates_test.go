package scheduling

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
)

// AdmittedTypes is the solver's own type rule, written once: a template
// built from AdmittedTypes and one built from the whole catalog solve alike,
// and the folded requirements pin the template's labels and NodePool.
func TestAdmittedTypesAreTheSolversRule(t *testing.T) {
	catalog := testCatalog()
	// m5.odonly has on-demand offerings only, and every offering of
	// m5.large is unavailable now: an offering outside the allowed capacity
	// types does not admit a type, an unavailable one inside them does.
	catalog = append(catalog, makeType(typeSpec{name: "m5.odonly", cpu: "4", memory: "16Gi", price: 0.1, noSpot: true, overhead: true}))
	for i := range catalog[0].Offerings {
		catalog[0].Offerings[i].Available = false
	}
	tmpl := &NodeTemplate{
		NodePool: "spot-amd",
		Requirements: mustRequirements(
			req(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, offerings.CapacityTypeSpot),
			req(offerings.LabelArch, corev1.NodeSelectorOpIn, "amd64"),
			req(offerings.LabelInstanceGPUCount, corev1.NodeSelectorOpDoesNotExist),
		),
		Labels: map[string]string{"team": "a"},
	}
	admitted := tmpl.AdmittedTypes(catalog)
	want := []string{"m5.large", "m5.xlarge", "m5.2xlarge", "m5.4xlarge", "m5.8xlarge", "c5.large", "c5.xlarge", "c5.2xlarge", "c5.4xlarge", "c5.8xlarge"}
	if got := typeNames(admitted); !slices.Equal(got, want) {
		t.Fatalf("AdmittedTypes = %v, want %v (amd64, Spot, no GPU; m5.large kept though unavailable now)", got, want)
	}

	folded := tmpl.NodeRequirements()
	if !folded.Allows("team", "a") || folded.Allows("team", "b") || !folded.Allows(offerings.LabelNodePool, "spot-amd") || folded.Allows(offerings.LabelNodePool, "x") {
		t.Errorf("NodeRequirements = %s: want team=a and the NodePool's name pinned", folded.String())
	}

	var pods []*corev1.Pod
	for i, cpu := range []string{"250m", "1", "3", "6", "500m", "2", "12"} {
		pods = append(pods, makePod("p"+string(rune('a'+i)), cpu, "1Gi"))
	}
	pods = append(pods, makePod("needs-team-b", "1", "1Gi", withNodeSelector("team", "b")), makePod("needs-arm", "1", "1Gi", withNodeSelector(offerings.LabelArch, "arm64")))
	solveWith := func(types []*offerings.InstanceType) *Plan {
		t.Helper()
		c := *tmpl
		c.InstanceTypes = types
		in := Input{Pods: pods, Templates: []*NodeTemplate{&c}}
		plan, err := Solve(in)
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, in, plan)
		return plan
	}
	whole, narrowed := solveWith(catalog), solveWith(admitted)
	if got, want := summarizePlan(narrowed, 0), summarizePlan(whole, 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("a template of AdmittedTypes plans differently from the whole catalog:\n%s\nwant:\n%s", mustYAML(got), mustYAML(want))
	}
	if len(whole.Unschedulable) != 2 {
		t.Errorf("unschedulable = %v, want the team-b and arm64 pods", whole.Unschedulable)
	}
	for _, c := range whole.NodeClaims {
		for _, it := range c.InstanceTypes {
			if !slices.Contains(want, it.Name) || it.Name == "m5.large" {
				t.Errorf("claim %s lists %s, which the template does not admit or which is unavailable", c.Hostname, it.Name)
			}
		}
	}
}

// A compiled Catalog changes how long a solve takes, never its plan: one
// that holds every type is used, one that lacks a type is passed over, and
// a nil type is an error naming it.
func TestCatalogSolvesAsWithout(t *testing.T) {
	catalog := testCatalog()
	var pods []*corev1.Pod
	for i, cpu := range []string{"250m", "1", "3", "6", "500m", "2", "12", "1500m"} {
		pods = append(pods, makePod("p"+string(rune('a'+i)), cpu, "3Gi", withRequest(offerings.ResourceNvidiaGPU, map[bool]string{true: "1", false: "0"}[i == 3])))
	}
	spot := defaultTemplate(catalog)
	spot.NodePool = "spot"
	in := Input{Pods: pods, Templates: []*NodeTemplate{defaultTemplate(catalog[:8]), spot}, DaemonSetPods: []*corev1.Pod{makePod("ds", "100m", "128Mi")}}
	want, err := Solve(in)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, in, want)

	full, err := NewCatalog(slices.Concat(catalog, catalog))
	if err != nil {
		t.Fatal(err)
	}
	partial, err := NewCatalog(catalog[1:])
	if err != nil {
		t.Fatal(err)
	}
	for name, cat := range map[string]*Catalog{"full": full, "lacking a type": partial} {
		with := in
		with.Catalog = cat
		got, err := Solve(with)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := summarizePlan(got, 0), summarizePlan(want, 0); !reflect.DeepEqual(a, b) {
			t.Errorf("catalog %s: plan differs:\n%s\nwant:\n%s", name, mustYAML(a), mustYAML(b))
		}
	}
	if _, ok := full.compiledTypes(in.Templates); !ok {
		t.Error("the full catalog does not hold the templates' types")
	}
	if _, ok := partial.compiledTypes(in.Templates); ok {
		t.Error("a catalog without m5.large claims to hold every type")
	}
	if _, err := NewCatalog([]*offerings.InstanceType{catalog[0], nil}); err == nil || !strings.Contains(err.Error(), "instanceTypes[1]") {
		t.Errorf("NewCatalog with a nil type: err = %v, want one naming instanceTypes[1]", err)
	}
}
