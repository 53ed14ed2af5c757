package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/fleetpack/fleetpack/cloudprovider/aws"
	fakeec2 "github.com/fleetpack/fleetpack/cloudprovider/aws/fake"
	"github.com/fleetpack/fleetpack/deploy"
	"github.com/fleetpack/fleetpack/internal/kubelet"
	"github.com/fleetpack/fleetpack/internal/testcontrolplane"
	"github.com/fleetpack/fleetpack/interruption"
	"github.com/fleetpack/fleetpack/interruption/fakesqs"
	"github.com/fleetpack/fleetpack/leader"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
	"github.com/fleetpack/fleetpack/provisioning/kubecluster"
)

const spotPool = `apiVersion: fleetpack.dev/v1
kind: NodePool
metadata:
  name: default
spec:
  disruption:
    consolidateAfter: 1h
  template:
    spec:
      requirements:
        - key: karpenter.sh/capacity-type
          operator: In
          values: ["spot"]
        - key: kubernetes.io/arch
          operator: In
          values: ["amd64"]
`

// cuttable is a connection to the API server that the test can cut, as when
// the process behind it is killed: every request fails from then on. Armed,
// it cuts itself right after the process has written an interruption
// record, so the process dies having accepted a notice and done nothing
// else, whatever it would do next.
type cuttable struct {
	cut   atomic.Bool
	armed atomic.Bool
	next  http.RoundTripper
}

func (c *cuttable) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		return nil, errors.New("process killed")
	}
	recording := false
	if c.armed.Load() && req.Method == http.MethodPatch && strings.Contains(req.URL.Path, "/nodes/") && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		recording = bytes.Contains(body, []byte(interruption.AnnotationRecord))
	}
	resp, err := c.next.RoundTrip(req)
	if recording && err == nil && resp.StatusCode == http.StatusOK {
		c.cut.Store(true)
	}
	return resp, err
}

// stallingEC2 is one replica's EC2 client: once stall is set, its launches
// hang until the replica dies, so the test can kill a leader in the middle
// of the work a notice started.
type stallingEC2 struct {
	aws.EC2API
	stall    atomic.Bool
	launches atomic.Int64
}

func (s *stallingEC2) CreateFleet(ctx context.Context, in *ec2.CreateFleetInput, opts ...func(*ec2.Options)) (*ec2.CreateFleetOutput, error) {
	s.launches.Add(1)
	if s.stall.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.EC2API.CreateFleet(ctx, in, opts...)
}

// countingSQS counts one replica's receives.
type countingSQS struct {
	interruption.SQSAPI
	receives atomic.Int64
}

func (c *countingSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	c.receives.Add(1)
	return c.SQSAPI.ReceiveMessage(ctx, in, opts...)
}

// replicaProcess is one autoscaler process of the test.
type replicaProcess struct {
	name   string
	conn   *cuttable
	ec2    *stallingEC2
	sqs    *countingSQS
	cancel context.CancelFunc
	done   chan struct{}
	err    error // runAutoscaler's, once done is closed
}

