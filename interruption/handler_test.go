package interruption

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetpack/fleetpack/cloudprovider"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
)

// fakeReplacer stands in for the provisioner: Replace creates one node in
// another pool for the pods, and a scheduler loop (run) nominates every
// pending pod to a live replacement node, as the provisioner's next batch
// would. It records when each Replace happened and how many ran at once.
type fakeReplacer struct {
	cluster *provisioning.MemoryCluster
	clock   *testingclock.FakeClock

	mu       sync.Mutex
	calls    int
	running  int
	peak     int
	at       []time.Time
	nodes    []string
	podsSeen int
	err      error
	// onReplace, if set, runs inside Replace (for invariants).
	onReplace func()
}

func (r *fakeReplacer) Replace(ctx context.Context, pods []*corev1.Pod) ([]*corev1.Node, error) {
	r.mu.Lock()
	r.calls++
	r.running++
	r.peak = max(r.peak, r.running)
	r.at = append(r.at, r.clock.Now())
	name := fmt.Sprintf("replacement-%d", r.calls)
	instanceID := fmt.Sprintf("i-%017x", 0xf00000+r.calls)
	r.nodes = append(r.nodes, name)
	r.podsSeen += len(pods)
	err := r.err
	hook := r.onReplace
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running--
		r.mu.Unlock()
	}()
	if hook != nil {
		hook()
	}
	// Yield so that concurrent Replace calls overlap if the handler lets
	// them.
	runtime.Gosched()
	if err != nil {
		return nil, err
	}
	n := node(name, instanceID, "on-demand", "m5.xlarge", "us-east-1b", "replacement")
	n.Status.Conditions = nil // Ready after the cluster's NodeReadyDelay.
	if err := r.cluster.CreateNode(ctx, n); err != nil {
		return nil, err
	}
	created, err := r.cluster.GetNode(ctx, name)
	return []*corev1.Node{created}, err
}

// run nominates pending pods to replacement nodes until ctx is done.
func (r *fakeReplacer) run(ctx context.Context) {
	changes := r.cluster.Changes(ctx)
	for {
		r.nominatePending(ctx)
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				return
			}
		}
	}
}

// nominatePending nominates every pending pod to a live replacement node,
// as the provisioner's next batch would.
func (r *fakeReplacer) nominatePending(ctx context.Context) {
	nodes, _ := r.cluster.ListNodes(ctx)
	var target string
	for _, n := range nodes {
		if n.Labels[offerings.LabelNodePool] == "replacement" && !n.Spec.Unschedulable {
			target = n.Name
		}
	}
	if target == "" {
		return
	}
	pods, _ := r.cluster.ListPods(ctx)
	for _, p := range pods {
		if p.Spec.NodeName == "" && p.Status.NominatedNodeName == "" && !provisioning.IsDaemonSetPod(p) {
			_ = r.cluster.Nominate(ctx, p, target)
		}
	}
}

func node(name, instanceID, capacityType, instanceType, zone, pool string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			offerings.LabelCapacityType: capacityType, offerings.LabelInstanceType: instanceType,
			offerings.LabelZone: zone, offerings.LabelNodePool: pool,
		}},
		Spec:   corev1.NodeSpec{ProviderID: "aws:///" + zone + "/" + instanceID},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
}

func appPod(name, app, nodeName string, grace int64) *corev1.Pod {
	ctrl := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "default", Labels: map[string]string{"app": app},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: app, UID: types.UID("rs-" + app), Controller: &ctrl}},
		},
		Spec: corev1.PodSpec{NodeName: nodeName, TerminationGracePeriodSeconds: &grace},
	}
}

func daemonPod(name, nodeName string) *corev1.Pod {
	ctrl := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "kube-system",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: "ds-agent", Controller: &ctrl}},
		},
		Spec: corev1.PodSpec{NodeName: nodeName},
	}
}

func mirrorPod(name, nodeName string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system", Annotations: map[string]string{corev1.MirrorPodAnnotationKey: "hash"}},
		Spec:       corev1.PodSpec{NodeName: nodeName},
	}
}

// env is a cluster, a fake replacer, a fake cloud and a running handler on
// a fake clock.
type env struct {
	t        *testing.T
	ctx      context.Context
	clock    *testingclock.FakeClock
	cluster  *provisioning.MemoryCluster
	replacer *fakeReplacer
	cloud    *fakeCloud
	unavail  *offerings.UnavailableOfferings
	// metrics and handler are the current handler's: a restart replaces
	// both, as a new process starts with fresh metrics.
	metrics *Metrics
	handler *Handler
	// cancelHandler stops the current handler's Run; stopHandler also
	// waits for it to return.
	cancelHandler context.CancelFunc
	stopHandler   func()
	// deleted records when each node was deleted.
	mu      sync.Mutex
	deleted map[string]time.Time
	writes  concurrency
	// firstEviction is when the first eviction was asked for.
	firstEviction time.Time
}

