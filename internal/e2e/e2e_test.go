package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/fleetpack/fleetpack/cloudprovider/aws"
	fleetdeploy "github.com/fleetpack/fleetpack/deploy"
	"github.com/fleetpack/fleetpack/internal/kubelet"
	"github.com/fleetpack/fleetpack/internal/stack"
	"github.com/fleetpack/fleetpack/internal/testcontrolplane"
	"github.com/fleetpack/fleetpack/interruption"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
	"github.com/fleetpack/fleetpack/provisioning/kubecluster"
)

var controlPlane testcontrolplane.Shared

func TestMain(m *testing.M) { os.Exit(controlPlane.Main(m)) }

// spotPool is a Spot pool of large amd64 nodes (three 500m pods each).
const spotPool = `
apiVersion: fleetpack.dev/v1
kind: NodePool
metadata: {name: %s}
spec:
  weight: %d
  template:
    spec:
      requirements:
      - {key: karpenter.sh/capacity-type, operator: In, values: [spot]}
      - {key: kubernetes.io/arch, operator: In, values: [amd64]}
      - {key: karpenter.k8s.aws/instance-category, operator: In, values: [c, m]}
      - {key: karpenter.k8s.aws/instance-size, operator: In, values: [large]}
  disruption: {consolidateAfter: 5s}
`

// pools are two such pools; spot-a is preferred, so deleting it moves the
// workload to spot-b.
var pools = fmt.Sprintf(spotPool, "spot-a", 50) + "---" + fmt.Sprintf(spotPool, "spot-b", 10)

const (
	replicas     = 6
	minAvailable = replicas - 1
)

// recordingCluster is the cluster fleetpack sees, recording each write it
// makes: the timeline of what fleetpack did, in the order it did it.
type recordingCluster struct {
	provisioning.Cluster
	start time.Time

	mu    sync.Mutex
	steps []step
}

type step struct {
	at   time.Duration
	verb string
	obj  string
	// node is the node the pod was on, for evictions and deletions.
	node string
	// ready are the nodes fleetpack saw Ready when it evicted.
	ready map[string]bool
	err   error
}

func (s step) String() string {
	out := fmt.Sprintf("+%5.1fs %-10s %s", s.at.Seconds(), s.verb, s.obj)
	if s.node != "" {
		out += " (on " + s.node + ")"
	}
	if s.err != nil {
		out += fmt.Sprintf(": %v", s.err)
	}
	return out
}

func (c *recordingCluster) record(verb, obj, node string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, step{at: time.Since(c.start), verb: verb, obj: obj, node: node, err: err})
}

func (c *recordingCluster) timeline() []step {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]step(nil), c.steps...)
}

func (c *recordingCluster) CreateNode(ctx context.Context, node *corev1.Node) error {
	err := c.Cluster.CreateNode(ctx, node)
	c.record("create", node.Name, node.Labels[offerings.LabelNodePool], err)
	return err
}

func (c *recordingCluster) DeleteNode(ctx context.Context, name string) error {
	err := c.Cluster.DeleteNode(ctx, name)
	c.record("delete", name, "", err)
	return err
}

func (c *recordingCluster) Cordon(ctx context.Context, name string) error {
	err := c.Cluster.Cordon(ctx, name)
	c.record("cordon", name, "", err)
	return err
}

func (c *recordingCluster) Bind(ctx context.Context, pod *corev1.Pod, node string) error {
	err := c.Cluster.Bind(ctx, pod, node)
	c.record("bind", provisioning.PodKey(pod), node, err)
	return err
}

func (c *recordingCluster) Evict(ctx context.Context, pod *corev1.Pod) error {
	ready := map[string]bool{}
	if nodes, err := c.Cluster.ListNodes(ctx); err == nil {
		for _, n := range nodes {
			ready[n.Name] = provisioning.IsNodeReady(n)
		}
	}
	err := c.Cluster.Evict(ctx, pod)
	if !provisioning.IsEvictionBlocked(err) {
		c.mu.Lock()
		c.steps = append(c.steps, step{at: time.Since(c.start), verb: "evict", obj: provisioning.PodKey(pod), node: pod.Spec.NodeName, ready: ready, err: err})
		c.mu.Unlock()
	}
	return err
}

