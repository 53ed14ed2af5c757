package interruption

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the interruption package's Prometheus metrics. Create them once
// with NewMetrics and share them between the handler and the sources.
type Metrics struct {
	// MessagesReceived counts parsed notices by kind.
	MessagesReceived *prometheus.CounterVec
	// MessagesDropped counts bodies that could not be parsed, by reason
	// (unsupported, malformed), which are deleted without action.
	MessagesDropped *prometheus.CounterVec
	// DeleteFailures counts queue messages whose delete failed; they come
	// back after their visibility timeout and are deduplicated then.
	DeleteFailures prometheus.Counter
	// Actions counts what the handler did, by notice kind and action.
	Actions *prometheus.CounterVec
	// DrainDuration observes how long draining a node took, by notice kind.
	DrainDuration *prometheus.HistogramVec
	// DeadlineMisses counts nodes that still held evictable pods when their
	// notice's deadline came.
	DeadlineMisses *prometheus.CounterVec
	// PodUnavailability observes, by notice kind, how long each pod the
	// handler evicted (or deleted, or lost with its node) was without a
	// running replacement: from the eviction until a pod of the same
	// controller, created since, runs and is Ready. Zero when the
	// replacement capacity was Ready before the drain and the scheduler
	// placed the new pod at once.
	PodUnavailability *prometheus.HistogramVec
	// MalformedRecords counts node records (AnnotationRecord) that could
	// not be read; those nodes are left as they are.
	MalformedRecords prometheus.Counter
}

// NewMetrics creates the metrics and registers them on reg (which may be nil
// to leave them unregistered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		MessagesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "interruption", Name: "messages_received_total",
			Help: "Interruption notices received, by kind.",
		}, []string{"kind"}),
		MessagesDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "interruption", Name: "messages_dropped_total",
			Help: "Queue messages deleted without action because they could not be parsed, by reason.",
		}, []string{"reason"}),
		DeleteFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "interruption", Name: "message_delete_failures_total",
			Help: "Queue messages whose delete failed.",
		}),
		Actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "interruption", Name: "actions_total",
			Help: "Actions taken on interruption notices, by notice kind and action.",
		}, []string{"kind", "action"}),
		DrainDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "fleetpack", Subsystem: "interruption", Name: "drain_duration_seconds",
			Help:    "Time from the start of a drain to the node's deletion, by notice kind.",
			Buckets: []float64{1, 5, 10, 20, 30, 60, 90, 120, 300, 600, 1800},
		}, []string{"kind"}),
		DeadlineMisses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "interruption", Name: "deadline_misses_total",
			Help: "Nodes that still held evictable pods at their notice's deadline, by notice kind.",
		}, []string{"kind"}),
		PodUnavailability: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "fleetpack", Subsystem: "interruption", Name: "pod_unavailable_seconds",
			Help:    "Time from a pod's eviction by the handler until its controller's replacement pod runs and is Ready, by notice kind.",
			Buckets: []float64{0, 1, 5, 10, 20, 30, 60, 120, 300, 600, 1800},
		}, []string{"kind"}),
		MalformedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "fleetpack", Subsystem: "interruption", Name: "malformed_records_total",
			Help: "Node interruption records (annotation " + AnnotationRecord + ") that could not be read; those nodes are left as they are.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.MessagesReceived, m.MessagesDropped, m.DeleteFailures, m.Actions, m.DrainDuration, m.DeadlineMisses, m.PodUnavailability, m.MalformedRecords} {
			if err := reg.Register(c); err != nil {
				return nil, errors.Join(errors.New("registering interruption metrics"), err)
			}
		}
	}
	return m, nil
}

// dropped records a body that could not be parsed; m may be nil.
func (m *Metrics) dropped(err error) {
	if m == nil {
		return
	}
	reason := "malformed"
	if errors.Is(err, ErrUnsupported) {
		reason = "unsupported"
	}
	m.MessagesDropped.WithLabelValues(reason).Inc()
}
