package offerings

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

var usEast1Zones = []string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"}

func mustDefaultCatalog(t testing.TB, opts CatalogOptions) []*InstanceType {
	t.Helper()
	types, err := DefaultCatalog(opts)
	if err != nil {
		t.Fatalf("DefaultCatalog: %v", err)
	}
	return types
}

func byName(types []*InstanceType) map[string]*InstanceType {
	m := make(map[string]*InstanceType, len(types))
	for _, it := range types {
		m[it.Name] = it
	}
	return m
}

type karpenterAllocatable struct {
	Name                string           `json:"name"`
	CPUMillicores       int64            `json:"cpuMillicores"`
	MemoryMiB           int64            `json:"memoryMiB"`
	EphemeralStorageGiB float64          `json:"ephemeralStorageGiB"`
	Pods                int64            `json:"pods"`
	Extended            map[string]int64 `json:"extended"`
}

func within1Percent(got, want int64) bool {
	return math.Abs(float64(got-want)) <= 0.01*math.Abs(float64(want))
}

// TestDefaultCatalogMatchesKarpenterAllocatable checks every type Karpenter
// documents an AL2023 allocatable for: ours must be within 1% for cpu, memory
// and pods, and equal for ephemeral-storage and accelerators. Types missing
// from the catalog must be listed as skipped.
func TestDefaultCatalogMatchesKarpenterAllocatable(t *testing.T) {
	raw, err := os.ReadFile("testdata/karpenter_allocatable_al2023.json")
	if err != nil {
		t.Fatal(err)
	}
	var want []karpenterAllocatable
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	file, err := ParseCatalogFile(bytes.NewReader(defaultCatalogJSON))
	if err != nil {
		t.Fatal(err)
	}
	skipped := map[string]bool{}
	for _, s := range file.Skipped {
		skipped[s.Name] = true
	}
	types := byName(mustDefaultCatalog(t, CatalogOptions{}))
	checked, exact := 0, 0
	for _, w := range want {
		it, ok := types[w.Name]
		if !ok {
			if !skipped[w.Name] {
				t.Errorf("%s: has a Karpenter allocatable but is neither in the catalog nor skipped", w.Name)
			}
			continue
		}
		checked++
		alloc := it.Allocatable()
		cpu, mem, pods := alloc.Cpu().MilliValue(), alloc.Memory().Value()/mib, alloc.Pods().Value()
		if !within1Percent(cpu, w.CPUMillicores) {
			t.Errorf("%s: allocatable cpu %dm, Karpenter %dm", w.Name, cpu, w.CPUMillicores)
		}
		if !within1Percent(mem, w.MemoryMiB) {
			t.Errorf("%s: allocatable memory %dMi, Karpenter %dMi", w.Name, mem, w.MemoryMiB)
		}
		if !within1Percent(pods, w.Pods) {
			t.Errorf("%s: allocatable pods %d, Karpenter %d", w.Name, pods, w.Pods)
		}
		if cpu == w.CPUMillicores && mem == w.MemoryMiB && pods == w.Pods {
			exact++
		}
		eph := alloc.StorageEphemeral().Value()
		if wantEph := int64(w.EphemeralStorageGiB * (1 << 30)); eph != wantEph {
			t.Errorf("%s: allocatable ephemeral-storage %d, Karpenter %d", w.Name, eph, wantEph)
		}
		for _, name := range []corev1.ResourceName{ResourceNvidiaGPU, ResourceAMDGPU, ResourceNeuron, ResourceHabanaGaudi} {
			q := alloc[name]
			if got := q.Value(); got != w.Extended[string(name)] {
				t.Errorf("%s: %s = %d, Karpenter %d", w.Name, name, got, w.Extended[string(name)])
			}
		}
	}
	if checked < 1300 {
		t.Errorf("only %d types checked against Karpenter, want the whole catalog", checked)
	}
	t.Logf("%d types checked, %d match Karpenter exactly", checked, exact)
}

