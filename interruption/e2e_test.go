package interruption

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/fleetpack/fleetpack/cloudprovider/aws"
	"github.com/fleetpack/fleetpack/cloudprovider/aws/fake"
	"github.com/fleetpack/fleetpack/interruption/fakesqs"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
)

// flexPool allows Spot and on-demand; Spot is cheaper, so nodes start Spot.
const flexPool = `
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
      - key: karpenter.k8s.aws/instance-generation
        operator: Gt
        values: ["5"]
`

// e2e is the whole stack on one fake clock: the in-memory cluster, the real
// provisioner and AWS provider over the fake EC2, the handler, and an SQS
// source reading a fake queue. The test drives the provisioner's passes.
type e2e struct {
	t       *testing.T
	ctx     context.Context
	clock   *testingclock.FakeClock
	cluster *provisioning.MemoryCluster
	ec2     *fake.EC2
	cloud   *aws.Provider
	prov    *provisioning.Provisioner
	unavail *offerings.UnavailableOfferings
	queue   *fakesqs.Queue
	// handler and metrics are the running process's; cancel stops it
	// and stop also waits until it has stopped.
	handler *Handler
	metrics *Metrics
	cancel  context.CancelFunc
	stop    func()

	mu       sync.Mutex
	deleted  map[string]time.Time
	cordoned map[string]time.Time
	writes   concurrency
}

// e2eCluster records when nodes are cordoned and deleted.
type e2eCluster struct {
	*provisioning.MemoryCluster
	e *e2e
}

func (c *e2eCluster) Evict(ctx context.Context, pod *corev1.Pod) error {
	defer c.e.writes.enter()()
	return c.MemoryCluster.Evict(ctx, pod)
}

func (c *e2eCluster) DeleteNode(ctx context.Context, name string) error {
	defer c.e.writes.enter()()
	err := c.MemoryCluster.DeleteNode(ctx, name)
	if err == nil {
		c.e.mu.Lock()
		c.e.deleted[name] = c.e.clock.Now()
		c.e.mu.Unlock()
	}
	return err
}

func (c *e2eCluster) Cordon(ctx context.Context, name string) error {
	err := c.MemoryCluster.Cordon(ctx, name)
	if err == nil {
		c.e.mu.Lock()
		if _, ok := c.e.cordoned[name]; !ok {
			c.e.cordoned[name] = c.e.clock.Now()
		}
		c.e.mu.Unlock()
	}
	return err
}

