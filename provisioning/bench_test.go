package provisioning

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/fleetpack/fleetpack/offerings"
)

// BenchmarkProvision measures one provisioning pass over 500 pending pods of
// five sizes against the embedded us-east-1 catalog: listing, solving,
// launching (on the in-memory cloud) and nominating.
func BenchmarkProvision(b *testing.B) {
	catalog, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	sizes := [][2]string{{"250m", "512Mi"}, {"500m", "1Gi"}, {"1", "2Gi"}, {"2", "4Gi"}, {"100m", "128Mi"}}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	pools := []*NodePool{pool("default", 0, capacityTypes("spot", "on-demand"))}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		fc := clocktesting.NewFakeClock(testEpoch)
		cluster := NewMemoryCluster(fc, MemoryClusterOptions{NodeReadyDelay: 30e9})
		prov, err := New(cluster, newFakeCloud(catalog), pools, Options{Clock: fc, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		for i := range 500 {
			sz := sizes[i%len(sizes)]
			p := ownedPod(fmt.Sprintf("w%d-%d", i%len(sizes), i), fmt.Sprintf("w%d", i%len(sizes)), nil)
			p.Spec.Containers = []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse(sz[0]), corev1.ResourceMemory: resource.MustParse(sz[1])}}}}
			if err := cluster.CreatePod(b.Context(), p); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		res, err := prov.Provision(b.Context())
		if err != nil || res.Pods() != 500 {
			b.Fatalf("placed %d of 500: %v", res.Pods(), err)
		}
	}
}
