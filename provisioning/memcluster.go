package provisioning

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/clock"
)

// MemoryClusterOptions configures a MemoryCluster.
type MemoryClusterOptions struct {
	// NodeReadyDelay is how long after CreateNode the virtual kubelet
	// reports the node Ready. Zero makes nodes Ready at once.
	NodeReadyDelay time.Duration
	// RecreateControlledPods makes the cluster act as the workload
	// controllers: a pod controlled by anything but a DaemonSet that is
	// evicted, deleted, or lost with its node is re-created as a new pending
	// pod, so drains lose no pods.
	RecreateControlledPods bool
}

// MemoryCluster is an in-memory Cluster for tests, examples and simulation. It
// keeps pods, nodes and PodDisruptionBudgets; evictions honour the budgets the
// way the Eviction API does; a virtual kubelet makes each created node Ready
// after NodeReadyDelay (on the injected clock) and a minimal scheduler then
// binds the pods nominated to it. It is safe for concurrent use.
type MemoryCluster struct {
	clock clock.WithDelayedExecution
	opts  MemoryClusterOptions

	mu     sync.Mutex
	pods   map[string]*corev1.Pod // by namespace/name
	nodes  map[string]*memNode
	pdbs   map[string]*policyv1.PodDisruptionBudget
	owners map[types.UID]*ownerInfo
	// starting holds the nodes the virtual kubelet has yet to make Ready.
	starting map[string]bool
	events   []RecordedEvent
	counter  int

	changes ChangeFeed
}

// ownerInfo stands in for a workload object: its desired replica count is
// the number of pods created for it less those scaled away, which is what a
// PodDisruptionBudget's expected count comes from.
type ownerInfo struct {
	namespace string
	labels    map[string]string
	replicas  int
}

type memNode struct {
	node    *corev1.Node
	readyAt time.Time
}

// RecordedEvent is an event recorded by a MemoryCluster.
type RecordedEvent struct {
	// Object is Kind namespace/name, e.g. "Pod default/web-1".
	Object  string
	Type    string
	Reason  string
	Message string
}

var (
	_ Cluster     = (*MemoryCluster)(nil)
	_ NodeTainter = (*MemoryCluster)(nil)
	_ PDBLister   = (*MemoryCluster)(nil)
)
var _ EventRecorder = (*MemoryCluster)(nil)

// NewMemoryCluster returns an empty in-memory cluster on clk.
func NewMemoryCluster(clk clock.WithDelayedExecution, opts MemoryClusterOptions) *MemoryCluster {
	return &MemoryCluster{
		clock:    clk,
		opts:     opts,
		pods:     map[string]*corev1.Pod{},
		nodes:    map[string]*memNode{},
		pdbs:     map[string]*policyv1.PodDisruptionBudget{},
		owners:   map[types.UID]*ownerInfo{},
		starting: map[string]bool{},
	}
}

// lock takes mu and applies whatever the clock's advance has made true: nodes
// whose readiness delay has passed become Ready and receive their nominated
// pods.
func (c *MemoryCluster) lock() {
	now := c.clock.Now()
	c.mu.Lock()
	if c.advanceLocked(now) {
		c.notify()
	}
}

func (c *MemoryCluster) advanceLocked(now time.Time) bool {
	// Only starting nodes change with time; pods nominated to nodes that
	// are already Ready were bound by Nominate.
	var ready map[string]bool
	for name := range c.starting {
		n, ok := c.nodes[name]
		if !ok {
			delete(c.starting, name)
			continue
		}
		if !now.Before(n.readyAt) {
			setNodeReady(n.node, now)
			delete(c.starting, name)
			if ready == nil {
				ready = map[string]bool{}
			}
			ready[name] = true
		}
	}
	if ready == nil {
		return false
	}
	for _, pod := range c.pods {
		name := pod.Status.NominatedNodeName
		if pod.Spec.NodeName != "" || !ready[name] {
			continue
		}
		if !c.nodes[name].node.Spec.Unschedulable {
			bindLocked(pod, name, now)
		}
	}
	return true
}

