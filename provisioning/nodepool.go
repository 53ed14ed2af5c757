package provisioning

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning/disruption"
	"github.com/fleetpack/fleetpack/scheduling"
)

// APIVersion and Kind identify a NodePool document. KarpenterAPIVersion
// documents (Karpenter's own NodePool manifests) are read as they are.
const (
	APIVersion          = "fleetpack.dev/v1"
	KarpenterAPIVersion = "karpenter.sh/v1"
	Kind                = "NodePool"
)

// DefaultConsolidateAfter is how long a launched node must hold no
// non-daemonset pods before it is removed, when a NodePool does not say.
// Karpenter defaults to 0s; fleetpack waits a little so a node whose pods are
// being rolled is not removed between the old pod leaving and the new one
// arriving.
const DefaultConsolidateAfter = 30 * time.Second

// NodePool says what nodes fleetpack may launch: which instance types, zones
// and capacity types (requirements), what labels and taints the nodes carry,
// how much capacity the pool may hold in all (limits), which pool wins when
// several could serve a pod (weight), and when an empty node is returned
// (disruption). Its shape follows Karpenter's karpenter.sh/v1 NodePool.
type NodePool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NodePoolSpec `json:"spec"`
}

// NodePoolSpec is the desired behaviour of a NodePool.
type NodePoolSpec struct {
	// Template describes the nodes the pool launches.
	Template NodeClaimTemplate `json:"template"`
	// Limits caps the total capacity of the pool's nodes, launched and
	// in flight: cpu, memory, and "nodes" for the node count. A missing
	// resource is unlimited.
	Limits corev1.ResourceList `json:"limits,omitempty"`
	// Weight orders pools (1..100, higher first); unset is 0, tried last.
	Weight *int32 `json:"weight,omitempty"`
	// Disruption says when nodes are removed.
	Disruption Disruption `json:"disruption,omitempty"`
}

// NodeClaimTemplate is the template of the pool's nodes.
type NodeClaimTemplate struct {
	Metadata TemplateMetadata      `json:"metadata,omitempty"`
	Spec     NodeClaimTemplateSpec `json:"spec"`
}

// TemplateMetadata holds the labels and annotations every node carries.
type TemplateMetadata struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// NodeClaimTemplateSpec constrains and configures the pool's nodes.
type NodeClaimTemplateSpec struct {
	// Requirements constrain node labels: well-known ones such as
	// karpenter.sh/capacity-type, node.kubernetes.io/instance-type,
	// topology.kubernetes.io/zone, kubernetes.io/arch and the
	// karpenter.k8s.aws/instance-* labels, and custom ones (a single-valued
	// In requirement on a custom key becomes a node label).
	Requirements []corev1.NodeSelectorRequirement `json:"requirements,omitempty"`
	// Taints are placed on every node; pods must tolerate them.
	Taints []corev1.Taint `json:"taints,omitempty"`
	// StartupTaints are placed at launch and removed by an agent on the node
	// once it is ready; pods need not tolerate them.
	StartupTaints []corev1.Taint `json:"startupTaints,omitempty"`
	// Kubelet configures the kubelet of every node.
	Kubelet *KubeletConfiguration `json:"kubelet,omitempty"`
	// NodeCostSpec (nodecosts.go): the node's volumes, public address,
	// per-node cost and burstable policy, which make up its bill.
	NodeCostSpec `json:",inline"`
	// ExpireAfter replaces nodes this old ("720h", or "Never", the default).
	ExpireAfter *NillableDuration `json:"expireAfter,omitempty"`
	// NodeClassRef is read for Karpenter manifests and ignored: fleetpack
	// launches from the launch templates its cloud provider is given (see
	// NodePool.Ignored).
	NodeClassRef *NodeClassReference `json:"nodeClassRef,omitempty"`
}

// NodeClassReference is Karpenter's reference to an EC2NodeClass.
type NodeClassReference struct {
	Group string `json:"group,omitempty"`
	Kind  string `json:"kind,omitempty"`
	Name  string `json:"name"`
}

