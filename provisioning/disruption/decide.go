package disruption

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

// Decide runs one disruption pass over the snapshot: every empty node its
// budgets allow, then at most one command that moves pods, found by the
// first method that finds one (drift, expiration, multi-node, single-node).
// Nothing is decided while pods need capacity (Input.Pending). It is pure:
// the same input gives the same decision.
func Decide(in Input) (*Decision, error) {
	if in.Pending > 0 {
		return &Decision{}, nil
	}
	e, cands, err := newEngine(&in)
	if err != nil || len(cands) == 0 {
		return e.d, err
	}
	if cmd := e.empty(cands); cmd != nil {
		e.d.Commands = append(e.d.Commands, *cmd)
	}
	for _, method := range []func([]*candidate) (*Command, error){e.drift, e.expiration, e.multiNode, e.singleNode} {
		cmd, err := method(e.untaken(cands))
		if err != nil {
			return nil, err
		}
		if cmd != nil {
			e.d.Commands = append(e.d.Commands, *cmd)
			break
		}
	}
	return e.d, nil
}

// Validate re-checks cmd against a later snapshot, as the controller does
// after its validation delay: no pod may need capacity, every candidate
// must still be one and hold
// the same pods (else the pods churned), budgets must still allow it, and
// a fresh simulation must still place every pod with no more replacements
// and, for consolidation, still save. It returns the command to carry out,
// with the fresh simulation's replacements, or an error saying why not.
func Validate(in Input, cmd Command) (*Command, error) {
	if in.Pending > 0 {
		return nil, fmt.Errorf("%d pods need capacity", in.Pending)
	}
	e, cands, err := newEngine(&in)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*candidate, len(cands))
	for _, c := range cands {
		byName[c.Node.Node.Name] = c
	}
	want := map[string]bool{}
	for _, p := range cmd.Pods {
		want[p.Namespace+"/"+p.Name+"/"+string(p.UID)] = true
	}
	var set []*candidate
	for _, name := range cmd.Candidates {
		c := byName[name]
		if c == nil {
			reason := SkipReason("gone")
			for _, s := range e.d.Skipped {
				if s.Node == name {
					reason = s.Reason
				}
			}
			return nil, fmt.Errorf("node %s is no longer a candidate (%s)", name, reason)
		}
		for _, p := range c.moving {
			if !want[p.Namespace+"/"+p.Name+"/"+string(p.UID)] {
				return nil, fmt.Errorf("pods churned: %s/%s is new on node %s", p.Namespace, p.Name, name)
			}
			delete(want, p.Namespace+"/"+p.Name+"/"+string(p.UID))
		}
		set = append(set, c)
	}
	if len(want) > 0 {
		return nil, fmt.Errorf("pods churned: %d of the command's pods left its nodes", len(want))
	}
	if got := e.within(set, cmd.Reason, 0); len(got) < len(set) {
		return nil, fmt.Errorf("budgets or PodDisruptionBudgets no longer allow %d nodes", len(set))
	}
	if cmd.Method == MethodEmpty {
		return e.command(cmd.Method, cmd.Reason, set, nil, nil), nil
	}
	plan, err := e.simulate(set)
	if err != nil {
		return nil, err
	}
	claims := plan.NodeClaims
	switch cmd.Method {
	case MethodDrift, MethodExpiration:
		if len(plan.Unschedulable) > 0 {
			return nil, fmt.Errorf("%d pods no longer fit: %s", len(plan.Unschedulable), plan.Unschedulable[0].Reason)
		}
	default:
		var ok bool
		if claims, ok = e.worthIt(set, plan, len(cmd.Replacements)); !ok {
			return nil, fmt.Errorf("the move no longer saves with at most %d replacements", len(cmd.Replacements))
		}
	}
	return e.command(cmd.Method, cmd.Reason, set, destinations(plan), claims), nil
}

// newEngine sorts the snapshot into candidates and compiles it for
// simulation.
func newEngine(in *Input) (*engine, []*candidate, error) {
	pools := make(map[string]*Pool, len(in.Pools))
	// The pools are read, never written ("" is WhenEmptyOrUnderutilized:
	// the policy checks ask for WhenEmpty and Balanced by name).
	for i := range in.Pools {
		pools[in.Pools[i].Name] = &in.Pools[i]
	}
	e := &engine{in: in, d: &Decision{}, pools: pools, budgets: newBudgets(in, pools)}
	cands := in.candidates(e.d, pools)
	if len(cands) == 0 {
		return e, nil, nil
	}
	if err := e.compile(cands); err != nil {
		return e, nil, err
	}
	return e, cands, nil
}