func setNodeReady(node *corev1.Node, now time.Time) {
	cond := corev1.NodeCondition{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now),
	}
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			node.Status.Conditions[i] = cond
			return
		}
	}
	node.Status.Conditions = append(node.Status.Conditions, cond)
}

func bindLocked(pod *corev1.Pod, nodeName string, now time.Time) {
	pod.Spec.NodeName = nodeName
	pod.Status.NominatedNodeName = ""
	pod.Status.Phase = corev1.PodRunning
	pod.Status.StartTime = ptrTime(metav1.NewTime(now))
	pod.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now)},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now)},
	}
}

func ptrTime(t metav1.Time) *metav1.Time { return &t }

func (c *MemoryCluster) notify() { c.changes.Notify() }

// Changes implements Cluster.
func (c *MemoryCluster) Changes(ctx context.Context) <-chan struct{} { return c.changes.Subscribe(ctx) }

// ListPods implements Cluster.
func (c *MemoryCluster) ListPods(ctx context.Context) ([]*corev1.Pod, error) {
	c.lock()
	defer c.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(c.pods))
	for _, key := range slices.Sorted(maps.Keys(c.pods)) {
		out = append(out, c.pods[key].DeepCopy())
	}
	return out, nil
}

// ListNodes implements Cluster.
func (c *MemoryCluster) ListNodes(ctx context.Context) ([]*corev1.Node, error) {
	c.lock()
	defer c.mu.Unlock()
	out := make([]*corev1.Node, 0, len(c.nodes))
	for _, name := range slices.Sorted(maps.Keys(c.nodes)) {
		out = append(out, c.nodes[name].node.DeepCopy())
	}
	return out, nil
}

// GetNode implements Cluster.
func (c *MemoryCluster) GetNode(ctx context.Context, name string) (*corev1.Node, error) {
	c.lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return nil, &NotFoundError{Kind: "Node", Name: name}
	}
	return n.node.DeepCopy(), nil
}

// GetPod returns a copy of the pod namespace/name, or an IsNotFound error.
func (c *MemoryCluster) GetPod(namespace, name string) (*corev1.Pod, error) {
	c.lock()
	defer c.mu.Unlock()
	p, ok := c.pods[namespace+"/"+name]
	if !ok {
		return nil, &NotFoundError{Kind: "Pod", Name: namespace + "/" + name}
	}
	return p.DeepCopy(), nil
}

// CreatePod adds a pod. A pod without a UID gets one; a pod with
// spec.nodeName set and no phase is Running there.
func (c *MemoryCluster) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	c.lock()
	defer c.mu.Unlock()
	if pod.Name == "" {
		return fmt.Errorf("creating pod: metadata.name must not be empty")
	}
	key := PodKey(pod)
	if _, ok := c.pods[key]; ok {
		return fmt.Errorf("creating pod %s: already exists", key)
	}
	p := pod.DeepCopy()
	c.initMeta(&p.ObjectMeta)
	if p.Spec.NodeName != "" && p.Status.Phase == "" {
		bindLocked(p, p.Spec.NodeName, c.clock.Now())
	} else if p.Status.Phase == "" {
		p.Status.Phase = corev1.PodPending
	}
	c.pods[key] = p
	if ref := metav1.GetControllerOf(p); ref != nil && !IsDaemonSetPod(p) {
		o := c.owners[ref.UID]
		if o == nil {
			o = &ownerInfo{namespace: p.Namespace}
			c.owners[ref.UID] = o
		}
		o.labels = maps.Clone(p.Labels)
		o.replicas++
	}
	c.notify()
	return nil
}