func startReplica(t *testing.T, cp *testcontrolplane.ControlPlane, name string, ec2API aws.EC2API, queue *fakesqs.Queue, pools []*provisioning.NodePool, lease time.Duration) *replicaProcess {
	t.Helper()
	r := &replicaProcess{name: name, conn: &cuttable{}, ec2: &stallingEC2{EC2API: ec2API}, sqs: &countingSQS{SQSAPI: queue}, done: make(chan struct{})}
	cfg := cp.ServiceAccountConfig(t, deploy.Namespace, deploy.ServiceAccount)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { r.conn.next = rt; return r.conn })
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("replica", name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	cluster, err := kubecluster.New(client, kubecluster.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c := &config{
		clusterName: "e2e", region: "us-east-1",
		subnetSelector: map[string]string{"karpenter.sh/discovery": "e2e"},
		launchTemplate: map[string]aws.LaunchTemplate{"amd64": {Name: "e2e-amd64"}},
		queueURL:       queue.URL(),
		leaderElect:    true, leaseNamespace: deploy.Namespace, leaseIdentity: name,
		leaseDuration: lease, renewDeadline: lease * 3 / 4, retryPeriod: 200 * time.Millisecond,
	}
	go func() {
		defer close(r.done)
		r.err = runAutoscaler(ctx, c, client, cluster, pools, awsAPIs{ec2: r.ec2, sqs: r.sqs}, logger)
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// kill ends the process at once: its connection to the API server goes
// first, so it can release nothing and record nothing more.
func (r *replicaProcess) kill() {
	r.conn.cut.Store(true)
	r.cancel()
}

// eventually polls cond until it holds, failing t after d: the processes
// it waits on (an API server, two elections) keep real time.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, d, true, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("%s: not within %s (%v)", what, d, err)
	}
}

func instanceIDOf(node *corev1.Node) string {
	id, _ := aws.ParseProviderID(node.Spec.ProviderID)
	return id
}

// TestControlPlaneTwoReplicasOneLeader runs two autoscaler processes, as
// the program wires them (runAutoscaler with leader election), against a
// real API server as the ServiceAccount of deploy/rbac.yaml, sharing a fake
// EC2 and a fake SQS queue:
//   - only the leader launches for pending pods; the follower's SQS source
//     receives nothing;
//   - a Spot interruption warning is accepted by the leader, which dies
//     right after recording it on the node;
//   - the follower leads within the lease duration + 2 s, finishes the
//     recorded work before the notice's deadline — one replacement launched,
//     the node drained and deleted, its instance terminated — and nothing
//     was launched twice or leaked.
func TestControlPlaneTwoReplicasOneLeader(t *testing.T) {
	cp := testcontrolplane.Start(t, testcontrolplane.Options{WithoutScheduler: true, WithoutControllerManager: true})
	ctx := t.Context()
	admin := cp.Client(t)
	if err := deploy.ApplyRBAC(ctx, admin); err != nil {
		t.Fatal(err)
	}
	catalog, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cloud := fakeec2.NewFromCatalog(catalog, fakeec2.Options{}, map[string]string{"karpenter.sh/discovery": "e2e"}, 100)
	queue := fakesqs.New("https://sqs.us-east-1.amazonaws.com/123456789012/e2e", clock.RealClock{})
	pools, err := provisioning.ParseNodePools([]byte(spotPool))
	if err != nil {
		t.Fatal(err)
	}
	const lease = 4 * time.Second
	leases := admin.CoordinationV1().Leases(deploy.Namespace)
	holder := func() (string, time.Time) {
		l, err := leases.Get(ctx, leader.DefaultLeaseName, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return "", time.Time{}
		}
		return *l.Spec.HolderIdentity, l.Spec.AcquireTime.Time
	}

	sim, err := kubelet.New(admin, kubelet.Options{
		Nodes:  labels.SelectorFromSet(labels.Set{provisioning.LabelManagedBy: provisioning.ManagedBy}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan struct{})
	go func() { defer close(simDone); _ = sim.Run(simCtx) }()
	t.Cleanup(func() { stopSim(); <-simDone })

	a := startReplica(t, cp, "a", cloud, queue, pools, lease)
	eventually(t, 30*time.Second, "a leads", func() bool { h, _ := holder(); return h == "a" })
	b := startReplica(t, cp, "b", cloud, queue, pools, lease)

	ns := cp.Namespace(t)
	controlled := true
	for i := range 2 {
		// Pods of a controller (none runs here to re-create them): a
		// replacement is launched for them, as bare pods get none.
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", i), Namespace: ns, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "e2e-replicaset-web", Controller: &controlled,
			}}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
			}}}},
		}
		if _, err := admin.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The leader launches and nominates; the test binds, as kube-scheduler
	// would (it is left out so that the pods stay where the test puts them),
	// and the kubelet simulator runs them and stops them when evicted.
	var nodeName string
	eventually(t, 60*time.Second, "both pods nominated", func() bool {
		pods, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) != 2 {
			return false
		}
		for _, p := range pods.Items {
			if p.Status.NominatedNodeName == "" {
				return false
			}
			nodeName = p.Status.NominatedNodeName
		}
		return true
	})
	if n := len(cloud.Instances()); n != 1 {
		t.Fatalf("%d instances launched for two small pods, want 1", n)
	}
	for i := range 2 {
		err := admin.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", i)},
			Target:     corev1.ObjectReference{Kind: "Node", Name: nodeName},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	node, err := admin.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// The notice: the leader accepts it (records it on the node) and dies
	// at once; a launch it would still make never reaches EC2.
	a.ec2.stall.Store(true)
	a.conn.armed.Store(true)
	noticeAt := time.Now().UTC().Truncate(time.Second)
	deadline := noticeAt.Add(2 * time.Minute)
	id := instanceIDOf(node)
	queue.Send(fmt.Sprintf(`{"version":"0","id":"e2e-spot-1","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2",`+
		`"account":"123456789012","time":%q,"region":"us-east-1","resources":["arn:aws:ec2:us-east-1:instance/%s"],`+
		`"detail":{"instance-id":%q,"instance-action":"terminate"}}`, noticeAt.Format(time.RFC3339), id, id))
	eventually(t, 30*time.Second, "the leader records the notice on the node", func() bool {
		n, err := admin.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		return err == nil && n.Annotations[interruption.AnnotationRecord] != ""
	})
	if got := b.sqs.receives.Load(); got != 0 {
		t.Errorf("the follower's SQS source received %d times while following", got)
	}
	if got := b.ec2.launches.Load(); got != 0 {
		t.Errorf("the follower called CreateFleet %d times while following", got)
	}
	if a.sqs.receives.Load() == 0 {
		t.Error("the leader's source never received")
	}
	killed := time.Now()
	a.kill()
	<-a.done

	var acquired time.Time
	eventually(t, lease+10*time.Second, "b leads", func() bool {
		h, at := holder()
		acquired = at
		return h == "b"
	})
	if took, bound := acquired.Sub(killed), lease+2*time.Second; took > bound {
		t.Errorf("handover took %s, more than the lease duration + 2 s (%s)", took, bound)
	} else {
		t.Logf("handover %s after the leader was killed (lease %s)", took.Round(time.Millisecond), lease)
	}

	// The new leader finishes the recorded work before the deadline.
	eventually(t, time.Until(deadline), "the interrupted node drained and deleted", func() bool {
		_, err := admin.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		return err != nil
	})
	pods, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 0 {
		t.Errorf("%d pods left after the drain", len(pods.Items))
	}
	var replacements, terminated int
	for _, in := range cloud.Instances() {
		switch {
		case *in.InstanceId == id:
			if in.State.Name != ec2types.InstanceStateNameTerminated && in.State.Name != ec2types.InstanceStateNameShuttingDown {
				t.Errorf("the interrupted instance is %s", in.State.Name)
			}
			terminated++
		default:
			replacements++
		}
	}
	if replacements != 1 || terminated != 1 {
		t.Errorf("%d replacement instances and %d interrupted, want exactly one of each (no double launch)", replacements, terminated)
	}
	// Nothing leaks: every live instance has its node.
	nodes, err := admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, n := range nodes.Items {
		have[instanceIDOf(&n)] = true
	}
	for _, in := range cloud.LiveInstances() {
		if !have[*in.InstanceId] {
			t.Errorf("instance %s runs with no node", *in.InstanceId)
		}
	}
}