func (c *recordingCluster) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	err := c.Cluster.DeletePod(ctx, pod)
	c.record("deletepod", provisioning.PodKey(pod), pod.Spec.NodeName, err)
	return err
}

// Event passes events on to the real cluster.
func (c *recordingCluster) Event(ctx context.Context, obj runtime.Object, eventType, reason, message string) {
	if rec, ok := c.Cluster.(provisioning.EventRecorder); ok {
		rec.Event(ctx, obj, eventType, reason, message)
	}
}

// readyWatch follows the workload's pods through one watch stream and keeps
// the fewest Ready (and not terminating) pods seen since it was reset.
type readyWatch struct {
	mu     sync.Mutex
	ready  map[types.UID]bool
	fewest int
}

// asPod returns the pod an informer handed over, also from a tombstone.
func asPod(obj any) (*corev1.Pod, bool) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	p, ok := obj.(*corev1.Pod)
	return p, ok
}

func (w *readyWatch) observe(obj any) { w.update(obj, false) }

func (w *readyWatch) gone(obj any) { w.update(obj, true) }

func (w *readyWatch) update(obj any, deleted bool) {
	p, ok := asPod(obj)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !deleted && podReady(p) {
		w.ready[p.UID] = true
	} else {
		delete(w.ready, p.UID)
	}
	w.fewest = min(w.fewest, len(w.ready))
}

// reset starts a new phase: the fewest is the count now.
func (w *readyWatch) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fewest = len(w.ready)
}

func (w *readyWatch) fewestReady() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fewest
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

type env struct {
	t       *testing.T
	ctx     context.Context
	client  kubernetes.Interface
	ns      string
	cluster *recordingCluster
	stack   *stack.Stack
	handler *interruption.Handler
	ready   *readyWatch
}

// waitFor polls cond until it holds. The control plane's controllers run on
// their own time; the test waits for the state it needs, never for quiet.
func (e *env) waitFor(what string, timeout time.Duration, cond func() (bool, error)) {
	e.t.Helper()
	err := wait.PollUntilContextTimeout(e.ctx, 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) { return cond() })
	if err != nil {
		e.t.Fatalf("%s: %v\ntimeline:\n%s", what, err, e.timelineText())
	}
}

func (e *env) timelineText() string {
	var b strings.Builder
	for _, s := range e.cluster.timeline() {
		b.WriteString("  " + s.String() + "\n")
	}
	return b.String()
}

func (e *env) managedNodes() []corev1.Node {
	e.t.Helper()
	nodes, err := e.client.CoreV1().Nodes().List(e.ctx, metav1.ListOptions{LabelSelector: provisioning.LabelManagedBy + "=" + provisioning.ManagedBy})
	if err != nil {
		e.t.Fatal(err)
	}
	return nodes.Items
}

func (e *env) webPods() []corev1.Pod {
	e.t.Helper()
	pods, err := e.client.CoreV1().Pods(e.ns).List(e.ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		e.t.Fatal(err)
	}
	return pods.Items
}

