package disruption

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reason is why a node is disrupted, as budgets name it.
type Reason string

// The reasons a budget may be limited to (Karpenter's names).
const (
	ReasonEmpty         Reason = "Empty"
	ReasonDrifted       Reason = "Drifted"
	ReasonUnderutilized Reason = "Underutilized"
	// ReasonExpired is expiration; only budgets that list no reasons
	// govern it.
	ReasonExpired Reason = "Expired"
)

// DefaultBudgetNodes is the budget of a pool that sets none.
const DefaultBudgetNodes = "10%"

// Budget caps how many of a pool's nodes may be disrupting at once. It is
// the shape of Karpenter's v1 NodePool spec.disruption.budgets[].
type Budget struct {
	// Nodes is a count ("5") or a percentage of the pool's nodes ("10%",
	// rounded up).
	Nodes string `json:"nodes"`
	// Reasons limits the budget to these reasons; empty means all.
	Reasons []Reason `json:"reasons,omitempty"`
	// Schedule is a cron expression (minute hour day-of-month month
	// day-of-week, or @hourly, @daily, @weekly, @monthly, @yearly) in UTC
	// at which the budget's window opens; it stays open for Duration.
	// Without a schedule the budget always applies.
	Schedule *string `json:"schedule,omitempty"`
	// Duration is how long the window stays open; required with Schedule.
	Duration *metav1.Duration `json:"duration,omitempty"`
}

// Validate checks the budget; errors name the field relative to the budget.
func (b Budget) Validate() error {
	if _, err := b.allowed(1); err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	for _, r := range b.Reasons {
		switch r {
		case ReasonEmpty, ReasonDrifted, ReasonUnderutilized:
		default:
			return fmt.Errorf("reasons: %q is not one of Empty, Drifted, Underutilized", r)
		}
	}
	if (b.Schedule == nil) != (b.Duration == nil) {
		return fmt.Errorf("schedule and duration: must be set together")
	}
	if b.Schedule != nil {
		if _, err := ParseCron(*b.Schedule); err != nil {
			return fmt.Errorf("schedule: %w", err)
		}
		if b.Duration.Duration <= 0 || b.Duration.Duration > maxWindow {
			return fmt.Errorf("duration: must be more than 0 and at most %s", maxWindow)
		}
	}
	return nil
}

// maxWindow bounds a budget window, and so the search for its opening.
const maxWindow = 31 * 24 * time.Hour

// allowed is how many of total nodes the budget lets be disrupting.
func (b Budget) allowed(total int) (int, error) {
	s := strings.TrimSpace(b.Nodes)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 100 {
			return 0, fmt.Errorf("%q: want a percentage from 0%% to 100%%", b.Nodes)
		}
		return int(math.Ceil(float64(total) * float64(v) / 100)), nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q: want a count (\"5\") or a percentage (\"10%%\")", b.Nodes)
	}
	return v, nil
}

// applies reports whether the budget governs reason at now.
func (b Budget) applies(reason Reason, now time.Time) bool {
	if len(b.Reasons) > 0 {
		found := false
		for _, r := range b.Reasons {
			found = found || r == reason
		}
		if !found {
			return false
		}
	}
	if b.Schedule == nil || b.Duration == nil {
		return true
	}
	c, err := ParseCron(*b.Schedule)
	if err != nil {
		return false
	}
	return c.within(now.UTC(), b.Duration.Duration)
}

// Allowed returns how many more of a pool's nodes may be disrupted for
// reason at now: the least any applying budget allows of total nodes, less
// the disrupting ones; DefaultBudgetNodes when budgets is empty.
func Allowed(budgets []Budget, reason Reason, now time.Time, total, disrupting int) int {
	if len(budgets) == 0 {
		budgets = []Budget{{Nodes: DefaultBudgetNodes}}
	}
	limit := math.MaxInt
	for _, b := range budgets {
		if !b.applies(reason, now) {
			continue
		}
		n, err := b.allowed(total)
		if err != nil {
			n = 0 // an invalid budget allows nothing
		}
		limit = min(limit, n)
	}
	return max(limit-disrupting, 0)
}

