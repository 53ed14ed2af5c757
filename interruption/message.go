package interruption

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Kind says what a notice announces.
type Kind string

// The kinds of notice fleetpack acts on. The values are used as metric labels.
const (
	// KindSpotInterruption is EC2's two-minute warning that it takes a Spot
	// instance back.
	KindSpotInterruption Kind = "spot-interruption"
	// KindRebalanceRecommendation says a Spot instance is at elevated risk of
	// interruption; it usually comes before the warning, if at all.
	KindRebalanceRecommendation Kind = "rebalance-recommendation"
	// KindScheduledChange is an AWS Health scheduled change (retirement,
	// maintenance, reboot) for EC2 instances, starting at Message.Deadline.
	KindScheduledChange Kind = "scheduled-change"
	// KindStateChange is an instance state change; Message.State holds the
	// new state.
	KindStateChange Kind = "state-change"
	// KindCapacityReservationInterruption is the warning that an instance in
	// an interruptible capacity reservation is taken back, like a Spot
	// interruption.
	KindCapacityReservationInterruption Kind = "capacity-reservation-interruption"
)

// Instance states of an EC2 state-change notification that mean the node is
// going away. Other states (pending, running) are parsed but not acted on.
const (
	StateStopping     = "stopping"
	StateStopped      = "stopped"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
)

// NoticePeriod is how long EC2 gives between an interruption warning and the
// instance being taken back.
const NoticePeriod = 2 * time.Minute

// Message is one parsed notice, from a queue or from instance metadata.
type Message struct {
	// ID identifies the notice: the EventBridge event id, or for instance
	// metadata a stable id derived from the notice's contents.
	ID   string
	Kind Kind
	// InstanceIDs are the EC2 instances the notice is about (i-...).
	InstanceIDs []string
	// Time is when the event happened (EventBridge "time").
	Time time.Time
	// Deadline is when the instance goes away or the change starts: Time plus
	// NoticePeriod for interruption warnings, the start time of a scheduled
	// change, Time for a state change. Zero for a rebalance recommendation,
	// which carries no deadline.
	Deadline time.Time
	// State is the new instance state of a KindStateChange.
	State string
	// Action is the instance action of an interruption warning (terminate,
	// stop or hibernate) or the event type code of a scheduled change.
	Action string
	// Region and Account come from the event envelope (empty from IMDS).
	Region  string
	Account string
}

// Terminal reports whether a state change means the node is going away.
func (m Message) Terminal() bool {
	switch m.State {
	case StateStopping, StateStopped, StateShuttingDown, StateTerminated:
		return true
	}
	return false
}

// ErrUnsupported is wrapped by a ParseError for a well-formed event of a kind
// fleetpack does not handle.
var ErrUnsupported = errors.New("unsupported event")

// ErrMalformed is wrapped by a ParseError for a body that is not a valid event
// of the kind it claims to be.
var ErrMalformed = errors.New("malformed event")

