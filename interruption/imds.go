package interruption

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"k8s.io/utils/clock"
)

// IMDSAPI is the part of the instance-metadata client the IMDS source uses;
// *imds.Client satisfies it (and handles the IMDSv2 token itself).
type IMDSAPI interface {
	GetMetadata(ctx context.Context, params *imds.GetMetadataInput, optFns ...func(*imds.Options)) (*imds.GetMetadataOutput, error)
}

var _ IMDSAPI = (*imds.Client)(nil)

// Metadata paths polled, relative to /latest/meta-data.
const (
	IMDSPathSpotAction  = "spot/instance-action"
	IMDSPathRebalance   = "events/recommendations/rebalance"
	IMDSPathMaintenance = "events/maintenance/scheduled"
	imdsPathInstanceID  = "instance-id"
	defaultIMDSInterval = 2 * time.Second
)

// IMDSOptions configure an IMDSSource.
type IMDSOptions struct {
	// InstanceID is the instance the source runs on; if empty it is read
	// from the metadata service when Run starts.
	InstanceID string
	// Interval between polls (default 2 s, as the node termination handler).
	Interval time.Duration
	// Clock drives the polling (default: real clock).
	Clock clock.Clock
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Metrics, if set, counts notices that could not be parsed.
	Metrics *Metrics
}

// IMDSSource polls the instance metadata service of the instance it runs on
// for Spot interruption notices, rebalance recommendations and scheduled
// maintenance, for clusters without an interruption queue. A notice stays in
// the metadata until it happens, so the source remembers what it has
// delivered and hands each notice to the sink once (again only if the sink
// refused it).
type IMDSSource struct {
	api  IMDSAPI
	opts IMDSOptions
	// delivered holds the ids of notices the sink accepted. It grows by one
	// per distinct notice on one instance, which is a handful.
	delivered map[string]bool
}

// NewIMDSSource returns a source polling api.
func NewIMDSSource(api IMDSAPI, opts IMDSOptions) (*IMDSSource, error) {
	if api == nil {
		return nil, errors.New("interruption: IMDS source: nil IMDS client")
	}
	if opts.Interval < 0 {
		return nil, fmt.Errorf("interruption: IMDS source: Interval: %s is negative", opts.Interval)
	}
	if opts.InstanceID != "" && !ValidInstanceID(opts.InstanceID) {
		return nil, fmt.Errorf("interruption: IMDS source: InstanceID: %q is not an instance id", opts.InstanceID)
	}
	if opts.Interval == 0 {
		opts.Interval = defaultIMDSInterval
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &IMDSSource{api: api, opts: opts, delivered: map[string]bool{}}, nil
}

// Run implements Source: it polls at once and then every Interval until ctx
// is done. It returns an error only if the instance id cannot be learnt.
func (s *IMDSSource) Run(ctx context.Context, sink Sink) error {
	if s.opts.InstanceID == "" {
		body, found, err := s.get(ctx, imdsPathInstanceID)
		if err != nil || !found {
			return fmt.Errorf("interruption: IMDS source: reading instance id: found=%v: %w", found, err)
		}
		id := strings.TrimSpace(string(body))
		if !ValidInstanceID(id) {
			return fmt.Errorf("interruption: IMDS source: metadata instance-id %q is not an instance id", id)
		}
		s.opts.InstanceID = id
	}
	for {
		s.Poll(ctx, sink)
		select {
		case <-ctx.Done():
			return nil
		case <-s.opts.Clock.After(s.opts.Interval):
		}
	}
}

// Poll reads the three metadata paths once and sinks every new notice.
func (s *IMDSSource) Poll(ctx context.Context, sink Sink) {
	log := s.opts.Logger.With("instanceID", s.opts.InstanceID)
	for _, p := range []struct {
		path  string
		parse func(instanceID string, body []byte) ([]Message, error)
	}{
		{IMDSPathSpotAction, ParseIMDSSpotAction},
		{IMDSPathRebalance, ParseIMDSRebalance},
		{IMDSPathMaintenance, ParseIMDSMaintenance},
	} {
		body, found, err := s.get(ctx, p.path)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("polling instance metadata", "path", p.path, "error", err)
			}
			continue
		}
		if !found {
			continue
		}
		msgs, err := p.parse(s.opts.InstanceID, body)
		if err != nil {
			// Polled again next time; logged once per poll is enough
			// noise to be seen.
			log.Warn("unparseable instance metadata notice", "path", p.path, "error", err)
			s.opts.Metrics.dropped(err)
			continue
		}
		for _, m := range msgs {
			if s.delivered[m.ID] {
				continue
			}
			if err := sink(ctx, m); err != nil {
				log.Error("handling instance metadata notice; retrying on the next poll", "id", m.ID, "kind", m.Kind, "error", err)
				continue
			}
			s.delivered[m.ID] = true
		}
	}
}

