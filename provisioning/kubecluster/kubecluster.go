package kubecluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"

	"github.com/fleetpack/fleetpack/provisioning"
)

// DefaultFieldManager is the field manager fleetpack's writes carry.
const DefaultFieldManager = "fleetpack"

// Options configures a Cluster.
type Options struct {
	// FieldManager names fleetpack in managedFields; defaults to
	// DefaultFieldManager.
	FieldManager string
	// ResyncPeriod is the informers' resync period; 0 disables resync.
	ResyncPeriod time.Duration
	// Clock stamps events; defaults to the real clock.
	Clock clock.PassiveClock
	// Logger receives errors that have no caller to return to (event
	// recording); defaults to slog.Default().
	Logger *slog.Logger
}

// Cluster implements provisioning.Cluster on a Kubernetes API server through
// client-go: reads come from shared informers, writes go to the API (cordon
// as a strategic-merge patch, nominations as a status patch, binds through
// pods/binding, evictions through policy/v1 Eviction).
//
// Informer caches lag the writes that fleetpack makes. So that a provisioning
// pass right after a launch still sees the capacity it bought, nodes created
// and pods nominated through this Cluster are overlaid on the cache until the
// cache has caught up.
type Cluster struct {
	client  kubernetes.Interface
	opts    Options
	factory informers.SharedInformerFactory
	pods    corelisters.PodLister
	nodes   corelisters.NodeLister
	synced  []cache.InformerSynced

	mu sync.Mutex
	// created holds nodes created here that the cache has not shown yet.
	created map[string]*corev1.Node
	// nominated holds nominations made here until the cache shows a newer
	// version of the pod than the one nominated.
	nominated map[types.UID]overlayNomination

	changes provisioning.ChangeFeed

	// events numbers event names, so two events on one object at one
	// instant (a fake clock) do not collide.
	events atomic.Uint64
}

type overlayNomination struct {
	node string
	// resourceVersion is the cached pod's version when it was nominated.
	resourceVersion string
}

var (
	_ provisioning.Cluster       = (*Cluster)(nil)
	_ provisioning.EventRecorder = (*Cluster)(nil)
	// Consolidation needs these; a drifted signature fails here, not at
	// run time.
	_ provisioning.NodeTainter = (*Cluster)(nil)
	_ provisioning.PDBLister   = (*Cluster)(nil)
)

// New builds a Cluster on client. Call Start before using it.
func New(client kubernetes.Interface, opts Options) (*Cluster, error) {
	if client == nil {
		return nil, errors.New("kubecluster.New: client is required")
	}
	if opts.FieldManager == "" {
		opts.FieldManager = DefaultFieldManager
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Cluster{
		client: client, opts: opts,
		factory:   informers.NewSharedInformerFactory(client, opts.ResyncPeriod),
		created:   map[string]*corev1.Node{},
		nominated: map[types.UID]overlayNomination{},
	}
	podInformer := c.factory.Core().V1().Pods()
	nodeInformer := c.factory.Core().V1().Nodes()
	c.pods, c.nodes = podInformer.Lister(), nodeInformer.Lister()
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.notify() },
		UpdateFunc: func(any, any) { c.notify() },
		DeleteFunc: func(any) { c.notify() },
	}
	for _, inf := range []cache.SharedIndexInformer{podInformer.Informer(), nodeInformer.Informer()} {
		reg, err := inf.AddEventHandler(handler)
		if err != nil {
			return nil, fmt.Errorf("kubecluster.New: adding event handler: %w", err)
		}
		c.synced = append(c.synced, inf.HasSynced, reg.HasSynced)
	}
	return c, nil
}

// Start starts the informers and waits until their caches have synced or
// ctx is done. The informers stop when ctx is done.
func (c *Cluster) Start(ctx context.Context) error {
	c.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return fmt.Errorf("kubecluster: waiting for pod and node caches: %w", context.Cause(ctx))
	}
	return nil
}

func (c *Cluster) notify() { c.changes.Notify() }

// Changes implements provisioning.Cluster.
func (c *Cluster) Changes(ctx context.Context) <-chan struct{} { return c.changes.Subscribe(ctx) }

