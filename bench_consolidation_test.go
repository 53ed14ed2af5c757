package fleetpack_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/internal/workload"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning/disruption"
	"github.com/fleetpack/fleetpack/scheduling"
)

// serviceShape draws service-sized pods: 250m to 1 cpu, 1 to 4 GiB per
// cpu, so that 10,000 of them pack onto about 1,000 nodes.
func serviceShape(rng *rand.Rand) (int64, int64) {
	cpu := []int64{250, 500, 750, 1000}[rng.IntN(4)]
	return cpu, cpu * []int64{1, 2, 4}[rng.IntN(3)] * 1024 / 1000
}

// consolidationCluster is a cluster replayed in memory for consolidation
// benchmarks: nodes made from solver claims, pods placed as the solver
// placed them, and a virtual clock. Moves are applied as the execution
// loop would: candidates removed, replacements launched, moved pods
// provisioned for again (onto existing nodes first).
type consolidationCluster struct {
	b        testing.TB
	template *scheduling.NodeTemplate
	pool     disruption.Pool
	now      time.Time
	nodes    map[string]*consolidationNode
	seq      int
	// launched is when each node (by name) was launched.
	launched map[string]time.Time
	// movedIn is when each node last received pods a move evicted
	// (measured, where the pods went); disruptedInto is what the executor
	// records for the engine: when a move launched a node or its
	// simulation sent the node pods.
	movedIn, disruptedInto map[string]time.Time
}

type consolidationNode struct {
	node  *corev1.Node
	pods  []*corev1.Pod
	price float64
	quiet time.Time
}

func newConsolidationCluster(b testing.TB) *consolidationCluster {
	types, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	// Nodes of 8 cpus, so that 10,000 service pods make about 1,000 nodes,
	// as in the target: on the bill, larger types would pack them
	// into a few dozen.
	tmpl := defaultTemplate(b, types)
	for _, bound := range []struct {
		op    corev1.NodeSelectorOperator
		value string
	}{{corev1.NodeSelectorOpGt, "7"}, {corev1.NodeSelectorOpLt, "9"}} {
		r, err := scheduling.NewRequirement(offerings.LabelInstanceCPU, bound.op, bound.value)
		if err != nil {
			b.Fatal(err)
		}
		tmpl.Requirements.Add(r)
	}
	tmpl.InstanceTypes = tmpl.AdmittedTypes(types)
	return &consolidationCluster{
		b: b, template: tmpl,
		pool:  disruption.Pool{Name: "default", ConsolidateAfter: 30 * time.Second},
		now:   time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC),
		nodes: map[string]*consolidationNode{}, launched: map[string]time.Time{}, movedIn: map[string]time.Time{}, disruptedInto: map[string]time.Time{},
	}
}

// provision places pods on existing nodes or on new nodes, as the
// Provisioner would; it returns the nodes that took pods.
func (c *consolidationCluster) provision(pods []*corev1.Pod, without map[string]bool) []string {
	in := scheduling.Input{Pods: pods, Templates: []*scheduling.NodeTemplate{c.template}}
	for _, name := range slices.Sorted(maps.Keys(c.nodes)) {
		if !without[name] {
			in.Nodes = append(in.Nodes, scheduling.ExistingNode{Node: c.nodes[name].node, Pods: c.nodes[name].pods})
		}
	}
	plan, err := scheduling.Solve(in)
	if err != nil {
		c.b.Fatal(err)
	}
	if len(plan.Unschedulable) > 0 {
		c.b.Fatalf("%d pods unschedulable: %v", len(plan.Unschedulable), plan.Unschedulable[0])
	}
	var took []string
	for _, p := range plan.ExistingNodes {
		c.bind(c.nodes[p.Node.Name], p.Pods)
		took = append(took, p.Node.Name)
	}
	for _, claim := range plan.NodeClaims {
		n := c.launch(claim)
		c.bind(n, claim.Pods)
		took = append(took, n.node.Name)
	}
	return took
}

func (c *consolidationCluster) bind(n *consolidationNode, pods []*corev1.Pod) {
	for _, p := range pods {
		p = p.DeepCopy()
		p.Spec.NodeName = n.node.Name
		n.pods = append(n.pods, p)
	}
	n.quiet = c.now
}

// launch makes the node a claim becomes: its offering with the least bill,
// priced at that bill, so the cluster's bill is the one fresh solves report.
func (c *consolidationCluster) launch(claim *scheduling.NodeClaim) *consolidationNode {
	it, o, bill, ok := claim.CheapestBill()
	if !ok {
		c.b.Fatalf("claim %s has no offering", claim.Hostname)
	}
	c.seq++
	name := fmt.Sprintf("node-%05d", c.seq)
	labels := claim.Labels()
	for k, v := range it.Labels {
		labels[k] = v
	}
	labels[offerings.LabelInstanceType], labels[offerings.LabelZone], labels[offerings.LabelCapacityType], labels[offerings.LabelHostname] = it.Name, o.Zone, o.CapacityType, name
	n := &consolidationNode{
		node: &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, CreationTimestamp: metav1.NewTime(c.now)},
			Status: corev1.NodeStatus{Capacity: it.Capacity, Allocatable: it.Allocatable(), Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(c.now)},
			}},
		},
		price: bill, quiet: c.now,
	}
	c.nodes[name] = n
	c.launched[name] = c.now
	return n
}

