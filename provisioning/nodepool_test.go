package provisioning

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning/disruption"
	"github.com/fleetpack/fleetpack/scheduling"
)

const spotNodePoolYAML = `
apiVersion: fleetpack.dev/v1
kind: NodePool
metadata:
  name: spot
spec:
  template:
    metadata:
      labels:
        intent: apps
    spec:
      requirements:
      - key: karpenter.sh/capacity-type
        operator: In
        values: ["spot"]
      - key: karpenter.k8s.aws/instance-cpu
        operator: Lt
        values: ["9"]
      - key: kubernetes.io/arch
        operator: In
        values: ["amd64"]
      taints:
      - key: example.com/special
        value: "true"
        effect: NoSchedule
      startupTaints:
      - key: node.cilium.io/agent-not-ready
        value: "true"
        effect: NoExecute
      kubelet:
        maxPods: 110
  limits:
    cpu: "100"
    memory: 400Gi
    nodes: "10"
  weight: 50
  disruption:
    consolidateAfter: 45s
`

func TestParseNodePool(t *testing.T) {
	np, err := ParseNodePool([]byte(spotNodePoolYAML))
	if err != nil {
		t.Fatalf("ParseNodePool: %v", err)
	}
	if np.Name != "spot" || np.WeightValue() != 50 || np.ConsolidateAfter() != 45*time.Second {
		t.Errorf("got name %q weight %d consolidateAfter %s", np.Name, np.WeightValue(), np.ConsolidateAfter())
	}
	if got := np.Spec.Template.Metadata.Labels["intent"]; got != "apps" {
		t.Errorf("label intent = %q", got)
	}
	if len(np.Spec.Template.Spec.Requirements) != 3 || np.Spec.Template.Spec.Requirements[1].Operator != corev1.NodeSelectorOpLt {
		t.Errorf("requirements = %+v", np.Spec.Template.Spec.Requirements)
	}
	if len(np.Spec.Template.Spec.StartupTaints) != 1 || np.Spec.Template.Spec.StartupTaints[0].Effect != corev1.TaintEffectNoExecute {
		t.Errorf("startupTaints = %+v", np.Spec.Template.Spec.StartupTaints)
	}
	if got := *np.Spec.Template.Spec.Kubelet.MaxPods; got != 110 {
		t.Errorf("maxPods = %d", got)
	}
	if q := np.Spec.Limits[scheduling.ResourceNodes]; q.Value() != 10 {
		t.Errorf("limits.nodes = %s", q.String())
	}
	if q := np.Spec.Limits[corev1.ResourceMemory]; q.Cmp(resource.MustParse("400Gi")) != 0 {
		t.Errorf("limits.memory = %s", q.String())
	}
}

func TestParseNodePoolErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"wrong kind", "apiVersion: fleetpack.dev/v1\nkind: Pod\nmetadata: {name: a}\nspec: {template: {spec: {}}}", `kind: must be "NodePool"`},
		{"wrong apiVersion", "apiVersion: karpenter.sh/v1beta1\nkind: NodePool\nmetadata: {name: a}\nspec: {template: {spec: {}}}", `apiVersion: must be "fleetpack.dev/v1" or "karpenter.sh/v1"`},
		{"unsupported Karpenter field", "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: a}\nspec: {template: {spec: {terminationGracePeriod: 1h}}}", `unknown field "terminationGracePeriod"`},
		{"bad policy", "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: a}\nspec: {template: {spec: {}}, disruption: {consolidationPolicy: Always}}", `spec.disruption.consolidationPolicy: must be WhenEmpty`},
		{"bad budget", "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: a}\nspec: {template: {spec: {}}, disruption: {budgets: [{nodes: lots}]}}", `spec.disruption.budgets[0]: nodes: "lots"`},
		{"bad schedule", "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: a}\nspec: {template: {spec: {}}, disruption: {budgets: [{nodes: '0', schedule: '0 25 * * *', duration: 1h}]}}", `spec.disruption.budgets[0]: schedule:`},
		{"unknown field", "apiVersion: fleetpack.dev/v1\nkind: NodePool\nmetadata: {name: a}\nspec: {template: {spec: {}}, wieght: 3}", `unknown field "wieght"`},
		{"invalid spec", "apiVersion: fleetpack.dev/v1\nkind: NodePool\nmetadata: {name: a}\nspec: {template: {spec: {}}, weight: 300}", `spec.weight: must be between 1 and 100`},
		{"not yaml", "{[", "decoding NodePool"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseNodePool([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseNodePools(t *testing.T) {
	doc := "# pools\n---\n" + spotNodePoolYAML + "\n---\n" + strings.ReplaceAll(spotNodePoolYAML, "name: spot", "name: other") + "---\n"
	pools, err := ParseNodePools([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 2 || pools[0].Name != "spot" || pools[1].Name != "other" {
		t.Fatalf("got %d pools", len(pools))
	}
	_, err = ParseNodePools([]byte(spotNodePoolYAML + "\n---\nkind: NodePool\n"))
	if err == nil || !strings.Contains(err.Error(), "document 1") {
		t.Fatalf("err = %v, want it to name document 1", err)
	}
}

func validPool() *NodePool {
	np, err := ParseNodePool([]byte(spotNodePoolYAML))
	if err != nil {
		panic(err)
	}
	return np
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*NodePool)
		want   string
	}{
		{"Gt without integer", func(np *NodePool) {
			np.Spec.Template.Spec.Requirements[1] = corev1.NodeSelectorRequirement{Key: offerings.LabelInstanceCPU, Operator: corev1.NodeSelectorOpGt, Values: []string{"a", "b"}}
		}, `spec.template.spec.requirements[1]: values: operator Gt needs exactly one integer value`},
		{"unknown operator", func(np *NodePool) {
			np.Spec.Template.Spec.Requirements[0].Operator = "Near"
		}, `spec.template.spec.requirements[0]: operator: "Near" is not one of`},
		{"unknown capacity type", func(np *NodePool) {
			np.Spec.Template.Spec.Requirements[0].Values = []string{"spot", "reserved-ish"}
		}, `spec.template.spec.requirements[0].values[1]: unknown capacity type "reserved-ish"`},
		{"hostname requirement", func(np *NodePool) {
			np.Spec.Template.Spec.Requirements = append(np.Spec.Template.Spec.Requirements, corev1.NodeSelectorRequirement{Key: offerings.LabelHostname, Operator: corev1.NodeSelectorOpExists})
		}, `spec.template.spec.requirements[3].key: label "kubernetes.io/hostname" is restricted`},
		{"nodepool label", func(np *NodePool) {
			np.Spec.Template.Metadata.Labels[offerings.LabelNodePool] = "x"
		}, `spec.template.metadata.labels[karpenter.sh/nodepool]: label "karpenter.sh/nodepool" is restricted`},
		{"restricted domain", func(np *NodePool) {
			np.Spec.Template.Metadata.Labels["kubernetes.io/role"] = "x"
		}, `domain "kubernetes.io" is restricted`},
		{"bad label value", func(np *NodePool) {
			np.Spec.Template.Metadata.Labels["team"] = "has spaces"
		}, `spec.template.metadata.labels[team]: invalid value "has spaces"`},
		{"label contradicts requirement", func(np *NodePool) {
			np.Spec.Template.Spec.Requirements = append(np.Spec.Template.Spec.Requirements, corev1.NodeSelectorRequirement{Key: "intent", Operator: corev1.NodeSelectorOpIn, Values: []string{"batch"}})
		}, `labels[intent]: label intent=apps contradicts requirement`},
		{"empty intersection", func(np *NodePool) {
			np.Spec.Template.Spec.Requirements = append(np.Spec.Template.Spec.Requirements, corev1.NodeSelectorRequirement{Key: offerings.LabelArch, Operator: corev1.NodeSelectorOpNotIn, Values: []string{"amd64"}})
		}, `requirements on "kubernetes.io/arch" allow no value`},
		{"weight too high", func(np *NodePool) { w := int32(101); np.Spec.Weight = &w }, `spec.weight: must be between 1 and 100, got 101`},
		{"weight zero", func(np *NodePool) { w := int32(0); np.Spec.Weight = &w }, `spec.weight: must be between 1 and 100, got 0`},
		{"negative limit", func(np *NodePool) { np.Spec.Limits[corev1.ResourceCPU] = resource.MustParse("-1") }, `spec.limits[cpu]: must not be negative`},
		{"bad taint effect", func(np *NodePool) { np.Spec.Template.Spec.Taints[0].Effect = "NoWay" }, `spec.template.spec.taints[0].effect: "NoWay" is not one of`},
		{"duplicate startup taint", func(np *NodePool) {
			np.Spec.Template.Spec.StartupTaints = append(np.Spec.Template.Spec.StartupTaints, np.Spec.Template.Spec.StartupTaints[0])
		}, `spec.template.spec.startupTaints[1]: duplicate taint`},
		{"maxPods zero", func(np *NodePool) { z := int32(0); np.Spec.Template.Spec.Kubelet.MaxPods = &z }, `spec.template.spec.kubelet.maxPods: must be at least 1`},
		{"negative consolidateAfter", func(np *NodePool) { np.Spec.Disruption.ConsolidateAfter.Duration = -time.Second }, `spec.disruption.consolidateAfter: must not be negative`},
		{"missing name", func(np *NodePool) { np.Name = "" }, `metadata.name: must not be empty`},
		{"bad name", func(np *NodePool) { np.Name = "Spot_Pool" }, `metadata.name:`},
		{"bad requirement key", func(np *NodePool) { np.Spec.Template.Spec.Requirements[2].Key = "bad key!" }, `spec.template.spec.requirements[2].key:`},
	}
	if err := validPool().Validate(); err != nil {
		t.Fatalf("valid pool: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			np := validPool()
			tc.mutate(np)
			err := np.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v\nwant it to contain %q", err, tc.want)
			}
			if np.Name != "" && !strings.Contains(err.Error(), `nodepool "`+np.Name+`"`) {
				t.Errorf("error %v does not name the nodepool", err)
			}
		})
	}
}

func TestValidateAllowsWellKnownAndCustomKeys(t *testing.T) {
	np := validPool()
	np.Spec.Template.Spec.Requirements = append(np.Spec.Template.Spec.Requirements,
		corev1.NodeSelectorRequirement{Key: offerings.LabelInstanceFamily, Operator: corev1.NodeSelectorOpIn, Values: []string{"m5", "c5"}},
		corev1.NodeSelectorRequirement{Key: offerings.LabelZone, Operator: corev1.NodeSelectorOpNotIn, Values: []string{"us-east-1e"}},
		corev1.NodeSelectorRequirement{Key: "example.com/team", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}},
	)
	np.Spec.Template.Metadata.Labels["node-restriction.kubernetes.io/pool"] = "x"
	if err := np.Validate(); err != nil {
		t.Fatal(err)
	}
}

