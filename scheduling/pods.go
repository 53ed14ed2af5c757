package scheduling

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
)

// podInfo is what the solver keeps about one pending pod.
type podInfo struct {
	pod       *corev1.Pod
	requests  vec
	hostPorts []hostPort
	class     *podClass
	// size orders pods for packing, largest first.
	size float64
	// shape numbers the pod's requests: pods sorted next to each other
	// with equal requests share it (see sortPods).
	shape int32
	// groups are the topology groups whose selectors pick the pod.
	groups      []*topoGroup
	groupsKnown bool
	// topo is the pod's compiled topology constraints, nil without any.
	topo *podTopology
}

// hostPort is a port a pod binds on its node; two pods binding the same one
// cannot share a node.
type hostPort struct {
	protocol corev1.Protocol
	ip       string
	port     int32
}

func (a hostPort) conflicts(b hostPort) bool {
	if a.port != b.port || a.protocol != b.protocol {
		return false
	}
	return a.ip == b.ip || a.ip == "" || b.ip == "" || a.ip == "0.0.0.0" || b.ip == "0.0.0.0"
}

func podHostPorts(pod *corev1.Pod) []hostPort {
	var out []hostPort
	for _, containers := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range containers {
			for _, p := range c.Ports {
				if p.HostPort <= 0 {
					continue
				}
				proto := p.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				out = append(out, hostPort{protocol: proto, ip: p.HostIP, port: p.HostPort})
			}
		}
	}
	return out
}

func portsConflict(used, want []hostPort) bool {
	for _, w := range want {
		for _, u := range used {
			if w.conflicts(u) {
				return true
			}
		}
	}
	return false
}

// podRequests is what the pod needs from a node: the max of init containers
// and the sum of app containers (sidecars included), plus pod overhead, plus
// one pod slot. The Kubernetes helper does the init-container arithmetic.
func podRequests(pod *corev1.Pod, dims *resourceDims) vec {
	if v, ok := plainPodRequests(pod, dims); ok {
		return v
	}
	list := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	// In name order, so that dimension order (and so reasons) do not
	// depend on map iteration.
	for _, name := range sortedNames(list) {
		dims.add(name)
	}
	return vecFromList(dims, list)
}

// plainPodRequests is podRequests for the common pod, whose requests are
// the sum of its app containers' (no init containers, no pod overhead, no
// pod-level resources) and name only the fixed dimensions: summed here
// without the helper's intermediate ResourceLists, which were a tenth of a
// solve's time. ok is false for any other pod.
func plainPodRequests(pod *corev1.Pod, dims *resourceDims) (vec, bool) {
	spec := &pod.Spec
	if len(spec.InitContainers) > 0 || spec.Overhead != nil || spec.Resources != nil {
		return nil, false
	}
	var sum [fixedDims]resource.Quantity
	for i := range spec.Containers {
		for name, q := range spec.Containers[i].Resources.Requests {
			d, ok := dims.index[name]
			if !ok || d >= fixedDims {
				return nil, false
			}
			sum[d].Add(q)
		}
	}
	v := make(vec, dims.len())
	for d := range sum {
		v[d] = quantityUnits(dims.names[d], sum[d])
	}
	v[dimPods] = 1
	return v, true
}

// vecFromList converts with a one-pod-slot request added. dims must already
// contain every resource in list.
func vecFromList(dims *resourceDims, list corev1.ResourceList) vec {
	v := dims.vecOf(list)
	v[dimPods] = 1
	return v
}

// fieldNodeName is the one node field Kubernetes lets matchFields select.
const fieldNodeName = "metadata.name"

// podClass groups pods with identical node constraints, so that their
// compatibility with each template is worked out once, not once per pod.
type podClass struct {
	tolerations []corev1.Toleration
	// variants are the requirement sets to try, strictest first: all
	// preferences, then preferences dropped lowest weight first, then each
	// further required term, then PreferNoSchedule taints tolerated.
	variants []*variant
	err      error
}

type variant struct {
	class *podClass
	reqs  Requirements
	// required is reqs without the preferred terms: what topology spread's
	// nodeAffinityPolicy Honor counts, as in Kubernetes.
	required    Requirements
	toleratePNS bool
	// preferences: reqs include preferred node affinity terms.
	preferences bool
	// perTemplate caches compileVariantTemplate by template index.
	perTemplate []*variantTemplate
}

