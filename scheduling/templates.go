package scheduling

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/fleetpack/fleetpack/offerings"
)

// NodeRequirements is what every node made from t satisfies: t's
// Requirements with its Labels and its NodePool name (karpenter.sh/nodepool,
// which pods may select) folded in. It is the one place a template's parts
// are folded together: the solver, AdmittedTypes, and the NodePool's drift
// check all read them through it.
func (t *NodeTemplate) NodeRequirements() Requirements {
	reqs := t.Requirements.Intersect(RequirementsFromLabels(t.Labels))
	reqs.Add(Requirement{Key: offerings.LabelNodePool, values: []string{t.NodePool}})
	return reqs
}

// AdmittedTypes returns the types of catalog that t may launch, in catalog
// order: their labels meet t's NodeRequirements, and at least one of their
// offerings lies in the zones and capacity types those allow. Availability
// is not looked at (it changes between solves, and the solver reads it per
// claim). The solver applies the same rule to t.InstanceTypes, so a template
// built from a whole catalog and one built from AdmittedTypes solve alike.
func (t *NodeTemplate) AdmittedTypes(catalog []*offerings.InstanceType) []*offerings.InstanceType {
	reqs := t.NodeRequirements()
	keys := newTypeKeys(catalog)
	zone, capacityType := reqs.Get(offerings.LabelZone), reqs.Get(offerings.LabelCapacityType)
	var kept []*offerings.InstanceType
	for _, it := range catalog {
		if !typeLabelsMatch(keys, &reqs, it) {
			continue
		}
		if slices.ContainsFunc(it.Offerings, func(o offerings.Offering) bool { return offeringAllowed(zone, capacityType, o) }) {
			kept = append(kept, it)
		}
	}
	return kept
}

// offeringAllowed reports whether o lies in the zones and capacity types
// the requirements zone and capacityType allow (nil allows any).
func offeringAllowed(zone, capacityType *Requirement, o offerings.Offering) bool {
	return (zone == nil || zone.Matches(o.Zone, true)) && (capacityType == nil || capacityType.Matches(o.CapacityType, true))
}

// typeKeys answers "does some type of these carry label key?": the keys
// instance types decide. It is asked about the few keys requirements name,
// so it scans the types once per key on first use rather than collecting
// every label of the catalog up front (which cost a tenth of a solve).
type typeKeys struct {
	types []*offerings.InstanceType
	known map[string]bool
}

func newTypeKeys(types []*offerings.InstanceType) *typeKeys {
	return &typeKeys{types: types, known: map[string]bool{}}
}

func (k *typeKeys) has(key string) bool {
	carried, ok := k.known[key]
	if !ok {
		carried = slices.ContainsFunc(k.types, func(it *offerings.InstanceType) bool {
			_, ok := it.Labels[key]
			return ok
		})
		k.known[key] = carried
	}
	return carried
}

// compiledTemplate is a NodeTemplate prepared for one solve.
type compiledTemplate struct {
	t     *NodeTemplate
	index int
	// reqs is the template's requirements with its labels folded in.
	reqs Requirements
	// typeKeys are the label keys some instance type of the template carries.
	typeKeys *typeKeys
	types    []typeInfo
	// limits: math.MaxInt64 where unlimited.
	remainingCPU, remainingMemory, remainingNodes int64
	limitedResources                              bool
	// daemonSetPorts are host ports daemonsets take on this template's nodes.
	daemonSetPorts []hostPort
	// duals value spare room on this template's nodes (see value.go).
	duals dualPrices
	ox    *offerIndex
	// compiled is t.InstanceTypes compiled, by position, those types
	// leaves out included: offeringReason looks at them.
	compiled []*catalogType
}

// typeInfo is one instance type under one template.
type typeInfo struct {
	it *offerings.InstanceType
	// avail is allocatable less the daemonset pods that would run on it.
	avail     vec
	daemonSet vec
	capacity  vec
	offers    []offer
	// surplusAtFull is, under BurstableCredits, the surplus credits a node
	// of this burstable type pays with its whole cpu requested; offers
	// include it (see cost.go).
	surplusAtFull float64
}

// untoleratedTaint returns the first NoSchedule/NoExecute taint (and, unless
// toleratePNS, PreferNoSchedule taint) that tolerations do not tolerate.
func untoleratedTaint(taints []corev1.Taint, tolerations []corev1.Toleration, toleratePNS bool) (corev1.Taint, bool) {
	return corev1helpers.FindMatchingUntoleratedTaint(logr.Discard(), taints, tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute ||
			(!toleratePNS && t.Effect == corev1.TaintEffectPreferNoSchedule)
	}, false)
}

