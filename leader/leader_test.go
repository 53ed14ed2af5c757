package leader

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

var errCut = errors.New("connection refused")

// replica is one process taking part in the election; all replicas share
// one fake API server, and a replica's connection to it can be cut, as when
// its process dies or is partitioned.
type replica struct {
	name   string
	client *fake.Clientset
	cut    atomic.Bool

	mu            sync.Mutex
	started, done time.Time
}

func newReplica(name string, server *fake.Clientset) *replica {
	r := &replica{name: name, client: fake.NewClientset()}
	r.client.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if r.cut.Load() {
			return true, nil, errCut
		}
		return k8stesting.ObjectReaction(server.Tracker())(a)
	})
	return r
}

func (r *replica) options() Options {
	return Options{Client: r.client, Namespace: "fleetpack", Identity: r.name, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// lead blocks until its context ends, then takes cleanup to return,
// recording when it ran.
func (r *replica) lead(cleanup time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		r.mu.Lock()
		r.started = time.Now()
		r.mu.Unlock()
		<-ctx.Done()
		time.Sleep(cleanup)
		r.mu.Lock()
		r.done = time.Now()
		r.mu.Unlock()
		return nil
	}
}

func (r *replica) leading() (started, done time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.started, r.done
}

type running struct {
	cancel context.CancelFunc
	err    chan error
}

func start(r *replica, cleanup time.Duration) running {
	ctx, cancel := context.WithCancel(context.Background())
	out := running{cancel: cancel, err: make(chan error, 1)}
	go func() { out.err <- Run(ctx, r.options(), r.lead(cleanup)) }()
	return out
}

func holder(t *testing.T, server *fake.Clientset) string {
	t.Helper()
	lease, err := server.CoordinationV1().Leases("fleetpack").Get(context.Background(), DefaultLeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// TestDeadLeaderIsReplacedWithinTheLeaseDuration: the second replica does
// not lead while the first does; when the first dies (its connection cut,
// its context then cancelled, so it can release nothing) the second leads
// within LeaseDuration + 2 s, and not before the first has stopped.
func TestDeadLeaderIsReplacedWithinTheLeaseDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		server := fake.NewClientset()
		a, b := newReplica("a", server), newReplica("b", server)
		runA := start(a, 0)
		synctest.Wait()
		if s, _ := a.leading(); s.IsZero() {
			t.Fatal("the only replica does not lead")
		}
		runB := start(b, 0)
		time.Sleep(time.Minute) // many renewals and tries
		synctest.Wait()
		if s, _ := b.leading(); !s.IsZero() {
			t.Fatal("the follower leads while the leader renews")
		}
		if h := holder(t, server); h != "a" {
			t.Fatalf("lease held by %q", h)
		}

		died := time.Now()
		a.cut.Store(true)
		runA.cancel()
		if err := <-runA.err; err != nil {
			t.Errorf("the dead replica's Run: %v", err)
		}
		bound := DefaultLeaseDuration + 2*time.Second
		for {
			if s, _ := b.leading(); !s.IsZero() {
				break
			}
			if time.Since(died) > bound {
				t.Fatalf("b does not lead %s after a died", bound)
			}
			time.Sleep(100 * time.Millisecond)
		}
		bStarted, _ := b.leading()
		_, aDone := a.leading()
		if took := bStarted.Sub(died); took > bound {
			t.Errorf("handover took %s, more than the lease duration + 2 s (%s)", took, bound)
		}
		if bStarted.Before(aDone) {
			t.Errorf("b started leading at %s, before a stopped at %s", bStarted, aDone)
		}
		runB.cancel()
		if err := <-runB.err; err != nil {
			t.Error(err)
		}
	})
}

// TestShutdownReleasesAfterLeadReturns: a leader told to stop keeps the
// Lease until its lead function has returned, then releases it, and the
// follower leads at its next try.
func TestShutdownReleasesAfterLeadReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		server := fake.NewClientset()
		a, b := newReplica("a", server), newReplica("b", server)
		const cleanup = 20 * time.Second // longer than the lease
		runA := start(a, cleanup)
		synctest.Wait()
		runB := start(b, 0)
		time.Sleep(time.Second)
		stopped := time.Now()
		runA.cancel()
		time.Sleep(cleanup - time.Second)
		synctest.Wait()
		if s, _ := b.leading(); !s.IsZero() {
			t.Fatalf("b leads at %s while a's lead is still returning", s.Sub(stopped))
		}
		if err := <-runA.err; err != nil {
			t.Fatal(err)
		}
		_, aDone := a.leading()
		bound := DefaultRetryPeriod * 22 / 10
		for {
			if s, _ := b.leading(); !s.IsZero() {
				break
			}
			if time.Since(aDone) > bound {
				t.Fatalf("b does not lead %s after a released", bound)
			}
			time.Sleep(50 * time.Millisecond)
		}
		bStarted, _ := b.leading()
		if took := bStarted.Sub(aDone); took > bound {
			t.Errorf("b took %s to lead after a released, more than one try (%s)", took, bound)
		}
		runB.cancel()
		<-runB.err
	})
}

// TestLosingTheLeaseStopsLead: a leader cut off from the API server stops
// its lead function within RenewDeadline of its last renewal, before the
// Lease can expire for anyone else, and Run says so.
func TestLosingTheLeaseStopsLead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		server := fake.NewClientset()
		a := newReplica("a", server)
		runA := start(a, 0)
		synctest.Wait()
		cut := time.Now()
		a.cut.Store(true)
		err := <-runA.err
		if !errors.Is(err, ErrLostLeadership) {
			t.Errorf("Run returned %v, want ErrLostLeadership", err)
		}
		_, done := a.leading()
		if stoppedAfter := done.Sub(cut); stoppedAfter > DefaultRenewDeadline+DefaultRetryPeriod || stoppedAfter >= DefaultLeaseDuration {
			t.Errorf("lead stopped %s after the cut; the lease expires at %s", stoppedAfter, DefaultLeaseDuration)
		}
		runA.cancel()
	})
}

// TestLeadErrorIsReturnedAndTheLeaseReleased.
func TestLeadErrorIsReturnedAndTheLeaseReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		server := fake.NewClientset()
		a := newReplica("a", server)
		boom := errors.New("provisioner failed")
		err := Run(context.Background(), a.options(), func(context.Context) error { return boom })
		if !errors.Is(err, boom) || errors.Is(err, ErrLostLeadership) {
			t.Errorf("Run returned %v, want the lead error", err)
		}
		if h := holder(t, server); h != "" {
			t.Errorf("lease still held by %q", h)
		}
	})
}

func TestRunBeforeLeadingReturnsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		server := fake.NewClientset()
		a, b := newReplica("a", server), newReplica("b", server)
		runA := start(a, 0)
		synctest.Wait()
		runB := start(b, 0)
		time.Sleep(5 * time.Second)
		runB.cancel()
		if err := <-runB.err; err != nil {
			t.Errorf("follower's Run: %v", err)
		}
		if s, _ := b.leading(); !s.IsZero() {
			t.Error("the follower led")
		}
		if h := holder(t, server); h != "a" {
			t.Errorf("a follower's exit changed the lease holder to %q", h)
		}
		runA.cancel()
		<-runA.err
	})
}

func TestOptionsErrors(t *testing.T) {
	err := Run(context.Background(), Options{LeaseDuration: time.Second, RenewDeadline: 2 * time.Second}, nil)
	for _, want := range []string{"Client", "Namespace", "RenewDeadline (2s) must be shorter than LeaseDuration (1s)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}
