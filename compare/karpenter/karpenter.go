package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	fakeclient "sigs.k8s.io/controller-runtime/pkg/client/fake"

	karpv1 "sigs.k8s.io/karpenter/pkg/apis/v1"
	"sigs.k8s.io/karpenter/pkg/cloudprovider"
	"sigs.k8s.io/karpenter/pkg/cloudprovider/fake"
	karpscheduling "sigs.k8s.io/karpenter/pkg/controllers/provisioning/scheduling"
	"sigs.k8s.io/karpenter/pkg/controllers/state"
	"sigs.k8s.io/karpenter/pkg/events"
	"sigs.k8s.io/karpenter/pkg/operator/injection"
	"sigs.k8s.io/karpenter/pkg/operator/options"
	karpreq "sigs.k8s.io/karpenter/pkg/scheduling"

	"github.com/fleetpack/fleetpack/offerings"
)

// karpenterWorkers is the number of concurrent workers Karpenter's scheduler
// gets. One is its fastest setting on a 2-core machine.
const karpenterWorkers = 1

// karpenterSolver solves a Workload with Karpenter's provisioning
// scheduler. What a Karpenter controller keeps between provisioning passes
// is built once: the converted instance types, the NodePool, the fake cloud
// provider, the cluster state over a fake client, and the pods as objects
// with UIDs. Each solve builds the Topology and Scheduler for its pods and
// runs Solve, as every provisioning pass does.
type karpenterSolver struct {
	ctx           context.Context
	nodePool      *karpv1.NodePool
	instanceTypes map[string][]*cloudprovider.InstanceType
	kubeClient    client.Client
	cluster       *state.Cluster
	clock         clock.Clock
	pods          []*corev1.Pod
	daemonSetPods []*corev1.Pod
	// byUID maps the UIDs of Karpenter's pod objects (which it copies as it
	// schedules them) back to the workload's pods.
	byUID map[types.UID]*corev1.Pod
}

// karpenterOptions are Karpenter's operator options at their defaults, as
// its flags and environment give them.
func karpenterOptions() (*options.Options, error) {
	opts := &options.Options{}
	fs := &options.FlagSet{FlagSet: flag.NewFlagSet("karpenter", flag.ContinueOnError)}
	opts.AddFlags(fs)
	if err := opts.Parse(fs); err != nil {
		return nil, fmt.Errorf("karpenter options: %w", err)
	}
	return opts, nil
}

func newKarpenterSolver(ctx context.Context, w Workload) (*karpenterSolver, error) {
	opts, err := karpenterOptions()
	if err != nil {
		return nil, err
	}
	ctx = options.ToContext(injection.WithControllerName(ctx, "provisioner"), opts)
	pool := karpenterNodePool(w.Requirements)
	its := make([]*cloudprovider.InstanceType, len(w.InstanceTypes))
	for i, it := range w.InstanceTypes {
		its[i] = karpenterInstanceType(it)
	}
	cloud := fake.NewCloudProvider()
	cloud.InstanceTypes = its
	kubeClient := fakeclient.NewFakeClient()
	clk := clock.RealClock{}
	k := &karpenterSolver{
		ctx:           ctx,
		nodePool:      pool,
		instanceTypes: map[string][]*cloudprovider.InstanceType{pool.Name: its},
		kubeClient:    kubeClient,
		cluster:       state.NewCluster(clk, kubeClient, cloud),
		clock:         clk,
		byUID:         make(map[types.UID]*corev1.Pod, len(w.Pods)),
	}
	for _, p := range w.Pods {
		kp := karpenterPod(p)
		k.pods = append(k.pods, kp)
		k.byUID[kp.UID] = p
	}
	for _, p := range w.DaemonSetPods {
		k.daemonSetPods = append(k.daemonSetPods, karpenterPod(p))
	}
	return k, nil
}

// karpenterPod copies p with what Karpenter's scheduler keys its caches
// on: a UID, and the Pending phase of a pod waiting for a node.
func karpenterPod(p *corev1.Pod) *corev1.Pod {
	kp := p.DeepCopy()
	kp.UID = types.UID(p.Namespace + "/" + p.Name)
	kp.Status.Phase = corev1.PodPending
	return kp
}

// karpenterNodePool is the NodePool "default" with the workload's
// requirements and no effective limits.
func karpenterNodePool(reqs []corev1.NodeSelectorRequirement) *karpv1.NodePool {
	pool := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "default", UID: "default"}}
	pool.Spec.Template.Spec.NodeClassRef = &karpv1.NodeClassReference{Group: "karpenter.test.sh", Kind: "TestNodeClass", Name: "default"}
	pool.Spec.Template.Spec.Requirements = []karpv1.NodeSelectorRequirementWithMinValues{}
	for _, r := range reqs {
		pool.Spec.Template.Spec.Requirements = append(pool.Spec.Template.Spec.Requirements,
			karpv1.NodeSelectorRequirementWithMinValues{Key: r.Key, Operator: r.Operator, Values: r.Values})
	}
	return pool
}

