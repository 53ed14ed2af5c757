package provisioning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning/disruption"
	"github.com/fleetpack/fleetpack/provisioning/drain"
	"github.com/fleetpack/fleetpack/scheduling"
)

// DefaultValidationDelay is how long a consolidation decision waits before
// it is checked again and carried out.
const DefaultValidationDelay = 15 * time.Second

// TaintKeyDisrupted marks (NoSchedule) the nodes a consolidation move is
// removing, so no new pod lands on them.
const TaintKeyDisrupted = "fleetpack.dev/disrupted"

// ConsolidationOptions configures consolidation (see package disruption).
type ConsolidationOptions struct {
	// Enabled turns consolidation on: drift, expiration, multi- and
	// single-node moves, and empty-node removal as its first method (which
	// RemoveEmptyNodes then leaves to it). The cluster must implement
	// NodeTainter.
	Enabled bool
	// ValidationDelay is how long a decision waits before it is validated
	// against a fresh snapshot and carried out.
	ValidationDelay time.Duration
}

// consolidator is the consolidation controller's own state: when each
// node's pods last changed, when a move last launched a node or sent it
// pods (disruption.Node.DisruptedInto), and the one move in flight.
type consolidator struct {
	quiet         map[string]podsMark
	disruptedInto map[string]time.Time
	move          *move
}

type podsMark struct {
	key   string
	since time.Time
}

// move is a consolidation command being carried out.
type move struct {
	cmd   disruption.Command
	phase movePhase
	// due is when a deciding move is validated.
	due time.Time
	// replacements are the launched replacement nodes; started is when.
	replacements []string
	started      time.Time
	// drains are the candidates' drains, by node name.
	drains map[string]*drain.Drain
}

type movePhase int

const (
	phaseValidating movePhase = iota
	phaseReplacing
	phaseDraining
)