func newE2E(t *testing.T, opts HandlerOptions) *e2e {
	t.Helper()
	pools, err := provisioning.ParseNodePools([]byte(flexPool))
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	quiet := quietLogger()
	if testing.Verbose() && os.Getenv("E2E_LOG") != "" {
		quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	clk := testingclock.NewFakeClock(t0)
	e := &e2e{t: t, clock: clk, deleted: map[string]time.Time{}, cordoned: map[string]time.Time{}}
	e.unavail = offerings.NewUnavailableOfferings(offerings.UnavailableOfferingsOptions{Clock: clk, Logger: quiet, NoJanitor: true})
	e.ec2 = fake.NewFromCatalog(catalog, fake.Options{Clock: clk, DefaultCapacity: 1000}, map[string]string{"discovery": "e2e"}, 10000)
	e.cloud, err = aws.New(e.ec2, aws.Options{
		ClusterName:     "e2e",
		Region:          "us-east-1",
		LaunchTemplates: map[string]aws.LaunchTemplate{"amd64": {Name: "e2e"}, "arm64": {Name: "e2e"}},
		SubnetSelector:  map[string]string{"discovery": "e2e"},
		Catalog:         aws.StaticCatalog(catalog),
		Unavailable:     e.unavail,
		Clock:           clk,
		Logger:          quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.cluster = provisioning.NewMemoryCluster(clk, provisioning.MemoryClusterOptions{NodeReadyDelay: 40 * time.Second, RecreateControlledPods: true})
	cluster := &e2eCluster{MemoryCluster: e.cluster, e: e}
	e.prov, err = provisioning.New(cluster, e.cloud, pools, provisioning.Options{Clock: clk, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e.queue = fakesqs.New(queueURL, clk)
	ctx, cancel := context.WithCancel(context.Background())
	e.ctx = ctx
	t.Cleanup(cancel)
	e.start(opts)
	return e
}

// start runs a handler and an SQS source on the queue, as a newly started
// process would (fresh metrics), until e.stop.
func (e *e2e) start(opts HandlerOptions) {
	e.t.Helper()
	metrics, err := NewMetrics(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	quiet := quietLogger()
	opts.Cluster, opts.CloudProvider = &e2eCluster{MemoryCluster: e.cluster, e: e}, e.cloud
	if opts.Replacer == nil {
		opts.Replacer = ProvisionerReplacer{e.prov}
	}
	opts.Unavailable, opts.Clock, opts.Logger, opts.Metrics = e.unavail, e.clock, quiet, metrics
	h, err := NewHandler(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	src, err := NewSQSSource(e.queue, SQSOptions{QueueURL: queueURL, Workers: 10, Clock: e.clock, Logger: quiet, Metrics: metrics})
	if err != nil {
		e.t.Fatal(err)
	}
	e.handler, e.metrics = h, metrics
	ctx, cancel := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = h.Run(ctx) })
	wg.Go(func() { _ = src.Run(ctx, h.Handle) })
	e.cancel = cancel
	e.stop = func() { cancel(); wg.Wait() }
	e.t.Cleanup(e.stop)
}

// deploy creates n replicas of a 1-cpu workload.
func (e *e2e) deploy(name string, n int) {
	e.t.Helper()
	e.deploySized(name, n, "1")
}

// deploySized creates n replicas of a workload requesting cpu and 1Gi.
func (e *e2e) deploySized(name string, n int, cpu string) {
	e.t.Helper()
	ctrl := true
	for i := range n {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s-%d", name, i), Namespace: "default", Labels: map[string]string{"app": name},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name, UID: types.UID("rs-" + name), Controller: &ctrl}},
			},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "public.ecr.aws/eks-distro/kubernetes/pause:3.7",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("1Gi")}}}}},
		}
		if err := e.cluster.CreatePod(e.ctx, pod); err != nil {
			e.t.Fatal(err)
		}
	}
}

// dump logs the pods and nodes, for a failing test.
func (e *e2e) dump() {
	for _, p := range e.pods() {
		e.t.Logf("pod %s node %q nominated %q phase %s", p.Name, p.Spec.NodeName, p.Status.NominatedNodeName, p.Status.Phase)
	}
	nodes, _ := e.cluster.ListNodes(e.ctx)
	for _, n := range nodes {
		e.t.Logf("node %s %s ready=%v unschedulable=%v", n.Name, offeringOf(n), provisioning.IsNodeReady(n), n.Spec.Unschedulable)
	}
}

