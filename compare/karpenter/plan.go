package main

import (
	"fmt"
	"math"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

// A Node is one node of a plan, whichever scheduler made it: the instance
// types it may still be launched as, which zones and capacity types its
// requirements allow, and the pending pods placed on it.
type Node struct {
	Types []*offerings.InstanceType
	// Allows says whether the node's requirements allow a label value; it is
	// asked about the zone and capacity type of each offering.
	Allows func(key, value string) bool
	Pods   []*corev1.Pod
}

// A Plan is one scheduler's answer to a Workload, reduced to what both
// schedulers' answers have in common.
type Plan struct {
	Nodes []Node
	// Unschedulable are the pods the scheduler reported it could not place.
	Unschedulable []*corev1.Pod
}

// A PricedNode is a node at the offering it is billed as.
type PricedNode struct {
	Type     *offerings.InstanceType
	Offering offerings.Offering
	Bill     float64
}

// nodeBill is what AWS charges per hour for one node of type it bought as
// offering o, carrying requestedCPUMilli of cpu requests: offerings.NodeBill
// with the default per-node costs (a 20 GiB gp3 root volume, no public IPv4
// address, nothing else), and surplus credits for requested cpu
// above a burstable type's baseline (unlimited mode, EC2's default for
// T3/T3a/T4g). Both plans are priced so; fleetpack's Baseline policy keeps
// its burstable nodes at or below their baseline, so its own NodeClaim.Price
// agrees.
func nodeBill(it *offerings.InstanceType, o offerings.Offering, requestedCPUMilli int64) float64 {
	return offerings.NodeBill(it, o, offerings.NodeCosts{}, offerings.BurstableCredits, requestedCPUMilli)
}

// Price bills every node of p at the cheapest available offering of its
// remaining types that the node and the NodePool (pool) allow, with the
// daemonset pods ds running beside its pods. It fails if a node has no
// such offering.
func (p *Plan) Price(pool *scheduling.Requirements, ds []*corev1.Pod) ([]PricedNode, float64, error) {
	dsCPU, _ := requests(ds)
	priced := make([]PricedNode, len(p.Nodes))
	var total float64
	for i, n := range p.Nodes {
		cpu, _ := requests(n.Pods)
		best := PricedNode{Bill: math.Inf(1)}
		for _, it := range n.Types {
			if !typeAllowed(pool, it) {
				continue
			}
			for _, o := range it.Offerings {
				if !o.Available || !n.Allows(offerings.LabelZone, o.Zone) || !n.Allows(offerings.LabelCapacityType, o.CapacityType) ||
					!pool.Allows(offerings.LabelZone, o.Zone) || !pool.Allows(offerings.LabelCapacityType, o.CapacityType) {
					continue
				}
				if bill := nodeBill(it, o, cpu+dsCPU); bill < best.Bill {
					best = PricedNode{Type: it, Offering: o, Bill: bill}
				}
			}
		}
		if best.Type == nil {
			return nil, 0, fmt.Errorf("node %d (%d pods, %d types) has no offering its requirements and the NodePool allow", i, len(n.Pods), len(n.Types))
		}
		priced[i] = best
		total += best.Bill
	}
	return priced, total, nil
}

// typeAllowed reports whether the NodePool requirements pool allow the
// labels of it; zone and capacity type are offerings', checked apart.
func typeAllowed(pool *scheduling.Requirements, it *offerings.InstanceType) bool {
	for _, r := range pool.Items() {
		if r.Key == offerings.LabelZone || r.Key == offerings.LabelCapacityType {
			continue
		}
		v, ok := it.Labels[r.Key]
		if !r.Matches(v, ok) {
			return false
		}
	}
	return true
}

// Validate checks that p answers w honestly: every pod of w is placed
// exactly once or reported unschedulable, and each node's billed type
// holds its pods and the daemonsets (cpu, memory and pod count) and keeps
// the hostname anti-affinity of the pods on it.
func (p *Plan) Validate(w Workload, priced []PricedNode) error {
	want := make(map[string]bool, len(w.Pods))
	for _, pod := range w.Pods {
		want[key(pod)] = true
	}
	seen := make(map[string]bool, len(w.Pods))
	see := func(pod *corev1.Pod, where string) error {
		k := key(pod)
		if !want[k] {
			return fmt.Errorf("%s holds pod %s, which is not in the workload", where, k)
		}
		if seen[k] {
			return fmt.Errorf("pod %s is placed twice (again %s)", k, where)
		}
		seen[k] = true
		return nil
	}
	dsCPU, dsMem := requests(w.DaemonSetPods)
	for i, n := range p.Nodes {
		where := fmt.Sprintf("node %d", i)
		for _, pod := range n.Pods {
			if err := see(pod, where); err != nil {
				return err
			}
		}
		it := priced[i].Type
		alloc := it.Allocatable()
		cpu, mem := requests(n.Pods)
		if cpu+dsCPU > alloc.Cpu().MilliValue() || mem+dsMem > alloc.Memory().Value() || int64(len(n.Pods)+len(w.DaemonSetPods)) > alloc.Pods().Value() {
			return fmt.Errorf("%s: %d pods (%dm, %d bytes) and daemonsets do not fit its billed type %s (%v)", where, len(n.Pods), cpu, mem, it.Name, alloc)
		}
		if err := antiAffinityKept(n.Pods); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	for _, pod := range p.Unschedulable {
		if err := see(pod, "the unschedulable list"); err != nil {
			return err
		}
	}
	if len(seen) != len(want) {
		return fmt.Errorf("%d of %d pods are neither placed nor reported unschedulable", len(want)-len(seen), len(want))
	}
	return nil
}

// antiAffinityKept checks that no pod on a node with a required hostname
// anti-affinity term shares it with a pod that term selects.
func antiAffinityKept(pods []*corev1.Pod) error {
	for _, p := range pods {
		if p.Spec.Affinity == nil || p.Spec.Affinity.PodAntiAffinity == nil {
			continue
		}
		for _, term := range p.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			if term.TopologyKey != offerings.LabelHostname {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
			if err != nil {
				return fmt.Errorf("pod %s: %w", key(p), err)
			}
			for _, q := range pods {
				if q != p && q.Namespace == p.Namespace && sel.Matches(labels.Set(q.Labels)) {
					return fmt.Errorf("pods %s and %s share a node against %s's hostname anti-affinity", key(p), key(q), key(p))
				}
			}
		}
	}
	return nil
}

// requests sums the cpu (millicores) and memory (bytes) that pods request.
func requests(pods []*corev1.Pod) (cpuMilli, memoryBytes int64) {
	for _, p := range pods {
		for _, c := range p.Spec.Containers {
			cpuMilli += c.Resources.Requests.Cpu().MilliValue()
			memoryBytes += c.Resources.Requests.Memory().Value()
		}
	}
	return cpuMilli, memoryBytes
}

func key(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }
