package provisioning

import (
	"math"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/fleetpack/fleetpack/offerings"
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
