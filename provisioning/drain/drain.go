package drain

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults for Options.
const (
	// DefaultInitialBackoff is the first wait after a refused eviction:
	// budgets free up as replacements become ready, which takes seconds.
	DefaultInitialBackoff = time.Second
	// DefaultMaxBackoff bounds the wait between eviction rounds.
	DefaultMaxBackoff = 5 * time.Second
	// DefaultPoll is how soon a drain looks again while pods are
	// terminating or were just evicted.
	DefaultPoll = time.Second
	// DefaultGracePeriod is a pod's terminationGracePeriodSeconds when
	// unset, as in Kubernetes.
	DefaultGracePeriod = 30 * time.Second
)

// Options configure a Drain. Zero values take the defaults.
type Options struct {
	// Deadline ends the drain: with Force, pods still held once only their
	// grace period is left before it are deleted; the step at or after it
	// is Expired if pods remain. Zero: no deadline.
	Deadline time.Time
	// Force deletes pods whose eviction is still refused when only their
	// termination grace period is left before Deadline.
	Force bool
	// AwaitStart holds evictions back until Start is called (the caller
	// waits for replacement capacity) or EvictFrom passes, whichever comes
	// first.
	AwaitStart bool
	// EvictFrom, if set with AwaitStart, is the latest time evictions wait
	// for Start. Zero: no limit.
	EvictFrom time.Time
	// InitialBackoff and MaxBackoff bound the retry of refused evictions.
	InitialBackoff, MaxBackoff time.Duration
	// Poll is how soon to look again while pods are leaving.
	Poll time.Duration
}

// Drain is the bookkeeping of one node's drain: when it began, when
// evictions may start and when they may be tried again. Create it with New;
// it is not safe for concurrent use.
type Drain struct {
	opts Options
	// Started is when the drain was created.
	Started time.Time
	// started is set once evictions may begin (Start, or EvictFrom passed).
	started   bool
	nextEvict time.Time
	backoff   time.Duration
	// Refusals counts refused or failed evictions so far.
	Refusals int
}

// New returns the drain of one node, begun at now.
func New(now time.Time, opts Options) *Drain {
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = DefaultInitialBackoff
	}
	if opts.MaxBackoff < opts.InitialBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.InitialBackoff)
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	return &Drain{opts: opts, Started: now, started: !opts.AwaitStart, backoff: opts.InitialBackoff}
}

// Deadline is the drain's deadline (zero: none).
func (d *Drain) Deadline() time.Time { return d.opts.Deadline }

// Start lets evictions begin now: the capacity the caller waited for is
// there.
func (d *Drain) Start() { d.started = true }

// Evicting reports whether evictions have begun (no AwaitStart, Start was
// called, or EvictFrom had passed at the last Next).
func (d *Drain) Evicting() bool { return d.started }

// Step is what a drain says to do now.
type Step struct {
	// Evict are the pods to evict through the Eviction API.
	Evict []*corev1.Pod
	// Delete are the pods to delete without their budget's consent: the
	// node goes before they could be evicted.
	Delete []*corev1.Pod
	// Wake is when to call Next again at the latest (a cluster change may
	// be a reason to call it sooner). Zero when Done or Expired.
	Wake time.Time
	// Done is set when no pod that moves on drain is left on the node.
	Done bool
	// Expired is set when the deadline has come with pods left.
	Expired bool
	// Remaining counts the pods that still have to leave.
	Remaining int
	// Terminating counts those already on their way out.
	Terminating int
}

// Next says what to do at now with the node's pods (pods bound elsewhere,
// and pods that stay with the node, are ignored). It is pure: the caller
// applies the step and reports the answers with Record.
func (d *Drain) Next(now time.Time, pods []*corev1.Pod) Step {
	var moving []*corev1.Pod
	for _, p := range pods {
		if MovesOnDrain(p) {
			moving = append(moving, p)
		}
	}
	st := Step{Remaining: len(moving)}
	if len(moving) == 0 {
		st.Done = true
		return st
	}
	dl := d.opts.Deadline
	if !dl.IsZero() && !now.Before(dl) {
		st.Expired = true
		return st
	}
	if !d.started && !d.opts.EvictFrom.IsZero() && !now.Before(d.opts.EvictFrom) {
		d.started = true
	}
	var wake time.Time
	earlier := func(t time.Time) {
		if t.After(now) && (wake.IsZero() || t.Before(wake)) {
			wake = t
		}
	}
	if !dl.IsZero() {
		earlier(dl)
	}
	evictNow := d.started && !now.Before(d.nextEvict)
	for _, p := range moving {
		if p.DeletionTimestamp != nil {
			st.Terminating++
			continue
		}
		if d.opts.Force && !dl.IsZero() {
			forceAt := dl.Add(-GracePeriod(p))
			if !now.Before(forceAt) {
				st.Delete = append(st.Delete, p)
				continue
			}
			earlier(forceAt)
		}
		if evictNow {
			st.Evict = append(st.Evict, p)
		}
	}
	switch {
	case !d.started:
		if !d.opts.EvictFrom.IsZero() {
			earlier(d.opts.EvictFrom)
		}
		// The caller waits for capacity it cannot be told about.
		earlier(now.Add(d.opts.Poll))
	case !evictNow:
		earlier(d.nextEvict)
	}
	if st.Terminating > 0 || len(st.Evict) > 0 || len(st.Delete) > 0 {
		// Pods on their way out take a moment to go.
		earlier(now.Add(d.opts.Poll))
	}
	st.Wake = wake
	return st
}

