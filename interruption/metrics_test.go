package interruption

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value reads a counter's value (or a histogram's sample count).
func value(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	switch {
	case out.Counter != nil:
		return out.Counter.GetValue()
	case out.Histogram != nil:
		return float64(out.Histogram.GetSampleCount())
	case out.Gauge != nil:
		return out.Gauge.GetValue()
	}
	t.Fatalf("unsupported metric %v", m.Desc())
	return 0
}

// unavailableFor reads the pod-unavailability histogram of kind: samples
// and their sum in seconds.
func unavailableFor(t testing.TB, m *Metrics, kind Kind) (uint64, float64) {
	t.Helper()
	var out dto.Metric
	if err := m.PodUnavailability.WithLabelValues(string(kind)).(prometheus.Metric).Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.Histogram.GetSampleCount(), out.Histogram.GetSampleSum()
}

func TestNewMetricsRegisters(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.MessagesReceived.WithLabelValues(string(KindSpotInterruption)).Inc()
	m.Actions.WithLabelValues(string(KindSpotInterruption), "drain").Inc()
	m.DrainDuration.WithLabelValues(string(KindSpotInterruption)).Observe(3)
	m.DeadlineMisses.WithLabelValues(string(KindSpotInterruption)).Inc()
	m.MessagesDropped.WithLabelValues("malformed").Inc()
	m.DeleteFailures.Inc()
	m.MalformedRecords.Inc()
	m.PodUnavailability.WithLabelValues(string(KindSpotInterruption)).Observe(0)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, want := range []string{
		"fleetpack_interruption_messages_received_total",
		"fleetpack_interruption_messages_dropped_total",
		"fleetpack_interruption_message_delete_failures_total",
		"fleetpack_interruption_actions_total",
		"fleetpack_interruption_drain_duration_seconds",
		"fleetpack_interruption_deadline_misses_total",
		"fleetpack_interruption_malformed_records_total",
		"fleetpack_interruption_pod_unavailable_seconds",
	} {
		if !names[want] {
			t.Errorf("metric %s not gathered", want)
		}
	}
	// A second set on the same registry collides, and says so.
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering the metrics twice succeeded")
	}
}
