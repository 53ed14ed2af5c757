package interruption

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	testingclock "k8s.io/utils/clock/testing"
)

// imdsExamples loads testdata/imds-examples.json: path -> pending body.
func imdsExamples(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	raw, err := os.ReadFile("testdata/imds-examples.json")
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for path, v := range all {
		var entry struct {
			WhenPending struct {
				Body json.RawMessage `json:"body"`
			} `json:"when_pending"`
		}
		if path[0] != '/' || json.Unmarshal(v, &entry) != nil || entry.WhenPending.Body == nil {
			continue
		}
		out[path] = entry.WhenPending.Body
	}
	return out
}

const testInstance = "i-0b662ef9931388ba0"

func TestParseIMDSExamples(t *testing.T) {
	ex := imdsExamples(t)
	spotAt := mustTime(t, "2026-08-21T10:02:00Z")
	tests := []struct {
		path  string
		parse func(string, []byte) ([]Message, error)
		want  []Message
	}{
		{"/latest/meta-data/" + IMDSPathSpotAction, ParseIMDSSpotAction, []Message{{
			ID: "imds:" + testInstance + ":spot:terminate:2026-08-21T10:02:00Z", Kind: KindSpotInterruption,
			InstanceIDs: []string{testInstance}, Time: spotAt.Add(-2 * time.Minute), Deadline: spotAt, Action: "terminate",
		}}},
		{"/latest/meta-data/" + IMDSPathRebalance, ParseIMDSRebalance, []Message{{
			ID: "imds:" + testInstance + ":rebalance:2026-08-21T09:58:12Z", Kind: KindRebalanceRecommendation,
			InstanceIDs: []string{testInstance}, Time: mustTime(t, "2026-08-21T09:58:12Z"),
		}}},
		{"/latest/meta-data/" + IMDSPathMaintenance, ParseIMDSMaintenance, []Message{{
			ID: "imds:" + testInstance + ":maintenance:instance-event-0d59937288b749b32", Kind: KindScheduledChange,
			InstanceIDs: []string{testInstance}, Time: mustTime(t, "2019-01-21T09:00:43Z"), Deadline: mustTime(t, "2019-01-21T09:00:43Z"), Action: "system-reboot",
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			body, ok := ex[tc.path]
			if !ok {
				t.Fatalf("no example for %s", tc.path)
			}
			got, err := tc.parse(testInstance, body)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				got[i].Time, got[i].Deadline = got[i].Time.UTC(), got[i].Deadline.UTC()
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseIMDSErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parse func(string, []byte) ([]Message, error)
		body  string
	}{
		{"spot not json", ParseIMDSSpotAction, `terminate`},
		{"spot unknown action", ParseIMDSSpotAction, `{"action":"explode","time":"2026-08-21T10:02:00Z"}`},
		{"spot bad time", ParseIMDSSpotAction, `{"action":"terminate","time":"soon"}`},
		{"rebalance bad time", ParseIMDSRebalance, `{"noticeTime":""}`},
		{"maintenance not an array", ParseIMDSMaintenance, `{"Code":"system-reboot"}`},
		{"maintenance bad NotBefore", ParseIMDSMaintenance, `[{"EventId":"e-1","State":"active","NotBefore":"2019-01-21T09:00:43Z"}]`},
		{"maintenance without id", ParseIMDSMaintenance, `[{"State":"active","NotBefore":"21 Jan 2019 09:00:43 GMT"}]`},
	} {
		_, err := tc.parse(testInstance, []byte(tc.body))
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want a malformed ParseError", tc.name, err)
		}
	}
	// Completed and canceled maintenance is not a notice.
	got, err := ParseIMDSMaintenance(testInstance, []byte(`[{"EventId":"e-1","State":"completed","NotBefore":"21 Jan 2019 09:00:43 GMT"},{"EventId":"e-2","State":"canceled","NotBefore":"bad"}]`))
	if err != nil || len(got) != 0 {
		t.Errorf("finished events: got %v, %v; want none", got, err)
	}
}

func FuzzParseIMDS(f *testing.F) {
	for _, body := range imdsExamples(f) {
		f.Add([]byte(body))
	}
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, parse := range []func(string, []byte) ([]Message, error){ParseIMDSSpotAction, ParseIMDSRebalance, ParseIMDSMaintenance} {
			msgs, err := parse(testInstance, body)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("error is not ErrMalformed: %v", err)
				}
				continue
			}
			for _, m := range msgs {
				if m.ID == "" || m.Kind == "" || len(m.InstanceIDs) != 1 {
					t.Fatalf("incomplete message %+v", m)
				}
			}
		}
	})
}

// fakeIMDS serves the instance metadata paths with the IMDSv2 token flow: a
// PUT /latest/api/token with a TTL header returns a token, and every GET
// must carry it (401 otherwise, which makes the SDK fetch a new one).
type fakeIMDS struct {
	mu         sync.Mutex
	token      string
	tokenPuts  int
	violations []string
	gets       map[string]int
	bodies     map[string]string // path -> body; absent = 404
}

func (f *fakeIMDS) set(path, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies[path] = body
}

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut {
			f.violations = append(f.violations, r.Method+" on the token path")
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			f.violations = append(f.violations, "token PUT without a TTL header")
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.tokenPuts++
		f.token = "token-" + string(rune('A'+f.tokenPuts))
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
		_, _ = w.Write([]byte(f.token))
		return
	}
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if got := r.Header.Get("X-aws-ec2-metadata-token"); got == "" || got != f.token {
		f.violations = append(f.violations, "GET "+r.URL.Path+" with token "+got)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	f.gets[r.URL.Path]++
	body, ok := f.bodies[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write([]byte(body))
}

func TestIMDSSource(t *testing.T) {
	ex := imdsExamples(t)
	fake := &fakeIMDS{gets: map[string]int{}, bodies: map[string]string{
		"/latest/meta-data/instance-id":            testInstance,
		"/latest/meta-data/" + IMDSPathMaintenance: `[]`,
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	client := imds.New(imds.Options{Endpoint: srv.URL})
	clk := testingclock.NewFakeClock(t0)
	src, err := NewIMDSSource(client, IMDSOptions{Interval: 5 * time.Second, Clock: clk, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}

	got := make(chan Message, 10)
	refuseNext := make(chan struct{}, 1)
	sink := func(ctx context.Context, m Message) error {
		select {
		case <-refuseNext:
			return errors.New("not now")
		default:
		}
		got <- m
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()

	// poll waits for the source to sleep, then moves the clock one interval
	// so it polls again, and waits for that poll to sleep too.
	polls := func() int {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return fake.gets["/latest/meta-data/"+IMDSPathMaintenance]
	}
	waitPolled := func(n int) {
		for polls() < n || !clk.HasWaiters() {
		}
	}
	poll := func() {
		n := polls()
		waitPolled(n)
		clk.Step(5 * time.Second)
		waitPolled(n + 1)
	}
	expectNone := func() {
		t.Helper()
		select {
		case m := <-got:
			t.Fatalf("unexpected notice %+v", m)
		default:
		}
	}

	waitPolled(1)
	expectNone() // nothing pending: 404s and an empty maintenance list

	fake.set("/latest/meta-data/"+IMDSPathRebalance, string(ex["/latest/meta-data/"+IMDSPathRebalance]))
	poll()
	if m := <-got; m.Kind != KindRebalanceRecommendation || m.InstanceIDs[0] != testInstance {
		t.Fatalf("got %+v, want a rebalance recommendation for %s", m, testInstance)
	}
	poll()
	poll()
	expectNone() // the same recommendation is not delivered again

	// A refused notice is offered again on the next poll.
	fake.set("/latest/meta-data/"+IMDSPathSpotAction, string(ex["/latest/meta-data/"+IMDSPathSpotAction]))
	refuseNext <- struct{}{}
	poll()
	expectNone()
	poll()
	if m := <-got; m.Kind != KindSpotInterruption || !m.Deadline.Equal(mustTime(t, "2026-08-21T10:02:00Z")) {
		t.Fatalf("got %+v, want the spot interruption with its deadline", m)
	}
	poll()
	expectNone()

	fake.set("/latest/meta-data/"+IMDSPathMaintenance, string(ex["/latest/meta-data/"+IMDSPathMaintenance]))
	poll()
	if m := <-got; m.Kind != KindScheduledChange || m.Action != "system-reboot" {
		t.Fatalf("got %+v, want the scheduled maintenance", m)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.tokenPuts == 0 {
		t.Error("the source never fetched an IMDSv2 token")
	}
	if len(fake.violations) > 0 {
		t.Errorf("IMDSv2 violations: %v", fake.violations)
	}
}

func TestNewIMDSSourceValidates(t *testing.T) {
	client := imds.New(imds.Options{Endpoint: "http://127.0.0.1:1"})
	if _, err := NewIMDSSource(nil, IMDSOptions{}); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := NewIMDSSource(client, IMDSOptions{InstanceID: "node-1"}); err == nil {
		t.Error("bad instance id accepted")
	}
	if _, err := NewIMDSSource(client, IMDSOptions{Interval: -time.Second}); err == nil {
		t.Error("negative interval accepted")
	}
}
