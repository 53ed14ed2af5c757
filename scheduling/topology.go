package scheduling

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/fleetpack/fleetpack/offerings"
)

// Topology: topology spread constraints and pod (anti-)affinity.
//
// Every constraint refers to a group: the pods a label selector picks in some
// namespaces, counted per domain of a topology key (a zone, a hostname, a
// capacity type, any node label). Counts start from the pods already on
// existing nodes and grow as the solve places pods. A claim is a domain of
// kubernetes.io/hostname by its placeholder hostname; for any other key a
// claim joins a domain when a constrained pod narrows the claim's requirement
// on that key to one value, and its instance types then keep only those with
// an available offering there.
//
// The solver asks topology through a handful of calls: relaxations (the
// levels to try a pod at), alike (whether two pods meet the same
// constraints), query (one attempt's questions about nodes and claims:
// allowsNode, rulesOut, claimRequirements, hint, freeClaims), and opened and
// placed, which keep the counts. Rejections come back as topoFailure values,
// which explain turns into reasons.
//
// Preferences are relaxed in this order, each only when the pod cannot be
// placed with it: preferred pod affinity (level 1), preferred pod
// anti-affinity (level 2), preferred node affinity and PreferNoSchedule
// taints (the class variants), then ScheduleAnyway spread (level 3).
const (
	levelAll          = iota // every preference enforced
	levelNoAffinity          // preferred pod affinity dropped
	levelNoAnti              // preferred pod anti-affinity dropped too
	levelNoSoftSpread        // ScheduleAnyway spread dropped too
	levelCount
)

// topoGroup counts the pods a selector picks, per domain of one key.
type topoGroup struct {
	key        string
	namespaces map[string]bool // nil with nsSelector nil: every namespace
	nsSelector labels.Selector
	selector   labels.Selector
	counts     map[string]int
	total      int
	// free lists, for a hostname group, the claims (by index, ascending)
	// that hold no pod of the group (see freeClaims).
	free []int
	// owners counts, per domain, the placed pods that carry a required
	// anti-affinity term on this group: pods the group picks may not join
	// them there (anti-affinity is symmetric).
	owners map[string]int
}

func (g *topoGroup) matches(t *topology, pod *corev1.Pod) bool {
	if g.nsSelector != nil {
		if !g.nsSelector.Matches(labels.Set(t.namespaceLabels(pod.Namespace))) {
			return false
		}
	} else if g.namespaces != nil && !g.namespaces[pod.Namespace] {
		return false
	}
	return g.selector.Matches(labels.Set(pod.Labels))
}

type spreadConstraint struct {
	group         *topoGroup
	maxSkew       int
	minDomains    int
	hard          bool
	selfMatch     int
	honorAffinity bool
	honorTaints   bool
	// universe caches the domains eligible for the pod, per variant.
	universe map[*variant][]string
}

type affinityTerm struct {
	group     *topoGroup
	anti      bool
	required  bool
	selfMatch bool
}

// podTopology is the topology of one pod (shared by identical pods).
type podTopology struct {
	spreads    []*spreadConstraint
	affinities []affinityTerm
	// levels is how many relaxation levels differ for this pod.
	softAffinity, softAnti, softSpread bool
	hostnameOnly                       bool
	// hostnameSpread: some spread is over hostnames, whose domains grow
	// with every node a template can still make (see minCount).
	hostnameSpread bool
}

type topology struct {
	// templates and nodes are the solver's, fixed for the solve: where
	// the domains a pod may use come from.
	templates  []*compiledTemplate
	nodes      []*nodeState
	groups     map[string]*topoGroup
	groupList  []*topoGroup
	nsLabels   map[string]map[string]string
	matchCache map[string][]*topoGroup
	keyBuf     []byte
	keysBuf    []string
	// q is the current attempt's query (see query); its buffers are reused.
	q topoQuery
	// none stands in for the constraints of a pod that has none.
	none podTopology
}

// topoQuery is one attempt at placing pod p (variant v, relaxation level
// level): what topology asks of the nodes and claims it may go to. Nothing
// is placed during an attempt but at its end, so the keys it constrains,
// and rulesOut's verdict per (key, domain), hold until then; placed ends
// it. A pod spread over zones would otherwise ask the same few zones once
// per claim. Hostname domains are not cached: each claim has its own.
type topoQuery struct {
	t *topology
	p *podInfo
	// pt is p's topology, or t.none.
	pt    *podTopology
	v     *variant
	level int
	// canOpen: a template can still make a node for p, so a hostname is
	// always a domain with no pods.
	canOpen bool
	// keys are the topology keys on which a node or claim holding p must
	// be one domain (see keys).
	keys []string
	// bound: p must land in particular domains of a key other than the
	// hostname (see domainBound).
	bound bool
	memo  []memoEntry
}