func compileTemplate(index int, t *NodeTemplate, compiled []*catalogType, dims *resourceDims, daemonSets []*podInfo, total vec, median [2]int64, ox *offerIndex) *compiledTemplate {
	ct := &compiledTemplate{t: t, index: index, typeKeys: newTypeKeys(t.InstanceTypes), ox: ox, compiled: compiled}
	ct.reqs = t.NodeRequirements()
	ct.remainingCPU, ct.remainingMemory, ct.remainingNodes = math.MaxInt64, math.MaxInt64, math.MaxInt64
	if q, ok := t.Limits[corev1.ResourceCPU]; ok {
		ct.remainingCPU, ct.limitedResources = q.MilliValue(), true
	}
	if q, ok := t.Limits[corev1.ResourceMemory]; ok {
		ct.remainingMemory, ct.limitedResources = q.Value(), true
	}
	if q, ok := t.Limits[ResourceNodes]; ok {
		ct.remainingNodes = q.Value()
	}
	ct.types = make([]typeInfo, 0, len(t.InstanceTypes))
	mask := ox.mask(&ct.reqs)
	runs := daemonSetConstraints(ct, daemonSets)
	// Host ports of daemonsets that may run here are taken on every new
	// node (conservatively, even where a daemonset runs on some types only).
	for i, ds := range daemonSets {
		if len(runs[i].alternatives) > 0 {
			ct.daemonSetPorts = append(ct.daemonSetPorts, ds.hostPorts...)
		}
	}
	// The types' offers and vectors are cut from one allocation each: a
	// catalog has about a thousand types, and one small allocation per type
	// and field was a fifth of the garbage of a solve. A rejected type's
	// slots are reused by the next.
	offerCount := 0
	for _, c := range compiled {
		offerCount += len(c.offers)
	}
	offerBuf := make([]offer, 0, offerCount)
	d := dims.len()
	vecBuf := make(vec, 3*d*len(t.InstanceTypes))
	for i, it := range t.InstanceTypes {
		start := len(offerBuf)
		offerBuf = ox.appendOffers(offerBuf, compiled[i])
		ti := typeInfo{it: it, offers: offerBuf[start:len(offerBuf):len(offerBuf)]}
		if !ct.matches(&ct.reqs, &ti, mask) {
			offerBuf = offerBuf[:start]
			continue
		}
		ti.avail, ti.capacity, ti.daemonSet = vecBuf[:d:d], vecBuf[d:2*d:2*d], vecBuf[2*d:3*d:3*d]
		compiled[i].vectors(dims, ti.capacity, ti.avail)
		clear(ti.daemonSet)
		if !billedType(t, &ti) {
			offerBuf = offerBuf[:start]
			continue
		}
		for i, ds := range daemonSets {
			if runs[i].admits(ct, &ti) {
				ti.daemonSet.add(ds.requests)
			}
		}
		ti.avail.sub(ti.daemonSet)
		ct.types = append(ct.types, ti)
		vecBuf = vecBuf[3*d:]
	}
	ct.duals = templateDuals(ct, mask, total, median)
	return ct
}

// matches reports whether instance type ti, made from ct, can satisfy reqs
// on every key the type decides, and has an available offering that mask
// (reqs' zones and capacity types) allows.
func (ct *compiledTemplate) matches(reqs *Requirements, ti *typeInfo, mask offerMask) bool {
	if !typeLabelsMatch(ct.typeKeys, reqs, ti.it) {
		return false
	}
	_, ok := ti.price(mask)
	return ok
}

// keyConflict checks the keys neither instance types nor offerings decide:
// a custom label is on the node only if the template defines it.
func (ct *compiledTemplate) keyConflict(reqs *Requirements) *Requirement {
	// A node not yet made has no hostname anyone could have asked for by
	// value: only existing nodes can meet such a requirement.
	if r := reqs.Get(offerings.LabelHostname); r != nil {
		if _, finite := r.Values(); finite {
			return r
		}
	}
	return reqs.Conflict(func(key string) bool {
		switch key {
		case offerings.LabelZone, offerings.LabelCapacityType, offerings.LabelHostname, offerings.LabelNodePool:
			return true
		}
		if ct.typeKeys.has(key) {
			// Decided per type by typeMatches; a requirement that a type
			// meets by lacking the label (DoesNotExist) is no conflict.
			return !reqs.Get(key).AllowsAbsent()
		}
		if _, ok := ct.t.Labels[key]; ok {
			return true
		}
		// A template requirement becomes a label unless it lets nodes go
		// without one (DoesNotExist), which is then no conflict either.
		return ct.t.Requirements.Get(key) != nil && !reqs.Get(key).AllowsAbsent()
	})
}