// ListPods implements provisioning.Cluster.
func (c *Cluster) ListPods(ctx context.Context) ([]*corev1.Pod, error) {
	cached, err := c.pods.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(cached))
	seen := make(map[types.UID]bool, len(cached))
	for _, p := range cached {
		p = p.DeepCopy()
		seen[p.UID] = true
		if nom, ok := c.nominated[p.UID]; ok {
			if p.ResourceVersion != nom.resourceVersion || p.Spec.NodeName != "" {
				// The cache has seen our write or a later one.
				delete(c.nominated, p.UID)
			} else {
				p.Status.NominatedNodeName = nom.node
			}
		}
		out = append(out, p)
	}
	for uid := range c.nominated {
		if !seen[uid] {
			delete(c.nominated, uid)
		}
	}
	return out, nil
}

// ListNodes implements provisioning.Cluster.
func (c *Cluster) ListNodes(ctx context.Context) ([]*corev1.Node, error) {
	cached, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*corev1.Node, 0, len(cached)+len(c.created))
	for _, n := range cached {
		delete(c.created, n.Name)
		out = append(out, n.DeepCopy())
	}
	for _, n := range c.created {
		out = append(out, n.DeepCopy())
	}
	return out, nil
}

// GetNode implements provisioning.Cluster.
func (c *Cluster) GetNode(ctx context.Context, name string) (*corev1.Node, error) {
	n, err := c.nodes.Get(name)
	if err == nil {
		return n.DeepCopy(), nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.created[name]; ok {
		return n.DeepCopy(), nil
	}
	return nil, &provisioning.NotFoundError{Kind: "Node", Name: name}
}

// CreateNode implements provisioning.Cluster. A node the kubelet registered
// first (AlreadyExists) counts as created, once it has the labels it lacks
// (its NodePool's labels, fleetpack's ownership mark): without them pods
// selecting the pool would not land there, and fleetpack would never clean
// the node up. Labels the kubelet set are left as they are.
func (c *Cluster) CreateNode(ctx context.Context, node *corev1.Node) error {
	created, err := c.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{FieldManager: c.opts.FieldManager})
	if apierrors.IsAlreadyExists(err) {
		return c.addMissingLabels(ctx, node)
	}
	if err != nil {
		return fmt.Errorf("creating node %s: %w", node.Name, err)
	}
	c.mu.Lock()
	c.created[created.Name] = created
	c.mu.Unlock()
	c.notify()
	return nil
}

// addMissingLabels adds to the existing node named like node the labels of
// node it does not have, with a merge patch on metadata.labels alone.
func (c *Cluster) addMissingLabels(ctx context.Context, node *corev1.Node) error {
	existing, err := c.client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading node %s, registered before fleetpack created it: %w", node.Name, err)
	}
	missing := map[string]string{}
	for k, v := range node.Labels {
		if _, ok := existing.Labels[k]; !ok {
			missing[k] = v
		}
	}
	if len(missing) == 0 {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": missing}})
	if err != nil {
		return fmt.Errorf("labelling node %s: %w", node.Name, err)
	}
	if _, err := c.client.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: c.opts.FieldManager}); err != nil {
		return fmt.Errorf("labelling node %s, registered before fleetpack created it: %w", node.Name, err)
	}
	return nil
}

// DeleteNode implements provisioning.Cluster.
func (c *Cluster) DeleteNode(ctx context.Context, name string) error {
	c.mu.Lock()
	delete(c.created, name)
	c.mu.Unlock()
	err := c.client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return &provisioning.NotFoundError{Kind: "Node", Name: name}
	}
	if err != nil {
		return fmt.Errorf("deleting node %s: %w", name, err)
	}
	return nil
}

// Cordon implements provisioning.Cluster with a strategic-merge patch that
// touches only spec.unschedulable.
func (c *Cluster) Cordon(ctx context.Context, name string) error {
	_, err := c.client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType,
		[]byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{FieldManager: c.opts.FieldManager})
	if apierrors.IsNotFound(err) {
		return &provisioning.NotFoundError{Kind: "Node", Name: name}
	}
	if err != nil {
		return fmt.Errorf("cordoning node %s: %w", name, err)
	}
	return nil
}