func (c *MemoryCluster) initMeta(m *metav1.ObjectMeta) {
	c.counter++
	if m.UID == "" {
		m.UID = types.UID(fmt.Sprintf("mem-%d", c.counter))
	}
	if m.CreationTimestamp.IsZero() {
		m.CreationTimestamp = metav1.NewTime(c.clock.Now())
	}
	m.ResourceVersion = fmt.Sprint(c.counter)
}

// CreatePDB adds a PodDisruptionBudget.
func (c *MemoryCluster) CreatePDB(ctx context.Context, pdb *policyv1.PodDisruptionBudget) error {
	if _, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil {
		return fmt.Errorf("PodDisruptionBudget %s/%s: spec.selector: %w", pdb.Namespace, pdb.Name, err)
	}
	if pdb.Spec.MinAvailable != nil && pdb.Spec.MaxUnavailable != nil {
		return fmt.Errorf("PodDisruptionBudget %s/%s: spec: minAvailable and maxUnavailable are mutually exclusive", pdb.Namespace, pdb.Name)
	}
	c.lock()
	defer c.mu.Unlock()
	c.pdbs[pdb.Namespace+"/"+pdb.Name] = pdb.DeepCopy()
	return nil
}

// ListPDBs implements PDBLister: the budgets with status.disruptionsAllowed
// worked out as an eviction would now.
func (c *MemoryCluster) ListPDBs(ctx context.Context) ([]*policyv1.PodDisruptionBudget, error) {
	c.lock()
	defer c.mu.Unlock()
	out := make([]*policyv1.PodDisruptionBudget, 0, len(c.pdbs))
	for _, key := range slices.Sorted(maps.Keys(c.pdbs)) {
		pdb := c.pdbs[key].DeepCopy()
		healthy, expected, desired, err := c.budgetLocked(pdb)
		if err != nil {
			return nil, err
		}
		pdb.Status.CurrentHealthy, pdb.Status.ExpectedPods, pdb.Status.DesiredHealthy = int32(healthy), int32(expected), int32(desired)
		pdb.Status.DisruptionsAllowed = int32(max(healthy-desired, 0))
		out = append(out, pdb)
	}
	return out, nil
}

// TaintNode implements NodeTainter.
func (c *MemoryCluster) TaintNode(ctx context.Context, name string, taint corev1.Taint) error {
	return c.editTaints(name, func(taints []corev1.Taint) []corev1.Taint {
		taints = slices.DeleteFunc(taints, func(t corev1.Taint) bool { return t.MatchTaint(&taint) })
		return append(taints, taint)
	})
}

// UntaintNode implements NodeTainter.
func (c *MemoryCluster) UntaintNode(ctx context.Context, name, key string) error {
	return c.editTaints(name, func(taints []corev1.Taint) []corev1.Taint {
		return slices.DeleteFunc(taints, func(t corev1.Taint) bool { return t.Key == key })
	})
}

func (c *MemoryCluster) editTaints(name string, edit func([]corev1.Taint) []corev1.Taint) error {
	c.lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return &NotFoundError{Kind: "Node", Name: name}
	}
	n.node.Spec.Taints = edit(n.node.Spec.Taints)
	c.notify()
	return nil
}