type memoEntry struct {
	key, value string
	allowed    bool
}

// query starts an attempt at placing p as variant v at level; canOpen
// says whether a template can still make a node for it. The query is valid
// until the next query or placement.
func (t *topology) query(p *podInfo, v *variant, level int, canOpen bool) *topoQuery {
	q := &t.q
	*q = topoQuery{t: t, p: p, pt: p.topo, v: v, level: level, canOpen: canOpen, keys: q.keys[:0], memo: q.memo[:0]}
	if q.pt == nil {
		q.pt = &t.none
	}
	if len(t.groupList) > 0 {
		q.keys = append(q.keys, t.keys(p, p.topo, level)...)
	}
	q.bound = t.domainBound(p, level)
	return q
}

// constrains reports whether the pod has topology to check at this level.
func (q *topoQuery) constrains() bool { return len(q.keys) > 0 }

// newTopology compiles the topology of pods (a pod whose constraints are
// malformed gets a class carrying the error) and counts the pods running
// on nodes.
func newTopology(pods []*podInfo, nodes []*nodeState, templates []*compiledTemplate, namespaces []*corev1.Namespace) *topology {
	t := &topology{templates: templates, nodes: nodes, groups: map[string]*topoGroup{}, matchCache: map[string][]*topoGroup{}}
	if len(namespaces) > 0 {
		t.nsLabels = map[string]map[string]string{}
		for _, ns := range namespaces {
			if ns != nil {
				// The API server sets the name label on every namespace;
				// objects built by hand may lack it.
				l := make(map[string]string, len(ns.Labels)+1)
				maps.Copy(l, ns.Labels)
				l[corev1.LabelMetadataName] = ns.Name
				t.nsLabels[ns.Name] = l
			}
		}
	}
	shared := map[string]*podTopology{}
	for _, p := range pods {
		if !hasTopology(p.pod) {
			continue
		}
		t.keyBuf = topologyKey(t.keyBuf[:0], p.pod)
		pt, ok := shared[string(t.keyBuf)]
		if !ok {
			var err error
			if pt, err = t.compile(p.pod); err != nil {
				p.class = &podClass{err: err}
				continue
			}
			shared[string(t.keyBuf)] = pt
		}
		p.topo = pt
	}
	// Pods already running count, and their anti-affinity binds newcomers.
	for _, n := range nodes {
		for _, pod := range n.pods {
			if a := pod.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
				for _, term := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
					g, err := t.group(term.TopologyKey, pod, term.LabelSelector, term.MatchLabelKeys, term.Namespaces, term.NamespaceSelector)
					if err != nil {
						continue // a running pod's bad term is not this solve's to report
					}
					if v, ok := nodeDomain(n.node, g.key); ok {
						g.owners[v]++
					}
				}
			}
		}
	}
	for _, n := range nodes {
		for _, pod := range n.pods {
			for _, g := range t.matching(pod) {
				if v, ok := nodeDomain(n.node, g.key); ok {
					g.counts[v]++
					g.total++
				}
			}
		}
	}
	return t
}

func hasTopology(pod *corev1.Pod) bool {
	a := pod.Spec.Affinity
	return len(pod.Spec.TopologySpreadConstraints) > 0 || (a != nil && (a.PodAffinity != nil || a.PodAntiAffinity != nil))
}

// topologyKey encodes what decides a pod's topology: namespace, labels and
// constraints. Replicas of one workload share it.
func topologyKey(buf []byte, pod *corev1.Pod) []byte {
	buf = append(buf, pod.Namespace...)
	buf = append(buf, '|')
	buf = appendSortedMap(buf, pod.Labels)
	buf = append(buf, '|')
	buf = fmt.Appendf(buf, "%v|", pod.Spec.TopologySpreadConstraints)
	if a := pod.Spec.Affinity; a != nil {
		buf = fmt.Appendf(buf, "%v|%v", a.PodAffinity, a.PodAntiAffinity)
	}
	return buf
}

func (t *topology) namespaceLabels(ns string) map[string]string {
	if l, ok := t.nsLabels[ns]; ok {
		return l
	}
	return map[string]string{corev1.LabelMetadataName: ns}
}

