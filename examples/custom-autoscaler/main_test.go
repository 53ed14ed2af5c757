package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/fleetpack/fleetpack/internal/fixture"
)

const pools = `apiVersion: fleetpack.dev/v1
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
`

func writePools(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nodepools.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseFlags(t *testing.T) {
	file := "pools.yaml"
	cases := []struct {
		name    string
		args    []string
		wantErr []string
		check   func(*testing.T, *config)
	}{
		{
			name: "live, complete",
			args: []string{"-nodepools", file, "-cluster-name", "prod", "-subnet-selector", "karpenter.sh/discovery=prod,tier=private",
				"-launch-template-arm64", "lt-arm", "-queue", "https://sqs/q"},
			check: func(t *testing.T, c *config) {
				if c.dryRun || c.clusterName != "prod" || c.queueURL != "https://sqs/q" {
					t.Errorf("config %+v", c)
				}
				if c.subnetSelector["karpenter.sh/discovery"] != "prod" || c.subnetSelector["tier"] != "private" {
					t.Errorf("subnet selector %v", c.subnetSelector)
				}
				if lt, ok := c.launchTemplate["arm64"]; !ok || lt.Name != "lt-arm" || len(c.launchTemplate) != 1 {
					t.Errorf("launch templates %v", c.launchTemplate)
				}
			},
		},
		{
			name: "leader election by default, with the shipped namespace",
			args: []string{"-nodepools", file, "-cluster-name", "prod", "-subnet-selector", "a=b", "-launch-template-amd64", "lt"},
			check: func(t *testing.T, c *config) {
				if !c.leaderElect || c.leaseNamespace != "fleetpack" || c.leaseDuration != 15*time.Second || c.retryPeriod != 400*time.Millisecond {
					t.Errorf("leader election %v in %q, lease %s, retry %s", c.leaderElect, c.leaseNamespace, c.leaseDuration, c.retryPeriod)
				}
			},
		},
		{
			name: "leader election off",
			args: []string{"-leader-elect=false", "-nodepools", file, "-cluster-name", "prod", "-subnet-selector", "a=b", "-launch-template-amd64", "lt"},
			check: func(t *testing.T, c *config) {
				if c.leaderElect {
					t.Error("leader election on")
				}
			},
		},
		{
			name:  "dry run needs no AWS settings",
			args:  []string{"-dry-run", "-once", "-nodepools", file},
			check: func(t *testing.T, c *config) {},
		},
		{
			name:    "live needs cluster, subnets, launch template",
			args:    []string{"-nodepools", file},
			wantErr: []string{"-cluster-name", "-subnet-selector", "-launch-template"},
		},
		{name: "nodepools required", args: []string{"-dry-run"}, wantErr: []string{"-nodepools: required"}},
		{name: "bad selector", args: []string{"-dry-run", "-nodepools", file, "-subnet-selector", "novalue"}, wantErr: []string{"-subnet-selector", `"novalue"`}},
		{name: "once without dry run", args: []string{"-once", "-nodepools", file, "-cluster-name", "c", "-subnet-selector", "a=b", "-launch-template-amd64", "x"}, wantErr: []string{"-once"}},
		{name: "stray argument", args: []string{"-dry-run", "-nodepools", file, "extra"}, wantErr: []string{`"extra"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, io.Discard)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, c)
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func pod(name, node, cpu string) *corev1.Pod {
	phase := corev1.PodPending
	if node != "" {
		phase = corev1.PodRunning
	}
	return fixture.Pod("default", name, fixture.WithUID("uid-"+name), fixture.BoundTo(node), fixture.Requests(cpu, "1Gi"), fixture.Phase(phase))
}

// TestDryRunAgainstFakeCluster wires the whole dry run to a fake API server:
// client-go informers, NodePools from the file, the embedded catalog, the
// solver, and the printed plan.
func TestDryRunAgainstFakeCluster(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux"}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("29")},
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	objects := []runtime.Object{
		node,
		pod("running", "node-a", "1"),
		pod("small", "", "500m"), // fits on node-a
		pod("web-0", "", "2"),
		pod("web-1", "", "2"),
		pod("huge", "", "5000"),
	}
	client := fake.NewClientset(objects...)
	var gotKubeconfig string
	newClient := func(kubeconfig string) (kubernetes.Interface, error) {
		gotKubeconfig = kubeconfig
		return client, nil
	}
	var out, errOut bytes.Buffer
	args := []string{"-dry-run", "-once", "-nodepools", writePools(t, pools), "-kubeconfig", "/tmp/kc"}
	if code := run(t.Context(), args, &out, &errOut, newClient); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if gotKubeconfig != "/tmp/kc" {
		t.Errorf("client built from kubeconfig %q", gotKubeconfig)
	}
	text := out.String()
	for _, re := range []string{
		`(?m)^plan: \d+ new nodes \(\$\d+\.\d{4}/hour\), 1 pods onto existing nodes, 1 unschedulable$`,
		`(?m)^  launch nodepool=default cheapest=\S+ (spot|on-demand) us-east-1\w \$\d+\.\d{4}/h \(of \d+ types\) pods=.*default/web-`,
		`(?m)^  existing node=node-a pods=default/small$`,
		`(?m)^  unschedulable pod=default/huge: `,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("dry-run output does not match %s:\n%s", re, text)
		}
	}
	// Nothing was written to the cluster.
	for _, a := range client.Actions() {
		if v := a.GetVerb(); v != "list" && v != "watch" {
			t.Errorf("dry run made a %s %s call", v, a.GetResource().Resource)
		}
	}
}

func TestRunErrors(t *testing.T) {
	noClient := func(string) (kubernetes.Interface, error) { return nil, errors.New("no cluster here") }
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad flags", []string{"-dry-run"}, 2, "-nodepools: required"},
		{"missing file", []string{"-dry-run", "-nodepools", filepath.Join(t.TempDir(), "none.yaml")}, 1, "none.yaml"},
		{"invalid nodepool", []string{"-dry-run", "-nodepools", writePools(t, strings.Replace(pools, "spec:\n  template", "spec:\n  weight: 500\n  template", 1))}, 1, "spec.weight"},
		{"empty nodepools", []string{"-dry-run", "-nodepools", writePools(t, "# nothing\n")}, 1, "no NodePool"},
		{"client fails", []string{"-dry-run", "-nodepools", writePools(t, pools)}, 1, "no cluster here"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(t.Context(), tc.args, &out, &errOut, noClient); code != tc.code {
				t.Errorf("exit %d, want %d; stderr %s", code, tc.code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("stderr %q does not mention %q", errOut.String(), tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout not empty: %s", out.String())
			}
		})
	}
}

func TestNewKubeClientBadKubeconfig(t *testing.T) {
	if _, err := newKubeClient(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("no error for a missing kubeconfig")
	}
}
