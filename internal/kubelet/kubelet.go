// Package kubelet simulates the kubelets of a test cluster: for the nodes it
// is given (by label selector) it does what a kubelet would, enough for
// fleetpack's end-to-end tests on a real control plane without containers.
//
//   - A node is reported Ready, and its Ready condition heartbeats, so the
//     node lifecycle controller lifts the not-ready taint (and kube-scheduler
//     binds pods to it) and never marks it unreachable.
//   - A pod bound to such a node is reported Running and Ready.
//   - A pod being deleted there (an eviction, a scale-down) has its
//     containers stopped at once: the pod object is deleted, as the kubelet
//     does once they have exited.
//
// It reads through shared informers and writes status with merge patches on
// the status subresource, as the real kubelet writes its own status.
package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Options configures a Simulator.
type Options struct {
	// Nodes selects the nodes whose kubelets are simulated; nil selects
	// every node.
	Nodes labels.Selector
	// Heartbeat is how often a node's Ready condition is renewed (default
	// 10 s, well inside the node lifecycle controller's grace period).
	Heartbeat time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// Simulator plays the kubelets of the selected nodes. Run drives it.
type Simulator struct {
	client kubernetes.Interface
	opts   Options
	nodes  corelisters.NodeLister
	pods   corelisters.PodLister
	synced []cache.InformerSynced
	// queue holds "node/NAME" and "pod/NAMESPACE/NAME" keys to act on.
	queue   workqueue.TypedRateLimitingInterface[string]
	factory informers.SharedInformerFactory
}

// New builds a Simulator on client.
func New(client kubernetes.Interface, opts Options) (*Simulator, error) {
	if opts.Nodes == nil {
		opts.Nodes = labels.Everything()
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Simulator{
		client: client, opts: opts,
		factory: informers.NewSharedInformerFactory(client, 0),
		queue:   workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
	}
	nodeInf, podInf := s.factory.Core().V1().Nodes(), s.factory.Core().V1().Pods()
	s.nodes, s.pods = nodeInf.Lister(), podInf.Lister()
	onNode := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			s.queue.Add("node/" + n.Name)
			// Pods bound before the node was selected (or Ready) wait
			// for it.
			if bound, err := s.pods.List(labels.Everything()); err == nil {
				for _, p := range bound {
					if p.Spec.NodeName == n.Name {
						s.queue.Add("pod/" + p.Namespace + "/" + p.Name)
					}
				}
			}
		}
	}
	onPod := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			s.queue.Add("pod/" + p.Namespace + "/" + p.Name)
		}
	}
	for _, reg := range []struct {
		inf     cache.SharedIndexInformer
		handler func(any)
	}{{nodeInf.Informer(), onNode}, {podInf.Informer(), onPod}} {
		h := reg.handler
		r, err := reg.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: h, UpdateFunc: func(_, obj any) { h(obj) },
		})
		if err != nil {
			return nil, fmt.Errorf("kubelet simulator: %w", err)
		}
		s.synced = append(s.synced, reg.inf.HasSynced, r.HasSynced)
	}
	return s, nil
}

// Run simulates the kubelets until ctx is done.
func (s *Simulator) Run(ctx context.Context) error {
	defer s.queue.ShutDown()
	s.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return fmt.Errorf("kubelet simulator: waiting for caches: %w", context.Cause(ctx))
	}
	go s.heartbeat(ctx)
	go func() {
		<-ctx.Done()
		s.queue.ShutDown()
	}()
	for {
		key, quit := s.queue.Get()
		if quit {
			s.factory.Shutdown()
			return nil
		}
		if err := s.sync(ctx, key); err != nil && ctx.Err() == nil {
			s.opts.Logger.DebugContext(ctx, "kubelet simulator: retrying", "key", key, "error", err)
			s.queue.AddRateLimited(key)
		} else {
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}

// heartbeat queues every selected node each Heartbeat, so its Ready
// condition is renewed.
func (s *Simulator) heartbeat(ctx context.Context) {
	tick := time.NewTicker(s.opts.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		nodes, err := s.nodes.List(s.opts.Nodes)
		if err != nil {
			continue
		}
		for _, n := range nodes {
			s.queue.Add("node/" + n.Name)
		}
	}
}

func (s *Simulator) sync(ctx context.Context, key string) error {
	var kind, rest string
	for i := range key {
		if key[i] == '/' {
			kind, rest = key[:i], key[i+1:]
			break
		}
	}
	if kind == "node" {
		return s.syncNode(ctx, rest)
	}
	ns, name, err := cache.SplitMetaNamespaceKey(rest)
	if err != nil {
		return err
	}
	return s.syncPod(ctx, ns, name)
}

// selected returns the node named name if its kubelet is simulated.
func (s *Simulator) selected(name string) *corev1.Node {
	n, err := s.nodes.Get(name)
	if err != nil || n.DeletionTimestamp != nil || !s.opts.Nodes.Matches(labels.Set(n.Labels)) {
		return nil
	}
	return n
}

func (s *Simulator) syncNode(ctx context.Context, name string) error {
	n := s.selected(name)
	if n == nil {
		return nil
	}
	now := time.Now()
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && now.Sub(c.LastHeartbeatTime.Time) < s.opts.Heartbeat/2 {
			return nil
		}
	}
	ready := corev1.NodeCondition{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "simulated kubelet is posting ready status",
		LastHeartbeatTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now),
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready.LastTransitionTime = c.LastTransitionTime
		}
	}
	// A strategic merge patch keys conditions by type: the others (set by
	// nobody here) stay.
	return s.patchStatus(func(patch []byte) error {
		_, err := s.client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
		return err
	}, map[string]any{"conditions": []corev1.NodeCondition{ready}})
}

func (s *Simulator) syncPod(ctx context.Context, ns, name string) error {
	p, err := s.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if p.Spec.NodeName == "" || s.selected(p.Spec.NodeName) == nil {
		return nil
	}
	if p.DeletionTimestamp != nil {
		// The containers have stopped: confirm the deletion.
		zero := int64(0)
		uid := p.UID
		err := s.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
	if p.Status.Phase == corev1.PodRunning && podReady(p) {
		return nil
	}
	now := metav1.Now()
	status := map[string]any{
		"phase": corev1.PodRunning, "startTime": now, "hostIP": "10.0.0.1", "podIP": "10.1.0.1",
		"conditions": []corev1.PodCondition{
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
	}
	return s.patchStatus(func(patch []byte) error {
		_, err := s.client.CoreV1().Pods(ns).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}, status)
}

func (s *Simulator) patchStatus(apply func([]byte) error, status map[string]any) error {
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	return apply(patch)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