func newEnv(t *testing.T, opts HandlerOptions) *env {
	t.Helper()
	return newEnvReadyAfter(t, opts, 30*time.Second)
}

// newEnvReadyAfter is newEnv with nodes Ready readyDelay after they are
// created.
func newEnvReadyAfter(t *testing.T, opts HandlerOptions, readyDelay time.Duration) *env {
	t.Helper()
	clk := testingclock.NewFakeClock(t0)
	cluster := provisioning.NewMemoryCluster(clk, provisioning.MemoryClusterOptions{NodeReadyDelay: readyDelay, RecreateControlledPods: true})
	e := &env{t: t, clock: clk, cluster: cluster, deleted: map[string]time.Time{},
		replacer: &fakeReplacer{cluster: cluster, clock: clk},
		cloud:    &fakeCloud{terminated: map[string]int{}},
		unavail:  offerings.NewUnavailableOfferings(offerings.UnavailableOfferingsOptions{Clock: clk, Logger: quietLogger(), NoJanitor: true}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.ctx = ctx
	var wg sync.WaitGroup
	wg.Go(func() { e.replacer.run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	e.startHandler(opts)
	return e
}

// newHandler builds a handler over the env's cluster, replacer and cloud,
// with fresh metrics, as a newly started process would, and makes it the
// env's current handler. It does not run it.
func (e *env) newHandler(opts HandlerOptions) *Handler {
	e.t.Helper()
	metrics, err := NewMetrics(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if opts.Cluster == nil {
		opts.Cluster = &recordingCluster{MemoryCluster: e.cluster, env: e}
	}
	if opts.Replacer == nil {
		opts.Replacer = e.replacer
	}
	opts.CloudProvider = e.cloud
	opts.Unavailable = e.unavail
	opts.Clock = e.clock
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	opts.Metrics = metrics
	h, err := NewHandler(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.handler, e.metrics = h, metrics
	return h
}

// runHandler runs the current handler until stopHandler (or the test's end).
func (e *env) runHandler() {
	h := e.handler
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { _ = h.Run(ctx); close(done) }()
	e.cancelHandler = cancel
	e.stopHandler = func() { cancel(); <-done }
	e.t.Cleanup(e.stopHandler)
}

// startHandler builds and runs a new current handler.
func (e *env) startHandler(opts HandlerOptions) {
	e.newHandler(opts)
	e.runHandler()
}

// fakeCloud records terminations; the handler calls nothing else.
type fakeCloud struct {
	cloudprovider.CloudProvider

	mu         sync.Mutex
	terminated map[string]int
}

func (c *fakeCloud) Delete(ctx context.Context, providerID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.terminated[providerID]++
	if c.terminated[providerID] > 1 {
		return &cloudprovider.NotFoundError{ProviderID: providerID}
	}
	return nil
}

func (c *fakeCloud) terminations(providerID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.terminated[providerID]
}

// recordingCluster records the clock time of each node deletion, and how
// many evictions and deletions ran at once.
type recordingCluster struct {
	*provisioning.MemoryCluster
	env *env
}

// concurrency counts calls in flight and the most at once.
type concurrency struct {
	mu             sync.Mutex
	inFlight, peak int
}

// enter counts a call in until the returned func is called.
func (c *concurrency) enter() func() {
	c.mu.Lock()
	c.inFlight++
	c.peak = max(c.peak, c.inFlight)
	c.mu.Unlock()
	runtime.Gosched() // let concurrent calls overlap if the handler lets them
	return func() {
		c.mu.Lock()
		c.inFlight--
		c.mu.Unlock()
	}
}

func (c *concurrency) max() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peak
}

func (c *recordingCluster) Evict(ctx context.Context, pod *corev1.Pod) error {
	defer c.env.writes.enter()()
	c.env.mu.Lock()
	if c.env.firstEviction.IsZero() {
		c.env.firstEviction = c.env.clock.Now()
	}
	c.env.mu.Unlock()
	return c.MemoryCluster.Evict(ctx, pod)
}

func (c *recordingCluster) DeleteNode(ctx context.Context, name string) error {
	defer c.env.writes.enter()()
	err := c.MemoryCluster.DeleteNode(ctx, name)
	if err == nil {
		c.env.mu.Lock()
		c.env.deleted[name] = c.env.clock.Now()
		c.env.mu.Unlock()
	}
	return err
}

// peak is the most evictions and node deletions that ran at once.
func (e *env) peak() int { return e.writes.max() }

func (e *env) deletedAt(name string) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	at, ok := e.deleted[name]
	return at, ok
}

func (e *env) mustCreateNode(n *corev1.Node) {
	e.t.Helper()
	if err := e.cluster.CreateNode(e.ctx, n); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) mustCreatePod(p *corev1.Pod) {
	e.t.Helper()
	if err := e.cluster.CreatePod(e.ctx, p); err != nil {
		e.t.Fatal(err)
	}
}

// settle lets every goroutine of the test's bubble run until all are
// blocked (synctest.Wait), then steps the clock by step, until the handler
// has no work left and every app pod is bound, nothing waits on the clock,
// or limit of clock time has passed. Call it inside synctest.Test.
func (e *env) settle(step, limit time.Duration) {
	e.t.Helper()
	end := e.clock.Now().Add(limit)
	for {
		synctest.Wait()
		if !e.clock.Now().Before(end) || (idle(e.handler) && e.pendingAppPods() == 0) || !e.clock.HasWaiters() {
			return
		}
		e.clock.Step(step)
	}
}

// idle reports whether h has no node work under way.
func idle(h *Handler) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.nodes {
		if w.active {
			return false
		}
	}
	return true
}

func (e *env) pendingAppPods() int {
	pods, _ := e.cluster.ListPods(e.ctx)
	n := 0
	for _, p := range pods {
		if p.Namespace == "default" && p.Spec.NodeName == "" {
			n++
		}
	}
	return n
}

// appPodsByNode counts the default-namespace pods per node ("" = pending).
func (e *env) appPodsByNode() map[string]int {
	pods, _ := e.cluster.ListPods(e.ctx)
	out := map[string]int{}
	for _, p := range pods {
		if p.Namespace == "default" {
			out[p.Spec.NodeName]++
		}
	}
	return out
}

func (e *env) action(kind Kind, action string) float64 {
	return value(e.t, e.metrics.Actions.WithLabelValues(string(kind), action))
}

func spotMsg(id, instanceID string, at time.Time) Message {
	return Message{ID: id, Kind: KindSpotInterruption, InstanceIDs: []string{instanceID}, Time: at, Deadline: at.Add(NoticePeriod), Action: "terminate"}
}

const spotInstance = "i-0b662ef9931388ba0"

// spotNode creates the interrupted node: three app pods (a budget allowing one
// disruption at a time), a daemonset pod and a mirror pod.
func (e *env) spotNode() {
	e.mustCreateNode(node("spot-1", spotInstance, "spot", "m5.large", "us-east-1a", "default"))
	for i := range 3 {
		e.mustCreatePod(appPod(fmt.Sprintf("web-%d", i), "web", "spot-1", 20))
	}
	e.mustCreatePod(daemonPod("agent-spot-1", "spot-1"))
	e.mustCreatePod(mirrorPod("kube-proxy-spot-1", "spot-1"))
	min := intstr.FromInt32(2)
	if err := e.cluster.CreatePDB(e.ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &min, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}); err != nil {
		e.t.Fatal(err)
	}
}

// budgetHeldNode creates the interrupted node with one pod, db-0 (40 s
// grace period), whose budget never allows an eviction.
func (e *env) budgetHeldNode() {
	e.t.Helper()
	e.mustCreateNode(node("spot-1", spotInstance, "spot", "m5.large", "us-east-1a", "default"))
	e.mustCreatePod(appPod("db-0", "db", "spot-1", 40))
	zero := intstr.FromInt32(0)
	if err := e.cluster.CreatePDB(e.ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &zero, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}},
	}); err != nil {
		e.t.Fatal(err)
	}
}

