package interruption

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// stopAfterReplace stops the handler that calls it once the replacement it
// asked for is launched: the process dies between the replacement and the
// drain.
type stopAfterReplace struct {
	inner Replacer
	stop  func()
}

func (r stopAfterReplace) Replace(ctx context.Context, pods []*corev1.Pod) ([]*corev1.Node, error) {
	nodes, err := r.inner.Replace(ctx, pods)
	r.stop()
	return nodes, err
}

// stopPoints are where the first handler stops: before any worker picked the
// notice up, or after it launched the replacement and before the drain.
var stopPoints = []string{"before any work", "after the replacement"}

// acceptThenStop has the current handler accept m and stop at the given
// point. The notice is then gone from its source: only the node's record
// is left.
func (e *env) acceptThenStop(m Message, at string) {
	e.t.Helper()
	switch at {
	case "before any work":
		e.stopHandler()
		if err := e.handler.Handle(e.ctx, m); err != nil {
			e.t.Fatal(err)
		}
	case "after the replacement":
		e.stopHandler()
		e.newHandler(HandlerOptions{Replacer: stopAfterReplace{e.replacer, func() { e.cancelHandler() }}})
		e.runHandler()
		if err := e.handler.Handle(e.ctx, m); err != nil {
			e.t.Fatal(err)
		}
		waitFor(e.t, "the replacement launch", func() bool { return e.replacer.callCount() == 1 })
		e.stopHandler()
	default:
		e.t.Fatalf("unknown stop point %q", at)
	}
}

// restart starts a new handler over the same cluster and waits until its
// Run has taken up the recorded work.
func (e *env) restart(opts HandlerOptions, resumed Kind) {
	e.t.Helper()
	e.startHandler(opts)
	waitFor(e.t, "the recorded work to be resumed", func() bool { return e.action(resumed, ActionResumed) == 1 })
}

func (e *env) record(name string) *record {
	e.t.Helper()
	n, err := e.cluster.GetNode(e.ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	rec, err := parseRecord(n)
	if err != nil {
		e.t.Fatal(err)
	}
	return rec
}

// TestHandlerResumesAfterRestart: a handler accepts a Spot warning and dies
// before the drain; a new handler over the same cluster finishes the job
// before the recorded deadline: one replacement, pods evicted through their
// budget, node and instance deleted.
func TestHandlerResumesAfterRestart(t *testing.T) {
	for _, at := range stopPoints {
		t.Run(at, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, HandlerOptions{})
				e.spotNode()
				msg := spotMsg("spot-1", spotInstance, e.clock.Now())
				e.acceptThenStop(msg, at)
				rec := e.record("spot-1")
				if rec == nil || rec.Kind != KindSpotInterruption || !rec.Deadline.Equal(msg.Deadline) || rec.MessageID != msg.ID {
					t.Fatalf("record on the node = %+v, want the notice's kind, deadline and id", rec)
				}
				if wantReplaced := at == "after the replacement"; rec.Replaced != wantReplaced {
					t.Fatalf("record replaced = %v, want %v", rec.Replaced, wantReplaced)
				}
				if n, _ := e.cluster.GetNode(e.ctx, "spot-1"); !n.Spec.Unschedulable {
					t.Fatal("node not cordoned by the first handler")
				}
				if byNode := e.appPodsByNode(); byNode["spot-1"] != 3 {
					t.Fatalf("the first handler drained before it stopped: %v", byNode)
				}

				// Ten seconds of downtime, then a new process.
				e.clock.Step(10 * time.Second)
				e.restart(HandlerOptions{}, KindSpotInterruption)
				e.settle(time.Second, 3*time.Minute)

				deletedAt, ok := e.deletedAt("spot-1")
				if !ok {
					t.Fatal("interrupted node not deleted after the restart")
				}
				if end := msg.Deadline.Add(-DefaultDeadlineMargin); !deletedAt.Before(end) {
					t.Errorf("node deleted at +%v, want before +%v", deletedAt.Sub(t0), end.Sub(t0))
				}
				if got := e.cloud.terminations("aws:///us-east-1a/" + spotInstance); got != 1 {
					t.Errorf("instance terminated %d times, want 1", got)
				}
				if got := e.replacer.callCount(); got != 1 {
					t.Errorf("Replace called %d times across the restart, want 1", got)
				}
				if byNode := e.appPodsByNode(); byNode["replacement-1"] != 3 || len(byNode) != 1 {
					t.Errorf("app pods by node = %v, want all 3 on replacement-1", byNode)
				}
				// The budget held: every pod left through the Eviction API.
				if got := e.action(KindSpotInterruption, ActionForceDelete); got != 0 {
					t.Errorf("%v pods force-deleted", got)
				}
				if got := e.action(KindSpotInterruption, ActionDrain); got != 1 {
					t.Errorf("drains = %v, want 1", got)
				}
				if got := value(t, e.metrics.DeadlineMisses.WithLabelValues(string(KindSpotInterruption))); got != 0 {
					t.Errorf("deadline misses = %v", got)
				}
				// The resumed handler marks the pool again: its memory of
				// unavailable pools went with the process in real life.
				if got := e.action(KindSpotInterruption, ActionMarkUnavailable); got != 1 {
					t.Errorf("mark-unavailable on resume = %v, want 1", got)
				}
			})
		})
	}
}

