package scheduling

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/internal/fixture"
	"github.com/fleetpack/fleetpack/offerings"
)

var testZones = []string{"test-1a", "test-1b", "test-1c"}

// typeSpec describes a synthetic instance type for tests.
type typeSpec struct {
	name     string
	cpu      string
	memory   string
	pods     int64
	price    float64 // on-demand; spot is 40% of it
	arch     string
	gpus     int64
	noSpot   bool
	overhead bool // subtract 100m cpu and 256Mi memory
}

func makeType(s typeSpec) *offerings.InstanceType {
	if s.arch == "" {
		s.arch = "amd64"
	}
	if s.pods == 0 {
		s.pods = 110
	}
	it := &offerings.InstanceType{
		Name: s.name,
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU:              resource.MustParse(s.cpu),
			corev1.ResourceMemory:           resource.MustParse(s.memory),
			corev1.ResourcePods:             *resource.NewQuantity(s.pods, resource.DecimalSI),
			corev1.ResourceEphemeralStorage: resource.MustParse("20Gi"),
		},
		Labels: map[string]string{
			offerings.LabelInstanceType:   s.name,
			offerings.LabelArch:           s.arch,
			offerings.LabelOS:             "linux",
			offerings.LabelInstanceFamily: familyOf(s.name),
		},
	}
	if s.gpus > 0 {
		it.Capacity[offerings.ResourceNvidiaGPU] = *resource.NewQuantity(s.gpus, resource.DecimalSI)
		it.Labels[offerings.LabelInstanceGPUCount] = strconv.FormatInt(s.gpus, 10)
		it.Labels[offerings.LabelInstanceGPUName] = "t4"
	}
	if s.overhead {
		it.Overhead.KubeReserved = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("256Mi")}
	}
	for _, z := range testZones {
		it.Offerings = append(it.Offerings, offerings.Offering{Zone: z, CapacityType: offerings.CapacityTypeOnDemand, Price: s.price, Available: true})
		if !s.noSpot {
			it.Offerings = append(it.Offerings, offerings.Offering{Zone: z, CapacityType: offerings.CapacityTypeSpot, Price: s.price * 0.4, Available: true})
		}
	}
	return it
}

func familyOf(name string) string {
	for i := range name {
		if name[i] == '.' {
			return name[:i]
		}
	}
	return name
}

// testCatalog is a small catalog with sizes doubling and prices linear in
// size, in two families and two architectures.
func testCatalog() []*offerings.InstanceType {
	var out []*offerings.InstanceType
	sizes := []struct {
		suffix string
		cpu    int
	}{{"large", 2}, {"xlarge", 4}, {"2xlarge", 8}, {"4xlarge", 16}, {"8xlarge", 32}}
	for _, fam := range []struct {
		name  string
		arch  string
		memGi int // per cpu
		price float64
	}{{"m5", "amd64", 4, 0.048}, {"c5", "amd64", 2, 0.0425}, {"m6g", "arm64", 4, 0.0385}} {
		for _, sz := range sizes {
			out = append(out, makeType(typeSpec{
				name: fam.name + "." + sz.suffix, cpu: strconv.Itoa(sz.cpu), memory: fmt.Sprintf("%dGi", sz.cpu*fam.memGi),
				price: fam.price * float64(sz.cpu), arch: fam.arch, overhead: true,
			}))
		}
	}
	out = append(out, makeType(typeSpec{name: "g4dn.xlarge", cpu: "4", memory: "16Gi", price: 0.526, gpus: 1, overhead: true}))
	return out
}

type podOpt func(*corev1.Pod)

func makePod(name, cpu, memory string, opts ...podOpt) *corev1.Pod {
	p := fixture.Pod("default", name, fixture.Requests(cpu, memory))
	p.Labels = map[string]string{}
	for _, o := range opts {
		o(p)
	}
	return p
}

