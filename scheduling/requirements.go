package scheduling

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Requirement is the set of values a node label may take. It is either a finite
// set (In), or everything except a finite set (NotIn, Exists), optionally
// bounded by integer limits (Gt, Lt); separately it records whether a node
// without the label is acceptable.
type Requirement struct {
	Key string
	// complement: values lists what is excluded rather than what is allowed.
	complement bool
	values     []string // sorted, unique
	// allowAbsent: a node without the label satisfies the requirement.
	allowAbsent  bool
	hasGt, hasLt bool
	gt, lt       int64
}

// NewRequirement builds a Requirement from a Kubernetes operator and values,
// checking that the values suit the operator.
func NewRequirement(key string, op corev1.NodeSelectorOperator, values ...string) (Requirement, error) {
	r := Requirement{Key: key}
	if key == "" {
		return r, fmt.Errorf("key: must not be empty")
	}
	switch op {
	case corev1.NodeSelectorOpIn:
		if len(values) == 0 {
			return r, fmt.Errorf("values: operator In needs at least one value")
		}
		r.values = sortedUnique(values)
	case corev1.NodeSelectorOpNotIn:
		if len(values) == 0 {
			return r, fmt.Errorf("values: operator NotIn needs at least one value")
		}
		r.complement, r.allowAbsent, r.values = true, true, sortedUnique(values)
	case corev1.NodeSelectorOpExists:
		if len(values) != 0 {
			return r, fmt.Errorf("values: operator Exists takes no values")
		}
		r.complement = true
	case corev1.NodeSelectorOpDoesNotExist:
		if len(values) != 0 {
			return r, fmt.Errorf("values: operator DoesNotExist takes no values")
		}
		r.allowAbsent = true
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(values) != 1 {
			return r, fmt.Errorf("values: operator %s needs exactly one integer value", op)
		}
		n, err := strconv.ParseInt(values[0], 10, 64)
		if err != nil {
			return r, fmt.Errorf("values: operator %s needs exactly one integer value, got %q", op, values[0])
		}
		r.complement = true
		if op == corev1.NodeSelectorOpGt {
			r.hasGt, r.gt = true, n
		} else {
			r.hasLt, r.lt = true, n
		}
	default:
		return r, fmt.Errorf("operator: %q is not one of In, NotIn, Exists, DoesNotExist, Gt, Lt", op)
	}
	return r, nil
}

func sortedUnique(values []string) []string {
	out := slices.Clone(values)
	slices.Sort(out)
	return slices.Compact(out)
}

// Matches reports whether a node whose label is value (present) or missing
// (!present) satisfies the requirement.
func (r *Requirement) Matches(value string, present bool) bool {
	if !present {
		return r.allowAbsent
	}
	return r.allows(value)
}

// allows reports whether value is in the set, ignoring absence.
func (r *Requirement) allows(value string) bool {
	_, listed := slices.BinarySearch(r.values, value)
	if listed == r.complement {
		return false
	}
	if r.hasGt || r.hasLt {
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || (r.hasGt && n <= r.gt) || (r.hasLt && n >= r.lt) {
			return false
		}
	}
	return true
}

// Empty reports whether no present value satisfies the requirement (a node
// could still satisfy it by lacking the label, see AllowsAbsent).
func (r *Requirement) Empty() bool {
	if !r.complement {
		for _, v := range r.values {
			if r.allows(v) {
				return false
			}
		}
		return true
	}
	if r.hasGt && r.hasLt {
		// Integers strictly between gt and lt, less the excluded ones.
		if r.lt-r.gt-1 <= 0 {
			return true
		}
		if r.lt-r.gt-1 <= int64(len(r.values)) {
			for n := r.gt + 1; n < r.lt; n++ {
				if r.allows(strconv.FormatInt(n, 10)) {
					return false
				}
			}
			return true
		}
	}
	return false
}

// AllowsAbsent reports whether a node without the label satisfies r.
func (r *Requirement) AllowsAbsent() bool { return r.allowAbsent }

// Values returns the allowed values of a finite (In) requirement, sorted, and
// false if the set is infinite.
func (r *Requirement) Values() ([]string, bool) {
	if r.complement {
		return nil, false
	}
	out := make([]string, 0, len(r.values))
	for _, v := range r.values {
		if r.allows(v) {
			out = append(out, v)
		}
	}
	return out, true
}