// group finds or makes the group a term refers to.
func (t *topology) group(key string, pod *corev1.Pod, sel *metav1.LabelSelector, matchLabelKeys, namespaces []string, nsSel *metav1.LabelSelector) (*topoGroup, error) {
	if key == "" {
		return nil, fmt.Errorf("topologyKey: must not be empty")
	}
	selector := labels.Nothing()
	if sel != nil {
		var err error
		if selector, err = metav1.LabelSelectorAsSelector(sel); err != nil {
			return nil, fmt.Errorf("labelSelector: %w", err)
		}
	}
	for _, k := range matchLabelKeys {
		if v, ok := pod.Labels[k]; ok && sel != nil {
			r, err := labels.NewRequirement(k, selection.Equals, []string{v})
			if err != nil {
				return nil, fmt.Errorf("matchLabelKeys: %w", err)
			}
			selector = selector.Add(*r)
		}
	}
	g := &topoGroup{key: key, selector: selector}
	sig := key + "|" + selector.String() + "|"
	switch {
	case nsSel != nil:
		s, err := metav1.LabelSelectorAsSelector(nsSel)
		if err != nil {
			return nil, fmt.Errorf("namespaceSelector: %w", err)
		}
		g.nsSelector = s
		sig += "sel:" + s.String()
		if len(namespaces) > 0 {
			// Kubernetes takes the union of both; fold the names into the
			// selector's reach by checking them first.
			g.namespaces = map[string]bool{}
			for _, ns := range namespaces {
				g.namespaces[ns] = true
			}
			sig += "+" + strings.Join(namespaces, ",")
			g.nsSelector = unionSelector{names: g.namespaces, sel: s}
		}
	case len(namespaces) > 0:
		g.namespaces = map[string]bool{}
		for _, ns := range namespaces {
			g.namespaces[ns] = true
		}
		sorted := slices.Clone(namespaces)
		slices.Sort(sorted)
		sig += "ns:" + strings.Join(sorted, ",")
	default:
		g.namespaces = map[string]bool{pod.Namespace: true}
		sig += "ns:" + pod.Namespace
	}
	if existing, ok := t.groups[sig]; ok {
		return existing, nil
	}
	g.counts, g.owners = map[string]int{}, map[string]int{}
	t.groups[sig] = g
	t.groupList = append(t.groupList, g)
	clear(t.matchCache) // a new group may match pods already looked up
	return g, nil
}

// unionSelector matches a namespace named in names or whose labels sel matches.
type unionSelector struct {
	labels.Selector
	names map[string]bool
	sel   labels.Selector
}

func (u unionSelector) Matches(l labels.Labels) bool {
	return u.names[l.Get(corev1.LabelMetadataName)] || u.sel.Matches(l)
}

func (t *topology) compile(pod *corev1.Pod) (*podTopology, error) {
	pt := &podTopology{hostnameOnly: true}
	for i, c := range pod.Spec.TopologySpreadConstraints {
		field := fmt.Sprintf("spec.topologySpreadConstraints[%d].", i)
		if c.MaxSkew < 1 {
			return nil, fmt.Errorf("%smaxSkew: must be at least 1, got %d", field, c.MaxSkew)
		}
		g, err := t.group(c.TopologyKey, pod, c.LabelSelector, c.MatchLabelKeys, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s%w", field, err)
		}
		sc := &spreadConstraint{group: g, maxSkew: int(c.MaxSkew), minDomains: 1, hard: c.WhenUnsatisfiable != corev1.ScheduleAnyway,
			honorAffinity: c.NodeAffinityPolicy == nil || *c.NodeAffinityPolicy == corev1.NodeInclusionPolicyHonor,
			honorTaints:   c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor,
			universe:      map[*variant][]string{}}
		if c.MinDomains != nil {
			sc.minDomains = int(*c.MinDomains)
		}
		if g.selector.Matches(labels.Set(pod.Labels)) {
			sc.selfMatch = 1
		}
		pt.spreads = append(pt.spreads, sc)
		pt.softSpread = pt.softSpread || !sc.hard
		pt.hostnameOnly = pt.hostnameOnly && g.key == offerings.LabelHostname
		pt.hostnameSpread = pt.hostnameSpread || g.key == offerings.LabelHostname
	}
	a := pod.Spec.Affinity
	addTerms := func(field string, terms []corev1.PodAffinityTerm, anti, required bool) error {
		for i, term := range terms {
			g, err := t.group(term.TopologyKey, pod, term.LabelSelector, term.MatchLabelKeys, term.Namespaces, term.NamespaceSelector)
			if err != nil {
				return fmt.Errorf("%s[%d].%w", field, i, err)
			}
			pt.affinities = append(pt.affinities, affinityTerm{group: g, anti: anti, required: required, selfMatch: g.matches(t, pod)})
			pt.hostnameOnly = pt.hostnameOnly && g.key == offerings.LabelHostname
			if !required {
				if anti {
					pt.softAnti = true
				} else {
					pt.softAffinity = true
				}
			}
		}
		return nil
	}
	weighted := func(w []corev1.WeightedPodAffinityTerm) []corev1.PodAffinityTerm {
		// Heaviest first; all preferred terms are relaxed together.
		sorted := slices.Clone(w)
		slices.SortStableFunc(sorted, func(a, b corev1.WeightedPodAffinityTerm) int { return int(b.Weight - a.Weight) })
		out := make([]corev1.PodAffinityTerm, len(sorted))
		for i := range sorted {
			out[i] = sorted[i].PodAffinityTerm
		}
		return out
	}
	if a != nil && a.PodAffinity != nil {
		if err := addTerms("spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution", a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, false, true); err != nil {
			return nil, err
		}
		if err := addTerms("spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution", weighted(a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution), false, false); err != nil {
			return nil, err
		}
	}
	if a != nil && a.PodAntiAffinity != nil {
		if err := addTerms("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution", a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, true, true); err != nil {
			return nil, err
		}
		if err := addTerms("spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution", weighted(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution), true, false); err != nil {
			return nil, err
		}
	}
	return pt, nil
}

