package offerings

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/patrickmn/go-cache"
	"k8s.io/utils/clock"
)

// DefaultUnavailableTTL is how long an offering stays marked unavailable after
// EC2 refuses it, as in Karpenter.
const DefaultUnavailableTTL = 3 * time.Minute

// UnavailableOfferingsOptions configures NewUnavailableOfferings. The zero
// value is usable.
type UnavailableOfferingsOptions struct {
	// TTL is how long a mark lasts; 0 means DefaultUnavailableTTL.
	TTL time.Duration
	// Clock decides when marks expire; nil means the real clock.
	Clock clock.PassiveClock
	// Logger receives a line per mark; nil means slog.Default().
	Logger *slog.Logger
	// NoJanitor skips go-cache's janitor goroutine, which frees expired
	// marks by wall-clock time and outlives a testing/synctest bubble.
	// Memory stays bounded without it: there are only so many offerings,
	// families and zones to mark, and a mark overwrites the expired one.
	NoJanitor bool
}

// UnavailableOfferings remembers, for a short time, the offerings EC2 has
// refused (insufficient capacity, quota, unsupported), at three granularities:
// one offering (capacity type x instance type x zone), a whole instance family
// in a zone, or a whole capacity type in a zone or in every zone. The cloud
// provider marks; the provisioner calls Apply on the catalog before each
// solve, so refused pools are not tried again until the mark expires.
//
// Expiry is decided by the injected clock: each entry stores its expiry time
// and is compared with Clock.Now(), so a test's FakeClock.Step expires it.
// The go-cache janitor only frees memory (by wall-clock time, so a fake clock
// that lags the wall clock by more than the TTL can see a mark dropped early).
// It is safe for concurrent use.
type UnavailableOfferings struct {
	cache  *cache.Cache
	ttl    time.Duration
	clock  clock.PassiveClock
	logger *slog.Logger
	seq    atomic.Uint64
}

// NewUnavailableOfferings returns an empty cache.
func NewUnavailableOfferings(opts UnavailableOfferingsOptions) *UnavailableOfferings {
	u := &UnavailableOfferings{ttl: opts.TTL, clock: opts.Clock, logger: opts.Logger}
	if u.ttl <= 0 {
		u.ttl = DefaultUnavailableTTL
	}
	if u.clock == nil {
		u.clock = clock.RealClock{}
	}
	if u.logger == nil {
		u.logger = slog.Default()
	}
	// go-cache's own (wall-clock) expiry is set to the TTL too so that its
	// janitor frees entries; whether a mark still holds is decided against
	// u.clock in IsUnavailable.
	janitor := u.ttl
	if opts.NoJanitor {
		janitor = 0
	}
	u.cache = cache.New(u.ttl, janitor)
	return u
}

// Keys are prefixed by granularity so that, e.g., a family called like an
// instance type cannot collide with it. Fields are separated by a character
// that cannot appear in EC2 names.
func offeringKey(capacityType, instanceType, zone string) string {
	return "o\x00" + capacityType + "\x00" + instanceType + "\x00" + zone
}

func familyKey(capacityType, family, zone string) string {
	return "f\x00" + capacityType + "\x00" + family + "\x00" + zone
}

func capacityTypeKey(capacityType, zone string) string {
	return "c\x00" + capacityType + "\x00" + zone
}

// Family is the instance family of an instance type: the name before the
// first "." ("m5" for "m5.large"), or the whole name if it has none.
func Family(instanceType string) string {
	family, _, _ := strings.Cut(instanceType, ".")
	return family
}

func (u *UnavailableOfferings) mark(ctx context.Context, key, reason string, attrs ...any) {
	expiry := u.clock.Now().Add(u.ttl)
	u.cache.Set(key, expiry, u.ttl)
	u.seq.Add(1)
	u.logger.InfoContext(ctx, "marking offerings unavailable",
		append(attrs, "reason", reason, "ttl", u.ttl.String())...)
}

// MarkUnavailable marks one offering unavailable for the TTL, e.g. after an
// InsufficientInstanceCapacity error for that pool.
func (u *UnavailableOfferings) MarkUnavailable(ctx context.Context, reason, capacityType, instanceType, zone string) {
	u.mark(ctx, offeringKey(capacityType, instanceType, zone), reason,
		"capacity-type", capacityType, "instance-type", instanceType, "zone", zone)
}

// MarkCapacityTypeUnavailable marks every offering of a capacity type in a
// zone unavailable for the TTL; zone "" means in every zone, which is what a
// quota error (e.g. MaxSpotInstanceCountExceeded) calls for.
func (u *UnavailableOfferings) MarkCapacityTypeUnavailable(ctx context.Context, reason, capacityType, zone string) {
	u.mark(ctx, capacityTypeKey(capacityType, zone), reason,
		"capacity-type", capacityType, "zone", zoneAttr(zone))
}

// MarkFamilyUnavailable marks every instance type of a family (see Family)
// unavailable for a capacity type in a zone for the TTL; zone "" means in
// every zone.
func (u *UnavailableOfferings) MarkFamilyUnavailable(ctx context.Context, reason, capacityType, family, zone string) {
	u.mark(ctx, familyKey(capacityType, family, zone), reason,
		"capacity-type", capacityType, "instance-family", family, "zone", zoneAttr(zone))
}