func withNodeSelector(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		if p.Spec.NodeSelector == nil {
			p.Spec.NodeSelector = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Spec.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

func withLabels(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		for i := 0; i+1 < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

func withToleration(t corev1.Toleration) podOpt {
	return func(p *corev1.Pod) { p.Spec.Tolerations = append(p.Spec.Tolerations, t) }
}

func withRequest(name corev1.ResourceName, q string) podOpt {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Resources.Requests[name] = resource.MustParse(q) }
}

func withRequiredTerms(terms ...[]corev1.NodeSelectorRequirement) podOpt {
	return func(p *corev1.Pod) {
		ensureNodeAffinity(p)
		sel := &corev1.NodeSelector{}
		for _, t := range terms {
			sel.NodeSelectorTerms = append(sel.NodeSelectorTerms, corev1.NodeSelectorTerm{MatchExpressions: t})
		}
		p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = sel
	}
}

func withPreferred(weight int32, reqs ...corev1.NodeSelectorRequirement) podOpt {
	return func(p *corev1.Pod) {
		ensureNodeAffinity(p)
		na := p.Spec.Affinity.NodeAffinity
		na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution,
			corev1.PreferredSchedulingTerm{Weight: weight, Preference: corev1.NodeSelectorTerm{MatchExpressions: reqs}})
	}
}

func ensureNodeAffinity(p *corev1.Pod) {
	if p.Spec.Affinity == nil {
		p.Spec.Affinity = &corev1.Affinity{}
	}
	if p.Spec.Affinity.NodeAffinity == nil {
		p.Spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
}

func req(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func mustRequirements(reqs ...corev1.NodeSelectorRequirement) Requirements {
	r, err := NewRequirements(reqs...)
	if err != nil {
		panic(err)
	}
	return r
}

func defaultTemplate(types []*offerings.InstanceType) *NodeTemplate {
	return &NodeTemplate{
		NodePool:      "default",
		Requirements:  mustRequirements(req(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "spot", "on-demand")),
		InstanceTypes: types,
	}
}

func makeNode(name string, cpu, memory string, labels map[string]string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(cpu),
			corev1.ResourceMemory: resource.MustParse(memory),
			corev1.ResourcePods:   resource.MustParse("110"),
		}},
	}
}

func podNames(pods []*corev1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}

func typeNames(types []*offerings.InstanceType) []string {
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = t.Name
	}
	return out
}

// The helpers below were added for the solver's behaviour, fuzz and scenario
// tests.

// withInitContainer adds a (non-restartable) init container with the given
// requests.
func withInitContainer(cpu, memory string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{
			Name:      fmt.Sprintf("init-%d", len(p.Spec.InitContainers)),
			Resources: corev1.ResourceRequirements{Requests: resourceList(cpu, memory)},
		})
	}
}

// withSidecar adds a restartable init container (a sidecar), whose requests
// add to the app containers' for the pod's whole life.
func withSidecar(cpu, memory string) podOpt {
	return func(p *corev1.Pod) {
		always := corev1.ContainerRestartPolicyAlways
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{
			Name:          fmt.Sprintf("sidecar-%d", len(p.Spec.InitContainers)),
			RestartPolicy: &always,
			Resources:     corev1.ResourceRequirements{Requests: resourceList(cpu, memory)},
		})
	}
}

// withContainer adds another app container.
func withContainer(cpu, memory string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
			Name:      fmt.Sprintf("app-%d", len(p.Spec.Containers)),
			Resources: corev1.ResourceRequirements{Requests: resourceList(cpu, memory)},
		})
	}
}

// withOverhead sets the pod overhead (from its RuntimeClass).
func withOverhead(cpu, memory string) podOpt {
	return func(p *corev1.Pod) { p.Spec.Overhead = resourceList(cpu, memory) }
}

// withHostPort makes the app container bind a TCP host port.
func withHostPort(port int32) podOpt {
	return func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: port, HostPort: port})
	}
}

func resourceList(cpu, memory string) corev1.ResourceList {
	out := corev1.ResourceList{}
	if cpu != "" {
		out[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if memory != "" {
		out[corev1.ResourceMemory] = resource.MustParse(memory)
	}
	return out
}

func taint(key, value string, effect corev1.TaintEffect) corev1.Taint {
	return corev1.Taint{Key: key, Value: value, Effect: effect}
}

func tolerateEqual(key, value string, effect corev1.TaintEffect) corev1.Toleration {
	return corev1.Toleration{Key: key, Operator: corev1.TolerationOpEqual, Value: value, Effect: effect}
}

func tolerateExists(key string, effect corev1.TaintEffect) corev1.Toleration {
	return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect}
}

// catalogTypes picks instance types of catalog by name, in the order given.
func catalogTypes(catalog []*offerings.InstanceType, names ...string) []*offerings.InstanceType {
	var out []*offerings.InstanceType
	for _, n := range names {
		found := false
		for _, it := range catalog {
			if it.Name == n {
				out, found = append(out, it), true
				break
			}
		}
		if !found {
			panic("no instance type " + n + " in the catalog")
		}
	}
	return out
}

// withNodeTaints sets taints on a node made by makeNode.
func withNodeTaints(n *corev1.Node, taints ...corev1.Taint) *corev1.Node {
	n.Spec.Taints = append(n.Spec.Taints, taints...)
	return n
}

// The helpers below were added for the topology tests.

// spreadOpt adjusts a topology spread constraint made by withSpread.
type spreadOpt func(*corev1.TopologySpreadConstraint)

// withSpread adds a topology spread constraint on key over the pods whose
// labels include selector (given as key, value pairs in sel).
func withSpread(key string, maxSkew int32, when corev1.UnsatisfiableConstraintAction, sel map[string]string, opts ...spreadOpt) podOpt {
	return func(p *corev1.Pod) {
		c := corev1.TopologySpreadConstraint{TopologyKey: key, MaxSkew: maxSkew, WhenUnsatisfiable: when}
		if sel != nil {
			c.LabelSelector = &metav1.LabelSelector{MatchLabels: sel}
		}
		for _, o := range opts {
			o(&c)
		}
		p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, c)
	}
}