// NillableDuration is a duration or "Never", as Karpenter writes them.
type NillableDuration struct {
	Duration time.Duration
	Never    bool
}

// UnmarshalJSON reads "Never" or a Go duration string.
func (d *NillableDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string or \"Never\": %w", err)
	}
	if s == "Never" {
		*d = NillableDuration{Never: true}
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration or \"Never\": %w", err)
	}
	*d = NillableDuration{Duration: v}
	return nil
}

// MarshalJSON writes "Never" or the duration.
func (d NillableDuration) MarshalJSON() ([]byte, error) {
	if d.Never {
		return json.Marshal("Never")
	}
	return json.Marshal(d.Duration.String())
}

// KubeletConfiguration is the part of the kubelet's configuration that changes
// what a node can hold.
type KubeletConfiguration struct {
	// MaxPods caps the pods per node below the instance type's own limit
	// (for example 110).
	MaxPods *int32 `json:"maxPods,omitempty"`
}

// Disruption says when the pool's nodes are removed or replaced.
type Disruption struct {
	// ConsolidateAfter is how long a node's pods must not have changed
	// before it is removed when empty or consolidated ("Never" turns that
	// off). Unset means DefaultConsolidateAfter.
	ConsolidateAfter *NillableDuration `json:"consolidateAfter,omitempty"`
	// ConsolidationPolicy is WhenEmpty, WhenEmptyOrUnderutilized (the
	// default) or Balanced (see package disruption).
	ConsolidationPolicy disruption.Policy `json:"consolidationPolicy,omitempty"`
	// Budgets cap the pool's nodes disrupting at once; none means 10%.
	Budgets []disruption.Budget `json:"budgets,omitempty"`
	// MinSavingPerHour is the least a consolidation move must save, in
	// USD per hour (fleetpack's; not in Karpenter).
	MinSavingPerHour *float64 `json:"minSavingPerHour,omitempty"`
	// BalancedK is the Balanced policy's k (default 2; fleetpack's).
	BalancedK *float64 `json:"balancedK,omitempty"`
	// SpotToSpotMinTypes is how many cheaper instance types a Spot node's
	// single-node replacement by Spot needs (default 15; fleetpack's).
	SpotToSpotMinTypes *int32 `json:"spotToSpotMinTypes,omitempty"`
}

// ConsolidateAfter returns the pool's consolidation grace period; a very
// long one for "Never".
func (np *NodePool) ConsolidateAfter() time.Duration {
	if d := np.Spec.Disruption.ConsolidateAfter; d != nil {
		if d.Never {
			return math.MaxInt64
		}
		return d.Duration
	}
	return DefaultConsolidateAfter
}

// Ignored lists the fields of the pool fleetpack reads but does not act
// on, each with why, for a Karpenter user to see.
func (np *NodePool) Ignored() []string {
	var out []string
	if ref := np.Spec.Template.Spec.NodeClassRef; ref != nil {
		out = append(out, fmt.Sprintf("nodepool %q: spec.template.spec.nodeClassRef (%s %s): ignored: fleetpack launches from the launch templates given to its cloud provider", np.Name, ref.Kind, ref.Name))
	}
	return out
}

// TemplateHash hashes what of the template is not a requirement (labels,
// annotations, taints, startup taints, kubelet): a node launched under
// another hash has drifted. Requirements are checked against the node's
// labels instead, so widening them drifts nothing.
func (np *NodePool) TemplateHash() string {
	t := np.Spec.Template
	b, _ := json.Marshal([]any{t.Metadata, t.Spec.Taints, t.Spec.StartupTaints, t.Spec.Kubelet})
	h := fnv.New64a()
	h.Write(b)
	return strconv.FormatUint(h.Sum64(), 36)
}