// Outcome is the Eviction API's answer for one pod.
type Outcome int

// Outcomes.
const (
	// Evicted: the eviction (or deletion) was accepted.
	Evicted Outcome = iota
	// Gone: the pod no longer existed.
	Gone
	// Refused: a PodDisruptionBudget allows no disruption now.
	Refused
	// Failed: any other error; retried like a refusal.
	Failed
)

// Result is the answer for one pod of a step.
type Result struct {
	Pod     *corev1.Pod
	Outcome Outcome
	Err     error
}

// Record takes in the answers to the evictions of the step taken at now:
// any refusal or failure backs the next round off (doubling up to
// MaxBackoff); a round without one resets the backoff.
func (d *Drain) Record(now time.Time, results []Result) {
	if !slices.ContainsFunc(results, func(r Result) bool { return r.Outcome == Refused || r.Outcome == Failed }) {
		d.backoff = d.opts.InitialBackoff
		d.nextEvict = time.Time{}
		return
	}
	for _, r := range results {
		if r.Outcome == Refused || r.Outcome == Failed {
			d.Refusals++
		}
	}
	d.nextEvict = now.Add(d.backoff)
	d.backoff = min(2*d.backoff, d.opts.MaxBackoff)
}

// GracePeriod is the pod's terminationGracePeriodSeconds (DefaultGracePeriod
// if unset).
func GracePeriod(pod *corev1.Pod) time.Duration {
	if s := pod.Spec.TerminationGracePeriodSeconds; s != nil && *s >= 0 {
		return time.Duration(*s) * time.Second
	}
	return DefaultGracePeriod
}

// LongestGracePeriod is the longest GracePeriod among the pods that move on
// drain (zero if none).
func LongestGracePeriod(pods []*corev1.Pod) time.Duration {
	var longest time.Duration
	for _, p := range pods {
		if MovesOnDrain(p) {
			longest = max(longest, GracePeriod(p))
		}
	}
	return longest
}

// MovesOnDrain reports whether a drain must evict pod from its node: not a
// daemonset pod (its daemonset runs it everywhere and it goes with the
// node), not a mirror pod, not a finished pod.
func MovesOnDrain(pod *corev1.Pod) bool {
	return !IsDaemonSetPod(pod) && !IsMirrorPod(pod) && !IsTerminal(pod)
}

// Replaceable reports whether a controller re-creates pod once it is
// evicted, so replacement capacity for it is worth launching. A bare pod
// (no controller) evicted is gone for good.
func Replaceable(pod *corev1.Pod) bool {
	return MovesOnDrain(pod) && metav1.GetControllerOf(pod) != nil
}

// IsDaemonSetPod reports whether a DaemonSet controls pod.
func IsDaemonSetPod(pod *corev1.Pod) bool {
	ref := metav1.GetControllerOf(pod)
	return ref != nil && ref.Kind == "DaemonSet"
}

// IsMirrorPod reports whether pod is the API server's mirror of a static pod,
// which cannot be evicted and goes with its node.
func IsMirrorPod(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[corev1.MirrorPodAnnotationKey]
	return ok
}

// IsTerminal reports whether pod has finished (Succeeded or Failed).
func IsTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// IsNodeReady reports whether node's Ready condition is True.
func IsNodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ReplacementsReady reports whether every named replacement node is Ready or
// gone (a replacement that went is no longer waited for); nodes maps names
// to the current nodes. This is "replace, then wait for Ready": evictions
// begin once it holds.
func ReplacementsReady(names []string, nodes map[string]*corev1.Node) bool {
	for _, name := range names {
		if n := nodes[name]; n != nil && n.DeletionTimestamp == nil && !IsNodeReady(n) {
			return false
		}
	}
	return true
}
