package interruption

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// examples loads testdata/eventbridge-examples.json: name -> raw event body.
func examples(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	raw, err := os.ReadFile("testdata/eventbridge-examples.json")
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for k, v := range all {
		if strings.HasPrefix(k, "_") || k == "sqs_envelope_example" {
			continue
		}
		out[k] = v
	}
	return out
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func TestParseExamples(t *testing.T) {
	ex := examples(t)
	tests := []struct {
		name string
		want Message
	}{
		{"spot_interruption_warning", Message{
			ID: "1e5527d7-bb36-4607-3370-4164db56a40e", Kind: KindSpotInterruption,
			InstanceIDs: []string{"i-0b662ef9931388ba0"},
			Time:        mustTime(t, "2026-08-21T10:00:00Z"), Deadline: mustTime(t, "2026-08-21T10:02:00Z"),
			Action: "terminate", Region: "us-east-1", Account: "123456789012",
		}},
		{"rebalance_recommendation", Message{
			ID: "5d5555d5-dd55-5555-5555-5555dd55d55d", Kind: KindRebalanceRecommendation,
			InstanceIDs: []string{"i-0b662ef9931388ba0"},
			Time:        mustTime(t, "2026-08-21T09:58:12Z"),
			Region:      "us-east-1", Account: "123456789012",
		}},
		{"instance_state_change_stopping", Message{
			ID: "7bf73129-1428-4cd3-a780-95db273d1602", Kind: KindStateChange,
			InstanceIDs: []string{"i-abcd1111abcd1111a"},
			Time:        mustTime(t, "2026-08-21T10:02:00Z"), Deadline: mustTime(t, "2026-08-21T10:02:00Z"),
			State: StateStopping, Region: "us-east-1", Account: "123456789012",
		}},
		{"instance_state_change_terminated", Message{
			ID: "9c1e4a2b-5d6f-4e7a-8b9c-0d1e2f3a4b5c", Kind: KindStateChange,
			InstanceIDs: []string{"i-abcd1111abcd1111a"},
			Time:        mustTime(t, "2026-08-21T10:02:30Z"), Deadline: mustTime(t, "2026-08-21T10:02:30Z"),
			State: StateTerminated, Region: "us-east-1", Account: "123456789012",
		}},
		{"aws_health_scheduled_change", Message{
			ID: "7fb65329-1628-4cf3-a740-95fg457h1402", Kind: KindScheduledChange,
			InstanceIDs: []string{"i-0123456789abcdef0"},
			Time:        mustTime(t, "2026-08-21T06:27:57Z"), Deadline: mustTime(t, "2026-09-05T15:10:09Z"),
			Action: "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", Region: "us-east-1", Account: "123456789012",
		}},
		{"capacity_reservation_interruption_warning", Message{
			ID: "0f3c2a1b-9e8d-4c7b-a6f5-e4d3c2b1a090", Kind: KindCapacityReservationInterruption,
			InstanceIDs: []string{"i-0fedcba9876543210"},
			Time:        mustTime(t, "2026-08-21T10:00:00Z"), Deadline: mustTime(t, "2026-08-21T10:02:00Z"),
			Action: "terminate", Region: "us-east-1", Account: "123456789012",
		}},
	}
	if len(tests) != len(ex) {
		t.Fatalf("%d examples in testdata, %d test cases: cover every example", len(ex), len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, ok := ex[tc.name]
			if !ok {
				t.Fatalf("no example %q in testdata", tc.name)
			}
			got, err := Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestTerminal(t *testing.T) {
	for state, want := range map[string]bool{
		StateStopping: true, StateStopped: true, StateShuttingDown: true, StateTerminated: true,
		"pending": false, "running": false, "": false,
	} {
		if got := (Message{Kind: KindStateChange, State: state}).Terminal(); got != want {
			t.Errorf("Terminal(%q) = %v, want %v", state, got, want)
		}
	}
}

// mutate decodes an example, applies f to it, and re-encodes it.
func mutate(t testing.TB, body json.RawMessage, f func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseErrors(t *testing.T) {
	ex := examples(t)
	detail := func(m map[string]any) map[string]any { return m["detail"].(map[string]any) }
	tests := []struct {
		name      string
		body      []byte
		wantErr   error
		wantID    string
		wantField string
	}{
		{"not json", []byte(`{"id": `), ErrMalformed, "", ""},
		{"json array", []byte(`[1,2]`), ErrMalformed, "", ""},
		{"empty object", []byte(`{}`), ErrMalformed, "", "id"},
		{"unknown detail-type", mutate(t, ex["spot_interruption_warning"], func(m map[string]any) {
			m["detail-type"] = "EC2 Instance Launch Successful"
		}), ErrUnsupported, "1e5527d7-bb36-4607-3370-4164db56a40e", "detail-type"},
		{"wrong source for detail-type", mutate(t, ex["spot_interruption_warning"], func(m map[string]any) {
			m["source"] = "aws.autoscaling"
		}), ErrUnsupported, "1e5527d7-bb36-4607-3370-4164db56a40e", "detail-type"},
		{"unknown version", mutate(t, ex["rebalance_recommendation"], func(m map[string]any) {
			m["version"] = "1"
		}), ErrUnsupported, "5d5555d5-dd55-5555-5555-5555dd55d55d", "version"},
		{"bad time", mutate(t, ex["spot_interruption_warning"], func(m map[string]any) {
			m["time"] = "yesterday"
		}), ErrMalformed, "1e5527d7-bb36-4607-3370-4164db56a40e", "time"},
		{"missing detail", mutate(t, ex["spot_interruption_warning"], func(m map[string]any) {
			delete(m, "detail")
		}), ErrMalformed, "1e5527d7-bb36-4607-3370-4164db56a40e", "detail"},
		{"detail not an object", mutate(t, ex["spot_interruption_warning"], func(m map[string]any) {
			m["detail"] = "terminate"
		}), ErrMalformed, "1e5527d7-bb36-4607-3370-4164db56a40e", "detail"},
		{"missing instance id", mutate(t, ex["spot_interruption_warning"], func(m map[string]any) {
			delete(detail(m), "instance-id")
		}), ErrMalformed, "1e5527d7-bb36-4607-3370-4164db56a40e", "detail.instance-id"},
		{"bad instance id", mutate(t, ex["rebalance_recommendation"], func(m map[string]any) {
			detail(m)["instance-id"] = "i-xyz"
		}), ErrMalformed, "5d5555d5-dd55-5555-5555-5555dd55d55d", "detail.instance-id"},
		{"state change without state", mutate(t, ex["instance_state_change_stopping"], func(m map[string]any) {
			delete(detail(m), "state")
		}), ErrMalformed, "7bf73129-1428-4cd3-a780-95db273d1602", "detail.state"},
		{"health issue, not scheduled change", mutate(t, ex["aws_health_scheduled_change"], func(m map[string]any) {
			detail(m)["eventTypeCategory"] = "issue"
		}), ErrUnsupported, "7fb65329-1628-4cf3-a740-95fg457h1402", "detail.eventTypeCategory"},
		{"health for another service", mutate(t, ex["aws_health_scheduled_change"], func(m map[string]any) {
			detail(m)["service"] = "RDS"
		}), ErrUnsupported, "7fb65329-1628-4cf3-a740-95fg457h1402", "detail.service"},
		{"health start time not RFC 1123", mutate(t, ex["aws_health_scheduled_change"], func(m map[string]any) {
			detail(m)["startTime"] = "2026-09-05 15:10"
		}), ErrMalformed, "7fb65329-1628-4cf3-a740-95fg457h1402", "detail.startTime"},
		{"health without instances", mutate(t, ex["aws_health_scheduled_change"], func(m map[string]any) {
			detail(m)["affectedEntities"] = []any{map[string]any{"entityValue": "vol-0123"}}
		}), ErrMalformed, "7fb65329-1628-4cf3-a740-95fg457h1402", "detail.affectedEntities"},
		{"health with a bad instance id", mutate(t, ex["aws_health_scheduled_change"], func(m map[string]any) {
			detail(m)["affectedEntities"] = []any{map[string]any{"entityValue": "i-nope"}}
		}), ErrMalformed, "7fb65329-1628-4cf3-a740-95fg457h1402", "detail.affectedEntities[0].entityValue"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.body)
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v is not %v", err, tc.wantErr)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if pe.ID != tc.wantID {
				t.Errorf("ParseError.ID = %q, want %q", pe.ID, tc.wantID)
			}
			if pe.Field != tc.wantField {
				t.Errorf("ParseError.Field = %q, want %q", pe.Field, tc.wantField)
			}
			if tc.wantID != "" && !strings.Contains(err.Error(), tc.wantID) {
				t.Errorf("error %q does not name the message id", err)
			}
		})
	}
}

func TestParseHealthMultipleInstancesAndNoStart(t *testing.T) {
	ex := examples(t)
	body := mutate(t, ex["aws_health_scheduled_change"], func(m map[string]any) {
		d := m["detail"].(map[string]any)
		d["affectedEntities"] = []any{
			map[string]any{"entityValue": "i-0123456789abcdef0"},
			map[string]any{"entityValue": "vol-0123456789abcdef0"},
			map[string]any{"entityValue": "i-0123456789abcdef1"},
		}
		delete(d, "startTime")
	})
	got, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"i-0123456789abcdef0", "i-0123456789abcdef1"}; !reflect.DeepEqual(got.InstanceIDs, want) {
		t.Errorf("InstanceIDs = %v, want %v", got.InstanceIDs, want)
	}
	if !got.Deadline.Equal(got.Time) {
		t.Errorf("without a start time the deadline should be the event time, got %v (time %v)", got.Deadline, got.Time)
	}
}

func FuzzParse(f *testing.F) {
	for _, body := range examples(f) {
		f.Add([]byte(body))
	}
	f.Add([]byte(`{"version":"0","id":"x","time":"2026-08-21T10:00:00Z","source":"aws.ec2","detail-type":"EC2 Spot Instance Interruption Warning","detail":null}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Parse(body)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error is neither malformed nor unsupported: %v", err)
			}
			return
		}
		if m.ID == "" || m.Kind == "" || len(m.InstanceIDs) == 0 || m.Time.IsZero() {
			t.Fatalf("accepted an incomplete message: %+v", m)
		}
		for _, id := range m.InstanceIDs {
			if !ValidInstanceID(id) {
				t.Fatalf("accepted instance id %q", id)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	ex := examples(b)
	for _, name := range []string{"spot_interruption_warning", "aws_health_scheduled_change"} {
		body := []byte(ex[name])
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
