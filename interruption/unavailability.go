package interruption

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Bounds of the unavailability tracking: how often a pod's replacement is
// looked for when the cluster does not say it changed, how long at most,
// and how many evicted pods are followed at once.
const (
	awayPoll  = 5 * time.Second
	awayLimit = 30 * time.Minute
	maxAway   = 10000
)

// unavailability follows pods the handler evicted, deleted or lost with
// their node until a pod of the same controller, created since, runs and
// is Ready: the time in between is the pod's unavailability
// (Metrics.PodUnavailability). It is guarded by Handler.mu.
type unavailability struct {
	pending []awayPod
}

type awayPod struct {
	kind  Kind
	owner types.UID
	uid   types.UID
	at    time.Time
}

// add follows pod, gone at at; bare pods have no replacement to wait for.
func (u *unavailability) add(kind Kind, pod *corev1.Pod, at time.Time) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return
	}
	if len(u.pending) >= maxAway {
		u.pending = u.pending[1:]
	}
	u.pending = append(u.pending, awayPod{kind: kind, owner: ref.UID, uid: pod.UID, at: at})
}

// observe matches the followed pods with the running pods of their
// controllers, oldest first, each running pod used once, and reports each
// match's unavailability. Pods followed for longer than awayLimit at now
// are dropped.
func (u *unavailability) observe(pods []*corev1.Pod, now time.Time, report func(Kind, time.Duration)) {
	if len(u.pending) == 0 {
		return
	}
	byOwner := map[types.UID][]*corev1.Pod{}
	for _, p := range pods {
		if ref := metav1.GetControllerOf(p); ref != nil {
			byOwner[ref.UID] = append(byOwner[ref.UID], p)
		}
	}
	used := map[types.UID]bool{}
	kept := u.pending[:0]
	for _, a := range u.pending {
		matched := false
		for _, p := range byOwner[a.owner] {
			if used[p.UID] || p.UID == a.uid || p.CreationTimestamp.Time.Before(a.at.Truncate(time.Second)) {
				continue
			}
			ready, ok := readySince(p)
			if !ok {
				continue
			}
			used[p.UID] = true
			matched = true
			report(a.kind, max(ready.Sub(a.at), 0))
			break
		}
		if !matched && now.Sub(a.at) <= awayLimit {
			kept = append(kept, a)
		}
	}
	u.pending = kept
}

// readySince reports whether pod runs and is Ready, and since when.
func readySince(p *corev1.Pod) (time.Time, bool) {
	if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		return time.Time{}, false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time, c.Status == corev1.ConditionTrue
		}
	}
	if p.Status.StartTime != nil {
		return p.Status.StartTime.Time, true
	}
	return p.CreationTimestamp.Time, true
}
