package scheduling

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
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
			// A solve of some of the pods first: what it leaves in the
			// Context (pod classes, their variant templates) must not
			// change the answers below.
			var some []*corev1.Pod
			for i, p := range in.Pods {
				if mask&(1<<((i+round)%8)) != 0 {
					some = append(some, p)
				}
			}
			if _, err := c.Solve(some, without); err != nil {
				t.Fatalf("Context.Solve (some pods): %v", err)
			}
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

// TestContextSolvesAfterOtherPodSets: a Context that solved some of the
// pods first solves them all exactly as Solve does. Pods of several classes
// with equal requests are what a memo keyed on variant-template ids would
// confuse if the ids repeated from one solve to the next.
func TestContextSolvesAfterOtherPodSets(t *testing.T) {
	catalog := testCatalog()
	for seed := range 400 {
		rng := rand.New(rand.NewPCG(uint64(seed), 3))
		var pods []*corev1.Pod
		cpus := []string{"250m", "500m", "1", "2", "3"}
		for i := range 12 + rng.IntN(30) {
			var opts []podOpt
			switch rng.IntN(3) {
			case 1:
				opts = append(opts, withNodeSelector(offerings.LabelArch, "arm64"))
			case 2:
				opts = append(opts, withNodeSelector(offerings.LabelArch, "amd64"))
			}
			pods = append(pods, makePod(fmt.Sprintf("p%02d", i), cpus[rng.IntN(len(cpus))], "1Gi", opts...))
		}
		in := Input{Pods: pods, Templates: []*NodeTemplate{defaultTemplate(catalog)}}
		want, err := Solve(in)
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewContext(in)
		if err != nil {
			t.Fatal(err)
		}
		var some []*corev1.Pod
		for _, p := range pods {
			if rng.IntN(2) == 0 {
				some = append(some, p)
			}
		}
		if _, err := c.Solve(some, nil); err != nil {
			t.Fatal(err)
		}
		got, err := c.Solve(pods, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := summarizePlan(want, 0), summarizePlan(got, 0); !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: after solving %d of the %d pods, Context.Solve differs from Solve:\n%s\nvs\n%s", seed, len(some), len(pods), mustYAML(a), mustYAML(b))
		}
	}
}