func TestDefaultCatalogShape(t *testing.T) {
	file, err := DefaultCatalogFile()
	if err != nil {
		t.Fatal(err)
	}
	if file.Region != "us-east-1" || !reflect.DeepEqual(file.Zones, usEast1Zones) {
		t.Fatalf("region %q zones %v", file.Region, file.Zones)
	}
	entries := map[string]CatalogInstanceType{}
	for _, e := range file.InstanceTypes {
		entries[e.Name] = e
	}
	types := mustDefaultCatalog(t, CatalogOptions{})
	if len(types) != len(file.InstanceTypes) || len(types) < 1300 {
		t.Fatalf("%d types built from %d entries", len(types), len(file.InstanceTypes))
	}
	if !sort.SliceIsSorted(types, func(i, j int) bool { return types[i].Name < types[j].Name }) {
		t.Error("types are not sorted by name")
	}
	spotTypes := 0
	for i, it := range types {
		if i > 0 && types[i-1].Name == it.Name {
			t.Errorf("duplicate type %s", it.Name)
		}
		e := entries[it.Name]
		for _, key := range []string{LabelZone, LabelCapacityType, LabelHostname, LabelNodePool} {
			if _, ok := it.Labels[key]; ok {
				t.Errorf("%s: label %s must come from the offering, not the type", it.Name, key)
			}
		}
		if it.Labels[LabelRegion] != "us-east-1" || it.Labels[LabelOS] != "linux" || it.Labels[LabelInstanceType] != it.Name {
			t.Errorf("%s: labels %v", it.Name, it.Labels)
		}
		var od, spot []Offering
		for _, o := range it.Offerings {
			if !o.Available {
				t.Errorf("%s: offering %+v not available", it.Name, o)
			}
			switch o.CapacityType {
			case CapacityTypeOnDemand:
				od = append(od, o)
				if o.Price != e.OnDemandPrice {
					t.Errorf("%s: on-demand price %v, want %v", it.Name, o.Price, e.OnDemandPrice)
				}
			case CapacityTypeSpot:
				spot = append(spot, o)
				lo, hi := e.SpotPrice*0.95, math.Min(e.SpotPrice*1.05, e.OnDemandPrice)
				if o.Price < lo-1e-12 || o.Price > hi+1e-12 {
					t.Errorf("%s: spot price %v in %s outside [%v, %v]", it.Name, o.Price, o.Zone, lo, hi)
				}
			default:
				t.Errorf("%s: unknown capacity type %q", it.Name, o.CapacityType)
			}
		}
		zonesOf := func(os []Offering) []string {
			var z []string
			for _, o := range os {
				z = append(z, o.Zone)
			}
			sort.Strings(z)
			return z
		}
		if !reflect.DeepEqual(zonesOf(od), usEast1Zones) {
			t.Errorf("%s: on-demand zones %v", it.Name, zonesOf(od))
		}
		if e.SpotPrice > 0 {
			spotTypes++
			if !reflect.DeepEqual(zonesOf(spot), usEast1Zones) {
				t.Errorf("%s: spot zones %v", it.Name, zonesOf(spot))
			}
		} else if len(spot) != 0 {
			t.Errorf("%s: has no Spot estimate but %d Spot offerings", it.Name, len(spot))
		}
		for name, q := range it.Allocatable() {
			if q.Sign() < 0 {
				t.Errorf("%s: negative allocatable %s", it.Name, name)
			}
		}
	}
	if spotTypes < 800 {
		t.Errorf("only %d types have Spot offerings", spotTypes)
	}
}

