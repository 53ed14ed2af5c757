package scheduling

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/fleetpack/fleetpack/offerings"
)

// FuzzSolve decodes random bytes into a small scheduling problem and checks
// the plan's invariants (see checkPlan), and that the plan does not depend
// on the order of the input pods.
func FuzzSolve(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte("fleetpack packs pods onto nodes, cheapest first, and never drops one"))
	f.Add([]byte{0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 0xf7, 0xf6, 0xf5, 0xf4, 0xf3, 0xf2, 0xf1, 0xf0, 0x80, 0x40, 0x20, 0x10})
	// Two templates with limits and taints, existing nodes, daemonsets.
	f.Add([]byte{3, 1, 9, 7, 200, 13, 77, 5, 3, 2, 1, 0, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 250, 3, 8, 99, 17, 42, 4, 4, 4, 4, 60, 61, 62, 63, 64, 65})
	// Longer inputs leave bytes for decodeTopology, which reads last: most
	// of their pods carry topology constraints. (Seed 3 found pods that
	// zone anti-affinity selects going uncounted on claims narrowed later.)
	for seed := range 20 {
		n := 160
		if seed >= 12 {
			n = 400
		}
		f.Add(seedBytes(uint32(seed*2654435761+1), n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := decodeProblem(data)
		plan, err := Solve(in)
		if err != nil {
			t.Fatalf("Solve: %v", err)
		}
		checkPlan(t, in, plan)

		// The same problem with the pods in reverse order plans the same.
		again := in
		again.Pods = slices.Clone(in.Pods)
		slices.Reverse(again.Pods)
		plan2, err := Solve(again)
		if err != nil {
			t.Fatalf("Solve (reversed pods): %v", err)
		}
		if a, b := summarizePlan(plan, 0), summarizePlan(plan2, 0); !reflect.DeepEqual(a, b) {
			t.Fatalf("plan depends on pod order:\n%s\nvs reversed:\n%s", mustYAML(a), mustYAML(b))
		}

		// The same problem over a compiled Catalog plans the same, though
		// the catalog numbers zones in another order (types reversed).
		var types []*offerings.InstanceType
		for _, tmpl := range in.Templates {
			types = append(types, tmpl.InstanceTypes...)
		}
		slices.Reverse(types)
		cat, err := NewCatalog(types)
		if err != nil {
			t.Fatalf("NewCatalog: %v", err)
		}
		compiled := in
		compiled.Catalog = cat
		plan3, err := Solve(compiled)
		if err != nil {
			t.Fatalf("Solve (catalog): %v", err)
		}
		if a, b := summarizePlan(plan, 0), summarizePlan(plan3, 0); !reflect.DeepEqual(a, b) {
			t.Fatalf("plan depends on the catalog:\n%s\nvs with one:\n%s", mustYAML(a), mustYAML(b))
		}
	})
}

// byteSource hands out the fuzz input a byte at a time, then zeros.
type byteSource struct {
	b []byte
	i int
}

func (s *byteSource) next() int {
	if s.i >= len(s.b) {
		return 0
	}
	s.i++
	return int(s.b[s.i-1])
}