type engine struct {
	in      *Input
	d       *Decision
	pools   map[string]*Pool
	budgets *budgets
	ctx     *scheduling.Context
	// taken are the nodes a command of this pass already removes.
	taken map[string]bool
	// poolBill and poolCost are each pool's hourly bill and disruption
	// cost, for Balanced.
	poolBill, poolCost map[string]float64
	// rooms are the schedulable nodes with spare cpu and memory, in the
	// solver's (name) order, for the bound that skips hopeless simulations.
	rooms []room
	// roomOf indexes rooms by node name; scratch is mayFit's copy of their
	// free room.
	roomOf  map[string]int
	scratch [][2]int64
	// shapes are the templates' instance types, cheapest bill first.
	shapes []shape
}

type room struct {
	name string
	free [2]int64
}

type shape struct {
	cpu, mem int64
	price    float64
}

func (e *engine) compile(cands []*candidate) error {
	e.taken = map[string]bool{}
	// Nodes already going take no pods in any simulation.
	for i := range e.in.Nodes {
		if n := &e.in.Nodes[i]; n.Disrupting {
			e.taken[n.Node.Name] = true
		}
	}
	e.poolBill, e.poolCost = map[string]float64{}, map[string]float64{}
	// Replacements list every type that fits: worthIt keeps
	// those whose bill preserves the move's saving, a tighter guard than the
	// solver's 10% and the one a Spot-to-Spot move's flexibility is counted
	// against.
	sin := scheduling.Input{DaemonSetPods: e.in.DaemonSetPods, Templates: e.in.Templates, Namespaces: e.in.Namespaces,
		MaxInstanceTypes: e.in.MaxInstanceTypes, ClaimPriceTolerance: math.Inf(1)}
	for _, c := range cands {
		sin.Pods = append(sin.Pods, c.moving...)
	}
	for i := range e.in.Nodes {
		n := &e.in.Nodes[i]
		sin.Nodes = append(sin.Nodes, scheduling.ExistingNode{Node: n.Node, Pods: n.Pods})
		e.poolBill[n.Pool] += n.Price
		if n.Node.Spec.Unschedulable || n.Node.DeletionTimestamp != nil || n.Disrupting {
			continue
		}
		alloc := n.Node.Status.Allocatable
		f := [2]int64{alloc.Cpu().MilliValue(), alloc.Memory().Value()}
		for _, pod := range n.Pods {
			r := podRequests(pod)
			f[0], f[1] = f[0]-r[0], f[1]-r[1]
		}
		if f[0] > 0 && f[1] > 0 {
			e.rooms = append(e.rooms, room{n.Node.Name, f})
		}
	}
	slices.SortFunc(e.rooms, func(a, b room) int { return strings.Compare(a.name, b.name) })
	e.roomOf = make(map[string]int, len(e.rooms))
	for i, r := range e.rooms {
		e.roomOf[r.name] = i
	}
	e.scratch = make([][2]int64, len(e.rooms))
	for _, c := range cands {
		e.poolCost[c.Pool] += c.cost
	}
	// Each template's types with the least bill a node of them can have
	// (no surplus credits) and the cpu its burstable policy lets pods use,
	// so the bound compares bills with the candidates' bills.
	for _, t := range e.in.Templates {
		for _, it := range t.InstanceTypes {
			_, burstable := it.BurstableBaselineMilli()
			if burstable && t.Burstable == offerings.BurstableExclude {
				continue
			}
			if o, ok := it.CheapestOffering(nil); ok {
				a := it.Allocatable()
				cpu := a.Cpu().MilliValue()
				if burstable && t.Burstable != offerings.BurstableCredits {
					cpu = it.BaselineAllocatableCPUMilli()
				}
				e.shapes = append(e.shapes, shape{cpu, a.Memory().Value(), offerings.NodeBill(it, o, t.NodeCosts, t.Burstable, 0)})
			}
		}
	}
	slices.SortFunc(e.shapes, func(a, b shape) int { return cmp.Compare(a.price, b.price) })
	ctx, err := scheduling.NewContext(sin)
	if err != nil {
		return fmt.Errorf("compiling the cluster for simulation: %w", err)
	}
	e.ctx = ctx
	return nil
}

