package scheduling

import (
	"math"
	"testing"
)

// FuzzJoinRule checks the join rule's invariant over arbitrary claims, pods
// and types: a grown type priced above the ceiling is never accepted, and a
// type accepted at one price is accepted at any lower one.
func FuzzJoinRule(f *testing.F) {
	// cpu in millicores, memory in MiB, prices in micro-dollars per hour.
	f.Add(uint32(2000), uint32(4000), uint16(40), uint32(1500), uint32(1000), uint32(500), uint32(512), uint32(1900), uint32(7000), uint32(96000), uint32(1900), uint32(7000), uint32(96000), uint32(3800), uint32(15000), uint32(192000), uint32(10), uint32(5), uint8(3), uint8(8), uint8(20), false)
	f.Add(uint32(0), uint32(0), uint16(0), uint32(100), uint32(100), uint32(100), uint32(100), uint32(200), uint32(200), uint32(1000), uint32(100), uint32(100), uint32(500), uint32(200), uint32(200), uint32(1000), uint32(0), uint32(0), uint8(0), uint8(0), uint8(0), true)
	f.Add(uint32(50000), uint32(1<<20), uint16(300), uint32(0), uint32(0), uint32(4000), uint32(16000), uint32(3900), uint32(15000), uint32(150000), uint32(3900), uint32(15000), uint32(150000), uint32(7900), uint32(31000), uint32(300000), uint32(1000), uint32(1000), uint8(1), uint8(50), uint8(200), false)
	f.Fuzz(func(t *testing.T, remCPU, remMem uint32, remPods uint16, claimCPU, claimMem, podCPU, podMem, curCPU, curMem, curPrice, ownCPU, ownMem, ownPrice, grownCPU, grownMem, grownPrice, dualCPU, dualMem uint32, curSlots, ownSlots, grownSlots uint8, sameType bool) {
		// Valid inputs only: the current type holds the claim, the pod's
		// own type holds the pod, the grown type holds both.
		claim, pod := [3]int64{int64(claimCPU), int64(claimMem), 1}, [3]int64{int64(podCPU), int64(podMem), 1}
		cur := [3]int64{claim[0] + int64(curCPU), claim[1] + int64(curMem), claim[2] + int64(curSlots)}
		own := [3]int64{pod[0] + int64(ownCPU), pod[1] + int64(ownMem), 1 + int64(ownSlots)}
		grown := [3]int64{claim[0] + pod[0] + int64(grownCPU), claim[1] + pod[1] + int64(grownMem), 2 + int64(grownSlots)}
		duals := dualPrices{cpu: float64(dualCPU) * 1e-9, memory: float64(dualMem) * 1e-12}
		j := newJoinRule(duals, [2]int64{int64(remCPU), int64(remMem)}, int64(remPods), claim, pod, 0, cur, float64(curPrice)*1e-6, own, float64(ownPrice)*1e-6)
		grownType := int32(1)
		if sameType {
			grownType, grown = 0, cur
		}
		price := float64(grownPrice) * 1e-6
		ceiling := j.ceiling()
		if price > ceiling && j.accepts(grownType, grown, price) {
			t.Fatalf("accepted a type at $%g, above the ceiling $%g", price, ceiling)
		}
		if j.accepts(grownType, grown, price) {
			for _, lower := range []float64{price / 2, 0, math.Nextafter(price, 0)} {
				if !j.accepts(grownType, grown, lower) {
					t.Fatalf("accepted at $%g but not at the lower $%g", price, lower)
				}
			}
		}
	})
}

func TestJoinRuleHandComputed(t *testing.T) {
	// A claim on a $0.10 type with 1,000m and 1,000 bytes spare; the pod
	// (1,500m) alone would need a $0.05 type; room is worth $0.00001 per
	// millicore and nothing per byte; plenty of pods remain, each worth
	// $0.01 (1,000m): a slot of room is worth $0.01.
	d := dualPrices{cpu: 1e-5}
	rem := [2]int64{1000 * 1000, 1 << 40}
	j := newJoinRule(d, rem, 1000, [3]int64{1000, 0, 1}, [3]int64{1500, 0, 1}, 0, [3]int64{2000, 1000, 110}, 0.10, [3]int64{1500, 0, 110}, 0.05)
	// Apart: 0.10 + 0.05 less 1,000m of room ($0.01) = $0.14.
	if math.Abs(j.apart-0.14) > 1e-12 {
		t.Fatalf("apart = %g, want 0.14", j.apart)
	}
	// Growing into a $0.14 type with 1,500m spare: 0.14 - 0.015 <= 0.14.
	if !j.accepts(1, [3]int64{4000, 0, 110}, 0.14) {
		t.Error("rejected a join that costs less than apart")
	}
	// A $0.16 type with no room left: 0.16 > 0.14.
	if j.accepts(1, [3]int64{2500, 0, 110}, 0.16) {
		t.Error("accepted a join dearer than apart")
	}
	// The same $0.145 type accepted with 1,500m and its slots spare is
	// rejected when it has no pod slot left: room it cannot fill is worth
	// nothing.
	if !j.accepts(1, [3]int64{4000, 0, 110}, 0.145) || j.accepts(1, [3]int64{4000, 0, 2}, 0.145) {
		t.Error("pod slots do not cap the room's value")
	}
	// With no pods left, room is worth nothing: the ceiling is apart.
	j = newJoinRule(d, [2]int64{0, 0}, 0, [3]int64{1000, 0, 1}, [3]int64{1500, 0, 1}, 0, [3]int64{2000, 1000, 110}, 0.10, [3]int64{1500, 0, 110}, 0.05)
	if c := j.ceiling(); math.Abs(c-0.15) > 1e-8 {
		t.Errorf("ceiling with nothing remaining = %g, want 0.15", c)
	}
}