// pods returns the default-namespace pods.
func (e *e2e) pods() []*corev1.Pod {
	pods, err := e.cluster.ListPods(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*corev1.Pod
	for _, p := range pods {
		if p.Namespace == "default" {
			out = append(out, p)
		}
	}
	return out
}

// run lets the bubble's goroutines run until all are blocked, runs a
// provisioning pass and an empty-node pass (as the provisioner's Run loop
// would), lets them settle again and steps the clock a second, until cond
// holds or limit of clock time has passed. Call it inside synctest.Test.
func (e *e2e) run(limit time.Duration, cond func() bool) bool {
	e.t.Helper()
	end := e.clock.Now().Add(limit)
	for e.clock.Now().Before(end) {
		synctest.Wait()
		// The provisioner's batching loop is not under test: its passes
		// run here, between clock steps, so the clock never runs ahead
		// of them.
		if _, err := e.prov.Provision(e.ctx); err != nil {
			e.t.Fatal(err)
		}
		if _, _, err := e.prov.RemoveEmptyNodes(e.ctx); err != nil {
			e.t.Fatal(err)
		}
		synctest.Wait()
		if cond() {
			return true
		}
		e.clock.Step(time.Second)
	}
	synctest.Wait()
	return cond()
}

// allBound reports whether every app pod is bound and the handler has no
// work left.
func (e *e2e) allBound(want int) func() bool {
	return func() bool {
		if !idle(e.handler) {
			return false
		}
		pods := e.pods()
		if len(pods) != want {
			return false
		}
		for _, p := range pods {
			if p.Spec.NodeName == "" {
				return false
			}
		}
		return true
	}
}

// body is an EventBridge event of the given example, for instanceID at at.
func (e *e2e) body(example, id, instanceID string, at time.Time) string {
	e.t.Helper()
	out := mutate(e.t, examples(e.t)[example], func(m map[string]any) {
		m["id"] = id
		m["time"] = at.UTC().Format(time.RFC3339)
		m["resources"] = []any{"arn:aws:ec2:us-east-1:123456789012:instance/" + instanceID}
		m["detail"].(map[string]any)["instance-id"] = instanceID
	})
	return string(out)
}

func instanceOf(n *corev1.Node) string { return instanceIDFromProviderID(n.Spec.ProviderID) }

func offeringOf(n *corev1.Node) string {
	return strings.Join([]string{n.Labels[offerings.LabelCapacityType], n.Labels[offerings.LabelInstanceType], n.Labels[offerings.LabelZone]}, "/")
}

// busiestNode returns the node holding the most app pods.
func (e *e2e) busiestNode() *corev1.Node {
	e.t.Helper()
	count := map[string]int{}
	for _, p := range e.pods() {
		count[p.Spec.NodeName]++
	}
	var best string
	for name, c := range count {
		if name != "" && (best == "" || c > count[best]) {
			best = name
		}
	}
	n, err := e.cluster.GetNode(e.ctx, best)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *e2e) instanceState(instanceID string) ec2types.InstanceStateName {
	for _, in := range e.ec2.Instances() {
		if in.InstanceId != nil && *in.InstanceId == instanceID && in.State != nil {
			return in.State.Name
		}
	}
	return ""
}

func TestE2ESpotInterruptionThroughSQS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newE2E(t, HandlerOptions{})
		const replicas = 6
		e.deploy("web", replicas)
		if !e.run(5*time.Minute, e.allBound(replicas)) {
			e.dump()
			t.Fatalf("the workload never ran (clock +%v)", e.clock.Now().Sub(t0))
		}
		victim := e.busiestNode()
		if victim.Labels[offerings.LabelCapacityType] != offerings.CapacityTypeSpot {
			t.Fatalf("node %s is %s; the test needs a Spot node", victim.Name, offeringOf(victim))
		}
		victimPods := 0
		for _, p := range e.pods() {
			if p.Spec.NodeName == victim.Name {
				victimPods++
			}
		}
		nodesBefore, _ := e.cluster.ListNodes(e.ctx)

		notice := e.clock.Now()
		deadline := notice.Add(NoticePeriod)
		id := instanceOf(victim)
		msgID := e.queue.Send(e.body("spot_interruption_warning", "e2e-spot", id, notice))
		recovered := func() bool {
			e.mu.Lock()
			_, gone := e.deleted[victim.Name]
			e.mu.Unlock()
			return gone && e.allBound(replicas)()
		}
		if !e.run(NoticePeriod, recovered) {
			t.Fatalf("pods not all running again by the deadline: %d pods", len(e.pods()))
		}
		e.mu.Lock()
		deletedAt, deleted := e.deleted[victim.Name]
		e.mu.Unlock()
		if !deleted || !deletedAt.Before(deadline) {
			t.Fatalf("interrupted node deleted=%v at +%v, want before the 2-minute deadline", deleted, deletedAt.Sub(notice))
		}
		t.Logf("node %s (%s, %d pods) drained and deleted %v after the notice; all %d pods running again %v after it",
			victim.Name, offeringOf(victim), victimPods, deletedAt.Sub(notice), replicas, e.clock.Now().Sub(notice))
		if !e.clock.Now().Before(deadline) {
			t.Errorf("pods running again only at +%v, after the deadline", e.clock.Now().Sub(notice))
		}
		// Replacement first: every evicted pod had a running replacement
		// at once.
		if n, sum := unavailableFor(t, e.metrics, KindSpotInterruption); n != uint64(victimPods) || sum != 0 {
			t.Errorf("pod unavailability: %d samples, longest at most %vs; want %d pods, 0s", n, sum, victimPods)
		}
		// Nothing lost: every replica runs, none on the victim, and the
		// replacement capacity is in another pool.
		before := map[string]bool{}
		for _, n := range nodesBefore {
			before[n.Name] = true
		}
		for _, p := range e.pods() {
			if p.Spec.NodeName == victim.Name {
				t.Errorf("pod %s still on the interrupted node", p.Name)
			}
			if before[p.Spec.NodeName] {
				continue
			}
			n, err := e.cluster.GetNode(e.ctx, p.Spec.NodeName)
			if err != nil {
				t.Fatal(err)
			}
			if offeringOf(n) == offeringOf(victim) {
				t.Errorf("replacement %s is in the interrupted pool %s", n.Name, offeringOf(n))
			}
		}
		if st := e.instanceState(id); st != ec2types.InstanceStateNameTerminated && st != ec2types.InstanceStateNameShuttingDown {
			t.Errorf("interrupted instance state %q, want terminated", st)
		}
		if !e.queue.IsDeleted(msgID) {
			t.Error("the SQS message was not deleted")
		}
		// The interrupted pool is skipped for 3 minutes from the handling of
		// the notice, then offered again.
		e.mu.Lock()
		marked := e.cordoned[victim.Name]
		e.mu.Unlock()
		ct, it, zone := victim.Labels[offerings.LabelCapacityType], victim.Labels[offerings.LabelInstanceType], victim.Labels[offerings.LabelZone]
		// The mark is made after the notice arrives and no later than the
		// cordon; under load the two may fall in different clock steps, so
		// bound it from both sides.
		e.clock.SetTime(notice.Add(3*time.Minute - time.Second))
		if !e.unavail.IsUnavailable(ct, it, zone) {
			t.Error("interrupted pool available again before 3 minutes")
		}
		e.clock.SetTime(marked.Add(3 * time.Minute))
		if e.unavail.IsUnavailable(ct, it, zone) {
			t.Error("interrupted pool still skipped after 3 minutes")
		}
	})
}