// Intersect returns the values allowed by both r and o (same key).
func (r *Requirement) Intersect(o *Requirement) Requirement {
	out := Requirement{Key: r.Key, allowAbsent: r.allowAbsent && o.allowAbsent}
	switch {
	case !r.complement && !o.complement:
		out.values = intersectSorted(r.values, o.values)
	case !r.complement && o.complement:
		out.values = filterSorted(r.values, func(v string) bool { return o.allows(v) })
	case r.complement && !o.complement:
		out.values = filterSorted(o.values, func(v string) bool { return r.allows(v) })
	default:
		out.complement = true
		out.values = unionSorted(r.values, o.values)
	}
	out.hasGt, out.gt = r.hasGt || o.hasGt, max(gtOr(r), gtOr(o))
	out.hasLt, out.lt = r.hasLt || o.hasLt, min(ltOr(r), ltOr(o))
	if !out.complement {
		// Bounds only filter finite sets; fold them in.
		out.values = filterSorted(out.values, out.allows)
		out.hasGt, out.hasLt = false, false
	}
	return out
}

func gtOr(r *Requirement) int64 {
	if r.hasGt {
		return r.gt
	}
	return -1 << 63
}

func ltOr(r *Requirement) int64 {
	if r.hasLt {
		return r.lt
	}
	return 1<<63 - 1
}

func intersectSorted(a, b []string) []string {
	out := make([]string, 0, min(len(a), len(b)))
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch strings.Compare(a[i], b[j]) {
		case 0:
			out = append(out, a[i])
			i++
			j++
		case -1:
			i++
		default:
			j++
		}
	}
	return out
}

