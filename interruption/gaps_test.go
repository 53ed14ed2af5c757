package interruption

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/fleetpack/fleetpack/provisioning"
)

// TestHandlerWarningsEvictOnceReplacementReady: for a Spot warning and a
// capacity-reservation warning the node is cordoned and the replacement
// launched at once, and nothing is evicted until the replacement is Ready
// (+30 s): no pod is ever without a running replacement.
func TestHandlerWarningsEvictOnceReplacementReady(t *testing.T) {
	for _, kind := range []Kind{KindSpotInterruption, KindCapacityReservationInterruption} {
		t.Run(string(kind), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, HandlerOptions{})
				e.spotNode()
				msg := spotMsg("w", spotInstance, t0)
				msg.Kind = kind
				if err := e.handler.Handle(e.ctx, msg); err != nil {
					t.Fatal(err)
				}
				e.settle(time.Second, 3*time.Minute)
				if !e.replacer.at[0].Equal(t0) {
					t.Errorf("replacement launched at +%v, want at once", e.replacer.at[0].Sub(t0))
				}
				if want := t0.Add(30 * time.Second); !e.firstEviction.Equal(want) {
					t.Errorf("first eviction at +%v, want when the replacement is Ready (+30s)", e.firstEviction.Sub(t0))
				}
				if at, ok := e.deletedAt("spot-1"); !ok || !at.Before(msg.Deadline.Add(-DefaultDeadlineMargin)) {
					t.Errorf("node deleted=%v at +%v, want before the deadline less the margin", ok, at.Sub(t0))
				}
				if n, sum := unavailableFor(t, e.metrics, kind); n != 3 || sum != 0 {
					t.Errorf("pod unavailability: %d samples summing %vs, want 3 of 0s", n, sum)
				}
			})
		})
	}
}

// TestHandlerWarningFallsBackWhenReplacementIsSlow: a replacement that is
// not Ready in time does not hold the drain past deadline - margin -
// longest grace period - margin.
func TestHandlerWarningFallsBackWhenReplacementIsSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnvReadyAfter(t, HandlerOptions{}, 100*time.Second)
		e.spotNode() // grace periods 20 s
		msg := spotMsg("w", spotInstance, t0)
		if err := e.handler.Handle(e.ctx, msg); err != nil {
			t.Fatal(err)
		}
		e.settle(time.Second, 3*time.Minute)
		want := msg.Deadline.Add(-DefaultDeadlineMargin - 20*time.Second - DefaultDeadlineMargin)
		if !e.firstEviction.Equal(want) {
			t.Errorf("first eviction at +%v, want +%v", e.firstEviction.Sub(t0), want.Sub(t0))
		}
		if at, ok := e.deletedAt("spot-1"); !ok || !at.Before(msg.Deadline.Add(-DefaultDeadlineMargin)) {
			t.Errorf("node deleted=%v at +%v, want before the deadline less the margin", ok, at.Sub(t0))
		}
		if got := value(t, e.metrics.DeadlineMisses.WithLabelValues(string(KindSpotInterruption))); got != 0 {
			t.Errorf("deadline misses = %v", got)
		}
	})
}

// deadCluster is the cluster as a process that has stopped sees it: once
// dead is set none of its writes land.
type deadCluster struct {
	*recordingCluster
	dead *atomic.Bool
}

func (c deadCluster) AnnotateNode(ctx context.Context, name string, a map[string]string) error {
	if c.dead.Load() {
		return errors.New("the process is gone")
	}
	return c.recordingCluster.AnnotateNode(ctx, name, a)
}

// crashInReplace launches the replacement and then the process dies before
// Replace returns.
type crashInReplace struct {
	inner Replacer
	crash func()
}

func (r crashInReplace) Replace(ctx context.Context, pods []*corev1.Pod) ([]*corev1.Node, error) {
	_, _ = r.inner.Replace(ctx, pods)
	r.crash()
	return nil, context.Canceled
}