// Consolidate moves consolidation one step on, as Run calls it: with no
// move in flight it decides one (disruption.Decide over a snapshot) and
// waits ValidationDelay; then it validates it again (disruption.Validate:
// same pods, fresh simulation) and taints the candidates NoSchedule and
// launches the replacements; once they are Ready it drains the candidates
// through the Eviction API and terminates them. A replacement that fails
// or is not Ready within LaunchTimeout abandons the move and untaints the
// candidates. It returns the nodes removed and when it next needs to run
// (zero: on the next cluster change).
func (p *Provisioner) Consolidate(ctx context.Context) ([]string, time.Time, error) {
	if !p.opts.Consolidation.Enabled {
		return nil, time.Time{}, nil
	}
	tainter, ok := p.cluster.(NodeTainter)
	if !ok {
		return nil, time.Time{}, errors.New("consolidation needs a Cluster that implements NodeTainter")
	}
	p.passMu.Lock()
	defer p.passMu.Unlock()
	s, err := p.snapshot(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	c := p.consolidation
	c.observe(s)
	m := c.move
	switch {
	case m == nil:
		return nil, p.decideMove(ctx, s), nil
	case m.phase == phaseValidating && s.now.Before(m.due):
		return nil, m.due, nil
	case m.phase == phaseValidating:
		return nil, p.startMove(ctx, s, tainter), nil
	case m.phase == phaseReplacing:
		if !p.replacementsReady(ctx, s, tainter) {
			if c.move == nil {
				return nil, s.now, nil
			}
			return nil, m.started.Add(p.opts.LaunchTimeout), nil
		}
	}
	return p.drainMove(ctx, s)
}

// observe notes when each node's movable pods last changed.
func (c *consolidator) observe(s *snapshot) {
	keys := map[string][]string{}
	for _, pod := range s.pods {
		if pod.Spec.NodeName != "" && MovesOnDrain(pod) {
			keys[pod.Spec.NodeName] = append(keys[pod.Spec.NodeName], string(pod.UID))
		}
	}
	for name, node := range s.nodes {
		uids := keys[name]
		slices.Sort(uids)
		key := strings.Join(uids, ",")
		old, seen := c.quiet[name]
		switch {
		case !seen:
			// First sight (or a restart): the latest of the node's Ready
			// time and its pods' starts stands in.
			since := readySince(node)
			for _, pod := range s.pods {
				if pod.Spec.NodeName == name && pod.CreationTimestamp.After(since) {
					since = pod.CreationTimestamp.Time
				}
			}
			c.quiet[name] = podsMark{key: key, since: since}
		case old.key != key:
			c.quiet[name] = podsMark{key: key, since: s.now}
		}
	}
	for name := range c.quiet {
		if _, ok := s.nodes[name]; !ok {
			delete(c.quiet, name)
		}
	}
	for name := range c.disruptedInto {
		if _, ok := s.nodes[name]; !ok {
			delete(c.disruptedInto, name)
		}
	}
}

// disruptionInput builds the decision's snapshot from the solver input of
// the provisioning pass, so both see the same nodes and pods.
func (p *Provisioner) disruptionInput(ctx context.Context, s *snapshot) (disruption.Input, error) {
	catalog, err := p.cloud.InstanceTypes(ctx)
	if err != nil {
		return disruption.Input{}, fmt.Errorf("getting instance types: %w", err)
	}
	opts := ConsolidationInputOptions{
		NodePools: p.NodePools(), Catalog: catalog,
		QuietSince:    func(node string) time.Time { return p.consolidation.quiet[node].since },
		DisruptedInto: func(node string) time.Time { return p.consolidation.disruptedInto[node] },
	}
	if m := p.consolidation.move; m != nil {
		opts.Disrupting = map[string]bool{}
		for _, n := range m.replacements {
			opts.Disrupting[n] = true
		}
	}
	if l, ok := p.cluster.(PDBLister); ok {
		if opts.PDBs, err = l.ListPDBs(ctx); err != nil {
			return disruption.Input{}, err
		}
	}
	return ConsolidationInput(s.now, s.nodes, p.input(ctx, s, nil, nil, catalog), opts)
}

// ConsolidationInputOptions are what ConsolidationInput needs besides the
// solver input.
type ConsolidationInputOptions struct {
	NodePools []*NodePool
	Catalog   []*offerings.InstanceType
	PDBs      []*policyv1.PodDisruptionBudget
	// QuietSince says when a node's pods last changed (nil, or a zero
	// time: when it became Ready).
	QuietSince func(node string) time.Time
	// DisruptedInto says when a move last launched a node or sent it pods
	// (nil, or a zero time: never).
	DisruptedInto func(node string) time.Time
	// Disrupting are nodes already being removed or replaced, besides
	// those tainted TaintKeyDisrupted.
	Disrupting map[string]bool
	// AssumeManaged treats every node of a known NodePool as launched by
	// fleetpack: for what-if tools over manifests.
	AssumeManaged bool
}

// ConsolidationInput builds disruption's snapshot from the solver input
// SolverInput made (nodes with their bound and nominated pods, daemonsets,
// one template per NodePool; sin.Pods are the pods needing capacity) and
// the nodes as they are (nodes, by name, with their startup taints). It is
// pure; the Provisioner's consolidation and the plan tool use it.
func ConsolidationInput(now time.Time, nodes map[string]*corev1.Node, sin scheduling.Input, opts ConsolidationInputOptions) (disruption.Input, error) {
	in := disruption.Input{
		Now: now, DaemonSetPods: sin.DaemonSetPods, Templates: sin.Templates, Namespaces: sin.Namespaces,
		MaxInstanceTypes: sin.MaxInstanceTypes, Moves: MovesOnDrain, Pending: len(sin.Pods), PDBs: opts.PDBs,
	}
	known := map[string]bool{}
	for _, np := range opts.NodePools {
		pool, err := np.DisruptionPool()
		if err != nil {
			return disruption.Input{}, err
		}
		in.Pools = append(in.Pools, pool)
		known[np.Name] = true
	}
	for _, n := range sin.Nodes {
		node := n.Node
		if orig := nodes[node.Name]; orig != nil {
			node = orig // with its startup taints, to tell initialized
		}
		pool := node.Labels[offerings.LabelNodePool]
		dn := disruption.Node{
			Node: node, Pods: n.Pods, Pool: pool, Managed: IsManaged(node) || opts.AssumeManaged && known[pool],
			Price:      nodeBill(node, n.Pods, templateOf(sin.Templates, pool), opts.Catalog),
			Disrupting: opts.Disrupting[node.Name] || slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == TaintKeyDisrupted }),
		}
		if opts.QuietSince != nil {
			dn.QuietSince = opts.QuietSince(node.Name)
		}
		if opts.DisruptedInto != nil {
			dn.DisruptedInto = opts.DisruptedInto(node.Name)
		}
		for _, pod := range n.Pods {
			dn.Nominated = dn.Nominated || pod.Spec.NodeName == ""
		}
		in.Nodes = append(in.Nodes, dn)
	}
	return in, nil
}