func TestE2ERebalanceReplacesBeforeDraining(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newE2E(t, HandlerOptions{})
		const replicas = 4
		e.deploy("api", replicas)
		if !e.run(5*time.Minute, e.allBound(replicas)) {
			e.dump()
			t.Fatalf("the workload never ran (clock +%v)", e.clock.Now().Sub(t0))
		}
		victim := e.busiestNode()
		nodesBefore, _ := e.cluster.ListNodes(e.ctx)
		notice := e.clock.Now()
		e.queue.Send(e.body("rebalance_recommendation", "e2e-rebalance", instanceOf(victim), notice))
		gone := func() bool {
			e.mu.Lock()
			_, ok := e.deleted[victim.Name]
			e.mu.Unlock()
			return ok && e.allBound(replicas)()
		}
		if !e.run(10*time.Minute, gone) {
			t.Fatal("the at-risk node was not replaced")
		}
		e.mu.Lock()
		cordonedAt := e.cordoned[victim.Name]
		e.mu.Unlock()
		// Every new node was Ready before the at-risk node was cordoned.
		before := map[string]bool{}
		for _, n := range nodesBefore {
			before[n.Name] = true
		}
		nodes, _ := e.cluster.ListNodes(e.ctx)
		replacements := 0
		for _, n := range nodes {
			if before[n.Name] {
				continue
			}
			replacements++
			ready := readyTime(n)
			if ready.IsZero() || ready.After(cordonedAt) {
				t.Errorf("replacement %s Ready at +%v, after the at-risk node was cordoned at +%v", n.Name, ready.Sub(notice), cordonedAt.Sub(notice))
			}
		}
		if replacements == 0 {
			t.Error("no replacement node")
		}
		if n, sum := unavailableFor(t, e.metrics, KindRebalanceRecommendation); n == 0 || sum != 0 {
			t.Errorf("pod unavailability after the rebalance: %d samples, longest at most %vs; want 0s", n, sum)
		}
		t.Logf("at-risk node cordoned +%v after the recommendation, once %d replacement(s) were Ready", cordonedAt.Sub(notice), replacements)
		if e.unavail.IsUnavailable(victim.Labels[offerings.LabelCapacityType], victim.Labels[offerings.LabelInstanceType], victim.Labels[offerings.LabelZone]) {
			t.Error("a recommendation marked the pool unavailable")
		}
	})
}