// seedBytes is n pseudo-random bytes from x (xorshift), for seed corpora.
func seedBytes(x uint32, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// pick returns one of choices.
func pick[T any](s *byteSource, choices ...T) T { return choices[s.next()%len(choices)] }

// decodeProblem builds a small but varied problem from data: the test
// catalog with some offerings unavailable, one or two templates, existing
// nodes, daemonsets and pending pods.
func decodeProblem(data []byte) Input {
	s := &byteSource{b: data}
	catalog := testCatalog()
	for range s.next() % 8 {
		it := catalog[s.next()%len(catalog)]
		it.Offerings[s.next()%len(it.Offerings)].Available = false
	}
	in := Input{MaxInstanceTypes: pick(s, 0, 1, 3, 5, 100)}

	for i := range 1 + s.next()%2 {
		t := &NodeTemplate{NodePool: fmt.Sprintf("pool-%d", i), Weight: int32(s.next() % 3), InstanceTypes: catalog}
		var reqs []corev1.NodeSelectorRequirement
		switch s.next() % 4 {
		case 1:
			reqs = append(reqs, req(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "spot"))
		case 2:
			reqs = append(reqs, req(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "on-demand"))
		case 3:
			reqs = append(reqs, req(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "spot", "on-demand"))
		}
		switch s.next() % 4 {
		case 1:
			reqs = append(reqs, req(offerings.LabelArch, corev1.NodeSelectorOpIn, "amd64"))
		case 2:
			reqs = append(reqs, req(offerings.LabelArch, corev1.NodeSelectorOpIn, "arm64"))
		}
		if s.next()%3 == 0 {
			reqs = append(reqs, req(offerings.LabelZone, corev1.NodeSelectorOpIn, pick(s, testZones[:1], testZones[1:], testZones[:2])...))
		}
		switch s.next() % 6 {
		case 0:
			reqs = append(reqs, req(offerings.LabelInstanceFamily, corev1.NodeSelectorOpNotIn, "c5"))
		case 1:
			reqs = append(reqs, req(offerings.LabelInstanceGPUCount, corev1.NodeSelectorOpDoesNotExist))
		case 2:
			reqs = append(reqs, req(offerings.LabelInstanceFamily, corev1.NodeSelectorOpIn, "m5", "m6g", "g4dn"))
		}
		t.Requirements = mustRequirements(reqs...)
		if s.next()%3 == 0 {
			t.Labels = map[string]string{"team": pick(s, "a", "b")}
		}
		switch s.next() % 4 {
		case 1:
			t.Taints = []corev1.Taint{taint("dedicated", "batch", corev1.TaintEffectNoSchedule)}
		case 2:
			t.Taints = []corev1.Taint{taint("spare", "", corev1.TaintEffectPreferNoSchedule)}
		}
		if s.next()%3 == 0 {
			t.StartupTaints = []corev1.Taint{taint("agent-not-ready", "", corev1.TaintEffectNoExecute)}
		}
		if s.next()%3 == 0 {
			t.Limits = corev1.ResourceList{}
			if s.next()%2 == 0 {
				t.Limits[corev1.ResourceCPU] = *resource.NewQuantity(int64(2+s.next()%48), resource.DecimalSI)
			}
			if s.next()%2 == 0 {
				t.Limits[corev1.ResourceMemory] = resource.MustParse(fmt.Sprintf("%dGi", 4+s.next()%100))
			}
			if s.next()%2 == 0 {
				t.Limits[ResourceNodes] = *resource.NewQuantity(int64(s.next()%4), resource.DecimalSI)
			}
		}
		in.Templates = append(in.Templates, t)
	}

	for i := range s.next() % 4 {
		labels := map[string]string{
			offerings.LabelArch: pick(s, "amd64", "arm64"),
			offerings.LabelZone: pick(s, testZones...),
		}
		if s.next()%2 == 0 {
			labels["team"] = pick(s, "a", "b")
		}
		n := makeNode(fmt.Sprintf("node-%d", i), pick(s, "1", "2", "4", "8"), pick(s, "2Gi", "8Gi", "16Gi"), labels)
		switch s.next() % 6 {
		case 4:
			withNodeTaints(n, taint("spare", "", corev1.TaintEffectPreferNoSchedule))
		case 1:
			n.Spec.Unschedulable = true
		case 2:
			withNodeTaints(n, taint("dedicated", "batch", corev1.TaintEffectNoSchedule))
		case 3:
			withNodeTaints(n, taint(corev1.TaintNodeNotReady, "", corev1.TaintEffectNoSchedule))
		}
		en := ExistingNode{Node: n}
		for j := range s.next() % 3 {
			bound := makePod(fmt.Sprintf("bound-%d-%d", i, j), pick(s, "100m", "500m", "1500m"), pick(s, "256Mi", "1Gi"))
			if s.next()%4 == 0 {
				bound.Status.Phase = corev1.PodSucceeded
			}
			en.Pods = append(en.Pods, bound)
		}
		in.Nodes = append(in.Nodes, en)
	}

	for i := range s.next() % 4 {
		ds := makePod(fmt.Sprintf("ds-%d", i), pick(s, "50m", "100m", "500m", "1"), pick(s, "64Mi", "256Mi", "1Gi"))
		switch s.next() % 4 {
		case 1:
			withNodeSelector(offerings.LabelArch, pick(s, "amd64", "arm64"))(ds)
		case 2:
			withRequiredTerms([]corev1.NodeSelectorRequirement{req(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, pick(s, "spot", "on-demand"))})(ds)
		case 3:
			withNodeSelector("team", pick(s, "a", "b"))(ds)
		}
		switch s.next() % 3 {
		case 1:
			withToleration(corev1.Toleration{Operator: corev1.TolerationOpExists})(ds)
		case 2:
			withToleration(tolerateEqual("dedicated", "batch", corev1.TaintEffectNoSchedule))(ds)
		}
		in.DaemonSetPods = append(in.DaemonSetPods, ds)
	}

	for i := range s.next() % 25 {
		p := makePod(fmt.Sprintf("pod-%02d", i),
			pick(s, "100m", "250m", "500m", "1", "1500m", "3", "7", "15", "40"),
			pick(s, "128Mi", "512Mi", "1Gi", "3Gi", "7Gi", "30Gi", "200Gi"))
		for range s.next() % 4 {
			switch s.next() % 10 {
			case 0:
				withNodeSelector(offerings.LabelArch, pick(s, "amd64", "arm64"))(p)
			case 1:
				withNodeSelector(offerings.LabelZone, pick(s, testZones...))(p)
			case 2:
				withNodeSelector(offerings.LabelCapacityType, pick(s, "spot", "on-demand"))(p)
			case 3:
				withRequiredTerms(
					[]corev1.NodeSelectorRequirement{req(offerings.LabelInstanceFamily, corev1.NodeSelectorOpIn, pick(s, "m5", "c5", "m6g", "p9"))},
					[]corev1.NodeSelectorRequirement{req(offerings.LabelZone, corev1.NodeSelectorOpIn, pick(s, testZones...))},
				)(p)
			case 4:
				withPreferred(int32(1+s.next()%100), req(offerings.LabelArch, corev1.NodeSelectorOpIn, pick(s, "amd64", "arm64")))(p)
				withPreferred(int32(1+s.next()%100), req(offerings.LabelZone, corev1.NodeSelectorOpIn, pick(s, testZones...)))(p)
			case 5:
				withRequest(offerings.ResourceNvidiaGPU, "1")(p)
			case 6:
				withToleration(pick(s,
					tolerateEqual("dedicated", "batch", corev1.TaintEffectNoSchedule),
					corev1.Toleration{Operator: corev1.TolerationOpExists},
					tolerateExists("spare", corev1.TaintEffectPreferNoSchedule)))(p)
			case 7:
				withHostPort(8080)(p)
			case 8:
				withNodeSelector("team", pick(s, "a", "b"))(p)
			case 9:
				withInitContainer(pick(s, "2", "9"), "1Gi")(p)
				withRequest(corev1.ResourceEphemeralStorage, pick(s, "1Gi", "30Gi"))(p)
			}
		}
		in.Pods = append(in.Pods, p)
	}
	decodeTopology(s, &in)
	return in
}

// fuzzApps are the app labels the fuzzed pods' topology constraints select.
var fuzzApps = []string{"a", "b", "c"}

// decodeTopology labels the pods (pending and bound) with apps and gives
// some of them topology constraints: zone and hostname spread, hostname
// anti-affinity to their own app, zone affinity and anti-affinity. Either
// each pod draws its own, or every pod of an app gets its app's (as the
// replicas of a deployment do). It reads bytes after everything else, so
// that inputs made before topology existed decode to the same pods, nodes
// and templates; an exhausted source (zeros) adds no constraint.
func decodeTopology(s *byteSource, in *Input) {
	for _, n := range in.Nodes {
		for _, p := range n.Pods {
			b := s.next()
			if b%4 != 0 {
				p.Labels["app"] = fuzzApps[b%3]
			}
			if b%7 == 6 {
				// A running pod whose anti-affinity binds newcomers.
				withPodAffinity(requiredAntiAffinity, pick(s, offerings.LabelHostname, offerings.LabelZone), map[string]string{"app": pick(s, fuzzApps...)})(p)
			}
		}
	}
	// kind reads a constraint's parameters and returns what adds it.
	kind := func(k int, app string) podOpt {
		own := map[string]string{"app": app}
		switch k % 10 {
		case 1:
			var opts []spreadOpt
			if s.next()%3 == 0 {
				opts = append(opts, minDomains(int32(1+s.next()%4)))
			}
			return withSpread(offerings.LabelZone, int32(1+s.next()%2), corev1.DoNotSchedule, own, opts...)
		case 2:
			return withSpread(offerings.LabelZone, 1, corev1.ScheduleAnyway, own)
		case 3:
			return withSpread(offerings.LabelHostname, int32(1+s.next()%2), pick(s, corev1.DoNotSchedule, corev1.ScheduleAnyway), own)
		case 4:
			return withPodAffinity(requiredAntiAffinity, offerings.LabelHostname, own)
		case 5:
			return withPodAffinity(preferredAntiAffinity, offerings.LabelHostname, own)
		case 6:
			return withPodAffinity(requiredAffinity, offerings.LabelZone, map[string]string{"app": pick(s, fuzzApps...)})
		case 7:
			return withPodAffinity(requiredAntiAffinity, offerings.LabelZone, map[string]string{"app": pick(s, fuzzApps...)})
		case 8:
			return func(p *corev1.Pod) {
				withPodAffinity(requiredAntiAffinity, offerings.LabelHostname, own)(p)
				withSpread(offerings.LabelZone, 1, corev1.DoNotSchedule, own)(p)
			}
		}
		return func(*corev1.Pod) {}
	}
	var perApp map[string]podOpt
	if s.next()%3 == 1 {
		perApp = map[string]podOpt{}
		for _, app := range fuzzApps {
			perApp[app] = kind(s.next(), app)
		}
	}
	for _, p := range in.Pods {
		b := s.next()
		app := fuzzApps[b%3]
		p.Labels["app"] = app
		if perApp != nil {
			perApp[app](p)
		} else {
			kind(b/3, app)(p)
		}
	}
}

// checkPlan asserts what every plan must satisfy, recomputing requests,
// label matching and daemonset overhead from the Kubernetes objects rather
// than from the solver's internals:
//   - every input pod appears exactly once: on a claim, on an existing node,
//     or unschedulable with a reason;
//   - no existing node is over-committed, and pods go only to schedulable
//     nodes whose taints they tolerate and whose labels they select;
//   - every claim lists 1..MaxInstanceTypes instance types, cheapest allowed
//     offering first, each with an available offering the claim's
//     requirements allow and room for its pods plus the daemonsets that
//     would run on it, and every pod's node selector, required affinity and
//     tolerations hold for every type and offering the claim keeps;
//   - an unlimited template's claim lists every type that fits, up to the cap;
//   - no template's limits can be exceeded whichever listed type is launched.
func checkPlan(t reporter, in Input, plan *Plan) {
	t.Helper()
	if plan == nil {
		t.Errorf("nil plan")
		return
	}
	seen := map[*corev1.Pod]string{}
	see := func(p *corev1.Pod, where string) {
		t.Helper()
		if prev, ok := seen[p]; ok {
			t.Errorf("pod %s/%s appears twice: %s and %s", p.Namespace, p.Name, prev, where)
		}
		seen[p] = where
	}
	for _, c := range plan.NodeClaims {
		for _, p := range c.Pods {
			see(p, "claim "+c.Hostname)
		}
	}
	for _, np := range plan.ExistingNodes {
		for _, p := range np.Pods {
			see(p, "node "+np.Node.Name)
		}
	}
	for _, e := range plan.Unschedulable {
		see(e.Pod, "unschedulable")
		if e.Reason == "" {
			t.Errorf("pod %s/%s unschedulable without a reason", e.Pod.Namespace, e.Pod.Name)
		}
	}
	for _, p := range in.Pods {
		if _, ok := seen[p]; !ok {
			t.Errorf("pod %s/%s is missing from the plan", p.Namespace, p.Name)
		}
		delete(seen, p)
	}
	for p, where := range seen {
		t.Errorf("plan has pod %s/%s (%s) that is not an input pod", p.Namespace, p.Name, where)
	}

	checkExistingNodes(t, in, plan)

	maxTypes := in.MaxInstanceTypes
	if maxTypes <= 0 {
		maxTypes = DefaultMaxInstanceTypes
	}
	hostnames := map[string]bool{}
	for _, c := range plan.NodeClaims {
		if hostnames[c.Hostname] {
			t.Errorf("hostname %s used by two claims", c.Hostname)
		}
		hostnames[c.Hostname] = true
		checkClaim(t, in, c, maxTypes)
	}
	checkLimits(t, in, plan)
	checkUnschedulable(t, in, plan)
	checkTopology(t, in, plan)
}

// checkUnschedulable: a pod reported unschedulable must not fit, alone, on
// a new node of some template without limits: a type and offering whose
// labels meet its node selector and required affinity, whose taints it
// tolerates, and with room for it and every daemonset that might run there.
func checkUnschedulable(t reporter, in Input, plan *Plan) {
	t.Helper()
	for _, e := range plan.Unschedulable {
		p := e.Pod
		if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil {
			if _, err := nodeaffinity.NewPreferredSchedulingTerms(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution); err != nil {
				continue // malformed preferences are reported, not guessed at
			}
		}
		if topologyMayBlock(in, p) {
			continue // where other pods went decides; checkTopology covers it
		}
		for _, tmpl := range in.Templates {
			if len(tmpl.Limits) > 0 {
				continue
			}
			blocked := false
			for _, tn := range tmpl.Taints {
				if (tn.Effect == corev1.TaintEffectNoSchedule || tn.Effect == corev1.TaintEffectNoExecute) && !tolerates(p.Spec.Tolerations, tn) {
					blocked = true
				}
			}
			if blocked {
				continue
			}
			for _, it := range tmpl.InstanceTypes {
				offs := allowedOfferings(&tmpl.Requirements, it)
				need := expectedPodRequests(p)
				need[corev1.ResourcePods]++
				addUnits(need, daemonSetOverhead(in.DaemonSetPods, tmpl, it, offs, tmpl.Labels))
				alloc := it.Allocatable()
				fitsAll := true
				for name, n := range need {
					if n > units(name, alloc[name]) {
						fitsAll = false
					}
				}
				if !fitsAll {
					continue
				}
				for _, o := range offs {
					labels := map[string]string{offerings.LabelNodePool: tmpl.NodePool}
					for k, v := range tmpl.Labels {
						labels[k] = v
					}
					for k, v := range it.Labels {
						labels[k] = v
					}
					labels[offerings.LabelZone], labels[offerings.LabelCapacityType] = o.Zone, o.CapacityType
					if tmpl.Requirements.MatchesLabels(labels) && podRejectsLabels(p, labels) == "" {
						t.Errorf("pod %s reported unschedulable (%s), but fits alone on nodepool %s as %s in %s/%s",
							p.Name, e.Reason, tmpl.NodePool, it.Name, o.Zone, o.CapacityType)
						break
					}
				}
			}
		}
	}
}

// checkTopology asserts what topology constraints require of every plan,
// matching selectors and namespaces by the Kubernetes rules rather than by
// the solver's groups:
//   - no pod shares a hostname (claim or node), or possibly a zone, with a
//     pod its required anti-affinity selects (new pods only; what was
//     already running is not the plan's doing);
//   - a new pod with required affinity it does not itself satisfy shares
//     the hostname, or a certain zone, with a pod the term selects;
//   - on a claim, a pod with hard hostname spread found at most maxSkew
//     matching pods there, itself included, when it was placed (a new node
//     is always an empty domain, so the global minimum is 0);
//   - every claim hosting a pod with a hard zone constraint is narrowed to
//     exactly one zone.
func checkTopology(t reporter, in Input, plan *Plan) {
	t.Helper()
	locs := planLocations(in, plan)
	isNew := map[*corev1.Pod]bool{}
	for _, p := range in.Pods {
		isNew[p] = true
	}
	for _, loc := range locs {
		for i, p := range loc.pods {
			if !isNew[p] && i >= loc.bound {
				continue // reported by checkPlan already
			}
			for _, term := range requiredTerms(p, true) {
				for _, other := range locs {
					if !sameDomain(term.TopologyKey, loc, other) {
						continue
					}
					for _, q := range other.pods {
						if q != p && (isNew[p] || isNew[q]) && termPicks(in, p, term, q) {
							t.Errorf("pod %s on %s: required anti-affinity on %s selects pod %s on %s", p.Name, loc.name, term.TopologyKey, q.Name, other.name)
						}
					}
				}
			}
			if !isNew[p] {
				continue
			}
			for _, term := range requiredTerms(p, false) {
				if termPicks(in, p, term, p) {
					continue // may be the first of its group
				}
				found := false
				for _, other := range locs {
					if !certainlySameDomain(term.TopologyKey, loc, other) {
						continue
					}
					for _, q := range other.pods {
						found = found || (q != p && termPicks(in, p, term, q))
					}
				}
				if !found && (term.TopologyKey == offerings.LabelHostname || term.TopologyKey == offerings.LabelZone) {
					t.Errorf("pod %s on %s: required affinity on %s to %v, but no selected pod shares its domain", p.Name, loc.name, term.TopologyKey, term.LabelSelector)
				}
			}
			if loc.claim == nil {
				continue
			}
			for _, c := range p.Spec.TopologySpreadConstraints {
				if c.WhenUnsatisfiable == corev1.ScheduleAnyway || c.TopologyKey != offerings.LabelHostname {
					continue
				}
				n := 0
				for _, q := range loc.pods[:i+1] {
					if spreadPicks(p, c, q) {
						n++
					}
				}
				if n > int(c.MaxSkew) {
					t.Errorf("pod %s on %s: %d pods of its hostname spread there when it was placed, over maxSkew %d", p.Name, loc.name, n, c.MaxSkew)
				}
			}
			if hardOn(p, offerings.LabelZone) && claimZone(loc.claim) == "" && loc.claim.Template.Labels[offerings.LabelZone] == "" {
				t.Errorf("claim %s hosts pod %s with a hard zone constraint, but its zone requirement is %v", loc.claim.Hostname, p.Name, loc.claim.Requirements.Get(offerings.LabelZone))
			}
		}
	}
	checkZoneSpread(t, in, locs)
}

// checkZoneSpread: when every pending pod a hard zone spread constraint
// counts carries that same constraint and no required node selection (so all see
// the same zones: those the templates' offerings, available or not, and
// the existing nodes have), each placement kept the zone it joined within
// maxSkew of the emptiest; so if the running pods start within maxSkew,
// the plan ends within it too.
func checkZoneSpread(t reporter, in Input, locs []*location) {
	t.Helper()
	universe := map[string]bool{}
	for _, tmpl := range in.Templates {
		for _, it := range tmpl.InstanceTypes {
			if typeViolates(tmpl, &tmpl.Requirements, it) != "" {
				continue
			}
			for _, o := range it.Offerings {
				if tmpl.Requirements.Allows(offerings.LabelZone, o.Zone) {
					universe[o.Zone] = true
				}
			}
		}
	}
	for _, en := range in.Nodes {
		if z, ok := en.Node.Labels[offerings.LabelZone]; ok {
			universe[z] = true
		}
	}
	done := map[*corev1.Pod]bool{}
	for _, p := range in.Pods {
		for _, c := range p.Spec.TopologySpreadConstraints {
			if c.TopologyKey != offerings.LabelZone || c.WhenUnsatisfiable == corev1.ScheduleAnyway || done[p] ||
				c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor {
				continue // (tainted zones leave the universe: not modelled here)
			}
			initial, final := map[string]int{}, map[string]int{}
			applies := true
			for _, loc := range locs {
				z := ""
				if len(loc.zones) == 1 {
					z = loc.zones[0]
				}
				for i, q := range loc.pods {
					if !spreadPicks(p, c, q) {
						continue
					}
					if i < loc.bound {
						initial[z]++
					} else if !reflect.DeepEqual(q.Spec.TopologySpreadConstraints, p.Spec.TopologySpreadConstraints) || q.Spec.NodeSelector != nil ||
						q.Spec.Affinity != nil && q.Spec.Affinity.NodeAffinity != nil && q.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
						// (Preferred node affinity does not change the
						// zones counted, as in Kubernetes.)
						applies = false
					} else {
						done[q] = true
					}
					final[z]++
				}
			}
			for _, q := range in.Pods {
				if spreadPicks(p, c, q) && !reflect.DeepEqual(q.Spec.TopologySpreadConstraints, p.Spec.TopologySpreadConstraints) {
					applies = false // an unscheduled one without the constraint
				}
			}
			skew := func(counts map[string]int) int {
				lo, hi := -1, 0
				for z := range universe {
					if lo < 0 || counts[z] < lo {
						lo = counts[z]
					}
					hi = max(hi, counts[z])
				}
				if c.MinDomains != nil && len(universe) < int(*c.MinDomains) {
					lo = 0
				}
				return hi - max(lo, 0)
			}
			if !applies || final[""] > 0 || skew(initial) > int(c.MaxSkew) {
				continue
			}
			if got := skew(final); got > int(c.MaxSkew) {
				t.Errorf("zone spread of pod %s (app %s): pods per zone %v over zones %v differ by %d, over maxSkew %d", p.Name, p.Labels["app"], final, slices.Sorted(maps.Keys(universe)), got, c.MaxSkew)
			}
		}
	}
}