func (e *env) scale(n int32) {
	e.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)
	if _, err := e.client.AppsV1().Deployments(e.ns).Patch(e.ctx, "web", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// settledOn reports whether exactly n web pods exist, each Ready on a live
// node fleetpack manages, and the instances alive are exactly those nodes'.
func (e *env) settledOn(n int) (bool, error) {
	nodes := map[string]bool{}
	instances := map[string]bool{}
	for _, node := range e.managedNodes() {
		nodes[node.Name] = true
		instances[instanceID(&node)] = true
	}
	count := 0
	for _, p := range e.webPods() {
		if p.DeletionTimestamp != nil {
			return false, nil
		}
		if !podReady(&p) || !nodes[p.Spec.NodeName] {
			return false, nil
		}
		count++
	}
	if count != n {
		return false, nil
	}
	live := e.stack.EC2.LiveInstances()
	if len(live) != len(instances) {
		return false, nil
	}
	for _, in := range live {
		if !instances[*in.InstanceId] {
			return false, nil
		}
	}
	return true, nil
}

// instanceID is the EC2 instance of node, from its provider id
// aws:///ZONE/ID.
func instanceID(node *corev1.Node) string {
	id, _ := aws.ParseProviderID(node.Spec.ProviderID)
	return id
}

func (e *env) nodeGone(name string) func() (bool, error) {
	return func() (bool, error) {
		for _, n := range e.managedNodes() {
			if n.Name == name {
				return false, nil
			}
		}
		return true, nil
	}
}

// nodeWithWeb returns a managed node running web pods, other than skip.
func (e *env) nodeWithWeb(skip ...string) *corev1.Node {
	e.t.Helper()
	on := map[string]int{}
	for _, p := range e.webPods() {
		on[p.Spec.NodeName]++
	}
	for _, n := range e.managedNodes() {
		if on[n.Name] > 0 && !slices.Contains(skip, n.Name) {
			return &n
		}
	}
	e.t.Fatalf("no node runs web pods; timeline:\n%s", e.timelineText())
	return nil
}

// stepsSince returns the timeline from index from on.
func (e *env) stepsSince(from int) []step { return e.cluster.timeline()[from:] }

// first returns the index of the first step matching, or -1.
func first(steps []step, match func(step) bool) int {
	for i, s := range steps {
		if match(s) {
			return i
		}
	}
	return -1
}

// TaintNode passes consolidation's taints on, recording them.
func (c *recordingCluster) TaintNode(ctx context.Context, name string, taint corev1.Taint) error {
	err := c.Cluster.(provisioning.NodeTainter).TaintNode(ctx, name, taint)
	c.record("taint", name, "", err)
	return err
}

// UntaintNode passes consolidation's untaints on, recording them.
func (c *recordingCluster) UntaintNode(ctx context.Context, name, key string) error {
	err := c.Cluster.(provisioning.NodeTainter).UntaintNode(ctx, name, key)
	c.record("untaint", name, "", err)
	return err
}

// ListPDBs passes the budgets consolidation reads on.
func (c *recordingCluster) ListPDBs(ctx context.Context) ([]*policyv1.PodDisruptionBudget, error) {
	return c.Cluster.(provisioning.PDBLister).ListPDBs(ctx)
}

// newEnv starts fleetpack over pools, with the provisioner options opts
// changes from the defaults of these tests.
func newEnv(t *testing.T, pools string, opts ...func(*provisioning.Options)) *env {
	cp := controlPlane.Get(t)
	ctx := t.Context()
	client := cp.Client(t)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// fleetpack runs as the ServiceAccount of deploy/rbac.yaml, with
	// exactly the permissions it ships.
	if err := fleetdeploy.ApplyRBAC(ctx, client); err != nil {
		t.Fatal(err)
	}
	fleetpackClient, err := kubernetes.NewForConfig(cp.ServiceAccountConfig(t, fleetdeploy.Namespace, fleetdeploy.ServiceAccount))
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kubecluster.New(fleetpackClient, kubecluster.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, client: client, ns: cp.Namespace(t), ready: &readyWatch{ready: map[types.UID]bool{}}}
	e.cluster = &recordingCluster{Cluster: kc, start: time.Now()}

	sim, err := kubelet.New(client, kubelet.Options{
		Nodes:  labels.SelectorFromSet(labels.Set{provisioning.LabelManagedBy: provisioning.ManagedBy}),
		Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	popts := provisioning.Options{
		BatchIdleDuration: 300 * time.Millisecond, BatchMaxDuration: 2 * time.Second,
		RetryInterval: 2 * time.Second, OrphanGracePeriod: 2 * time.Second,
	}
	for _, o := range opts {
		o(&popts)
	}
	e.stack = stack.New(t, stack.Options{Pools: pools, Clock: clock.RealClock{}, Cluster: e.cluster, Logger: logger, Provisioner: popts})
	e.handler, err = interruption.NewHandler(interruption.HandlerOptions{
		Cluster: e.cluster, CloudProvider: e.stack.Provider,
		Replacer:    interruption.ProvisionerReplacer{Provisioner: e.stack.Provisioner},
		Unavailable: e.stack.Unavailable, Clock: clock.RealClock{}, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}

	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(e.ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = "app=web" }))
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: e.ready.observe, UpdateFunc: func(_, obj any) { e.ready.observe(obj) }, DeleteFunc: e.ready.gone,
	}); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(ctx)
	for _, run := range []func(context.Context) error{sim.Run, e.stack.Provisioner.Run, e.handler.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(runCtx); err != nil && runCtx.Err() == nil {
				t.Errorf("run: %v", err)
			}
		}()
	}
	factory.Start(runCtx.Done())
	factory.WaitForCacheSync(runCtx.Done())
	t.Cleanup(func() {
		stop()
		wg.Wait()
		factory.Shutdown()
	})
	return e
}