// nodeBill is what node costs per hour, as AWS bills it: its offering's
// price plus, under its NodePool's template, the per-node costs and the
// surplus credits its pods' cpu requests incur (offerings.NodeBill). It is
// the one place consolidation prices an existing node, so a move's saving
// is counted on the same bill as its replacements' (NodeClaim.Price). A
// node whose type and offering the catalog does not have is priced 0: no
// move can save on it.
func nodeBill(node *corev1.Node, pods []*corev1.Pod, tmpl *scheduling.NodeTemplate, catalog []*offerings.InstanceType) float64 {
	var costs offerings.NodeCosts
	var policy offerings.BurstablePolicy
	if tmpl != nil {
		costs, policy = tmpl.NodeCosts, tmpl.Burstable
	}
	var requested int64
	for _, pod := range pods {
		cpu := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})[corev1.ResourceCPU]
		requested += cpu.MilliValue()
	}
	if it, o, ok := offeringOf(catalog, node); ok {
		return offerings.NodeBill(it, o, costs, policy, requested)
	}
	return 0
}

// templateOf is the template of the named NodePool, or nil.
func templateOf(templates []*scheduling.NodeTemplate, pool string) *scheduling.NodeTemplate {
	for _, t := range templates {
		if t.NodePool == pool {
			return t
		}
	}
	return nil
}

// decideMove runs a decision and, if it finds a move, holds it for
// validation. It returns when to run next.
func (p *Provisioner) decideMove(ctx context.Context, s *snapshot) time.Time {
	// Nothing is disrupted while pods need capacity (Decide says the same),
	// so the input, with its catalog read and PDB listing, is not built.
	if len(p.pending(s)) > 0 {
		return s.now.Add(p.opts.RetryInterval) // after the provisioner's pass
	}
	in, err := p.disruptionInput(ctx, s)
	if err != nil {
		p.log.ErrorContext(ctx, "consolidation: building the snapshot", "error", err)
		return s.now.Add(p.opts.RetryInterval)
	}
	start := p.clock.Now()
	d, err := disruption.Decide(in)
	if err != nil {
		p.metrics.ConsolidationDecisions.WithLabelValues("", "error").Inc()
		p.log.ErrorContext(ctx, "consolidation: deciding", "error", err)
		return s.now.Add(p.opts.RetryInterval)
	}
	p.metrics.ConsolidationSkipped.Reset()
	for _, sk := range d.Skipped {
		p.metrics.ConsolidationSkipped.WithLabelValues(string(sk.Reason)).Inc()
		p.log.DebugContext(ctx, "consolidation: node skipped", "node", sk.Node, "reason", sk.Reason)
	}
	if len(d.Commands) == 0 {
		if in.Pending > 0 {
			return s.now.Add(p.opts.RetryInterval) // after the provisioner's pass
		}
		return d.Wake
	}
	cmd := d.Commands[0]
	p.consolidation.move = &move{cmd: cmd, phase: phaseValidating, due: s.now.Add(p.opts.Consolidation.ValidationDelay)}
	p.metrics.ConsolidationDecisions.WithLabelValues(string(cmd.Method), "decided").Inc()
	p.log.InfoContext(ctx, "consolidation: decided, validating after the delay", "move", cmd.String(),
		"simulations", d.Simulations, "took", p.clock.Since(start), "validateAt", p.consolidation.move.due)
	return p.consolidation.move.due
}

