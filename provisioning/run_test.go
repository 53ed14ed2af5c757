package provisioning

import (
	"context"
	"testing"
	"time"
)

func TestBatcher(t *testing.T) {
	t0 := testEpoch
	b := &batcher{idle: time.Second, max: 10 * time.Second}
	if b.due(t0) || !b.deadline().IsZero() {
		t.Fatal("empty batcher is due")
	}
	b.add(t0)
	if got := b.deadline(); !got.Equal(t0.Add(time.Second)) {
		t.Fatalf("deadline %s, want idle window", got)
	}
	if b.due(t0.Add(999 * time.Millisecond)) {
		t.Fatal("due before the idle window passed")
	}
	// New pods every 900ms keep the batch open until the max window.
	now := t0
	for range 10 {
		now = now.Add(900 * time.Millisecond)
		if b.due(now) {
			t.Fatalf("due at +%s while pods keep arriving", now.Sub(t0))
		}
		b.add(now)
	}
	if got := b.deadline(); !got.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("deadline %s, want max window %s", got, t0.Add(10*time.Second))
	}
	if !b.due(t0.Add(10 * time.Second)) {
		t.Fatal("not due at the max window")
	}
	b.reset()
	if b.due(t0.Add(time.Hour)) {
		t.Fatal("due after reset")
	}
	b.add(t0.Add(time.Hour))
	if got := b.deadline(); !got.Equal(t0.Add(time.Hour + time.Second)) {
		t.Fatalf("a new batch did not restart the windows: %s", got)
	}
}

// startRun runs the provisioner's loop with hooks that report each wait,
// batch and removal on channels.
func startRun(t *testing.T, e *env) (waits chan loopState, batches chan *Result, removals chan []string) {
	waits = make(chan loopState, 100)
	batches = make(chan *Result, 100)
	removals = make(chan []string, 100)
	e.prov.hooks = &runHooks{
		waiting: func(s loopState) { waits <- s },
		batch: func(r *Result, err error) {
			if err != nil {
				t.Errorf("batch: %v", err)
			}
			batches <- r
		},
		removed: func(names []string) { removals <- names },
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error)
	go func() { done <- e.prov.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return waits, batches, removals
}

// guard bounds how long a test waits on the loop, so a bug fails the test
// instead of hanging it. It is a real-time safety net, not a sleep: every
// wait below returns as soon as the loop reports.
const guard = 20 * time.Second

// waitFor reads loop states until one satisfies cond.
func waitFor(t *testing.T, waits chan loopState, cond func(loopState) bool) {
	t.Helper()
	deadline := time.After(guard)
	for {
		select {
		case s := <-waits:
			if cond(s) {
				return
			}
		case <-deadline:
			t.Fatal("the loop never reached the expected state")
		}
	}
}

func recv[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(guard):
		t.Fatal("the loop never reported")
	}
	panic("unreachable")
}

func TestRunBatchesPendingPods(t *testing.T) {
	e := newEnv(t, pool("default", 0))
	waits, batches, _ := startRun(t, e)
	waitFor(t, waits, func(s loopState) bool { return !s.open })

	e.addPods("a", 1, "1", "1Gi", nil)
	waitFor(t, waits, func(s loopState) bool { return s.pending == 1 && s.open })
	e.clock.Step(900 * time.Millisecond)
	e.addPods("b", 1, "1", "1Gi", nil)
	waitFor(t, waits, func(s loopState) bool { return s.pending == 2 })
	select {
	case r := <-batches:
		t.Fatalf("batch closed early: %+v", r)
	default:
	}
	// The idle window restarted with pod b: 900ms more is not enough.
	e.clock.Step(900 * time.Millisecond)
	e.clock.Step(100 * time.Millisecond)
	r := recv(t, batches)
	if r.Pods() != 2 {
		t.Fatalf("batch placed %d pods, want both", r.Pods())
	}
	if got := len(e.nodes()); got == 0 {
		t.Fatal("no node launched")
	}
}

func TestRunRemovesEmptyNodesAndRetries(t *testing.T) {
	np := pool("default", 0)
	e := newEnv(t, np)
	waits, batches, removals := startRun(t, e)
	waitFor(t, waits, func(s loopState) bool { return !s.open })

	e.addPods("web", 1, "1", "1Gi", nil)
	waitFor(t, waits, func(s loopState) bool { return s.open })
	e.clock.Step(time.Second)
	if r := recv(t, batches); len(r.Launched) != 1 {
		t.Fatalf("launched %d", len(r.Launched))
	}
	e.clock.Step(30 * time.Second) // Ready, bound
	if err := e.cluster.DeletePodNoRecreate(e.ctx, "default", "web-a"); err != nil {
		t.Fatal(err)
	}
	due := e.clock.Now().Add(30 * time.Second)
	waitFor(t, waits, func(s loopState) bool { return s.emptyAt.Equal(due) })
	e.clock.Step(30 * time.Second)
	if names := recv(t, removals); len(names) != 1 {
		t.Fatalf("removed %v", names)
	}
	if e.cloud.running() != 0 {
		t.Fatal("instance not terminated")
	}

	// A pod no pool can hold is retried every RetryInterval.
	e.addPods("huge", 1, "64", "1Gi", nil)
	waitFor(t, waits, func(s loopState) bool { return s.open })
	e.clock.Step(time.Second)
	if r := recv(t, batches); len(r.Unschedulable) != 1 {
		t.Fatalf("unschedulable %d", len(r.Unschedulable))
	}
	waitFor(t, waits, func(s loopState) bool { return !s.open && !s.retryAt.IsZero() })
	e.clock.Step(DefaultRetryInterval)
	if r := recv(t, batches); len(r.Unschedulable) != 1 {
		t.Fatalf("retry: unschedulable %d", len(r.Unschedulable))
	}
}