// location is a node or claim of the plan with its pods: those already
// bound first, then those placed, in placement order.
type location struct {
	name  string
	zones []string // the zones it may be in
	pods  []*corev1.Pod
	bound int
	claim *NodeClaim
}

func planLocations(in Input, plan *Plan) []*location {
	var out []*location
	byNode := map[*corev1.Node]*location{}
	for _, en := range in.Nodes {
		if en.Node == nil {
			continue
		}
		loc := &location{name: "node " + en.Node.Name}
		if z, ok := en.Node.Labels[offerings.LabelZone]; ok {
			loc.zones = []string{z}
		}
		for _, p := range en.Pods {
			if p != nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				loc.pods = append(loc.pods, p)
			}
		}
		loc.bound = len(loc.pods)
		byNode[en.Node] = loc
		out = append(out, loc)
	}
	for _, np := range plan.ExistingNodes {
		if loc := byNode[np.Node]; loc != nil {
			loc.pods = append(loc.pods, np.Pods...)
		}
	}
	for _, c := range plan.NodeClaims {
		zones, _ := claimOfferingSets(c)
		out = append(out, &location{name: "claim " + c.Hostname, zones: zones, pods: c.Pods, claim: c})
	}
	return out
}

// sameDomain reports whether a and b are, or may turn out to be, in the
// same domain of key (hostname or zone; other keys are not checked).
func sameDomain(key string, a, b *location) bool {
	switch key {
	case offerings.LabelHostname:
		return a == b
	case offerings.LabelZone:
		for _, z := range a.zones {
			if slices.Contains(b.zones, z) {
				return true
			}
		}
	}
	return false
}

