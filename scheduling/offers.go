package scheduling

import (
	"fmt"

	"github.com/fleetpack/fleetpack/offerings"
)

// offerIndex numbers the zones and capacity types of one solve, so that
// "which offerings do these requirements allow" is a bitmask test rather
// than string searches on every type of every claim probed.
type offerIndex struct {
	zones, capacityTypes []string
}

// offer is an available offering in index form.
type offer struct {
	zone, capacityType uint8
	price              float64
}

// maxDomains is how many zones (and capacity types) fit in a mask.
const maxDomains = 64

func newOfferIndex(templates []*NodeTemplate) (*offerIndex, error) {
	x := &offerIndex{}
	for _, t := range templates {
		for _, it := range t.InstanceTypes {
			for _, o := range it.Offerings {
				if _, ok := position(x.zones, o.Zone); !ok {
					if len(x.zones) == maxDomains {
						return nil, fmt.Errorf("templates: more than %d zones", maxDomains)
					}
					x.zones = append(x.zones, o.Zone)
				}
				if _, ok := position(x.capacityTypes, o.CapacityType); !ok {
					if len(x.capacityTypes) == maxDomains {
						return nil, fmt.Errorf("templates: more than %d capacity types", maxDomains)
					}
					x.capacityTypes = append(x.capacityTypes, o.CapacityType)
				}
			}
		}
	}
	return x, nil
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

// appendOffers appends an instance type's available offerings, converted,
// to out. Every zone and capacity type of a compiled template's types is in
// the index.
func (x *offerIndex) appendOffers(out []offer, it *offerings.InstanceType) []offer {
	for _, o := range it.Offerings {
		if o.Available {
			zone, _ := position(x.zones, o.Zone)
			capacityType, _ := position(x.capacityTypes, o.CapacityType)
			out = append(out, offer{zone: zone, capacityType: capacityType, price: o.Price})
		}
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