func zoneAttr(zone string) string {
	if zone == "" {
		return "*"
	}
	return zone
}

// IsUnavailable reports whether the offering is marked, directly or through
// its family or capacity type, and the mark has not expired.
func (u *UnavailableOfferings) IsUnavailable(capacityType, instanceType, zone string) bool {
	now := u.clock.Now()
	family := Family(instanceType)
	for _, key := range [...]string{
		offeringKey(capacityType, instanceType, zone),
		familyKey(capacityType, family, zone),
		familyKey(capacityType, family, ""),
		capacityTypeKey(capacityType, zone),
		capacityTypeKey(capacityType, ""),
	} {
		if v, ok := u.cache.Get(key); ok && now.Before(v.(time.Time)) {
			return true
		}
	}
	return false
}

// Apply returns types with every marked offering's Available set to false.
// Types with a changed offering are copies (their Offerings slice is new;
// Capacity, Labels and Overhead are shared and must be treated as read-only);
// the others are the inputs themselves. The inputs are never modified, and the
// returned slice is always new.
func (u *UnavailableOfferings) Apply(types []*InstanceType) []*InstanceType {
	out := make([]*InstanceType, len(types))
	copy(out, types)
	// Snapshot the live marks once, by granularity, rather than taking the
	// cache lock and building key strings per offering.
	now := u.clock.Now()
	var live liveMarks
	for key, item := range u.cache.Items() {
		if exp, ok := item.Object.(time.Time); ok && now.Before(exp) {
			live.add(key)
		}
	}
	if live.empty() {
		return out
	}
	for i, it := range types {
		if it == nil {
			continue
		}
		family := Family(it.Name)
		if !live.touches(it.Name, family) {
			continue
		}
		var offerings []Offering
		for j, o := range it.Offerings {
			if !o.Available || !live.marked(o.CapacityType, it.Name, family, o.Zone) {
				continue
			}
			if offerings == nil {
				offerings = append([]Offering(nil), it.Offerings...)
			}
			offerings[j].Available = false
		}
		if offerings != nil {
			c := *it
			c.Offerings = offerings
			out[i] = &c
		}
	}
	return out
}

// liveMarks is a snapshot of unexpired marks, split by granularity.
type liveMarks struct {
	offerings     map[[3]string]bool // capacity type, instance type, zone
	families      map[[3]string]bool // capacity type, family, zone ("" = all)
	capacityTypes map[[2]string]bool // capacity type, zone ("" = all)
	// types and familyNames index the marks by name, so that Apply skips
	// the offerings of unmarked types with one lookup per type.
	types, familyNames map[string]bool
}

// touches reports whether any mark can apply to an instance type.
func (l *liveMarks) touches(instanceType, family string) bool {
	return len(l.capacityTypes) > 0 || l.types[instanceType] || l.familyNames[family]
}

func (l *liveMarks) add(key string) {
	parts := strings.Split(key, "\x00")
	switch {
	case parts[0] == "o" && len(parts) == 4:
		if l.offerings == nil {
			l.offerings = map[[3]string]bool{}
		}
		l.offerings[[3]string{parts[1], parts[2], parts[3]}] = true
		if l.types == nil {
			l.types = map[string]bool{}
		}
		l.types[parts[2]] = true
	case parts[0] == "f" && len(parts) == 4:
		if l.families == nil {
			l.families = map[[3]string]bool{}
		}
		l.families[[3]string{parts[1], parts[2], parts[3]}] = true
		if l.familyNames == nil {
			l.familyNames = map[string]bool{}
		}
		l.familyNames[parts[2]] = true
	case parts[0] == "c" && len(parts) == 3:
		if l.capacityTypes == nil {
			l.capacityTypes = map[[2]string]bool{}
		}
		l.capacityTypes[[2]string{parts[1], parts[2]}] = true
	}
}

func (l *liveMarks) empty() bool {
	return len(l.offerings) == 0 && len(l.families) == 0 && len(l.capacityTypes) == 0
}

func (l *liveMarks) marked(capacityType, instanceType, family, zone string) bool {
	return (len(l.offerings) > 0 && l.offerings[[3]string{capacityType, instanceType, zone}]) ||
		(len(l.families) > 0 && (l.families[[3]string{capacityType, family, zone}] || l.families[[3]string{capacityType, family, ""}])) ||
		(len(l.capacityTypes) > 0 && (l.capacityTypes[[2]string{capacityType, zone}] || l.capacityTypes[[2]string{capacityType, ""}]))
}

// SeqNum changes whenever a mark is added or the cache is flushed, so callers
// can cache work derived from Apply and redo it only when marks change. It
// does not change when a mark expires; bound such caches by the TTL too.
func (u *UnavailableOfferings) SeqNum() uint64 {
	return u.seq.Load()
}

// Flush removes every mark.
func (u *UnavailableOfferings) Flush() {
	u.cache.Flush()
	u.seq.Add(1)
}
