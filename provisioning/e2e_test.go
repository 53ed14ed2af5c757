package provisioning_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/cloudprovider/aws/fake"
	"github.com/fleetpack/fleetpack/internal/fixture"
	"github.com/fleetpack/fleetpack/internal/stack"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
)

// awsEnv is the in-memory cluster, the real AWS cloud provider and the fake
// EC2 behind it, on one fake clock.
type awsEnv struct {
	t   *testing.T
	ctx context.Context
	*stack.Stack
}

const spotPoolYAML = `
apiVersion: fleetpack.dev/v1
kind: NodePool
metadata:
  name: spot
spec:
  template:
    metadata:
      labels:
        intent: apps
    spec:
      requirements:
      - key: karpenter.sh/capacity-type
        operator: In
        values: ["spot"]
      - key: kubernetes.io/arch
        operator: In
        values: ["amd64"]
      - key: karpenter.k8s.aws/instance-category
        operator: In
        values: ["c", "m", "r"]
      - key: karpenter.k8s.aws/instance-generation
        operator: Gt
        values: ["4"]
      # As in Karpenter's workshop. With larges allowed, two c6a.large Spot
      # nodes are cheaper than one c6a.xlarge and fleetpack buys the two.
      - key: karpenter.k8s.aws/instance-size
        operator: NotIn
        values: ["nano", "micro", "small", "medium", "large"]
  limits:
    cpu: "1000"
  disruption:
    consolidateAfter: 30s
---
apiVersion: fleetpack.dev/v1
kind: NodePool
metadata:
  name: default
spec:
  template:
    spec:
      requirements:
      - key: kubernetes.io/arch
        operator: In
        values: ["amd64"]
      - key: karpenter.k8s.aws/instance-category
        operator: In
        values: ["c", "m", "r"]
  disruption:
    consolidateAfter: 30s
`

func newAWSEnv(t *testing.T, poolsYAML string) *awsEnv {
	t.Helper()
	return &awsEnv{t: t, ctx: t.Context(), Stack: stack.New(t, stack.Options{
		Pools: poolsYAML, ClusterName: "e2e",
		MemoryCluster: provisioning.MemoryClusterOptions{NodeReadyDelay: 40 * time.Second, RecreateControlledPods: true},
	})}
}