func TestHandlerSpotInterruption(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.spotNode()
		msg := spotMsg("spot-1", spotInstance, e.clock.Now())
		if err := e.handler.Handle(e.ctx, msg); err != nil {
			t.Fatal(err)
		}
		// The urgent part is done before Handle returns.
		if !e.unavail.IsUnavailable("spot", "m5.large", "us-east-1a") {
			t.Error("the interrupted Spot offering is not marked unavailable")
		}
		if n, err := e.cluster.GetNode(e.ctx, "spot-1"); err != nil || !n.Spec.Unschedulable {
			t.Errorf("node not cordoned when Handle returned: %v", err)
		}

		e.settle(time.Second, 3*time.Minute)
		at, ok := e.deletedAt("spot-1")
		if !ok {
			t.Fatal("interrupted node not deleted")
		}
		t.Logf("interrupted node deleted %v after the notice", at.Sub(t0))
		// Replacement Ready at +30 s; the budget lets the pods go one by one
		// as their replacements start.
		if at.Before(t0.Add(30*time.Second)) || !at.Before(msg.Deadline) {
			t.Errorf("node deleted at +%v, want after the replacement is Ready (+30s) and before the deadline", at.Sub(t0))
		}
		byNode := e.appPodsByNode()
		if byNode["replacement-1"] != 3 || len(byNode) != 1 {
			t.Errorf("app pods by node = %v, want all 3 on replacement-1", byNode)
		}
		if e.replacer.calls != 1 || e.replacer.podsSeen != 3 {
			t.Errorf("Replace called %d times for %d pods, want once for the 3 app pods (not daemonset or mirror pods)", e.replacer.calls, e.replacer.podsSeen)
		}
		if !e.replacer.at[0].Equal(t0) {
			t.Errorf("replacement launched at %v, want at once (%v)", e.replacer.at[0], t0)
		}
		if got := e.action(KindSpotInterruption, ActionForceDelete); got != 0 {
			t.Errorf("%v pods force-deleted; the budget should have let them go in time", got)
		}
		if got := value(t, e.metrics.DeadlineMisses.WithLabelValues(string(KindSpotInterruption))); got != 0 {
			t.Errorf("deadline misses = %v", got)
		}
		if got := value(t, e.metrics.DrainDuration.WithLabelValues(string(KindSpotInterruption)).(prometheus.Metric)); got != 1 {
			t.Errorf("drain duration samples = %v, want 1", got)
		}
		// The pool is skipped for three minutes from the notice.
		e.clock.SetTime(t0.Add(3*time.Minute - time.Second))
		if !e.unavail.IsUnavailable("spot", "m5.large", "us-east-1a") {
			t.Error("offering available again before 3 minutes")
		}
		e.clock.SetTime(t0.Add(3 * time.Minute))
		if e.unavail.IsUnavailable("spot", "m5.large", "us-east-1a") {
			t.Error("offering still unavailable after 3 minutes")
		}
	})
}

func TestHandlerDuplicatesActOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.spotNode()
		msg := spotMsg("spot-1", spotInstance, e.clock.Now())
		again := msg
		again.ID = "another-delivery-of-the-same-notice"
		for _, m := range []Message{msg, msg, again} {
			if err := e.handler.Handle(e.ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		e.settle(time.Second, 3*time.Minute)
		// And once more after the node is gone, as a late redelivery would.
		if err := e.handler.Handle(e.ctx, msg); err != nil {
			t.Fatal(err)
		}
		e.settle(time.Second, time.Minute)
		if e.replacer.calls != 1 {
			t.Errorf("Replace called %d times, want 1", e.replacer.calls)
		}
		if got := e.action(KindSpotInterruption, ActionDuplicate); got != 3 {
			t.Errorf("duplicates counted = %v, want 3", got)
		}
		if got := e.action(KindSpotInterruption, ActionDeleteNode); got != 1 {
			t.Errorf("node deletions = %v, want 1", got)
		}
		if got := value(t, e.metrics.MessagesReceived.WithLabelValues(string(KindSpotInterruption))); got != 4 {
			t.Errorf("messages received = %v, want 4", got)
		}
		if byNode := e.appPodsByNode(); byNode["replacement-1"] != 3 {
			t.Errorf("app pods by node = %v", byNode)
		}
	})
}

// TestHandlerForceDeletesBeforeDeadline: a budget that never allows an
// eviction cannot keep the pod past the point where its grace period still
// fits before the instance goes.
func TestHandlerForceDeletesBeforeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.budgetHeldNode()
		msg := spotMsg("spot-1", spotInstance, e.clock.Now())
		if err := e.handler.Handle(e.ctx, msg); err != nil {
			t.Fatal(err)
		}
		e.settle(time.Second, 3*time.Minute)
		at, ok := e.deletedAt("spot-1")
		if !ok {
			t.Fatal("node not deleted")
		}
		// Deadline 2:00, margin 15 s, grace 40 s: the pod goes at 1:05.
		forceAt := msg.Deadline.Add(-DefaultDeadlineMargin - 40*time.Second)
		if at.Before(forceAt) || !at.Before(msg.Deadline.Add(-DefaultDeadlineMargin)) {
			t.Errorf("node deleted at +%v, want between +%v and +%v", at.Sub(t0), forceAt.Sub(t0), msg.Deadline.Add(-DefaultDeadlineMargin).Sub(t0))
		}
		if got := e.action(KindSpotInterruption, ActionForceDelete); got != 1 {
			t.Errorf("force deletions = %v, want 1", got)
		}
		if byNode := e.appPodsByNode(); byNode["replacement-1"] != 1 {
			t.Errorf("the held pod was not re-created on the replacement: %v", byNode)
		}
	})
}