// certainlySameDomain reports whether a and b are sure to share key's domain.
func certainlySameDomain(key string, a, b *location) bool {
	switch key {
	case offerings.LabelHostname:
		return a == b
	case offerings.LabelZone:
		return len(a.zones) == 1 && slices.Equal(a.zones, b.zones)
	}
	return false
}

// requiredTerms lists p's required anti-affinity (anti) or affinity terms.
func requiredTerms(p *corev1.Pod, anti bool) []corev1.PodAffinityTerm {
	a := p.Spec.Affinity
	switch {
	case a == nil:
		return nil
	case anti && a.PodAntiAffinity != nil:
		return a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	case !anti && a.PodAffinity != nil:
		return a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	}
	return nil
}

// topologyMayBlock reports whether a topology constraint may keep p pending
// however much room there is: hard spread or required anti-affinity on a
// key other than the hostname (a new node is an empty hostname, so those
// never block it), required affinity, or another pod's required
// anti-affinity on such a key that selects p.
func topologyMayBlock(in Input, p *corev1.Pod) bool {
	if malformedTopology(p) {
		return true // reported, not guessed at
	}
	for _, c := range p.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != corev1.ScheduleAnyway && c.TopologyKey != offerings.LabelHostname {
			return true
		}
	}
	if len(requiredTerms(p, false)) > 0 {
		return true
	}
	for _, term := range requiredTerms(p, true) {
		if term.TopologyKey != offerings.LabelHostname {
			return true
		}
	}
	return antiAffinityPicks(in, p)
}

// malformedTopology reports whether one of p's topology constraints is
// invalid: no key, maxSkew below 1, or a selector that does not parse.
func malformedTopology(p *corev1.Pod) bool {
	bad := func(key string, sels ...*metav1.LabelSelector) bool {
		for _, sel := range sels {
			if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
				return true
			}
		}
		return key == ""
	}
	for _, c := range p.Spec.TopologySpreadConstraints {
		if c.MaxSkew < 1 || bad(c.TopologyKey, c.LabelSelector) {
			return true
		}
	}
	var terms []corev1.PodAffinityTerm
	if a := p.Spec.Affinity; a != nil && a.PodAffinity != nil {
		terms = append(terms, a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		for _, w := range a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
	}
	if a := p.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		terms = append(terms, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
	}
	for _, t := range terms {
		if bad(t.TopologyKey, t.LabelSelector, t.NamespaceSelector) {
			return true
		}
	}
	return false
}

// hardOn reports whether p has hard spread or required pod (anti-)affinity
// on key.
func hardOn(p *corev1.Pod, key string) bool {
	for _, c := range p.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != corev1.ScheduleAnyway && c.TopologyKey == key {
			return true
		}
	}
	for _, term := range append(requiredTerms(p, true), requiredTerms(p, false)...) {
		if term.TopologyKey == key {
			return true
		}
	}
	return false
}

// antiAffinityPicks reports whether some other pod of the problem, pending
// or running, has a required anti-affinity term on a key other than the
// hostname that selects p.
func antiAffinityPicks(in Input, p *corev1.Pod) bool {
	all := slices.Clone(in.Pods)
	for _, en := range in.Nodes {
		all = append(all, en.Pods...)
	}
	for _, o := range all {
		if o == nil || o == p {
			continue
		}
		for _, term := range requiredTerms(o, true) {
			if term.TopologyKey != offerings.LabelHostname && termPicks(in, o, term, p) {
				return true
			}
		}
	}
	return false
}

