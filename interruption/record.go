package interruption

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/provisioning"
)

// AnnotationRecord is the node annotation in which the handler records a
// notice it accepted and has not finished acting on: its kind, its deadline
// and whether replacement capacity was launched, as JSON. The record lives on
// the Node, not in the handler's memory, so a handler started after a
// restart finds it in Run and finishes the work by the recorded deadline.
// It goes with the node; the handler removes it when it gives up on a
// rebalance and keeps the node. Removing it by hand cancels the work a
// restarted handler would resume (the node stays cordoned).
const AnnotationRecord = "fleetpack.dev/interruption"

// record is the value of AnnotationRecord.
type record struct {
	Kind Kind `json:"kind"`
	// Deadline is when the instance goes; zero only for a rebalance.
	Deadline time.Time `json:"deadline,omitzero"`
	// MessageID is the notice's id, for logs.
	MessageID string `json:"messageID,omitempty"`
	// Replaced is set once replacement capacity was launched for the
	// node's pods; Replacements names the nodes they were placed on, which
	// a rebalance waits for before draining.
	Replaced     bool     `json:"replaced,omitempty"`
	Replacements []string `json:"replacements,omitempty"`
	// LaunchStarted is when a replacement launch began. It is written
	// before the launch, so a process that stops during it leaves a
	// trace: its successor does not launch a second time.
	LaunchStarted time.Time `json:"launchStarted,omitzero"`
}

// parseRecord reads node's record: nil if it has none, an error naming the
// node, the annotation and the field if the record is malformed.
func parseRecord(node *corev1.Node) (*record, error) {
	v, ok := node.Annotations[AnnotationRecord]
	if !ok {
		return nil, nil
	}
	var r record
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return nil, fmt.Errorf("interruption: node %s: annotation %s: %q is not a JSON record: %w", node.Name, AnnotationRecord, v, err)
	}
	switch r.Kind {
	case KindSpotInterruption, KindCapacityReservationInterruption, KindScheduledChange, KindStateChange:
		if r.Deadline.IsZero() {
			return nil, fmt.Errorf("interruption: node %s: annotation %s: deadline: missing for kind %s", node.Name, AnnotationRecord, r.Kind)
		}
	case KindRebalanceRecommendation:
	default:
		return nil, fmt.Errorf("interruption: node %s: annotation %s: kind: %q is not a notice kind", node.Name, AnnotationRecord, r.Kind)
	}
	return &r, nil
}

// mergeRecord returns r (nil: none) with notice m taken in, and whether m
// added to it. The record keeps the most urgent notice: a rebalance adds
// nothing to any record, a notice with a deadline replaces a rebalance and
// otherwise wins only with an earlier deadline. What was replaced is kept.
func mergeRecord(r *record, m Message, now time.Time) (record, bool) {
	next := record{Kind: m.Kind, Deadline: m.Deadline, MessageID: m.ID}
	if m.Kind == KindRebalanceRecommendation {
		next.Deadline = time.Time{}
	} else if next.Deadline.IsZero() {
		// No deadline known: the drain starts and ends at once.
		next.Deadline = now
	}
	if r == nil {
		return next, true
	}
	if m.Kind == KindRebalanceRecommendation || (r.Kind != KindRebalanceRecommendation && !next.Deadline.Before(r.Deadline)) {
		return *r, false
	}
	next.Replaced, next.Replacements, next.LaunchStarted = r.Replaced, r.Replacements, r.LaunchStarted
	return next, true
}

// malformed reports a record that cannot be acted on.
func (h *Handler) malformed(node *corev1.Node, err error) {
	h.opts.Metrics.MalformedRecords.Inc()
	h.log.Error("interruption record cannot be read; the node is left as it is (fix or remove the annotation)",
		"node", node.Name, "annotation", AnnotationRecord, "error", err)
}

// writeRecordLocked writes rec (nil removes the record) to w's node and
// makes it w's record. w.recMu must be held.
func (h *Handler) writeRecordLocked(ctx context.Context, w *nodeWork, rec *record) error {
	value := ""
	if rec != nil {
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("interruption: encoding the record of node %s: %w", w.node, err)
		}
		value = string(b)
	}
	if err := h.opts.Cluster.AnnotateNode(ctx, w.node, map[string]string{AnnotationRecord: value}); err != nil && !provisioning.IsNotFound(err) {
		return fmt.Errorf("interruption: recording the notice on node %s (annotation %s): %w", w.node, AnnotationRecord, err)
	}
	h.mu.Lock()
	w.rec, w.own = rec, true
	h.mu.Unlock()
	return nil
}

// updateRecord applies change to w's record and writes it (nothing when w
// has no record).
func (h *Handler) updateRecord(ctx context.Context, w *nodeWork, change func(*record)) error {
	w.recMu.Lock()
	defer w.recMu.Unlock()
	h.mu.Lock()
	if w.rec == nil {
		h.mu.Unlock()
		return nil
	}
	next := *w.rec
	h.mu.Unlock()
	change(&next)
	return h.writeRecordLocked(ctx, w, &next)
}