func minDomains(n int32) spreadOpt {
	return func(c *corev1.TopologySpreadConstraint) { c.MinDomains = &n }
}

func nodeAffinityPolicy(p corev1.NodeInclusionPolicy) spreadOpt {
	return func(c *corev1.TopologySpreadConstraint) { c.NodeAffinityPolicy = &p }
}

func nodeTaintsPolicy(p corev1.NodeInclusionPolicy) spreadOpt {
	return func(c *corev1.TopologySpreadConstraint) { c.NodeTaintsPolicy = &p }
}

func matchLabelKeys(keys ...string) spreadOpt {
	return func(c *corev1.TopologySpreadConstraint) { c.MatchLabelKeys = keys }
}

// termOpt adjusts a pod (anti-)affinity term made by withPodAffinity.
type termOpt func(*corev1.PodAffinityTerm)

func inNamespaces(ns ...string) termOpt {
	return func(t *corev1.PodAffinityTerm) { t.Namespaces = ns }
}

func namespaceSelector(kv ...string) termOpt {
	return func(t *corev1.PodAffinityTerm) {
		t.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{}}
		for i := 0; i+1 < len(kv); i += 2 {
			t.NamespaceSelector.MatchLabels[kv[i]] = kv[i+1]
		}
	}
}

// affinityKind says which list of a pod's affinity a term goes to.
type affinityKind int

const (
	requiredAffinity affinityKind = iota
	preferredAffinity
	requiredAntiAffinity
	preferredAntiAffinity
)

// withPodAffinity adds a pod (anti-)affinity term on key to the pods whose
// labels include sel (nil: a selector that matches nothing); preferred
// terms get weight 50.
func withPodAffinity(kind affinityKind, key string, sel map[string]string, opts ...termOpt) podOpt {
	return func(p *corev1.Pod) {
		term := corev1.PodAffinityTerm{TopologyKey: key}
		if sel != nil {
			term.LabelSelector = &metav1.LabelSelector{MatchLabels: sel}
		}
		for _, o := range opts {
			o(&term)
		}
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &corev1.Affinity{}
		}
		a := p.Spec.Affinity
		if a.PodAffinity == nil && (kind == requiredAffinity || kind == preferredAffinity) {
			a.PodAffinity = &corev1.PodAffinity{}
		}
		if a.PodAntiAffinity == nil && (kind == requiredAntiAffinity || kind == preferredAntiAffinity) {
			a.PodAntiAffinity = &corev1.PodAntiAffinity{}
		}
		weighted := corev1.WeightedPodAffinityTerm{Weight: 50, PodAffinityTerm: term}
		switch kind {
		case requiredAffinity:
			a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution = append(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, term)
		case preferredAffinity:
			a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution, weighted)
		case requiredAntiAffinity:
			a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution = append(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, term)
		case preferredAntiAffinity:
			a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution, weighted)
		}
	}
}

func withNamespace(ns string) podOpt {
	return func(p *corev1.Pod) { p.Namespace = ns }
}

// without marks every offering of the named types in zone unavailable.
func without(catalog []*offerings.InstanceType, zone string, names ...string) {
	for _, it := range catalog {
		if len(names) > 0 && !slices.Contains(names, it.Name) {
			continue
		}
		for i := range it.Offerings {
			if it.Offerings[i].Zone == zone {
				it.Offerings[i].Available = false
			}
		}
	}
}