// scale creates n replicas of a deployment-like workload.
func (e *awsEnv) scale(name string, n int, cpu, mem string, selector map[string]string) {
	e.t.Helper()
	for i := range n {
		pod := fixture.Pod("default", name+"-"+string(rune('a'+i)), fixture.Labels(map[string]string{"app": name}),
			fixture.OwnedBy("ReplicaSet", name), fixture.NodeSelector(selector), fixture.Requests(cpu, mem))
		if err := e.Memory.CreatePod(e.ctx, pod); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *awsEnv) provision() *provisioning.Result {
	e.t.Helper()
	res, err := e.Provisioner.Provision(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// liveInstances counts fake EC2 instances that are not terminated.
func (e *awsEnv) liveInstances() int { return len(e.EC2.LiveInstances()) }

func TestE2ESpotWalkthroughOnFakeEC2(t *testing.T) {
	e := newAWSEnv(t, spotPoolYAML)
	e.scale("inflate-spot", 2, "1", "256M", map[string]string{"intent": "apps", offerings.LabelCapacityType: "spot"})
	res := e.provision()
	if len(res.Launched) != 1 || len(res.Unschedulable) != 0 {
		t.Fatalf("launched %d, unschedulable %v; want one node", len(res.Launched), res.Unschedulable)
	}
	node := res.Launched[0].Node
	// kubectl get node -L karpenter.sh/capacity-type -L node.kubernetes.io/instance-type
	//   -L karpenter.sh/nodepool -L topology.kubernetes.io/zone -L intent
	for _, k := range []string{offerings.LabelCapacityType, offerings.LabelInstanceType, offerings.LabelNodePool, offerings.LabelZone, "intent", offerings.LabelArch} {
		if node.Labels[k] == "" {
			t.Errorf("node lacks label %s: %v", k, node.Labels)
		}
	}
	if node.Labels[offerings.LabelCapacityType] != "spot" || node.Labels["intent"] != "apps" || node.Labels[offerings.LabelNodePool] != "spot" {
		t.Errorf("labels %v", node.Labels)
	}
	if e.liveInstances() != 1 {
		t.Fatalf("%d live instances, want 1", e.liveInstances())
	}
	e.FakeClock.Step(40 * time.Second)
	pods, _ := e.Memory.ListPods(e.ctx)
	for _, p := range pods {
		if p.Spec.NodeName != node.Name {
			t.Errorf("pod %s on %q, want %q", p.Name, p.Spec.NodeName, node.Name)
		}
	}
	// Scale to 0: the node is returned after consolidateAfter.
	for _, p := range pods {
		if err := e.Memory.DeletePodNoRecreate(e.ctx, p.Namespace, p.Name); err != nil {
			t.Fatal(err)
		}
	}
	if removed, _, err := e.Provisioner.RemoveEmptyNodes(e.ctx); err != nil || len(removed) != 0 {
		t.Fatalf("removed %v (%v) at once", removed, err)
	}
	e.FakeClock.Step(30 * time.Second)
	removed, _, err := e.Provisioner.RemoveEmptyNodes(e.ctx)
	if err != nil || len(removed) != 1 {
		t.Fatalf("removed %v (%v), want the node", removed, err)
	}
	if e.liveInstances() != 0 {
		t.Fatalf("%d live instances after removal", e.liveInstances())
	}
}

func TestE2ESpotICEFallsBackToOnDemandOnFakeEC2(t *testing.T) {
	flex := `
apiVersion: fleetpack.dev/v1
kind: NodePool
metadata:
  name: flex
spec:
  template:
    spec:
      requirements:
      - key: karpenter.sh/capacity-type
        operator: In
        values: ["spot", "on-demand"]
      - key: kubernetes.io/arch
        operator: In
        values: ["amd64"]
      - key: karpenter.k8s.aws/instance-category
        operator: In
        values: ["c", "m"]
`
	e := newAWSEnv(t, flex)
	e.EC2.DrainCapacityType(fake.Spot)
	e.scale("web", 3, "1", "1Gi", nil)
	res := e.provision()
	if len(res.Unschedulable) != 0 || res.Pods() != 3 {
		t.Fatalf("placed %d, unschedulable %v", res.Pods(), res.Unschedulable)
	}
	for _, l := range res.Launched {
		if ct := l.Node.Labels[offerings.LabelCapacityType]; ct != offerings.CapacityTypeOnDemand {
			t.Errorf("node %s capacity type %q, want on-demand", l.Node.Name, ct)
		}
	}
	if e.liveInstances() != len(res.Launched) {
		t.Errorf("%d live instances for %d nodes", e.liveInstances(), len(res.Launched))
	}
}

func TestE2ELimitsAndWeightsOnFakeEC2(t *testing.T) {
	pools := `
apiVersion: fleetpack.dev/v1
kind: NodePool
metadata:
  name: small-first
spec:
  weight: 80
  template:
    spec:
      requirements:
      - key: kubernetes.io/arch
        operator: In
        values: ["amd64"]
      - key: karpenter.k8s.aws/instance-category
        operator: In
        values: ["m"]
  limits:
    nodes: "1"
---
apiVersion: fleetpack.dev/v1
kind: NodePool
metadata:
  name: overflow
spec:
  weight: 10
  template:
    spec:
      requirements:
      - key: kubernetes.io/arch
        operator: In
        values: ["amd64"]
  limits:
    cpu: "4"
`
	e := newAWSEnv(t, pools)
	// Pods that each need a node of their own (anti-affinity would be more
	// natural; a big request does the same).
	e.scale("big", 4, "3", "4Gi", nil)
	res := e.provision()
	byPool := map[string]int{}
	for _, l := range res.Launched {
		byPool[l.NodePool]++
	}
	if byPool["small-first"] != 1 {
		t.Errorf("weight-80 pool launched %d nodes, want exactly its limit of 1", byPool["small-first"])
	}
	if byPool["overflow"] == 0 {
		t.Errorf("overflow pool launched nothing")
	}
	if res.Pods()+len(res.Unschedulable) != 4 {
		t.Errorf("placed %d + unschedulable %d != 4: a pod was lost", res.Pods(), len(res.Unschedulable))
	}
	if len(res.Unschedulable) == 0 {
		t.Errorf("limits let every pod through: %v", byPool)
	}
	var overflowCPU int64
	for _, l := range res.Launched {
		if l.NodePool == "overflow" {
			q := l.Node.Status.Capacity[corev1.ResourceCPU]
			overflowCPU += q.Value()
		}
	}
	if overflowCPU > 4 {
		t.Errorf("overflow pool launched %d cpus, limit 4", overflowCPU)
	}
}

func TestE2EFailedLaunchLeaksNothingOnFakeEC2(t *testing.T) {
	e := newAWSEnv(t, spotPoolYAML)
	e.EC2.FailNext(fake.OpCreateFleet, errors.New("injected: CreateFleet unavailable"))
	e.scale("web", 2, "1", "1Gi", nil)
	res := e.provision()
	if res.Pods()+len(res.Unschedulable) != 2 {
		t.Fatalf("placed %d + unschedulable %d != 2", res.Pods(), len(res.Unschedulable))
	}
	if e.liveInstances() != len(res.Launched) {
		t.Fatalf("%d live instances for %d launched nodes", e.liveInstances(), len(res.Launched))
	}
	if len(res.Unschedulable) > 0 {
		// The failure left the pods pending; the next pass places them.
		again := e.provision()
		if again.Pods() != len(res.Unschedulable) {
			t.Fatalf("retry placed %d of %d", again.Pods(), len(res.Unschedulable))
		}
	}
	pending, _ := e.Provisioner.PendingPods(e.ctx)
	if len(pending) != 0 {
		t.Fatalf("%d pods still pending", len(pending))
	}
	nodes, _ := e.Memory.ListNodes(e.ctx)
	if e.liveInstances() != len(nodes) {
		t.Fatalf("%d live instances but %d nodes", e.liveInstances(), len(nodes))
	}
}

// rejectingCluster fails node registration, as an API server outage would.
type rejectingCluster struct{ *provisioning.MemoryCluster }

func (rejectingCluster) CreateNode(context.Context, *corev1.Node) error {
	return errors.New("injected: apiserver unavailable")
}

func TestE2ERegistrationFailureTerminatesInstanceOnFakeEC2(t *testing.T) {
	e := newAWSEnv(t, spotPoolYAML)
	prov, err := provisioning.New(rejectingCluster{e.Memory}, e.Provider, e.Provisioner.NodePools(), provisioning.Options{Clock: e.FakeClock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.scale("web", 1, "1", "1Gi", nil)
	res, err := prov.Provision(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Launched) != 0 || len(res.Unschedulable) != 1 {
		t.Fatalf("launched %d, unschedulable %d", len(res.Launched), len(res.Unschedulable))
	}
	if len(e.EC2.Instances()) == 0 {
		t.Fatal("no instance was launched at all; the test proves nothing")
	}
	if e.liveInstances() != 0 {
		t.Fatalf("%d instances leaked", e.liveInstances())
	}
}