// termPicks reports whether owner's pod (anti-)affinity term selects q: its
// label selector (nil selects nothing) plus matchLabelKeys, in the owner's
// namespace unless namespaces or a namespaceSelector say otherwise (then
// in their union).
func termPicks(in Input, owner *corev1.Pod, term corev1.PodAffinityTerm, q *corev1.Pod) bool {
	if !selectorPicks(owner, term.LabelSelector, term.MatchLabelKeys, q) {
		return false
	}
	if term.NamespaceSelector == nil && len(term.Namespaces) == 0 {
		return q.Namespace == owner.Namespace
	}
	if slices.Contains(term.Namespaces, q.Namespace) {
		return true
	}
	if term.NamespaceSelector == nil {
		return false
	}
	nsSel, err := metav1.LabelSelectorAsSelector(term.NamespaceSelector)
	if err != nil {
		return false
	}
	// Every namespace carries its name label (the API server sets it).
	nsLabels := map[string]string{}
	for _, ns := range in.Namespaces {
		if ns != nil && ns.Name == q.Namespace {
			maps.Copy(nsLabels, ns.Labels)
		}
	}
	nsLabels[corev1.LabelMetadataName] = q.Namespace
	return nsSel.Matches(labels.Set(nsLabels))
}

// spreadPicks reports whether spread constraint c of owner counts pod q.
func spreadPicks(owner *corev1.Pod, c corev1.TopologySpreadConstraint, q *corev1.Pod) bool {
	return q.Namespace == owner.Namespace && selectorPicks(owner, c.LabelSelector, c.MatchLabelKeys, q)
}

func selectorPicks(owner *corev1.Pod, sel *metav1.LabelSelector, matchKeys []string, q *corev1.Pod) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || !s.Matches(labels.Set(q.Labels)) {
		return false
	}
	for _, k := range matchKeys {
		if v, ok := owner.Labels[k]; ok && q.Labels[k] != v {
			return false
		}
	}
	return true
}

func checkExistingNodes(t reporter, in Input, plan *Plan) {
	t.Helper()
	byNode := map[*corev1.Node]*ExistingNode{}
	for i := range in.Nodes {
		byNode[in.Nodes[i].Node] = &in.Nodes[i]
	}
	for _, np := range plan.ExistingNodes {
		en, ok := byNode[np.Node]
		if !ok {
			t.Errorf("placement on node %s that is not an input node", np.Node.Name)
			continue
		}
		n := np.Node
		if n.Spec.Unschedulable {
			t.Errorf("pods %v placed on cordoned node %s", podNames(np.Pods), n.Name)
		}
		used := map[corev1.ResourceName]int64{}
		for _, p := range en.Pods {
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			addUnits(used, expectedPodRequests(p))
		}
		var ports []int32
		for _, p := range en.Pods {
			ports = append(ports, hostPortsOf(p)...)
		}
		checked := map[corev1.ResourceName]bool{corev1.ResourcePods: true}
		for _, p := range np.Pods {
			reqs := expectedPodRequests(p)
			addUnits(used, reqs)
			for name := range reqs {
				checked[name] = true
			}
			if why := podRejectsNode(p, n.Name, n.Labels); why != "" {
				t.Errorf("pod %s on node %s: %s", p.Name, n.Name, why)
			}
			for _, tn := range n.Spec.Taints {
				if IsEphemeralTaint(tn.Key) {
					continue
				}
				if (tn.Effect == corev1.TaintEffectNoSchedule || tn.Effect == corev1.TaintEffectNoExecute) && !tolerates(p.Spec.Tolerations, tn) {
					t.Errorf("pod %s on node %s does not tolerate taint %s", p.Name, n.Name, taintString(tn))
				}
			}
			for _, hp := range hostPortsOf(p) {
				if slices.Contains(ports, hp) {
					t.Errorf("pod %s on node %s: host port %d already taken", p.Name, n.Name, hp)
				}
				ports = append(ports, hp)
			}
		}
		alloc := n.Status.Allocatable
		if len(alloc) == 0 {
			alloc = n.Status.Capacity
		}
		for name := range checked {
			if have := units(name, alloc[name]); used[name] > have {
				t.Errorf("node %s over-committed on %s: %d used of %d", n.Name, name, used[name], have)
			}
		}
	}
}

func checkClaim(t reporter, in Input, c *NodeClaim, maxTypes int) {
	t.Helper()
	if len(c.Pods) == 0 {
		t.Errorf("claim %s has no pods", c.Hostname)
	}
	if len(c.InstanceTypes) == 0 {
		t.Errorf("claim %s has no instance types", c.Hostname)
		return
	}
	if len(c.InstanceTypes) > maxTypes {
		t.Errorf("claim %s lists %d instance types, over the cap of %d", c.Hostname, len(c.InstanceTypes), maxTypes)
	}
	if !slices.Contains(in.Templates, c.Template) {
		t.Errorf("claim %s has a template that is not an input template", c.Hostname)
		return
	}
	podReqs := map[corev1.ResourceName]int64{}
	for _, p := range c.Pods {
		addUnits(podReqs, expectedPodRequests(p))
	}
	for name, q := range c.PodRequests {
		if name != corev1.ResourcePods && units(name, q) != podReqs[name] {
			t.Errorf("claim %s PodRequests[%s] = %s, pods sum to %d", c.Hostname, name, q.String(), podReqs[name])
		}
	}
	listed := map[*offerings.InstanceType]bool{}
	bills := map[*offerings.InstanceType]float64{}
	prev, cheapest := -1.0, -1.0
	for _, it := range c.InstanceTypes {
		listed[it] = true
		if !slices.Contains(c.Template.InstanceTypes, it) {
			t.Errorf("claim %s lists %s, not one of its template's types", c.Hostname, it.Name)
		}
		offs := allowedOfferings(&c.Requirements, it)
		if len(offs) == 0 {
			t.Errorf("claim %s lists %s, which has no available offering its requirements (%s) allow", c.Hostname, it.Name, c.Requirements.String())
			continue
		}
		price := typeBill(in, c, it, offs, podReqs)
		if price < prev {
			t.Errorf("claim %s instance types not cheapest bill first: %v (%s costs %g after %g)", c.Hostname, typeNames(c.InstanceTypes), it.Name, price, prev)
		}
		prev = price
		if cheapest < 0 || price < cheapest {
			cheapest = price
		}
		bills[it] = price
		if _, burstable := it.BurstableBaselineMilli(); burstable && c.Template.Burstable == offerings.BurstableExclude {
			t.Errorf("claim %s lists burstable %s, which its nodepool excludes", c.Hostname, it.Name)
		}
		if why := typeViolates(c.Template, &c.Requirements, it); why != "" {
			t.Errorf("claim %s lists %s: %s", c.Hostname, it.Name, why)
		}
		for _, o := range offs {
			labels := nodeLabels(c, it, o)
			for _, p := range c.Pods {
				if why := podRejectsLabels(p, labels); why != "" {
					t.Errorf("claim %s, type %s in %s/%s: pod %s: %s", c.Hostname, it.Name, o.Zone, o.CapacityType, p.Name, why)
				}
			}
		}
		need := copyUnits(podReqs)
		need[corev1.ResourcePods] += int64(len(c.Pods))
		addUnits(need, daemonSetOverhead(in.DaemonSetPods, c.Template, it, offs, labelsFor(c)))
		alloc := podAllocatable(c.Template, it)
		for name, n := range need {
			if have := alloc[name]; n > have {
				t.Errorf("claim %s lists %s, which lacks room: %s %d needed (pods and daemonsets), %d allocatable", c.Hostname, it.Name, name, n, have)
			}
		}
	}
	for it, bill := range bills {
		if bill > cheapest*(1+ClaimPriceTolerance)+1e-9 {
			t.Errorf("claim %s lists %s billed $%g, over %g%% above the claim's $%g", c.Hostname, it.Name, bill, 100*ClaimPriceTolerance, cheapest)
		}
	}
	for _, p := range c.Pods {
		for _, tn := range c.Template.Taints {
			if (tn.Effect == corev1.TaintEffectNoSchedule || tn.Effect == corev1.TaintEffectNoExecute) && !tolerates(p.Spec.Tolerations, tn) {
				t.Errorf("claim %s: pod %s does not tolerate template taint %s", c.Hostname, p.Name, taintString(tn))
			}
		}
	}
	for i, p := range c.Pods {
		for _, hp := range hostPortsOf(p) {
			for _, q := range c.Pods[:i] {
				if slices.Contains(hostPortsOf(q), hp) {
					t.Errorf("claim %s: pods %s and %s both bind host port %d", c.Hostname, q.Name, p.Name, hp)
				}
			}
		}
	}

	// Completeness: below the cap, every type of an unlimited template that
	// the claim's requirements admit and that holds everything is listed.
	if len(c.InstanceTypes) >= maxTypes || len(c.Template.Limits) > 0 {
		return
	}
	for _, it := range c.Template.InstanceTypes {
		if listed[it] || typeViolates(c.Template, &c.Requirements, it) != "" {
			continue
		}
		offs := allowedOfferings(&c.Requirements, it)
		if len(offs) == 0 {
			continue
		}
		// Count every daemonset that could run on the type under the
		// template's (wider) requirements, as the solver may.
		need := copyUnits(podReqs)
		need[corev1.ResourcePods] += int64(len(c.Pods))
		addUnits(need, daemonSetOverhead(in.DaemonSetPods, c.Template, it, allowedOfferings(&c.Template.Requirements, it), c.Template.Labels))
		if _, burstable := it.BurstableBaselineMilli(); burstable && c.Template.Burstable == offerings.BurstableExclude {
			continue
		}
		alloc := podAllocatable(c.Template, it)
		fitsAll := true
		for name, n := range need {
			if n > alloc[name] {
				fitsAll = false
			}
		}
		if fitsAll && typeBill(in, c, it, offs, podReqs) <= cheapest*(1+ClaimPriceTolerance)+1e-9 {
			t.Errorf("claim %s (%s) omits %s, which fits its pods and daemonsets", c.Hostname, typeNamesShort(c.InstanceTypes), it.Name)
		}
	}
}

