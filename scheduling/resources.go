package scheduling

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// The solver works on dense integer vectors rather than ResourceLists:
// comparing two vectors is a handful of int64 compares, where comparing two
// ResourceLists means map lookups and Quantity arithmetic on the hot path.
const (
	dimCPU = iota
	dimMemory
	dimPods
	dimEphemeral
	fixedDims
)

// vec is an amount of every resource dimension of one solve; cpu is in
// millicores, everything else in its base unit.
type vec []int64

// resourceDims maps resource names to vector positions for one solve.
type resourceDims struct {
	names []corev1.ResourceName
	index map[corev1.ResourceName]int
}

func newResourceDims() *resourceDims {
	d := &resourceDims{index: map[corev1.ResourceName]int{}}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, corev1.ResourceEphemeralStorage} {
		d.add(name)
	}
	return d
}

func (d *resourceDims) add(name corev1.ResourceName) int {
	if i, ok := d.index[name]; ok {
		return i
	}
	d.index[name] = len(d.names)
	d.names = append(d.names, name)
	return len(d.names) - 1
}

func (d *resourceDims) len() int { return len(d.names) }

func quantityUnits(name corev1.ResourceName, q resource.Quantity) int64 {
	if name == corev1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// vecOf converts list into a vector; resources this solve does not track are
// ignored (nobody requests them).
func (d *resourceDims) vecOf(list corev1.ResourceList) vec {
	v := make(vec, len(d.names))
	for name, q := range list {
		if i, ok := d.index[name]; ok {
			v[i] = quantityUnits(name, q)
		}
	}
	return v
}

// quantity renders one dimension of v as a Quantity.
func (d *resourceDims) quantity(i int, amount int64) resource.Quantity {
	switch d.names[i] {
	case corev1.ResourceCPU:
		return *resource.NewMilliQuantity(amount, resource.DecimalSI)
	case corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return *resource.NewQuantity(amount, resource.BinarySI)
	default:
		return *resource.NewQuantity(amount, resource.DecimalSI)
	}
}

// list converts v back into a ResourceList, leaving out zero dimensions.
func (d *resourceDims) list(v vec) corev1.ResourceList {
	out := make(corev1.ResourceList, len(v))
	for i, amount := range v {
		if amount != 0 {
			out[d.names[i]] = d.quantity(i, amount)
		}
	}
	return out
}

// format renders an amount for messages: `96`, `95690m`, `7Gi`.
func (d *resourceDims) format(i int, amount int64) string {
	q := d.quantity(i, amount)
	return q.String()
}

func (v vec) add(o vec) {
	for i := range v {
		v[i] += o[i]
	}
}

func (v vec) sub(o vec) {
	for i := range v {
		v[i] -= o[i]
	}
}

// fitsWith reports whether base+extra <= limit in every dimension.
func fitsWith(base, extra, limit vec) bool {
	for i := range limit {
		if base[i]+extra[i] > limit[i] {
			return false
		}
	}
	return true
}

// fits reports whether v <= limit in every dimension.
func fits(v, limit vec) bool {
	for i := range limit {
		if v[i] > limit[i] {
			return false
		}
	}
	return true
}

// sortedNames lists the names of a ResourceList in order, for stable messages.
func sortedNames(list corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(list))
	for n := range list {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	return names
}

// describeRequests renders a vector as `cpu 4, memory 8Gi`.
func (d *resourceDims) describe(v vec) string {
	s := ""
	for i, amount := range v {
		if amount == 0 || i == dimPods {
			continue
		}
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%s %s", d.names[i], d.format(i, amount))
	}
	return s
}
