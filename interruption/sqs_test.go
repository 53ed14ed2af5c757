package interruption

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/fleetpack/fleetpack/interruption/fakesqs"
)

var _ SQSAPI = (*fakesqs.Queue)(nil)

const queueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/fleetpack-interruptions"

var t0 = time.Date(2026, 8, 21, 10, 0, 0, 0, time.UTC)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// stepUntil advances clk by step whenever something waits on it, until done
// is closed. It never sleeps: it yields to the goroutines under test.
func stepUntil(t *testing.T, clk *testingclock.FakeClock, step time.Duration, done <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the condition")
		}
		if clk.HasWaiters() {
			clk.Step(step)
		}
		runtime.Gosched()
	}
}

func TestNewSQSSourceValidates(t *testing.T) {
	q := fakesqs.New(queueURL, testingclock.NewFakeClock(t0))
	for _, tc := range []struct {
		name string
		api  SQSAPI
		opts SQSOptions
	}{
		{"nil client", nil, SQSOptions{QueueURL: queueURL}},
		{"no queue", q, SQSOptions{}},
		{"negative workers", q, SQSOptions{QueueURL: queueURL, Workers: -1}},
		{"negative visibility", q, SQSOptions{QueueURL: queueURL, VisibilityTimeout: -time.Second}},
	} {
		if _, err := NewSQSSource(tc.api, tc.opts); err == nil {
			t.Errorf("%s: NewSQSSource accepted it", tc.name)
		}
	}
}

// TestSQSSource sends every example plus bad bodies; the sink refuses one
// notice the first time. Everything parseable reaches the sink, bad bodies are
// deleted unhandled, the refused one comes back after its visibility timeout,
// and at the end the queue is empty.
func TestSQSSource(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	q := fakesqs.New(queueURL, clk)
	reg := prometheus.NewPedanticRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	ex := examples(t)
	for _, body := range ex {
		q.Send(string(body))
	}
	q.Send(`{"not": "an event"}`)
	q.Send(`garbage`)
	unsupported := mutate(t, ex["spot_interruption_warning"], func(m map[string]any) { m["detail-type"] = "EC2 AMI State Change" })
	q.Send(string(unsupported))

	const refused = "5d5555d5-dd55-5555-5555-5555dd55d55d" // the rebalance recommendation
	var mu sync.Mutex
	seen := map[string]int{}
	allSeen := make(chan struct{})
	sink := func(ctx context.Context, m Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen[m.ID]++
		if m.ID == refused && seen[m.ID] == 1 {
			return errors.New("cluster unreachable")
		}
		if len(seen) == len(ex) && seen[refused] == 2 {
			close(allSeen)
		}
		return nil
	}
	src, err := NewSQSSource(q, SQSOptions{QueueURL: queueURL, Workers: 3, VisibilityTimeout: 20 * time.Second, Clock: clk, Logger: quietLogger(), Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()

	// Wait until everything but the refused message is handled and deleted,
	// then move the clock past the refused one's visibility timeout.
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == len(ex) && q.Len() == 1 && clk.HasWaiters() {
			break
		}
		runtime.Gosched()
	}
	if q.InFlight() != 1 {
		t.Fatalf("in flight = %d, want the refused message", q.InFlight())
	}
	clk.Step(20 * time.Second)
	select {
	case <-allSeen:
	case <-time.After(30 * time.Second):
		t.Fatal("the refused message was not redelivered")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for id, n := range seen {
		want := 1
		if id == refused {
			want = 2
		}
		if n != want {
			t.Errorf("message %s handled %d times, want %d", id, n, want)
		}
	}
	if q.Len() != 0 {
		t.Errorf("%d messages left in the queue, want 0", q.Len())
	}
	if got := value(t, metrics.MessagesDropped.WithLabelValues("malformed")); got != 2 {
		t.Errorf("dropped malformed = %v, want 2", got)
	}
	if got := value(t, metrics.MessagesDropped.WithLabelValues("unsupported")); got != 1 {
		t.Errorf("dropped unsupported = %v, want 1", got)
	}
}

// TestSQSSourceBoundsWorkersAndBatchesDeletes pushes 200 notices through 4
// workers: never more than 4 sink calls run at once, nothing is lost, and
// deletes go in batches.
func TestSQSSourceBoundsWorkersAndBatchesDeletes(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	q := fakesqs.New(queueURL, clk)
	body := string(examples(t)["spot_interruption_warning"])
	const n = 200
	for range n {
		q.Send(body)
	}
	const workers = 4
	var running, peak, handled atomic.Int64
	release := make(chan struct{})
	allDone := make(chan struct{})
	sink := func(ctx context.Context, m Message) error {
		r := running.Add(1)
		for {
			p := peak.Load()
			if r <= p || peak.CompareAndSwap(p, r) {
				break
			}
		}
		<-release
		running.Add(-1)
		if handled.Add(1) == n {
			close(allDone)
		}
		return nil
	}
	src, err := NewSQSSource(q, SQSOptions{QueueURL: queueURL, Workers: workers, Clock: clk, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	// Let the workers fill up before releasing them one message at a time.
	for running.Load() < workers {
		runtime.Gosched()
	}
	go func() {
		for range n {
			release <- struct{}{}
		}
	}()
	<-allDone
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p > workers {
		t.Errorf("peak concurrency %d, want at most %d", p, workers)
	}
	s := q.Stats()
	if s.Deleted != n || q.Len() != 0 {
		t.Errorf("deleted %d, %d left; want %d deleted", s.Deleted, q.Len(), n)
	}
	if s.DeleteBatchCalls >= n {
		t.Errorf("%d delete calls for %d messages: deletes are not batched", s.DeleteBatchCalls, n)
	}
	if s.MaxDeleteBatch > 10 {
		t.Errorf("a delete batch held %d entries, SQS allows 10", s.MaxDeleteBatch)
	}
}

// TestSQSSourceSurvivesErrors: a failing receive is retried after a backoff
// on the clock, and a failed delete leaves the message to be redelivered and
// handled again (the handler deduplicates).
func TestSQSSourceSurvivesErrors(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	q := fakesqs.New(queueURL, clk)
	metrics, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	id := q.Send(string(examples(t)["spot_interruption_warning"]))
	q.FailNextReceive(errors.New("RequestThrottled"))
	q.FailNextDelete(id, "InternalError")
	var calls atomic.Int64
	second := make(chan struct{})
	sink := func(ctx context.Context, m Message) error {
		if calls.Add(1) == 2 {
			close(second)
		}
		return nil
	}
	src, err := NewSQSSource(q, SQSOptions{QueueURL: queueURL, Workers: 1, Clock: clk, Logger: quietLogger(), Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	stepUntil(t, clk, 5*time.Second, second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The failed delete must lead to a redelivery and, in the end, a
	// delete. Delivery is at least once: while the test steps the clock the
	// redelivered copy's visibility can lapse before its delete lands, so a
	// third receive is legitimate and not asserted against.
	if q.Len() != 0 || q.Receives(id) < 2 {
		t.Errorf("len %d, receives %d; want the message redelivered after the failed delete and then deleted", q.Len(), q.Receives(id))
	}
	if got := value(t, metrics.DeleteFailures); got != 1 {
		t.Errorf("delete failures = %v, want 1", got)
	}
	if s := q.Stats(); s.ReceiveCalls < 3 {
		t.Errorf("%d receive calls; the failed one should have been retried", s.ReceiveCalls)
	}
}
