package interruption

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
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
}

// nodeRecord is the handler's copy of one node's record. Its mutex
// serializes the writes to the node's annotation, so that an older state
// never overwrites a newer one.
type nodeRecord struct {
	mu sync.Mutex
	// known is set once rec holds what the annotation holds.
	known bool
	rec   *record
	// written is set once this handler wrote the record: Run's resume
	// scan then leaves the node to the work that wrote it.
	written bool
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
	next.Replaced, next.Replacements = r.Replaced, r.Replacements
	return next, true
}

// recordEntry returns the handler's entry for node, creating it.
func (h *Handler) recordEntry(node string) *nodeRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.records[node]
	if !ok {
		e = &nodeRecord{}
		h.records[node] = e
	}
	return e
}

// forgetRecord drops the handler's entry for a node that is gone.
func (h *Handler) forgetRecord(node string) {
	h.mu.Lock()
	delete(h.records, node)
	h.mu.Unlock()
}

// loadRecordLocked returns node's record from e or, if e does not know it
// yet, from the node's annotation. A malformed record is reported and
// treated as none. e.mu must be held.
func (h *Handler) loadRecordLocked(e *nodeRecord, node *corev1.Node) *record {
	if e.known {
		return e.rec
	}
	rec, err := parseRecord(node)
	if err != nil {
		h.malformed(node, err)
		return nil
	}
	e.known, e.rec = true, rec
	return rec
}

// malformed reports a record that cannot be acted on.
func (h *Handler) malformed(node *corev1.Node, err error) {
	h.opts.Metrics.MalformedRecords.Inc()
	h.log.Error("interruption record cannot be read; the node is left as it is (fix or remove the annotation)",
		"node", node.Name, "annotation", AnnotationRecord, "error", err)
}

// writeRecordLocked writes rec (nil removes the record) to the node and
// remembers it in e. e.mu must be held.
func (h *Handler) writeRecordLocked(ctx context.Context, e *nodeRecord, node string, rec *record) error {
	value := ""
	if rec != nil {
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("interruption: encoding the record of node %s: %w", node, err)
		}
		value = string(b)
	}
	if err := h.opts.Cluster.AnnotateNode(ctx, node, map[string]string{AnnotationRecord: value}); err != nil && !provisioning.IsNotFound(err) {
		return fmt.Errorf("interruption: recording the notice on node %s (annotation %s): %w", node, AnnotationRecord, err)
	}
	e.known, e.rec, e.written = true, rec, true
	return nil
}

// noteNotice takes m into node's record and writes the record if m added
// to it. It returns the record the node's work follows and whether m added
// to it; with work unset (m alone queues nothing) it writes nothing and
// returns the record there is, or nil.
func (h *Handler) noteNotice(ctx context.Context, node *corev1.Node, m Message, work bool) (*record, bool, error) {
	e := h.recordEntry(node.Name)
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := h.loadRecordLocked(e, node)
	if !work {
		return cur, false, nil
	}
	next, added := mergeRecord(cur, m, h.opts.Clock.Now())
	if !added {
		return &next, false, nil
	}
	return &next, true, h.writeRecordLocked(ctx, e, node.Name, &next)
}

// updateRecord applies change to the record of a's node and writes it. If
// the handler does not know the node's record (its write failed), it starts
// from a's.
func (h *Handler) updateRecord(ctx context.Context, a *action, change func(*record)) error {
	e := h.recordEntry(a.node)
	e.mu.Lock()
	defer e.mu.Unlock()
	next := a.rec
	if e.known && e.rec != nil {
		next = *e.rec
	}
	change(&next)
	return h.writeRecordLocked(ctx, e, a.node, &next)
}

// clearRecord removes the record of a node the handler is done with but
// keeps, unless a notice of another kind has taken the record over since
// (a Spot warning arriving while a rebalance launches): that work is still
// to do, and a restart must find it.
func (h *Handler) clearRecord(ctx context.Context, a *action) error {
	e := h.recordEntry(a.node)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.known && e.rec != nil && e.rec.Kind != a.msg.Kind {
		return nil
	}
	return h.writeRecordLocked(ctx, e, a.node, nil)
}