// classKey writes a canonical encoding of the fields that decide node
// compatibility. Pods of one workload share a key; building it is cheaper
// than comparing pods field by field against every class.
func classKey(buf []byte, pod *corev1.Pod) []byte {
	spec := &pod.Spec
	buf = appendSortedMap(buf, spec.NodeSelector)
	buf = append(buf, '|')
	for _, t := range spec.Tolerations {
		buf = append(buf, t.Key...)
		buf = append(buf, ',')
		buf = append(buf, t.Operator...)
		buf = append(buf, ',')
		buf = append(buf, t.Value...)
		buf = append(buf, ',')
		buf = append(buf, t.Effect...)
		buf = append(buf, ';')
	}
	buf = append(buf, '|')
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil {
		na := a.NodeAffinity
		if r := na.RequiredDuringSchedulingIgnoredDuringExecution; r != nil {
			for _, term := range r.NodeSelectorTerms {
				buf = appendTerm(buf, term)
				buf = append(buf, '/')
			}
		}
		buf = append(buf, '|')
		for _, p := range na.PreferredDuringSchedulingIgnoredDuringExecution {
			buf = strconv.AppendInt(buf, int64(p.Weight), 10)
			buf = appendTerm(buf, p.Preference)
			buf = append(buf, '/')
		}
	}
	return buf
}

// appendSortedMap writes m as "k=v;" pairs in key order.
func appendSortedMap(buf []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		buf = append(buf, k...)
		buf = append(buf, '=')
		buf = append(buf, m[k]...)
		buf = append(buf, ';')
	}
	return buf
}

func appendTerm(buf []byte, term corev1.NodeSelectorTerm) []byte {
	for _, lists := range [][]corev1.NodeSelectorRequirement{term.MatchExpressions, term.MatchFields} {
		for _, r := range lists {
			buf = append(buf, r.Key...)
			buf = append(buf, ' ')
			buf = append(buf, r.Operator...)
			for _, v := range r.Values {
				buf = append(buf, ' ')
				buf = append(buf, v...)
			}
			buf = append(buf, ';')
		}
		buf = append(buf, '#')
	}
	return buf
}

// newPodClass derives the variants of a pod's node constraints.
func newPodClass(pod *corev1.Pod, nTemplates int) *podClass {
	c := &podClass{tolerations: pod.Spec.Tolerations}
	base := RequirementsFromLabels(pod.Spec.NodeSelector)
	var terms []corev1.NodeSelectorTerm
	var preferred []corev1.PreferredSchedulingTerm
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		if r := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution; r != nil {
			terms = r.NodeSelectorTerms
		}
		preferred = slices.Clone(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	// Heaviest preferences are kept longest; ties keep their written order.
	slices.SortStableFunc(preferred, func(a, b corev1.PreferredSchedulingTerm) int { return int(b.Weight - a.Weight) })

	termReqs := []Requirements{{}}
	if len(terms) > 0 {
		termReqs = termReqs[:0]
		for i, term := range terms {
			r, err := NewRequirements(term.MatchExpressions...)
			if err != nil {
				c.err = fmt.Errorf("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[%d].matchExpressions%w", i, err)
				return c
			}
			// Fields become requirements on a pseudo-label only existing
			// nodes carry (see nodeState.labels): a node not yet made has
			// no name to match.
			for j, f := range term.MatchFields {
				if f.Key != fieldNodeName {
					c.err = fmt.Errorf("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[%d].matchFields[%d].key: %q is not supported, only %s", i, j, f.Key, fieldNodeName)
					return c
				}
				fr, err := NewRequirement(fieldNodeName, f.Operator, f.Values...)
				if err != nil {
					c.err = fmt.Errorf("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[%d].matchFields[%d].%w", i, j, err)
					return c
				}
				r.Add(fr)
			}
			termReqs = append(termReqs, r)
		}
	}
	prefReqs := make([]Requirements, 0, len(preferred))
	for i, p := range preferred {
		r, err := NewRequirements(p.Preference.MatchExpressions...)
		if err != nil {
			c.err = fmt.Errorf("spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[%d].preference.matchExpressions%w", i, err)
			return c
		}
		prefReqs = append(prefReqs, r)
	}
	add := func(r, required Requirements, pns, prefs bool) {
		c.variants = append(c.variants, &variant{class: c, reqs: r, required: required, toleratePNS: pns, preferences: prefs, perTemplate: make([]*variantTemplate, nTemplates)})
	}
	for ti, tr := range termReqs {
		required := base.Intersect(tr)
		if ti == 0 {
			for keep := len(prefReqs); keep > 0; keep-- {
				r := required.Clone()
				for _, p := range prefReqs[:keep] {
					r = r.Intersect(p)
				}
				add(r, required, false, true)
			}
		}
		add(required, required, false, false)
	}
	// PreferNoSchedule taints are tolerated last, under each required term:
	// the pod may need a tainted pool for one term and not another.
	for _, tr := range termReqs {
		r := base.Intersect(tr)
		add(r, r, true, false)
	}
	return c
}

// podRequestList is the pod's requests as a ResourceList.
func podRequestList(pod *corev1.Pod) corev1.ResourceList {
	return resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
}
