package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/fleetpack/fleetpack/cloudprovider/aws"
	"github.com/fleetpack/fleetpack/cloudprovider/aws/fake"
	"github.com/fleetpack/fleetpack/interruption"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
)

// Timing of the simulated world, close to what EKS shows.
const (
	// nodeReadyDelay is how long a launched node takes to report Ready.
	nodeReadyDelay = 40 * time.Second
	// tick is the resolution of the virtual timeline.
	tick = time.Second
	// batchIdle and retryInterval mirror the provisioner's Run loop: a
	// batch closes after a second without new pending pods, and pods that
	// could not be placed are tried again every 30 seconds.
	batchIdle     = provisioning.DefaultBatchIdleDuration
	retryInterval = provisioning.DefaultRetryInterval
	// consolidationPoll is the longest consolidation waits between steps
	// (Run wakes it on every cluster change too).
	consolidationPoll = 20 * time.Second
)

// epoch is the virtual start time; the timeline prints offsets from it.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// sim is the simulated cluster: an in-memory Kubernetes, the fake EC2 behind
// the real AWS provider, the provisioner and the interruption handler, all on
// one virtual clock that only the simulation advances.
type sim struct {
	ctx         context.Context
	out         io.Writer
	clk         *clocktesting.FakeClock
	cluster     *provisioning.MemoryCluster
	ec2         *fake.EC2
	provider    *aws.Provider
	prov        *provisioning.Provisioner
	unavailable *offerings.UnavailableOfferings
	catalog     []*offerings.InstanceType
	log         *slog.Logger
	// nodeCosts are the applied NodePools' per-node costs, by name.
	nodeCosts map[string]offerings.NodeCosts

	// The interruption handler, stepped after every clock step, and when
	// it next has work (zero: none).
	handler     *interruption.Handler
	handlerNext time.Time
	// replacements holds the name of the last node the handler launched
	// (written by its workers).
	replacements atomic.Value

	// outMu serialises timeline lines: the handler's workers print too.
	outMu sync.Mutex

	deployments map[string]*deployment
	podCounter  int
	// scaledAway are pods deleted by scaling down, not lost.
	scaledAway map[string]bool

	// consolidateAt is when consolidation next runs.
	consolidateAt time.Time

	// Provisioner loop state.
	seenPending map[string]bool
	lastNew     time.Time
	batchOpen   bool
	lastPass    time.Time

	// Observed state, diffed every tick to print what changed.
	nodes map[string]nodeView
	pods  map[string]podView
	// When each node was first seen Ready and seen gone.
	readyAt, deletedAt map[string]time.Time

	stats stats
}

type deployment struct {
	name     string
	uid      types.UID
	selector map[string]string
	cpu, mem string
}

type nodeView struct {
	ready, cordoned bool
	// consolidating: tainted by a consolidation move.
	consolidating bool
	labels        map[string]string
	created       time.Time
}

type podView struct {
	node, nominated string
	owner           types.UID
}

// stats feed the summary.
type stats struct {
	launched     map[string]int // by capacity type
	removed      int
	podsEvicted  int
	notices      int
	cost         float64 // USD, node lifetimes x bill (offerings.NodeBill)
	listCost     float64 // node lifetimes x offering list price
	onDemandCost float64 // the same nodes billed at on-demand prices
	nodeSeconds  float64
	maxPending   time.Duration
	pendingSince map[string]time.Time
	// away holds, by controller, when each of its pods was evicted and
	// not yet replaced by a running pod; maxUnavailable is the longest
	// such gap (sceneUnavailable: within the current scene).
	away                             map[types.UID][]time.Time
	maxUnavailable, sceneUnavailable time.Duration
	// consolidated counts the nodes consolidation removed, and
	// consolidationEvicted the pods it moved (not counted as lost to a
	// notice).
	consolidated, consolidationEvicted int
	// evicted is set when pods were evicted since the last provisioner
	// pass.
	evicted       bool
	unschedulable map[string]string // last reason per pod
}