// startMove validates the held move against a fresh snapshot, then taints
// its candidates and launches its replacements.
func (p *Provisioner) startMove(ctx context.Context, s *snapshot, tainter NodeTainter) time.Time {
	c := p.consolidation
	m := c.move
	in, err := p.disruptionInput(ctx, s)
	var cmd *disruption.Command
	if err == nil {
		cmd, err = disruption.Validate(in, m.cmd)
	}
	if err != nil {
		c.move = nil
		p.metrics.ConsolidationValidationFailures.WithLabelValues(string(m.cmd.Method)).Inc()
		p.metrics.ConsolidationDecisions.WithLabelValues(string(m.cmd.Method), "invalid").Inc()
		p.log.InfoContext(ctx, "consolidation: move abandoned at validation", "move", m.cmd.String(), "reason", err)
		return s.now
	}
	m.cmd = *cmd
	taint := corev1.Taint{Key: TaintKeyDisrupted, Effect: corev1.TaintEffectNoSchedule}
	for i, name := range m.cmd.Candidates {
		if err := tainter.TaintNode(ctx, name, taint); err != nil {
			p.log.WarnContext(ctx, "consolidation: tainting a candidate failed; move abandoned", "node", name, "error", err)
			p.abandon(ctx, tainter, m.cmd.Candidates[:i], "error")
			return s.now
		}
	}
	for _, claim := range m.cmd.Replacements {
		node, err := p.launch(ctx, claim)
		if err != nil {
			p.log.WarnContext(ctx, "consolidation: replacement failed to launch; candidates untainted", "move", m.cmd.String(), "error", err)
			p.abandon(ctx, tainter, m.cmd.Candidates, "replacement_failed")
			return s.now
		}
		m.replacements = append(m.replacements, node.Name)
		// The replacement's room is the candidates' pods': reserved for
		// them (as ProvisionNow reserves for a leaving node's pods) so a
		// provisioning pass before the drain does not hand it to other
		// pods and leave the moved pods to launch yet another node.
		for _, pod := range claim.Pods {
			p.nominate(ctx, s.now, pod, node.Name)
		}
	}
	m.phase, m.started = phaseReplacing, s.now
	p.log.InfoContext(ctx, "consolidation: validated; candidates tainted, replacements launched", "move", m.cmd.String(), "replacements", m.replacements)
	if len(m.replacements) == 0 {
		m.phase = phaseDraining
	}
	return s.now
}

// abandon untaints nodes and drops the move, counting outcome.
func (p *Provisioner) abandon(ctx context.Context, tainter NodeTainter, nodes []string, outcome string) {
	m := p.consolidation.move
	for _, name := range nodes {
		if err := tainter.UntaintNode(ctx, name, TaintKeyDisrupted); err != nil && !IsNotFound(err) {
			p.log.ErrorContext(ctx, "consolidation: untainting a candidate failed", "node", name, "error", err)
		}
	}
	p.metrics.ConsolidationDecisions.WithLabelValues(string(m.cmd.Method), outcome).Inc()
	p.consolidation.move = nil
}

// replacementsReady reports whether every replacement is Ready; one that is
// gone, or not Ready within LaunchTimeout, abandons the move.
func (p *Provisioner) replacementsReady(ctx context.Context, s *snapshot, tainter NodeTainter) bool {
	m := p.consolidation.move
	ready := true
	for _, name := range m.replacements {
		node := s.nodes[name]
		if node == nil || node.DeletionTimestamp != nil || !s.now.Before(m.started.Add(p.opts.LaunchTimeout)) && !IsNodeReady(node) {
			p.log.WarnContext(ctx, "consolidation: replacement did not come up; candidates untainted", "move", m.cmd.String(), "replacement", name)
			p.abandon(ctx, tainter, m.cmd.Candidates, "replacement_failed")
			return false
		}
		ready = ready && IsNodeReady(node)
	}
	if ready {
		m.phase = phaseDraining
	}
	return ready
}