// karpenterInstanceType converts a fleetpack instance type: the same
// capacity and allocatable (the overhead is the difference), every label as
// a single-valued requirement, and each offering with its zone, capacity
// type, price and availability.
func karpenterInstanceType(it *offerings.InstanceType) *cloudprovider.InstanceType {
	capacity := it.Capacity.DeepCopy()
	alloc := it.Allocatable()
	overhead := corev1.ResourceList{}
	for name, c := range capacity {
		o := c.DeepCopy()
		o.Sub(alloc[name])
		overhead[name] = o
	}
	reqs := karpreq.NewLabelRequirements(it.Labels)
	var zones, capacityTypes []string
	var offs cloudprovider.Offerings
	for _, o := range it.Offerings {
		offs = append(offs, &cloudprovider.Offering{
			Requirements: karpreq.NewLabelRequirements(map[string]string{offerings.LabelZone: o.Zone, offerings.LabelCapacityType: o.CapacityType}),
			Price:        o.Price,
			Available:    o.Available,
		})
		if o.Available {
			zones = append(zones, o.Zone)
			capacityTypes = append(capacityTypes, o.CapacityType)
		}
	}
	reqs.Add(karpreq.NewRequirement(offerings.LabelZone, corev1.NodeSelectorOpIn, zones...))
	reqs.Add(karpreq.NewRequirement(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, capacityTypes...))
	return &cloudprovider.InstanceType{
		Name:         it.Name,
		Requirements: reqs,
		Offerings:    offs,
		Capacity:     capacity,
		Overhead:     &cloudprovider.InstanceTypeOverhead{KubeReserved: overhead},
	}
}

// solve runs one provisioning pass's scheduling: NewTopology, NewScheduler
// and Solve, with karpenterWorkers workers. This is the part that is timed;
// setup is how long NewTopology and NewScheduler took.
func (k *karpenterSolver) solve() (results karpscheduling.Results, setup time.Duration, err error) {
	start := time.Now()
	pools := []*karpv1.NodePool{k.nodePool}
	workers := karpscheduling.NumConcurrentReconciles(karpenterWorkers)
	topology, err := karpscheduling.NewTopology(k.ctx, k.kubeClient, k.cluster, nil, pools, k.instanceTypes, k.pods, workers)
	if err != nil {
		return results, 0, fmt.Errorf("karpenter topology: %w", err)
	}
	s := karpscheduling.NewScheduler(k.ctx, k.kubeClient, pools, k.cluster, nil, topology, k.instanceTypes, k.daemonSetPods,
		events.NewRecorder(&record.FakeRecorder{}), k.clock, nil, nil, workers)
	setup = time.Since(start)
	results, err = s.Solve(k.ctx, k.pods)
	if err != nil {
		return results, setup, fmt.Errorf("karpenter solve: %w", err)
	}
	return results, setup, nil
}

// karpenterPlan reduces Karpenter's results to a Plan over the workload's
// own pods and instance types.
func (k *karpenterSolver) karpenterPlan(r karpscheduling.Results, types map[string]*offerings.InstanceType) (*Plan, error) {
	for _, e := range r.ExistingNodes {
		if len(e.Pods) > 0 {
			return nil, fmt.Errorf("karpenter placed pods on an existing node, and the workload has none")
		}
	}
	out := &Plan{Nodes: make([]Node, len(r.NewNodeClaims))}
	for i, nc := range r.NewNodeClaims {
		n := Node{Allows: func(key, value string) bool { return nc.Requirements.Get(key).Has(value) }}
		for _, it := range nc.InstanceTypeOptions {
			t, ok := types[it.Name]
			if !ok {
				return nil, fmt.Errorf("karpenter node %d lists instance type %s, which the workload does not have", i, it.Name)
			}
			n.Types = append(n.Types, t)
		}
		for _, p := range nc.Pods {
			orig, ok := k.byUID[p.UID]
			if !ok {
				return nil, fmt.Errorf("karpenter node %d holds pod %s/%s, which is not one it was given", i, p.Namespace, p.Name)
			}
			n.Pods = append(n.Pods, orig)
		}
		out.Nodes[i] = n
	}
	for p := range r.PodErrors {
		orig, ok := k.byUID[p.UID]
		if !ok {
			return nil, fmt.Errorf("karpenter reports pod %s/%s unschedulable, which is not one it was given", p.Namespace, p.Name)
		}
		out.Unschedulable = append(out.Unschedulable, orig)
	}
	return out, nil
}
