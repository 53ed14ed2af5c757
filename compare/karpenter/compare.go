package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

// A Result is one workload solved side by side, reps times each.
type Result struct {
	Workload string
	// KarpenterBill and FleetpackBill are the median plan bills, $/h.
	KarpenterBill, FleetpackBill float64
	// KarpenterNodes and FleetpackNodes are the node counts of the plans
	// with the median bill.
	KarpenterNodes, FleetpackNodes int
	// KarpenterTime and FleetpackTime are the median times of one solve.
	KarpenterTime, FleetpackTime time.Duration
	// KarpenterSetup is the median part of KarpenterTime spent in
	// NewTopology and NewScheduler, which every provisioning pass runs.
	KarpenterSetup time.Duration
	// KarpenterBills are Karpenter's bills in every repetition, sorted: its
	// plans vary from run to run, fleetpack's do not.
	KarpenterBills []float64
	// Unschedulable is the number of pods both reported unschedulable.
	Unschedulable int
	// SingleTypeBill is the bill of scheduling.BestSingleTypeFleet: every
	// pod on one instance type, packed first-fit-decreasing. SingleTypeOK is
	// false where that bound does not apply (topology constraints).
	SingleTypeBill float64
	SingleTypeOK   bool
}

// Line renders r in the one-line form tools read, with the single-type
// fleet's bill (or n/a) after it:
//
//	workload=NAME karpenter_bill=X fleetpack_bill=Y bill_ratio=Y/X karpenter_nodes=N fleetpack_nodes=M speed_ratio=Tk/Tf single_type_bill=Z
func (r Result) Line() string {
	single := "n/a"
	if r.SingleTypeOK {
		single = fmt.Sprintf("%.4f", r.SingleTypeBill)
	}
	return fmt.Sprintf("workload=%s karpenter_bill=%.4f fleetpack_bill=%.4f bill_ratio=%.3f karpenter_nodes=%d fleetpack_nodes=%d speed_ratio=%.1f single_type_bill=%s",
		r.Workload, r.KarpenterBill, r.FleetpackBill, r.FleetpackBill/r.KarpenterBill, r.KarpenterNodes, r.FleetpackNodes,
		float64(r.KarpenterTime)/float64(r.FleetpackTime), single)
}

// Details renders what Line leaves out: times, Karpenter's spread of
// bills, and unschedulable pods.
func (r Result) Details() string {
	return fmt.Sprintf("workload=%s karpenter_time=%s karpenter_setup=%s fleetpack_time=%s karpenter_bill_min=%.4f karpenter_bill_max=%.4f unschedulable=%d",
		r.Workload, r.KarpenterTime.Round(time.Microsecond), r.KarpenterSetup.Round(time.Microsecond), r.FleetpackTime.Round(time.Microsecond),
		r.KarpenterBills[0], r.KarpenterBills[len(r.KarpenterBills)-1], r.Unschedulable)
}

func took(r run) time.Duration { return r.took }

// A run is one solve by one side: its time and its validated, priced plan.
type run struct {
	took time.Duration
	// setup is the part of took spent building per-pass structures
	// (Karpenter's Topology and Scheduler).
	setup time.Duration
	bill  float64
	nodes int
	// unschedulable is how many pods the plan reports unschedulable.
	unschedulable int
}

