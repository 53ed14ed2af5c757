package scheduling

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
)

const (
	opIn           = corev1.NodeSelectorOpIn
	opNotIn        = corev1.NodeSelectorOpNotIn
	opExists       = corev1.NodeSelectorOpExists
	opDoesNotExist = corev1.NodeSelectorOpDoesNotExist
	opGt           = corev1.NodeSelectorOpGt
	opLt           = corev1.NodeSelectorOpLt
)

func mustRequirement(key string, op corev1.NodeSelectorOperator, values ...string) Requirement {
	r, err := NewRequirement(key, op, values...)
	if err != nil {
		panic(err)
	}
	return r
}

// absent stands for "the node does not have the label" in match tables.
const absent = "<absent>"

func matches(r *Requirement, v string) bool {
	if v == absent {
		return r.Matches("", false)
	}
	return r.Matches(v, true)
}

func TestNewRequirementErrors(t *testing.T) {
	for _, tc := range []struct {
		key    string
		op     corev1.NodeSelectorOperator
		values []string
		want   string
	}{
		{"", opIn, []string{"a"}, "key: must not be empty"},
		{"k", opIn, nil, "values: operator In needs at least one value"},
		{"k", opNotIn, nil, "values: operator NotIn needs at least one value"},
		{"k", opExists, []string{"a"}, "values: operator Exists takes no values"},
		{"k", opDoesNotExist, []string{"a"}, "values: operator DoesNotExist takes no values"},
		{"k", opGt, nil, "values: operator Gt needs exactly one integer value"},
		{"k", opLt, []string{"1", "2"}, "values: operator Lt needs exactly one integer value"},
		{"k", opGt, []string{"four"}, `values: operator Gt needs exactly one integer value, got "four"`},
		{"k", "Near", []string{"a"}, `operator: "Near" is not one of In, NotIn, Exists, DoesNotExist, Gt, Lt`},
	} {
		_, err := NewRequirement(tc.key, tc.op, tc.values...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("NewRequirement(%q, %s, %v): error %v, want %q", tc.key, tc.op, tc.values, err, tc.want)
		}
	}
	_, err := NewRequirements(req("a", opIn, "x"), req("b", opIn))
	if want := "[1].values: operator In needs at least one value"; err == nil || err.Error() != want {
		t.Errorf("NewRequirements: error %v, want %q (naming the index)", err, want)
	}
}

