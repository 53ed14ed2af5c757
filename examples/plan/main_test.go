package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

func runPlan(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func runJSON(t *testing.T, args ...string) planJSON {
	t.Helper()
	out, errOut, code := runPlan(t, append(args, "-o", "json")...)
	if code != 0 {
		t.Fatalf("plan %v: exit %d, stderr:\n%s", args, code, errOut)
	}
	var p planJSON
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decoding JSON output: %v\n%s", err, out)
	}
	return p
}

// allPods lists where every pod went: claim index, node name or
// "unschedulable".
func allPods(t *testing.T, p planJSON) map[string]string {
	t.Helper()
	where := map[string]string{}
	put := func(pod, place string) {
		if prev, ok := where[pod]; ok {
			t.Errorf("pod %s appears twice: %s and %s", pod, prev, place)
		}
		where[pod] = place
	}
	for i, c := range p.NodeClaims {
		for _, pod := range c.Pods {
			put(pod, fmt.Sprintf("claim %d (%s)", i, c.NodePool))
		}
	}
	for _, e := range p.ExistingNodes {
		for _, pod := range e.Pods {
			put(pod, "node "+e.Name)
		}
	}
	for _, u := range p.Unschedulable {
		put(u.Pod, "unschedulable")
	}
	return where
}

func TestScenarioJSON(t *testing.T) {
	p := runJSON(t, "-f", "testdata/scenario.yaml")
	where := allPods(t, p)
	// Every pending pod is accounted for, replicas are named <name>-<index>,
	// and the pod already bound to node-a is not re-planned.
	want := []string{"default/db-0", "default/db-1", "default/huge"}
	for i := range 6 {
		want = append(want, fmt.Sprintf("default/web-%d", i))
	}
	got := make([]string, 0, len(where))
	for pod := range where {
		got = append(got, pod)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("planned pods = %v, want %v", got, want)
	}
	if where["default/huge"] != "unschedulable" {
		t.Errorf("default/huge placed on %s, want unschedulable", where["default/huge"])
	}
	for _, u := range p.Unschedulable {
		if u.Pod == "default/huge" && !strings.Contains(u.Reason, "cpu") {
			t.Errorf("reason for default/huge does not mention cpu: %q", u.Reason)
		}
	}
	// node-a has 930m cpu free: exactly one 750m web replica fits there.
	if len(p.ExistingNodes) != 1 || p.ExistingNodes[0].Name != "node-a" || len(p.ExistingNodes[0].Pods) != 1 || !strings.HasPrefix(p.ExistingNodes[0].Pods[0], "default/web-") {
		t.Errorf("existingNodes = %+v, want one web replica on node-a", p.ExistingNodes)
	}

	catalog, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*offerings.InstanceType{}
	for _, it := range catalog {
		byName[it.Name] = it
	}
	var hourly, list float64
	for _, c := range p.NodeClaims {
		hourly += c.Price
		list += c.ListPrice
		if len(c.InstanceTypes) == 0 || c.InstanceTypes[0] != c.Cheapest.InstanceType {
			t.Errorf("claim %s: first instance type %v is not the cheapest offering's %q", c.NodePool, c.InstanceTypes[:min(1, len(c.InstanceTypes))], c.Cheapest.InstanceType)
		}
		// The bill is the cheapest offering plus the default root volume
		// (20 GiB gp3); the list price is the offering alone.
		if want := c.Cheapest.Price + (offerings.NodeCosts{}).Hourly(); math.Abs(c.Price-want) > 2e-6 || c.ListPrice != c.Cheapest.Price || c.Price <= 0 {
			t.Errorf("claim %s: price %v, list price %v, cheapest offering %v: want the bill %v", c.NodePool, c.Price, c.ListPrice, c.Cheapest.Price, want)
		}
		if c.Labels[offerings.LabelNodePool] != c.NodePool {
			t.Errorf("claim %s: labels %v lack the nodepool label", c.NodePool, c.Labels)
		}
		// Cheapest first: each type's cheapest allowed offering is no
		// cheaper than the claim's list price, nor more than 10% above its bill.
		for _, name := range c.InstanceTypes {
			it := byName[name]
			if it == nil {
				t.Fatalf("claim %s: instance type %q not in the catalog", c.NodePool, name)
			}
			o, ok := it.CheapestOffering(func(o offerings.Offering) bool {
				return slices.Contains(c.Zones, o.Zone) && slices.Contains(c.CapacityTypes, o.CapacityType)
			})
			if ok && o.Price < c.ListPrice-1e-9 {
				t.Errorf("claim %s: %s offers %v, cheaper than the claim's list price %v", c.NodePool, name, o.Price, c.ListPrice)
			}
			if bill := o.Price + (offerings.NodeCosts{}).Hourly(); ok && bill > c.Price*(1+scheduling.ClaimPriceTolerance)+1e-6 {
				t.Errorf("claim %s: %s bills %v, over the tolerance above the claim's %v", c.NodePool, name, bill, c.Price)
			}
		}
		switch c.NodePool {
		case "stateful":
			if !slices.Equal(c.Zones, []string{"us-east-1a"}) || !slices.Equal(c.CapacityTypes, []string{"on-demand"}) {
				t.Errorf("stateful claim zones %v capacity types %v, want us-east-1a on-demand", c.Zones, c.CapacityTypes)
			}
			if c.Labels["intent"] != "stateful" || len(c.Taints) != 1 || c.Taints[0].Key != "dedicated" {
				t.Errorf("stateful claim labels %v taints %v", c.Labels, c.Taints)
			}
			for _, pod := range c.Pods {
				if !strings.HasPrefix(pod, "default/db-") {
					t.Errorf("stateful claim holds %s", pod)
				}
			}
		case "default":
			for _, pod := range c.Pods {
				if !strings.HasPrefix(pod, "default/web-") {
					t.Errorf("default claim holds %s", pod)
				}
			}
			if !slices.Contains(c.CapacityTypes, "spot") {
				t.Errorf("default claim capacity types %v lack spot", c.CapacityTypes)
			}
		default:
			t.Errorf("claim from unknown nodepool %q", c.NodePool)
		}
		// The log-agent daemonset tolerates everything: its overhead is on
		// every node.
		if c.DaemonSetRequests["cpu"] != "100m" {
			t.Errorf("claim %s: daemonSetRequests %v, want the log-agent's 100m cpu", c.NodePool, c.DaemonSetRequests)
		}
	}
	if where["default/db-0"] == "unschedulable" || where["default/db-1"] == "unschedulable" {
		t.Errorf("db replicas unschedulable: %v", p.Unschedulable)
	}
	if diff := p.Cost.Hourly - hourly; diff > 1e-5 || diff < -1e-5 {
		t.Errorf("cost.hourly = %v, sum of claim prices = %v", p.Cost.Hourly, hourly)
	}
	if diff := p.Cost.ListHourly - list; diff > 1e-5 || diff < -1e-5 || p.Cost.ListHourly >= p.Cost.Hourly {
		t.Errorf("cost.listHourly = %v, sum of claim list prices = %v, bill %v", p.Cost.ListHourly, list, p.Cost.Hourly)
	}
	if p.Cost.LowerBound == nil || *p.Cost.LowerBound <= 0 || *p.Cost.LowerBound > p.Cost.Hourly {
		t.Errorf("cost.lowerBound = %v, want in (0, %v]", p.Cost.LowerBound, p.Cost.Hourly)
	}
}