// podRequests is pod's cpu (millicores) and memory (bytes) requests,
// containers only: a bound for skipping simulations, not the solver's
// exact accounting.
func podRequests(pod *corev1.Pod) [2]int64 {
	var r [2]int64
	for _, c := range pod.Spec.Containers {
		r[0] += c.Resources.Requests.Cpu().MilliValue()
		r[1] += c.Resources.Requests.Memory().Value()
	}
	return r
}

// untaken returns the candidates no command of this pass has taken.
func (e *engine) untaken(cands []*candidate) []*candidate {
	return slices.DeleteFunc(slices.Clone(cands), func(c *candidate) bool { return e.taken[c.Node.Node.Name] })
}

// within keeps, in order, the candidates that keep pods and budgets within
// limits for reason, up to max (0: no limit).
func (e *engine) within(cands []*candidate, reason Reason, limit int) []*candidate {
	var out []*candidate
	left := map[string]int{}
	used := map[int]int32{}
	for _, c := range cands {
		if limit > 0 && len(out) == limit {
			break
		}
		n, ok := left[c.Pool]
		if !ok {
			n = e.budgets.left(c.Pool, reason)
		}
		if n <= 0 || !pdbAllows(e.in.PDBs, used, c.pdbs) {
			left[c.Pool] = n
			continue
		}
		left[c.Pool] = n - 1
		for _, j := range c.pdbs {
			used[j]++
		}
		out = append(out, c)
	}
	return out
}

// destinations are the existing nodes plan placed pods on (nil plan: none).
func destinations(plan *scheduling.Plan) []string {
	if plan == nil {
		return nil
	}
	var out []string
	for _, p := range plan.ExistingNodes {
		if len(p.Pods) > 0 {
			out = append(out, p.Node.Name)
		}
	}
	return out
}

// command makes the move of cands, whose pods go to the existing nodes
// dest and to the replacements claims.
func (e *engine) command(method Method, reason Reason, cands []*candidate, dest []string, claims []*scheduling.NodeClaim) *Command {
	cmd := &Command{Method: method, Reason: reason, Replacements: claims, Destinations: dest}
	for _, c := range cands {
		cmd.Candidates = append(cmd.Candidates, c.Node.Node.Name)
		cmd.Pods = append(cmd.Pods, c.moving...)
		cmd.Saving += c.Price
		cmd.DisruptionCost += c.cost
		e.taken[c.Node.Node.Name] = true
	}
	for _, cl := range claims {
		cmd.Saving -= cl.Price()
	}
	e.budgets.take(cands)
	return cmd
}

// empty removes every settled empty candidate its budget allows.
func (e *engine) empty(cands []*candidate) *Command {
	var empties []*candidate
	for _, c := range cands {
		if len(c.moving) == 0 && c.settled {
			empties = append(empties, c)
		}
	}
	chosen := e.within(empties, ReasonEmpty, 0)
	e.skipBudget(empties, chosen)
	if len(chosen) == 0 {
		return nil
	}
	return e.command(MethodEmpty, ReasonEmpty, chosen, nil, nil)
}

func (e *engine) skipBudget(wanted, chosen []*candidate) {
	for _, c := range wanted {
		if !slices.Contains(chosen, c) {
			e.d.Skipped = append(e.d.Skipped, Skip{Node: c.Node.Node.Name, Reason: SkipBudget})
		}
	}
}

func (e *engine) drift(cands []*candidate) (*Command, error) {
	return e.replaceAll(cands, MethodDrift, ReasonDrifted, func(c *candidate) bool { return c.drifted })
}

func (e *engine) expiration(cands []*candidate) (*Command, error) {
	return e.replaceAll(cands, MethodExpiration, ReasonExpired, func(c *candidate) bool { return c.expired })
}

// replaceAll moves as many of the nodes that must go as budgets allow, with
// whatever replacements they need, halving the set while its pods do not
// all fit.
func (e *engine) replaceAll(cands []*candidate, method Method, reason Reason, must func(*candidate) bool) (*Command, error) {
	var wanted []*candidate
	for _, c := range cands {
		if must(c) {
			wanted = append(wanted, c)
		}
	}
	chosen := e.within(wanted, reason, 0)
	e.skipBudget(wanted, chosen)
	for n := len(chosen); n > 0; n /= 2 {
		plan, err := e.simulate(chosen[:n])
		if err != nil {
			return nil, err
		}
		if len(plan.Unschedulable) == 0 {
			return e.command(method, reason, chosen[:n], destinations(plan), plan.NodeClaims), nil
		}
	}
	return nil, nil
}