// TestHandlerNoSecondReplacementAfterCrashDuringLaunch: the launch is
// recorded on the node before Replace is called, so a process that dies
// inside Replace leaves a trace, and its successor waits for the capacity
// that registered rather than launching again.
func TestHandlerNoSecondReplacementAfterCrashDuringLaunch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.spotNode()
		e.stopHandler()
		var dead atomic.Bool
		e.newHandler(HandlerOptions{
			Cluster:  deadCluster{&recordingCluster{MemoryCluster: e.cluster, env: e}, &dead},
			Replacer: crashInReplace{e.replacer, func() { dead.Store(true); e.cancelHandler() }},
		})
		e.runHandler()
		msg := spotMsg("spot-1", spotInstance, t0)
		if err := e.handler.Handle(e.ctx, msg); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the launch", func() bool { return e.replacer.callCount() == 1 })
		e.stopHandler()
		if rec := e.record("spot-1"); rec == nil || rec.LaunchStarted.IsZero() || rec.Replaced {
			t.Fatalf("record after the crash = %+v, want the launch begun and no result", rec)
		}

		e.clock.Step(5 * time.Second)
		e.restart(HandlerOptions{}, KindSpotInterruption)
		e.settle(time.Second, 3*time.Minute)
		if got := e.replacer.callCount(); got != 1 {
			t.Errorf("Replace called %d times across the crash, want 1", got)
		}
		if at, ok := e.deletedAt("spot-1"); !ok || !at.Before(msg.Deadline) {
			t.Fatalf("node deleted=%v at +%v", ok, at.Sub(t0))
		}
		if want := t0.Add(30 * time.Second); e.firstEviction.Before(want) {
			t.Errorf("evicted at +%v, before the replacement launched before the crash was Ready (+30s)", e.firstEviction.Sub(t0))
		}
		if byNode := e.appPodsByNode(); byNode["replacement-1"] != 3 || len(byNode) != 1 {
			t.Errorf("app pods by node = %v, want all 3 on replacement-1", byNode)
		}
	})
}

// heldReplacer holds its first Replace until release is closed.
type heldReplacer struct {
	inner   Replacer
	once    sync.Once
	release chan struct{}
}

func (r *heldReplacer) Replace(ctx context.Context, pods []*corev1.Pod) ([]*corev1.Node, error) {
	first := false
	r.once.Do(func() { first = true })
	if first {
		select {
		case <-r.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return r.inner.Replace(ctx, pods)
}

// TestHandlerSpotDuringRebalanceLaunchGetsItsOwnReplacement: the Spot
// warning comes while the rebalance's replacement is still launching (chosen
// before the pool was marked); the warning launches its own.
func TestHandlerSpotDuringRebalanceLaunchGetsItsOwnReplacement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		held := &heldReplacer{release: make(chan struct{})}
		e := newEnv(t, HandlerOptions{})
		held.inner = e.replacer
		e.stopHandler()
		e.startHandler(HandlerOptions{Replacer: held})
		e.spotNode()
		if err := e.handler.Handle(e.ctx, rebalanceMsg("rb", spotInstance)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the rebalance's launch is under way, held
		spot := spotMsg("spot", spotInstance, t0)
		if err := e.handler.Handle(e.ctx, spot); err != nil {
			t.Fatal(err)
		}
		close(held.release)
		e.settle(time.Second, 3*time.Minute)
		if got := e.replacer.callCount(); got != 2 {
			t.Errorf("Replace called %d times, want 2 (the rebalance's and the warning's own)", got)
		}
		if at, ok := e.deletedAt("spot-1"); !ok || !at.Before(spot.Deadline) {
			t.Fatalf("node deleted=%v at +%v", ok, at.Sub(t0))
		}
		if want := t0.Add(30 * time.Second); e.firstEviction.Before(want) {
			t.Errorf("evicted at +%v, before the warning's replacement was Ready", e.firstEviction.Sub(t0))
		}
	})
}