// typeBill is what a node of type it costs per hour carrying claim c's pods
// and the daemonsets that run on it, at the cheapest of offs.
func typeBill(in Input, c *NodeClaim, it *offerings.InstanceType, offs []offerings.Offering, podReqs map[corev1.ResourceName]int64) float64 {
	cpu := podReqs[corev1.ResourceCPU] + daemonSetOverhead(in.DaemonSetPods, c.Template, it, offs, labelsFor(c))[corev1.ResourceCPU]
	bill := -1.0
	for _, o := range offs {
		if b := offerings.NodeBill(it, o, c.Template.NodeCosts, c.Template.Burstable, cpu); bill < 0 || b < bill {
			bill = b
		}
	}
	return bill
}

// podAllocatable is what a node of type it offers pods under tmpl, in
// units: allocatable, with a burstable type's cpu cut to what it sustains
// under the Baseline policy.
func podAllocatable(tmpl *NodeTemplate, it *offerings.InstanceType) map[corev1.ResourceName]int64 {
	out := map[corev1.ResourceName]int64{}
	for name, q := range it.Allocatable() {
		out[name] = units(name, q)
	}
	if _, burstable := it.BurstableBaselineMilli(); burstable && (tmpl.Burstable == "" || tmpl.Burstable == offerings.BurstableBaseline) {
		out[corev1.ResourceCPU] = min(out[corev1.ResourceCPU], it.BaselineAllocatableCPUMilli())
	}
	return out
}

func typeNamesShort(types []*offerings.InstanceType) string {
	return fmt.Sprint(typeNames(types))
}

// checkLimits: whichever listed type each claim launches as, a template's
// cpu and memory limits hold; and it opens no more claims than its node limit.
func checkLimits(t reporter, in Input, plan *Plan) {
	t.Helper()
	for _, tmpl := range in.Templates {
		var cpu, mem, nodes int64
		for _, c := range plan.NodeClaims {
			if c.Template != tmpl {
				continue
			}
			nodes++
			var maxCPU, maxMem int64
			for _, it := range c.InstanceTypes {
				maxCPU = max(maxCPU, units(corev1.ResourceCPU, it.Capacity[corev1.ResourceCPU]))
				maxMem = max(maxMem, units(corev1.ResourceMemory, it.Capacity[corev1.ResourceMemory]))
			}
			cpu, mem = cpu+maxCPU, mem+maxMem
		}
		if q, ok := tmpl.Limits[corev1.ResourceCPU]; ok && cpu > q.MilliValue() {
			t.Errorf("nodepool %s: claims may launch %dm cpu, over its limit %s", tmpl.NodePool, cpu, q.String())
		}
		if q, ok := tmpl.Limits[corev1.ResourceMemory]; ok && mem > q.Value() {
			t.Errorf("nodepool %s: claims may launch %d bytes of memory, over its limit %s", tmpl.NodePool, mem, q.String())
		}
		if q, ok := tmpl.Limits[ResourceNodes]; ok && nodes > q.Value() {
			t.Errorf("nodepool %s: %d claims, over its node limit %s", tmpl.NodePool, nodes, q.String())
		}
	}
}

// expectedPodRequests is the Kubernetes rule, written out: the larger of the
// app containers plus sidecars and each init container plus the sidecars
// started before it, plus the pod overhead.
func expectedPodRequests(p *corev1.Pod) map[corev1.ResourceName]int64 {
	app := map[corev1.ResourceName]int64{}
	for _, c := range p.Spec.Containers {
		addUnits(app, listUnits(c.Resources.Requests))
	}
	sidecars := map[corev1.ResourceName]int64{}
	initPeak := map[corev1.ResourceName]int64{}
	for _, c := range p.Spec.InitContainers {
		reqs := listUnits(c.Resources.Requests)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			addUnits(sidecars, reqs)
			for name, n := range sidecars {
				initPeak[name] = max(initPeak[name], n)
			}
			continue
		}
		for name, n := range reqs {
			initPeak[name] = max(initPeak[name], n+sidecars[name])
		}
	}
	total := copyUnits(app)
	addUnits(total, sidecars)
	for name, n := range initPeak {
		total[name] = max(total[name], n)
	}
	addUnits(total, listUnits(p.Spec.Overhead))
	return total
}

func units(name corev1.ResourceName, q resource.Quantity) int64 {
	if name == corev1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

func listUnits(list corev1.ResourceList) map[corev1.ResourceName]int64 {
	out := map[corev1.ResourceName]int64{}
	for name, q := range list {
		out[name] = units(name, q)
	}
	return out
}

func addUnits(dst, src map[corev1.ResourceName]int64) {
	for name, n := range src {
		dst[name] += n
	}
}

func copyUnits(src map[corev1.ResourceName]int64) map[corev1.ResourceName]int64 {
	out := make(map[corev1.ResourceName]int64, len(src))
	addUnits(out, src)
	return out
}

func hostPortsOf(p *corev1.Pod) []int32 {
	var out []int32
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, port := range c.Ports {
				if port.HostPort > 0 {
					out = append(out, port.HostPort)
				}
			}
		}
	}
	// A pod binding one port twice conflicts with nobody but itself.
	slices.Sort(out)
	return slices.Compact(out)
}

