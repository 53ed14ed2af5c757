package disruption

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCron(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		expr string
		t    string
		want bool
	}{
		{"* * * * *", "2026-03-02T10:07:00Z", true},
		{"0 9 * * 1-5", "2026-03-02T09:00:00Z", true},  // Monday
		{"0 9 * * 1-5", "2026-03-01T09:00:00Z", false}, // Sunday
		{"*/15 * * * *", "2026-03-02T10:45:00Z", true},
		{"*/15 * * * *", "2026-03-02T10:46:00Z", false},
		{"0 0 1 * *", "2026-03-01T00:00:00Z", true},
		{"0 0 1,15 * 0", "2026-03-08T00:00:00Z", true}, // Sunday: either day field
		{"0 0 * * 7", "2026-03-01T00:00:00Z", true},    // 7 is Sunday
		{"@daily", "2026-03-02T00:00:00Z", true},
		{"@hourly", "2026-03-02T10:01:00Z", false},
		{"30 2-4/2 * 6 *", "2026-06-10T04:30:00Z", true},
	}
	for _, c := range cases {
		cr, err := ParseCron(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if got := cr.Matches(at(c.t)); got != c.want {
			t.Errorf("%s at %s: %v, want %v", c.expr, c.t, got, c.want)
		}
	}
	for _, bad := range []string{"", "* * * *", "60 * * * *", "* 24 * * *", "5-1 * * * *", "*/0 * * * *", "a * * * *"} {
		if _, err := ParseCron(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	cr, _ := ParseCron("0 22 * * 5") // Friday 22:00
	if !cr.within(at("2026-03-09T08:00:00Z"), 60*time.Hour) {
		t.Error("a 60h window from Friday 22:00 is open on Monday 08:00")
	}
	if cr.within(at("2026-03-09T11:00:00Z"), 60*time.Hour) {
		t.Error("the window has closed by Monday 11:00")
	}
}

func TestBudgetValidate(t *testing.T) {
	s := "0 9 * * *"
	bad := []Budget{
		{Nodes: "ten"}, {Nodes: "120%"}, {Nodes: "-1"},
		{Nodes: "1", Reasons: []Reason{"Bored"}},
		{Nodes: "1", Schedule: &s},
		{Nodes: "1", Schedule: &s, Duration: &metav1.Duration{}},
	}
	for _, b := range bad {
		if err := b.Validate(); err == nil {
			t.Errorf("%+v validated", b)
		}
	}
	if err := (Budget{Nodes: "10%", Reasons: []Reason{ReasonEmpty}, Schedule: &s, Duration: &metav1.Duration{Duration: time.Hour}}).Validate(); err != nil {
		t.Error(err)
	}
}