// drainMove steps each candidate's drain (the one drain, provisioning/drain,
// through the Eviction API) and terminates each candidate once only pods
// that stay with it are left.
func (p *Provisioner) drainMove(ctx context.Context, s *snapshot) ([]string, time.Time, error) {
	m := p.consolidation.move
	log := p.log.With("method", m.cmd.Method)
	if m.drains == nil {
		m.drains = map[string]*drain.Drain{}
	}
	pods := evictablePods(s)
	var removed []string
	var errs []error
	var next time.Time
	left := 0
	for _, name := range m.cmd.Candidates {
		node := s.nodes[name]
		if node == nil {
			continue
		}
		d := m.drains[name]
		if d == nil {
			d = drain.New(s.now, drain.Options{})
			m.drains[name] = d
		}
		step := d.Next(s.now, pods[name])
		if !step.Done {
			left++
			if len(step.Evict) > 0 || len(step.Delete) > 0 {
				applied := ApplyDrainStep(ctx, p.cluster, d, s.now, step)
				if blocked := applied.count(ctx, log.With("node", name), p.metrics.ConsolidationEvictions); len(blocked) > 0 {
					log.InfoContext(ctx, "consolidation: drain waiting on pods whose eviction was refused", "node", name, "pods", strings.Join(blocked, ","), "retryAt", step.Wake)
				}
			}
			if next.IsZero() || (!step.Wake.IsZero() && step.Wake.Before(next)) {
				next = step.Wake
			}
			continue
		}
		if err := p.terminate(ctx, node, node.Labels[offerings.LabelNodePool], "consolidation_"+strings.ReplaceAll(string(m.cmd.Method), "-", "_")); err != nil {
			errs = append(errs, err)
			left++
			continue
		}
		removed = append(removed, name)
	}
	if left > 0 {
		if next.IsZero() {
			next = s.now.Add(orphanDrainRetry)
		}
		return removed, next, errors.Join(errs...)
	}
	// The replacements and the nodes the simulation filled are left alone
	// for the pools' stabilization window, so the moved pods stay put.
	for _, name := range slices.Concat(m.replacements, m.cmd.Destinations) {
		p.consolidation.disruptedInto[name] = s.now
	}
	p.metrics.ConsolidationDecisions.WithLabelValues(string(m.cmd.Method), "done").Inc()
	p.metrics.ConsolidationSaving.WithLabelValues(string(m.cmd.Method)).Observe(m.cmd.Saving)
	log.InfoContext(ctx, "consolidation: move done", "move", m.cmd.String(), "took", s.now.Sub(m.started))
	if rec, ok := p.cluster.(EventRecorder); ok {
		for _, name := range m.cmd.Candidates {
			if node := s.nodes[name]; node != nil {
				rec.Event(ctx, node, corev1.EventTypeNormal, "Consolidated", m.cmd.String())
			}
		}
	}
	p.consolidation.move = nil
	return removed, s.now, errors.Join(errs...)
}

// count counts the step's eviction answers on counter (evicted, blocked,
// error), logs failures, and returns the pods refused or failed.
func (a DrainApplied) count(ctx context.Context, log *slog.Logger, counter *prometheus.CounterVec) []string {
	var blocked []string
	for _, r := range a.Evicted {
		switch r.Outcome {
		case drain.Evicted, drain.Gone:
			counter.WithLabelValues("evicted").Inc()
		case drain.Refused:
			blocked = append(blocked, PodKey(r.Pod))
			counter.WithLabelValues("blocked").Inc()
		case drain.Failed:
			blocked = append(blocked, PodKey(r.Pod))
			counter.WithLabelValues("error").Inc()
			log.ErrorContext(ctx, "evicting pod", "pod", PodKey(r.Pod), "error", r.Err)
		}
	}
	return blocked
}

// ConsolidationPlan is what consolidation would do now, without doing it:
// for what-if tools.
func (p *Provisioner) ConsolidationPlan(ctx context.Context) (*disruption.Decision, error) {
	p.passMu.Lock()
	defer p.passMu.Unlock()
	s, err := p.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	p.consolidation.observe(s)
	in, err := p.disruptionInput(ctx, s)
	if err != nil {
		return nil, err
	}
	return disruption.Decide(in)
}
