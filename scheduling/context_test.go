package scheduling

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// FuzzContext checks that a compiled Context solves exactly as Solve does
// with the same input, with and without existing nodes left out, and that
// no solve changes what the next one sees.
func FuzzContext(f *testing.F) {
	f.Add([]byte{}, uint8(0))
	f.Add([]byte{3, 1, 9, 7, 200, 13, 77, 5, 3, 2, 1, 0, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 250, 3, 8, 99, 17, 42, 4, 4, 4, 4, 60, 61, 62, 63, 64, 65}, uint8(0b101))
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 12 {
		b := make([]byte, 120+40*i)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		f.Add(b, uint8(rng.Uint32()))
	}
	f.Fuzz(func(t *testing.T, data []byte, mask uint8) {
		in := decodeProblem(data)
		want, err := Solve(in)
		if err != nil {
			t.Fatalf("Solve: %v", err)
		}
		c, err := NewContext(in)
		if err != nil {
			t.Fatalf("NewContext: %v", err)
		}
		without := map[string]bool{}
		fewer := in
		fewer.Nodes = nil
		for i, n := range in.Nodes {
			if mask&(1<<(i%8)) != 0 {
				without[n.Node.Name] = true
			} else {
				fewer.Nodes = append(fewer.Nodes, n)
			}
		}
		wantFewer, err := Solve(fewer)
		if err != nil {
			t.Fatalf("Solve (fewer nodes): %v", err)
		}
		for round := range 2 {
			got, err := c.Solve(in.Pods, nil)
			if err != nil {
				t.Fatalf("Context.Solve: %v", err)
			}
			if a, b := summarizePlan(want, 0), summarizePlan(got, 0); !reflect.DeepEqual(a, b) {
				t.Fatalf("round %d: Context.Solve differs from Solve:\n%s\nvs\n%s", round, mustYAML(a), mustYAML(b))
			}
			got, err = c.Solve(in.Pods, without)
			if err != nil {
				t.Fatalf("Context.Solve (without): %v", err)
			}
			if a, b := summarizePlan(wantFewer, 0), summarizePlan(got, 0); !reflect.DeepEqual(a, b) {
				t.Fatalf("round %d: Context.Solve without %v differs from Solve over the other nodes:\n%s\nvs\n%s", round, without, mustYAML(a), mustYAML(b))
			}
		}
	})
}