// TestHandlerResumeKeepsRecordedDeadline: a budget that never allows the
// eviction: the pod is deleted when only its grace period is left before
// the recorded deadline, not before a deadline counted from the restart.
func TestHandlerResumeKeepsRecordedDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.budgetHeldNode()
		msg := spotMsg("spot-1", spotInstance, e.clock.Now())
		e.acceptThenStop(msg, "before any work")
		e.clock.Step(30 * time.Second)
		e.restart(HandlerOptions{}, KindSpotInterruption)
		e.settle(time.Second, 3*time.Minute)
		at, ok := e.deletedAt("spot-1")
		if !ok {
			t.Fatal("node not deleted")
		}
		// Recorded deadline 2:00, margin 15 s, grace 40 s: the pod goes at
		// 1:05. From a fresh two minutes at the restart (0:30) it would go at
		// 1:35.
		forceAt := msg.Deadline.Add(-DefaultDeadlineMargin - 40*time.Second)
		if at.Before(forceAt) || at.After(forceAt.Add(5*time.Second)) {
			t.Errorf("node deleted at +%v, want at +%v", at.Sub(t0), forceAt.Sub(t0))
		}
		if got := e.action(KindSpotInterruption, ActionForceDelete); got != 1 {
			t.Errorf("force deletions = %v, want 1", got)
		}
	})
}

// TestHandlerResumePastDeadline: the process was down past the deadline; the
// new one drains at once and counts the miss.
func TestHandlerResumePastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.spotNode()
		msg := spotMsg("spot-1", spotInstance, e.clock.Now())
		e.acceptThenStop(msg, "before any work")
		e.clock.Step(3 * time.Minute)
		restartAt := e.clock.Now()
		e.restart(HandlerOptions{}, KindSpotInterruption)
		e.settle(time.Second, 2*time.Minute)
		at, ok := e.deletedAt("spot-1")
		if !ok || !at.Equal(restartAt) {
			t.Fatalf("node deleted=%v at +%v, want at once at +%v", ok, at.Sub(t0), restartAt.Sub(t0))
		}
		if got := value(t, e.metrics.DeadlineMisses.WithLabelValues(string(KindSpotInterruption))); got != 1 {
			t.Errorf("deadline misses = %v, want 1", got)
		}
		if byNode := e.appPodsByNode(); byNode["replacement-1"] != 3 {
			t.Errorf("pods lost with the node: %v", byNode)
		}
	})
}