// matching lists the groups whose selector picks pod.
func (t *topology) matching(pod *corev1.Pod) []*topoGroup {
	if len(t.groupList) == 0 {
		return nil
	}
	t.keyBuf = append(t.keyBuf[:0], pod.Namespace...)
	t.keyBuf = append(t.keyBuf, '|')
	t.keyBuf = appendSortedMap(t.keyBuf, pod.Labels)
	if gs, ok := t.matchCache[string(t.keyBuf)]; ok {
		return gs
	}
	var out []*topoGroup
	for _, g := range t.groupList {
		if g.matches(t, pod) {
			out = append(out, g)
		}
	}
	t.matchCache[string(t.keyBuf)] = out
	return out
}

// relaxations lists the relaxation levels worth trying for p, strictest
// first, and whether p has ScheduleAnyway spread to relax after its node
// preferences (see attempts).
func (t *topology) relaxations(p *podInfo) ([]int, bool) {
	pt := p.topo
	if pt == nil {
		return []int{levelAll}, false
	}
	out := []int{levelAll}
	if pt.softAffinity {
		out = append(out, levelNoAffinity)
	}
	if pt.softAnti {
		out = append(out, levelNoAnti)
	}
	return out, pt.softSpread
}

// independent reports whether nodes and claims that turned p away keep doing
// so while other pods are placed elsewhere: true without topology, and with
// constraints on hostnames only, whose domains change only when a pod joins.
func independent(p *podInfo) bool {
	pt := p.topo
	return pt == nil || pt.hostnameOnly
}

// alike reports whether b is independent (see above) and meets the same
// topology as a, so that the nodes and claims that turned a away would turn
// b away too.
func (t *topology) alike(a, b *podInfo) bool {
	return independent(b) && (a == b || t.sameTopology(a, b))
}

func nodeDomain(node *corev1.Node, key string) (string, bool) {
	if v, ok := node.Labels[key]; ok {
		return v, true
	}
	if key == offerings.LabelHostname {
		return node.Name, true
	}
	return "", false
}

func (t *topology) spreadEnforced(sc *spreadConstraint, level int) bool {
	return sc.hard || level < levelNoSoftSpread
}

func (t *topology) affinityEnforced(a *affinityTerm, level int) bool {
	if a.required {
		return true
	}
	if a.anti {
		return level < levelNoAnti
	}
	return level < levelNoAffinity
}

// minCount is the smallest count over the domains eligible for the pod;
// fewer eligible domains than minDomains make it zero, as in Kubernetes.
// Hostnames are unbounded: a new node is always a domain with no pods.
func (q *topoQuery) minCount(sc *spreadConstraint) (int, string) {
	if sc.group.key == offerings.LabelHostname && q.canOpen {
		return 0, ""
	}
	universe := q.t.universe(sc, q.v)
	if len(universe) < sc.minDomains {
		return 0, ""
	}
	low, lowDomain := -1, ""
	for _, d := range universe {
		if c := sc.group.counts[d]; low < 0 || c < low {
			low, lowDomain = c, d
		}
	}
	return max(low, 0), lowDomain
}

// universe lists the domains of the constraint's key that nodes the pod may
// use can have: values the templates' instance types and offerings (available
// or not) produce, and existing nodes' labels.
func (t *topology) universe(sc *spreadConstraint, v *variant) []string {
	if u, ok := sc.universe[v]; ok {
		return u
	}
	key := sc.group.key
	seen := map[string]bool{}
	allow := func(reqs *Requirements, val string) bool {
		return reqs.Allows(key, val) && (!sc.honorAffinity || v.required.Allows(key, val))
	}
	for _, ct := range t.templates {
		if sc.honorTaints {
			if _, bad := untoleratedTaint(ct.t.Taints, v.class.tolerations, v.toleratePNS); bad {
				continue
			}
		}
		if val, ok := ct.t.Labels[key]; ok {
			if allow(&ct.reqs, val) {
				seen[val] = true
			}
			continue
		}
		for i := range ct.types {
			it := ct.types[i].it
			switch key {
			case offerings.LabelZone, offerings.LabelCapacityType:
				for _, o := range it.Offerings {
					val := o.Zone
					if key == offerings.LabelCapacityType {
						val = o.CapacityType
					}
					if allow(&ct.reqs, val) {
						seen[val] = true
					}
				}
			default:
				if val, ok := it.Labels[key]; ok && allow(&ct.reqs, val) {
					seen[val] = true
				}
			}
		}
		if r := ct.reqs.Get(key); r != nil {
			if vals, finite := r.Values(); finite && !ct.typeKeys.has(key) && key != offerings.LabelZone && key != offerings.LabelCapacityType {
				for _, val := range vals {
					if allow(&ct.reqs, val) {
						seen[val] = true
					}
				}
			}
		}
	}
	for _, n := range t.nodes {
		if val, ok := nodeDomain(n.node, key); ok {
			if sc.honorAffinity && !v.required.MatchesLabels(n.node.Labels) {
				continue
			}
			if sc.honorTaints {
				if _, bad := untoleratedTaint(n.taints, v.class.tolerations, v.toleratePNS); bad {
					continue
				}
			}
			seen[val] = true
		}
	}
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	slices.Sort(out)
	sc.universe[v] = out
	return out
}