// TestHandlerMemoryBounded: the handler forgets finished nodes DedupeTTL
// after their work ended, and keeps at most maxFinished of them.
func TestHandlerMemoryBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		const n = 20
		for i := range n {
			name, id := fmt.Sprintf("spot-%d", i), fmt.Sprintf("i-%017x", 0xc000+i)
			e.mustCreateNode(node(name, id, "spot", "m5.large", "us-east-1a", "default"))
			e.mustCreatePod(appPod(fmt.Sprintf("app-%d", i), "app", name, 10))
			if err := e.handler.Handle(e.ctx, spotMsg(fmt.Sprintf("m-%d", i), id, e.clock.Now())); err != nil {
				t.Fatal(err)
			}
		}
		e.settle(time.Second, 3*time.Minute)
		e.handler.mu.Lock()
		remembered := len(e.handler.nodes)
		e.handler.mu.Unlock()
		if remembered != n {
			t.Fatalf("%d nodes remembered after the work, want %d (for redeliveries)", remembered, n)
		}
		e.clock.Step(DefaultDedupeTTL)
		e.handler.Step(e.ctx) // safe here: Run waits, the bubble is idle
		e.handler.mu.Lock()
		remembered = len(e.handler.nodes)
		e.handler.mu.Unlock()
		if remembered != 0 {
			t.Errorf("%d nodes remembered DedupeTTL after their work ended, want 0", remembered)
		}

		// However many finished at once, at most maxFinished are kept.
		h := e.handler
		h.mu.Lock()
		for i := range maxFinished + 100 {
			id := fmt.Sprintf("i-%017x", i)
			h.nodes[id] = &nodeWork{instanceID: id, seen: map[Kind]bool{}, finishedAt: e.clock.Now().Add(time.Duration(i))}
		}
		h.pruneLocked(e.clock.Now())
		kept := len(h.nodes)
		_, oldestKept := h.nodes[fmt.Sprintf("i-%017x", 99)]
		h.mu.Unlock()
		if kept != maxFinished || oldestKept {
			t.Errorf("kept %d finished entries (oldest kept: %v), want the newest %d", kept, oldestKept, maxFinished)
		}
	})
}

// failingDeletes fails the first failures node deletions, and records when
// each was tried.
type failingDeletes struct {
	*recordingCluster
	mu       sync.Mutex
	failures int
	tries    []time.Time
}

func (c *failingDeletes) DeleteNode(ctx context.Context, name string) error {
	c.mu.Lock()
	fail := c.failures > 0
	c.failures--
	c.tries = append(c.tries, c.env.clock.Now())
	c.mu.Unlock()
	if fail {
		return errors.New("apiserver unavailable")
	}
	return c.recordingCluster.DeleteNode(ctx, name)
}

// TestHandlerRetriesFailedNodeDeletion: a node deletion that fails is tried
// again with backoff by the same process.
func TestHandlerRetriesFailedNodeDeletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.spotNode()
		e.stopHandler()
		cluster := &failingDeletes{recordingCluster: &recordingCluster{MemoryCluster: e.cluster, env: e}, failures: 2}
		e.startHandler(HandlerOptions{Cluster: cluster})
		msg := spotMsg("spot-1", spotInstance, t0)
		if err := e.handler.Handle(e.ctx, msg); err != nil {
			t.Fatal(err)
		}
		e.settle(time.Second, 3*time.Minute)
		at, ok := e.deletedAt("spot-1")
		if !ok || !at.Before(msg.Deadline) {
			t.Fatalf("node deleted=%v at +%v, want retried before the deadline", ok, at.Sub(t0))
		}
		// Tried once drained, then again after 1 s and 2 s.
		cluster.mu.Lock()
		tries := cluster.tries
		cluster.mu.Unlock()
		if len(tries) != 3 || tries[1].Sub(tries[0]) != time.Second || tries[2].Sub(tries[1]) != 2*time.Second || !at.Equal(tries[2]) {
			t.Errorf("deletion tried at %v, deleted at %v; want three tries 1 s then 2 s apart, the last deleting", tries, at)
		}
		if got := e.action(KindSpotInterruption, ActionDeleteNode); got != 1 {
			t.Errorf("node deletions = %v, want 1", got)
		}
	})
}