func TestHandlerLateNoticeCountsDeadlineMiss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.spotNode()
		// Delivered three minutes late: the instance is already gone.
		msg := spotMsg("late", spotInstance, e.clock.Now().Add(-3*time.Minute))
		if err := e.handler.Handle(e.ctx, msg); err != nil {
			t.Fatal(err)
		}
		e.settle(time.Second, time.Minute)
		if _, ok := e.deletedAt("spot-1"); !ok {
			t.Fatal("node not deleted")
		}
		if got := value(t, e.metrics.DeadlineMisses.WithLabelValues(string(KindSpotInterruption))); got != 1 {
			t.Errorf("deadline misses = %v, want 1", got)
		}
		if byNode := e.appPodsByNode(); byNode["replacement-1"] != 3 {
			t.Errorf("pods lost with the node: %v", byNode)
		}
	})
}

func TestHandlerStateChange(t *testing.T) {
	for _, tc := range []struct {
		state string
		acts  bool
	}{
		{StateStopping, true}, {StateStopped, true}, {StateShuttingDown, true}, {StateTerminated, true},
		{"running", false}, {"pending", false},
	} {
		t.Run(tc.state, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, HandlerOptions{})
				e.spotNode()
				msg := Message{ID: "sc", Kind: KindStateChange, InstanceIDs: []string{spotInstance}, Time: t0, Deadline: t0, State: tc.state}
				if err := e.handler.Handle(e.ctx, msg); err != nil {
					t.Fatal(err)
				}
				e.settle(time.Second, time.Minute)
				_, deleted := e.deletedAt("spot-1")
				if deleted != tc.acts {
					t.Fatalf("node deleted = %v, want %v", deleted, tc.acts)
				}
				if !tc.acts {
					if got := e.action(KindStateChange, ActionIgnored); got != 1 {
						t.Errorf("ignored = %v, want 1", got)
					}
					return
				}
				if byNode := e.appPodsByNode(); byNode["replacement-1"] != 3 {
					t.Errorf("app pods by node = %v, want 3 re-provisioned on replacement-1", byNode)
				}
				if e.unavail.IsUnavailable("spot", "m5.large", "us-east-1a") {
					t.Error("a state change marked the offering unavailable")
				}
			})
		})
	}
}

func TestHandlerUnknownInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.spotNode()
		if err := e.handler.Handle(e.ctx, spotMsg("x", "i-00000000000000001", t0)); err != nil {
			t.Fatal(err)
		}
		if got := e.action(KindSpotInterruption, ActionUnknownNode); got != 1 {
			t.Errorf("unknown-node = %v, want 1", got)
		}
		if n, _ := e.cluster.GetNode(e.ctx, "spot-1"); n.Spec.Unschedulable {
			t.Error("an unrelated node was cordoned")
		}
	})
}