// DisruptionPool is the pool's disruption settings for package disruption.
func (np *NodePool) DisruptionPool() (disruption.Pool, error) {
	reqs, err := np.Requirements()
	if err != nil {
		return disruption.Pool{}, err
	}
	d := np.Spec.Disruption
	p := disruption.Pool{
		Name: np.Name, Policy: d.ConsolidationPolicy, ConsolidateAfter: np.ConsolidateAfter(), Budgets: d.Budgets,
		TemplateHash: np.TemplateHash(), Requirements: reqs, Labels: np.Spec.Template.Metadata.Labels,
		Taints: np.Spec.Template.Spec.Taints, StartupTaints: np.Spec.Template.Spec.StartupTaints,
	}
	if e := np.Spec.Template.Spec.ExpireAfter; e != nil && !e.Never {
		p.ExpireAfter = e.Duration
	}
	if d.MinSavingPerHour != nil {
		p.MinSaving = *d.MinSavingPerHour
	}
	if d.BalancedK != nil {
		p.BalanceK = *d.BalancedK
	}
	if d.SpotToSpotMinTypes != nil {
		p.SpotToSpotMinTypes = int(*d.SpotToSpotMinTypes)
	}
	return p, nil
}

// WeightValue returns the pool's weight, 0 if unset.
func (np *NodePool) WeightValue() int32 {
	if np.Spec.Weight == nil {
		return 0
	}
	return *np.Spec.Weight
}

// ParseNodePool decodes one NodePool from YAML or JSON, rejecting unknown
// fields and documents of another apiVersion or kind, and validates it.
func ParseNodePool(data []byte) (*NodePool, error) {
	np := &NodePool{}
	if err := yaml.UnmarshalStrict(data, np); err != nil {
		return nil, fmt.Errorf("decoding NodePool: %w", err)
	}
	if np.APIVersion != APIVersion && np.APIVersion != KarpenterAPIVersion {
		return nil, fmt.Errorf("nodepool %q: apiVersion: must be %q or %q, got %q", np.Name, APIVersion, KarpenterAPIVersion, np.APIVersion)
	}
	if np.Kind != Kind {
		return nil, fmt.Errorf("nodepool %q: kind: must be %q, got %q", np.Name, Kind, np.Kind)
	}
	if err := np.Validate(); err != nil {
		return nil, err
	}
	return np, nil
}