func TestRequirementMatches(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reqs    []corev1.NodeSelectorRequirement // intersected
		allowed []string
		denied  []string
		empty   bool
		values  []string // for finite sets; nil when infinite
	}{
		{"In", []corev1.NodeSelectorRequirement{req("k", opIn, "b", "a", "a")}, []string{"a", "b"}, []string{"c", "", absent}, false, []string{"a", "b"}},
		{"NotIn", []corev1.NodeSelectorRequirement{req("k", opNotIn, "a")}, []string{"b", "", absent}, []string{"a"}, false, nil},
		{"Exists", []corev1.NodeSelectorRequirement{req("k", opExists)}, []string{"a", ""}, []string{absent}, false, nil},
		{"DoesNotExist", []corev1.NodeSelectorRequirement{req("k", opDoesNotExist)}, []string{absent}, []string{"a", ""}, true, []string{}},
		{"Gt", []corev1.NodeSelectorRequirement{req("k", opGt, "4")}, []string{"5", "100"}, []string{"4", "-1", "x", absent}, false, nil},
		{"Lt", []corev1.NodeSelectorRequirement{req("k", opLt, "4")}, []string{"3", "-7"}, []string{"4", "5", "x", absent}, false, nil},
		{"In and In", []corev1.NodeSelectorRequirement{req("k", opIn, "a", "b"), req("k", opIn, "b", "c")}, []string{"b"}, []string{"a", "c", absent}, false, []string{"b"}},
		{"In and NotIn", []corev1.NodeSelectorRequirement{req("k", opIn, "a", "b"), req("k", opNotIn, "a")}, []string{"b"}, []string{"a", absent}, false, []string{"b"}},
		{"NotIn and In", []corev1.NodeSelectorRequirement{req("k", opNotIn, "a"), req("k", opIn, "a", "b")}, []string{"b"}, []string{"a", absent}, false, []string{"b"}},
		{"NotIn and NotIn", []corev1.NodeSelectorRequirement{req("k", opNotIn, "a"), req("k", opNotIn, "b")}, []string{"c", absent}, []string{"a", "b"}, false, nil},
		{"NotIn and Exists", []corev1.NodeSelectorRequirement{req("k", opNotIn, "a"), req("k", opExists)}, []string{"c"}, []string{"a", absent}, false, nil},
		{"Exists and DoesNotExist", []corev1.NodeSelectorRequirement{req("k", opExists), req("k", opDoesNotExist)}, nil, []string{"a", absent}, true, []string{}},
		{"In and DoesNotExist", []corev1.NodeSelectorRequirement{req("k", opIn, "a"), req("k", opDoesNotExist)}, nil, []string{"a", absent}, true, []string{}},
		{"NotIn and DoesNotExist", []corev1.NodeSelectorRequirement{req("k", opNotIn, "a"), req("k", opDoesNotExist)}, []string{absent}, []string{"a", "b"}, true, []string{}},
		{"In disjoint", []corev1.NodeSelectorRequirement{req("k", opIn, "a"), req("k", opIn, "b")}, nil, []string{"a", "b", absent}, true, []string{}},
		{"Gt and Lt", []corev1.NodeSelectorRequirement{req("k", opGt, "2"), req("k", opLt, "5")}, []string{"3", "4"}, []string{"2", "5", absent}, false, nil},
		{"Gt and Lt with no integer between", []corev1.NodeSelectorRequirement{req("k", opGt, "4"), req("k", opLt, "5")}, nil, []string{"4", "5"}, true, nil},
		{"Gt and Lt less NotIn", []corev1.NodeSelectorRequirement{req("k", opGt, "2"), req("k", opLt, "5"), req("k", opNotIn, "3", "4")}, nil, []string{"3", "4"}, true, nil},
		{"Gt and Lt less part of NotIn", []corev1.NodeSelectorRequirement{req("k", opGt, "2"), req("k", opLt, "5"), req("k", opNotIn, "3")}, []string{"4"}, []string{"3"}, false, nil},
		{"two Gt keep the larger", []corev1.NodeSelectorRequirement{req("k", opGt, "2"), req("k", opGt, "8")}, []string{"9"}, []string{"8", "3"}, false, nil},
		{"In and Gt", []corev1.NodeSelectorRequirement{req("k", opIn, "1", "5", "9", "x"), req("k", opGt, "3")}, []string{"5", "9"}, []string{"1", "x", "7"}, false, []string{"5", "9"}},
		{"Lt and In", []corev1.NodeSelectorRequirement{req("k", opLt, "6"), req("k", opIn, "1", "5", "9")}, []string{"1", "5"}, []string{"9"}, false, []string{"1", "5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := mustRequirements(tc.reqs...)
			if rs.Len() != 1 {
				t.Fatalf("Len() = %d, want 1: one key", rs.Len())
			}
			r := rs.Get("k")
			for _, v := range tc.allowed {
				if !matches(r, v) {
					t.Errorf("%s does not match %q", r.String(), v)
				}
			}
			for _, v := range tc.denied {
				if matches(r, v) {
					t.Errorf("%s matches %q", r.String(), v)
				}
			}
			if r.Empty() != tc.empty {
				t.Errorf("%s: Empty() = %v, want %v", r.String(), r.Empty(), tc.empty)
			}
			values, finite := r.Values()
			if finite != (tc.values != nil) || (finite && !slices.Equal(values, tc.values)) {
				t.Errorf("%s: Values() = %v, %v; want %v", r.String(), values, finite, tc.values)
			}
			if r.AllowsAbsent() != matches(r, absent) {
				t.Errorf("%s: AllowsAbsent() disagrees with Matches", r.String())
			}
			// Intersecting in the other order gives the same set.
			rev := slices.Clone(tc.reqs)
			slices.Reverse(rev)
			rr := mustRequirements(rev...)
			for _, v := range slices.Concat(tc.allowed, tc.denied) {
				if matches(rr.Get("k"), v) != matches(r, v) {
					t.Errorf("intersection not commutative at %q: %s vs %s", v, rr.String(), rs.String())
				}
			}
			// Rendering back to Kubernetes requirements and parsing again
			// keeps the set, except that a bounded range rendered as Gt and
			// Lt may lose excluded values (documented).
			back, err := NewRequirements(r.NodeSelectorRequirements()...)
			if err != nil {
				t.Fatalf("NodeSelectorRequirements() %v do not parse: %v", r.NodeSelectorRequirements(), err)
			}
			for _, v := range slices.Concat(tc.allowed, tc.denied) {
				if back.Len() == 0 {
					if !matches(r, v) && v != absent {
						t.Errorf("%s rendered as nothing, but excludes %q", r.String(), v)
					}
					continue
				}
				if got := matches(back.Get("k"), v); got != matches(r, v) {
					t.Errorf("%s rendered as %v, which matches %q: %v", r.String(), r.NodeSelectorRequirements(), v, got)
				}
			}
		})
	}
}