func TestScenarioText(t *testing.T) {
	out, errOut, code := runPlan(t, "-f", "testdata/scenario.yaml")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	p := runJSON(t, "-f", "testdata/scenario.yaml")
	// The text is the JSON's content, laid out for people.
	for _, re := range []string{
		`(?m)^New nodes: ` + strconv.Itoa(len(p.NodeClaims)) + `$`,
		`(?m)^#\s+NODEPOOL\s+CHEAPEST OFFERING\s+\$/HOUR\s+LIST \$/HOUR\s+PODS\s+CPU\s+MEMORY`,
		`(?m)^\d+\s+stateful\s+\S+ on-demand us-east-1a\s+\d+\.\d{4}\s+\d+\.\d{4}\s+2\s+4\s+16Gi\s`,
		`(?m)^#\d+ stateful: default/db-0 default/db-1$`,
		`(?m)^Placed on existing nodes:\n  node-a: default/web-\d$`,
		`(?m)^Unschedulable pods: 1\n  default/huge: .*cpu`,
		`(?m)^Cost: \$\d+\.\d{4}/hour billed, \$\d+\.\d{4}/hour list \(lower bound \$\d+\.\d{4}/hour, ratio \d+\.\d\d\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("text output does not match %s:\n%s", re, out)
		}
	}
	if !strings.Contains(out, fmt.Sprintf("Cost: $%.4f/hour", p.Cost.Hourly)) {
		t.Errorf("text cost differs from JSON cost %v:\n%s", p.Cost.Hourly, out)
	}
}

func TestShippedScenarioMatchesTestdata(t *testing.T) {
	a, err := os.ReadFile("scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("examples/plan/scenario.yaml and testdata/scenario.yaml differ; the tests cover the testdata copy")
	}
}

func TestMultipleFilesAndCatalog(t *testing.T) {
	p := runJSON(t, "-f", "testdata/pools.yaml", "-f", "testdata/workloads.yaml", "-catalog", "testdata/tiny-catalog.json")
	where := allPods(t, p)
	for _, pod := range []string{"shop/api-0", "shop/api-1", "shop/api-2"} {
		if place, ok := where[pod]; !ok || place == "unschedulable" {
			t.Errorf("%s: %q", pod, place)
		}
	}
	tiny := []string{"c5.2xlarge", "m5.large", "m6g.xlarge"}
	for _, c := range p.NodeClaims {
		for _, name := range c.InstanceTypes {
			if !slices.Contains(tiny, name) {
				t.Errorf("instance type %s is not in the -catalog file", name)
			}
		}
		for _, z := range c.Zones {
			if z != "us-east-1a" && z != "us-east-1b" {
				t.Errorf("zone %s is not in the -catalog file", z)
			}
		}
	}
}

func TestUnavailable(t *testing.T) {
	// No on-demand capacity in us-east-1a: the stateful pool, pinned there,
	// cannot launch, so the db replicas are reported with a reason.
	p := runJSON(t, "-f", "testdata/scenario.yaml", "-unavailable", "on-demand:*:us-east-1a")
	where := allPods(t, p)
	for _, pod := range []string{"default/db-0", "default/db-1"} {
		if where[pod] != "unschedulable" {
			t.Errorf("%s placed on %s with on-demand us-east-1a unavailable", pod, where[pod])
		}
	}
	// Without Spot anywhere, default claims are on-demand only.
	p = runJSON(t, "-f", "testdata/pools.yaml", "-f", "testdata/workloads.yaml", "-catalog", "testdata/tiny-catalog.json",
		"-unavailable", "spot:*:*")
	if len(p.NodeClaims) == 0 {
		t.Fatal("no claims")
	}
	for _, c := range p.NodeClaims {
		if !slices.Equal(c.CapacityTypes, []string{"on-demand"}) {
			t.Errorf("capacity types %v with spot unavailable", c.CapacityTypes)
		}
	}
	// A single offering.
	p = runJSON(t, "-f", "testdata/pools.yaml", "-f", "testdata/workloads.yaml", "-catalog", "testdata/tiny-catalog.json",
		"-unavailable", "spot:m6g.xlarge:us-east-1a, spot:m6g.xlarge:us-east-1b")
	for _, c := range p.NodeClaims {
		if c.Cheapest.InstanceType == "m6g.xlarge" && c.Cheapest.CapacityType == "spot" {
			t.Errorf("cheapest offering %+v was marked unavailable", c.Cheapest)
		}
	}
}

func TestHelp(t *testing.T) {
	out, errOut, code := runPlan(t, "-h")
	if code != 0 || out != "" || !strings.Contains(errOut, "-unavailable") {
		t.Errorf("-h: exit %d, stdout %q, usage %q", code, out, errOut)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const validPool = `apiVersion: fleetpack.dev/v1
kind: NodePool
metadata:
  name: default
spec:
  template:
    spec: {}
`

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	pools := writeFile(t, dir, "pools.yaml", validPool)
	cases := []struct {
		name    string
		file    string // written to bad.yaml when non-empty
		args    []string
		wantErr []string
	}{
		{
			name:    "unknown kind",
			file:    "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n",
			wantErr: []string{"bad.yaml", "document 1", "Service default/web", "kind", `"Service" is not supported`},
		},
		{
			name: "malformed quantity",
			file: validPool + `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: pause
          resources: {requests: {cpu: 1x5}}
`,
			wantErr: []string{"bad.yaml", "document 2", "Deployment shop/web", "spec.template.spec.containers[0].resources.requests.cpu", `malformed quantity "1x5"`},
		},
		{
			name: "replicas past the bound",
			file: validPool + `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1000000000
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: pause}]}
`,
			wantErr: []string{"bad.yaml", "document 2", "Deployment default/web", "spec.replicas", "1000000000", "100000"},
		},
		{
			name: "pods past the bound over several workloads",
			file: validPool + strings.Repeat(`---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 60000
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: pause}]}
`, 2),
			wantErr: []string{"bad.yaml", "document 3", "StatefulSet default/db", "more than 100000 pods", "120000"},
		},
		{
			name:    "invalid nodepool",
			file:    "apiVersion: fleetpack.dev/v1\nkind: NodePool\nmetadata: {name: big}\nspec:\n  weight: 500\n  template: {spec: {}}\n",
			wantErr: []string{"bad.yaml", "NodePool big", "spec.weight", "between 1 and 100"},
		},
		{
			name:    "nodepool limit quantity",
			file:    "apiVersion: fleetpack.dev/v1\nkind: NodePool\nmetadata: {name: big}\nspec:\n  limits: {cpu: lots}\n  template: {spec: {}}\n",
			wantErr: []string{"bad.yaml", "NodePool big", "spec.limits.cpu", `"lots"`},
		},
		{
			name:    "unknown field",
			file:    validPool + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containerz: []\n",
			wantErr: []string{"bad.yaml", "document 2", "Pod default/p", "containerz"},
		},
		{
			name:    "wrong apiVersion",
			file:    validPool + "---\napiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: d}\n",
			wantErr: []string{"bad.yaml", "Deployment default/d", "apiVersion", `"apps/v1"`},
		},
		{
			name:    "missing name",
			file:    validPool + "---\napiVersion: v1\nkind: Pod\nmetadata: {}\nspec: {containers: [{name: c, image: pause}]}\n",
			wantErr: []string{"bad.yaml", "document 2", "metadata.name"},
		},
		{
			name:    "unknown node",
			file:    validPool + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: ghost, containers: [{name: c, image: pause}]}\n",
			wantErr: []string{"bad.yaml", "Pod default/p", "spec.nodeName", `"ghost"`},
		},
		{
			name:    "duplicate pod",
			file:    validPool + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: web-0}\nspec: {containers: [{name: c, image: pause}]}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: pause}]}}}\n",
			wantErr: []string{"bad.yaml", "document 3", "default/web-0", "already used"},
		},
		{
			name:    "no containers",
			file:    validPool + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n",
			wantErr: []string{"bad.yaml", "Pod default/p", "spec.containers"},
		},
		{
			name:    "no nodepool",
			file:    "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: pause}]}\n",
			wantErr: []string{"no NodePool"},
		},
		{
			name:    "not yaml",
			file:    validPool + "---\nkind: [unclosed\n",
			wantErr: []string{"bad.yaml", "document 2", "YAML"},
		},
		{name: "no files", args: []string{}, wantErr: []string{"-f"}},
		{name: "missing file", args: []string{"-f", filepath.Join(dir, "nope.yaml")}, wantErr: []string{"nope.yaml"}},
		{name: "bad output", args: []string{"-f", pools, "-o", "yaml"}, wantErr: []string{"-o", `"yaml"`}},
		{name: "bad unavailable entry", args: []string{"-f", pools, "-unavailable", "spot:m5.large"}, wantErr: []string{"-unavailable", `"spot:m5.large"`}},
		{name: "bad capacity type", args: []string{"-f", pools, "-unavailable", "reserved:m5.large:us-east-1a"}, wantErr: []string{"-unavailable", `"reserved"`}},
		{name: "unavailable matches nothing", args: []string{"-f", pools, "-unavailable", "spot:m5.huge:us-east-1a"}, wantErr: []string{"-unavailable", "matches no offering"}},
		{name: "bad catalog", args: []string{"-f", pools, "-catalog", pools}, wantErr: []string{"-catalog", "pools.yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = []string{"-f", writeFile(t, t.TempDir(), "bad.yaml", tc.file)}
			}
			out, errOut, code := runPlan(t, args...)
			if code == 0 {
				t.Fatalf("exit 0, want failure; stdout:\n%s", out)
			}
			if out != "" {
				t.Errorf("stdout not empty on error:\n%s", out)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q does not contain %q", errOut, want)
				}
			}
		})
	}
}

// FuzzDecode feeds arbitrary documents to the manifest decoder: it must
// return objects or an error, never panic.
func FuzzDecode(f *testing.F) {
	seed, err := os.ReadFile("testdata/scenario.yaml")
	if err != nil {
		f.Fatal(err)
	}
	docs, err := splitDocuments(seed)
	if err != nil {
		f.Fatal(err)
	}
	for _, d := range docs {
		f.Add(d)
	}
	f.Add([]byte("kind: Pod\napiVersion: v1\nmetadata: {name: x}\nspec: {overhead: {cpu: [1]}}\n"))
	f.Add([]byte("- 1\n- 2\n"))
	f.Add([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: -3}\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		ref := docRef{file: "fuzz.yaml", index: 1}
		objs, err := decode(ref, doc)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml: document 1") {
				t.Errorf("error %q does not name the file and document", err)
			}
			return
		}
		if objs != nil && objs.pool == nil && objs.node == nil && objs.daemonSet == nil && len(objs.pods) == 0 && objs.kind != "Deployment" && objs.kind != "StatefulSet" {
			t.Errorf("decoded %s without an object", objs.kind)
		}
	})
}

// Karpenter's own NodePool manifests are accepted as they are.
func TestKarpenterNodePool(t *testing.T) {
	dir := t.TempDir()
	pool := filepath.Join(dir, "pool.yaml")
	if err := os.WriteFile(pool, []byte(`apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: default}
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      requirements: [{key: karpenter.sh/capacity-type, operator: In, values: [spot]}]
  disruption: {consolidationPolicy: WhenEmptyOrUnderutilized, consolidateAfter: 1m}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := runJSON(t, "-f", pool, "-f", "testdata/workloads.yaml")
	if len(p.NodeClaims) == 0 || p.NodeClaims[0].NodePool != "default" {
		t.Fatalf("claims = %+v", p.NodeClaims)
	}
}