func (c *consolidationCluster) input() disruption.Input {
	in := disruption.Input{Now: c.now, Templates: []*scheduling.NodeTemplate{c.template}, Pools: []disruption.Pool{c.pool}}
	for _, name := range slices.Sorted(maps.Keys(c.nodes)) {
		n := c.nodes[name]
		in.Nodes = append(in.Nodes, disruption.Node{Node: n.node, Pods: n.pods, Pool: "default", Managed: true, Price: n.price, QuietSince: n.quiet, DisruptedInto: c.disruptedInto[name]})
	}
	return in
}

// deletePods removes each pod with probability share.
func (c *consolidationCluster) deletePods(rng *rand.Rand, share float64) int {
	removed := 0
	for _, name := range slices.Sorted(maps.Keys(c.nodes)) {
		n := c.nodes[name]
		kept := n.pods[:0]
		for _, p := range n.pods {
			if rng.Float64() < share {
				removed++
				continue
			}
			kept = append(kept, p)
		}
		if len(kept) != len(n.pods) {
			n.quiet = c.now
		}
		n.pods = kept
	}
	return removed
}

// apply carries out a decision; it returns the pods evicted.
func (c *consolidationCluster) apply(d *disruption.Decision) int {
	evicted := 0
	for _, cmd := range d.Commands {
		var moving []*corev1.Pod
		without := map[string]bool{}
		for _, name := range cmd.Candidates {
			without[name] = true
			for _, p := range c.nodes[name].pods {
				p = p.DeepCopy()
				p.Spec.NodeName = ""
				moving = append(moving, p)
			}
		}
		for _, claim := range cmd.Replacements {
			c.disruptedInto[c.launch(claim).node.Name] = c.now
		}
		for _, name := range cmd.Destinations {
			c.disruptedInto[name] = c.now
		}
		for _, name := range c.provision(moving, without) {
			c.movedIn[name] = c.now
		}
		for _, name := range cmd.Candidates {
			delete(c.nodes, name)
		}
		evicted += len(moving)
	}
	return evicted
}

func (c *consolidationCluster) bill() float64 {
	total := 0.0
	for _, n := range c.nodes {
		total += n.price
	}
	return total
}

func (c *consolidationCluster) pods() []*corev1.Pod {
	var out []*corev1.Pod
	for _, name := range slices.Sorted(maps.Keys(c.nodes)) {
		for _, p := range c.nodes[name].pods {
			p = p.DeepCopy()
			p.Spec.NodeName = ""
			out = append(out, p)
		}
	}
	return out
}