// TestHandlerRedeliveryAfterRestart: the same notice delivered again to the
// new handler, before or after its Run took the recorded work up, acts
// once: one replacement, one drain, one deletion.
func TestHandlerRedeliveryAfterRestart(t *testing.T) {
	for _, beforeRun := range []bool{true, false} {
		t.Run(fmt.Sprintf("before Run %v", beforeRun), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, HandlerOptions{})
				e.spotNode()
				msg := spotMsg("spot-1", spotInstance, e.clock.Now())
				e.acceptThenStop(msg, "after the replacement")
				e.clock.Step(5 * time.Second)
				again := msg
				again.ID = "another-delivery-of-the-same-notice"
				rebalance := rebalanceMsg("rb", spotInstance)
				e.newHandler(HandlerOptions{})
				if beforeRun {
					// The redelivery finds the record first and takes
					// the work up; Run's scan then finds it taken.
					if err := e.handler.Handle(e.ctx, msg); err != nil {
						t.Fatal(err)
					}
					e.runHandler()
				} else {
					e.runHandler()
					waitFor(t, "the recorded work to be resumed", func() bool { return e.action(KindSpotInterruption, ActionResumed) == 1 })
					if err := e.handler.Handle(e.ctx, msg); err != nil {
						t.Fatal(err)
					}
				}
				for _, m := range []Message{again, rebalance} {
					if err := e.handler.Handle(e.ctx, m); err != nil {
						t.Fatal(err)
					}
				}
				e.settle(time.Second, 3*time.Minute)
				if got := e.replacer.callCount(); got != 1 {
					t.Errorf("Replace called %d times, want 1", got)
				}
				if got := e.action(KindSpotInterruption, ActionResumed); got != 1 {
					t.Errorf("resumed = %v, want 1", got)
				}
				// Before Run, the first redelivery is what takes the work
				// up; after it, every redelivery is a duplicate.
				wantDups := 3.0
				if beforeRun {
					wantDups = 2
				}
				if got := e.action(KindSpotInterruption, ActionDuplicate) + e.action(KindRebalanceRecommendation, ActionDuplicate); got != wantDups {
					t.Errorf("duplicates = %v, want %v", got, wantDups)
				}
				if got := e.action(KindSpotInterruption, ActionDrain); got != 1 {
					t.Errorf("drains = %v, want 1", got)
				}
				if got := e.action(KindSpotInterruption, ActionDeleteNode); got != 1 {
					t.Errorf("node deletions = %v, want 1", got)
				}
				if got := e.cloud.terminations("aws:///us-east-1a/" + spotInstance); got != 1 {
					t.Errorf("instance terminated %d times, want 1", got)
				}
				if byNode := e.appPodsByNode(); byNode["replacement-1"] != 3 || len(byNode) != 1 {
					t.Errorf("app pods by node = %v, want all 3 on replacement-1", byNode)
				}
			})
		})
	}
}