// Cron is a parsed five-field cron expression.
type Cron struct {
	// sets of allowed values per field: minute, hour, day of month, month,
	// day of week (0 = Sunday).
	minute, hour, dom, month, dow uint64
	// domStar and dowStar: the field was "*", which changes how day of
	// month and day of week combine (standard cron: either matches when
	// both are restricted).
	domStar, dowStar bool
}

// ParseCron parses "m h dom mon dow" (numbers, *, lists, ranges and /steps)
// or one of @yearly, @annually, @monthly, @weekly, @daily, @midnight,
// @hourly.
func ParseCron(expr string) (Cron, error) {
	switch strings.TrimSpace(expr) {
	case "@yearly", "@annually":
		expr = "0 0 1 1 *"
	case "@monthly":
		expr = "0 0 1 * *"
	case "@weekly":
		expr = "0 0 * * 0"
	case "@daily", "@midnight":
		expr = "0 0 * * *"
	case "@hourly":
		expr = "0 * * * *"
	}
	f := strings.Fields(expr)
	if len(f) != 5 {
		return Cron{}, fmt.Errorf("%q: want 5 fields (minute hour day-of-month month day-of-week)", expr)
	}
	var c Cron
	var err error
	bounds := [5][2]int{{0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 7}}
	sets := [5]*uint64{&c.minute, &c.hour, &c.dom, &c.month, &c.dow}
	names := [5]string{"minute", "hour", "day of month", "month", "day of week"}
	for i := range f {
		if *sets[i], err = cronField(f[i], bounds[i][0], bounds[i][1]); err != nil {
			return Cron{}, fmt.Errorf("%q: %s: %w", expr, names[i], err)
		}
	}
	if c.dow&(1<<7) != 0 { // 7 is Sunday too
		c.dow |= 1
	}
	c.domStar, c.dowStar = f[2] == "*", f[4] == "*"
	return c, nil
}

func cronField(s string, lo, hi int) (uint64, error) {
	var set uint64
	for _, part := range strings.Split(s, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			v, err := strconv.Atoi(stepStr)
			if err != nil || v <= 0 {
				return 0, fmt.Errorf("bad step %q", stepStr)
			}
			step = v
		}
		from, to := lo, hi
		if rng != "*" {
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if from, err = strconv.Atoi(a); err != nil {
				return 0, fmt.Errorf("bad value %q", a)
			}
			to = from
			if isRange {
				if to, err = strconv.Atoi(b); err != nil {
					return 0, fmt.Errorf("bad value %q", b)
				}
			} else if hasStep {
				to = hi
			}
		}
		if from < lo || to > hi || from > to {
			return 0, fmt.Errorf("%q: out of range %d-%d", part, lo, hi)
		}
		for v := from; v <= to; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

// Matches reports whether the schedule fires in the minute of t.
func (c Cron) Matches(t time.Time) bool {
	if c.minute&(1<<t.Minute()) == 0 || c.hour&(1<<t.Hour()) == 0 || c.month&(1<<int(t.Month())) == 0 {
		return false
	}
	return c.dayMatches(t)
}

// within reports whether the schedule fired in (now-d, now]: whether a
// window of length d is open at now. It steps back minute by minute,
// skipping whole hours and days that cannot match.
func (c Cron) within(now time.Time, d time.Duration) bool {
	t := now.Truncate(time.Minute)
	earliest := now.Add(-d)
	for t.After(earliest) {
		switch {
		case c.month&(1<<int(t.Month())) == 0, !c.dayMatches(t):
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Add(-time.Minute)
		case c.hour&(1<<t.Hour()) == 0:
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, time.UTC).Add(-time.Minute)
		case c.minute&(1<<t.Minute()) != 0:
			return true
		default:
			t = t.Add(-time.Minute)
		}
	}
	return false
}

func (c Cron) dayMatches(t time.Time) bool {
	dom, dow := c.dom&(1<<t.Day()) != 0, c.dow&(1<<int(t.Weekday())) != 0
	if c.domStar || c.dowStar {
		return dom && dow
	}
	return dom || dow
}
