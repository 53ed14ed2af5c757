package disruption

import (
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) // a Monday

// world is a small cluster for decisions: one NodePool "default" over the
// embedded catalog's amd64 types of the given families (all c, m and r
// families when none), on-demand only (allowSpot opens Spot), budget 100%.
type world struct {
	t       testing.TB
	catalog []*offerings.InstanceType
	in      Input
}

func newWorld(t testing.TB, families ...string) *world {
	catalog, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reqs, err := scheduling.NewRequirements(
		corev1.NodeSelectorRequirement{Key: offerings.LabelCapacityType, Operator: corev1.NodeSelectorOpIn, Values: []string{offerings.CapacityTypeOnDemand}},
		corev1.NodeSelectorRequirement{Key: offerings.LabelInstanceCategory, Operator: corev1.NodeSelectorOpIn, Values: []string{"c", "m", "r"}},
		corev1.NodeSelectorRequirement{Key: offerings.LabelArch, Operator: corev1.NodeSelectorOpIn, Values: []string{"amd64"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	var types []*offerings.InstanceType
	for _, it := range catalog {
		c, f := it.Labels[offerings.LabelInstanceCategory], it.Labels[offerings.LabelInstanceFamily]
		if (slices.Contains(families, f) || len(families) == 0 && (c == "c" || c == "m" || c == "r")) && it.Labels[offerings.LabelArch] == "amd64" {
			types = append(types, it)
		}
	}
	w := &world{t: t, catalog: types}
	w.in = Input{
		Now:       t0.Add(time.Hour),
		Templates: []*scheduling.NodeTemplate{{NodePool: "default", Requirements: reqs, InstanceTypes: types}},
		Pools:     []Pool{{Name: "default", ConsolidateAfter: time.Minute, Budgets: []Budget{{Nodes: "100%"}}}},
	}
	return w
}

// allowSpot lets the pool launch Spot as well as on-demand.
func (w *world) allowSpot() *world {
	reqs, err := scheduling.NewRequirements(corev1.NodeSelectorRequirement{Key: offerings.LabelCapacityType, Operator: corev1.NodeSelectorOpIn, Values: []string{offerings.CapacityTypeSpot, offerings.CapacityTypeOnDemand}})
	if err != nil {
		w.t.Fatal(err)
	}
	w.in.Templates[0].Requirements = reqs
	return w
}

func (w *world) instanceType(name string) *offerings.InstanceType {
	for _, it := range w.catalog {
		if it.Name == name {
			return it
		}
	}
	w.t.Fatalf("no instance type %s", name)
	return nil
}

// addNode adds a Ready managed node of the given type and capacity type in
// us-east-1a, priced as production prices it: the offering's bill under the
// pool's template (offerings.NodeBill), with pods of cpu/memory each.
func (w *world) addNode(name, typ, capacityType string, pods ...*corev1.Pod) *Node {
	it := w.instanceType(typ)
	zone := it.Offerings[0].Zone
	var requested int64
	for _, p := range pods {
		requested += podRequests(p)[0]
	}
	tmpl := w.in.Templates[0]
	price := -1.0
	for _, o := range it.Offerings {
		if o.CapacityType == capacityType && o.Zone == zone {
			price = offerings.NodeBill(it, o, tmpl.NodeCosts, tmpl.Burstable, requested)
		}
	}
	if price < 0 {
		w.t.Fatalf("%s has no %s offering in %s", typ, capacityType, zone)
	}
	labels := map[string]string{}
	for k, v := range it.Labels {
		labels[k] = v
	}
	labels[offerings.LabelInstanceType] = typ
	labels[offerings.LabelZone] = zone
	labels[offerings.LabelCapacityType] = capacityType
	labels[offerings.LabelNodePool] = "default"
	labels[offerings.LabelHostname] = name
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, CreationTimestamp: metav1.NewTime(t0)},
		Status: corev1.NodeStatus{
			Capacity: it.Capacity, Allocatable: it.Allocatable(),
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}},
		},
	}
	for _, p := range pods {
		p.Spec.NodeName = name
	}
	w.in.Nodes = append(w.in.Nodes, Node{Node: node, Pods: pods, Pool: "default", Managed: true, Price: price})
	return &w.in.Nodes[len(w.in.Nodes)-1]
}

var podSeq int

func pod(cpu, memory string) *corev1.Pod {
	podSeq++
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%04d", podSeq), Namespace: "default", Labels: map[string]string{"app": "web"}, CreationTimestamp: metav1.NewTime(t0)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory),
		}}}}},
	}
}

// heldPod is a pod whose do-not-disrupt annotation keeps its node.
func heldPod(cpu, memory string) *corev1.Pod {
	p := pod(cpu, memory)
	p.Annotations = map[string]string{AnnotationDoNotDisrupt: "true"}
	return p
}

func (w *world) decide() *Decision {
	w.t.Helper()
	d, err := Decide(w.in)
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

func skipped(d *Decision, node string) SkipReason {
	for _, s := range d.Skipped {
		if s.Node == node {
			return s.Reason
		}
	}
	return ""
}

func methods(d *Decision) []Method {
	var out []Method
	for _, c := range d.Commands {
		out = append(out, c.Method)
	}
	return out
}