func TestDefaultCatalogKnownTypes(t *testing.T) {
	types := byName(mustDefaultCatalog(t, CatalogOptions{}))
	m5 := types["m5.large"]
	if m5 == nil {
		t.Fatal("m5.large missing")
	}
	wantLabels := map[string]string{
		LabelInstanceType:            "m5.large",
		LabelArch:                    "amd64",
		LabelOS:                      "linux",
		LabelRegion:                  "us-east-1",
		LabelInstanceFamily:          "m5",
		LabelInstanceCategory:        "m",
		LabelInstanceGeneration:      "5",
		LabelInstanceSize:            "large",
		LabelInstanceCPU:             "2",
		LabelInstanceMemory:          "8192",
		LabelInstanceCPUManufacturer: "intel",
	}
	if !reflect.DeepEqual(m5.Labels, wantLabels) {
		t.Errorf("m5.large labels\n got %v\nwant %v", m5.Labels, wantLabels)
	}
	// 8192Mi less ceil(7.5%) = 615Mi of VM overhead.
	wantCap := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("2"),
		corev1.ResourceMemory:           resource.MustParse("7577Mi"),
		corev1.ResourcePods:             resource.MustParse("29"),
		corev1.ResourceEphemeralStorage: resource.MustParse("20Gi"),
	}
	assertResources(t, "m5.large capacity", m5.Capacity, wantCap)
	assertResources(t, "m5.large overhead", m5.Overhead.Total(), corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("70m"),
		corev1.ResourceMemory:           resource.MustParse("674Mi"), // 11*29+255 + 100
		corev1.ResourceEphemeralStorage: resource.MustParse("3Gi"),   // 1Gi + 10% of 20Gi
	})

	tests := []struct {
		name      string
		resource  corev1.ResourceName
		count     int64
		gpuLabels bool
		arch      string
	}{
		{"p5.48xlarge", ResourceNvidiaGPU, 8, true, "amd64"},
		{"g4ad.xlarge", ResourceAMDGPU, 1, true, "amd64"},
		{"dl1.24xlarge", ResourceHabanaGaudi, 8, true, "amd64"},
		{"inf2.xlarge", ResourceNeuron, 1, false, "amd64"},
		{"trn1.32xlarge", ResourceNeuron, 16, false, "amd64"},
		{"g5g.xlarge", ResourceNvidiaGPU, 1, true, "arm64"},
	}
	for _, tt := range tests {
		it := types[tt.name]
		if it == nil {
			t.Errorf("%s missing", tt.name)
			continue
		}
		q := it.Capacity[tt.resource]
		if q.Value() != tt.count {
			t.Errorf("%s: %s = %s, want %d", tt.name, tt.resource, q.String(), tt.count)
		}
		_, hasGPU := it.Labels[LabelInstanceGPUName]
		if hasGPU != tt.gpuLabels {
			t.Errorf("%s: gpu-name label present=%v, want %v", tt.name, hasGPU, tt.gpuLabels)
		}
		if tt.gpuLabels && it.Labels[LabelInstanceGPUCount] != q.String() {
			t.Errorf("%s: gpu-count label %q, want %q", tt.name, it.Labels[LabelInstanceGPUCount], q.String())
		}
		if it.Labels[LabelArch] != tt.arch {
			t.Errorf("%s: arch %q", tt.name, it.Labels[LabelArch])
		}
	}
	if p5 := types["p5.48xlarge"]; p5 != nil && p5.Capacity.Pods().Value() != 100 {
		t.Errorf("p5.48xlarge pods %d, want 100 (default card ENIs only)", p5.Capacity.Pods().Value())
	}
	// Fractional GPU: labelled like Karpenter, but no whole GPU to request.
	if g := types["g6f.large"]; g != nil {
		if _, ok := g.Capacity[ResourceNvidiaGPU]; ok {
			t.Error("g6f.large must not offer nvidia.com/gpu")
		}
		if g.Labels[LabelInstanceGPUName] != "l4" || g.Labels[LabelInstanceGPUCount] != "0" {
			t.Errorf("g6f.large gpu labels %v", g.Labels)
		}
	}
	if m := types["m5.large"]; m != nil {
		if _, ok := m.Labels[LabelInstanceGPUName]; ok {
			t.Error("m5.large has a gpu label")
		}
	}
	// No ENI data, no Karpenter figure: kubelet's default.
	if c := types["cr1.8xlarge"]; c != nil && c.Capacity.Pods().Value() != DefaultMaxPods {
		t.Errorf("cr1.8xlarge pods %d, want %d", c.Capacity.Pods().Value(), DefaultMaxPods)
	}
}

func assertResources(t *testing.T, what string, got, want corev1.ResourceList) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
		return
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok || g.Cmp(w) != 0 {
			t.Errorf("%s: %s = %s, want %s", what, name, g.String(), w.String())
		}
	}
}

func TestDefaultCatalogDeterministic(t *testing.T) {
	a := mustDefaultCatalog(t, CatalogOptions{})
	b := mustDefaultCatalog(t, CatalogOptions{})
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two DefaultCatalog calls differ")
	}
	// The calls share nothing: changing one does not change the other.
	a[0].Labels["x"] = "y"
	a[0].Capacity[corev1.ResourceCPU] = resource.MustParse("999")
	if _, ok := b[0].Labels["x"]; ok || b[0].Capacity.Cpu().Value() == 999 {
		t.Fatal("DefaultCatalog results share maps")
	}
}

