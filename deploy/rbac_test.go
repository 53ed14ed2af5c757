package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/fleetpack/fleetpack/deploy"
	"github.com/fleetpack/fleetpack/internal/testcontrolplane"
	"github.com/fleetpack/fleetpack/leader"
	"github.com/fleetpack/fleetpack/provisioning"
	"github.com/fleetpack/fleetpack/provisioning/kubecluster"
)

func TestRBACDecodes(t *testing.T) {
	objs, err := deploy.RBACObjects()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[fmt.Sprintf("%T", o)]++
	}
	for _, k := range []string{"*v1.Namespace", "*v1.ServiceAccount", "*v1.ClusterRole", "*v1.ClusterRoleBinding", "*v1.Role", "*v1.RoleBinding"} {
		if kinds[k] != 1 {
			t.Errorf("%d objects of kind %s in rbac.yaml, want 1", kinds[k], k)
		}
	}
}

// forbidden records the requests the API server refused with 403, as
// "verb resource" (resource with its subresource, like pods/status).
type forbidden struct {
	mu   sync.Mutex
	seen []string
	// refused is closed at the first refusal since the last take, so that
	// waits for something that cannot happen now end at once.
	refused chan struct{}
	next    http.RoundTripper
}

func (f *forbidden) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusForbidden {
		f.mu.Lock()
		if len(f.seen) == 0 {
			close(f.refused)
		}
		f.seen = append(f.seen, requestVerb(req)+" "+requestResource(req.URL.Path))
		f.mu.Unlock()
	}
	return resp, err
}

func (f *forbidden) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.seen
	f.seen = nil
	f.refused = make(chan struct{})
	return out
}

// refusal returns a channel closed at the next refusal (or already closed).
func (f *forbidden) refusal() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// requestResource is the resource (and subresource) a request's path names:
// /api/v1/namespaces/ns/pods/p/status is pods/status.
func requestResource(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) > 0 && segs[0] == "api" {
		segs = segs[2:]
	} else if len(segs) > 2 {
		segs = segs[3:]
	}
	if len(segs) >= 3 && segs[0] == "namespaces" {
		segs = segs[2:]
	}
	switch len(segs) {
	case 0:
		return ""
	case 1, 2:
		return segs[0]
	default:
		return segs[0] + "/" + segs[2]
	}
}

