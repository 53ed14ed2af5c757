package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Defaults for Options. LeaseDuration and RenewDeadline are client-go's
// core defaults. A follower tries to acquire every RetryPeriod to
// 2.2 x RetryPeriod (client-go's jitter), and counts the Lease's age from
// the try that saw it last renewed, so a dead leader is replaced within
// LeaseDuration + 4.4 x RetryPeriod: with these defaults 16.8 s, inside the
// lease duration plus 2 s. The price is one Lease update by the leader
// every RetryPeriod.
const (
	DefaultLeaseName     = "fleetpack"
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 400 * time.Millisecond
)

// ErrLostLeadership is returned by Run when this process stopped holding the
// Lease before its context was done (it could not renew within
// RenewDeadline). The lead function has returned by then. The usual answer is
// to exit and be restarted, as Kubernetes' own controllers do.
var ErrLostLeadership = errors.New("leader: lost the lease")

// Options configures Run.
type Options struct {
	// Client reaches the API server that holds the Lease. Required.
	Client kubernetes.Interface
	// Namespace is the Lease's namespace. Required.
	Namespace string
	// Name is the Lease's name; defaults to DefaultLeaseName.
	Name string
	// Identity names this replica in the Lease; defaults to the host name
	// and a random suffix. Two replicas must not share it.
	Identity string
	// LeaseDuration is how long a follower waits, without seeing the Lease
	// renewed, before it takes over.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before it
	// gives up; it must be shorter than LeaseDuration, so that a leader cut
	// off from the API server stops acting before a follower can start.
	RenewDeadline time.Duration
	// RetryPeriod is how often the leader renews and, with jitter, how
	// often followers try to acquire (see DefaultRetryPeriod).
	RetryPeriod time.Duration
	// Logger receives leadership changes; defaults to slog.Default().
	Logger *slog.Logger
}

// Run campaigns for the Lease until ctx is done and runs lead, once, while
// this process holds it. lead's context ends when ctx ends or leadership is
// lost; Run returns only after lead has returned. When ctx ends while
// leading, the Lease is released after lead returns, so a follower takes
// over at once; a leader that dies instead is replaced when the Lease
// expires.
//
// Run returns nil when ctx ends, lead's error when lead fails (the Lease is
// then released), and ErrLostLeadership (joined with lead's error, if any)
// when leadership was lost while ctx was live.
func Run(ctx context.Context, opts Options, lead func(context.Context) error) error {
	lec, err := opts.config()
	if err != nil {
		return err
	}
	log := opts.Logger.With("lease", opts.Namespace+"/"+opts.Name, "identity", opts.Identity)

	// The election runs on its own context: when ctx ends while leading,
	// lead must return before the election stops and the Lease is released.
	electCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	type outcome struct {
		err error
		// lost: the elector ended lead's context, having failed to renew.
		lost bool
	}
	var (
		mu       sync.Mutex
		leading  bool
		finished bool // the elector returned, or ctx ended before leading
		result   = make(chan outcome, 1)
	)
	stopBeforeLeading := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !leading {
			finished = true
			stopElection()
		}
	})
	defer stopBeforeLeading()

	lec.Callbacks = leaderelection.LeaderCallbacks{
		OnStartedLeading: func(leadCtx context.Context) {
			mu.Lock()
			if finished {
				mu.Unlock()
				return
			}
			leading = true
			mu.Unlock()
			log.InfoContext(ctx, "leading")
			workCtx, stopWork := context.WithCancel(leadCtx)
			stopOnDone := context.AfterFunc(ctx, stopWork)
			err := lead(workCtx)
			stopOnDone()
			stopWork()
			// Only the elector cancels leadCtx before lead returns.
			result <- outcome{err: err, lost: leadCtx.Err() != nil}
			// Stop renewing only now that nothing guarded by the Lease
			// runs.
			stopElection()
		},
		OnStoppedLeading: func() {},
		OnNewLeader: func(identity string) {
			log.InfoContext(ctx, "leader observed", "leader", identity)
		},
	}
	elector, err := leaderelection.NewLeaderElector(lec)
	if err != nil {
		return fmt.Errorf("leader: %w", err)
	}
	elector.Run(electCtx)

	mu.Lock()
	finished = true
	wasLeading := leading
	mu.Unlock()
	if !wasLeading {
		return nil
	}
	o := <-result
	if errors.Is(o.err, context.Canceled) {
		o.err = nil
	}
	if o.lost && ctx.Err() == nil {
		log.WarnContext(ctx, "lost the lease")
		return errors.Join(ErrLostLeadership, o.err)
	}
	if !o.lost {
		release(ctx, lec.Lock, opts, log)
	}
	return o.err
}

// release gives the Lease up, if this replica still holds it, so that a
// follower takes over at its next try instead of after LeaseDuration. It
// runs after lead has returned (client-go's own ReleaseOnCancel would
// release while lead may still be acting), and is best effort: if it
// fails, the Lease expires.
func release(ctx context.Context, lock resourcelock.Interface, opts Options, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.RenewDeadline)
	defer cancel()
	rec, _, err := lock.Get(ctx)
	if err != nil {
		log.WarnContext(ctx, "releasing the lease: reading it failed; it will expire", "error", err)
		return
	}
	if rec.HolderIdentity != opts.Identity {
		return
	}
	now := metav1.NewTime(time.Now())
	err = lock.Update(ctx, resourcelock.LeaderElectionRecord{
		LeaderTransitions: rec.LeaderTransitions, LeaseDurationSeconds: 1, AcquireTime: now, RenewTime: now,
	})
	if err != nil {
		log.WarnContext(ctx, "releasing the lease failed; it will expire", "error", err)
		return
	}
	log.InfoContext(ctx, "released the lease")
}

// config validates opts, fills in the defaults and builds the elector's
// configuration (without callbacks).
func (o *Options) config() (leaderelection.LeaderElectionConfig, error) {
	var errs []error
	if o.Client == nil {
		errs = append(errs, errors.New("leader: Options.Client is required"))
	}
	if o.Namespace == "" {
		errs = append(errs, errors.New("leader: Options.Namespace is required"))
	}
	if o.Name == "" {
		o.Name = DefaultLeaseName
	}
	if o.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			host = "fleetpack"
		}
		o.Identity = host + "_" + string(uuid.NewUUID())
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
	if o.RenewDeadline >= o.LeaseDuration {
		errs = append(errs, fmt.Errorf("leader: Options.RenewDeadline (%s) must be shorter than LeaseDuration (%s)", o.RenewDeadline, o.LeaseDuration))
	}
	if float64(o.RenewDeadline) <= leaderelection.JitterFactor*float64(o.RetryPeriod) {
		errs = append(errs, fmt.Errorf("leader: Options.RenewDeadline (%s) must be longer than %.1f x RetryPeriod (%s)", o.RenewDeadline, leaderelection.JitterFactor, o.RetryPeriod))
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := errors.Join(errs...); err != nil {
		return leaderelection.LeaderElectionConfig{}, err
	}
	return leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name},
			Client:     o.Client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: o.Identity},
		},
		LeaseDuration: o.LeaseDuration,
		RenewDeadline: o.RenewDeadline,
		RetryPeriod:   o.RetryPeriod,
		Name:          o.Namespace + "/" + o.Name,
	}, nil
}