// allowsDomain checks every enforced constraint of the pod whose key is key
// against domain value val, and returns the first it breaks (kind failNone:
// none).
func (q *topoQuery) allowsDomain(key, val string) topoFailure {
	t, pt, level := q.t, q.pt, q.level
	for _, sc := range pt.spreads {
		if sc.group.key != key || !t.spreadEnforced(sc, level) {
			continue
		}
		low, lowDomain := q.minCount(sc)
		if sc.group.counts[val]+sc.selfMatch-low > sc.maxSkew {
			return topoFailure{kind: failSpread, spread: sc, domain: lowDomain}
		}
	}
	for i := range pt.affinities {
		a := &pt.affinities[i]
		if a.group.key != key || !t.affinityEnforced(a, level) {
			continue
		}
		n := a.group.counts[val]
		if a.anti && n > 0 {
			return topoFailure{kind: failAnti, key: key, domain: val}
		}
		if !a.anti && n == 0 && !(a.group.total == 0 && a.selfMatch) {
			return topoFailure{kind: failAffinity, key: key, domain: val, group: a.group}
		}
	}
	// Anti-affinity is symmetric: pods already placed may forbid p.
	for _, g := range t.matchingPod(q.p) {
		if g.key == key && g.owners[val] > 0 {
			return topoFailure{kind: failSymmetric, key: key, domain: val}
		}
	}
	return topoFailure{}
}

func (t *topology) spreadFailure(sc *spreadConstraint, lowDomain string) string {
	msg := fmt.Sprintf("topology spread on %s would exceed maxSkew %d", sc.group.key, sc.maxSkew)
	if lowDomain != "" && !t.domainHasOffering(sc.group.key, lowDomain) {
		msg += fmt.Sprintf(" (%s %s has no available offering)", shortKey(sc.group.key), lowDomain)
	}
	return msg
}

func (t *topology) domainHasOffering(key, val string) bool {
	for _, ct := range t.templates {
		for i := range ct.types {
			for _, o := range ct.types[i].it.Offerings {
				if !o.Available {
					continue
				}
				if (key == offerings.LabelZone && o.Zone == val) || (key == offerings.LabelCapacityType && o.CapacityType == val) ||
					(key != offerings.LabelZone && key != offerings.LabelCapacityType && ct.types[i].it.Labels[key] == val) {
					return true
				}
			}
		}
	}
	for _, n := range t.nodes {
		if n.node.Labels[key] == val {
			return true
		}
	}
	return false
}

func shortKey(key string) string {
	switch key {
	case offerings.LabelZone:
		return "zone"
	case offerings.LabelHostname:
		return "node"
	case offerings.LabelCapacityType:
		return "capacity type"
	}
	return key
}