func TestRequirementString(t *testing.T) {
	for _, tc := range []struct {
		reqs []corev1.NodeSelectorRequirement
		want string
	}{
		{[]corev1.NodeSelectorRequirement{req(offerings.LabelZone, opIn, "b", "a")}, "topology.kubernetes.io/zone In [a,b]"},
		{[]corev1.NodeSelectorRequirement{req("k", opNotIn, "a")}, "k NotIn [a]"},
		{[]corev1.NodeSelectorRequirement{req("k", opExists)}, "k Exists"},
		{[]corev1.NodeSelectorRequirement{req("k", opDoesNotExist)}, "k DoesNotExist"},
		{[]corev1.NodeSelectorRequirement{req("k", opGt, "1"), req("k", opLt, "9")}, "k Gt [1] and k Lt [9]"},
	} {
		rs := mustRequirements(tc.reqs...)
		if got := rs.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestRequirementsSet(t *testing.T) {
	rs := mustRequirements(
		req(offerings.LabelZone, opIn, "test-1a", "test-1b"),
		req(offerings.LabelArch, opIn, "amd64"),
		req(offerings.LabelZone, opNotIn, "test-1b"),
	)
	keys := []string{}
	for _, r := range rs.Items() {
		keys = append(keys, r.Key)
	}
	if !slices.Equal(keys, []string{offerings.LabelArch, offerings.LabelZone}) {
		t.Errorf("Items() keys = %v, want sorted and merged", keys)
	}
	if !rs.Allows(offerings.LabelZone, "test-1a") || rs.Allows(offerings.LabelZone, "test-1b") {
		t.Errorf("repeated key not intersected: %s", rs.String())
	}
	if !rs.Allows("unconstrained", "anything") {
		t.Error("Allows on an unconstrained key must be true")
	}
	if rs.Get("unconstrained") != nil {
		t.Error("Get on an unconstrained key must be nil")
	}

	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{offerings.LabelZone: "test-1a", offerings.LabelArch: "amd64", "extra": "x"}, true},
		{map[string]string{offerings.LabelZone: "test-1a"}, false},
		{map[string]string{offerings.LabelZone: "test-1b", offerings.LabelArch: "amd64"}, false},
	} {
		if got := rs.MatchesLabels(tc.labels); got != tc.want {
			t.Errorf("MatchesLabels(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}

	// Intersect and Clone leave their receiver alone.
	before := rs.String()
	narrowed := rs.Intersect(mustRequirements(req(offerings.LabelArch, opIn, "arm64"), req("team", opExists)))
	if rs.String() != before {
		t.Errorf("Intersect changed its receiver: %s, was %s", rs.String(), before)
	}
	if !narrowed.Get(offerings.LabelArch).Empty() || narrowed.Get("team") == nil {
		t.Errorf("Intersect = %s, want arch empty and team constrained", narrowed.String())
	}
	clone := rs.Clone()
	clone.Add(mustRequirement(offerings.LabelZone, opIn, "test-1c"))
	if rs.String() != before {
		t.Errorf("changing a clone changed the original: %s", rs.String())
	}

	fromLabels := RequirementsFromLabels(map[string]string{"b": "2", "a": "1"})
	if fromLabels.String() != "a In [1], b In [2]" {
		t.Errorf("RequirementsFromLabels = %s", fromLabels.String())
	}
	var zero Requirements
	if !zero.MatchesLabels(nil) || zero.Len() != 0 || !zero.Allows("k", "v") {
		t.Error("zero Requirements must require nothing")
	}
}

func TestRequirementsConflict(t *testing.T) {
	defined := func(keys ...string) func(string) bool {
		return func(k string) bool { return slices.Contains(keys, k) }
	}
	for _, tc := range []struct {
		name    string
		reqs    []corev1.NodeSelectorRequirement
		defines func(string) bool
		want    string // key of the conflicting requirement, "" for none
	}{
		{"satisfiable and defined", []corev1.NodeSelectorRequirement{req("a", opIn, "x")}, defined("a"), ""},
		{"empty set on a defined key", []corev1.NodeSelectorRequirement{req("a", opIn, "x"), req("a", opIn, "y")}, defined("a"), "a"},
		{"needs a label no node has", []corev1.NodeSelectorRequirement{req("a", opExists)}, defined(), "a"},
		{"DoesNotExist on an undefined key", []corev1.NodeSelectorRequirement{req("a", opDoesNotExist)}, defined(), ""},
		{"DoesNotExist on a label every node has", []corev1.NodeSelectorRequirement{req("a", opDoesNotExist)}, defined("a"), "a"},
		{"NotIn on an undefined key", []corev1.NodeSelectorRequirement{req("a", opNotIn, "x")}, defined(), ""},
		{"first of several", []corev1.NodeSelectorRequirement{req("b", opIn, "x"), req("a", opIn, "x")}, defined("b"), "a"},
	} {
		rs := mustRequirements(tc.reqs...)
		got := rs.Conflict(tc.defines)
		switch {
		case got == nil && tc.want != "":
			t.Errorf("%s: no conflict, want one on %s", tc.name, tc.want)
		case got != nil && got.Key != tc.want:
			t.Errorf("%s: conflict on %s, want %q", tc.name, got.String(), tc.want)
		}
	}
}

func BenchmarkRequirementsIntersect(b *testing.B) {
	a := mustRequirements(
		req(offerings.LabelCapacityType, opIn, "spot", "on-demand"),
		req(offerings.LabelArch, opIn, "amd64", "arm64"),
		req(offerings.LabelZone, opIn, testZones...),
		req(offerings.LabelInstanceFamily, opNotIn, "t2", "t3"),
	)
	p := mustRequirements(req(offerings.LabelArch, opIn, "amd64"), req(offerings.LabelInstanceCPU, opGt, "3"))
	b.ReportAllocs()
	for b.Loop() {
		out := a.Intersect(p)
		if out.Len() != 5 {
			b.Fatal(out.String())
		}
	}
}