// TaintNode implements provisioning.NodeTainter, retrying on conflict.
func (c *Cluster) TaintNode(ctx context.Context, name string, taint corev1.Taint) error {
	return c.editTaints(ctx, name, func(taints []corev1.Taint) []corev1.Taint {
		taints = slices.DeleteFunc(taints, func(t corev1.Taint) bool { return t.MatchTaint(&taint) })
		return append(taints, taint)
	})
}

// UntaintNode implements provisioning.NodeTainter, retrying on conflict.
func (c *Cluster) UntaintNode(ctx context.Context, name, key string) error {
	return c.editTaints(ctx, name, func(taints []corev1.Taint) []corev1.Taint {
		return slices.DeleteFunc(taints, func(t corev1.Taint) bool { return t.Key == key })
	})
}

func (c *Cluster) editTaints(ctx context.Context, name string, edit func([]corev1.Taint) []corev1.Taint) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		// A merge patch replaces the list; the resourceVersion makes it
		// fail with a conflict, retried, if the taints changed meanwhile.
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": node.ResourceVersion},
			"spec":     map[string]any{"taints": edit(node.Spec.Taints)},
		})
		if err != nil {
			return err
		}
		_, err = c.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: c.opts.FieldManager})
		return err
	})
	if apierrors.IsNotFound(err) {
		return &provisioning.NotFoundError{Kind: "Node", Name: name}
	}
	if err != nil {
		return fmt.Errorf("changing the taints of node %s: %w", name, err)
	}
	return nil
}

// ListPDBs implements provisioning.PDBLister with one list call; the
// disruption controller keeps their status.
func (c *Cluster) ListPDBs(ctx context.Context) ([]*policyv1.PodDisruptionBudget, error) {
	list, err := c.client.PolicyV1().PodDisruptionBudgets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing PodDisruptionBudgets: %w", err)
	}
	out := make([]*policyv1.PodDisruptionBudget, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// AnnotateNode implements provisioning.Cluster with a merge patch that
// touches only the named annotations (null removes one).
func (c *Cluster) AnnotateNode(ctx context.Context, name string, annotations map[string]string) error {
	values := make(map[string]any, len(annotations))
	for k, v := range annotations {
		if v == "" {
			values[k] = nil
		} else {
			values[k] = v
		}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": values}})
	if err != nil {
		return fmt.Errorf("annotating node %s: %w", name, err)
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: c.opts.FieldManager})
	if apierrors.IsNotFound(err) {
		return &provisioning.NotFoundError{Kind: "Node", Name: name}
	}
	if err != nil {
		return fmt.Errorf("annotating node %s: %w", name, err)
	}
	return nil
}

// Nominate implements provisioning.Cluster by patching the pod's
// status.nominatedNodeName (a merge patch on the status subresource). A pod
// a scheduler bound since the caller listed it is left alone: the API server
// refuses a nomination on a bound pod ("may not be set on pods that are
// already bound to a node"), and the pod has a node, so there is nothing to
// record.
func (c *Cluster) Nominate(ctx context.Context, pod *corev1.Pod, nodeName string) error {
	patch := fmt.Sprintf(`{"status":{"nominatedNodeName":%q}}`, nodeName)
	_, err := c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, []byte(patch),
		metav1.PatchOptions{FieldManager: c.opts.FieldManager}, "status")
	if apierrors.IsNotFound(err) {
		return &provisioning.NotFoundError{Kind: "Pod", Name: provisioning.PodKey(pod)}
	}
	if alreadyBound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nominating pod %s to %s: %w", provisioning.PodKey(pod), nodeName, err)
	}
	// The caller's copy came from the cache: once the cache holds any other
	// version, it has caught up with this patch (or something later).
	c.mu.Lock()
	c.nominated[pod.UID] = overlayNomination{node: nodeName, resourceVersion: pod.ResourceVersion}
	c.mu.Unlock()
	return nil
}