// TestHandlerResumeRebalance: a rebalance resumed after a restart keeps its
// order: the at-risk node keeps serving until the replacement is Ready, and
// a replacement launched before the restart is not launched again.
func TestHandlerResumeRebalance(t *testing.T) {
	for _, at := range stopPoints {
		t.Run(at, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, HandlerOptions{})
				e.spotNode()
				e.acceptThenStop(rebalanceMsg("rb", spotInstance), at)
				rec := e.record("spot-1")
				if rec == nil || rec.Kind != KindRebalanceRecommendation || !rec.Deadline.IsZero() {
					t.Fatalf("record = %+v, want a rebalance without a deadline", rec)
				}
				if at == "after the replacement" && (!rec.Replaced || len(rec.Replacements) != 1 || rec.Replacements[0] != "replacement-1") {
					t.Fatalf("record = %+v, want replacement-1 recorded", rec)
				}
				e.clock.Step(5 * time.Second)
				e.restart(HandlerOptions{}, KindRebalanceRecommendation)
				// The replacement, launched at +0 or at the restart (+5 s), is
				// Ready 30 s later; until then the node serves, uncordoned.
				readyAt := t0.Add(30 * time.Second)
				if at == "before any work" {
					readyAt = readyAt.Add(5 * time.Second)
				}
				e.settle(time.Second, readyAt.Add(-time.Second).Sub(e.clock.Now()))
				if n, err := e.cluster.GetNode(e.ctx, "spot-1"); err != nil || n.Spec.Unschedulable {
					t.Fatalf("at-risk node cordoned before its replacement was Ready (err %v)", err)
				}
				if byNode := e.appPodsByNode(); byNode["spot-1"] != 3 {
					t.Fatalf("pods moved before the replacement was Ready: %v", byNode)
				}
				e.settle(time.Second, 5*time.Minute)
				deletedAt, ok := e.deletedAt("spot-1")
				if !ok || deletedAt.Before(readyAt) {
					t.Fatalf("at-risk node deleted=%v at +%v, want after the replacement is Ready (+%v)", ok, deletedAt.Sub(t0), readyAt.Sub(t0))
				}
				if got := e.replacer.callCount(); got != 1 {
					t.Errorf("Replace called %d times across the restart, want 1", got)
				}
				if byNode := e.appPodsByNode(); byNode["replacement-1"] != 3 || len(byNode) != 1 {
					t.Errorf("app pods by node = %v, want all on replacement-1", byNode)
				}
			})
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestHandlerMalformedRecord: a node whose record cannot be read is reported
// by name and left alone; a fresh notice for it then acts normally.
func TestHandlerMalformedRecord(t *testing.T) {
	for name, annotation := range map[string]string{
		"not json":         "spot-interruption until 10:02",
		"unknown kind":     `{"kind":"reboot","deadline":"2026-08-21T10:02:00Z"}`,
		"no deadline":      `{"kind":"spot-interruption"}`,
		"bad deadline":     `{"kind":"spot-interruption","deadline":"tomorrow"}`,
		"trailing garbage": `{"kind":"spot-interruption","deadline":"2026-08-21T10:02:00Z"}x`,
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, HandlerOptions{})
				e.stopHandler()
				e.spotNode()
				if err := e.cluster.AnnotateNode(e.ctx, "spot-1", map[string]string{AnnotationRecord: annotation}); err != nil {
					t.Fatal(err)
				}
				var logs syncBuffer
				e.startHandler(HandlerOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				waitFor(t, "the malformed record to be reported", func() bool { return value(t, e.metrics.MalformedRecords) == 1 })
				e.settle(time.Second, time.Minute)
				out := logs.String()
				if !strings.Contains(out, "node=spot-1") || !strings.Contains(out, AnnotationRecord) {
					t.Errorf("log does not name the node and the annotation:\n%s", out)
				}
				n, err := e.cluster.GetNode(e.ctx, "spot-1")
				if err != nil {
					t.Fatal(err)
				}
				if n.Spec.Unschedulable || e.replacer.callCount() != 0 || e.appPodsByNode()["spot-1"] != 3 {
					t.Fatalf("acted on a malformed record: cordoned=%v replacements=%d pods=%v", n.Spec.Unschedulable, e.replacer.callCount(), e.appPodsByNode())
				}
				if n.Annotations[AnnotationRecord] != annotation {
					t.Errorf("record changed to %q", n.Annotations[AnnotationRecord])
				}
				// A notice that comes now is the truth: it replaces the record.
				msg := spotMsg("spot-1", spotInstance, e.clock.Now())
				if err := e.handler.Handle(e.ctx, msg); err != nil {
					t.Fatal(err)
				}
				if rec := e.record("spot-1"); rec == nil || !rec.Deadline.Equal(msg.Deadline) {
					t.Fatalf("record after the notice = %+v", rec)
				}
				e.settle(time.Second, 3*time.Minute)
				if _, ok := e.deletedAt("spot-1"); !ok {
					t.Error("node not drained and deleted after a fresh notice")
				}
			})
		})
	}
}