func newSim(ctx context.Context, out, logs io.Writer) (*sim, error) {
	catalog, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		return nil, err
	}
	clk := clocktesting.NewFakeClock(epoch)
	// Logs carry the virtual time, so they line up with the timeline.
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.String("vtime", stampOf(clk.Now()))
			}
			return a
		},
	}))
	s := &sim{
		ctx: ctx, out: out, clk: clk, catalog: catalog, log: logger,
		deployments: map[string]*deployment{},
		scaledAway:  map[string]bool{},
		seenPending: map[string]bool{},
		nodes:       map[string]nodeView{},
		pods:        map[string]podView{},
		readyAt:     map[string]time.Time{},
		deletedAt:   map[string]time.Time{},
		stats: stats{
			launched: map[string]int{}, pendingSince: map[string]time.Time{}, unschedulable: map[string]string{},
			away: map[types.UID][]time.Time{},
		},
	}
	s.cluster = provisioning.NewMemoryCluster(clk, provisioning.MemoryClusterOptions{NodeReadyDelay: nodeReadyDelay, RecreateControlledPods: true})
	subnetTags := map[string]string{"karpenter.sh/discovery": "spot-demo"}
	s.ec2 = fake.NewFromCatalog(catalog, fake.Options{Clock: clk}, subnetTags, 4000)
	s.unavailable = offerings.NewUnavailableOfferings(offerings.UnavailableOfferingsOptions{Clock: clk, Logger: logger})
	s.provider, err = aws.New(s.ec2, aws.Options{
		ClusterName:     "spot-demo",
		Region:          "us-east-1",
		LaunchTemplates: map[string]aws.LaunchTemplate{"amd64": {Name: "spot-demo-amd64"}, "arm64": {Name: "spot-demo-arm64"}},
		SubnetSelector:  subnetTags,
		Catalog:         aws.StaticCatalog(catalog),
		Unavailable:     s.unavailable,
		Clock:           clk,
		Logger:          logger,
	})
	if err != nil {
		return nil, err
	}
	// One launch at a time: concurrent launches share the unavailable-
	// offerings cache, so their order would change which pools the next
	// one skips, and the timeline must be the same on every run.
	s.prov, err = provisioning.New(s.cluster, s.provider, nil, provisioning.Options{Clock: clk, Logger: logger,
		MaxConcurrentLaunches: 1,
		Consolidation:         provisioning.ConsolidationOptions{Enabled: true}})
	if err != nil {
		return nil, err
	}
	if err := s.startHandler(); err != nil {
		return nil, err
	}
	return s, nil
}

// stamp renders the virtual time as an offset from the start.
func (s *sim) stamp() string {
	d := s.clk.Since(epoch)
	return fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

// logf prints one timeline line.
func (s *sim) logf(format string, args ...any) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.out, "[%s] %s\n", s.stamp(), fmt.Sprintf(format, args...))
}

// step prints a section header.
func (s *sim) step(title string) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.out, "\n=== %s\n", title)
}

func (s *sim) applyNodePools(yamlDocs string) error {
	pools, err := provisioning.ParseNodePools([]byte(yamlDocs))
	if err != nil {
		return err
	}
	if err := s.prov.SetNodePools(pools); err != nil {
		return err
	}
	s.nodeCosts = map[string]offerings.NodeCosts{}
	for _, np := range pools {
		s.nodeCosts[np.Name] = np.Spec.Template.Spec.NodeCosts()
		reqs, _ := np.Requirements()
		cts, _ := reqs.Get(offerings.LabelCapacityType).Values()
		s.logf("NodePool %s applied: capacity types %s, labels %s, consolidateAfter %s",
			np.Name, strings.Join(cts, ","), formatLabels(np.Spec.Template.Metadata.Labels), np.ConsolidateAfter())
	}
	return nil
}

func formatLabels(l map[string]string) string {
	parts := make([]string, 0, len(l))
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ",")
}

// addDeployment declares a Deployment with zero replicas: a pause container
// requesting cpu and mem, scheduled by selector.
func (s *sim) addDeployment(name, cpu, mem string, selector map[string]string) {
	s.deployments[name] = &deployment{name: name, uid: types.UID("deployment-" + name), selector: selector, cpu: cpu, mem: mem}
}

// deploymentPods lists the deployment's live pods, oldest first.
func (s *sim) deploymentPods(d *deployment) []*corev1.Pod {
	pods, _ := s.cluster.ListPods(s.ctx)
	var out []*corev1.Pod
	for _, p := range pods {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == d.uid {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	return out
}

// scale sets the deployment's replica count, as kubectl scale would.
func (s *sim) scale(name string, replicas int) error {
	d := s.deployments[name]
	pods := s.deploymentPods(d)
	s.logf("kubectl scale deployment %s --replicas %d (was %d)", name, replicas, len(pods))
	for i := len(pods); i < replicas; i++ {
		s.podCounter++
		controller := true
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s-%d", name, s.podCounter), GenerateName: name + "-", Namespace: "default",
				Labels: map[string]string{"app": name},
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name, UID: d.uid, Controller: &controller,
				}},
			},
			Spec: corev1.PodSpec{
				NodeSelector: d.selector,
				Containers: []corev1.Container{{
					Name: "inflate", Image: "public.ecr.aws/eks-distro/kubernetes/pause:3.7",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU: resource.MustParse(d.cpu), corev1.ResourceMemory: resource.MustParse(d.mem),
					}},
				}},
			},
		}
		if err := s.cluster.CreatePod(s.ctx, pod); err != nil {
			return err
		}
	}
	var deleted []string
	for i := len(pods) - 1; i >= replicas; i-- {
		if err := s.cluster.DeletePodNoRecreate(s.ctx, pods[i].Namespace, pods[i].Name); err != nil {
			return err
		}
		s.scaledAway[provisioning.PodKey(pods[i])] = true
		deleted = append(deleted, pods[i].Name)
	}
	if len(deleted) > 0 {
		slices.Reverse(deleted)
		s.logf("pods deleted: %s", strings.Join(deleted, ", "))
	}
	s.observe()
	return nil
}