// ParseError says why a body could not be parsed. Consumers log it and drop
// the message: retrying it would never succeed.
type ParseError struct {
	// ID is the event id, when the body got far enough to have one.
	ID string
	// DetailType and Source are the envelope's, when present.
	DetailType string
	Source     string
	// Field is the JSON path of the offending field, if one is to blame.
	Field string
	// Reason says what is wrong, for humans.
	Reason string
	// Err is ErrUnsupported or ErrMalformed, possibly wrapping a decoder error.
	Err error
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("interruption message")
	if e.ID != "" {
		fmt.Fprintf(&b, " %q", e.ID)
	}
	if e.DetailType != "" || e.Source != "" {
		fmt.Fprintf(&b, " (%s / %s)", e.Source, e.DetailType)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns ErrUnsupported or ErrMalformed (or the wrapped decoder error).
func (e *ParseError) Unwrap() error { return e.Err }

// Event detail-types and sources, exactly as EventBridge sends them.
const (
	detailSpotInterruption      = "EC2 Spot Instance Interruption Warning"
	detailRebalance             = "EC2 Instance Rebalance Recommendation"
	detailStateChange           = "EC2 Instance State-change Notification"
	detailHealth                = "AWS Health Event"
	detailCapacityReservationIW = "EC2 Capacity Reservation Instance Interruption Warning"
	sourceEC2                   = "aws.ec2"
	sourceHealth                = "aws.health"
)

// envelope is the EventBridge event. Detail stays raw until the kind is known.
type envelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

type instanceDetail struct {
	InstanceID     string `json:"instance-id"`
	InstanceAction string `json:"instance-action"`
	State          string `json:"state"`
}

type healthDetail struct {
	EventArn          string `json:"eventArn"`
	Service           string `json:"service"`
	EventTypeCode     string `json:"eventTypeCode"`
	EventTypeCategory string `json:"eventTypeCategory"`
	StartTime         string `json:"startTime"`
	EndTime           string `json:"endTime"`
	AffectedEntities  []struct {
		EntityValue string `json:"entityValue"`
	} `json:"affectedEntities"`
}

// instanceIDPattern matches EC2 instance ids: 8 (old) or 17 hex digits.
var instanceIDPattern = regexp.MustCompile(`^i-[0-9a-f]{8}([0-9a-f]{9})?$`)

// ValidInstanceID reports whether id looks like an EC2 instance id.
func ValidInstanceID(id string) bool { return instanceIDPattern.MatchString(id) }

// Parse parses an EventBridge event as delivered in an SQS message body. It
// returns a *ParseError wrapping ErrUnsupported for events fleetpack does not
// act on and ErrMalformed for bodies that are not valid events.
func Parse(body []byte) (Message, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Message{}, &ParseError{Reason: "not an EventBridge event: " + err.Error(), Err: fmt.Errorf("%w: %w", ErrMalformed, err)}
	}
	perr := func(kind error, field, reason string) *ParseError {
		return &ParseError{ID: env.ID, DetailType: env.DetailType, Source: env.Source, Field: field, Reason: reason, Err: kind}
	}
	if env.ID == "" {
		return Message{}, perr(ErrMalformed, "id", "missing")
	}
	if env.Version != "0" {
		return Message{}, perr(ErrUnsupported, "version", fmt.Sprintf("%q is not a known event version", env.Version))
	}
	at, err := time.Parse(time.RFC3339, env.Time)
	if err != nil {
		return Message{}, perr(ErrMalformed, "time", fmt.Sprintf("%q is not an RFC 3339 time", env.Time))
	}
	msg := Message{ID: env.ID, Time: at, Region: env.Region, Account: env.Account}
	if len(env.Detail) == 0 || string(env.Detail) == "null" {
		return Message{}, perr(ErrMalformed, "detail", "missing")
	}

	switch {
	case env.Source == sourceEC2 && (env.DetailType == detailSpotInterruption || env.DetailType == detailCapacityReservationIW):
		d, err := decodeInstanceDetail(env.Detail, perr)
		if err != nil {
			return Message{}, err
		}
		msg.Kind = KindSpotInterruption
		if env.DetailType == detailCapacityReservationIW {
			msg.Kind = KindCapacityReservationInterruption
		}
		msg.InstanceIDs = []string{d.InstanceID}
		msg.Action = d.InstanceAction
		msg.Deadline = at.Add(NoticePeriod)
	case env.Source == sourceEC2 && env.DetailType == detailRebalance:
		d, err := decodeInstanceDetail(env.Detail, perr)
		if err != nil {
			return Message{}, err
		}
		msg.Kind = KindRebalanceRecommendation
		msg.InstanceIDs = []string{d.InstanceID}
	case env.Source == sourceEC2 && env.DetailType == detailStateChange:
		d, err := decodeInstanceDetail(env.Detail, perr)
		if err != nil {
			return Message{}, err
		}
		if d.State == "" {
			return Message{}, perr(ErrMalformed, "detail.state", "missing")
		}
		msg.Kind = KindStateChange
		msg.InstanceIDs = []string{d.InstanceID}
		msg.State = d.State
		msg.Deadline = at
	case env.Source == sourceHealth && env.DetailType == detailHealth:
		var d healthDetail
		if err := json.Unmarshal(env.Detail, &d); err != nil {
			return Message{}, perr(fmt.Errorf("%w: %w", ErrMalformed, err), "detail", "not a Health event detail: "+err.Error())
		}
		if d.Service != "EC2" {
			return Message{}, perr(ErrUnsupported, "detail.service", fmt.Sprintf("%q is not EC2", d.Service))
		}
		if d.EventTypeCategory != "scheduledChange" {
			return Message{}, perr(ErrUnsupported, "detail.eventTypeCategory", fmt.Sprintf("%q is not scheduledChange", d.EventTypeCategory))
		}
		for i, e := range d.AffectedEntities {
			// Health events can list other entity kinds (volumes, hosts);
			// only instances are nodes.
			if strings.HasPrefix(e.EntityValue, "i-") {
				if !ValidInstanceID(e.EntityValue) {
					return Message{}, perr(ErrMalformed, fmt.Sprintf("detail.affectedEntities[%d].entityValue", i), fmt.Sprintf("%q is not an instance id", e.EntityValue))
				}
				msg.InstanceIDs = append(msg.InstanceIDs, e.EntityValue)
			}
		}
		if len(msg.InstanceIDs) == 0 {
			return Message{}, perr(ErrMalformed, "detail.affectedEntities", "no EC2 instance among the affected entities")
		}
		if d.StartTime != "" {
			start, err := parseHealthTime(d.StartTime)
			if err != nil {
				return Message{}, perr(ErrMalformed, "detail.startTime", fmt.Sprintf("%q is not an RFC 1123 time", d.StartTime))
			}
			msg.Deadline = start
		} else {
			// No start time: the change is due now.
			msg.Deadline = at
		}
		msg.Kind = KindScheduledChange
		msg.Action = d.EventTypeCode
	default:
		return Message{}, perr(ErrUnsupported, "detail-type", "not an event fleetpack handles")
	}
	return msg, nil
}

func decodeInstanceDetail(raw json.RawMessage, perr func(error, string, string) *ParseError) (instanceDetail, error) {
	var d instanceDetail
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, perr(fmt.Errorf("%w: %w", ErrMalformed, err), "detail", "not an EC2 instance event detail: "+err.Error())
	}
	if d.InstanceID == "" {
		return d, perr(ErrMalformed, "detail.instance-id", "missing")
	}
	if !ValidInstanceID(d.InstanceID) {
		return d, perr(ErrMalformed, "detail.instance-id", fmt.Sprintf("%q is not an instance id", d.InstanceID))
	}
	return d, nil
}

// parseHealthTime parses AWS Health's start and end times, which use the
// RFC 1123 form ("Sat, 05 Sep 2026 15:10:09 GMT").
func parseHealthTime(s string) (time.Time, error) {
	var firstErr error
	for _, layout := range []string{time.RFC1123, time.RFC1123Z} {
		t, err := time.Parse(layout, s)
		if err == nil {
			return t.UTC(), nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return time.Time{}, firstErr
}