// daemonSetRun is what decides whether a daemonset runs on a template's
// nodes: for each alternative of its node constraints (preferences do not
// keep it off), the template's requirements narrowed by it.
type daemonSetRun struct {
	alternatives []Requirements
	masks        []offerMask
}

// daemonSetConstraints works out, per daemonset, the requirement sets under
// which it would run on ct's nodes: it tolerates the template's taints
// (startup taints go away, and PreferNoSchedule keeps no daemonset off) and
// its node constraints admit the template.
func daemonSetConstraints(ct *compiledTemplate, daemonSets []*podInfo) []daemonSetRun {
	out := make([]daemonSetRun, len(daemonSets))
	for i, ds := range daemonSets {
		if _, bad := untoleratedTaint(ct.t.Taints, ds.pod.Spec.Tolerations, true); bad || ds.class.err != nil {
			continue
		}
		for _, v := range ds.class.variants {
			if v.toleratePNS {
				continue
			}
			merged := ct.reqs.Intersect(v.reqs)
			if ct.keyConflict(&merged) != nil {
				continue
			}
			out[i].alternatives = append(out[i].alternatives, merged)
			out[i].masks = append(out[i].masks, ct.ox.mask(&merged))
		}
	}
	return out
}

// admits reports whether the daemonset runs on a node of type ti.
func (r *daemonSetRun) admits(ct *compiledTemplate, ti *typeInfo) bool {
	for i := range r.alternatives {
		if ct.matches(&r.alternatives[i], ti, r.masks[i]) {
			return true
		}
	}
	return false
}

// variantTemplate is one pod variant's compatibility with one template.
type variantTemplate struct {
	ct *compiledTemplate
	// id numbers the Context's variant templates from 1, for memos that
	// keep no pointers.
	id     int32
	ok     bool
	reason string
	// reqs is the template's requirements narrowed by the variant's.
	reqs Requirements
	// list holds the indices into ct.types that satisfy reqs.
	list   typeList
	member []uint64 // bitset over ct.types
	// values caches the topology domains reqs allow, per key.
	values map[string][]string
	// alone caches the cheapest type that fits a pod alone, for the last
	// request vector asked about.
	aloneReq   vec
	aloneType  int32
	alonePrice float64
	aloneOK    bool
}

func compileVariantTemplate(ct *compiledTemplate, v *variant, tolerations []corev1.Toleration, dims *resourceDims) *variantTemplate {
	vt := &variantTemplate{ct: ct}
	if taint, bad := untoleratedTaint(ct.t.Taints, tolerations, v.toleratePNS); bad {
		vt.reason = fmt.Sprintf("does not tolerate taint %s", taintString(taint))
		return vt
	}
	vt.reqs = ct.reqs.Intersect(v.reqs)
	if r := ct.keyConflict(&vt.reqs); r != nil {
		vt.reason = conflictReason(ct, v, r)
		return vt
	}
	vt.member = make([]uint64, (len(ct.types)+63)/64)
	l := &vt.list
	l.maxAvail = make(vec, dims.len())
	mask := ct.ox.mask(&vt.reqs)
	// A variant without requirements of its own (the unconstrained pod)
	// admits every type the template kept: compileTemplate matched each of
	// them against the same requirements and mask.
	unconstrained := v.reqs.Len() == 0
	for i := range ct.types {
		ti := &ct.types[i]
		if !unconstrained && !ct.matches(&vt.reqs, ti, mask) {
			continue
		}
		price, _ := ti.price(mask)
		l.all = append(l.all, int32(i))
		l.allPrices = append(l.allPrices, price)
		vt.member[i/64] |= 1 << (i % 64)
		for d := range l.maxAvail {
			l.maxAvail[d] = max(l.maxAvail[d], ti.avail[d])
		}
	}
	if len(l.all) == 0 {
		vt.reason = noTypeReason(ct, &vt.reqs)
		return vt
	}
	sortByPrice(ct, l.all, l.allPrices)
	l.front, l.frontPrices = paretoFront(ct, l.all, l.allPrices)
	vt.ok = true
	return vt
}

