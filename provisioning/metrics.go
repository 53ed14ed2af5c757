package provisioning

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the provisioner's Prometheus metrics. Build them with
// NewMetrics; one set serves one Provisioner.
type Metrics struct {
	// PodsPending is the number of pending pods fleetpack saw at its last pass.
	PodsPending prometheus.Gauge
	// SchedulingDuration is how long each solve took, in seconds.
	SchedulingDuration prometheus.Histogram
	// NodesLaunched counts nodes launched, by nodepool and capacity_type.
	NodesLaunched *prometheus.CounterVec
	// NodesTerminated counts nodes removed, by nodepool, capacity_type and
	// reason (empty, launch_failed, launch_timeout, orphaned, leaked: an
	// instance no node stood for, see TerminateLeakedInstances).
	NodesTerminated *prometheus.CounterVec
	// OrphanedNodes is the number of fleetpack's nodes whose NodePool is
	// gone, by state: waiting (the pool's grace period runs), queued (past
	// it, held by MaxOrphanDisruptions) and draining.
	OrphanedNodes *prometheus.GaugeVec
	// OrphanEvictions counts evictions tried while draining nodes of deleted
	// NodePools, by outcome (evicted, blocked, error).
	OrphanEvictions *prometheus.CounterVec
	// LaunchFailures counts failed launches by nodepool and reason
	// (insufficient_capacity, register_failed, error).
	LaunchFailures *prometheus.CounterVec
	// UnavailableOfferings counts capacity pools EC2 refused, by
	// capacity_type, instance_type and zone.
	UnavailableOfferings *prometheus.CounterVec
	// PodsUnschedulable counts pods a pass could not place.
	PodsUnschedulable prometheus.Counter
	// LaunchedHourlyCost sums, over launched nodes, their hourly cost in
	// USD as launched, by nodepool and kind: "bill" (offerings.NodeBill:
	// offering, per-node costs, surplus credits) and "list" (the offering's
	// price alone). rate() of it is the cost per hour added per second.
	LaunchedHourlyCost *prometheus.CounterVec

	// ConsolidationDecisions counts consolidation moves by method (empty,
	// drift, expiration, multi-node, single-node) and outcome (decided,
	// invalid, replacement_failed, done, error).
	ConsolidationDecisions *prometheus.CounterVec
	// ConsolidationEvictions counts evictions consolidation tried, by
	// outcome (evicted, blocked, error).
	ConsolidationEvictions *prometheus.CounterVec
	// ConsolidationValidationFailures counts moves abandoned at
	// validation, by method.
	ConsolidationValidationFailures *prometheus.CounterVec
	// ConsolidationSaving observes the hourly saving (USD) of each
	// completed move, by method.
	ConsolidationSaving *prometheus.HistogramVec
	// ConsolidationSkipped is how many nodes the last decision skipped, by
	// reason (not_managed, consolidate_after, pdb, budget, ...).
	ConsolidationSkipped *prometheus.GaugeVec
}

// NewMetrics builds the metrics and registers them on reg (nil: not
// registered, useful in tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		PodsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "fleetpack", Subsystem: "provisioner", Name: "pods_pending",
			Help: "Pending pods seen at the last provisioning pass.",
		}),
		SchedulingDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "fleetpack", Subsystem: "provisioner", Name: "scheduling_duration_seconds",
			Help:    "Time taken by one solve of pending pods.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		NodesLaunched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "nodes", Name: "launched_total",
			Help: "Nodes launched, by nodepool and capacity type.",
		}, []string{"nodepool", "capacity_type"}),
		NodesTerminated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "nodes", Name: "terminated_total",
			Help: "Nodes terminated, by nodepool, capacity type and reason.",
		}, []string{"nodepool", "capacity_type", "reason"}),
		OrphanedNodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "fleetpack", Subsystem: "nodes", Name: "orphaned",
			Help: "Nodes fleetpack launched whose NodePool is gone, by state (waiting, queued, draining).",
		}, []string{"state"}),
		OrphanEvictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "nodes", Name: "orphan_evictions_total",
			Help: "Evictions tried while draining nodes of deleted NodePools, by outcome.",
		}, []string{"outcome"}),
		LaunchFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "nodes", Name: "launch_failures_total",
			Help: "Failed node launches, by nodepool and reason.",
		}, []string{"nodepool", "reason"}),
		UnavailableOfferings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "cloudprovider", Name: "unavailable_offerings_total",
			Help: "Capacity pools the cloud refused for lack of capacity.",
		}, []string{"capacity_type", "instance_type", "zone"}),
		PodsUnschedulable: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "provisioner", Name: "pods_unschedulable_total",
			Help: "Pods a provisioning pass could not place.",
		}),
		LaunchedHourlyCost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "nodes", Name: "launched_hourly_cost_dollars_total",
			Help: "Sum of launched nodes' hourly cost in USD, by nodepool and kind (bill: with per-node costs and surplus credits; list: the offering's price).",
		}, []string{"nodepool", "kind"}),
		ConsolidationDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "consolidation", Name: "decisions_total",
			Help: "Consolidation moves, by method and outcome.",
		}, []string{"method", "outcome"}),
		ConsolidationEvictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "consolidation", Name: "evictions_total",
			Help: "Evictions tried by consolidation, by outcome.",
		}, []string{"outcome"}),
		ConsolidationValidationFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "consolidation", Name: "validation_failures_total",
			Help: "Consolidation moves abandoned at validation, by method.",
		}, []string{"method"}),
		ConsolidationSaving: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "fleetpack", Subsystem: "consolidation", Name: "saving_dollars_per_hour",
			Help:    "Hourly saving of each completed consolidation move, by method.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"method"}),
		ConsolidationSkipped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "fleetpack", Subsystem: "consolidation", Name: "skipped_nodes",
			Help: "Nodes the last consolidation decision skipped, by reason.",
		}, []string{"reason"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.PodsPending, m.SchedulingDuration, m.NodesLaunched, m.NodesTerminated, m.OrphanedNodes, m.OrphanEvictions, m.LaunchFailures, m.UnavailableOfferings, m.PodsUnschedulable, m.LaunchedHourlyCost,
			m.ConsolidationDecisions, m.ConsolidationEvictions, m.ConsolidationValidationFailures, m.ConsolidationSaving, m.ConsolidationSkipped} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