// createWeb creates the Deployment web at 0 replicas (pods of 500m, 512Mi)
// and a PodDisruptionBudget of minAvailable over its pods.
func (e *env) createWeb(minAvailable int32) *appsv1.Deployment {
	e.t.Helper()
	zero := int32(0)
	grace := int64(1)
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: e.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &zero,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{Name: "web", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
					}}},
				},
			},
		},
	}
	if _, err := e.client.AppsV1().Deployments(e.ns).Create(e.ctx, deploy, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	budget := intstr.FromInt32(minAvailable)
	if _, err := e.client.PolicyV1().PodDisruptionBudgets(e.ns).Create(e.ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: e.ns},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &budget, Selector: deploy.Spec.Selector},
	}, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	return deploy
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestControlPlaneEndToEnd runs fleetpack whole on a real control plane: a
// Deployment scaled from 0 to 6 (the ReplicaSet controller makes the pods,
// kube-scheduler binds them to the nodes fleetpack launched), a Spot
// interruption and a rebalance recommendation under a PodDisruptionBudget
// (minAvailable 5), a NodePool deleted, and scale to 0. After each step every
// pod is Ready on a live fleetpack node, the budget held throughout, and the
// EC2 instances alive are exactly the nodes'.
func TestControlPlaneEndToEnd(t *testing.T) {
	e := newEnv(t, pools)
	const phase = 3 * time.Minute

	// 0 -> 6.
	e.createWeb(minAvailable)
	e.scale(replicas)
	e.waitFor("6 web pods Ready on fleetpack's nodes", phase, func() (bool, error) { return e.settledOn(replicas) })
	if n := len(e.managedNodes()); n < 2 {
		t.Fatalf("%d nodes for 6 pods of 500m on large nodes, want at least 2", n)
	}
	for _, s := range e.cluster.timeline() {
		if s.verb == "bind" {
			t.Fatalf("fleetpack bound a pod itself (%s); kube-scheduler must", s)
		}
	}
	t.Logf("scaled to %d on %d nodes:\n%s", replicas, len(e.managedNodes()), e.timelineText())

	// A Spot interruption: cordon at once, replacement capacity, drain
	// through the budget, node and instance gone before the deadline.
	interrupted := e.nodeWithWeb()
	mark := len(e.cluster.timeline())
	e.ready.reset()
	notice := time.Now()
	msg := interruption.Message{
		ID: "spot-1", Kind: interruption.KindSpotInterruption, InstanceIDs: []string{instanceID(interrupted)},
		Time: notice, Deadline: notice.Add(2 * time.Minute),
	}
	if err := e.handler.Handle(e.ctx, msg); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the interrupted node gone and 6 pods Ready again", phase, func() (bool, error) {
		if gone, _ := e.nodeGone(interrupted.Name)(); !gone {
			return false, nil
		}
		return e.settledOn(replicas)
	})
	steps := e.stepsSince(mark)
	cordon := first(steps, func(s step) bool { return s.verb == "cordon" && s.obj == interrupted.Name })
	evict := first(steps, func(s step) bool { return s.verb == "evict" && s.node == interrupted.Name })
	launch := first(steps, func(s step) bool { return s.verb == "create" })
	deleted := first(steps, func(s step) bool { return s.verb == "delete" && s.obj == interrupted.Name })
	if cordon < 0 || evict < 0 || launch < 0 || deleted < 0 || cordon > evict || launch > deleted || evict > deleted {
		t.Errorf("spot interruption: want cordon, replacement and evictions before the delete; got (cordon %d, launch %d, first eviction %d, delete %d):\n%s",
			cordon, launch, evict, deleted, e.timelineText())
	} else if at := e.cluster.start.Add(steps[deleted].at); !at.Before(msg.Deadline) {
		t.Errorf("interrupted node deleted at %s, after its deadline %s", at, msg.Deadline)
	}
	if fewest := e.ready.fewestReady(); fewest < minAvailable {
		t.Errorf("spot interruption: only %d web pods Ready at one point, the budget says %d", fewest, minAvailable)
	}

	// A rebalance recommendation: replacement Ready first, then the drain.
	rebalanced := e.nodeWithWeb()
	mark = len(e.cluster.timeline())
	e.ready.reset()
	if err := e.handler.Handle(e.ctx, interruption.Message{
		ID: "rebalance-1", Kind: interruption.KindRebalanceRecommendation, InstanceIDs: []string{instanceID(rebalanced)}, Time: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the rebalanced node gone and 6 pods Ready again", phase, func() (bool, error) {
		if gone, _ := e.nodeGone(rebalanced.Name)(); !gone {
			return false, nil
		}
		return e.settledOn(replicas)
	})
	steps = e.stepsSince(mark)
	launch = first(steps, func(s step) bool { return s.verb == "create" })
	evict = first(steps, func(s step) bool { return s.verb == "evict" && s.node == rebalanced.Name })
	if launch < 0 || evict < 0 || launch > evict {
		t.Errorf("rebalance: want the replacement launched before the first eviction (launch %d, eviction %d):\n%s", launch, evict, e.timelineText())
	} else if replacement := steps[launch].obj; !steps[evict].ready[replacement] {
		t.Errorf("rebalance: the drain began before the replacement %s was Ready:\n%s", replacement, e.timelineText())
	}
	if fewest := e.ready.fewestReady(); fewest < minAvailable {
		t.Errorf("rebalance: only %d web pods Ready at one point, the budget says %d", fewest, minAvailable)
	}

	// spot-a deleted: its nodes are drained onto spot-b and removed.
	onlyB, err := provisioning.ParseNodePools(fmt.Appendf(nil, spotPool, "spot-b", 10))
	if err != nil {
		t.Fatal(err)
	}
	e.ready.reset()
	if err := e.stack.Provisioner.SetNodePools(onlyB); err != nil {
		t.Fatal(err)
	}
	e.waitFor("no spot-a node left and 6 pods Ready on spot-b", 2*phase, func() (bool, error) {
		for _, n := range e.managedNodes() {
			if n.Labels[offerings.LabelNodePool] != "spot-b" {
				return false, nil
			}
		}
		return e.settledOn(replicas)
	})
	if fewest := e.ready.fewestReady(); fewest < minAvailable {
		t.Errorf("NodePool deletion: only %d web pods Ready at one point, the budget says %d", fewest, minAvailable)
	}

	// Scale to 0: the empty nodes go after consolidateAfter, and with them
	// every instance.
	e.scale(0)
	e.waitFor("every node and instance gone after scale to 0", phase, func() (bool, error) {
		return len(e.managedNodes()) == 0 && len(e.stack.EC2.LiveInstances()) == 0 && len(e.webPods()) == 0, nil
	})
	for _, s := range e.cluster.timeline() {
		if s.err != nil && !provisioning.IsNotFound(s.err) {
			t.Errorf("a write failed: %s", s)
		}
	}
	t.Logf("timeline:\n%s", e.timelineText())
}