func requestVerb(req *http.Request) string {
	named := strings.Count(strings.Trim(req.URL.Path, "/"), "/")%2 == 0 // .../pods/NAME has an even count
	if strings.HasPrefix(req.URL.Path, "/api/") {
		named = !named
	}
	switch req.Method {
	case http.MethodGet:
		if w := req.URL.Query().Get("watch"); w == "true" || w == "1" {
			return "watch"
		}
		if named {
			return "get"
		}
		return "list"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return req.Method
}

// exercise does, as the ServiceAccount, each thing fleetpack does to a
// cluster, through fleetpack's own code (kubecluster, leader), and returns
// what failed: errors of the calls, and every request refused with 403
// (some failures, events and watches, are only logged by fleetpack).
type exercise struct {
	admin  kubernetes.Interface
	sa     *rest.Config
	ns     string
	record *forbidden
	round  int
	// gates are client-go's feature gates as the process has them.
	gates clientfeatures.Gates
}

// withoutWatchList is client-go's feature gates with WatchListClient off.
type withoutWatchList struct{ clientfeatures.Gates }

func (g withoutWatchList) Enabled(f clientfeatures.Feature) bool {
	return f != clientfeatures.WatchListClient && g.Gates.Enabled(f)
}

func (e *exercise) run(t *testing.T) []string {
	t.Helper()
	e.round++
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var failed []string
	fail := func(what string, err error) {
		if err != nil {
			failed = append(failed, what+": "+err.Error())
		}
	}
	suffix := fmt.Sprintf("-%d", e.round)
	pods := map[string]*corev1.Pod{}
	// (The "watched" pod is created once the informers run, below.)
	for _, name := range []string{"nominate", "evict", "delete", "event"} {
		p, err := e.admin.CoreV1().Pods(e.ns).Create(ctx, testPod(name+suffix), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods[name] = p
	}
	client, err := kubernetes.NewForConfig(e.sa)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cluster, err := kubecluster.New(client, kubecluster.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}

	// Informers: pods and nodes listed, then watched.
	synced := make(chan error, 1)
	go func() { synced <- cluster.Start(ctx) }()
	select {
	case err := <-synced:
		fail("informers", err)
	case <-e.record.refusal():
		fail("informers", errors.New("refused"))
	case <-time.After(3 * time.Second):
		fail("informers", errors.New("caches not synced within 3s"))
	}
	if len(failed) == 0 {
		node := testNode("watched" + suffix)
		if _, err := e.admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		watched, err := e.admin.CoreV1().Pods(e.ns).Create(ctx, testPod("watched"+suffix), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fail("seeing a new node and pod", within(5*time.Second, func() bool {
			_, nerr := cluster.GetNode(ctx, node.Name)
			list, _ := cluster.ListPods(ctx)
			return nerr == nil && slices.ContainsFunc(list, func(p *corev1.Pod) bool { return p.UID == watched.UID })
		}))
		_ = e.admin.CoreV1().Nodes().Delete(ctx, node.Name, metav1.DeleteOptions{})
	}

	// API servers that do not stream the initial list through a watch
	// (older ones, or with WatchList off) are listed: client-go falls
	// back to list, as it does with the WatchListClient gate off.
	clientfeatures.ReplaceFeatureGates(withoutWatchList{e.gates})
	listing, err := kubecluster.New(client, kubecluster.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	go func() { synced <- listing.Start(ctx) }()
	select {
	case err := <-synced:
		fail("informers without watch-list", err)
	case <-e.record.refusal():
		fail("informers without watch-list", errors.New("refused"))
	case <-time.After(3 * time.Second):
		fail("informers without watch-list", errors.New("caches not synced within 3s"))
	}
	clientfeatures.ReplaceFeatureGates(e.gates)

	name := "launched" + suffix
	fail("CreateNode", cluster.CreateNode(ctx, testNode(name)))
	registered := testNode(name)
	registered.Labels["fleetpack.dev/extra"] = "x"
	fail("CreateNode of a node the kubelet registered", cluster.CreateNode(ctx, registered))
	fail("Cordon", cluster.Cordon(ctx, name))
	fail("AnnotateNode", cluster.AnnotateNode(ctx, name, map[string]string{"fleetpack.dev/probe": "1"}))
	fail("TaintNode", cluster.TaintNode(ctx, name, corev1.Taint{Key: provisioning.TaintKeyDisrupted, Effect: corev1.TaintEffectNoSchedule}))
	fail("UntaintNode", cluster.UntaintNode(ctx, name, provisioning.TaintKeyDisrupted))
	_, err = cluster.ListPDBs(ctx)
	fail("ListPDBs", err)
	fail("Nominate", cluster.Nominate(ctx, pods["nominate"], name))
	fail("Evict", cluster.Evict(ctx, pods["evict"]))
	fail("DeletePod", cluster.DeletePod(ctx, pods["delete"]))
	cluster.Event(ctx, pods["event"], corev1.EventTypeNormal, "RBACProbe", "probe")
	events, err := e.admin.CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pods["event"].Name})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) == 0 {
		fail("Event", errors.New("no event recorded"))
	}
	fail("DeleteNode", cluster.DeleteNode(ctx, name))

	// Leader election: create the Lease, release it; then take over a
	// Lease whose holder died.
	leases := e.admin.CoordinationV1().Leases(deploy.Namespace)
	_ = leases.Delete(ctx, leader.DefaultLeaseName, metav1.DeleteOptions{})
	fail("leader election on a new lease", e.elect(ctx, client))
	if l, err := leases.Get(ctx, leader.DefaultLeaseName, metav1.GetOptions{}); err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
		fail("releasing the lease", fmt.Errorf("still held by %s", *l.Spec.HolderIdentity))
	}
	_ = leases.Delete(ctx, leader.DefaultLeaseName, metav1.DeleteOptions{})
	dead, one, long := "dead", int32(1), metav1.NewMicroTime(time.Now().Add(-time.Hour))
	if _, err := leases.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: leader.DefaultLeaseName, Namespace: deploy.Namespace},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &dead, LeaseDurationSeconds: &one, RenewTime: &long, AcquireTime: &long},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fail("leader election on a dead leader's lease", e.elect(ctx, client))

	for _, r := range e.record.take() {
		failed = append(failed, "403 on "+r)
	}
	return failed
}

// elect runs leader election until it leads, then stops; it fails if it
// does not lead within 3 s (an allowed election leads at its first try),
// and stops at once when a request is refused.
func (e *exercise) elect(ctx context.Context, client kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	go func() {
		select {
		case <-e.record.refusal():
			cancel()
		case <-ctx.Done():
		}
	}()
	led := false
	err := leader.Run(ctx, leader.Options{
		Client: client, Namespace: deploy.Namespace, Identity: fmt.Sprintf("probe-%d", e.round),
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, func(context.Context) error { led = true; return nil })
	if err != nil {
		return err
	}
	if !led {
		return errors.New("did not lead within 3s")
	}
	return nil
}

// within polls cond until it holds, failing after d (the API server keeps
// real time).
func within(d time.Duration, cond func() bool) error {
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, d, true, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		return fmt.Errorf("not within %s: %w", d, err)
	}
	return nil
}

func testPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
	}
}

func testNode(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"karpenter.sh/nodepool": "default"}},
		Status:     corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}},
	}
}