func unionSorted(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	out = append(append(out, a...), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

func filterSorted(values []string, keep func(string) bool) []string {
	out := make([]string, 0, len(values))
	for _, v := range values {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// NodeSelectorRequirement renders r as a Kubernetes requirement. Bounded
// complements render as Gt/Lt (one bound) or Exists (none), which loses
// excluded values; finite sets render exactly.
func (r *Requirement) NodeSelectorRequirements() []corev1.NodeSelectorRequirement {
	switch {
	case !r.complement && len(r.values) == 0 && r.allowAbsent:
		return []corev1.NodeSelectorRequirement{{Key: r.Key, Operator: corev1.NodeSelectorOpDoesNotExist}}
	case !r.complement && len(r.values) == 0:
		// Nothing satisfies r; Exists and DoesNotExist together say so.
		return []corev1.NodeSelectorRequirement{{Key: r.Key, Operator: corev1.NodeSelectorOpExists}, {Key: r.Key, Operator: corev1.NodeSelectorOpDoesNotExist}}
	case !r.complement:
		return []corev1.NodeSelectorRequirement{{Key: r.Key, Operator: corev1.NodeSelectorOpIn, Values: slices.Clone(r.values)}}
	}
	var out []corev1.NodeSelectorRequirement
	if len(r.values) > 0 {
		out = append(out, corev1.NodeSelectorRequirement{Key: r.Key, Operator: corev1.NodeSelectorOpNotIn, Values: slices.Clone(r.values)})
	}
	if r.hasGt {
		out = append(out, corev1.NodeSelectorRequirement{Key: r.Key, Operator: corev1.NodeSelectorOpGt, Values: []string{strconv.FormatInt(r.gt, 10)}})
	}
	if r.hasLt {
		out = append(out, corev1.NodeSelectorRequirement{Key: r.Key, Operator: corev1.NodeSelectorOpLt, Values: []string{strconv.FormatInt(r.lt, 10)}})
	}
	if !r.allowAbsent && !r.hasGt && !r.hasLt {
		// NotIn alone matches nodes without the label; Gt and Lt do not.
		out = append(out, corev1.NodeSelectorRequirement{Key: r.Key, Operator: corev1.NodeSelectorOpExists})
	}
	return out
}

// String renders r for error messages, e.g. `topology.kubernetes.io/zone In [us-east-1a]`.
func (r *Requirement) String() string {
	parts := make([]string, 0, 2)
	for _, nsr := range r.NodeSelectorRequirements() {
		if len(nsr.Values) == 0 {
			parts = append(parts, fmt.Sprintf("%s %s", nsr.Key, nsr.Operator))
		} else {
			parts = append(parts, fmt.Sprintf("%s %s [%s]", nsr.Key, nsr.Operator, strings.Join(nsr.Values, ",")))
		}
	}
	if len(parts) == 0 {
		return r.Key + " (any)"
	}
	return strings.Join(parts, " and ")
}

// Requirements is a conjunction of Requirements, at most one per key, kept
// sorted by key. The zero value requires nothing.
type Requirements struct {
	items []Requirement
}

// NewRequirements builds Requirements from Kubernetes node selector
// requirements, intersecting repeated keys. Errors name the index and field.
func NewRequirements(reqs ...corev1.NodeSelectorRequirement) (Requirements, error) {
	var out Requirements
	for i, nsr := range reqs {
		r, err := NewRequirement(nsr.Key, nsr.Operator, nsr.Values...)
		if err != nil {
			return Requirements{}, fmt.Errorf("[%d].%w", i, err)
		}
		out.Add(r)
	}
	return out, nil
}

// RequirementsFromLabels requires each key to equal its value.
func RequirementsFromLabels(labels map[string]string) Requirements {
	var out Requirements
	out.items = make([]Requirement, 0, len(labels))
	for k, v := range labels {
		out.items = append(out.items, Requirement{Key: k, values: []string{v}})
	}
	sort.Slice(out.items, func(i, j int) bool { return out.items[i].Key < out.items[j].Key })
	return out
}

// Len is the number of keys constrained.
func (rs *Requirements) Len() int { return len(rs.items) }

// Items returns the requirements sorted by key. The slice must not be modified.
func (rs *Requirements) Items() []Requirement { return rs.items }

// Get returns the requirement on key, or nil if key is unconstrained.
func (rs *Requirements) Get(key string) *Requirement {
	i, found := rs.index(key)
	if !found {
		return nil
	}
	return &rs.items[i]
}

func (rs *Requirements) index(key string) (int, bool) {
	// Requirements are short; a linear scan beats binary search below ~16 keys.
	for i := range rs.items {
		switch strings.Compare(rs.items[i].Key, key) {
		case 0:
			return i, true
		case 1:
			return i, false
		}
	}
	return len(rs.items), false
}

// Add intersects r into rs.
func (rs *Requirements) Add(r Requirement) {
	i, found := rs.index(r.Key)
	if found {
		rs.items[i] = rs.items[i].Intersect(&r)
		return
	}
	rs.items = slices.Insert(rs.items, i, r)
}

// Clone returns a copy that can be changed without affecting rs.
func (rs Requirements) Clone() Requirements {
	return Requirements{items: slices.Clone(rs.items)}
}

// Intersect returns the requirements of both.
func (rs Requirements) Intersect(o Requirements) Requirements {
	out := rs.Clone()
	for _, r := range o.items {
		out.Add(r)
	}
	return out
}

// Allows reports whether a node with label key=value satisfies rs (true when
// key is unconstrained).
func (rs *Requirements) Allows(key, value string) bool {
	r := rs.Get(key)
	return r == nil || r.Matches(value, true)
}

// MatchesLabels reports whether a node with exactly these labels satisfies rs.
func (rs *Requirements) MatchesLabels(labels map[string]string) bool {
	for i := range rs.items {
		v, ok := labels[rs.items[i].Key]
		if !rs.items[i].Matches(v, ok) {
			return false
		}
	}
	return true
}

// Conflict returns the first requirement of rs that no node whose labels are
// defined by defines can satisfy, or nil. defines reports, for a key, whether a
// node will surely carry it; a requirement that needs a label no node carries
// conflicts, and one that allows only absence conflicts with a label every
// node carries.
func (rs *Requirements) Conflict(defines func(key string) bool) *Requirement {
	for i := range rs.items {
		r := &rs.items[i]
		if defines(r.Key) {
			if r.Empty() {
				return r
			}
		} else if !r.allowAbsent {
			return r
		}
	}
	return nil
}

// NodeSelectorRequirements renders rs as Kubernetes requirements.
func (rs *Requirements) NodeSelectorRequirements() []corev1.NodeSelectorRequirement {
	out := make([]corev1.NodeSelectorRequirement, 0, len(rs.items))
	for i := range rs.items {
		out = append(out, rs.items[i].NodeSelectorRequirements()...)
	}
	return out
}

// String renders rs for messages.
func (rs *Requirements) String() string {
	parts := make([]string, len(rs.items))
	for i := range rs.items {
		parts[i] = rs.items[i].String()
	}
	return strings.Join(parts, ", ")
}