// keys lists the distinct topology keys p's enforced constraints use, and
// those of groups p belongs to that carry anti-affinity owners or whose key
// is not the hostname: a claim holding p must then have one domain there,
// or p would go uncounted (a claim narrowed later does not count the pods
// it already holds).
func (t *topology) keys(p *podInfo, pt *podTopology, level int) []string {
	out := t.keysBuf[:0]
	defer func() { t.keysBuf = out[:0] }()
	add := func(k string) {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if pt != nil {
		for _, sc := range pt.spreads {
			if t.spreadEnforced(sc, level) {
				add(sc.group.key)
			}
		}
		for i := range pt.affinities {
			if t.affinityEnforced(&pt.affinities[i], level) {
				add(pt.affinities[i].group.key)
			}
		}
	}
	for _, g := range t.matchingPod(p) {
		if len(g.owners) > 0 || g.key != offerings.LabelHostname {
			add(g.key)
		}
	}
	return out
}

// allowsNode checks the pod's topology against an existing node.
func (q *topoQuery) allowsNode(n *nodeState) bool {
	for _, key := range q.keys {
		val, ok := nodeDomain(n.node, key)
		if !ok {
			// A node without the key is no domain: hard spread and
			// required affinity cannot be met there.
			if q.t.needsKey(q.pt, q.level, key) {
				return false
			}
			continue
		}
		if q.allowsDomain(key, val).kind != failNone {
			return false
		}
	}
	return true
}

func (t *topology) needsKey(pt *podTopology, level int, key string) bool {
	for _, sc := range pt.spreads {
		if sc.group.key == key && t.spreadEnforced(sc, level) {
			return true
		}
	}
	for i := range pt.affinities {
		a := &pt.affinities[i]
		if a.group.key == key && !a.anti && t.affinityEnforced(a, level) {
			return true
		}
	}
	return false
}

// freeClaims returns, when the pod may only join claims holding no pod of
// some group on the hostname key (required hostname anti-affinity, or hard
// hostname spread with maxSkew 1 over pods like it), the claims that hold
// none yet, in claim order. Pods kept one per node then look at the few
// claims still open to them instead of asking every full one.
func (q *topoQuery) freeClaims() ([]int, bool) {
	pt, t, level := q.pt, q.t, q.level
	var best *topoGroup
	consider := func(g *topoGroup) {
		if best == nil || len(g.free) < len(best.free) {
			best = g
		}
	}
	for _, sc := range pt.spreads {
		if sc.group.key == offerings.LabelHostname && t.spreadEnforced(sc, level) && sc.selfMatch == 1 && sc.maxSkew == 1 {
			consider(sc.group)
		}
	}
	for i := range pt.affinities {
		a := &pt.affinities[i]
		if a.anti && a.group.key == offerings.LabelHostname && t.affinityEnforced(a, level) {
			consider(a.group)
		}
	}
	if best == nil {
		return nil, false
	}
	return best.free, true
}

// opened adds claim index i to every hostname group's free list.
func (t *topology) opened(i int) {
	for _, g := range t.groupList {
		if g.key == offerings.LabelHostname {
			g.free = append(g.free, i)
		}
	}
}

// sameTopology reports whether a and b meet the same topology: the same
// constraints, and picked by the same groups that placed pods' required
// anti-affinity refers to (so the same nodes and claims turn them away).
// Groups that only count pods do not matter to where a pod may go.
func (t *topology) sameTopology(a, b *podInfo) bool {
	if len(t.groupList) == 0 {
		return true
	}
	if a.topo != b.topo {
		return false
	}
	ga, gb := t.matchingPod(a), t.matchingPod(b)
	i, j := 0, 0
	for {
		for i < len(ga) && len(ga[i].owners) == 0 {
			i++
		}
		for j < len(gb) && len(gb[j].owners) == 0 {
			j++
		}
		if i == len(ga) || j == len(gb) {
			return i == len(ga) && j == len(gb)
		}
		if ga[i] != gb[j] {
			return false
		}
		i, j = i+1, j+1
	}
}

// domainBound reports whether p must land in particular domains of a key
// other than the hostname at this level.
func (t *topology) domainBound(p *podInfo, level int) bool {
	pt := p.topo
	if pt == nil || pt.hostnameOnly {
		return false
	}
	for _, sc := range pt.spreads {
		if sc.group.key != offerings.LabelHostname && t.spreadEnforced(sc, level) {
			return true
		}
	}
	for i := range pt.affinities {
		if a := &pt.affinities[i]; a.group.key != offerings.LabelHostname && t.affinityEnforced(a, level) {
			return true
		}
	}
	return false
}

// hint names the domain a pod constrained on a key other than the hostname
// will most likely land in: the allowed domain with the fewest matching
// pods for spread, the most for affinity. The solver uses it to start its
// claim scan where the last such pod went.
func (q *topoQuery) hint() (string, bool) {
	pt, t, level := q.p.topo, q.t, q.level
	if pt == nil || pt.hostnameOnly {
		return "", false
	}
	for _, sc := range pt.spreads {
		if sc.group.key == offerings.LabelHostname || !t.spreadEnforced(sc, level) {
			continue
		}
		best, bestLoad := "", 0
		for _, d := range t.universe(sc, q.v) {
			if q.allowsDomain(sc.group.key, d).kind != failNone {
				continue
			}
			if l := t.load(pt, sc.group.key, d); best == "" || l < bestLoad {
				best, bestLoad = d, l
			}
		}
		return sc.group.key + "=" + best, true
	}
	for i := range pt.affinities {
		a := &pt.affinities[i]
		if a.group.key == offerings.LabelHostname || !t.affinityEnforced(a, level) {
			continue
		}
		best, bestCount := "", 0
		for d, n := range a.group.counts {
			if n > bestCount || (n == bestCount && d < best) {
				best, bestCount = d, n
			}
		}
		return a.group.key + "=" + best, true
	}
	return "", false
}

// rulesOut reports whether claim c is ruled out for the pod by a
// constraint on a key whose domain the claim has already fixed: its
// hostname, or a key its requirements or template narrow to one value. It
// allocates nothing, so the solver asks it before weighing the claim.
func (q *topoQuery) rulesOut(c *claim) bool {
next:
	for _, key := range q.keys {
		val, ok := c.hostname, key == offerings.LabelHostname
		if !ok {
			val, ok = c.ct.t.Labels[key]
		}
		if !ok {
			if r := c.reqs.Get(key); r != nil && !r.complement && len(r.values) == 1 && r.allows(r.values[0]) {
				val, ok = r.values[0], true
			}
		}
		if !ok {
			continue
		}
		if key == offerings.LabelHostname {
			if q.allowsDomain(key, val).kind != failNone {
				return true
			}
			continue
		}
		for i := range q.memo {
			if e := &q.memo[i]; e.key == key && e.value == val {
				if !e.allowed {
					return true
				}
				continue next
			}
		}
		allowed := q.allowsDomain(key, val).kind == failNone
		q.memo = append(q.memo, memoEntry{key: key, value: val, allowed: allowed})
		if !allowed {
			return true
		}
	}
	return false
}

// candidate is a narrowing of a claim's requirements to one domain per key;
// sig names it ("key=value;...") for caches.
type candidate struct {
	// base is the requirements before narrowing; key=value narrows them.
	// Callers materialize reqs() only when a claim is first narrowed that
	// way or a pod joins, since most probes end in a cached rejection.
	base       *Requirements
	key, value string
	prefix     string // earlier keys' choices, when several keys narrow
	// load is how many of the pod's spread pods the domain already has
	// (less its affinity matches): candidates of equal load compete on price.
	load int
}

func (c *candidate) reqs() Requirements {
	r := c.base.Clone()
	if c.key != "" {
		r.Add(Requirement{Key: c.key, values: []string{c.value}})
	}
	return r
}

// claimRequirements returns, for the pod joining claim c whose
// requirements would be reqs and types types, the narrower requirements to
// try in order (nil: reqs as they are), or false when topology rules c out.
// cache, when not nil, keeps the domains found per key. The failure is why
// c is ruled out, or else why some domain was (kind failNone: no domain was).
func (q *topoQuery) claimRequirements(c *claim, reqs *Requirements, types []int32, cache map[string][]string) ([]candidate, topoFailure, bool) {
	t, pt, level := q.t, q.pt, q.level
	var cands []candidate
	var why topoFailure
	for _, key := range q.keys {
		if key == offerings.LabelHostname {
			if f := q.allowsDomain(key, c.hostname); f.kind != failNone {
				return nil, f, false
			}
			continue
		}
		values, ok := cache[key]
		if !ok {
			values = t.claimValues(c, reqs, types, key)
			if cache != nil {
				cache[key] = values
			}
		}
		if len(values) == 0 {
			if t.needsKey(pt, level, key) {
				return nil, topoFailure{kind: failNoLabel, key: key}, false
			}
			continue
		}
		allowed := values[:0:0]
		for _, val := range values {
			if f := q.allowsDomain(key, val); f.kind != failNone {
				why = f
			} else {
				allowed = append(allowed, val)
			}
		}
		if len(allowed) == 0 {
			return nil, why, false
		}
		if len(values) == 1 {
			continue // already one domain, and it is allowed
		}
		// Fill the emptiest domain first (offer takes the cheapest of
		// the emptiest), then by name for stable plans.
		slices.SortStableFunc(allowed, func(a, b string) int { return t.load(pt, key, a) - t.load(pt, key, b) })
		base, prefix := reqs, ""
		if len(cands) > 0 {
			first := cands[0].reqs()
			base, prefix = &first, cands[0].prefix+cands[0].key+"="+cands[0].value+";"
		}
		next := make([]candidate, len(allowed))
		for i, val := range allowed {
			next[i] = candidate{base: base, key: key, value: val, prefix: prefix, load: t.load(pt, key, val)}
		}
		// With several keys to narrow, earlier keys keep their first
		// choice and this one tries every value.
		cands = next
	}
	return cands, why, true
}

// load is how many pods p's groups on key already have in domain val.
func (t *topology) load(pt *podTopology, key, val string) int {
	n := 0
	for _, sc := range pt.spreads {
		if sc.group.key == key {
			n += sc.group.counts[val]
		}
	}
	for i := range pt.affinities {
		if a := &pt.affinities[i]; a.group.key == key && !a.anti {
			n -= a.group.counts[val] // affinity prefers where matches are
		}
	}
	return n
}

// claimValues lists the values a claim with requirements reqs and candidate
// types can take for key.
func (t *topology) claimValues(c *claim, reqs *Requirements, types []int32, key string) []string {
	r := reqs.Get(key)
	if r != nil {
		if vals, finite := r.Values(); finite {
			return vals
		}
	}
	if v, ok := c.ct.t.Labels[key]; ok {
		return []string{v}
	}
	if key == offerings.LabelZone || key == offerings.LabelCapacityType {
		ox, zones := c.ct.ox, key == offerings.LabelZone
		mask := ox.mask(reqs)
		// The first few types usually offer every domain the mask allows.
		full := mask.capacityTypes
		if zones {
			full = mask.zones
		}
		var bits uint64
		for _, t := range types {
			if bits |= c.ct.types[t].domains(mask, zones); bits == full {
				break
			}
		}
		names := ox.capacityTypes
		if zones {
			names = ox.zones
		}
		out := make([]string, 0, 8)
		for i, name := range names {
			if bits&(1<<i) != 0 {
				out = append(out, name)
			}
		}
		slices.Sort(out)
		return out
	}
	seen := map[string]bool{}
	for _, ti := range types {
		if val, ok := c.ct.types[ti].it.Labels[key]; ok && reqs.Allows(key, val) {
			seen[val] = true
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// domainer is where a pod goes: an existing node or a claim, each a domain
// of some topology keys.
type domainer interface {
	domain(key string) (string, bool)
}

func (n *nodeState) domain(key string) (string, bool) { return nodeDomain(n.node, key) }

func (c *claim) domain(key string) (string, bool) {
	if key == offerings.LabelHostname {
		return c.hostname, true
	}
	if v, ok := c.ct.t.Labels[key]; ok {
		return v, true
	}
	if r := c.reqs.Get(key); r != nil {
		if vals, finite := r.Values(); finite && len(vals) == 1 {
			return vals[0], true
		}
	}
	return "", false
}

// placed counts pod p, just placed at, in the groups that pick it, and
// registers its required anti-affinity terms. It ends the current query:
// the counts behind its verdicts changed.
func (t *topology) placed(p *podInfo, at domainer) {
	t.q.memo = t.q.memo[:0]
	if len(t.groupList) == 0 {
		return
	}
	c, _ := at.(*claim)
	for _, g := range t.matchingPod(p) {
		if v, ok := at.domain(g.key); ok {
			g.counts[v]++
			g.total++
			if c != nil && g.key == offerings.LabelHostname && g.counts[v] == 1 {
				if i, found := slices.BinarySearch(g.free, c.index); found {
					g.free = slices.Delete(g.free, i, i+1)
				}
			}
		}
	}
	if pt := p.topo; pt != nil {
		for i := range pt.affinities {
			if a := &pt.affinities[i]; a.anti && a.required {
				if v, ok := at.domain(a.group.key); ok {
					a.group.owners[v]++
				}
			}
		}
	}
}

const (
	failNone = iota
	failSpread
	failAnti
	failAffinity
	failSymmetric
	failNoLabel
)

// topoFailure is the constraint that turned a pod away from a domain; it is
// formatted (explain) only when the pod ends up unschedulable.
type topoFailure struct {
	kind        int
	spread      *spreadConstraint
	group       *topoGroup
	key, domain string
}

// explain says why f turned a pod away.
func (t *topology) explain(f topoFailure) string {
	switch f.kind {
	case failSpread:
		return t.spreadFailure(f.spread, f.domain)
	case failAnti:
		return fmt.Sprintf("pod anti-affinity on %s: %s already has a matching pod", f.key, domainName(f.key, f.domain))
	case failAffinity:
		if f.group.total == 0 {
			sel := f.group.selector.String()
			if sel == "" {
				sel = "(no label selector: it matches no pod)"
			}
			return fmt.Sprintf("pod affinity on %s: no pod matches %s", f.key, sel)
		}
		return fmt.Sprintf("pod affinity on %s: no matching pod in %s", f.key, domainName(f.key, f.domain))
	case failSymmetric:
		return fmt.Sprintf("pod anti-affinity of a pod in %s forbids it", domainName(f.key, f.domain))
	case failNoLabel:
		return fmt.Sprintf("no node for the pod can carry label %s", f.key)
	}
	return "topology constraints cannot be met"
}

// domainName names a domain for messages; a planned node's placeholder
// hostname means nothing to users.
func domainName(key, domain string) string {
	if key == offerings.LabelHostname && strings.HasPrefix(domain, claimHostnamePrefix) {
		return "a planned node"
	}
	return shortKey(key) + " " + domain
}

// matchingPod is matching for a pending pod, remembered on the pod.
func (t *topology) matchingPod(p *podInfo) []*topoGroup {
	if !p.groupsKnown {
		p.groups, p.groupsKnown = t.matching(p.pod), true
	}
	return p.groups
}