// TestHandlerScheduledChangeWaitsForItsLead: a scheduled change an hour
// ahead leaves the node serving until ScheduledChangeLead before the start;
// then it is cordoned, replaced, drained once the replacement is Ready and
// removed just before the start.
func TestHandlerScheduledChangeWaitsForItsLead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.spotNode()
		start := t0.Add(time.Hour)
		msg := Message{ID: "health", Kind: KindScheduledChange, InstanceIDs: []string{spotInstance}, Time: t0, Deadline: start, Action: "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"}
		if err := e.handler.Handle(e.ctx, msg); err != nil {
			t.Fatal(err)
		}
		lead := start.Add(-DefaultScheduledChangeLead)
		e.settle(time.Second, lead.Add(-time.Second).Sub(t0))
		if n, _ := e.cluster.GetNode(e.ctx, "spot-1"); n.Spec.Unschedulable {
			t.Error("node cordoned long before the change")
		}
		if got := e.replacer.callCount(); got != 0 || e.appPodsByNode()["spot-1"] != 3 {
			t.Fatalf("acted %v before the lead: %d replacements, pods %v", lead.Sub(e.clock.Now()), got, e.appPodsByNode())
		}
		e.settle(time.Second, time.Hour)
		if !e.replacer.at[0].Equal(lead) {
			t.Errorf("replacement launched at +%v, want +%v", e.replacer.at[0].Sub(t0), lead.Sub(t0))
		}
		at, ok := e.deletedAt("spot-1")
		if !ok || at.Before(lead) || !at.Before(start.Add(-DefaultDeadlineMargin)) {
			t.Fatalf("node deleted=%v at +%v, want between +%v and +%v", ok, at.Sub(t0), lead.Sub(t0), start.Add(-DefaultDeadlineMargin).Sub(t0))
		}
		if want := lead.Add(30 * time.Second); !e.firstEviction.Equal(want) {
			t.Errorf("first eviction at +%v, want when the replacement is Ready (+%v)", e.firstEviction.Sub(t0), want.Sub(t0))
		}
	})
}

// TestHandlerBarePodsGetNoReplacement: pods without a controller are not
// re-created once evicted, so no capacity is launched for them; the log
// and an event on the node say they will be lost.
func TestHandlerBarePodsGetNoReplacement(t *testing.T) {
	for _, withApp := range []bool{false, true} {
		t.Run(fmt.Sprintf("with controller pods %v", withApp), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, HandlerOptions{})
				e.mustCreateNode(node("spot-1", spotInstance, "spot", "m5.large", "us-east-1a", "default"))
				bare := appPod("debug", "debug", "spot-1", 5)
				bare.OwnerReferences = nil
				e.mustCreatePod(bare)
				if withApp {
					e.mustCreatePod(appPod("web-0", "web", "spot-1", 5))
				}
				if err := e.handler.Handle(e.ctx, spotMsg("w", spotInstance, t0)); err != nil {
					t.Fatal(err)
				}
				e.settle(time.Second, 3*time.Minute)
				wantCalls, wantPods := 0, 0
				if withApp {
					wantCalls, wantPods = 1, 1
				}
				if e.replacer.callCount() != wantCalls || e.replacer.podsSeen != wantPods {
					t.Errorf("Replace called %d times for %d pods, want %d for %d", e.replacer.callCount(), e.replacer.podsSeen, wantCalls, wantPods)
				}
				if _, ok := e.deletedAt("spot-1"); !ok {
					t.Error("node not removed")
				}
				var found bool
				for _, ev := range e.cluster.Events() {
					if ev.Object == "Node spot-1" && ev.Reason == "PodsWillBeLost" && ev.Type == corev1.EventTypeWarning && strings.Contains(ev.Message, "default/debug") {
						found = true
					}
				}
				if !found {
					t.Errorf("no PodsWillBeLost event naming default/debug: %+v", e.cluster.Events())
				}
				if got := e.action(KindSpotInterruption, ActionBarePodsLost); got != 1 {
					t.Errorf("bare-pods-lost = %v, want 1", got)
				}
			})
		})
	}
}