// advance runs the world for d of virtual time.
func (s *sim) advance(d time.Duration) error {
	end := s.clk.Now().Add(d)
	for s.clk.Now().Before(end) {
		if err := s.tick(); err != nil {
			return err
		}
	}
	return nil
}

// advanceUntil runs the world until cond holds, for at most limit.
func (s *sim) advanceUntil(limit time.Duration, what string, cond func() bool) error {
	end := s.clk.Now().Add(limit)
	for !cond() {
		if !s.clk.Now().Before(end) {
			return fmt.Errorf("after %s of virtual time: %s did not happen", limit, what)
		}
		if err := s.tick(); err != nil {
			return err
		}
	}
	return nil
}

// tick advances the clock one step and runs what the controllers would.
func (s *sim) tick() error {
	s.clk.Step(tick)
	s.settle()
	s.observe()
	// Consolidation runs at the wake time it asked for, before the
	// provisioner's pass, so the pods it evicts are placed in the same tick.
	if !s.clk.Now().Before(s.consolidateAt) {
		consolidated, next, err := s.prov.Consolidate(s.ctx)
		if err != nil {
			return err
		}
		for _, name := range consolidated {
			s.logf("consolidation: node %s drained, instance terminated, node deleted", name)
			s.stats.consolidated++
		}
		if next.IsZero() || next.After(s.clk.Now().Add(consolidationPoll)) {
			next = s.clk.Now().Add(consolidationPoll) // Run also wakes on changes
		}
		s.consolidateAt = next
		s.observe()
	}
	if err := s.provisionerPass(); err != nil {
		return err
	}
	removed, _, err := s.prov.RemoveEmptyNodes(s.ctx)
	if err != nil {
		return err
	}
	for _, name := range removed {
		s.logf("node %s did not come up: instance terminated, node deleted", name)
	}
	s.observe()
	return nil
}

// bill is the hourly price of the nodes running now.
func (s *sim) bill() float64 {
	total := 0.0
	for _, v := range s.nodes {
		p, _, _ := s.price(v.labels)
		total += p
	}
	return total
}

// provisionerPass does what the provisioner's Run loop does, synchronously
// so the timeline is deterministic: a batch of new pending pods is provisioned
// once no new pod has arrived for batchIdle; pods left pending are retried
// every retryInterval.
func (s *sim) provisionerPass() error {
	pending, err := s.prov.PendingPods(s.ctx)
	if err != nil {
		return err
	}
	now := s.clk.Now()
	current := map[string]bool{}
	for _, p := range pending {
		key := provisioning.PodKey(p)
		current[key] = true
		if !s.seenPending[key] {
			s.lastNew = now
			s.batchOpen = true
		}
	}
	s.seenPending = current
	if len(pending) == 0 {
		s.batchOpen = false
		return nil
	}
	// Pods re-created for evicted ones are placed at once: in a cluster,
	// kube-scheduler binds them to Ready capacity (the replacement the
	// handler launched for them) without waiting for a provisioner batch.
	due := (s.batchOpen && now.Sub(s.lastNew) >= batchIdle) || (!s.batchOpen && now.Sub(s.lastPass) >= retryInterval) || s.stats.evicted
	s.stats.evicted = false
	if !due {
		return nil
	}
	s.batchOpen = false
	s.lastPass = now
	res, err := s.prov.Provision(s.ctx)
	if err != nil {
		return err
	}
	s.reportPass(len(pending), res)
	return nil
}

