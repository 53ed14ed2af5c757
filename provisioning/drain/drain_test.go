package drain

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 8, 21, 10, 0, 0, 0, time.UTC)

func pod(name string, grace int64, owner string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "n", TerminationGracePeriodSeconds: &grace}}
	if owner != "" {
		ctrl := true
		p.OwnerReferences = []metav1.OwnerReference{{Kind: owner, Name: "o", Controller: &ctrl}}
	}
	return p
}

func names(pods []*corev1.Pod) []string {
	out := []string{}
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func TestNextMovesOnlyPodsThatLeave(t *testing.T) {
	ds := pod("agent", 30, "DaemonSet")
	mirror := pod("proxy", 30, "")
	mirror.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
	done := pod("job", 30, "Job")
	done.Status.Phase = corev1.PodSucceeded
	leaving := pod("old", 30, "ReplicaSet")
	now := metav1.NewTime(t0)
	leaving.DeletionTimestamp = &now
	d := New(t0, Options{})
	st := d.Next(t0, []*corev1.Pod{ds, mirror, done, leaving, pod("web", 30, "ReplicaSet")})
	if got := names(st.Evict); len(got) != 1 || got[0] != "web" || st.Remaining != 2 || st.Terminating != 1 || st.Done {
		t.Fatalf("step = %+v (evict %v), want web evicted, old waited for", st, got)
	}
	if !st.Wake.Equal(t0.Add(DefaultPoll)) {
		t.Errorf("wake %v, want a poll later", st.Wake)
	}
	if st := d.Next(t0, []*corev1.Pod{ds, mirror, done}); !st.Done {
		t.Errorf("only pods that stay left: %+v, want done", st)
	}
}

func TestRecordBacksOffRefusals(t *testing.T) {
	d := New(t0, Options{InitialBackoff: time.Second, MaxBackoff: 4 * time.Second})
	p := pod("web", 30, "ReplicaSet")
	now := t0
	var gaps []time.Duration
	for range 4 {
		st := d.Next(now, []*corev1.Pod{p})
		if len(st.Evict) != 1 {
			t.Fatalf("at +%v: nothing to evict: %+v", now.Sub(t0), st)
		}
		d.Record(now, []Result{{Pod: p, Outcome: Refused, Err: errors.New("budget")}})
		// Until the backoff passes, nothing is evicted.
		if st := d.Next(now, []*corev1.Pod{p}); len(st.Evict) != 0 {
			t.Fatalf("evicted again before the backoff: %+v", st)
		}
		next := d.Next(now, []*corev1.Pod{p}).Wake
		gaps = append(gaps, next.Sub(now))
		now = next
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i := range want {
		if gaps[i] != want[i] {
			t.Fatalf("backoffs %v, want %v", gaps, want)
		}
	}
	if d.Refusals != 4 {
		t.Errorf("refusals = %d, want 4", d.Refusals)
	}
	d.Record(now, []Result{{Pod: p, Outcome: Evicted}})
	if st := d.Next(now, []*corev1.Pod{p}); len(st.Evict) != 1 {
		t.Errorf("an accepted round did not reset the backoff: %+v", st)
	}
}

func TestForceDeletesWhenOnlyGraceIsLeft(t *testing.T) {
	deadline := t0.Add(2 * time.Minute)
	d := New(t0, Options{Deadline: deadline, Force: true})
	short, long := pod("short", 10, "ReplicaSet"), pod("long", 40, "ReplicaSet")
	st := d.Next(t0, []*corev1.Pod{short, long})
	if len(st.Delete) != 0 || len(st.Evict) != 2 {
		t.Fatalf("at once: %+v", st)
	}
	d.Record(t0, []Result{{Pod: short, Outcome: Refused}, {Pod: long, Outcome: Refused}})
	// The long pod's force point is deadline-40s = +80s.
	at := deadline.Add(-40 * time.Second)
	st = d.Next(at.Add(-time.Millisecond), []*corev1.Pod{short, long})
	if len(st.Delete) != 0 || !st.Wake.Equal(at) {
		t.Fatalf("just before the force point: %+v", st)
	}
	st = d.Next(at, []*corev1.Pod{short, long})
	if got := names(st.Delete); len(got) != 1 || got[0] != "long" {
		t.Fatalf("at the force point deleted %v, want long", got)
	}
	if st := d.Next(deadline, []*corev1.Pod{short}); !st.Expired || st.Remaining != 1 {
		t.Errorf("at the deadline: %+v, want expired", st)
	}
}

func TestAwaitStart(t *testing.T) {
	from := t0.Add(time.Minute)
	d := New(t0, Options{AwaitStart: true, EvictFrom: from})
	p := pod("web", 30, "ReplicaSet")
	if st := d.Next(t0, []*corev1.Pod{p}); len(st.Evict) != 0 || d.Evicting() {
		t.Fatalf("evicted before Start: %+v", st)
	}
	if st := d.Next(from, []*corev1.Pod{p}); len(st.Evict) != 1 {
		t.Fatalf("EvictFrom passed, nothing evicted: %+v", st)
	}
	d2 := New(t0, Options{AwaitStart: true})
	if st := d2.Next(t0.Add(time.Hour), []*corev1.Pod{p}); len(st.Evict) != 0 {
		t.Fatalf("no EvictFrom: evicted without Start: %+v", st)
	}
	d2.Start()
	if st := d2.Next(t0.Add(time.Hour), []*corev1.Pod{p}); len(st.Evict) != 1 {
		t.Fatalf("after Start nothing evicted: %+v", st)
	}
}

func TestReplacementsReadyAndHelpers(t *testing.T) {
	ready := &corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	booting := &corev1.Node{}
	nodes := map[string]*corev1.Node{"a": ready, "b": booting}
	if !ReplacementsReady([]string{"a", "gone"}, nodes) || ReplacementsReady([]string{"a", "b"}, nodes) {
		t.Error("ReplacementsReady wrong")
	}
	bare := pod("bare", 5, "")
	if Replaceable(bare) || !Replaceable(pod("web", 5, "ReplicaSet")) || Replaceable(pod("agent", 5, "DaemonSet")) {
		t.Error("Replaceable wrong")
	}
	unset := pod("x", 0, "")
	unset.Spec.TerminationGracePeriodSeconds = nil
	if GracePeriod(unset) != DefaultGracePeriod || LongestGracePeriod([]*corev1.Pod{bare, pod("l", 45, "ReplicaSet"), pod("d", 90, "DaemonSet")}) != 45*time.Second {
		t.Error("grace periods wrong")
	}
}
