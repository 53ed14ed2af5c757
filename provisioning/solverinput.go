package provisioning

import (
	"errors"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

// ClusterState is one read of a cluster: what SolverInput builds the
// solver's problem from.
type ClusterState struct {
	// Nodes are every node in the cluster.
	Nodes []*corev1.Node
	// Pods are every pod in the cluster, bound or not.
	Pods []*corev1.Pod
	// DaemonSets are the cluster's daemonsets, when the caller can list
	// them. A daemonset given here contributes its pod template as
	// overhead on new nodes even when none of its pods runs yet; without
	// it, the template is taken from one of its running pods.
	DaemonSets []*appsv1.DaemonSet
}

// SolverInputOptions says what SolverInput solves for and over what.
type SolverInputOptions struct {
	// NodePools are the pools new nodes may come from, one template each.
	NodePools []*NodePool
	// Catalog is the instance types the templates are made of.
	Catalog []*offerings.InstanceType
	// Pods are the pods to place. Nil means every pod that needs capacity
	// (PodsNeedingCapacity).
	Pods []*corev1.Pod
	// Nominations override pods' status.nominatedNodeName, by pod UID: the
	// node a pod is expected to land on, as the caller knows it (a
	// Provisioner knows its own nominations before the API shows them). A
	// pod mapped to "" needs capacity whatever its status says.
	Nominations map[types.UID]string
	// Reservations name, by pod UID, the node holding capacity for a pod
	// still bound to a leaving node: the pod's requests count on that node
	// too, so nothing else takes the room its replica will need.
	Reservations map[types.UID]string
	// Leaving are the nodes that take no new pods: nodes being replaced or
	// drained. Nodes being deleted never take new pods.
	Leaving map[string]bool
	// MaxInstanceTypes caps each claim's instance-type list (see
	// scheduling.Input).
	MaxInstanceTypes int
}

// SolverInput builds the solver's problem from a cluster state, the one way
// every caller does it (the Provisioner's passes, the custom autoscaler's
// dry run, the plan tool), so that a what-if plan is the plan a pass would
// make:
//
//   - the pods to place (opts.Pods, or every pod needing capacity);
//   - each node not leaving or being deleted, with the NodePool's startup
//     taints hidden (an agent removes them once the node is up), holding
//     its bound pods, the pods nominated to it and the pods it is reserved
//     for;
//   - one pod per daemonset, as its controller would create it on a new
//     node (the per-node matchFields affinity of a running daemonset pod
//     dropped, its other node affinity kept);
//   - one template per NodePool, its limits reduced by what the pool's
//     nodes hold (AddNodeUsage).
//
// It reads nothing else and changes nothing. A NodePool whose template
// cannot be built is left out and named in the returned error; the input
// is usable without it.
func SolverInput(state ClusterState, opts SolverInputOptions) (scheduling.Input, error) {
	nodes := make(map[string]*corev1.Node, len(state.Nodes))
	for _, n := range state.Nodes {
		if n != nil {
			nodes[n.Name] = n
		}
	}
	pods := opts.Pods
	if pods == nil {
		pods = PodsNeedingCapacity(state, opts.Nominations)
	}
	solving := make(map[types.UID]bool, len(pods))
	for _, pod := range pods {
		solving[pod.UID] = true
	}
	onNode := map[string][]*corev1.Pod{}
	daemonSets := map[types.UID]*corev1.Pod{}
	for _, ds := range state.DaemonSets {
		if ds != nil && ds.DeletionTimestamp == nil {
			daemonSets[daemonSetKey(ds)] = DaemonSetPod(ds)
		}
	}
	for _, pod := range state.Pods {
		if pod == nil || IsTerminal(pod) || solving[pod.UID] {
			continue
		}
		if IsDaemonSetPod(pod) {
			if ref := controllerUID(pod); ref != "" {
				if _, ok := daemonSets[ref]; !ok {
					daemonSets[ref] = daemonSetTemplate(pod)
				}
			}
		}
		switch {
		case pod.Spec.NodeName != "":
			onNode[pod.Spec.NodeName] = append(onNode[pod.Spec.NodeName], pod)
			// Capacity reserved for a pod of a leaving node counts as
			// taken on the replacement too.
			if r := opts.Reservations[pod.UID]; r != "" && r != pod.Spec.NodeName {
				onNode[r] = append(onNode[r], pod)
			}
		case isPending(pod):
			if n := ExpectedNode(pod, opts.Nominations, nodes); n != "" {
				onNode[n] = append(onNode[n], pod)
			}
		}
	}
	used := map[string]corev1.ResourceList{}
	in := scheduling.Input{Pods: pods, MaxInstanceTypes: opts.MaxInstanceTypes}
	for _, name := range slices.Sorted(maps.Keys(nodes)) {
		node := nodes[name]
		AddNodeUsage(used, node)
		if opts.Leaving[name] || node.DeletionTimestamp != nil {
			continue
		}
		in.Nodes = append(in.Nodes, scheduling.ExistingNode{Node: withoutStartupTaints(node, opts.NodePools), Pods: onNode[name]})
	}
	for _, uid := range slices.Sorted(maps.Keys(daemonSets)) {
		in.DaemonSetPods = append(in.DaemonSetPods, daemonSets[uid])
	}
	var errs []error
	for _, np := range opts.NodePools {
		t, err := np.Template(opts.Catalog, used[np.Name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		in.Templates = append(in.Templates, t)
	}
	return in, errors.Join(errs...)
}

// PodsNeedingCapacity returns the pods of state that want a node fleetpack
// should find: unbound, alive, not scheduling-gated, not daemonset pods, and
// not expected on a live node (ExpectedNode).
func PodsNeedingCapacity(state ClusterState, nominations map[types.UID]string) []*corev1.Pod {
	nodes := make(map[string]*corev1.Node, len(state.Nodes))
	for _, n := range state.Nodes {
		if n != nil {
			nodes[n.Name] = n
		}
	}
	var out []*corev1.Pod
	for _, pod := range state.Pods {
		if pod != nil && isPending(pod) && ExpectedNode(pod, nominations, nodes) == "" {
			out = append(out, pod)
		}
	}
	return out
}

// ExpectedNode returns the node an unbound pod is expected to land on: its
// entry in nominations if it has one, else its status.nominatedNodeName;
// "" when that node is not among nodes or is being deleted.
func ExpectedNode(pod *corev1.Pod, nominations map[types.UID]string, nodes map[string]*corev1.Node) string {
	name, ok := nominations[pod.UID]
	if !ok {
		name = pod.Status.NominatedNodeName
	}
	if node := nodes[name]; name == "" || node == nil || node.DeletionTimestamp != nil {
		return ""
	}
	return name
}

// AddNodeUsage adds what node takes from its NodePool's limits (its
// capacity and one node) to used, keyed by NodePool name, as
// NodePool.Template expects. Nodes of no NodePool, and nodes being deleted,
// count for nothing.
func AddNodeUsage(used map[string]corev1.ResourceList, node *corev1.Node) {
	pool := node.Labels[offerings.LabelNodePool]
	if pool == "" || node.DeletionTimestamp != nil {
		return
	}
	u := used[pool]
	if u == nil {
		u = corev1.ResourceList{}
		used[pool] = u
	}
	for name, q := range node.Status.Capacity {
		sum := u[name]
		sum.Add(q)
		u[name] = sum
	}
	n := u[scheduling.ResourceNodes]
	n.Add(*resource.NewQuantity(1, resource.DecimalSI))
	u[scheduling.ResourceNodes] = n
}

// withoutStartupTaints hides the NodePool's startup taints: an agent removes
// them once the node is up, so pods need not tolerate them.
func withoutStartupTaints(node *corev1.Node, pools []*NodePool) *corev1.Node {
	var np *NodePool
	for _, candidate := range pools {
		if candidate.Name == node.Labels[offerings.LabelNodePool] {
			np = candidate
		}
	}
	if np == nil || len(np.Spec.Template.Spec.StartupTaints) == 0 || len(node.Spec.Taints) == 0 {
		return node
	}
	out := node.DeepCopy()
	out.Spec.Taints = slices.DeleteFunc(out.Spec.Taints, func(t corev1.Taint) bool {
		return slices.ContainsFunc(np.Spec.Template.Spec.StartupTaints, func(st corev1.Taint) bool { return st.MatchTaint(&t) })
	})
	return out
}

func controllerUID(pod *corev1.Pod) types.UID {
	for _, ref := range pod.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			return ref.UID
		}
	}
	return ""
}

// daemonSetKey is the key a daemonset's pods name it by: their controller
// reference's UID, or namespace/name for an object that has no UID (read
// from a manifest).
func daemonSetKey(ds *appsv1.DaemonSet) types.UID {
	if ds.UID != "" {
		return ds.UID
	}
	return types.UID(ds.Namespace + "/" + ds.Name)
}

// daemonSetTolerations are the tolerations the daemonset controller adds to
// every pod it creates, so that its pods run on nodes not ready yet or under
// pressure.
var daemonSetTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// DaemonSetPod returns the pod ds's controller would create on a new node:
// the template's labels, annotations and spec, the controller's
// tolerations, and a controller reference to ds.
func DaemonSetPod(ds *appsv1.DaemonSet) *corev1.Pod {
	controller := true
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        ds.Name,
			Namespace:   ds.Namespace,
			Labels:      maps.Clone(ds.Spec.Template.Labels),
			Annotations: maps.Clone(ds.Spec.Template.Annotations),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: daemonSetKey(ds), Controller: &controller,
			}},
		},
		Spec: *ds.Spec.Template.Spec.DeepCopy(),
	}
	pod.Spec.NodeName = ""
	for _, t := range daemonSetTolerations {
		if !slices.ContainsFunc(pod.Spec.Tolerations, func(have corev1.Toleration) bool { return have.MatchToleration(&t) }) {
			pod.Spec.Tolerations = append(pod.Spec.Tolerations, t)
		}
	}
	return pod
}

// daemonSetTemplate turns a running daemonset pod into the pod its daemonset
// would run on a new node: unbound, without the per-node affinity the
// daemonset controller adds.
func daemonSetTemplate(pod *corev1.Pod) *corev1.Pod {
	out := pod.DeepCopy()
	out.Spec.NodeName = ""
	out.Status = corev1.PodStatus{}
	if a := out.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		kept := terms[:0]
		for _, t := range terms {
			t.MatchFields = nil
			if len(t.MatchExpressions) > 0 {
				kept = append(kept, t)
			}
		}
		if len(kept) == 0 {
			a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = nil
		} else {
			a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = kept
		}
	}
	return out
}
