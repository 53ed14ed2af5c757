package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

// planJSON is the JSON contract documented in docs/plan-json.md. Slices are
// never null, so consumers can iterate without checks.
type planJSON struct {
	NodeClaims    []claimJSON    `json:"nodeClaims"`
	ExistingNodes []existingJSON `json:"existingNodes"`
	Unschedulable []podErrorJSON `json:"unschedulable"`
	Cost          costJSON       `json:"cost"`
}

type claimJSON struct {
	NodePool          string            `json:"nodePool"`
	InstanceTypes     []string          `json:"instanceTypes"`
	Zones             []string          `json:"zones"`
	CapacityTypes     []string          `json:"capacityTypes"`
	Labels            map[string]string `json:"labels"`
	Taints            []corev1.Taint    `json:"taints"`
	Pods              []string          `json:"pods"`
	Requests          map[string]string `json:"requests"`
	DaemonSetRequests map[string]string `json:"daemonSetRequests"`
	Price             float64           `json:"price"`
	ListPrice         float64           `json:"listPrice"`
	Cheapest          offeringJSON      `json:"cheapest"`
}

type offeringJSON struct {
	InstanceType string  `json:"instanceType"`
	Zone         string  `json:"zone"`
	CapacityType string  `json:"capacityType"`
	Price        float64 `json:"price"`
}

type existingJSON struct {
	Name string   `json:"name"`
	Pods []string `json:"pods"`
}

type podErrorJSON struct {
	Pod    string `json:"pod"`
	Reason string `json:"reason"`
}

type costJSON struct {
	Hourly     float64 `json:"hourly"`
	ListHourly float64 `json:"listHourly"`
	// LowerBound is null when no instance type can hold the requests.
	LowerBound *float64 `json:"lowerBound"`
}

// report is the plan reduced to what both output formats print.
type report struct {
	plan planJSON
}

func podName(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

func podNames(pods []*corev1.Pod) []string {
	out := make([]string, 0, len(pods))
	for _, p := range pods {
		out = append(out, podName(p))
	}
	return out
}

func resourceStrings(list corev1.ResourceList) map[string]string {
	out := make(map[string]string, len(list))
	for name, q := range list {
		out[string(name)] = q.String()
	}
	return out
}

// round6 keeps prices free of float noise (sums of many prices) in output.
func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

func newReport(plan *scheduling.Plan, in scheduling.Input) *report {
	r := &report{plan: planJSON{
		NodeClaims:    []claimJSON{},
		ExistingNodes: []existingJSON{},
		Unschedulable: []podErrorJSON{},
	}}
	var hourly, listHourly float64
	var cpuMilli, memBytes int64
	for _, c := range plan.NodeClaims {
		zones, cts := map[string]bool{}, map[string]bool{}
		names := make([]string, 0, len(c.InstanceTypes))
		for _, it := range c.InstanceTypes {
			names = append(names, it.Name)
			for _, o := range c.Offerings(it) {
				zones[o.Zone] = true
				cts[o.CapacityType] = true
			}
		}
		requests := c.PodRequests.DeepCopy()
		if requests == nil {
			requests = corev1.ResourceList{}
		}
		if _, ok := requests[corev1.ResourcePods]; !ok {
			requests[corev1.ResourcePods] = *resource.NewQuantity(int64(len(c.Pods)), resource.DecimalSI)
		}
		taints := c.Template.Taints
		if taints == nil {
			taints = []corev1.Taint{}
		}
		cj := claimJSON{
			NodePool:          c.Template.NodePool,
			InstanceTypes:     names,
			Zones:             slices.Sorted(maps.Keys(zones)),
			CapacityTypes:     slices.Sorted(maps.Keys(cts)),
			Labels:            c.Labels(),
			Taints:            taints,
			Pods:              podNames(c.Pods),
			Requests:          resourceStrings(requests),
			DaemonSetRequests: resourceStrings(c.DaemonSetRequests),
		}
		// The list price is that of the offering the claim is billed as,
		// so that price - listPrice is its per-node costs and credits.
		if it, o, bill, ok := c.CheapestBill(); ok {
			cj.Price, cj.ListPrice = round6(bill), round6(o.Price)
			cj.Cheapest = offeringJSON{InstanceType: it.Name, Zone: o.Zone, CapacityType: o.CapacityType, Price: round6(o.Price)}
			hourly += bill
			listHourly += o.Price
		}
		r.plan.NodeClaims = append(r.plan.NodeClaims, cj)
		cpuMilli += c.PodRequests.Cpu().MilliValue()
		memBytes += c.PodRequests.Memory().Value()
	}
	for _, p := range plan.ExistingNodes {
		r.plan.ExistingNodes = append(r.plan.ExistingNodes, existingJSON{Name: p.Node.Name, Pods: podNames(p.Pods)})
	}
	for _, e := range plan.Unschedulable {
		r.plan.Unschedulable = append(r.plan.Unschedulable, podErrorJSON{Pod: podName(e.Pod), Reason: e.Reason})
	}
	r.plan.Cost.Hourly = round6(hourly)
	r.plan.Cost.ListHourly = round6(listHourly)
	// The bound is taken over every type some NodePool may launch, for the
	// requests of the pods the plan puts on new nodes: the same quantity the
	// repository's benchmarks report as cost/lb.
	seen := map[string]bool{}
	var types []*offerings.InstanceType
	for _, t := range in.Templates {
		for _, it := range t.InstanceTypes {
			if !seen[it.Name] {
				seen[it.Name] = true
				types = append(types, it)
			}
		}
	}
	if lb := offerings.CostLowerBound(types, cpuMilli, memBytes); !math.IsInf(lb, 0) {
		lb = round6(lb)
		r.plan.Cost.LowerBound = &lb
	}
	return r
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.plan)
}