func (s *sim) reportPass(pending int, res *provisioning.Result) {
	s.logf("provisioner: %s -> %s, %s onto existing nodes, %d unschedulable",
		plural(pending, "pending pod"), plural(len(res.Launched), "new node"), plural(res.Pods()-launchedPods(res), "pod"), len(res.Unschedulable))
	for _, l := range res.Launched {
		s.logf("  launched %s for %s", s.describeNode(l.Node), podList(l.Pods))
	}
	byReason := map[string][]string{}
	for _, u := range res.Unschedulable {
		key := provisioning.PodKey(u.Pod)
		reason := shortReason(u.Reason)
		byReason[reason] = append(byReason[reason], u.Pod.Name)
		s.stats.unschedulable[key] = reason
	}
	for _, reason := range slices.Sorted(maps.Keys(byReason)) {
		s.logf("  still pending %s: %s", strings.Join(byReason[reason], ", "), reason)
	}
}

// shortReason trims the list of refused offerings a failed launch reports:
// the timeline needs the cause, not hundreds of pool names.
func shortReason(reason string) string {
	if i := strings.Index(reason, " offerings: "); i >= 0 {
		reason = reason[:i] + " offerings"
	}
	const limit = 240
	if len(reason) > limit {
		reason = reason[:limit] + "..."
	}
	return reason
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func launchedPods(res *provisioning.Result) int {
	n := 0
	for _, l := range res.Launched {
		n += len(l.Pods)
	}
	return n
}

func podList(pods []*corev1.Pod) string {
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// price returns the node's hourly bill (offerings.NodeBill with its
// NodePool's per-node costs; the walkthrough's pools keep the default
// Baseline policy, so no surplus credits), its offering's list price, and
// the bill of the same type on-demand.
func (s *sim) price(labels map[string]string) (bill, list, onDemand float64) {
	costs := s.nodeCosts[labels[offerings.LabelNodePool]]
	for _, it := range s.catalog {
		if it.Name != labels[offerings.LabelInstanceType] {
			continue
		}
		for _, o := range it.Offerings {
			if o.Zone != labels[offerings.LabelZone] {
				continue
			}
			if o.CapacityType == labels[offerings.LabelCapacityType] {
				bill, list = offerings.NodeBill(it, o, costs, offerings.BurstableBaseline, 0), o.Price
			}
			if o.CapacityType == offerings.CapacityTypeOnDemand {
				onDemand = offerings.NodeBill(it, o, costs, offerings.BurstableBaseline, 0)
			}
		}
	}
	return bill, list, onDemand
}

func (s *sim) describeNode(n *corev1.Node) string {
	bill, list, _ := s.price(n.Labels)
	return fmt.Sprintf("%s (%s %s %s, NodePool %s, $%.4f/h billed, $%.4f/h list)", n.Name, n.Labels[offerings.LabelInstanceType],
		n.Labels[offerings.LabelCapacityType], n.Labels[offerings.LabelZone], n.Labels[offerings.LabelNodePool], bill, list)
}

// observe diffs the cluster against the last observation and prints what
// changed: nodes registered, Ready, cordoned, deleted; pods bound, lost,
// pending.
func (s *sim) observe() {
	nodes, _ := s.cluster.ListNodes(s.ctx)
	pods, _ := s.cluster.ListPods(s.ctx)
	now := s.clk.Now()
	curNodes := map[string]nodeView{}
	for _, n := range nodes {
		v := nodeView{ready: provisioning.IsNodeReady(n), cordoned: n.Spec.Unschedulable, labels: n.Labels,
			consolidating: slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == provisioning.TaintKeyDisrupted })}
		old, existed := s.nodes[n.Name]
		if existed {
			v.created = old.created
		} else {
			v.created = now
			s.stats.launched[n.Labels[offerings.LabelCapacityType]]++
			s.logf("node %s registered: %s", n.Name, s.describeNode(n))
		}
		if v.ready && (!existed || !old.ready) {
			s.logf("node %s Ready", n.Name)
			s.readyAt[n.Name] = now
		}
		if v.cordoned && (!existed || !old.cordoned) {
			s.logf("node %s cordoned", n.Name)
		}
		curNodes[n.Name] = v
	}
	for _, name := range slices.Sorted(maps.Keys(s.nodes)) {
		if _, ok := curNodes[name]; !ok {
			old := s.nodes[name]
			life := now.Sub(old.created)
			bill, list, od := s.price(old.labels)
			s.stats.cost += bill * life.Hours()
			s.stats.listCost += list * life.Hours()
			s.stats.onDemandCost += od * life.Hours()
			s.stats.nodeSeconds += life.Seconds()
			s.stats.removed++
			s.deletedAt[name] = now
			s.logf("node %s deleted after %s", name, life.Round(time.Second))
		}
	}
	s.nodes = curNodes

	curPods := map[string]podView{}
	bound := map[string][]string{}
	var pending []string
	lost := map[string][]string{}
	for _, p := range pods {
		key := provisioning.PodKey(p)
		v := podView{node: p.Spec.NodeName, nominated: p.Status.NominatedNodeName}
		if ref := metav1.GetControllerOf(p); ref != nil {
			v.owner = ref.UID
		}
		old, existed := s.pods[key]
		if v.node != "" && (!existed || old.node == "") {
			bound[v.node] = append(bound[v.node], p.Name)
			if gone := s.stats.away[v.owner]; len(gone) > 0 {
				d := now.Sub(gone[0])
				s.stats.away[v.owner] = gone[1:]
				s.stats.maxUnavailable = max(s.stats.maxUnavailable, d)
				s.stats.sceneUnavailable = max(s.stats.sceneUnavailable, d)
			}
			if since, ok := s.stats.pendingSince[key]; ok {
				s.stats.maxPending = max(s.stats.maxPending, now.Sub(since))
				delete(s.stats.pendingSince, key)
				delete(s.stats.unschedulable, key)
			}
		}
		if v.node == "" && !existed {
			pending = append(pending, p.Name)
			s.stats.pendingSince[key] = now
		}
		curPods[key] = v
	}
	for _, key := range slices.Sorted(maps.Keys(s.pods)) {
		if _, ok := curPods[key]; ok {
			continue
		}
		delete(s.stats.pendingSince, key)
		delete(s.stats.unschedulable, key)
		if s.scaledAway[key] {
			delete(s.scaledAway, key)
			continue
		}
		if old := s.pods[key]; old.node != "" {
			s.stats.podsEvicted++
			if s.nodes[old.node].consolidating {
				s.stats.consolidationEvicted++
				s.stats.evicted = true
			} else if old.owner != "" {
				s.stats.away[old.owner] = append(s.stats.away[old.owner], now)
				s.stats.evicted = true
			}
			lost[old.node] = append(lost[old.node], key[strings.Index(key, "/")+1:])
		}
	}
	s.pods = curPods
	for _, node := range slices.Sorted(maps.Keys(lost)) {
		s.logf("pods evicted from %s: %s", node, strings.Join(lost[node], ", "))
	}
	if len(pending) > 0 {
		s.logf("pods pending: %s", strings.Join(pending, ", "))
	}
	for _, node := range slices.Sorted(maps.Keys(bound)) {
		s.logf("pods running on %s: %s", node, strings.Join(bound[node], ", "))
	}
}

// kubectlGetNodes prints the nodes the way
//
//	kubectl get node --selector=intent=apps -L kubernetes.io/arch -L node.kubernetes.io/instance-type \
//	  -L karpenter.sh/nodepool -L topology.kubernetes.io/zone -L karpenter.sh/capacity-type
//
// would.
func (s *sim) kubectlGetNodes(selector map[string]string) {
	nodes, _ := s.cluster.ListNodes(s.ctx)
	var sel []string
	for _, k := range slices.Sorted(maps.Keys(selector)) {
		sel = append(sel, k+"="+selector[k])
	}
	fmt.Fprintf(s.out, "\n$ kubectl get node --selector=%s -L kubernetes.io/arch -L node.kubernetes.io/instance-type -L karpenter.sh/nodepool -L topology.kubernetes.io/zone -L karpenter.sh/capacity-type\n", strings.Join(sel, ","))
	tw := tabwriter.NewWriter(s.out, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tROLES\tAGE\tVERSION\tARCH\tINSTANCE-TYPE\tNODEPOOL\tZONE\tCAPACITY-TYPE")
	shown := 0
	for _, n := range nodes {
		match := true
		for k, v := range selector {
			if n.Labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		shown++
		status := "NotReady"
		if provisioning.IsNodeReady(n) {
			status = "Ready"
		}
		if n.Spec.Unschedulable {
			status += ",SchedulingDisabled"
		}
		age := s.clk.Since(n.CreationTimestamp.Time).Round(time.Second)
		fmt.Fprintf(tw, "%s\t%s\t<none>\t%s\tv1.34.0-eks\t%s\t%s\t%s\t%s\t%s\n", n.Name, status, shortAge(age),
			n.Labels[offerings.LabelArch], n.Labels[offerings.LabelInstanceType], n.Labels[offerings.LabelNodePool],
			n.Labels[offerings.LabelZone], n.Labels[offerings.LabelCapacityType])
	}
	_ = tw.Flush()
	if shown == 0 {
		fmt.Fprintln(s.out, "No resources found")
	}
	fmt.Fprintln(s.out)
}

// shortAge renders an age like kubectl: 45s, 3m12s, 2h5m.
func shortAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
}