func decide(b testing.TB, in disruption.Input) *disruption.Decision {
	d, err := disruption.Decide(in)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// converge runs passes a minute apart, or at the decision's wake when a
// pass moves nothing (as the controller would: nodes held by
// consolidateAfter or stabilization become candidates then), until a pass
// moves nothing and knows no wake; it applies each move and returns the
// passes that moved and the pods they evicted.
func (c *consolidationCluster) converge(b testing.TB) (passes, evicted int, slowest time.Duration) {
	for range 1000 {
		c.now = c.now.Add(time.Minute)
		start := time.Now()
		d := decide(b, c.input())
		slowest = max(slowest, time.Since(start))
		if len(d.Commands) == 0 {
			if d.Wake.IsZero() {
				return passes, evicted, slowest
			}
			c.now = d.Wake.Add(-time.Minute)
			continue
		}
		passes++
		evicted += c.apply(d)
	}
	b.Fatalf("no convergence after %d passes", passes)
	return
}

// freshBill is the bill of a fresh solve of the cluster's pods.
func (c *consolidationCluster) freshBill(b testing.TB) float64 {
	plan, err := scheduling.Solve(scheduling.Input{Pods: c.pods(), Templates: []*scheduling.NodeTemplate{c.template}})
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, cl := range plan.NodeClaims {
		total += cl.Price()
	}
	return total
}

// BenchmarkConsolidation times one full decision pass over 10,000 pods on
// about 1,000 nodes: freshly packed (the pass stops at the first method
// that finds a move), converged (every method runs to the end and finds
// nothing: the most simulations a pass makes), and converged again after a
// 70% scale-in.
func BenchmarkConsolidation(b *testing.B) {
	c := newConsolidationCluster(b)
	c.provision(workload.Shaped(10000, 42, serviceShape), nil)
	c.now = c.now.Add(time.Hour)
	pass := func(b *testing.B) {
		in := c.input()
		b.ReportAllocs()
		var d *disruption.Decision
		for b.Loop() {
			d = decide(b, in)
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/pass")
		b.ReportMetric(float64(d.Simulations), "simulations")
		b.ReportMetric(float64(len(c.nodes)), "nodes")
		b.ReportMetric(float64(len(d.Commands)), "commands")
	}
	b.Run("nodes=1000", pass)
	c.converge(b)
	b.Run("nodes=1000/converged", pass)
	c.deletePods(rand.New(rand.NewPCG(1, 2)), 0.7)
	c.converge(b)
	b.Run("nodes=1000/scaled-in-converged", pass)
}

// BenchmarkConsolidationQuality provisions 10,000 pods, deletes 70% at
// random and runs passes until none moves anything: it reports the passes,
// the evictions and the bill over a fresh solve of the pods left, then
// checks that 20 more passes make no move.
func BenchmarkConsolidationQuality(b *testing.B) {
	for _, policy := range []disruption.Policy{disruption.WhenEmptyOrUnderutilized, disruption.Balanced} {
		b.Run("policy="+string(policy), func(b *testing.B) {
			var passes, evicted int
			var ratio float64
			var slowest, took time.Duration
			for b.Loop() {
				c := newConsolidationCluster(b)
				c.pool.Policy = policy
				c.provision(workload.Shaped(10000, 42, serviceShape), nil)
				c.deletePods(rand.New(rand.NewPCG(1, 2)), 0.7)
				from := c.now
				passes, evicted, slowest = c.converge(b)
				took = c.now.Sub(from)
				ratio = c.bill() / c.freshBill(b)
				for range 20 {
					c.now = c.now.Add(time.Minute)
					if d := decide(b, c.input()); len(d.Commands) > 0 {
						b.Fatalf("converged cluster moved again: %s", summary(d))
					}
				}
			}
			b.ReportMetric(float64(passes), "passes")
			b.ReportMetric(float64(evicted), "evictions")
			b.ReportMetric(ratio, "bill/fresh")
			b.ReportMetric(float64(slowest.Milliseconds()), "slowest-ms/pass")
			b.ReportMetric(took.Hours(), "hours-to-converge")
		})
	}
}

// BenchmarkConsolidationChurn replaces 5% of a converged cluster's pods
// before each pass, a pass every 5 minutes for 2 hours, and reports the
// evictions consolidation makes per hour, the nodes it disrupts within an
// hour of launching them, and the pods it evicts twice within an hour.
func BenchmarkConsolidationChurn(b *testing.B) {
	for _, policy := range []disruption.Policy{disruption.WhenEmptyOrUnderutilized, disruption.Balanced} {
		b.Run("policy="+string(policy), func(b *testing.B) {
			var perHour float64
			var again, twice int
			for b.Loop() {
				c := newConsolidationCluster(b)
				c.pool.Policy = policy
				c.provision(workload.Shaped(10000, 42, serviceShape), nil)
				c.converge(b)
				rng := rand.New(rand.NewPCG(3, 4))
				evicted, lastEvicted := 0, map[string]time.Time{}
				again, twice = 0, 0
				const passes = 24
				for pass := range passes {
					c.now = c.now.Add(5 * time.Minute)
					n := c.deletePods(rng, 0.05)
					fresh := workload.Shaped(n, uint64(100+pass), serviceShape)
					for _, p := range fresh {
						p.Name = fmt.Sprintf("churn-%02d-%s", pass, p.Name)
					}
					c.provision(fresh, nil)
					d := decide(b, c.input())
					for _, cmd := range d.Commands {
						for _, name := range cmd.Candidates {
							if at, ok := c.movedIn[name]; ok && c.now.Sub(at) < time.Hour {
								again++
							}
						}
						for _, p := range cmd.Pods {
							if t, ok := lastEvicted[p.Name]; ok && c.now.Sub(t) < time.Hour {
								twice++
							}
							lastEvicted[p.Name] = c.now
						}
					}
					evicted += c.apply(d)
				}
				perHour = float64(evicted) / (passes * 5.0 / 60)
			}
			b.ReportMetric(perHour, "evictions/h")
			b.ReportMetric(float64(again), "nodes-redisrupted<1h")
			b.ReportMetric(float64(twice), "pods-evicted-twice<1h")
		})
	}
}

func summary(d *disruption.Decision) string {
	out := fmt.Sprintf("%d sims:", d.Simulations)
	for _, c := range d.Commands {
		out += fmt.Sprintf(" [%s -%d +%d pods %d save %.3f]", c.Method, len(c.Candidates), len(c.Replacements), len(c.Pods), c.Saving)
	}
	return out
}