func testInstanceType(name, arch string, cpu int64, memGi int64, pods int64, offs ...offerings.Offering) *offerings.InstanceType {
	family, _, _ := strings.Cut(name, ".")
	return &offerings.InstanceType{
		Name: name,
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewQuantity(cpu, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(memGi<<30, resource.BinarySI),
			corev1.ResourcePods:   *resource.NewQuantity(pods, resource.DecimalSI),
		},
		Labels: map[string]string{
			offerings.LabelInstanceType:   name,
			offerings.LabelArch:           arch,
			offerings.LabelOS:             "linux",
			offerings.LabelInstanceFamily: family,
			offerings.LabelInstanceCPU:    resource.NewQuantity(cpu, resource.DecimalSI).String(),
		},
		Offerings: offs,
	}
}

func TestTemplate(t *testing.T) {
	spot := func(zone string, price float64) offerings.Offering {
		return offerings.Offering{Zone: zone, CapacityType: offerings.CapacityTypeSpot, Price: price, Available: true}
	}
	od := func(zone string, price float64) offerings.Offering {
		return offerings.Offering{Zone: zone, CapacityType: offerings.CapacityTypeOnDemand, Price: price, Available: true}
	}
	types := []*offerings.InstanceType{
		testInstanceType("m5.large", "amd64", 2, 8, 29, spot("us-east-1a", 0.04), od("us-east-1a", 0.096)),
		testInstanceType("m5.4xlarge", "amd64", 16, 64, 234, spot("us-east-1a", 0.3)), // too many cpus
		testInstanceType("m6g.large", "arm64", 2, 8, 29, spot("us-east-1a", 0.03)),    // wrong arch
		testInstanceType("m5.xlarge", "amd64", 4, 16, 58, od("us-east-1a", 0.19)),     // no spot offering
		testInstanceType("c5.2xlarge", "amd64", 8, 16, 200, spot("us-east-1b", 0.1)),  // maxPods capped
	}
	np := validPool()
	used := corev1.ResourceList{
		corev1.ResourceCPU:       resource.MustParse("30"),
		corev1.ResourceMemory:    resource.MustParse("500Gi"),
		scheduling.ResourceNodes: resource.MustParse("3"),
	}
	tmpl, err := np.Template(types, used)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range tmpl.InstanceTypes {
		names = append(names, it.Name)
	}
	if got := strings.Join(names, ","); got != "m5.large,c5.2xlarge" {
		t.Errorf("instance types = %s, want m5.large,c5.2xlarge", got)
	}
	if q := tmpl.InstanceTypes[1].Capacity[corev1.ResourcePods]; q.Value() != 110 {
		t.Errorf("c5.2xlarge pods = %s, want 110", q.String())
	}
	if q := types[4].Capacity[corev1.ResourcePods]; q.Value() != 200 {
		t.Errorf("catalog was modified: pods = %s", q.String())
	}
	if q := tmpl.InstanceTypes[0].Capacity[corev1.ResourcePods]; q.Value() != 29 {
		t.Errorf("m5.large pods = %s, want 29 (below the cap)", q.String())
	}
	if tmpl.NodePool != "spot" || tmpl.Weight != 50 {
		t.Errorf("nodepool %q weight %d", tmpl.NodePool, tmpl.Weight)
	}
	if tmpl.Labels["intent"] != "apps" {
		t.Errorf("labels = %v", tmpl.Labels)
	}
	// The template carries the pool's parts; the solver folds them, and
	// NodeRequirements is that folding, the same one the pool's drift check reads.
	folded := tmpl.NodeRequirements()
	if !folded.Allows("intent", "apps") || folded.Allows("intent", "batch") {
		t.Errorf("node requirements do not pin intent=apps: %s", folded.String())
	}
	if !folded.Allows(offerings.LabelNodePool, "spot") || folded.Allows(offerings.LabelNodePool, "other") {
		t.Errorf("node requirements do not pin the NodePool's name: %s", folded.String())
	}
	if folded.Allows(offerings.LabelCapacityType, offerings.CapacityTypeOnDemand) {
		t.Errorf("node requirements allow on-demand: %s", folded.String())
	}
	poolReqs, err := np.Requirements()
	if err != nil {
		t.Fatal(err)
	}
	if poolReqs.String() != folded.String() {
		t.Errorf("NodePool.Requirements() = %s, the template folds to %s", poolReqs.String(), folded.String())
	}
	wantLimits := map[corev1.ResourceName]string{corev1.ResourceCPU: "70", corev1.ResourceMemory: "0", scheduling.ResourceNodes: "7"}
	for name, want := range wantLimits {
		q := tmpl.Limits[name]
		if q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("limits[%s] = %s, want %s", name, q.String(), want)
		}
	}
	if len(tmpl.Taints) != 1 || len(tmpl.StartupTaints) != 1 {
		t.Errorf("taints %v startup %v", tmpl.Taints, tmpl.StartupTaints)
	}
}

