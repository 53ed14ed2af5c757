package provisioning

import (
	"math"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/internal/fixture"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

const costlyNodePoolYAML = `
apiVersion: fleetpack.dev/v1
kind: NodePool
metadata:
  name: costly
spec:
  template:
    spec:
      blockDeviceMappings:
      - deviceName: /dev/xvda
        ebs: {volumeSize: 4Gi, volumeType: gp3}
      - deviceName: /dev/xvdb
        rootVolume: true
        ebs: {volumeSize: 100Gi, volumeType: gp2}
      associatePublicIPAddress: true
      additionalHourlyCost: "0.01"
      burstablePolicy: Credits
`

func TestNodeCostsReachTheTemplate(t *testing.T) {
	np, err := ParseNodePool([]byte(costlyNodePoolYAML))
	if err != nil {
		t.Fatal(err)
	}
	types, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := np.Template(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := offerings.NodeCosts{RootVolumeGiB: 100, RootVolumeType: "gp2", PublicIPv4: true, ExtraHourly: 0.01 + 4*0.08/730}
	got := tmpl.NodeCosts
	if got.RootVolumeGiB != want.RootVolumeGiB || got.RootVolumeType != want.RootVolumeType || got.PublicIPv4 != want.PublicIPv4 || math.Abs(got.ExtraHourly-want.ExtraHourly) > 1e-12 {
		t.Errorf("NodeCosts = %+v, want %+v", got, want)
	}
	// 100 GiB gp2 + 4 GiB gp3 + IPv4 + licence.
	if h, w := got.Hourly(), 100*0.10/730+4*0.08/730+0.005+0.01; math.Abs(h-w) > 1e-12 {
		t.Errorf("Hourly = %g, want %g", h, w)
	}
	if tmpl.Burstable != offerings.BurstableCredits {
		t.Errorf("Burstable = %q, want Credits", tmpl.Burstable)
	}

	plain, err := ParseNodePool([]byte(strings.Replace(spotNodePoolYAML, "name: spot", "name: plain", 1)))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err = plain.Template(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.NodeCosts != (offerings.NodeCosts{}) || tmpl.Burstable != "" {
		t.Errorf("a pool that says nothing: NodeCosts %+v, Burstable %q; want the defaults", tmpl.NodeCosts, tmpl.Burstable)
	}
}

func TestValidateNodeCosts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*NodeCostSpec)
		want   string
	}{
		{"unknown volume type", func(s *NodeCostSpec) {
			s.BlockDeviceMappings = []BlockDeviceMapping{{EBS: &BlockDevice{VolumeType: "io9"}}}
		}, `spec.template.spec.blockDeviceMappings[0].ebs.volumeType: unknown volume type "io9"`},
		{"zero volume size", func(s *NodeCostSpec) {
			q := resource.MustParse("0")
			s.BlockDeviceMappings = []BlockDeviceMapping{{EBS: &BlockDevice{VolumeSize: &q}}}
		}, `spec.template.spec.blockDeviceMappings[0].ebs.volumeSize: must be between`},
		{"two root volumes", func(s *NodeCostSpec) {
			s.BlockDeviceMappings = []BlockDeviceMapping{{RootVolume: true}, {RootVolume: true}}
		}, `spec.template.spec.blockDeviceMappings[1].rootVolume: only one mapping`},
		{"negative hourly cost", func(s *NodeCostSpec) {
			q := resource.MustParse("-0.5")
			s.AdditionalHourlyCost = &q
		}, `spec.template.spec.additionalHourlyCost: must be between 0 and 100`},
		{"unknown burstable policy", func(s *NodeCostSpec) {
			s.BurstablePolicy = "Unlimited"
		}, `spec.template.spec.burstablePolicy: unknown burstable policy "Unlimited"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			np, err := ParseNodePool([]byte(spotNodePoolYAML))
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(&np.Spec.Template.Spec.NodeCostSpec)
			err = np.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `nodepool "spot"`) {
				t.Errorf("Validate() = %v, want an error naming the pool and containing %q", err, tc.want)
			}
		})
	}
}

// Consolidation prices an existing node by its bill, as the replacements it
// weighs it against are priced: the offering plus the pool's per-node costs
// and, under Credits, the surplus credits its pods' cpu burns, never the
// list price alone.
func TestNodeBillIsTheBillNotTheListPrice(t *testing.T) {
	catalog, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var it *offerings.InstanceType
	for _, c := range catalog {
		if c.Name == "t3.medium" {
			it = c
		}
	}
	if it == nil {
		t.Fatal("no t3.medium in the catalog")
	}
	o := it.Offerings[0]
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{
		offerings.LabelInstanceType: it.Name, offerings.LabelZone: o.Zone, offerings.LabelCapacityType: o.CapacityType,
	}}}
	pods := []*corev1.Pod{fixture.Pod("default", "a", fixture.Requests("900m", "1Gi")), fixture.Pod("default", "b", fixture.Requests("600m", "1Gi"))}
	tmpl := &scheduling.NodeTemplate{NodePool: "default", NodeCosts: offerings.NodeCosts{ExtraHourly: 0.05}, Burstable: offerings.BurstableCredits}
	got := nodeBill(node, pods, tmpl, catalog)
	if want := offerings.NodeBill(it, o, tmpl.NodeCosts, tmpl.Burstable, 1500); got != want {
		t.Errorf("nodeBill = %v, want NodeBill's %v", got, want)
	}
	// 1.5 vCPUs requested on a type that sustains 0.4 burn credits; the
	// stated cost and the root volume come on top of the offering.
	if surplus := it.SurplusCreditHourly(1500); surplus <= 0 || got < o.Price+0.05+surplus {
		t.Errorf("nodeBill = %v, want at least list %v + stated 0.05 + credits %v", got, o.Price, surplus)
	}
	if other := (&corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{offerings.LabelInstanceType: "no-such-type"}}}); nodeBill(other, nil, tmpl, catalog) != 0 {
		t.Error("a node of a type the catalog lacks is priced, want 0")
	}
}
