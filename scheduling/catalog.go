package scheduling

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
)

// Catalog is instance types compiled for the solver: each type's capacity
// and allocatable as integer vectors, and its offerings by zone and
// capacity-type number. Compiling a thousand-type catalog is about a fifth
// of a 1,000-pod solve (docs/benchmarks.md), and it depends on neither the pods nor the
// NodePools, so a caller that solves again and again over the same types (a
// provisioner between catalog refreshes, a consolidation pass, a benchmark)
// builds it once with NewCatalog and sets Input.Catalog. Without one, Solve
// compiles the types it is given, the same way, every time.
//
// A Catalog is a snapshot of the types as they were when it was built,
// availability included: build a new one when they change. It is read-only
// once built, so concurrent solves may share it.
type Catalog struct {
	zones, capacityTypes []string
	types                map[*offerings.InstanceType]*catalogType
}

// catalogType is one compiled instance type.
type catalogType struct {
	capacity, allocatable [fixedDims]int64
	// extended are the type's resources beyond the fixed dimensions, which
	// a solve tracks only if some pod asks for them.
	extended []extendedAmount
	// domains are the zone and capacity type of every offering, available
	// or not, in order: a solve numbers its zones by first appearance.
	domains []offerDomain
	// offers are the available offerings, numbered as the Catalog's.
	offers []offer
}

type extendedAmount struct {
	name                  corev1.ResourceName
	capacity, allocatable int64
}

type offerDomain struct{ zone, capacityType uint8 }

// NewCatalog compiles types. It fails on a nil type or more than 64 zones or
// capacity types, as Solve does.
func NewCatalog(types []*offerings.InstanceType) (*Catalog, error) {
	c := &Catalog{types: make(map[*offerings.InstanceType]*catalogType, len(types))}
	compiled := make([]catalogType, len(types))
	count := 0
	for i, it := range types {
		if it == nil {
			return nil, fmt.Errorf("instanceTypes[%d]: is nil", i)
		}
		count += len(it.Offerings)
	}
	buf := newCatalogBuffers(count)
	for i, it := range types {
		if _, done := c.types[it]; done {
			continue
		}
		if err := c.compile(&compiled[i], it, &buf); err != nil {
			return nil, err
		}
		c.types[it] = &compiled[i]
	}
	return c, nil
}

// solveCatalog is the catalog a solve of templates uses: in.Catalog when it
// holds every template's types, else one compiled from them, numbering
// zones in the order the templates' offerings name them. It returns each
// template's types in compiled form.
func solveCatalog(given *Catalog, templates []*NodeTemplate) (*Catalog, [][]*catalogType, error) {
	if given != nil {
		if compiled, ok := given.compiledTypes(templates); ok {
			return given, compiled, nil
		}
	}
	c := &Catalog{}
	n, count := 0, 0
	for i, t := range templates {
		n += len(t.InstanceTypes)
		for j, it := range t.InstanceTypes {
			if it == nil {
				return nil, nil, fmt.Errorf("templates[%d].instanceTypes[%d]: is nil", i, j)
			}
			count += len(it.Offerings)
		}
	}
	buf := newCatalogBuffers(count)
	// One allocation for every type; a type two templates share is
	// compiled twice, which is cheaper than a map of them.
	backing := make([]catalogType, n)
	out := make([][]*catalogType, len(templates))
	for i, t := range templates {
		out[i] = make([]*catalogType, len(t.InstanceTypes))
		for j, it := range t.InstanceTypes {
			ct := &backing[0]
			backing = backing[1:]
			if err := c.compile(ct, it, &buf); err != nil {
				return nil, nil, err
			}
			out[i][j] = ct
		}
	}
	return c, out, nil
}