func TestDecide(t *testing.T) {
	books := playbooks(HandlerOptions{RebalanceMode: RebalanceReplaceThenDrain, ScheduledChangeLead: 10 * time.Minute})
	cordonOnly := playbooks(HandlerOptions{RebalanceMode: RebalanceCordonOnly})
	off := playbooks(HandlerOptions{RebalanceMode: RebalanceOff})
	n := node("spot-1", spotInstance, "spot", "m5.large", "us-east-1a", "default")
	spot := spotMsg("s", spotInstance, t0)
	rebalance := rebalanceMsg("rb", spotInstance)
	retire := Message{ID: "h", Kind: KindScheduledChange, Deadline: t0.Add(time.Hour)}
	soon := Message{ID: "h2", Kind: KindScheduledChange, Deadline: t0.Add(5 * time.Minute)}
	running := Message{ID: "sc", Kind: KindStateChange, State: "running"}
	spotRec := &record{Kind: KindSpotInterruption, Deadline: spot.Deadline, MessageID: "s"}
	rbRec := &record{Kind: KindRebalanceRecommendation, LaunchStarted: t0}
	seenSpot := map[Kind]bool{KindSpotInterruption: true}
	seenRb := map[Kind]bool{KindRebalanceRecommendation: true}
	for _, tc := range []struct {
		name  string
		books map[Kind]playbook
		m     Message
		node  *corev1.Node
		rec   *record
		mem   memory
		want  decision
	}{
		{"spot warning", books, spot, n, nil, memory{}, decision{write: spotRec, work: spotRec, markPool: true, cordon: true}},
		{"redelivered", books, spot, n, spotRec, memory{own: true, seen: seenSpot}, decision{outcome: ActionDuplicate}},
		{"left by an earlier process", books, spot, n, spotRec, memory{}, decision{work: spotRec, adopt: true, markPool: true, cordon: true}},
		{"node gone, seen", books, spot, nil, nil, memory{own: true, seen: seenSpot}, decision{outcome: ActionDuplicate}},
		{"node unknown", books, spot, nil, nil, memory{}, decision{outcome: ActionUnknownNode}},
		{"rebalance", books, rebalance, n, nil, memory{}, decision{write: &record{Kind: KindRebalanceRecommendation, MessageID: "rb"}, work: &record{Kind: KindRebalanceRecommendation, MessageID: "rb"}}},
		{"rebalance after a warning", books, rebalance, n, spotRec, memory{own: true, seen: seenSpot}, decision{outcome: ActionDuplicate}},
		{"rebalance given up, again", books, rebalance, n, nil, memory{own: true, seen: seenRb}, decision{outcome: ActionDuplicate}},
		{"warning during a rebalance launch", books, spot, n, rbRec, memory{own: true, seen: seenRb, launching: true},
			decision{write: &record{Kind: KindSpotInterruption, Deadline: spot.Deadline, MessageID: "s", LaunchStarted: t0}, work: &record{Kind: KindSpotInterruption, Deadline: spot.Deadline, MessageID: "s", LaunchStarted: t0}, markPool: true, cordon: true, relaunch: true}},
		{"scheduled change far ahead", books, retire, n, nil, memory{}, decision{write: &record{Kind: KindScheduledChange, Deadline: retire.Deadline, MessageID: "h"}, work: &record{Kind: KindScheduledChange, Deadline: retire.Deadline, MessageID: "h"}}},
		{"scheduled change within its lead", books, soon, n, nil, memory{}, decision{write: &record{Kind: KindScheduledChange, Deadline: soon.Deadline, MessageID: "h2"}, work: &record{Kind: KindScheduledChange, Deadline: soon.Deadline, MessageID: "h2"}, cordon: true}},
		{"running state", books, running, n, nil, memory{}, decision{outcome: ActionIgnored}},
		{"cordon-only rebalance", cordonOnly, rebalance, n, nil, memory{}, decision{cordon: true}},
		{"cordon-only rebalance again", cordonOnly, rebalance, n, nil, memory{seen: seenRb}, decision{outcome: ActionDuplicate, cordon: true}},
		{"rebalance off", off, rebalance, n, nil, memory{}, decision{outcome: ActionIgnored}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decide(tc.books, tc.m, tc.node, tc.rec, tc.mem, t0)
			if fmt.Sprintf("%+v", recOf(got.write)) != fmt.Sprintf("%+v", recOf(tc.want.write)) || fmt.Sprintf("%+v", recOf(got.work)) != fmt.Sprintf("%+v", recOf(tc.want.work)) {
				t.Errorf("records: write %+v work %+v, want %+v %+v", recOf(got.write), recOf(got.work), recOf(tc.want.write), recOf(tc.want.work))
			}
			got.write, got.work, tc.want.write, tc.want.work = nil, nil, nil, nil
			if got != tc.want {
				t.Errorf("decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func recOf(r *record) any {
	if r == nil {
		return nil
	}
	return *r
}

// stormStepped handles n Spot warnings at once, one node each, with the
// handler stepped directly (no goroutines: a simulator's way) on a fake
// clock, and returns the handler's metrics, the cluster and when the last
// node was deleted.
func stormStepped(tb testing.TB, n, workers int) (*Metrics, *provisioning.MemoryCluster, time.Duration) {
	tb.Helper()
	ctx := context.Background()
	clk := testingclock.NewFakeClock(t0)
	cluster := provisioning.NewMemoryCluster(clk, provisioning.MemoryClusterOptions{NodeReadyDelay: 30 * time.Second, RecreateControlledPods: true})
	repl := &fakeReplacer{cluster: cluster, clock: clk}
	metrics, err := NewMetrics(nil)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := NewHandler(HandlerOptions{Cluster: cluster, Replacer: repl, Clock: clk, Logger: quietLogger(), Metrics: metrics, Workers: workers})
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		name := fmt.Sprintf("spot-%d", i)
		if err := cluster.CreateNode(ctx, node(name, fmt.Sprintf("i-%017x", 0xb000+i), "spot", "m5.large", "us-east-1a", "default")); err != nil {
			tb.Fatal(err)
		}
		if err := cluster.CreatePod(ctx, appPod(fmt.Sprintf("app-%d", i), "app", name, 10)); err != nil {
			tb.Fatal(err)
		}
	}
	for i := range n {
		if err := h.Handle(ctx, spotMsg(fmt.Sprintf("m-%d", i), fmt.Sprintf("i-%017x", 0xb000+i), t0)); err != nil {
			tb.Fatal(err)
		}
	}
	var last time.Time
	for clk.Now().Before(t0.Add(NoticePeriod)) {
		next := h.Step(ctx)
		repl.nominatePending(ctx)
		if v := value(tb, metrics.Actions.WithLabelValues(string(KindSpotInterruption), ActionDeleteNode)); v == float64(n) && last.IsZero() {
			last = clk.Now()
		}
		if next.IsZero() {
			break
		}
		clk.SetTime(next)
	}
	if last.IsZero() {
		tb.Fatalf("not every node deleted before the deadline")
	}
	return metrics, cluster, last.Sub(t0)
}

// TestHandlerStormStepped: 500 Spot warnings at once, the handler driven
// by Step alone: every node is drained before its deadline, once its
// replacement is Ready, and no pod is lost or left without a replacement.
func TestHandlerStormStepped(t *testing.T) {
	const n = 500
	metrics, cluster, took := stormStepped(t, n, 8)
	t.Logf("%d notices: every node drained and deleted %v after the notices (virtual time)", n, took)
	if took >= NoticePeriod-DefaultDeadlineMargin {
		t.Errorf("last node deleted +%v, want before the deadline less the margin", took)
	}
	pods, _ := cluster.ListPods(context.Background())
	running := 0
	for _, p := range pods {
		if p.Spec.NodeName != "" && p.Status.Phase == corev1.PodRunning {
			running++
		}
	}
	if len(pods) != n || running != n {
		t.Errorf("%d pods, %d running, want %d of both", len(pods), running, n)
	}
	if c, sum := unavailableFor(t, metrics, KindSpotInterruption); c != n || sum != 0 {
		t.Errorf("pod unavailability: %d samples summing %vs, want %d of 0s", c, sum, n)
	}
	if got := value(t, metrics.DeadlineMisses.WithLabelValues(string(KindSpotInterruption))); got != 0 {
		t.Errorf("deadline misses = %v", got)
	}
}

// BenchmarkHandlerStorm measures the wall time to handle a 500-notice Spot
// storm end to end (notices, replacements, drains, deletions), the handler
// stepped on a fake clock.
func BenchmarkHandlerStorm(b *testing.B) {
	for b.Loop() {
		stormStepped(b, 500, 8)
	}
}