// CreateNode implements Cluster. The node becomes Ready after
// NodeReadyDelay. A node that exists already (its kubelet registered first)
// gets the labels of node it lacks, as on a real API server.
func (c *MemoryCluster) CreateNode(ctx context.Context, node *corev1.Node) error {
	c.lock()
	defer c.mu.Unlock()
	if node.Name == "" {
		return fmt.Errorf("creating node: metadata.name must not be empty")
	}
	if existing, ok := c.nodes[node.Name]; ok {
		changed := false
		for k, v := range node.Labels {
			if _, has := existing.node.Labels[k]; !has {
				if existing.node.Labels == nil {
					existing.node.Labels = map[string]string{}
				}
				existing.node.Labels[k] = v
				changed = true
			}
		}
		if changed {
			c.notify()
		}
		return nil
	}
	n := node.DeepCopy()
	c.initMeta(&n.ObjectMeta)
	now := c.clock.Now()
	readyAt := now.Add(c.opts.NodeReadyDelay)
	if !IsNodeReady(n) {
		if c.opts.NodeReadyDelay <= 0 {
			setNodeReady(n, now)
		} else {
			n.Status.Conditions = append(slices.DeleteFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool { return c.Type == corev1.NodeReady }),
				corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", LastTransitionTime: metav1.NewTime(now)})
			// The callback runs under the fake clock's lock: it may only
			// notify; the state change happens on the next read.
			c.clock.AfterFunc(c.opts.NodeReadyDelay, c.notify)
			c.starting[n.Name] = true
		}
	}
	c.nodes[n.Name] = &memNode{node: n, readyAt: readyAt}
	c.notify()
	return nil
}

// DeleteNode implements Cluster. Pods bound to the node are removed (and
// re-created when RecreateControlledPods is set); pods nominated to it lose
// their nomination.
func (c *MemoryCluster) DeleteNode(ctx context.Context, name string) error {
	c.lock()
	defer c.mu.Unlock()
	if _, ok := c.nodes[name]; !ok {
		return &NotFoundError{Kind: "Node", Name: name}
	}
	delete(c.nodes, name)
	for _, key := range slices.Sorted(maps.Keys(c.pods)) {
		pod := c.pods[key]
		switch {
		case pod.Spec.NodeName == name:
			c.removePodLocked(pod)
		case pod.Status.NominatedNodeName == name:
			pod.Status.NominatedNodeName = ""
		}
	}
	c.notify()
	return nil
}

// Cordon implements Cluster.
func (c *MemoryCluster) Cordon(ctx context.Context, name string) error {
	c.lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return &NotFoundError{Kind: "Node", Name: name}
	}
	if !n.node.Spec.Unschedulable {
		n.node.Spec.Unschedulable = true
		c.notify()
	}
	return nil
}

// AnnotateNode implements Cluster.
func (c *MemoryCluster) AnnotateNode(ctx context.Context, name string, annotations map[string]string) error {
	c.lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return &NotFoundError{Kind: "Node", Name: name}
	}
	changed := false
	for k, v := range annotations {
		old, had := n.node.Annotations[k]
		switch {
		case v == "" && had:
			delete(n.node.Annotations, k)
		case v != "" && (!had || old != v):
			if n.node.Annotations == nil {
				n.node.Annotations = map[string]string{}
			}
			n.node.Annotations[k] = v
		default:
			continue
		}
		changed = true
	}
	if changed {
		c.notify()
	}
	return nil
}

// Nominate implements Cluster. If the node is already Ready the pod is bound
// at once, as the scheduler would. A pod bound already is left alone, and a
// node that does not exist yet may be nominated, as on a real API server.
func (c *MemoryCluster) Nominate(ctx context.Context, pod *corev1.Pod, nodeName string) error {
	c.lock()
	defer c.mu.Unlock()
	p, err := c.podLocked(pod)
	if err != nil {
		return err
	}
	if p.Spec.NodeName != "" {
		return nil
	}
	p.Status.NominatedNodeName = nodeName
	if n := c.nodes[nodeName]; n != nil && IsNodeReady(n.node) && !n.node.Spec.Unschedulable {
		bindLocked(p, nodeName, c.clock.Now())
	}
	c.notify()
	return nil
}

// Bind implements Cluster.
func (c *MemoryCluster) Bind(ctx context.Context, pod *corev1.Pod, nodeName string) error {
	c.lock()
	defer c.mu.Unlock()
	p, err := c.podLocked(pod)
	if err != nil {
		return err
	}
	if _, ok := c.nodes[nodeName]; !ok {
		return &NotFoundError{Kind: "Node", Name: nodeName}
	}
	if p.Spec.NodeName != "" {
		return fmt.Errorf("binding pod %s to %s: already bound to %s", PodKey(p), nodeName, p.Spec.NodeName)
	}
	bindLocked(p, nodeName, c.clock.Now())
	c.notify()
	return nil
}

