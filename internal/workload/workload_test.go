package workload

import (
	"fmt"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func requests(p *corev1.Pod) (int64, int64) {
	r := p.Spec.Containers[0].Resources.Requests
	return r.Cpu().MilliValue(), r.Memory().Value()
}

func TestGeneratorsAreDeterministicPerSeed(t *testing.T) {
	for name, gen := range map[string]func(uint64) []*corev1.Pod{
		"Mixed":        func(s uint64) []*corev1.Pod { return Mixed(500, s) },
		"Topology":     func(s uint64) []*corev1.Pod { return Topology(500, s) },
		"KarpenterMix": func(s uint64) []*corev1.Pod { return KarpenterMix(500, s) },
	} {
		if !reflect.DeepEqual(gen(42), gen(42)) {
			t.Errorf("%s: two calls with seed 42 differ", name)
		}
		if reflect.DeepEqual(gen(42), gen(7)) {
			t.Errorf("%s: seeds 42 and 7 give the same pods", name)
		}
	}
}

func TestMixedDrawsWithinItsRanges(t *testing.T) {
	for _, p := range Mixed(2000, 42) {
		cpu, mem := requests(p)
		if cpu < 100 || cpu > 8000 || mem < 128<<20 || mem > 32<<30 {
			t.Fatalf("pod %s requests %dm/%d bytes, outside 100m-8 / 128Mi-32Gi", p.Name, cpu, mem)
		}
	}
}

func TestKarpenterMixHasFiveConstraintClasses(t *testing.T) {
	pods := KarpenterMix(1000, 42)
	counts := map[string]int{}
	for _, p := range pods {
		counts[p.Labels["app"]]++
		switch p.Labels["app"] {
		case "class-0":
			if p.Spec.Affinity != nil || len(p.Spec.TopologySpreadConstraints) > 0 {
				t.Fatalf("pod %s of class-0 has a constraint", p.Name)
			}
		case "class-4":
			if p.Spec.Affinity == nil || p.Spec.Affinity.PodAntiAffinity == nil {
				t.Fatalf("pod %s of class-4 has no anti-affinity", p.Name)
			}
		}
	}
	for c := range 5 {
		if n := counts[fmt.Sprintf("class-%d", c)]; n != 200 {
			t.Errorf("class-%d has %d pods, want 200", c, n)
		}
	}
}

func TestKarpenterCatalogMatchesKarpentersBenchmark(t *testing.T) {
	types := KarpenterCatalog()
	if len(types) != 400 {
		t.Fatalf("%d types, want 400", len(types))
	}
	it := types[9] // fake-it-10: 10 vCPU, 20 GiB, 100 pods
	if it.Name != "fake-it-10" || it.Capacity.Cpu().Value() != 10 || it.Capacity.Memory().Value() != 20<<30 || it.Capacity.Pods().Value() != 100 {
		t.Fatalf("type 10 is %s with %v", it.Name, it.Capacity)
	}
	if len(it.Offerings) != 5 {
		t.Fatalf("type 10 has %d offerings, want 2 spot + 3 on-demand", len(it.Offerings))
	}
}

func TestMicroservicesIsElevenServicesOfSmallPods(t *testing.T) {
	pods := Microservices(MicroservicesReplicas)
	if len(pods) != 440 {
		t.Fatalf("%d pods, want 11 services x 40 replicas = 440", len(pods))
	}
	seen := map[string]bool{}
	for _, p := range pods {
		if seen[p.Name] {
			t.Fatalf("pod name %s repeats", p.Name)
		}
		seen[p.Name] = true
		cpu, mem := requests(p)
		if cpu < 50 || cpu > 300 || mem < 64<<20 || mem > 256<<20 {
			t.Fatalf("pod %s requests %dm/%d bytes, outside 50m-300m / 64Mi-256Mi", p.Name, cpu, mem)
		}
	}
}

func TestDaemonSetsSumToTheTypicalEKSNodeOverhead(t *testing.T) {
	var cpu, mem int64
	for _, p := range DaemonSets() {
		c, m := requests(p)
		cpu, mem = cpu+c, mem+m
		if len(p.Spec.Tolerations) != 1 || p.Spec.Tolerations[0].Operator != corev1.TolerationOpExists {
			t.Errorf("daemonset pod %s does not tolerate every taint", p.Name)
		}
	}
	// 25+100+30+100+50 millicores; 40+50+120+200+64 MiB.
	if cpu != 305 || mem != 474<<20 {
		t.Fatalf("daemonsets request %dm and %d bytes, want 305m and 474Mi", cpu, mem)
	}
}