// ParseNodePools decodes a stream of YAML documents separated by "---" lines,
// skipping empty documents.
func ParseNodePools(data []byte) ([]*NodePool, error) {
	var out []*NodePool
	for i, doc := range splitYAMLDocuments(data) {
		if len(bytes.TrimSpace(stripYAMLComments(doc))) == 0 {
			continue
		}
		np, err := ParseNodePool(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		out = append(out, np)
	}
	return out, nil
}

func splitYAMLDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if trimmed := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(trimmed, []byte("---")) {
			docs = append(docs, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(docs, cur)
}

func stripYAMLComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.SplitAfter(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '#' {
			continue
		}
		out = append(out, line...)
	}
	return out
}

// wellKnownNodeLabel reports whether key is one a NodePool may constrain inside the
// restricted kubernetes.io, k8s.io, karpenter.sh and karpenter.k8s.aws
// domains: every one of them is set on the node by fleetpack itself.
func wellKnownNodeLabel(key string) bool {
	switch key {
	case offerings.LabelInstanceType,
		offerings.LabelArch,
		offerings.LabelOS,
		offerings.LabelZone,
		offerings.LabelRegion,
		offerings.LabelCapacityType,
		offerings.LabelInstanceFamily,
		offerings.LabelInstanceCategory,
		offerings.LabelInstanceGeneration,
		offerings.LabelInstanceSize,
		offerings.LabelInstanceCPU,
		offerings.LabelInstanceMemory,
		offerings.LabelInstanceGPUName,
		offerings.LabelInstanceGPUCount,
		corev1.LabelWindowsBuild:
		return true
	}
	return false
}

// restrictedLabelDomains may not be used in NodePool labels or requirements
// except for the well-known labels above and node-restriction.kubernetes.io.
var restrictedLabelDomains = []string{"kubernetes.io", "k8s.io", "karpenter.sh", "karpenter.k8s.aws"}

// restrictedLabel reports why key may not appear in a NodePool's labels or
// requirements, or "" if it may.
func restrictedLabel(key string) string {
	switch key {
	case offerings.LabelHostname:
		return "is set per node and cannot be a NodePool requirement or label"
	case offerings.LabelNodePool:
		return "is set by fleetpack to the NodePool's name"
	}
	if wellKnownNodeLabel(key) {
		return ""
	}
	domain, _, found := strings.Cut(key, "/")
	if !found {
		return ""
	}
	if domain == "node-restriction.kubernetes.io" || strings.HasSuffix(domain, ".node-restriction.kubernetes.io") {
		return ""
	}
	for _, d := range restrictedLabelDomains {
		if domain == d || strings.HasSuffix(domain, "."+d) {
			return fmt.Sprintf("domain %q is restricted", d)
		}
	}
	return ""
}

func validCapacityType(ct string) bool {
	return ct == offerings.CapacityTypeSpot || ct == offerings.CapacityTypeOnDemand
}

// Validate checks the NodePool and returns every problem found, each naming
// the NodePool and the field path.
func (np *NodePool) Validate() error {
	var errs []error
	add := func(p *field.Path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("nodepool %q: %s: %s", np.Name, p.String(), fmt.Sprintf(format, args...)))
	}
	if np.Name == "" {
		add(field.NewPath("metadata", "name"), "must not be empty")
	} else if msgs := validation.IsDNS1123Subdomain(np.Name); len(msgs) > 0 {
		add(field.NewPath("metadata", "name"), "%s", strings.Join(msgs, "; "))
	} else if msgs := validation.IsValidLabelValue(np.Name); len(msgs) > 0 {
		// The name becomes the karpenter.sh/nodepool label value.
		add(field.NewPath("metadata", "name"), "%s", strings.Join(msgs, "; "))
	}
	spec := field.NewPath("spec")
	tmpl := spec.Child("template")

	labelsPath := tmpl.Child("metadata", "labels")
	for k, v := range np.Spec.Template.Metadata.Labels {
		p := labelsPath.Key(k)
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			add(p, "invalid key: %s", strings.Join(msgs, "; "))
			continue
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			add(p, "invalid value %q: %s", v, strings.Join(msgs, "; "))
		}
		if why := restrictedLabel(k); why != "" {
			add(p, "label %q is restricted: %s", k, why)
		}
	}

	reqsPath := tmpl.Child("spec", "requirements")
	var all scheduling.Requirements
	reqsOK := true
	for i, nsr := range np.Spec.Template.Spec.Requirements {
		p := reqsPath.Index(i)
		r, err := scheduling.NewRequirement(nsr.Key, nsr.Operator, nsr.Values...)
		if err != nil {
			add(p, "%s", err)
			reqsOK = false
			continue
		}
		if msgs := validation.IsQualifiedName(nsr.Key); len(msgs) > 0 {
			add(p.Child("key"), "%s", strings.Join(msgs, "; "))
			reqsOK = false
			continue
		}
		if why := restrictedLabel(nsr.Key); why != "" {
			add(p.Child("key"), "label %q is restricted: %s", nsr.Key, why)
		}
		if nsr.Operator == corev1.NodeSelectorOpIn || nsr.Operator == corev1.NodeSelectorOpNotIn {
			for j, v := range nsr.Values {
				if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
					add(p.Child("values").Index(j), "invalid value %q: %s", v, strings.Join(msgs, "; "))
				}
			}
		}
		if nsr.Key == offerings.LabelCapacityType && nsr.Operator == corev1.NodeSelectorOpIn {
			for j, v := range nsr.Values {
				if !validCapacityType(v) {
					add(p.Child("values").Index(j), "unknown capacity type %q, must be %q or %q", v, offerings.CapacityTypeSpot, offerings.CapacityTypeOnDemand)
				}
			}
		}
		all.Add(r)
	}
	if reqsOK {
		for _, r := range all.Items() {
			if vals, finite := r.Values(); finite && len(vals) == 0 && !r.AllowsAbsent() {
				add(reqsPath, "requirements on %q allow no value", r.Key)
			}
		}
		for k, v := range np.Spec.Template.Metadata.Labels {
			if r := all.Get(k); r != nil && !r.Matches(v, true) {
				add(labelsPath.Key(k), "label %s=%s contradicts requirement %s", k, v, r.String())
			}
		}
		if r := all.Get(offerings.LabelCapacityType); r != nil && !r.Matches(offerings.CapacityTypeSpot, true) && !r.Matches(offerings.CapacityTypeOnDemand, true) {
			add(reqsPath, "requirements on %q allow neither %q nor %q", offerings.LabelCapacityType, offerings.CapacityTypeSpot, offerings.CapacityTypeOnDemand)
		}
	}

	validateTaints(tmpl.Child("spec", "taints"), np.Spec.Template.Spec.Taints, add)
	validateTaints(tmpl.Child("spec", "startupTaints"), np.Spec.Template.Spec.StartupTaints, add)

	if k := np.Spec.Template.Spec.Kubelet; k != nil && k.MaxPods != nil && *k.MaxPods < 1 {
		add(tmpl.Child("spec", "kubelet", "maxPods"), "must be at least 1, got %d", *k.MaxPods)
	}
	for name, q := range np.Spec.Limits {
		if q.Sign() < 0 {
			add(spec.Child("limits").Key(string(name)), "must not be negative, got %s", q.String())
		}
	}
	if w := np.Spec.Weight; w != nil && (*w < 1 || *w > 100) {
		add(spec.Child("weight"), "must be between 1 and 100, got %d", *w)
	}
	np.Spec.Template.Spec.NodeCostSpec.validate(tmpl.Child("spec"), add)
	validateDisruption(np, spec, add)
	return errors.Join(errs...)
}