// get reads a metadata path; found is false on 404, IMDS's "nothing here".
func (s *IMDSSource) get(ctx context.Context, path string) (body []byte, found bool, err error) {
	out, err := s.api.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
			return nil, false, nil
		}
		return nil, false, err
	}
	defer func() { _ = out.Content.Close() }()
	body, err = io.ReadAll(out.Content)
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", path, err)
	}
	return body, true, nil
}

// ParseIMDSSpotAction parses the body of spot/instance-action
// ({"action":"terminate","time":"..."}) into a KindSpotInterruption whose
// Deadline is the announced time.
func ParseIMDSSpotAction(instanceID string, body []byte) ([]Message, error) {
	var d struct {
		Action string `json:"action"`
		Time   string `json:"time"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, imdsErr(IMDSPathSpotAction, "", "not a JSON object: "+err.Error())
	}
	switch d.Action {
	case "terminate", "stop", "hibernate":
	default:
		return nil, imdsErr(IMDSPathSpotAction, "action", fmt.Sprintf("%q is not terminate, stop or hibernate", d.Action))
	}
	at, err := time.Parse(time.RFC3339, d.Time)
	if err != nil {
		return nil, imdsErr(IMDSPathSpotAction, "time", fmt.Sprintf("%q is not an RFC 3339 time", d.Time))
	}
	return []Message{{
		ID:          "imds:" + instanceID + ":spot:" + d.Action + ":" + at.UTC().Format(time.RFC3339),
		Kind:        KindSpotInterruption,
		InstanceIDs: []string{instanceID},
		Time:        at.Add(-NoticePeriod),
		Deadline:    at,
		Action:      d.Action,
	}}, nil
}

// ParseIMDSRebalance parses the body of events/recommendations/rebalance
// ({"noticeTime":"..."}).
func ParseIMDSRebalance(instanceID string, body []byte) ([]Message, error) {
	var d struct {
		NoticeTime string `json:"noticeTime"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, imdsErr(IMDSPathRebalance, "", "not a JSON object: "+err.Error())
	}
	at, err := time.Parse(time.RFC3339, d.NoticeTime)
	if err != nil {
		return nil, imdsErr(IMDSPathRebalance, "noticeTime", fmt.Sprintf("%q is not an RFC 3339 time", d.NoticeTime))
	}
	return []Message{{
		ID:          "imds:" + instanceID + ":rebalance:" + at.UTC().Format(time.RFC3339),
		Kind:        KindRebalanceRecommendation,
		InstanceIDs: []string{instanceID},
		Time:        at,
	}}, nil
}

// imdsMaintenanceTime is the layout of NotBefore/NotAfter ("21 Jan 2019
// 09:00:43 GMT").
const imdsMaintenanceTime = "2 Jan 2006 15:04:05 MST"

// ParseIMDSMaintenance parses the body of events/maintenance/scheduled (a
// JSON array of events) into one KindScheduledChange per active event, with
// Deadline at its NotBefore. Completed and canceled events are skipped.
func ParseIMDSMaintenance(instanceID string, body []byte) ([]Message, error) {
	var events []struct {
		Code        string `json:"Code"`
		Description string `json:"Description"`
		EventID     string `json:"EventId"`
		NotBefore   string `json:"NotBefore"`
		NotAfter    string `json:"NotAfter"`
		State       string `json:"State"`
	}
	if err := json.Unmarshal(body, &events); err != nil {
		return nil, imdsErr(IMDSPathMaintenance, "", "not a JSON array: "+err.Error())
	}
	var out []Message
	for i, e := range events {
		if e.State == "completed" || e.State == "canceled" {
			continue
		}
		if e.EventID == "" {
			return nil, imdsErr(IMDSPathMaintenance, fmt.Sprintf("[%d].EventId", i), "missing")
		}
		start, err := time.Parse(imdsMaintenanceTime, e.NotBefore)
		if err != nil {
			return nil, imdsErr(IMDSPathMaintenance, fmt.Sprintf("[%d].NotBefore", i), fmt.Sprintf("%q is not a time like %q", e.NotBefore, imdsMaintenanceTime))
		}
		out = append(out, Message{
			ID:          "imds:" + instanceID + ":maintenance:" + e.EventID,
			Kind:        KindScheduledChange,
			InstanceIDs: []string{instanceID},
			Time:        start,
			Deadline:    start.UTC(),
			Action:      e.Code,
		})
	}
	return out, nil
}

func imdsErr(path, field, reason string) *ParseError {
	if field != "" {
		field = path + ": " + field
	} else {
		field = path
	}
	return &ParseError{ID: "imds", Field: field, Reason: reason, Err: ErrMalformed}
}
