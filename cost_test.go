package fleetpack_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

// microservice is one service of microservicesWorkload: its cpu (millicores)
// and memory (MiB) requests.
type microservice struct {
	name     string
	cpu, mem int64
}

// microservices are eleven services of a common microservices demo shop,
// with small requests (50m to 300m, 64Mi to 256Mi).
var microservices = []microservice{
	{"frontend", 100, 64}, {"cart", 200, 64}, {"catalog", 100, 64}, {"currency", 100, 64},
	{"payment", 50, 64}, {"shipping", 100, 64}, {"email", 100, 64}, {"checkout", 100, 64},
	{"recommendation", 100, 220}, {"ads", 200, 180}, {"redis-cart", 70, 200},
	{"loadgenerator", 300, 256},
}

// microservicesWorkload returns replicas pods of each service but the load
// generator, which is not part of the shop: 440 pods at 40 replicas.
func microservicesWorkload(replicas int) []*corev1.Pod {
	var pods []*corev1.Pod
	for _, s := range microservices[:11] {
		for i := range replicas {
			pods = append(pods, benchPod(fmt.Sprintf("%s-%02d", s.name, i), s.name, s.cpu, s.mem))
		}
	}
	return pods
}

func benchPod(name, app string, cpuMilli, memMiB int64) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "bench", Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    *resource.NewMilliQuantity(cpuMilli, resource.DecimalSI),
				corev1.ResourceMemory: *resource.NewQuantity(memMiB<<20, resource.BinarySI),
			}},
		}}},
	}
}

// eksDaemonSets is a typical EKS node's daemonset set: VPC CNI, kube-proxy,
// EBS CSI node, a log agent and a node exporter.
func eksDaemonSets() []*corev1.Pod {
	return []*corev1.Pod{
		benchPod("aws-node", "aws-node", 25, 40),
		benchPod("kube-proxy", "kube-proxy", 100, 50),
		benchPod("ebs-csi-node", "ebs-csi-node", 30, 120),
		benchPod("log-agent", "log-agent", 100, 200),
		benchPod("node-exporter", "node-exporter", 50, 64),
	}
}

func onDemandTemplate(t testing.TB, types []*offerings.InstanceType) *scheduling.NodeTemplate {
	reqs, err := scheduling.NewRequirements(corev1.NodeSelectorRequirement{
		Key: offerings.LabelCapacityType, Operator: corev1.NodeSelectorOpIn, Values: []string{offerings.CapacityTypeOnDemand},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &scheduling.NodeTemplate{NodePool: "on-demand", Requirements: reqs, InstanceTypes: types}
}

// planBill sums the plan's claims' bills and list prices and counts its
// burstable nodes (by the type each claim is billed as).
func planBill(plan *scheduling.Plan) (bill, list float64, burstable int) {
	for _, c := range plan.NodeClaims {
		bill += c.Price()
		list += c.ListPrice()
		if it, _, _, ok := c.CheapestBill(); ok {
			if _, b := it.BurstableBaselineMilli(); b {
				burstable++
			}
		}
	}
	return bill, list, burstable
}

func TestMicroservicesOnDemand(t *testing.T) {
	types, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range []bool{false, true} {
		in := scheduling.Input{Pods: microservicesWorkload(40), Templates: []*scheduling.NodeTemplate{onDemandTemplate(t, types)}}
		if ds {
			in.DaemonSetPods = eksDaemonSets()
		}
		plan, err := scheduling.Solve(in)
		if err != nil {
			t.Fatal(err)
		}
		bill, list, burstable := planBill(plan)
		fleet, ok := scheduling.BestSingleTypeFleet(in)
		t.Logf("daemonsets=%v: %d nodes (%d burstable), bill $%.3f/h, list $%.3f/h; best single-type fleet %v %s x%d $%.3f/h", ds, len(plan.NodeClaims), burstable, bill, list, ok, fleet.InstanceType.Name, fleet.Nodes, fleet.Bill)
	}
}

func solveBill(t testing.TB, in scheduling.Input) (*scheduling.Plan, float64) {
	t.Helper()
	plan, err := scheduling.Solve(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Unschedulable) > 0 {
		t.Fatalf("%d pods unschedulable, first: %s", len(plan.Unschedulable), plan.Unschedulable[0].Error())
	}
	bill, _, _ := planBill(plan)
	return plan, bill
}

// seededWorkloads are the property tests' workloads: each shape of the
// benchmarks at a few sizes and seeds, and the microservices.
func seededWorkloads() map[string][]*corev1.Pod {
	out := map[string][]*corev1.Pod{"microservices-40": microservicesWorkload(40), "microservices-5": microservicesWorkload(5)}
	shapes := map[string]podShape{"independent": independentShape, "correlated": correlatedShape, "small": smallShape}
	for name, shape := range shapes {
		for _, n := range []int{10, 60, 300} {
			for _, seed := range []uint64{1, 2} {
				out[fmt.Sprintf("%s-%d-seed%d", name, n, seed)] = shapedWorkload(n, seed, shape)
			}
		}
	}
	return out
}

// TestPlansNoWorseThanOneType: no plan bills more than the best fleet of a
// single instance type packed first-fit-decreasing, on Spot-and-on-demand
// and on on-demand pools, with and without daemonsets.
func TestPlansNoWorseThanOneType(t *testing.T) {
	types, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, pods := range seededWorkloads() {
		for _, tmpl := range []*scheduling.NodeTemplate{defaultTemplate(t, types), onDemandTemplate(t, types)} {
			for _, ds := range [][]*corev1.Pod{nil, eksDaemonSets()} {
				in := scheduling.Input{Pods: pods, DaemonSetPods: ds, Templates: []*scheduling.NodeTemplate{tmpl}}
				_, bill := solveBill(t, in)
				fleet, ok := scheduling.BestSingleTypeFleet(in)
				if !ok {
					t.Fatalf("%s on %s: no single-type fleet", name, tmpl.NodePool)
				}
				if bill > fleet.Bill*(1+1e-9) {
					t.Errorf("%s on %s, %d daemonsets: plan bills $%.4f/h, more than %d x %s at $%.4f/h", name, tmpl.NodePool, len(ds), bill, fleet.Nodes, fleet.InstanceType.Name, fleet.Bill)
				}
			}
		}
	}
}