func validateDisruption(np *NodePool, spec *field.Path, add func(*field.Path, string, ...any)) {
	d, p := np.Spec.Disruption, spec.Child("disruption")
	if c := d.ConsolidateAfter; c != nil && c.Duration < 0 {
		add(p.Child("consolidateAfter"), "must not be negative, got %s", c.Duration)
	}
	if e := np.Spec.Template.Spec.ExpireAfter; e != nil && e.Duration < 0 {
		add(spec.Child("template", "spec", "expireAfter"), "must not be negative, got %s", e.Duration)
	}
	switch d.ConsolidationPolicy {
	case "", disruption.WhenEmpty, disruption.WhenEmptyOrUnderutilized, disruption.Balanced:
	default:
		add(p.Child("consolidationPolicy"), "must be %s, %s or %s, got %q", disruption.WhenEmpty, disruption.WhenEmptyOrUnderutilized, disruption.Balanced, d.ConsolidationPolicy)
	}
	for i, b := range d.Budgets {
		if err := b.Validate(); err != nil {
			add(p.Child("budgets").Index(i), "%s", err)
		}
	}
	if v := d.MinSavingPerHour; v != nil && *v < 0 {
		add(p.Child("minSavingPerHour"), "must not be negative, got %v", *v)
	}
	if v := d.BalancedK; v != nil && *v <= 0 {
		add(p.Child("balancedK"), "must be positive, got %v", *v)
	}
	if v := d.SpotToSpotMinTypes; v != nil && *v < 1 {
		add(p.Child("spotToSpotMinTypes"), "must be at least 1, got %d", *v)
	}
}