// podLocked finds the stored pod for pod, matching the UID when pod has one
// so that a stale copy does not act on a re-created pod of the same name.
func (c *MemoryCluster) podLocked(pod *corev1.Pod) (*corev1.Pod, error) {
	p, ok := c.pods[PodKey(pod)]
	if !ok || (pod.UID != "" && p.UID != pod.UID) {
		return nil, &NotFoundError{Kind: "Pod", Name: PodKey(pod)}
	}
	return p, nil
}

// Evict implements Cluster with the Eviction API's rules: a pod that is
// pending, terminal or unbound is deleted at once; otherwise every
// PodDisruptionBudget in its namespace that selects it must allow one more
// disruption, or the eviction fails with an EvictionBlockedError. A pod
// selected by more than one budget cannot be evicted, as in Kubernetes.
func (c *MemoryCluster) Evict(ctx context.Context, pod *corev1.Pod) error {
	c.lock()
	defer c.mu.Unlock()
	p, err := c.podLocked(pod)
	if err != nil {
		return err
	}
	if p.Status.Phase != corev1.PodPending && !IsTerminal(p) && p.Spec.NodeName != "" {
		var matching []*policyv1.PodDisruptionBudget
		for _, key := range slices.Sorted(maps.Keys(c.pdbs)) {
			pdb := c.pdbs[key]
			if pdb.Namespace != p.Namespace {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil || sel.Empty() || !sel.Matches(labels.Set(p.Labels)) {
				continue
			}
			matching = append(matching, pdb)
		}
		if len(matching) > 1 {
			return fmt.Errorf("evicting pod %s: it is selected by more than one PodDisruptionBudget (%s, %s); the Eviction API refuses this", PodKey(p), matching[0].Name, matching[1].Name)
		}
		if len(matching) == 1 {
			if err := c.checkBudgetLocked(matching[0], p); err != nil {
				return err
			}
		}
	}
	c.removePodLocked(p)
	c.notify()
	return nil
}

// checkBudgetLocked computes the budget's allowed disruptions the way the
// disruption controller does: the expected count is the desired replicas of
// the controllers whose pods the budget selects (plus uncontrolled selected
// pods), so a pod evicted and not yet replaced counts as unavailable.
// budgetLocked evaluates pdb now: healthy pods, expected pods and how many
// must stay healthy.
func (c *MemoryCluster) budgetLocked(pdb *policyv1.PodDisruptionBudget) (healthy, expected, desiredHealthy int, err error) {
	sel, _ := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	for _, q := range c.pods {
		if q.Namespace != pdb.Namespace || IsTerminal(q) || !sel.Matches(labels.Set(q.Labels)) {
			continue
		}
		if ref := metav1.GetControllerOf(q); ref == nil || c.owners[ref.UID] == nil {
			expected++
		}
		if isPodHealthy(q) {
			healthy++
		}
	}
	for _, o := range c.owners {
		if o.namespace == pdb.Namespace && sel.Matches(labels.Set(o.labels)) {
			expected += max(o.replicas, 0)
		}
	}
	switch {
	case pdb.Spec.MinAvailable != nil:
		v, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, expected, true)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("PodDisruptionBudget %s/%s: spec.minAvailable: %w", pdb.Namespace, pdb.Name, err)
		}
		desiredHealthy = v
	case pdb.Spec.MaxUnavailable != nil:
		v, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, expected, true)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("PodDisruptionBudget %s/%s: spec.maxUnavailable: %w", pdb.Namespace, pdb.Name, err)
		}
		desiredHealthy = max(expected-v, 0)
	default:
		// An empty budget (neither field) allows everything... except
		// Kubernetes defaults minAvailable to 1 when neither is set.
		desiredHealthy = 1
	}
	return healthy, expected, desiredHealthy, nil
}