// alreadyBound reports whether err is the API server's refusal to nominate a
// pod that is bound to a node.
func alreadyBound(err error) bool {
	if !apierrors.IsInvalid(err) {
		return false
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, cause := range status.Status().Details.Causes {
		if cause.Field == "status.nominatedNodeName" && cause.Type == metav1.CauseType(field.ErrorTypeForbidden) {
			return true
		}
	}
	return false
}

// uidPreconditionFailed reports whether err is the API server's answer to a
// write whose UID precondition names a pod that no longer exists (another pod
// of the same name may).
func uidPreconditionFailed(err error) bool {
	return apierrors.IsConflict(err) && strings.Contains(err.Error(), "UID")
}

// Bind implements provisioning.Cluster through pods/binding, with the pod's
// UID as a precondition so a re-created pod of the same name is not bound.
func (c *Cluster) Bind(ctx context.Context, pod *corev1.Pod, nodeName string) error {
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: nodeName},
	}
	err := c.client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{FieldManager: c.opts.FieldManager})
	if apierrors.IsNotFound(err) || uidPreconditionFailed(err) {
		return &provisioning.NotFoundError{Kind: "Pod", Name: provisioning.PodKey(pod)}
	}
	if err != nil {
		return fmt.Errorf("binding pod %s to %s: %w", provisioning.PodKey(pod), nodeName, err)
	}
	return nil
}

// Evict implements provisioning.Cluster through policy/v1 Eviction. A 429
// TooManyRequests (a PodDisruptionBudget forbids it now) becomes a
// *provisioning.EvictionBlockedError.
func (c *Cluster) Evict(ctx context.Context, pod *corev1.Pod) error {
	eviction := &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
	}
	if pod.UID != "" {
		uid := pod.UID
		eviction.DeleteOptions = &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}
	}
	err := c.client.PolicyV1().Evictions(pod.Namespace).Evict(ctx, eviction)
	switch {
	case err == nil:
		return nil
	case apierrors.IsTooManyRequests(err):
		return &provisioning.EvictionBlockedError{Pod: provisioning.PodKey(pod), Reason: err.Error()}
	case apierrors.IsNotFound(err):
		return &provisioning.NotFoundError{Kind: "Pod", Name: provisioning.PodKey(pod)}
	case uidPreconditionFailed(err):
		// The pod we meant is gone.
		return &provisioning.NotFoundError{Kind: "Pod", Name: provisioning.PodKey(pod)}
	}
	return fmt.Errorf("evicting pod %s: %w", provisioning.PodKey(pod), err)
}

// DeletePod implements provisioning.Cluster, with the pod's UID as a
// precondition.
func (c *Cluster) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	opts := metav1.DeleteOptions{}
	if pod.UID != "" {
		uid := pod.UID
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, opts)
	if apierrors.IsNotFound(err) || uidPreconditionFailed(err) {
		return &provisioning.NotFoundError{Kind: "Pod", Name: provisioning.PodKey(pod)}
	}
	if err != nil {
		return fmt.Errorf("deleting pod %s: %w", provisioning.PodKey(pod), err)
	}
	return nil
}

// Event implements provisioning.EventRecorder by creating a core/v1 Event.
// Failures are logged, not returned: events are best effort.
func (c *Cluster) Event(ctx context.Context, obj runtime.Object, eventType, reason, message string) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	kind := "Pod"
	if _, isNode := obj.(*corev1.Node); isNode {
		kind = "Node"
	} else if gvk := obj.GetObjectKind().GroupVersionKind(); gvk.Kind != "" {
		kind = gvk.Kind
	}
	ns := m.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	now := metav1.NewTime(c.opts.Clock.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x%x", m.GetName(), now.UnixNano(), c.events.Add(1)), Namespace: ns},
		InvolvedObject: corev1.ObjectReference{
			Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID(),
			APIVersion: "v1", ResourceVersion: m.GetResourceVersion(),
		},
		Reason: reason, Message: message, Type: eventType,
		Source:         corev1.EventSource{Component: c.opts.FieldManager},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "fleetpack.dev/" + c.opts.FieldManager,
		ReportingInstance:   c.opts.FieldManager,
	}
	if _, err := c.client.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{FieldManager: c.opts.FieldManager}); err != nil {
		c.opts.Logger.WarnContext(ctx, "recording event failed", "object", m.GetName(), "reason", reason, "error", err)
	}
}