func validateTaints(p *field.Path, taints []corev1.Taint, add func(*field.Path, string, ...any)) {
	seen := map[string]bool{}
	for i, t := range taints {
		tp := p.Index(i)
		if msgs := validation.IsQualifiedName(t.Key); len(msgs) > 0 {
			add(tp.Child("key"), "%s", strings.Join(msgs, "; "))
		}
		if t.Value != "" {
			if msgs := validation.IsValidLabelValue(t.Value); len(msgs) > 0 {
				add(tp.Child("value"), "invalid value %q: %s", t.Value, strings.Join(msgs, "; "))
			}
		}
		switch t.Effect {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			add(tp.Child("effect"), "%q is not one of NoSchedule, PreferNoSchedule, NoExecute", t.Effect)
		}
		id := t.Key + ":" + string(t.Effect)
		if seen[id] {
			add(tp, "duplicate taint %s", id)
		}
		seen[id] = true
	}
}

// Requirements returns what the pool's nodes satisfy: its spec
// requirements and its labels, its own name under karpenter.sh/nodepool,
// and, when capacity type is unconstrained, capacity type on-demand
// (Karpenter's default: Spot must be asked for). The folding is the
// solver's own (scheduling.NodeTemplate.NodeRequirements), so what drift
// checks is what the solver launched against.
func (np *NodePool) Requirements() (scheduling.Requirements, error) {
	t, err := np.bareTemplate()
	if err != nil {
		return scheduling.Requirements{}, err
	}
	return t.NodeRequirements(), nil
}

// bareTemplate is the pool as a solver template without instance types or
// limits: what the NodePool says, before the solver folds it.
func (np *NodePool) bareTemplate() (*scheduling.NodeTemplate, error) {
	reqs, err := scheduling.NewRequirements(np.Spec.Template.Spec.Requirements...)
	if err != nil {
		return nil, fmt.Errorf("nodepool %q: spec.template.spec.requirements%w", np.Name, err)
	}
	if reqs.Get(offerings.LabelCapacityType) == nil {
		onDemand, _ := scheduling.NewRequirement(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, offerings.CapacityTypeOnDemand)
		reqs.Add(onDemand)
	}
	return &scheduling.NodeTemplate{
		NodePool:      np.Name,
		Weight:        np.WeightValue(),
		Requirements:  reqs,
		Labels:        maps.Clone(np.Spec.Template.Metadata.Labels),
		Taints:        cloneTaints(np.Spec.Template.Spec.Taints),
		StartupTaints: cloneTaints(np.Spec.Template.Spec.StartupTaints),
		NodeCosts:     np.Spec.Template.Spec.NodeCosts(),
		Burstable:     np.Spec.Template.Spec.BurstablePolicy,
	}, nil
}

// Template builds the solver's node template for the pool. types is the
// catalog (with current availability); used is the capacity the pool's nodes
// already hold, launched and in flight, with the node count under
// scheduling.ResourceNodes. The template keeps the instance types the
// solver admits for it (scheduling.NodeTemplate.AdmittedTypes), with
// max-pods capped by spec.template.spec.kubelet.maxPods, and limits reduced
// by used (never below zero).
func (np *NodePool) Template(types []*offerings.InstanceType, used corev1.ResourceList) (*scheduling.NodeTemplate, error) {
	if err := np.Validate(); err != nil {
		return nil, err
	}
	t, err := np.bareTemplate()
	if err != nil {
		return nil, err
	}
	if len(np.Spec.Limits) > 0 {
		t.Limits = make(corev1.ResourceList, len(np.Spec.Limits))
		for name, q := range np.Spec.Limits {
			left := q.DeepCopy()
			if u, ok := used[name]; ok {
				left.Sub(u)
			}
			if left.Sign() < 0 {
				left = *resource.NewQuantity(0, left.Format)
			}
			t.Limits[name] = left
		}
	}
	t.InstanceTypes = t.AdmittedTypes(types)
	if k := np.Spec.Template.Spec.Kubelet; k != nil && k.MaxPods != nil && *k.MaxPods > 0 {
		t.InstanceTypes = offerings.WithMaxPods(t.InstanceTypes, *k.MaxPods)
	}
	return t, nil
}

func cloneTaints(in []corev1.Taint) []corev1.Taint {
	if in == nil {
		return nil
	}
	out := make([]corev1.Taint, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}