// compile fills t from it, numbering its zones and capacity types in c.
// Allocatable is capacity less the three reservations, never below zero,
// worked out per resource on Quantities (so exactly as
// InstanceType.Allocatable) without building its lists.
func (c *Catalog) compile(t *catalogType, it *offerings.InstanceType, buf *catalogBuffers) error {
	reserved := [...]corev1.ResourceList{it.Overhead.KubeReserved, it.Overhead.SystemReserved, it.Overhead.EvictionThreshold}
	for name, q := range it.Capacity {
		a := q.DeepCopy() // Sub must not touch the catalog's own amount
		for _, list := range reserved {
			if r, ok := list[name]; ok {
				a.Sub(r)
			}
		}
		capacity, allocatable := quantityUnits(name, q), max(quantityUnits(name, a), 0)
		if d, ok := fixedDim(name); ok {
			t.capacity[d], t.allocatable[d] = capacity, allocatable
			continue
		}
		t.extended = append(t.extended, extendedAmount{name: name, capacity: capacity, allocatable: allocatable})
	}
	domainStart, offerStart := len(buf.domains), len(buf.offers)
	for _, o := range it.Offerings {
		zone, err := number(&c.zones, o.Zone, "zones")
		if err != nil {
			return err
		}
		capacityType, err := number(&c.capacityTypes, o.CapacityType, "capacity types")
		if err != nil {
			return err
		}
		buf.domains = append(buf.domains, offerDomain{zone, capacityType})
		if o.Available {
			buf.offers = append(buf.offers, offer{zone: zone, capacityType: capacityType, price: o.Price})
		}
	}
	t.domains = buf.domains[domainStart:len(buf.domains):len(buf.domains)]
	t.offers = buf.offers[offerStart:len(buf.offers):len(buf.offers)]
	return nil
}

// catalogBuffers hold every compiled type's domains and offers, so that a
// thousand types cost two allocations rather than two thousand. Sized for
// all the offerings up front: the compiled types keep slices of them.
type catalogBuffers struct {
	domains []offerDomain
	offers  []offer
}

func newCatalogBuffers(offerings int) catalogBuffers {
	return catalogBuffers{domains: make([]offerDomain, 0, offerings), offers: make([]offer, 0, offerings)}
}

// fixedDim is the position of one of the dimensions every solve has.
func fixedDim(name corev1.ResourceName) (int, bool) {
	switch name {
	case corev1.ResourceCPU:
		return dimCPU, true
	case corev1.ResourceMemory:
		return dimMemory, true
	case corev1.ResourcePods:
		return dimPods, true
	case corev1.ResourceEphemeralStorage:
		return dimEphemeral, true
	}
	return 0, false
}

// number returns name's position in names, appending it if new.
func number(names *[]string, name, what string) (uint8, error) {
	if i, ok := position(*names, name); ok {
		return i, nil
	}
	if len(*names) == maxDomains {
		return 0, fmt.Errorf("templates: more than %d %s", maxDomains, what)
	}
	*names = append(*names, name)
	return uint8(len(*names) - 1), nil
}

// compiledTypes returns the compiled form of every template's types, or
// false if some type is not in the catalog.
func (c *Catalog) compiledTypes(templates []*NodeTemplate) ([][]*catalogType, bool) {
	out := make([][]*catalogType, len(templates))
	for i, t := range templates {
		out[i] = make([]*catalogType, len(t.InstanceTypes))
		for j, it := range t.InstanceTypes {
			ct, ok := c.types[it]
			if !ok {
				return nil, false
			}
			out[i][j] = ct
		}
	}
	return out, true
}

// vectors sets capacity and allocatable, which have every dimension of dims.
func (t *catalogType) vectors(dims *resourceDims, capacity, allocatable vec) {
	clear(capacity[fixedDims:])
	clear(allocatable[fixedDims:])
	copy(capacity, t.capacity[:])
	copy(allocatable, t.allocatable[:])
	for _, e := range t.extended {
		if d, ok := dims.index[e.name]; ok {
			capacity[d], allocatable[d] = e.capacity, e.allocatable
		}
	}
}