func readyTime(n *corev1.Node) time.Time {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// TestE2EDuplicatesAndStorm: every node of a workload gets a Spot warning,
// each delivered five times, plus notices for instances that are not nodes:
// 500 messages in all. Each node is drained once, within bounded
// concurrency, and every pod ends up running.
func TestE2EDuplicatesAndStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const workers = 4
		e := newE2E(t, HandlerOptions{Workers: workers})
		const replicas = 40
		e.deploy("batch", replicas)
		if !e.run(5*time.Minute, e.allBound(replicas)) {
			e.dump()
			t.Fatalf("the workload never ran (clock +%v)", e.clock.Now().Sub(t0))
		}
		nodes, _ := e.cluster.ListNodes(e.ctx)
		notice := e.clock.Now()
		var bodies []string
		for _, n := range nodes {
			for r := range 5 {
				bodies = append(bodies, e.body("spot_interruption_warning", fmt.Sprintf("%s-%d", n.Name, r), instanceOf(n), notice))
			}
		}
		for i := len(bodies); i < 500; i++ {
			bodies = append(bodies, e.body("spot_interruption_warning", fmt.Sprintf("stranger-%d", i), fmt.Sprintf("i-%017x", 0xdead0000+i), notice))
		}
		// Interleave so duplicates arrive in different receive batches.
		for i := range bodies {
			j := (i * 7919) % len(bodies)
			bodies[i], bodies[j] = bodies[j], bodies[i]
		}
		for _, b := range bodies {
			e.queue.Send(b)
		}
		if !e.run(NoticePeriod, func() bool { return e.queue.Len() == 0 && e.allBound(replicas)() }) {
			t.Fatalf("storm not absorbed: %d messages left, %d pods", e.queue.Len(), len(e.pods()))
		}
		for _, n := range nodes {
			e.mu.Lock()
			at, ok := e.deleted[n.Name]
			e.mu.Unlock()
			if !ok || !at.Before(notice.Add(NoticePeriod)) {
				t.Errorf("node %s deleted=%v at +%v, want before the deadline", n.Name, ok, at.Sub(notice))
			}
		}
		if got := value(t, e.metrics.Actions.WithLabelValues(string(KindSpotInterruption), ActionDeleteNode)); got != float64(len(nodes)) {
			t.Errorf("%v node deletions for %d nodes", got, len(nodes))
		}
		if got := value(t, e.metrics.Actions.WithLabelValues(string(KindSpotInterruption), ActionDuplicate)); got != float64(4*len(nodes)) {
			t.Errorf("%v duplicates counted, want %d", got, 4*len(nodes))
			for _, a := range []string{ActionUnknownNode, ActionResumed, ActionDeleteNode, ActionReplace, ActionCordon, ActionIgnored} {
				t.Logf("%s: %v", a, value(t, e.metrics.Actions.WithLabelValues(string(KindSpotInterruption), a)))
			}
		}
		if got := value(t, e.metrics.MessagesReceived.WithLabelValues(string(KindSpotInterruption))); got != 500 {
			t.Errorf("%v messages received, want 500", got)
		}
		peak := e.writes.max()
		if peak > workers {
			t.Errorf("peak concurrent evictions and node deletions %d, want at most %d", peak, workers)
		}
		t.Logf("%d nodes interrupted, 500 notices; all %d pods running again %v after the notices; peak %d evictions and deletions at once",
			len(nodes), replicas, e.clock.Now().Sub(notice), peak)
	})
}