func TestCatalogOptions(t *testing.T) {
	base := byName(mustDefaultCatalog(t, CatalogOptions{}))
	capped := byName(mustDefaultCatalog(t, CatalogOptions{MaxPods: 110}))
	for name, it := range capped {
		b := base[name]
		bp, cp := b.Capacity.Pods().Value(), it.Capacity.Pods().Value()
		if cp != min(bp, 110) {
			t.Errorf("%s: pods %d with MaxPods 110, %d without", name, cp, bp)
		}
		kr := it.Overhead.KubeReserved[corev1.ResourceMemory]
		if kr.Value() != (11*cp+255)*mib {
			t.Errorf("%s: kube-reserved memory %s for %d pods", name, kr.String(), cp)
		}
	}
	if got := capped["c5.24xlarge"].Capacity.Pods().Value(); got != 110 {
		t.Errorf("c5.24xlarge pods %d, want 110", got)
	}

	sr := mustDefaultCatalog(t, CatalogOptions{SystemReserved: corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("100m"),
		corev1.ResourceMemory: resource.MustParse("200Mi"),
	}})
	for _, it := range sr {
		b := base[it.Name].Allocatable()
		a := it.Allocatable()
		if b.Cpu().MilliValue()-a.Cpu().MilliValue() != 100 && a.Cpu().MilliValue() != 0 {
			t.Errorf("%s: system-reserved cpu not subtracted: %s vs %s", it.Name, a.Cpu(), b.Cpu())
		}
		if b.Memory().Value()-a.Memory().Value() != 200*mib && a.Memory().Value() != 0 {
			t.Errorf("%s: system-reserved memory not subtracted", it.Name)
		}
	}

	big := byName(mustDefaultCatalog(t, CatalogOptions{RootVolume: resource.MustParse("100Gi")}))
	m5 := big["m5.large"]
	if got := m5.Capacity.StorageEphemeral().Value(); got != 100<<30 {
		t.Errorf("ephemeral capacity %d", got)
	}
	alloc := m5.Allocatable()
	if got := alloc.StorageEphemeral().Value(); got != 89<<30 { // 100 - 1 kube-reserved - 10 eviction
		t.Errorf("ephemeral allocatable %d, want 89Gi", got)
	}

	for _, bad := range []CatalogOptions{
		{MaxPods: -1},
		{RootVolume: resource.MustParse("-1Gi")},
		{SystemReserved: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("-1")}},
	} {
		if _, err := DefaultCatalog(bad); err == nil || !strings.Contains(err.Error(), "CatalogOptions.") {
			t.Errorf("options %+v: error %v, want one naming the option", bad, err)
		}
	}
}

func TestWithMaxPods(t *testing.T) {
	types := mustDefaultCatalog(t, CatalogOptions{})
	before := mustDefaultCatalog(t, CatalogOptions{})
	want := byName(mustDefaultCatalog(t, CatalogOptions{MaxPods: 110}))
	got := WithMaxPods(types, 110)
	if !reflect.DeepEqual(types, before) {
		t.Fatal("WithMaxPods modified its input")
	}
	if len(got) != len(types) {
		t.Fatalf("%d types out of %d", len(got), len(types))
	}
	shared, copied := 0, 0
	for i, it := range got {
		w := want[it.Name]
		assertResources(t, it.Name+" capacity", it.Capacity, w.Capacity)
		assertResources(t, it.Name+" allocatable", it.Allocatable(), w.Allocatable())
		if it == types[i] {
			shared++
			if types[i].Capacity.Pods().Value() > 110 {
				t.Errorf("%s: above the cap but shared", it.Name)
			}
		} else {
			copied++
		}
	}
	if shared == 0 || copied == 0 {
		t.Errorf("shared %d copied %d: expected both small (shared) and large (copied) types", shared, copied)
	}
	if out := WithMaxPods(types, 0); !reflect.DeepEqual(out, types) {
		t.Error("WithMaxPods(0) changed types")
	}
}

func TestKubeReservedCPUMilli(t *testing.T) {
	for _, tt := range []struct{ cpu, want int64 }{
		{0, 0},
		{500, 30},
		{1000, 60},
		{2000, 70},
		{3000, 75},
		{4000, 80},
		{8000, 90},
		{96000, 310}, // 80 + 0.25% of 92000
		{192000, 550},
	} {
		if got := KubeReservedCPUMilli(tt.cpu); got != tt.want {
			t.Errorf("KubeReservedCPUMilli(%d) = %d, want %d", tt.cpu, got, tt.want)
		}
	}
}