func TestHandlerRefusesWhenClusterFails(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	h, err := NewHandler(HandlerOptions{Cluster: failingCluster{provisioning.NewMemoryCluster(clk, provisioning.MemoryClusterOptions{})}, Clock: clk, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	msg := spotMsg("x", spotInstance, t0)
	if err := h.Handle(context.Background(), msg); err == nil {
		t.Fatal("Handle succeeded without a cluster")
	}
	// Not remembered: the redelivery is acted on.
	if len(h.nodes) != 0 {
		t.Errorf("a failed notice left %d entries in the handler's memory", len(h.nodes))
	}
}

type failingCluster struct{ *provisioning.MemoryCluster }

func (failingCluster) ListNodes(context.Context) ([]*corev1.Node, error) {
	return nil, errors.New("apiserver unavailable")
}

func TestNewHandlerValidates(t *testing.T) {
	c := provisioning.NewMemoryCluster(testingclock.NewFakeClock(t0), provisioning.MemoryClusterOptions{})
	for name, opts := range map[string]HandlerOptions{
		"no cluster":      {},
		"bad mode":        {Cluster: c, RebalanceMode: "sometimes"},
		"share above 1":   {Cluster: c, RebalanceMaxShare: 1.5},
		"negative margin": {Cluster: c, DeadlineMargin: -time.Second},
		"negative work":   {Cluster: c, Workers: -1},
	} {
		if _, err := NewHandler(opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestInstanceIDFromProviderID(t *testing.T) {
	for in, want := range map[string]string{
		"aws:///us-east-1a/i-0b662ef9931388ba0": "i-0b662ef9931388ba0",
		"aws:///us-east-1a/i-0123abcd":          "i-0123abcd",
		"aws:///us-east-1a/":                    "",
		"gce://p/z/i-0b662ef9931388ba0":         "",
		"":                                      "",
	} {
		if got := instanceIDFromProviderID(in); got != want {
			t.Errorf("instanceIDFromProviderID(%q) = %q, want %q", in, got, want)
		}
	}
}

func rebalanceMsg(id, instanceID string) Message {
	return Message{ID: id, Kind: KindRebalanceRecommendation, InstanceIDs: []string{instanceID}, Time: t0}
}

// waitFor lets the bubble's goroutines run until all are blocked (no
// clock movement) and checks cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	synctest.Wait()
	if !cond() {
		t.Fatalf("%s did not happen", what)
	}
}

func (r *fakeReplacer) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func TestHandlerRebalanceReplacesBeforeDraining(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.spotNode()
		if err := e.handler.Handle(e.ctx, rebalanceMsg("rb", spotInstance)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the replacement launch", func() bool { return e.replacer.callCount() == 1 })
		// Until the replacement is Ready (+30 s) the at-risk node keeps
		// serving and stays schedulable.
		e.settle(time.Second, 29*time.Second)
		if n, err := e.cluster.GetNode(e.ctx, "spot-1"); err != nil || n.Spec.Unschedulable {
			t.Fatalf("at-risk node cordoned before its replacement was Ready (err %v)", err)
		}
		if byNode := e.appPodsByNode(); byNode["spot-1"] != 3 {
			t.Fatalf("pods moved before the replacement was Ready: %v", byNode)
		}
		e.settle(time.Second, 5*time.Minute)
		at, ok := e.deletedAt("spot-1")
		if !ok || at.Before(t0.Add(30*time.Second)) {
			t.Fatalf("at-risk node deleted=%v at +%v, want after the replacement is Ready", ok, at.Sub(t0))
		}
		if byNode := e.appPodsByNode(); byNode["replacement-1"] != 3 || len(byNode) != 1 {
			t.Errorf("app pods by node = %v, want all on replacement-1", byNode)
		}
		if e.unavail.IsUnavailable("spot", "m5.large", "us-east-1a") {
			t.Error("a rebalance recommendation marked the offering unavailable")
		}
		// A Spot warning for the same node later acts (another kind) but finds
		// nothing left to do.
		if err := e.handler.Handle(e.ctx, spotMsg("spot", spotInstance, e.clock.Now())); err != nil {
			t.Fatal(err)
		}
		if got := e.action(KindSpotInterruption, ActionUnknownNode); got != 1 {
			t.Errorf("spot warning after the rebalance: unknown-node = %v, want 1", got)
		}
	})
}

func TestHandlerRebalanceThenSpotLaunchesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.spotNode()
		if err := e.handler.Handle(e.ctx, rebalanceMsg("rb", spotInstance)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the replacement launch", func() bool { return e.replacer.callCount() == 1 })
		// The warning arrives while the replacement boots.
		e.settle(time.Second, 10*time.Second)
		if err := e.handler.Handle(e.ctx, spotMsg("spot", spotInstance, e.clock.Now())); err != nil {
			t.Fatal(err)
		}
		e.settle(time.Second, 3*time.Minute)
		if e.replacer.callCount() != 1 {
			t.Errorf("Replace called %d times, want 1", e.replacer.callCount())
		}
		if _, ok := e.deletedAt("spot-1"); !ok {
			t.Error("node not deleted")
		}
		if byNode := e.appPodsByNode(); byNode["replacement-1"] != 3 {
			t.Errorf("app pods by node = %v", byNode)
		}
	})
}

func TestHandlerRebalanceModes(t *testing.T) {
	t.Run("cordon-only", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, HandlerOptions{RebalanceMode: RebalanceCordonOnly})
			e.spotNode()
			if err := e.handler.Handle(e.ctx, rebalanceMsg("rb", spotInstance)); err != nil {
				t.Fatal(err)
			}
			if n, _ := e.cluster.GetNode(e.ctx, "spot-1"); !n.Spec.Unschedulable {
				t.Error("not cordoned")
			}
			e.settle(time.Second, time.Minute)
			if e.replacer.callCount() != 0 || e.appPodsByNode()["spot-1"] != 3 {
				t.Errorf("cordon-only replaced (%d) or drained (%v)", e.replacer.callCount(), e.appPodsByNode())
			}
		})
	})
	t.Run("off", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, HandlerOptions{RebalanceMode: RebalanceOff})
			e.spotNode()
			if err := e.handler.Handle(e.ctx, rebalanceMsg("rb", spotInstance)); err != nil {
				t.Fatal(err)
			}
			e.settle(time.Second, time.Minute)
			if n, _ := e.cluster.GetNode(e.ctx, "spot-1"); n.Spec.Unschedulable || e.replacer.callCount() != 0 {
				t.Error("off mode acted")
			}
			if got := e.action(KindRebalanceRecommendation, ActionIgnored); got != 1 {
				t.Errorf("ignored = %v, want 1", got)
			}
		})
	})
	t.Run("replacement fails", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, HandlerOptions{})
			e.spotNode()
			e.replacer.err = errors.New("no capacity anywhere")
			if err := e.handler.Handle(e.ctx, rebalanceMsg("rb", spotInstance)); err != nil {
				t.Fatal(err)
			}
			e.settle(time.Second, time.Minute)
			if n, _ := e.cluster.GetNode(e.ctx, "spot-1"); !n.Spec.Unschedulable {
				t.Error("not cordoned after the failed replacement")
			}
			if got := e.action(KindRebalanceRecommendation, ActionReplacementFailed); got != 1 {
				t.Errorf("replacement-failed = %v, want 1", got)
			}
			if n, _ := e.cluster.GetNode(e.ctx, "spot-1"); n.Annotations[AnnotationRecord] != "" {
				t.Errorf("the given-up rebalance is still recorded (%s), so a restart would take it up again", n.Annotations[AnnotationRecord])
			}
			if byNode := e.appPodsByNode(); byNode["spot-1"] != 3 {
				t.Errorf("drained without a replacement: %v", byNode)
			}
			// The Spot warning that follows tries the replacement again.
			e.replacer.mu.Lock()
			e.replacer.err = nil
			e.replacer.mu.Unlock()
			if err := e.handler.Handle(e.ctx, spotMsg("spot", spotInstance, e.clock.Now())); err != nil {
				t.Fatal(err)
			}
			e.settle(time.Second, 3*time.Minute)
			if e.replacer.callCount() != 2 {
				t.Errorf("Replace called %d times, want 2", e.replacer.callCount())
			}
			if byNode := e.appPodsByNode(); byNode["replacement-2"] != 3 {
				t.Errorf("app pods by node = %v, want all on replacement-2", byNode)
			}
		})
	})
	t.Run("drain times out", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, HandlerOptions{RebalanceDrainTimeout: 10 * time.Second})
			e.spotNode()
			// A budget that lets no web pod go holds the drain past its timeout.
			all := intstr.FromInt32(3)
			if err := e.cluster.CreatePDB(e.ctx, &policyv1.PodDisruptionBudget{
				ObjectMeta: metav1.ObjectMeta{Name: "web-all", Namespace: "default"},
				Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &all, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
			}); err != nil {
				t.Fatal(err)
			}
			if err := e.handler.Handle(e.ctx, rebalanceMsg("rb", spotInstance)); err != nil {
				t.Fatal(err)
			}
			e.settle(time.Second, time.Minute)
			if n, err := e.cluster.GetNode(e.ctx, "spot-1"); err != nil || !n.Spec.Unschedulable || n.Annotations[AnnotationRecord] != "" {
				t.Fatalf("after the drain's timeout: node %v (err %v), want it kept, cordoned, its record removed", n, err)
			}
			if got := e.action(KindRebalanceRecommendation, ActionDrainTimeout); got != 1 {
				t.Errorf("drain-timeout = %v, want 1", got)
			}
			if got := value(t, e.metrics.DrainDuration.WithLabelValues(string(KindRebalanceRecommendation)).(prometheus.Metric)); got != 1 {
				t.Errorf("drain duration samples = %v, want 1 (the drain that timed out)", got)
			}
		})
	})
	t.Run("replacement never ready", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, HandlerOptions{ReplacementReadyTimeout: 10 * time.Second})
			e.spotNode()
			if err := e.handler.Handle(e.ctx, rebalanceMsg("rb", spotInstance)); err != nil {
				t.Fatal(err)
			}
			e.settle(time.Second, 20*time.Second)
			if n, _ := e.cluster.GetNode(e.ctx, "spot-1"); !n.Spec.Unschedulable {
				t.Error("not cordoned after the timeout")
			}
			if got := e.action(KindRebalanceRecommendation, ActionReplacementTimeout); got != 1 {
				t.Errorf("replacement-timeout = %v, want 1", got)
			}
			if n, _ := e.cluster.GetNode(e.ctx, "spot-1"); n.Annotations[AnnotationRecord] != "" {
				t.Errorf("the given-up rebalance is still recorded (%s), so a restart would take it up again", n.Annotations[AnnotationRecord])
			}
			if byNode := e.appPodsByNode(); byNode["spot-1"] != 3 {
				t.Errorf("drained without a ready replacement: %v", byNode)
			}
		})
	})
}