func TestTemplateDefaultsToOnDemand(t *testing.T) {
	np := &NodePool{}
	np.Name = "default"
	types := []*offerings.InstanceType{
		testInstanceType("m5.large", "amd64", 2, 8, 29, offerings.Offering{Zone: "a", CapacityType: offerings.CapacityTypeSpot, Price: 0.04, Available: true}),
		testInstanceType("m5.xlarge", "amd64", 4, 16, 58, offerings.Offering{Zone: "a", CapacityType: offerings.CapacityTypeOnDemand, Price: 0.19, Available: true}),
	}
	tmpl, err := np.Template(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.Requirements.Allows(offerings.LabelCapacityType, offerings.CapacityTypeSpot) {
		t.Errorf("unconstrained capacity type should default to on-demand: %s", tmpl.Requirements.String())
	}
	if len(tmpl.InstanceTypes) != 1 || tmpl.InstanceTypes[0].Name != "m5.xlarge" {
		t.Errorf("instance types = %v, want only m5.xlarge (spot-only type dropped)", tmpl.InstanceTypes)
	}
	if tmpl.Limits != nil {
		t.Errorf("limits = %v, want none", tmpl.Limits)
	}
}

func TestTemplateRejectsInvalidPool(t *testing.T) {
	np := validPool()
	np.Spec.Template.Spec.Taints[0].Effect = "Bogus"
	if _, err := np.Template(nil, nil); err == nil {
		t.Fatal("Template of an invalid pool succeeded")
	}
}

func FuzzParseNodePool(f *testing.F) {
	f.Add([]byte(spotNodePoolYAML))
	f.Add([]byte(`{"apiVersion":"fleetpack.dev/v1","kind":"NodePool","metadata":{"name":"x"},"spec":{"template":{"spec":{"requirements":[{"key":"a","operator":"Gt","values":["1"]}]}}}}`))
	f.Add([]byte("apiVersion: fleetpack.dev/v1\nkind: NodePool\nmetadata: {name: a}\nspec: {limits: {cpu: -1}}"))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		np, err := ParseNodePool(data)
		if err != nil {
			return
		}
		// Whatever parses is valid and yields a template.
		if err := np.Validate(); err != nil {
			t.Fatalf("parsed pool fails Validate: %v", err)
		}
		if _, err := np.Template(nil, nil); err != nil {
			t.Fatalf("parsed pool has no template: %v", err)
		}
	})
}