func TestSpotZoneFactor(t *testing.T) {
	seen := map[float64]bool{}
	for _, it := range []string{"m5.large", "c5.xlarge", "r6g.2xlarge"} {
		for _, z := range usEast1Zones {
			f := SpotZoneFactor(it, z)
			if f < 0.95 || f > 1.05 {
				t.Errorf("SpotZoneFactor(%s, %s) = %v", it, z, f)
			}
			if f != SpotZoneFactor(it, z) {
				t.Errorf("SpotZoneFactor(%s, %s) not deterministic", it, z)
			}
			seen[f] = true
		}
	}
	if len(seen) < 15 {
		t.Errorf("only %d distinct factors over 18 pools", len(seen))
	}
}

const validCatalog = `{
  "format": "fleetpack-catalog/v1",
  "region": "eu-west-1",
  "zones": ["eu-west-1a", "eu-west-1b"],
  "instanceTypes": [
    {"name":"m5.large","family":"m5","category":"m","generation":5,"size":"large","vcpu":2,"memoryMiB":8192,"arch":"amd64","defaultCardENIs":3,"ipv4PerENI":10,"onDemandPrice":0.107,"spotPrice":0.04},
    {"name":"c7g.large","family":"c7g","category":"c","generation":7,"size":"large","vcpu":2,"memoryMiB":4096,"arch":"arm64","maxPods":17,"onDemandPrice":0.08}
  ]
}`