func (e *engine) simulate(cands []*candidate) (*scheduling.Plan, error) {
	e.d.Simulations++
	without := make(map[string]bool, len(cands)+len(e.taken))
	for name := range e.taken {
		without[name] = true
	}
	var pods []*corev1.Pod
	for _, c := range cands {
		without[c.Node.Node.Name] = true
		pods = append(pods, c.moving...)
	}
	plan, err := e.ctx.Solve(pods, without)
	if err != nil {
		return nil, fmt.Errorf("simulating the removal of %d nodes: %w", len(cands), err)
	}
	return plan, nil
}

// consolidatable are the settled candidates with pods whose pool's policy
// allows replacing them.
func (e *engine) consolidatable(cands []*candidate) []*candidate {
	var out []*candidate
	for _, c := range cands {
		if c.settled && len(c.moving) > 0 && c.pool.Policy != WhenEmpty {
			out = append(out, c)
		}
	}
	return out
}

// multiNode finds, by binary search over the candidates cheapest to disrupt
// first, the longest prefix whose pods fit on the other nodes plus fewer new
// nodes than it removes, for less.
func (e *engine) multiNode(cands []*candidate) (*Command, error) {
	chosen := e.within(e.consolidatable(cands), ReasonUnderutilized, 0)
	if len(chosen) < 2 {
		return nil, nil
	}
	bestN, bestDest, bestClaims := 0, []string(nil), []*scheduling.NodeClaim(nil)
	lo, hi := 2, len(chosen)
	for lo <= hi {
		mid := (lo + hi) / 2
		set := chosen[:mid]
		ok := e.mayFit(set)
		var claims []*scheduling.NodeClaim
		var dest []string
		if ok {
			plan, err := e.simulate(set)
			if err != nil {
				return nil, err
			}
			claims, ok = e.worthIt(set, plan, len(set)-1)
			dest = destinations(plan)
		}
		if ok {
			bestN, bestDest, bestClaims = mid, dest, claims
			lo = mid + 1
		} else {
			hi = mid - 1
		}
	}
	if bestN == 0 {
		return nil, nil
	}
	return e.command(MethodMultiNode, ReasonUnderutilized, chosen[:bestN], bestDest, bestClaims), nil
}

// singleNode takes the first candidate, cheapest to disrupt first, that can
// be deleted or replaced by one cheaper node.
func (e *engine) singleNode(cands []*candidate) (*Command, error) {
	cons := e.consolidatable(cands)
	for _, c := range cons {
		set := []*candidate{c}
		if len(e.within(set, ReasonUnderutilized, 0)) == 0 || !e.mayFit(set) {
			continue
		}
		plan, err := e.simulate(set)
		if err != nil {
			return nil, err
		}
		if claims, ok := e.worthIt(set, plan, 1); ok {
			return e.command(MethodSingleNode, ReasonUnderutilized, set, destinations(plan), claims), nil
		}
	}
	return nil, nil
}

// mayFit is the cheap bound that spares most simulations: the set's pods,
// largest first, go first-fit into the spare cpu and memory of the other
// nodes, as the solver would place them; what is left must fit one
// instance type cheaper than the set less the least saving. That is a
// policy as much as a bound: a set whose leftover needs two or more new
// nodes is not tried, though a multi-node move may launch up to one node
// fewer than it removes (m → n with n ≥ 2 is never found). Letting the
// bound count nodes (ceil(left / shape) ≤ len(set)-1) finds those moves, and
// raised WhenEmptyOrUnderutilized's churn in BenchmarkConsolidationChurn
// from 248 to 3,610 evictions an hour for no lower converged bill, so it
// waits for a rule that weighs a move's saving against its disruption.
// Constraints other than cpu and memory only make placing harder.
func (e *engine) mayFit(set []*candidate) bool {
	for i, r := range e.rooms {
		e.scratch[i] = r.free
	}
	for name := range e.taken {
		if i, ok := e.roomOf[name]; ok {
			e.scratch[i] = [2]int64{}
		}
	}
	var pods [][2]int64
	var price float64
	for _, c := range set {
		for _, pod := range c.moving {
			pods = append(pods, podRequests(pod))
		}
		price += c.Price
		if i, ok := e.roomOf[c.Node.Node.Name]; ok {
			e.scratch[i] = [2]int64{}
		}
	}
	slices.SortFunc(pods, func(a, b [2]int64) int { return cmp.Or(cmp.Compare(b[0], a[0]), cmp.Compare(b[1], a[1])) })
	var left [2]int64
	for _, r := range pods {
		placed := false
		for i := range e.scratch {
			if f := &e.scratch[i]; f[0] >= r[0] && f[1] >= r[1] {
				f[0], f[1] = f[0]-r[0], f[1]-r[1]
				placed = true
				break
			}
		}
		if !placed {
			left[0], left[1] = left[0]+r[0], left[1]+r[1]
		}
	}
	if left == [2]int64{} {
		return true
	}
	budget := price - e.minSaving(set)
	for _, s := range e.shapes {
		if s.price >= budget {
			return false
		}
		if s.cpu >= left[0] && s.mem >= left[1] {
			return true
		}
	}
	return false
}