// A Karpenter v1 NodePool manifest, as users have them, is read as it is.
func TestParseKarpenterNodePool(t *testing.T) {
	doc := `apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: default
spec:
  template:
    spec:
      requirements:
        - key: karpenter.sh/capacity-type
          operator: In
          values: ["spot", "on-demand"]
      nodeClassRef:
        group: karpenter.k8s.aws
        kind: EC2NodeClass
        name: default
      expireAfter: 720h
  limits:
    cpu: 1000
  disruption:
    consolidationPolicy: WhenEmptyOrUnderutilized
    consolidateAfter: 1m
    budgets:
      - nodes: "10%"
      - nodes: "0"
        schedule: "0 9 * * mon-fri"
        duration: 8h
        reasons: [Drifted]
`
	_, err := ParseNodePool([]byte(doc))
	if err == nil || !strings.Contains(err.Error(), "budgets[1]: schedule") {
		t.Fatalf("day names are not supported and must be reported on the field; got %v", err)
	}
	doc = strings.Replace(doc, "mon-fri", "1-5", 1)
	np, err := ParseNodePool([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	p, err := np.DisruptionPool()
	if err != nil {
		t.Fatal(err)
	}
	if p.Policy != disruption.WhenEmptyOrUnderutilized || p.ConsolidateAfter != time.Minute || p.ExpireAfter != 720*time.Hour || len(p.Budgets) != 2 {
		t.Errorf("pool = %+v", p)
	}
	if ign := np.Ignored(); len(ign) != 1 || !strings.Contains(ign[0], "spec.template.spec.nodeClassRef") {
		t.Errorf("ignored = %v", ign)
	}
	never := strings.Replace(strings.Replace(doc, "consolidateAfter: 1m", "consolidateAfter: Never", 1), "expireAfter: 720h", "expireAfter: Never", 1)
	if np, err = ParseNodePool([]byte(never)); err != nil {
		t.Fatal(err)
	}
	if p, _ = np.DisruptionPool(); p.ExpireAfter != 0 || p.ConsolidateAfter < 100*365*24*time.Hour {
		t.Errorf("Never: expireAfter %v consolidateAfter %v", p.ExpireAfter, p.ConsolidateAfter)
	}
	// The template hash moves with labels and taints, not requirements.
	h := np.TemplateHash()
	np.Spec.Template.Spec.Requirements = nil
	if np.TemplateHash() != h {
		t.Error("requirements changed the template hash")
	}
	np.Spec.Template.Metadata.Labels = map[string]string{"team": "a"}
	if np.TemplateHash() == h {
		t.Error("a new label left the template hash unchanged")
	}
}