// TestHandlerRebalanceShare: ten nodes of a NodePool get recommendations at
// once; with a 20% share no more than two are being replaced at a time, and
// all ten are replaced in the end.
func TestHandlerRebalanceShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{RebalanceMaxShare: 0.2})
		const n = 10
		for i := range n {
			id := fmt.Sprintf("i-%017x", 0xa00+i)
			e.mustCreateNode(node(fmt.Sprintf("pool-%d", i), id, "spot", "m5.large", "us-east-1a", "default"))
			e.mustCreatePod(appPod(fmt.Sprintf("app-%d", i), fmt.Sprintf("app-%d", i), fmt.Sprintf("pool-%d", i), 10))
		}
		var mu sync.Mutex
		worst := 0
		e.replacer.onReplace = func() {
			nodes, _ := e.cluster.ListNodes(e.ctx)
			remaining := 0
			for _, nd := range nodes {
				if nd.Labels[offerings.LabelNodePool] == "default" {
					remaining++
				}
			}
			e.replacer.mu.Lock()
			inProgress := e.replacer.calls - (n - remaining)
			e.replacer.mu.Unlock()
			mu.Lock()
			worst = max(worst, inProgress)
			mu.Unlock()
		}
		for i := range n {
			if err := e.handler.Handle(e.ctx, rebalanceMsg(fmt.Sprintf("rb-%d", i), fmt.Sprintf("i-%017x", 0xa00+i))); err != nil {
				t.Fatal(err)
			}
		}
		e.settle(time.Second, time.Hour)
		mu.Lock()
		defer mu.Unlock()
		if worst > 2 {
			t.Errorf("%d nodes of the pool were being replaced at once, want at most 2", worst)
		}
		if worst < 1 {
			t.Errorf("no replacement observed")
		}
		nodes, _ := e.cluster.ListNodes(e.ctx)
		for _, nd := range nodes {
			if nd.Labels[offerings.LabelNodePool] == "default" {
				t.Errorf("node %s not replaced", nd.Name)
			}
		}
		if byNode := e.appPodsByNode(); byNode[""] != 0 {
			t.Errorf("%d pods left pending", byNode[""])
		}
		if got := e.action(KindRebalanceRecommendation, ActionDeferred); got == 0 {
			t.Error("no rebalance was deferred by the share limit")
		}
	})
}