func (c *MemoryCluster) checkBudgetLocked(pdb *policyv1.PodDisruptionBudget, pod *corev1.Pod) error {
	healthy, expected, desiredHealthy, err := c.budgetLocked(pdb)
	if err != nil {
		return err
	}
	if !isPodHealthy(pod) {
		// Unhealthy pods may go while the budget is met (policy
		// IfHealthyBudget, the default).
		if healthy >= desiredHealthy {
			return nil
		}
	} else if healthy-desiredHealthy >= 1 {
		return nil
	}
	return &EvictionBlockedError{
		Pod:    PodKey(pod),
		Budget: pdb.Namespace + "/" + pdb.Name,
		Reason: fmt.Sprintf("Cannot evict pod as it would violate the pod's disruption budget: %d healthy of %d expected, %d needed", healthy, expected, desiredHealthy),
	}
}

func isPodHealthy(p *corev1.Pod) bool {
	if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		return false
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return true
}

// DeletePod implements Cluster.
func (c *MemoryCluster) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	c.lock()
	defer c.mu.Unlock()
	p, err := c.podLocked(pod)
	if err != nil {
		return err
	}
	c.removePodLocked(p)
	c.notify()
	return nil
}

// DeletePodNoRecreate deletes a pod as scaling its workload down would: it is
// not re-created even when RecreateControlledPods is set.
func (c *MemoryCluster) DeletePodNoRecreate(ctx context.Context, namespace, name string) error {
	c.lock()
	defer c.mu.Unlock()
	key := namespace + "/" + name
	p, ok := c.pods[key]
	if !ok {
		return &NotFoundError{Kind: "Pod", Name: key}
	}
	if ref := metav1.GetControllerOf(p); ref != nil && c.owners[ref.UID] != nil {
		c.owners[ref.UID].replicas--
	}
	delete(c.pods, key)
	c.notify()
	return nil
}

func (c *MemoryCluster) removePodLocked(p *corev1.Pod) {
	delete(c.pods, PodKey(p))
	if !c.opts.RecreateControlledPods || IsDaemonSetPod(p) || IsTerminal(p) {
		return
	}
	owner := metav1.GetControllerOf(p)
	if owner == nil {
		return
	}
	n := p.DeepCopy()
	n.UID = ""
	n.ResourceVersion = ""
	n.CreationTimestamp = metav1.Time{}
	n.DeletionTimestamp = nil
	n.Spec.NodeName = ""
	n.Status = corev1.PodStatus{Phase: corev1.PodPending}
	if owner.Kind != "StatefulSet" {
		// Controllers other than StatefulSets name replacements afresh.
		base := p.GenerateName
		if base == "" {
			base = p.Name + "-"
		}
		for {
			c.counter++
			n.Name = fmt.Sprintf("%sr%d", base, c.counter)
			if _, taken := c.pods[PodKey(n)]; !taken {
				break
			}
		}
	}
	c.initMeta(&n.ObjectMeta)
	c.pods[PodKey(n)] = n
}

// Event implements EventRecorder.
func (c *MemoryCluster) Event(ctx context.Context, obj runtime.Object, eventType, reason, message string) {
	desc := fmt.Sprintf("%T", obj)
	if m, ok := obj.(metav1.Object); ok {
		kind := strings.TrimPrefix(strings.TrimPrefix(desc, "*v1."), "*")
		desc = kind + " " + m.GetName()
		if ns := m.GetNamespace(); ns != "" {
			desc = kind + " " + ns + "/" + m.GetName()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, RecordedEvent{Object: desc, Type: eventType, Reason: reason, Message: message})
}

// Events returns the events recorded so far, oldest first.
func (c *MemoryCluster) Events() []RecordedEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}
