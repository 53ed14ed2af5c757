package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetpack/fleetpack/offerings"
)

const testInstanceTypes = `[
 {"name":"m5.large","family":"m5","size":"large","category":"m","generation":5,"vcpu":2,"memory_mib":8192,
  "architecture":"amd64","cpu_manufacturer":"intel","bare_metal":false,"gpu_count":0,"gpu_name":null,"gpu_manufacturer":null,
  "accelerator_count":0,"accelerator_name":null,"default_card_max_enis":3,"ipv4_per_eni":10,"max_pods_eni":29,
  "karpenter_allocatable_al2023":{"cpu_millicores":1930,"memory_mib":6903,"ephemeral_storage_gib":17.0,"pods":29,"extended":{"vpc.amazonaws.com/pod-eni":"9"}},
  "on_demand_price_usd_us_east_1":0.096},
 {"name":"g3s.xlarge","family":"g3s","size":"xlarge","category":"g","generation":3,"vcpu":4,"memory_mib":31232,
  "architecture":"amd64","cpu_manufacturer":"intel","bare_metal":false,"gpu_count":1,"gpu_name":"m60","gpu_manufacturer":"nvidia",
  "accelerator_count":0,"accelerator_name":null,"default_card_max_enis":null,"ipv4_per_eni":null,"max_pods_eni":null,
  "karpenter_allocatable_al2023":{"cpu_millicores":3920,"memory_mib":27896,"ephemeral_storage_gib":17.0,"pods":58,"extended":{"nvidia.com/gpu":"1"}},
  "on_demand_price_usd_us_east_1":0.75},
 {"name":"x8aedz.large","family":"x8aedz","size":"large","category":"x","generation":8,"vcpu":2,"memory_mib":65536,
  "architecture":"amd64","cpu_manufacturer":"amd","bare_metal":false,"gpu_count":0,"gpu_name":null,"gpu_manufacturer":null,
  "accelerator_count":0,"accelerator_name":null,"default_card_max_enis":3,"ipv4_per_eni":10,"max_pods_eni":29,
  "karpenter_allocatable_al2023":null,"on_demand_price_usd_us_east_1":null}
]`

const testSpotPrices = `{"region":"us-east-1","source":"test","note":"estimates",
 "prices":[{"name":"m5.large","estimated_spot_price_usd":0.04224000001}]}`

func writeData(t *testing.T, instanceTypes string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"instance-types.json": instanceTypes, "spot-prices.json": testSpotPrices} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRun(t *testing.T) {
	dir := writeData(t, testInstanceTypes)
	out := filepath.Join(dir, "catalog.json")
	allocOut := filepath.Join(dir, "alloc.json")
	if err := run(dir, out, allocOut); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	f, err := offerings.ParseCatalogFile(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.InstanceTypes) != 2 || f.InstanceTypes[0].Name != "g3s.xlarge" || f.InstanceTypes[1].Name != "m5.large" {
		t.Fatalf("instance types %+v", f.InstanceTypes)
	}
	if len(f.Skipped) != 1 || f.Skipped[0].Name != "x8aedz.large" {
		t.Errorf("skipped %+v", f.Skipped)
	}
	g3s, m5 := f.InstanceTypes[0], f.InstanceTypes[1]
	if g3s.MaxPods != 58 || g3s.SpotPrice != 0 || g3s.GPUCount != 1 || g3s.GPUManufacturer != "nvidia" {
		t.Errorf("g3s.xlarge %+v", g3s)
	}
	if m5.DefaultCardENIs != 3 || m5.IPv4PerENI != 10 || m5.SpotPrice != 0.04224 || m5.OnDemandPrice != 0.096 {
		t.Errorf("m5.large %+v", m5)
	}
	// One type per line, so regenerations diff cleanly.
	if !strings.Contains(string(raw), "\n    {\"name\":\"m5.large\",") {
		t.Errorf("m5.large not on its own line:\n%s", raw)
	}
	alloc, err := os.ReadFile(allocOut)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(alloc), `"nvidia.com/gpu":1`) || strings.Contains(string(alloc), "pod-eni") || strings.Contains(string(alloc), "x8aedz") {
		t.Errorf("allocatable fixture:\n%s", alloc)
	}
}

func TestRunRejectsInconsistentENIData(t *testing.T) {
	dir := writeData(t, strings.Replace(testInstanceTypes, `"max_pods_eni":29`, `"max_pods_eni":30`, 1))
	err := run(dir, filepath.Join(dir, "catalog.json"), "")
	if err == nil || !strings.Contains(err.Error(), "m5.large") {
		t.Fatalf("error %v, want one naming m5.large", err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, "catalog.json")); statErr == nil {
		t.Error("catalog written despite the error")
	}
}