func TestMergeRecord(t *testing.T) {
	spot := spotMsg("s", spotInstance, t0)
	rebalance := rebalanceMsg("rb", spotInstance)
	retire := Message{ID: "h", Kind: KindScheduledChange, Deadline: t0.Add(time.Hour)}
	stopping := Message{ID: "sc", Kind: KindStateChange, Deadline: t0.Add(time.Second), State: StateStopping}
	replaced := record{Kind: KindRebalanceRecommendation, Replaced: true, Replacements: []string{"r-1"}}
	for _, tc := range []struct {
		name      string
		cur       *record
		m         Message
		wantKind  Kind
		wantDL    time.Time
		wantAdded bool
	}{
		{"first notice", nil, spot, KindSpotInterruption, spot.Deadline, true},
		{"same notice", &record{Kind: KindSpotInterruption, Deadline: spot.Deadline}, spot, KindSpotInterruption, spot.Deadline, false},
		{"rebalance adds nothing", &record{Kind: KindSpotInterruption, Deadline: spot.Deadline}, rebalance, KindSpotInterruption, spot.Deadline, false},
		{"warning after a rebalance", &replaced, spot, KindSpotInterruption, spot.Deadline, true},
		{"later deadline adds nothing", &record{Kind: KindSpotInterruption, Deadline: spot.Deadline}, retire, KindSpotInterruption, spot.Deadline, false},
		{"earlier deadline wins", &record{Kind: KindSpotInterruption, Deadline: spot.Deadline}, stopping, KindStateChange, stopping.Deadline, true},
		{"no deadline means now", nil, Message{ID: "x", Kind: KindSpotInterruption}, KindSpotInterruption, t0.Add(time.Minute), true},
	} {
		got, added := mergeRecord(tc.cur, tc.m, t0.Add(time.Minute))
		if got.Kind != tc.wantKind || !got.Deadline.Equal(tc.wantDL) || added != tc.wantAdded {
			t.Errorf("%s: got %+v added=%v, want kind %s deadline %v added=%v", tc.name, got, added, tc.wantKind, tc.wantDL, tc.wantAdded)
		}
		if tc.cur == &replaced && (!got.Replaced || len(got.Replacements) != 1) {
			t.Errorf("%s: the replacement was forgotten: %+v", tc.name, got)
		}
	}
}

// listFailsOnce is a cluster whose first node listing fails.
type listFailsOnce struct {
	*recordingCluster
	mu     sync.Mutex
	failed bool
}

func (c *listFailsOnce) ListNodes(ctx context.Context) ([]*corev1.Node, error) {
	c.mu.Lock()
	first := !c.failed
	c.failed = true
	c.mu.Unlock()
	if first {
		return nil, errors.New("apiserver unavailable")
	}
	return c.recordingCluster.ListNodes(ctx)
}

// TestHandlerResumeRetriesListing: the API server is down when the new
// handler starts; its scan waits a second on the clock and tries again.
func TestHandlerResumeRetriesListing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.spotNode()
		msg := spotMsg("spot-1", spotInstance, e.clock.Now())
		e.acceptThenStop(msg, "before any work")
		e.startHandler(HandlerOptions{Cluster: &listFailsOnce{recordingCluster: &recordingCluster{MemoryCluster: e.cluster, env: e}}})
		waitFor(t, "the scan to wait for its retry", e.clock.HasWaiters)
		if got := e.action(KindSpotInterruption, ActionResumed); got != 0 {
			t.Fatalf("resumed = %v before the retry", got)
		}
		e.clock.Step(time.Second)
		waitFor(t, "the recorded work to be resumed", func() bool { return e.action(KindSpotInterruption, ActionResumed) == 1 })
		e.settle(time.Second, 3*time.Minute)
		if at, ok := e.deletedAt("spot-1"); !ok || !at.Before(msg.Deadline) {
			t.Fatalf("node deleted=%v at +%v, want before the deadline", ok, at.Sub(t0))
		}
	})
}