// sortByPrice orders type indices by price, then name, so plans are stable.
func sortByPrice(ct *compiledTemplate, types []int32, prices []float64) {
	type priced struct {
		t int32
		p float64
	}
	byPrice := make([]priced, len(types))
	for i := range types {
		byPrice[i] = priced{types[i], prices[i]}
	}
	slices.SortFunc(byPrice, func(a, b priced) int {
		if a.p != b.p {
			if a.p < b.p {
				return -1
			}
			return 1
		}
		return strings.Compare(ct.types[a.t].it.Name, ct.types[b.t].it.Name)
	})
	for i, x := range byPrice {
		types[i], prices[i] = x.t, x.p
	}
}

func (vt *variantTemplate) has(typeIndex int32) bool {
	return vt.member[typeIndex/64]&(1<<(typeIndex%64)) != 0
}

// alone returns the cheapest type (index into ct.types) that holds the pod
// by itself, and its price.
func (vt *variantTemplate) alone(req vec) (int32, float64, bool) {
	if vt.aloneReq != nil && slices.Equal(vt.aloneReq, req) {
		return vt.aloneType, vt.alonePrice, vt.aloneOK
	}
	vt.aloneReq, vt.aloneOK = req, false
	for i, t := range vt.list.all {
		if fits(req, vt.ct.types[t].avail) {
			vt.aloneType, vt.alonePrice, vt.aloneOK = t, vt.list.allPrices[i], true
			break
		}
	}
	return vt.aloneType, vt.alonePrice, vt.aloneOK
}

func taintString(t corev1.Taint) string {
	if t.Value == "" {
		return fmt.Sprintf("%s:%s", t.Key, t.Effect)
	}
	return fmt.Sprintf("%s=%s:%s", t.Key, t.Value, t.Effect)
}

func conflictReason(ct *compiledTemplate, v *variant, r *Requirement) string {
	if r.Key == fieldNodeName {
		return fmt.Sprintf("is pinned by matchFields to existing nodes (%s); a new node cannot match", r.String())
	}
	if pr := v.reqs.Get(r.Key); pr != nil {
		if tr := ct.reqs.Get(r.Key); tr != nil {
			return fmt.Sprintf("requires %s but the nodepool allows %s", pr.String(), tr.String())
		}
		return fmt.Sprintf("requires %s, which nodes of this nodepool do not have", pr.String())
	}
	return fmt.Sprintf("nodepool requirement %s cannot be met", r.String())
}

// noTypeReason explains why no instance type satisfies reqs: the first
// requirement that on its own rules out every type, or the offerings.
func noTypeReason(ct *compiledTemplate, reqs *Requirements) string {
	if len(ct.types) == 0 {
		return "no instance type satisfies the nodepool's requirements"
	}
	for _, r := range reqs.Items() {
		switch r.Key {
		case offerings.LabelZone, offerings.LabelCapacityType, offerings.LabelHostname:
			continue
		}
		single := Requirements{}
		single.Add(r)
		any := false
		for i := range ct.types {
			if typeLabelsMatch(ct.typeKeys, &single, ct.types[i].it) {
				any = true
				break
			}
		}
		if !any {
			return fmt.Sprintf("no instance type matches %s", r.String())
		}
	}
	zones, cts := "any zone", "any capacity type"
	if z := reqs.Get(offerings.LabelZone); z != nil {
		zones = z.String()
	}
	if c := reqs.Get(offerings.LabelCapacityType); c != nil {
		cts = c.String()
	}
	return fmt.Sprintf("no instance type has an available offering for %s and %s", zones, cts)
}

// typeLabelsMatch reports whether instance type it satisfies reqs on every
// key instance types decide: those keys has (a type lacking such a key
// matches only where the requirement allows the key to be absent). Zone and
// capacity type are the offerings' to decide, hostname the node's.
func typeLabelsMatch(keys *typeKeys, reqs *Requirements, it *offerings.InstanceType) bool {
	for _, r := range reqs.Items() {
		switch r.Key {
		case offerings.LabelZone, offerings.LabelCapacityType, offerings.LabelHostname:
			continue
		}
		if v, ok := it.Labels[r.Key]; ok {
			if !r.Matches(v, true) {
				return false
			}
		} else if !r.AllowsAbsent() && keys.has(r.Key) {
			return false
		}
	}
	return true
}