// TestHandlerStorm: 500 Spot warnings at once are handled by at most 8
// workers, every node is gone before its deadline and no pod is lost.
func TestHandlerStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const workers, n = 8, 500
		e := newEnv(t, HandlerOptions{Workers: workers})
		for i := range n {
			id := fmt.Sprintf("i-%017x", 0xb000+i)
			e.mustCreateNode(node(fmt.Sprintf("spot-%d", i), id, "spot", "m5.large", "us-east-1a", "default"))
			e.mustCreatePod(appPod(fmt.Sprintf("app-%d", i), "app", fmt.Sprintf("spot-%d", i), 10))
			e.mustCreatePod(daemonPod(fmt.Sprintf("agent-%d", i), fmt.Sprintf("spot-%d", i)))
		}
		for i := range n {
			if err := e.handler.Handle(e.ctx, spotMsg(fmt.Sprintf("m-%d", i), fmt.Sprintf("i-%017x", 0xb000+i), t0)); err != nil {
				t.Fatal(err)
			}
		}
		// Replacements become Ready after 30 s; the pods move then.
		e.settle(time.Second, 2*time.Minute)
		if p := e.peak(); p > workers {
			t.Errorf("peak concurrent evictions and node deletions %d, want at most %d", p, workers)
		}
		if e.replacer.peak > workers {
			t.Errorf("peak concurrent replacements %d, want at most %d", e.replacer.peak, workers)
		}
		for i := range n {
			at, ok := e.deletedAt(fmt.Sprintf("spot-%d", i))
			if !ok || !at.Before(t0.Add(NoticePeriod)) {
				t.Fatalf("spot-%d deleted=%v at +%v, want before the deadline", i, ok, at.Sub(t0))
			}
		}
		byNode := e.appPodsByNode()
		total := 0
		for nodeName, c := range byNode {
			if nodeName == "" {
				t.Errorf("%d pods pending", c)
			}
			total += c
		}
		if total != n {
			t.Errorf("%d app pods exist, want %d", total, n)
		}
		if got := value(t, e.metrics.DeadlineMisses.WithLabelValues(string(KindSpotInterruption))); got != 0 {
			t.Errorf("deadline misses = %v", got)
		}
		if c, sum := unavailableFor(t, e.metrics, KindSpotInterruption); c != n || sum != 0 {
			t.Errorf("pod unavailability: %d samples summing %vs, want %d of 0s", c, sum, n)
		}
		var last time.Time
		for i := range n {
			at, _ := e.deletedAt(fmt.Sprintf("spot-%d", i))
			last = maxTime(last, at)
		}
		t.Logf("%d notices: last node deleted %v after them (virtual time), peak %d evictions and deletions at once, %d concurrent replacements", n, last.Sub(t0), e.peak(), e.replacer.peak)
	})
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