// TestE2ESpotInterruptionSurvivesRestart: the process accepts a Spot warning
// from SQS (the message is deleted), launches the replacement and dies
// before draining. A new process, same cluster, same queue, finishes the job
// from the node's record before the deadline: the pods leave through their
// budget onto the replacement, nothing is launched twice, and the node and
// its instance go.
func TestE2ESpotInterruptionSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newE2E(t, HandlerOptions{})
		const replicas = 6
		one := intstr.FromInt32(1)
		if err := e.cluster.CreatePDB(e.ctx, &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		}); err != nil {
			t.Fatal(err)
		}
		// Small pods, so the victim holds several and the budget paces them.
		e.deploySized("web", replicas, "250m")
		if !e.run(5*time.Minute, e.allBound(replicas)) {
			e.dump()
			t.Fatalf("the workload never ran (clock +%v)", e.clock.Now().Sub(t0))
		}
		victim := e.busiestNode()
		if victim.Labels[offerings.LabelCapacityType] != offerings.CapacityTypeSpot {
			t.Fatalf("node %s is %s; the test needs a Spot node", victim.Name, offeringOf(victim))
		}
		id := instanceOf(victim)

		// The first process dies right after launching the replacement.
		e.stop()
		stopped := make(chan struct{})
		e.start(HandlerOptions{Replacer: stopAfterReplace{ProvisionerReplacer{e.prov}, func() { e.cancel(); close(stopped) }}})
		first := e.metrics
		notice := e.clock.Now()
		deadline := notice.Add(NoticePeriod)
		msgID := e.queue.Send(e.body("spot_interruption_warning", "e2e-spot", id, notice))
		<-stopped
		e.stop()
		if !e.queue.IsDeleted(msgID) {
			t.Fatal("the first process did not delete the message it accepted")
		}
		if got := value(t, first.Actions.WithLabelValues(string(KindSpotInterruption), ActionReplace)); got != 1 {
			t.Fatalf("first process replacements = %v, want 1", got)
		}
		if got := value(t, first.Actions.WithLabelValues(string(KindSpotInterruption), ActionDrain)); got != 0 {
			t.Fatalf("first process drained (%v) before it stopped", got)
		}
		onVictim := 0
		for _, p := range e.pods() {
			if p.Spec.NodeName == victim.Name {
				onVictim++
			}
		}
		if onVictim < 2 {
			t.Fatalf("%d pods on the victim; the test needs several for the budget to pace", onVictim)
		}

		// Down for 15 seconds; the queue holds nothing for the new process.
		e.clock.Step(15 * time.Second)
		e.start(HandlerOptions{})
		if e.queue.Len() != 0 {
			t.Fatalf("%d messages in the queue", e.queue.Len())
		}
		recovered := func() bool {
			e.mu.Lock()
			_, gone := e.deleted[victim.Name]
			e.mu.Unlock()
			return gone && e.allBound(replicas)()
		}
		if !e.run(NoticePeriod, recovered) {
			e.dump()
			t.Fatalf("not recovered by the deadline (clock +%v after the notice)", e.clock.Now().Sub(notice))
		}
		e.mu.Lock()
		deletedAt := e.deleted[victim.Name]
		e.mu.Unlock()
		if !deletedAt.Before(deadline) {
			t.Errorf("node deleted +%v after the notice, want before the 2-minute deadline", deletedAt.Sub(notice))
		}
		if got := value(t, e.metrics.Actions.WithLabelValues(string(KindSpotInterruption), ActionResumed)); got != 1 {
			t.Errorf("resumed = %v, want 1", got)
		}
		if got := value(t, e.metrics.Actions.WithLabelValues(string(KindSpotInterruption), ActionReplace)); got != 0 {
			t.Errorf("the new process launched replacement capacity again (%v)", got)
		}
		if got := value(t, e.metrics.Actions.WithLabelValues(string(KindSpotInterruption), ActionForceDelete)); got != 0 {
			t.Errorf("%v pods force-deleted; the budget should have let them go in time", got)
		}
		if st := e.instanceState(id); st != ec2types.InstanceStateNameTerminated && st != ec2types.InstanceStateNameShuttingDown {
			t.Errorf("interrupted instance state %q, want terminated", st)
		}
		for _, p := range e.pods() {
			if p.Spec.NodeName == victim.Name {
				t.Errorf("pod %s still on the interrupted node", p.Name)
			}
		}
		t.Logf("%d pods on %s; process stopped after the replacement, restarted +15s, node drained and deleted +%v after the notice",
			onVictim, victim.Name, deletedAt.Sub(notice))
	})
}