// TestStaleReadsNeverRedoOwnWork: a notice, or Run's resume scan, that read
// the node (record included) before this handler's own work on it finished
// must not queue that work again. Under a storm of duplicates this showed
// as a node deleted twice.
func TestStaleReadsNeverRedoOwnWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.spotNode()
		if err := e.handler.Handle(e.ctx, spotMsg("spot-1", spotInstance, e.clock.Now())); err != nil {
			t.Fatal(err)
		}
		stale, err := e.cluster.GetNode(e.ctx, "spot-1")
		if err != nil {
			t.Fatal(err)
		}
		rec, err := parseRecord(stale)
		if err != nil || rec == nil {
			t.Fatalf("record after Handle: %v, %v", rec, err)
		}
		e.settle(time.Second, 3*time.Minute)
		if _, ok := e.deletedAt("spot-1"); !ok {
			t.Fatal("node not deleted")
		}
		// A resume scan over the stale listing takes nothing up.
		e.handler.resume(e.ctx, &snapshot{now: e.clock.Now(), nodes: map[string]*corev1.Node{stale.Name: stale}})
		if got := e.action(KindSpotInterruption, ActionResumed); got != 0 || !idle(e.handler) {
			t.Fatalf("the handler's own finished work was taken up again (resumed %v)", got)
		}
		if e.replacer.callCount() != 1 {
			t.Errorf("Replace called %d times, want 1", e.replacer.callCount())
		}
	})
}

// TestRebalanceGivingUpKeepsALaterSpotRecord: AWS usually sends a
// rebalance recommendation and then the Spot warning. When the rebalance
// gives up (its replacement failed) after the warning took the node's
// record over, the record must stay: it is the Spot work a restarted
// process has to finish.
func TestRebalanceGivingUpKeepsALaterSpotRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.spotNode()
		e.stopHandler()
		h := e.handler
		if err := h.Handle(e.ctx, rebalanceMsg("rb", spotInstance)); err != nil {
			t.Fatal(err)
		}
		if rb := e.record("spot-1"); rb == nil || rb.Kind != KindRebalanceRecommendation {
			t.Fatalf("rebalance record = %+v", rb)
		}
		spot := spotMsg("spot", spotInstance, e.clock.Now())
		if err := h.Handle(e.ctx, spot); err != nil {
			t.Fatal(err)
		}
		h.giveUp(e.ctx, quietLogger(), h.nodes[spotInstance], KindRebalanceRecommendation, ActionReplacementFailed)
		if rec := e.record("spot-1"); rec == nil || rec.Kind != KindSpotInterruption || !rec.Deadline.Equal(spot.Deadline) {
			t.Fatalf("record after the rebalance gave up = %+v, want the Spot warning's", rec)
		}
		// (That a rebalance removes its own record when it gives up is checked
		// by TestHandlerRebalanceModes.)
	})
}

// A Spot warning that reaches a restarted handler before its Run has taken
// up the recorded rebalance still waits for the replacement the rebalance
// recorded: the pods leave only once it is Ready, and nothing is launched
// again.
func TestSpotWarningBeforeResumeWaitsForTheRecordedReplacement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, HandlerOptions{})
		e.spotNode()
		e.acceptThenStop(rebalanceMsg("rb", spotInstance), "after the replacement")
		if rec := e.record("spot-1"); rec == nil || !rec.Replaced || len(rec.Replacements) != 1 {
			t.Fatalf("record = %+v, want the rebalance's replacement recorded", rec)
		}
		e.clock.Step(5 * time.Second)
		e.newHandler(HandlerOptions{})
		if err := e.handler.Handle(e.ctx, spotMsg("spot", spotInstance, e.clock.Now())); err != nil {
			t.Fatal(err)
		}
		e.runHandler()
		// replacement-1, launched at +0, is Ready at +30 s.
		readyAt := t0.Add(30 * time.Second)
		e.settle(time.Second, readyAt.Add(-time.Second).Sub(e.clock.Now()))
		if byNode := e.appPodsByNode(); byNode["spot-1"] != 3 {
			t.Fatalf("pods evicted before the recorded replacement was Ready: %v", byNode)
		}
		e.settle(time.Second, 3*time.Minute)
		if _, ok := e.deletedAt("spot-1"); !ok {
			t.Fatal("interrupted node not deleted")
		}
		if got := e.replacer.callCount(); got != 1 {
			t.Errorf("Replace called %d times, want 1 (the rebalance's)", got)
		}
		if byNode := e.appPodsByNode(); byNode["replacement-1"] != 3 || len(byNode) != 1 {
			t.Errorf("app pods by node = %v, want all 3 on replacement-1", byNode)
		}
	})
}
