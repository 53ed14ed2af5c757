package scheduling

import (
	"github.com/fleetpack/fleetpack/offerings"
)

// offerIndex numbers the zones and capacity types of one solve, so that
// "which offerings do these requirements allow" is a bitmask test rather
// than string searches on every type of every claim probed. Zones are
// numbered in the order the templates' offerings first name them, whatever
// catalog compiled the types, so a plan does not depend on which one did.
type offerIndex struct {
	zones, capacityTypes []string
	// zoneOf and capacityTypeOf renumber the catalog's domains.
	zoneOf, capacityTypeOf [maxDomains]uint8
}

// offer is an available offering in index form.
type offer struct {
	zone, capacityType uint8
	price              float64
}

// maxDomains is how many zones (and capacity types) fit in a mask.
const maxDomains = 64

func newOfferIndex(cat *Catalog, compiled [][]*catalogType) *offerIndex {
	x := &offerIndex{}
	var seenZone, seenCapacityType [maxDomains]bool
	for _, types := range compiled {
		for _, t := range types {
			for _, d := range t.domains {
				if !seenZone[d.zone] {
					seenZone[d.zone] = true
					x.zoneOf[d.zone] = uint8(len(x.zones))
					x.zones = append(x.zones, cat.zones[d.zone])
				}
				if !seenCapacityType[d.capacityType] {
					seenCapacityType[d.capacityType] = true
					x.capacityTypeOf[d.capacityType] = uint8(len(x.capacityTypes))
					x.capacityTypes = append(x.capacityTypes, cat.capacityTypes[d.capacityType])
				}
			}
		}
	}
	return x
}

// position finds s in the few names of an index. A scan of a handful of
// short strings beats hashing them: the catalog has thousands of offerings
// and a region a few zones.
func position(names []string, s string) (uint8, bool) {
	for i, n := range names {
		if n == s {
			return uint8(i), true
		}
	}
	return 0, false
}

// appendOffers appends a compiled type's available offerings, renumbered
// for this solve, to out.
func (x *offerIndex) appendOffers(out []offer, t *catalogType) []offer {
	for _, o := range t.offers {
		out = append(out, offer{zone: x.zoneOf[o.zone], capacityType: x.capacityTypeOf[o.capacityType], price: o.price})
	}
	return out
}

// offerMask says which zones and capacity types requirements allow.
type offerMask struct{ zones, capacityTypes uint64 }

func (x *offerIndex) mask(reqs *Requirements) offerMask {
	var m offerMask
	zone, ct := reqs.Get(offerings.LabelZone), reqs.Get(offerings.LabelCapacityType)
	for i, z := range x.zones {
		if zone == nil || zone.Matches(z, true) {
			m.zones |= 1 << i
		}
	}
	for i, c := range x.capacityTypes {
		if ct == nil || ct.Matches(c, true) {
			m.capacityTypes |= 1 << i
		}
	}
	return m
}

// price is the cheapest available offering the mask allows.
func (ti *typeInfo) price(m offerMask) (float64, bool) {
	best, found := 0.0, false
	for _, o := range ti.offers {
		if m.zones&(1<<o.zone) == 0 || m.capacityTypes&(1<<o.capacityType) == 0 {
			continue
		}
		if !found || o.price < best {
			best, found = o.price, true
		}
	}
	return best, found
}

// values lists the zones (or capacity types) of ti's offerings the mask allows, as a mask.
func (ti *typeInfo) domains(m offerMask, zones bool) uint64 {
	var out uint64
	for _, o := range ti.offers {
		if m.zones&(1<<o.zone) == 0 || m.capacityTypes&(1<<o.capacityType) == 0 {
			continue
		}
		if zones {
			out |= 1 << o.zone
		} else {
			out |= 1 << o.capacityType
		}
	}
	return out
}