// tolerates is the Kubernetes toleration rule for one taint.
func tolerates(tolerations []corev1.Toleration, tn corev1.Taint) bool {
	for _, tol := range tolerations {
		if tol.Effect != "" && tol.Effect != tn.Effect {
			continue
		}
		if tol.Key == "" && tol.Operator == corev1.TolerationOpExists {
			return true
		}
		if tol.Key != tn.Key {
			continue
		}
		switch tol.Operator {
		case corev1.TolerationOpExists:
			return true
		case corev1.TolerationOpEqual, "":
			if tol.Value == tn.Value {
				return true
			}
		}
	}
	return false
}

// podRejectsLabels says why a node with labels cannot take pod p by its
// node selector or required node affinity, or "" if it can.
func podRejectsLabels(p *corev1.Pod, labels map[string]string) string {
	return podRejectsNode(p, newNodeName, labels)
}

// newNodeName names a node not yet made, so that matchFields terms (on
// metadata.name) never match it.
const newNodeName = "fleetpack-new-node"

// podRejectsNode is podRejectsLabels for a node with a known name.
func podRejectsNode(p *corev1.Pod, name string, labels map[string]string) string {
	for k, v := range p.Spec.NodeSelector {
		if got, ok := labels[k]; !ok || got != v {
			return fmt.Sprintf("nodeSelector %s=%s, node has %q", k, v, got)
		}
	}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		ok, err := corev1helpers.MatchNodeSelectorTerms(node, a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
		if err != nil || !ok {
			return fmt.Sprintf("required node affinity not met by labels %v (err %v)", labels, err)
		}
	}
	return ""
}

// labelsFor is what a claim's node carries regardless of type and offering.
func labelsFor(c *NodeClaim) map[string]string {
	out := map[string]string{}
	for k, v := range c.Labels() {
		switch k {
		case offerings.LabelZone, offerings.LabelCapacityType:
			continue
		}
		out[k] = v
	}
	return out
}

// nodeLabels is the full label set of the claim's node if launched as it
// with offering o.
func nodeLabels(c *NodeClaim, it *offerings.InstanceType, o offerings.Offering) map[string]string {
	labels := labelsFor(c)
	for k, v := range it.Labels {
		labels[k] = v
	}
	labels[offerings.LabelZone] = o.Zone
	labels[offerings.LabelCapacityType] = o.CapacityType
	return labels
}

// allowedOfferings lists it's available offerings that reqs allow.
func allowedOfferings(reqs *Requirements, it *offerings.InstanceType) []offerings.Offering {
	var out []offerings.Offering
	for _, o := range it.Offerings {
		if o.Available && reqs.Allows(offerings.LabelZone, o.Zone) && reqs.Allows(offerings.LabelCapacityType, o.CapacityType) {
			out = append(out, o)
		}
	}
	return out
}

// typeViolates says why type it contradicts reqs on a label the type
// decides: a value reqs exclude, or a label reqs need that it lacks while
// other types of the template carry it.
func typeViolates(tmpl *NodeTemplate, reqs *Requirements, it *offerings.InstanceType) string {
	for _, r := range reqs.Items() {
		if v, ok := it.Labels[r.Key]; ok {
			if !r.Matches(v, true) {
				return fmt.Sprintf("label %s=%s violates %s", r.Key, v, r.String())
			}
			continue
		}
		if r.AllowsAbsent() {
			continue
		}
		for _, other := range tmpl.InstanceTypes {
			if _, ok := other.Labels[r.Key]; ok {
				return fmt.Sprintf("lacks label %s that %s requires", r.Key, r.String())
			}
		}
	}
	return ""
}

// daemonSetOverhead sums the requests (and pod slots) of the daemonsets
// that would run on a node of type it from tmpl launched as any of offs:
// those tolerating the template's NoSchedule and NoExecute taints (startup
// taints are removed, so they do not count) whose node constraints admit
// the node's labels.
func daemonSetOverhead(daemonSets []*corev1.Pod, tmpl *NodeTemplate, it *offerings.InstanceType, offs []offerings.Offering, base map[string]string) map[corev1.ResourceName]int64 {
	out := map[corev1.ResourceName]int64{}
	for _, ds := range daemonSets {
		blocked := false
		for _, tn := range tmpl.Taints {
			if (tn.Effect == corev1.TaintEffectNoSchedule || tn.Effect == corev1.TaintEffectNoExecute) && !tolerates(ds.Spec.Tolerations, tn) {
				blocked = true
			}
		}
		if blocked {
			continue
		}
		for _, o := range offs {
			labels := map[string]string{offerings.LabelNodePool: tmpl.NodePool}
			for k, v := range base {
				labels[k] = v
			}
			for k, v := range it.Labels {
				labels[k] = v
			}
			labels[offerings.LabelZone], labels[offerings.LabelCapacityType] = o.Zone, o.CapacityType
			if podRejectsLabels(ds, labels) == "" {
				addUnits(out, expectedPodRequests(ds))
				out[corev1.ResourcePods]++
				break
			}
		}
	}
	return out
}