// -consolidate shows what consolidation would do to Node and Pod manifests:
// two m5.xlarge nodes holding a 1-cpu pod each are worth less as one.
func TestConsolidate(t *testing.T) {
	var docs strings.Builder
	docs.WriteString(`apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: default}
spec:
  template:
    spec:
      requirements: [{key: karpenter.k8s.aws/instance-family, operator: In, values: [m5]}]
  disruption: {budgets: [{nodes: "100%"}]}
`)
	for _, n := range []string{"a", "b"} {
		fmt.Fprintf(&docs, `---
apiVersion: v1
kind: Node
metadata:
  name: node-%[1]s
  labels: {karpenter.sh/nodepool: default, node.kubernetes.io/instance-type: m5.xlarge, topology.kubernetes.io/zone: us-east-1a, karpenter.sh/capacity-type: on-demand, kubernetes.io/arch: amd64, karpenter.k8s.aws/instance-family: m5}
status:
  allocatable: {cpu: 3920m, memory: 14Gi, pods: "58"}
---
apiVersion: v1
kind: Pod
metadata: {name: web-%[1]s, namespace: default}
spec:
  nodeName: node-%[1]s
  containers: [{name: c, image: x, resources: {requests: {cpu: "1", memory: 1Gi}}}]
`, n)
	}
	path := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(path, []byte(docs.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runPlan(t, "-f", path, "-consolidate")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !regexp.MustCompile(`(multi|single)-node: remove node-a(, node-b)?.*; move [12] pods; save \$0\.\d+/h`).MatchString(out) {
		t.Fatalf("no consolidation move in:\n%s", out)
	}
	if _, errOut, code := runPlan(t, "-f", path, "-consolidate", "-o", "json"); code == 0 || !strings.Contains(errOut, "-consolidate") {
		t.Errorf("-consolidate with json: exit %d, %s", code, errOut)
	}
}