// Compare solves w reps times with each scheduler, alternating so that the
// machine's load falls on both alike, validates and prices every plan, and
// returns the medians. It fails if any plan is invalid or the two disagree
// on how many pods cannot be placed.
func Compare(ctx context.Context, w Workload, reps int) (Result, error) {
	if reps < 1 {
		return Result{}, fmt.Errorf("reps is %d, want at least 1", reps)
	}
	pool, err := scheduling.NewRequirements(w.Requirements...)
	if err != nil {
		return Result{}, fmt.Errorf("workload %s: requirements: %w", w.Name, err)
	}
	types := make(map[string]*offerings.InstanceType, len(w.InstanceTypes))
	for _, it := range w.InstanceTypes {
		types[it.Name] = it
	}
	fp, err := newFleetpackSolver(w, pool)
	if err != nil {
		return Result{}, fmt.Errorf("workload %s: %w", w.Name, err)
	}
	kp, err := newKarpenterSolver(ctx, w)
	if err != nil {
		return Result{}, fmt.Errorf("workload %s: %w", w.Name, err)
	}
	var kRuns, fRuns []run
	for range reps {
		k, err := timed(func() (func() (*Plan, error), time.Duration, error) {
			r, setup, err := kp.solve()
			return func() (*Plan, error) { return kp.karpenterPlan(r, types) }, setup, err
		}, w, &pool)
		if err != nil {
			return Result{}, fmt.Errorf("workload %s: karpenter: %w", w.Name, err)
		}
		f, err := timed(func() (func() (*Plan, error), time.Duration, error) {
			p, err := fp.solve()
			return func() (*Plan, error) { return fleetpackPlan(p) }, 0, err
		}, w, &pool)
		if err != nil {
			return Result{}, fmt.Errorf("workload %s: fleetpack: %w", w.Name, err)
		}
		if k.unschedulable != f.unschedulable {
			return Result{}, fmt.Errorf("workload %s: karpenter reports %d pods unschedulable, fleetpack %d", w.Name, k.unschedulable, f.unschedulable)
		}
		kRuns, fRuns = append(kRuns, k), append(fRuns, f)
	}
	kMed, fMed := medianByBill(kRuns), medianByBill(fRuns)
	res := Result{
		Workload:       w.Name,
		KarpenterBill:  kMed.bill,
		FleetpackBill:  fMed.bill,
		KarpenterNodes: kMed.nodes,
		FleetpackNodes: fMed.nodes,
		KarpenterTime:  medianTime(kRuns, took),
		KarpenterSetup: medianTime(kRuns, func(r run) time.Duration { return r.setup }),
		FleetpackTime:  medianTime(fRuns, took),
		Unschedulable:  kMed.unschedulable,
	}
	if f, ok := scheduling.BestSingleTypeFleet(fp.input); ok {
		res.SingleTypeBill, res.SingleTypeOK = f.Bill, true
	}
	for _, r := range kRuns {
		res.KarpenterBills = append(res.KarpenterBills, r.bill)
	}
	slices.Sort(res.KarpenterBills)
	return res, nil
}

// timed times solve, one solve that also says how much of its time went
// to per-pass set-up, then reduces its answer to a Plan, validates it and
// prices it, all outside the timing.
func timed(solve func() (reduce func() (*Plan, error), setup time.Duration, err error), w Workload, pool *scheduling.Requirements) (run, error) {
	runtime.GC() // so one side's garbage is not collected on the other's time
	start := time.Now()
	reduce, setup, err := solve()
	took := time.Since(start)
	if err != nil {
		return run{}, err
	}
	plan, err := reduce()
	if err != nil {
		return run{}, err
	}
	priced, bill, err := plan.Price(pool, w.DaemonSetPods)
	if err != nil {
		return run{}, err
	}
	if err := plan.Validate(w, priced); err != nil {
		return run{}, fmt.Errorf("invalid plan: %w", err)
	}
	return run{took: took, setup: setup, bill: bill, nodes: len(plan.Nodes), unschedulable: len(plan.Unschedulable)}, nil
}

// medianByBill returns the run with the median bill (the lower median for
// an even count).
func medianByBill(runs []run) run {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b run) int {
		switch {
		case a.bill < b.bill:
			return -1
		case a.bill > b.bill:
			return 1
		}
		return 0
	})
	return sorted[(len(sorted)-1)/2]
}

// medianTime returns the median of the durations of runs that of picks.
func medianTime(runs []run, of func(run) time.Duration) time.Duration {
	times := make([]time.Duration, len(runs))
	for i, r := range runs {
		times[i] = of(r)
	}
	slices.Sort(times)
	if n := len(times); n%2 == 0 {
		return (times[n/2-1] + times[n/2]) / 2
	}
	return times[len(times)/2]
}