// maxTypesShown is how many instance types the text table lists per claim.
const maxTypesShown = 3

func (r *report) writeText(w io.Writer) error {
	p := r.plan
	fmt.Fprintf(w, "New nodes: %d\n", len(p.NodeClaims))
	if len(p.NodeClaims) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "#\tNODEPOOL\tCHEAPEST OFFERING\t$/HOUR\tLIST $/HOUR\tPODS\tCPU\tMEMORY\tINSTANCE TYPES (cheapest first)\tZONES\tCAPACITY TYPES")
		for i, c := range p.NodeClaims {
			types := c.InstanceTypes
			shown := strings.Join(types[:min(len(types), maxTypesShown)], ",")
			if len(types) > maxTypesShown {
				shown += fmt.Sprintf(",... (%d)", len(types))
			}
			fmt.Fprintf(tw, "%d\t%s\t%s %s %s\t%.4f\t%.4f\t%s\t%s\t%s\t%s\t%s\t%s\n",
				i+1, c.NodePool, c.Cheapest.InstanceType, c.Cheapest.CapacityType, c.Cheapest.Zone, c.Price, c.ListPrice,
				c.Requests["pods"], orDash(c.Requests["cpu"]), orDash(c.Requests["memory"]), shown,
				zoneList(c.Zones), strings.Join(c.CapacityTypes, ","))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
		for i, c := range p.NodeClaims {
			fmt.Fprintf(w, "#%d %s: %s\n", i+1, c.NodePool, strings.Join(c.Pods, " "))
		}
	}
	if len(p.ExistingNodes) > 0 {
		fmt.Fprintf(w, "\nPlaced on existing nodes:\n")
		for _, e := range p.ExistingNodes {
			fmt.Fprintf(w, "  %s: %s\n", e.Name, strings.Join(e.Pods, " "))
		}
	}
	if len(p.Unschedulable) > 0 {
		fmt.Fprintf(w, "\nUnschedulable pods: %d\n", len(p.Unschedulable))
		for _, u := range p.Unschedulable {
			fmt.Fprintf(w, "  %s: %s\n", u.Pod, u.Reason)
		}
	}
	fmt.Fprintf(w, "\nCost: $%.4f/hour", p.Cost.Hourly)
	if p.Cost.ListHourly != p.Cost.Hourly {
		fmt.Fprintf(w, " billed, $%.4f/hour list", p.Cost.ListHourly)
	}
	if lb := p.Cost.LowerBound; lb != nil && *lb > 0 {
		fmt.Fprintf(w, " (lower bound $%.4f/hour, ratio %.2f)", *lb, p.Cost.Hourly / *lb)
	}
	fmt.Fprintln(w)
	return nil
}

// zoneList keeps the table narrow: a claim open to many zones shows how many.
func zoneList(zones []string) string {
	if len(zones) > 2 {
		return fmt.Sprintf("%d zones", len(zones))
	}
	return strings.Join(zones, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