func TestLoadCatalog(t *testing.T) {
	types, err := LoadCatalog(strings.NewReader(validCatalog), CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(types) != 2 || types[0].Name != "c7g.large" || types[1].Name != "m5.large" {
		t.Fatalf("types %v", types)
	}
	c7g, m5 := types[0], types[1]
	if c7g.Labels[LabelRegion] != "eu-west-1" || len(c7g.Offerings) != 2 || len(m5.Offerings) != 4 {
		t.Errorf("c7g %v / %d offerings, m5 %d offerings", c7g.Labels, len(c7g.Offerings), len(m5.Offerings))
	}
	if got := c7g.Capacity.Pods().Value(); got != 17 {
		t.Errorf("c7g pods %d, want maxPods 17", got)
	}
	// arm64: (4096-64) - ceil(7.5%) = 4032 - 303.
	if got := c7g.Capacity.Memory().Value() / mib; got != 3729 {
		t.Errorf("c7g memory capacity %dMi, want 3729Mi", got)
	}
}

func TestLoadCatalogErrors(t *testing.T) {
	entry := `{"name":"m5.large","family":"m5","category":"m","generation":5,"size":"large","vcpu":2,"memoryMiB":8192,"arch":"amd64","onDemandPrice":0.1}`
	doc := func(types ...string) string {
		return `{"format":"fleetpack-catalog/v1","region":"r","zones":["z"],"instanceTypes":[` + strings.Join(types, ",") + `]}`
	}
	with := func(old, repl string) string { return strings.Replace(entry, old, repl, 1) }
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"not json", `{`, []string{"decoding catalog"}},
		{"trailing data", doc(entry) + `{}`, []string{"after the JSON document"}},
		{"unknown field", doc(with(`"vcpu":2`, `"vcpus":2`)), []string{"vcpus"}},
		{"wrong type", doc(with(`"vcpu":2`, `"vcpu":"2"`)), []string{"vcpu"}},
		{"format", strings.Replace(doc(entry), "fleetpack-catalog/v1", "v0", 1), []string{"format"}},
		{"no region", strings.Replace(doc(entry), `"region":"r"`, `"region":""`, 1), []string{"region"}},
		{"no zones", strings.Replace(doc(entry), `["z"]`, `[]`, 1), []string{"zones"}},
		{"duplicate zone", strings.Replace(doc(entry), `["z"]`, `["z","z"]`, 1), []string{"zones[1]"}},
		{"zero vcpu", doc(entry, with(`"vcpu":2`, `"vcpu":0`)), []string{"instanceTypes[1]", `"m5.large"`, "vcpu"}},
		{"no memory", doc(with(`"memoryMiB":8192`, `"memoryMiB":-1`)), []string{"instanceTypes[0]", "memoryMiB"}},
		{"arch", doc(with(`"amd64"`, `"x86_64"`)), []string{"arch"}},
		{"family", doc(with(`"family":"m5"`, `"family":"m6"`)), []string{"family"}},
		{"size", doc(with(`"size":"large"`, `"size":"xlarge"`)), []string{"size"}},
		{"name", doc(with(`"name":"m5.large"`, `"name":"m5large"`)), []string{"name"}},
		{"no price", doc(with(`"onDemandPrice":0.1`, `"onDemandPrice":0`)), []string{"onDemandPrice"}},
		{"negative spot", doc(with(`"onDemandPrice":0.1`, `"onDemandPrice":0.1,"spotPrice":-1`)), []string{"spotPrice"}},
		{"half eni", doc(with(`"arch":"amd64"`, `"arch":"amd64","defaultCardENIs":3`)), []string{"defaultCardENIs"}},
		{"gpu without name", doc(with(`"arch":"amd64"`, `"arch":"amd64","gpuCount":1`)), []string{"gpuName"}},
		{"gpu maker", doc(with(`"arch":"amd64"`, `"arch":"amd64","gpuName":"x","gpuCount":1,"gpuManufacturer":"intel"`)), []string{"gpuManufacturer"}},
		{"duplicate", doc(entry, entry), []string{"instanceTypes[1]", "duplicate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCatalog(strings.NewReader(tt.doc), CatalogOptions{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// FuzzLoadCatalog checks that LoadCatalog never panics, and that whatever it
// accepts is well formed and survives a round trip through the format.
func FuzzLoadCatalog(f *testing.F) {
	f.Add([]byte(validCatalog))
	f.Add([]byte(`{"format":"fleetpack-catalog/v1","region":"r","zones":["z"],"instanceTypes":[]}`))
	f.Add([]byte(`{"format":"fleetpack-catalog/v1","region":"r","zones":["z"],"instanceTypes":[{"name":"p.x","family":"p","category":"p","size":"x","vcpu":1,"memoryMiB":1,"arch":"arm64","gpuName":"g","gpuCount":3,"gpuManufacturer":"amd","acceleratorName":"trainium","acceleratorCount":2,"onDemandPrice":1e-9,"spotPrice":5}]}`))
	f.Add([]byte(`{"format":"fleetpack-catalog/v1","region":"r","zones":["z"],"instanceTypes":[{"name":"m.x","vcpu":1e30}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add(defaultCatalogJSON[:2000])
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseCatalogFile(bytes.NewReader(data))
		types, err2 := LoadCatalog(bytes.NewReader(data), CatalogOptions{})
		if (err == nil) != (err2 == nil) {
			t.Fatalf("ParseCatalogFile err %v, LoadCatalog err %v", err, err2)
		}
		if err != nil {
			return
		}
		if len(types) != len(file.InstanceTypes) {
			t.Fatalf("%d types from %d entries", len(types), len(file.InstanceTypes))
		}
		for i, it := range types {
			if i > 0 && types[i-1].Name >= it.Name {
				t.Fatalf("not sorted: %s, %s", types[i-1].Name, it.Name)
			}
			if len(it.Offerings) < len(file.Zones) {
				t.Fatalf("%s: %d offerings for %d zones", it.Name, len(it.Offerings), len(file.Zones))
			}
			for name, q := range it.Allocatable() {
				if q.Sign() < 0 {
					t.Fatalf("%s: negative allocatable %s", it.Name, name)
				}
			}
			for _, o := range it.Offerings {
				if !(o.Price > 0) || math.IsInf(o.Price, 0) {
					t.Fatalf("%s: bad price %v", it.Name, o.Price)
				}
			}
		}
		again, err := json.Marshal(file)
		if err != nil {
			t.Fatal(err)
		}
		types2, err := LoadCatalog(bytes.NewReader(again), CatalogOptions{})
		if err != nil {
			t.Fatalf("re-encoded catalog does not load: %v", err)
		}
		if !reflect.DeepEqual(types, types2) {
			t.Fatal("round trip changed the catalog")
		}
	})
}

func BenchmarkDefaultCatalog(b *testing.B) {
	for b.Loop() {
		if _, err := DefaultCatalog(CatalogOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