// permission is one verb of one rule of the ClusterRole or the Role.
type permission struct {
	role       string // ClusterRole, or Role
	rule, verb int
}

// TestControlPlaneRBACNoRuleIsExcess runs fleetpack's calls as the
// ServiceAccount of deploy/rbac.yaml on a real API server in RBAC mode:
// with the roles as shipped nothing is refused; with any one verb of any
// one rule taken away, a request fleetpack makes for that verb is refused.
func TestControlPlaneRBACNoRuleIsExcess(t *testing.T) {
	cp := testcontrolplane.Start(t, testcontrolplane.Options{WithoutScheduler: true, WithoutControllerManager: true})
	ctx := t.Context()
	admin := cp.Client(t)
	objs, err := deploy.RBACObjects()
	if err != nil {
		t.Fatal(err)
	}
	if err := deploy.Apply(ctx, admin, objs); err != nil {
		t.Fatal(err)
	}
	var clusterRole *rbacv1.ClusterRole
	var role *rbacv1.Role
	for _, o := range objs {
		switch o := o.(type) {
		case *rbacv1.ClusterRole:
			clusterRole = o
		case *rbacv1.Role:
			role = o
		}
	}
	record := &forbidden{refused: make(chan struct{})}
	sa := cp.ServiceAccountConfig(t, deploy.Namespace, deploy.ServiceAccount)
	sa.Wrap(func(rt http.RoundTripper) http.RoundTripper { record.next = rt; return record })
	e := &exercise{admin: admin, sa: sa, ns: cp.Namespace(t), record: record, gates: clientfeatures.FeatureGates()}

	if failed := e.run(t); len(failed) > 0 {
		t.Fatalf("with the shipped roles, fleetpack's calls failed:\n  %s", strings.Join(failed, "\n  "))
	}

	var perms []permission
	for i, r := range clusterRole.Rules {
		for v := range r.Verbs {
			perms = append(perms, permission{"ClusterRole", i, v})
		}
	}
	for i, r := range role.Rules {
		for v := range r.Verbs {
			perms = append(perms, permission{"Role", i, v})
		}
	}
	for _, p := range perms {
		rules := clusterRole.Rules
		if p.role == "Role" {
			rules = role.Rules
		}
		r := rules[p.rule]
		verb := r.Verbs[p.verb]
		resource := r.Resources[0]
		t.Run(fmt.Sprintf("without %s %s", verb, resource), func(t *testing.T) {
			less := slices.Clone(rules)
			less[p.rule].Verbs = slices.Delete(slices.Clone(r.Verbs), p.verb, p.verb+1)
			if len(less[p.rule].Verbs) == 0 {
				less = slices.Delete(less, p.rule, p.rule+1)
			}
			apply := func(rules []rbacv1.PolicyRule) {
				t.Helper()
				var obj runtime.Object
				if p.role == "Role" {
					c := role.DeepCopy()
					c.Rules = rules
					obj = c
				} else {
					c := clusterRole.DeepCopy()
					c.Rules = rules
					obj = c
				}
				if err := deploy.Apply(ctx, admin, []runtime.Object{obj}); err != nil {
					t.Fatal(err)
				}
			}
			apply(less)
			waitAllowed(t, admin, r, verb, false)
			failed := e.run(t)
			apply(rules)
			waitAllowed(t, admin, r, verb, true)
			want := "403 on " + verb + " " + resource
			if !slices.Contains(failed, want) {
				t.Errorf("without %s on %s, fleetpack's calls saw no %q; what failed:\n  %s", verb, resource, want, strings.Join(failed, "\n  "))
			}
		})
	}
}

// waitAllowed waits until the API server's authorizer gives the
// ServiceAccount verb on the rule's resource, or refuses it: RBAC changes
// reach the authorizer through its informers, a moment after the write.
func waitAllowed(t *testing.T, admin kubernetes.Interface, r rbacv1.PolicyRule, verb string, allowed bool) {
	t.Helper()
	res, sub, _ := strings.Cut(r.Resources[0], "/")
	attrs := &authorizationv1.ResourceAttributes{Verb: verb, Group: r.APIGroups[0], Resource: res, Subresource: sub, Namespace: deploy.Namespace}
	if len(r.ResourceNames) > 0 {
		attrs.Name = r.ResourceNames[0]
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               "system:serviceaccount:" + deploy.Namespace + ":" + deploy.ServiceAccount,
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + deploy.Namespace, "system:authenticated"},
		ResourceAttributes: attrs,
	}}
	err := within(10*time.Second, func() bool {
		got, err := admin.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), sar, metav1.CreateOptions{})
		return err == nil && got.Status.Allowed == allowed
	})
	if err != nil {
		t.Fatalf("the authorizer did not come to allowed=%v for %s %s: %v", allowed, verb, r.Resources[0], err)
	}
}