func (e *engine) minSaving(set []*candidate) float64 {
	m := 0.0
	for _, c := range set {
		m = max(m, c.pool.MinSaving)
	}
	return m
}

// worthIt reports whether plan makes a move of set worth making: every pod
// placed, at most maxClaims new nodes, a saving of at least the pools' least
// saving (and a positive one), Balanced's ratio, and Spot-to-Spot's
// flexibility. It returns the claims with only the instance types that
// keep the saving, so the cloud cannot launch a dearer one.
func (e *engine) worthIt(set []*candidate, plan *scheduling.Plan, maxClaims int) ([]*scheduling.NodeClaim, bool) {
	if len(plan.Unschedulable) > 0 || len(plan.NodeClaims) > maxClaims {
		return nil, false
	}
	var price, cost float64
	for _, c := range set {
		price += c.Price
		cost += c.cost
	}
	var newPrice float64
	for _, cl := range plan.NodeClaims {
		newPrice += cl.Price()
	}
	saving := price - newPrice
	if saving <= 0 || saving < e.minSaving(set) {
		return nil, false
	}
	for _, c := range set {
		if c.pool.Policy != Balanced {
			continue
		}
		// saving share / disruption share >= 1/k, per pool touched.
		bill, total := e.poolBill[c.Pool], e.poolCost[c.Pool]
		if bill <= 0 || total <= 0 {
			continue
		}
		if (saving/bill)*c.pool.balanceK() < cost/total {
			return nil, false
		}
	}
	// The claims may together cost up to what leaves the least saving: a
	// type no cheaper than that is dropped, so the cloud cannot launch it.
	slack := (saving - e.minSaving(set)) / float64(max(len(plan.NodeClaims), 1))
	var claims []*scheduling.NodeClaim
	for _, cl := range plan.NodeClaims {
		ceiling := cl.Price() + slack
		kept := cheaperTypes(cl, ceiling)
		if len(set) == 1 && set[0].Node.Node.Labels[offerings.LabelCapacityType] == offerings.CapacityTypeSpot && spotOnly(cl, kept) {
			if len(kept) < set[0].pool.spotToSpotMinTypes() {
				return nil, false
			}
		}
		c := *cl
		c.InstanceTypes = kept
		claims = append(claims, &c)
	}
	return claims, true
}

// cheaperTypes keeps the claim's types whose cheapest bill the claim
// allows is below ceiling, and its cheapest.
func cheaperTypes(cl *scheduling.NodeClaim, ceiling float64) []*offerings.InstanceType {
	var out []*offerings.InstanceType
	price := cl.Price()
	requested := cl.PodRequests.Cpu().MilliValue() + cl.DaemonSetRequests.Cpu().MilliValue()
	for _, it := range cl.InstanceTypes {
		best := math.Inf(1)
		for _, o := range cl.Offerings(it) {
			best = min(best, offerings.NodeBill(it, o, cl.Template.NodeCosts, cl.Template.Burstable, requested))
		}
		if best < ceiling || best == price {
			out = append(out, it)
		}
	}
	return out
}

// spotOnly reports whether the cheapest offering of the kept types is Spot:
// the replacement would be Spot.
func spotOnly(cl *scheduling.NodeClaim, kept []*offerings.InstanceType) bool {
	c := *cl
	c.InstanceTypes = kept
	_, o, ok := c.CheapestOffering()
	return ok && o.CapacityType == offerings.CapacityTypeSpot
}