// reporter is the part of testing.TB checkPlan uses, so that a test can
// check the checker.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// recorder is a reporter that only remembers whether it was told of an error.
type recorder struct {
	errors []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestCheckPlanCatchesBrokenPlans(t *testing.T) {
	// The invariant checker must itself fail on bad plans, or the fuzz
	// target proves nothing.
	catalog := testCatalog()
	// The m6g types that hold both pods priced within ClaimPriceTolerance
	// of each other, ascending, so the claim lists several; m6g.8xlarge
	// far above them.
	for _, it := range catalog {
		price := map[string]float64{"m6g.xlarge": 0.060, "m6g.2xlarge": 0.061, "m6g.4xlarge": 0.062, "m6g.8xlarge": 0.2}[it.Name]
		for i := range it.Offerings {
			if price > 0 {
				it.Offerings[i].Price = price
			}
		}
	}
	a := makePod("a", "1", "1Gi")
	b := makePod("b", "1", "1Gi", withNodeSelector(offerings.LabelArch, "arm64"), withHostPort(80))
	in := Input{Pods: []*corev1.Pod{a, b}, Templates: []*NodeTemplate{defaultTemplate(catalog)}}
	solve := func(t *testing.T, in Input) *Plan {
		plan, err := Solve(in)
		if err != nil {
			t.Fatal(err)
		}
		return plan
	}
	good := solve(t, in)
	checkPlan(t, in, good)
	if len(good.NodeClaims) != 1 || len(good.NodeClaims[0].InstanceTypes) < 3 {
		t.Fatalf("want one claim with several types to break, got %s", mustYAML(summarizePlan(good, 0)))
	}

	full := makeNode("full", "1", "2Gi", map[string]string{offerings.LabelArch: "arm64"})
	onFull := Input{Pods: []*corev1.Pod{b}, Nodes: []ExistingNode{{Node: full, Pods: []*corev1.Pod{makePod("bound", "500m", "")}}}}
	cordoned := makeNode("cordoned", "4", "8Gi", map[string]string{offerings.LabelArch: "arm64"})
	cordoned.Spec.Unschedulable = true
	onCordoned := Input{Pods: []*corev1.Pod{b}, Nodes: []ExistingNode{{Node: cordoned}}}
	amd := makeNode("amd", "4", "8Gi", map[string]string{offerings.LabelArch: "amd64"})
	onAMD := Input{Pods: []*corev1.Pod{b}, Nodes: []ExistingNode{{Node: amd}}}
	portTaken := makeNode("ports", "4", "8Gi", map[string]string{offerings.LabelArch: "arm64"})
	onPortTaken := Input{Pods: []*corev1.Pod{b}, Nodes: []ExistingNode{{Node: portTaken, Pods: []*corev1.Pod{makePod("web", "", "", withHostPort(80))}}}}
	limited := defaultTemplate(catalog)
	limited.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	withLimit := Input{Pods: []*corev1.Pod{a}, Templates: []*NodeTemplate{limited}}

	cases := map[string]func() (Input, *Plan){
		"pod dropped": func() (Input, *Plan) {
			p := solve(t, in)
			p.NodeClaims[0].Pods = p.NodeClaims[0].Pods[1:]
			return in, p
		},
		"pod twice": func() (Input, *Plan) {
			p := solve(t, in)
			p.Unschedulable = append(p.Unschedulable, &PodError{Pod: a, Reason: "x"})
			return in, p
		},
		"foreign pod": func() (Input, *Plan) {
			p := solve(t, in)
			p.NodeClaims[0].Pods = append(p.NodeClaims[0].Pods, makePod("c", "", ""))
			return in, p
		},
		"no reason": func() (Input, *Plan) {
			return Input{Pods: []*corev1.Pod{a}}, &Plan{Unschedulable: []*PodError{{Pod: a}}}
		},
		"type too small": func() (Input, *Plan) {
			p := solve(t, in)
			p.NodeClaims[0].InstanceTypes = catalogTypes(catalog, "m6g.large")
			return in, p
		},
		"type of the wrong arch": func() (Input, *Plan) {
			p := solve(t, in)
			p.NodeClaims[0].InstanceTypes = append(p.NodeClaims[0].InstanceTypes, catalogTypes(catalog, "m5.8xlarge")...)
			return in, p
		},
		"type billed over the tolerance": func() (Input, *Plan) {
			p := solve(t, in)
			p.NodeClaims[0].InstanceTypes = append(p.NodeClaims[0].InstanceTypes, catalogTypes(catalog, "m6g.8xlarge")...)
			return in, p
		},
		"types not cheapest first": func() (Input, *Plan) {
			p := solve(t, in)
			types := p.NodeClaims[0].InstanceTypes
			types[0], types[1] = types[1], types[0]
			return in, p
		},
		"fitting type omitted": func() (Input, *Plan) {
			p := solve(t, in)
			p.NodeClaims[0].InstanceTypes = p.NodeClaims[0].InstanceTypes[:1]
			return in, p
		},
		"no types": func() (Input, *Plan) {
			p := solve(t, in)
			p.NodeClaims[0].InstanceTypes = nil
			return in, p
		},
		"over the cap": func() (Input, *Plan) {
			in := in
			in.MaxInstanceTypes = 2
			return in, solve(t, Input{Pods: in.Pods, Templates: in.Templates})
		},
		"no offering allowed": func() (Input, *Plan) {
			p := solve(t, in)
			p.NodeClaims[0].Requirements = mustRequirements(req(offerings.LabelZone, corev1.NodeSelectorOpIn, "elsewhere"))
			return in, p
		},
		"node over-committed": func() (Input, *Plan) {
			return onFull, &Plan{ExistingNodes: []*NodePlacement{{Node: full, Pods: []*corev1.Pod{b}}}}
		},
		"cordoned node": func() (Input, *Plan) {
			return onCordoned, &Plan{ExistingNodes: []*NodePlacement{{Node: cordoned, Pods: []*corev1.Pod{b}}}}
		},
		"node selector broken": func() (Input, *Plan) {
			return onAMD, &Plan{ExistingNodes: []*NodePlacement{{Node: amd, Pods: []*corev1.Pod{b}}}}
		},
		"host port taken": func() (Input, *Plan) {
			return onPortTaken, &Plan{ExistingNodes: []*NodePlacement{{Node: portTaken, Pods: []*corev1.Pod{b}}}}
		},
		"unschedulable pod that fits": func() (Input, *Plan) {
			in := Input{Pods: []*corev1.Pod{a}, Templates: in.Templates}
			return in, &Plan{Unschedulable: []*PodError{{Pod: a, Reason: "gave up"}}}
		},
		// Topology: solve pods without constraints onto one claim, then
		// give them constraints that plan breaks.
		"required hostname anti-affinity violated": func() (Input, *Plan) {
			return topologyAfterSolve(t, func(p *corev1.Pod) {
				withPodAffinity(requiredAntiAffinity, offerings.LabelHostname, map[string]string{"app": "x"})(p)
			})
		},
		"required zone anti-affinity violated": func() (Input, *Plan) {
			return topologyAfterSolve(t, func(p *corev1.Pod) {
				withPodAffinity(requiredAntiAffinity, offerings.LabelZone, map[string]string{"app": "x"})(p)
			})
		},
		"hard hostname spread exceeded": func() (Input, *Plan) {
			return topologyAfterSolve(t, func(p *corev1.Pod) {
				withSpread(offerings.LabelHostname, 1, corev1.DoNotSchedule, map[string]string{"app": "x"})(p)
			})
		},
		"claim with a hard zone constraint not narrowed": func() (Input, *Plan) {
			return topologyAfterSolve(t, func(p *corev1.Pod) {
				withSpread(offerings.LabelZone, 2, corev1.DoNotSchedule, map[string]string{"app": "x"})(p)
			})
		},
		"required affinity unmet": func() (Input, *Plan) {
			return topologyAfterSolve(t, func(p *corev1.Pod) {
				withPodAffinity(requiredAffinity, offerings.LabelZone, map[string]string{"app": "db"})(p)
			})
		},
		"zone spread skew exceeded": func() (Input, *Plan) {
			ps := pods("x", 3, "500m", "1Gi", withLabels("app", "x"), withSpread(offerings.LabelZone, 1, corev1.DoNotSchedule, map[string]string{"app": "x"}))
			in := Input{Pods: ps, Templates: []*NodeTemplate{defaultTemplate(catalog)}}
			p := solve(t, in)
			if len(p.NodeClaims) != 3 {
				t.Fatalf("want one claim per zone, got %s", mustYAML(summarizePlan(p, 1)))
			}
			// The third zone's pod moves to the first zone's claim.
			p.NodeClaims[0].Pods = append(p.NodeClaims[0].Pods, p.NodeClaims[2].Pods...)
			p.NodeClaims = p.NodeClaims[:2]
			return in, p
		},
		"limit exceeded": func() (Input, *Plan) {
			p := solve(t, Input{Pods: withLimit.Pods, Templates: []*NodeTemplate{defaultTemplate(catalog)}})
			p.NodeClaims[0].Template = limited
			return withLimit, p
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			in, plan := build()
			r := &recorder{}
			checkPlan(r, in, plan)
			if len(r.errors) == 0 {
				t.Errorf("checkPlan accepted a plan with %s", name)
			}
			t.Logf("checkPlan: %v", r.errors)
		})
	}
}

// topologyAfterSolve plans two app=x pods without constraints (they share
// one claim, free to launch in any zone), then gives them constraints
// with add, so that the plan breaks them.
func topologyAfterSolve(t *testing.T, add func(*corev1.Pod)) (Input, *Plan) {
	t.Helper()
	ps := []*corev1.Pod{makePod("x-1", "500m", "1Gi", withLabels("app", "x")), makePod("x-2", "500m", "1Gi", withLabels("app", "x"))}
	in := Input{Pods: ps, Templates: []*NodeTemplate{defaultTemplate(testCatalog())}}
	plan, err := Solve(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.NodeClaims) != 1 || len(plan.NodeClaims[0].Pods) != 2 || claimZone(plan.NodeClaims[0]) != "" {
		t.Fatalf("want both pods on one claim free to launch in any zone, got %s", mustYAML(summarizePlan(plan, 1)))
	}
	for _, p := range ps {
		add(p)
	}
	return in, plan
}
