package provisioning

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fleetpack/fleetpack/provisioning/drain"
)

// Cluster is what fleetpack reads from and does to a Kubernetes cluster. The
// provisioner, empty-node removal and the interruption handler need nothing
// else. MemoryCluster implements it in memory; provisioning/kubecluster
// implements it with client-go.
//
// Objects returned by List* and Get* are the caller's: implementations return
// copies, so callers may modify them.
type Cluster interface {
	// ListPods returns every pod in the cluster.
	ListPods(ctx context.Context) ([]*corev1.Pod, error)
	// ListNodes returns every node in the cluster.
	ListNodes(ctx context.Context) ([]*corev1.Node, error)
	// GetNode returns the named node, or an error satisfying IsNotFound.
	GetNode(ctx context.Context, name string) (*corev1.Node, error)
	// Changes returns a channel that receives a value after pods or nodes
	// change. Notifications coalesce (the channel holds at most one), so a
	// receiver must re-list rather than count them. The channel is closed
	// when ctx is done.
	Changes(ctx context.Context) <-chan struct{}

	// CreateNode registers a node for an instance that was just launched,
	// before its kubelet reports (the node is not Ready yet). If the
	// kubelet registered the node first, CreateNode succeeds once the node
	// has the labels of node it lacked; labels the kubelet set stay.
	CreateNode(ctx context.Context, node *corev1.Node) error
	// DeleteNode removes the node object. Pods bound to it are removed
	// by the cluster (and re-created by their controllers).
	DeleteNode(ctx context.Context, name string) error
	// Cordon marks the node unschedulable.
	Cordon(ctx context.Context, name string) error
	// AnnotateNode sets the node's annotations named in annotations to
	// their values, leaving its other annotations alone; a key mapped to
	// "" is removed. The interruption handler keeps the state of its work
	// on a node there, so that a restarted process can finish it.
	AnnotateNode(ctx context.Context, name string, annotations map[string]string) error

	// Nominate records that pod is expected to run on node (status
	// nominatedNodeName), so that it is not provisioned for twice. A pod
	// that a scheduler bound since the caller read it is left as it is,
	// and Nominate returns nil: it has its node. A pod that is gone
	// returns an IsNotFound error.
	Nominate(ctx context.Context, pod *corev1.Pod, nodeName string) error
	// Bind binds pod to node (the pods/binding subresource).
	Bind(ctx context.Context, pod *corev1.Pod, nodeName string) error
	// Evict asks for pod to be evicted through the Eviction API, so that
	// PodDisruptionBudgets hold: when a budget forbids it, the error
	// satisfies IsEvictionBlocked and the caller should retry later.
	// Evicting a pod that is already gone returns an IsNotFound error.
	Evict(ctx context.Context, pod *corev1.Pod) error
	// DeletePod deletes pod without consulting disruption budgets. Like
	// Evict, it acts only on the pod with pod's UID: a pod that is gone,
	// even if another of the same name exists, returns an IsNotFound error.
	DeletePod(ctx context.Context, pod *corev1.Pod) error
}

// NodeTainter is implemented by clusters that can taint nodes; consolidation
// needs it to keep pods off the nodes it is removing, and to let them back
// when a move is abandoned.
type NodeTainter interface {
	// TaintNode adds taint to the node, replacing a taint of the same key
	// and effect.
	TaintNode(ctx context.Context, name string, taint corev1.Taint) error
	// UntaintNode removes the node's taints with key.
	UntaintNode(ctx context.Context, name, key string) error
}

// PDBLister is implemented by clusters that can list PodDisruptionBudgets
// with their status; consolidation then skips nodes whose pods the budgets
// would not let go (the Eviction API enforces them either way).
type PDBLister interface {
	ListPDBs(ctx context.Context) ([]*policyv1.PodDisruptionBudget, error)
}

// EventRecorder is implemented by clusters that can record Kubernetes events
// on objects. The provisioner uses it when the Cluster has it.
type EventRecorder interface {
	// Event records an event of eventType (corev1.EventTypeNormal or
	// corev1.EventTypeWarning) on obj.
	Event(ctx context.Context, obj runtime.Object, eventType, reason, message string)
}

// EvictionBlockedError says an eviction was refused because a
// PodDisruptionBudget allows no disruption now: the Eviction API's 429
// TooManyRequests. Retry later.
type EvictionBlockedError struct {
	// Pod is namespace/name of the pod.
	Pod string
	// Budget is the name of the budget that blocked, if known.
	Budget string
	// Reason is the API server's or the budget's message.
	Reason string
}

func (e *EvictionBlockedError) Error() string {
	if e.Budget != "" {
		return fmt.Sprintf("evicting pod %s: blocked by PodDisruptionBudget %s: %s", e.Pod, e.Budget, e.Reason)
	}
	return fmt.Sprintf("evicting pod %s: blocked: %s", e.Pod, e.Reason)
}

// IsEvictionBlocked reports whether err is or wraps an EvictionBlockedError.
func IsEvictionBlocked(err error) bool {
	var e *EvictionBlockedError
	return errors.As(err, &e)
}

// NotFoundError says a pod or node does not exist.
type NotFoundError struct {
	// Kind is "Pod" or "Node".
	Kind string
	// Name is the object's name (namespace/name for pods).
	Name string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %s not found", e.Kind, e.Name) }

// IsNotFound reports whether err is or wraps a NotFoundError.
func IsNotFound(err error) bool {
	var e *NotFoundError
	return errors.As(err, &e)
}

// PodKey is namespace/name.
func PodKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

// IsDaemonSetPod reports whether a DaemonSet controls pod.
func IsDaemonSetPod(pod *corev1.Pod) bool { return drain.IsDaemonSetPod(pod) }

// IsMirrorPod reports whether pod is the API server's mirror of a static pod,
// which cannot be evicted and goes with its node.
func IsMirrorPod(pod *corev1.Pod) bool { return drain.IsMirrorPod(pod) }

// MovesOnDrain reports whether a drain must evict pod from its node (see
// drain.MovesOnDrain).
func MovesOnDrain(pod *corev1.Pod) bool { return drain.MovesOnDrain(pod) }

// IsTerminal reports whether pod has finished (Succeeded or Failed).
func IsTerminal(pod *corev1.Pod) bool { return drain.IsTerminal(pod) }

// IsNodeReady reports whether node's Ready condition is True.
func IsNodeReady(node *corev1.Node) bool { return drain.IsNodeReady(node) }
