package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestWalkthrough runs the whole replay and checks the lines that tell the
// story, in order.
func TestWalkthrough(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"-v"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s\nstdout:\n%s", code, errOut.String(), out.String())
	}
	text := out.String()
	// -v: fleetpack's own logs, stamped with the virtual time.
	if !regexp.MustCompile(`(?m)^vtime=00:\d\d:\d\d level=INFO msg="launched instance"`).MatchString(errOut.String()) {
		t.Errorf("-v logs lack virtual-time launch records:\n%.2000s", errOut.String())
	}
	steps := []struct{ name, re string }{
		{"default NodePool", `NodePool default applied: capacity types on-demand,spot, labels intent=apps`},
		{"batch NodePool", `NodePool batch applied: capacity types spot, labels intent=batch`},
		{"scale up", `kubectl scale deployment inflate-spot --replicas 2 \(was 0\)`},
		{"one spot node for both pods", `launched (\S+) \(\S+ spot us-east-1\w, NodePool default, \$[0-9.]+/h billed, \$[0-9.]+/h list\) for inflate-spot-\d+, inflate-spot-\d+\n`},
		{"pods run", `pods running on \S+: inflate-spot-\d+, inflate-spot-\d+`},
		{"kubectl listing", `NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\s+ARCH\s+INSTANCE-TYPE\s+NODEPOOL\s+ZONE\s+CAPACITY-TYPE\nip-\S+\s+Ready\s+<none>\s+\d+s\s+\S+\s+(amd64|arm64)\s+\S+\s+default\s+us-east-1\w\s+spot\n`},
		{"spot notice", `EventBridge -> SQS: spot-interruption for i-\w+ \(node \S+\), instance terminates at \d\d:\d\d:\d\d`},
		{"cordoned at once", `\] node \S+ cordoned\n`},
		{"replacement launched", `replacement \S+ \(\S+ spot us-east-1\w, NodePool default, \$[0-9.]+/h billed, \$[0-9.]+/h list\) for 2 pods of the leaving node`},
		{"drained", `pods evicted from \S+: inflate-spot-\d+, inflate-spot-\d+`},
		{"running again", `pods running on \S+: inflate-spot-r\d+, inflate-spot-r\d+`},
		{"pool skipped", `Spot pool \S+ is skipped until its mark expires \(3 minutes after the notice\)`},
		{"before the deadline", `interrupted node drained and deleted at \S+, \S+ before EC2 reclaims it`},
		// Replacement first: the pods were evicted only once it was Ready.
		{"no unavailability after the warning", `longest unavailability after the Spot warning: 0s `},
		{"rebalance notice", `EventBridge -> SQS: rebalance-recommendation for i-\w+`},
		{"replacement first", `rebalance: replacement \S+ Ready at \S+; at-risk node drained and deleted at \S+, after its replacement was Ready`},
		{"no unavailability after the rebalance", `longest unavailability after the rebalance recommendation: 0s\n`},
		{"spot exhausted", `EC2: every Spot pool in us-east-1 is out of capacity`},
		{"on-demand fallback", `launched \S+ \(\S+ on-demand us-east-1\w, NodePool default, \$[0-9.]+/h billed, \$[0-9.]+/h list\) for inflate-`},
		{"spot-only pool waits with a reason", `still pending batch-spot-\d+[^:]*: .*insufficient capacity`},
		{"spot returns", `launched \S+ \(\S+ spot us-east-1\w, NodePool batch, \$[0-9.]+/h billed, \$[0-9.]+/h list\) for batch-spot-\d+, batch-spot-\d+`},
		{"scale-in", `kubectl scale deployment inflate --replicas 4 \(was 12\)`},
		{"consolidation moves", `consolidation: node \S+ drained, instance terminated, node deleted`},
		{"consolidation saves", `consolidation: [1-9]\d* nodes removed, \d+ pods moved in all; bill \$[0-9.]+/h -> \$[0-9.]+/h`},
		{"scale to 0", `kubectl scale deployment inflate-spot --replicas 0 \(was 2\)`},
		{"empty node removed", `consolidation: node \S+ drained, instance terminated, node deleted`},
		{"nothing left", `No resources found`},
		{"summary", `=== Summary`},
		{"unavailability summary", `longest unavailability after a notice: 0s `},
		{"the bill beside the list price", `compute cost:\s+\$[0-9.]+ billed, \$[0-9.]+ list \(the same nodes on-demand: \$[0-9.]+ billed`},
		{"no instance left", `EC2 instances live:    0\n`},
	}
	pos := 0
	for _, st := range steps {
		loc := regexp.MustCompile(st.re).FindStringIndex(text[pos:])
		if loc == nil {
			t.Fatalf("step %q: no match for %s after offset %d; output:\n%s", st.name, st.re, pos, text)
		}
		pos += loc[1]
	}
	// consolidateAfter (30s) is shorter than a node's startup (40s): a
	// replacement launched for the pods of a node being drained must not be
	// removed as empty before they move onto it.
	if i, j := strings.Index(text, "=== 3."), strings.Index(text, "=== 5."); i < 0 || j < i {
		t.Fatalf("steps 3 and 5 missing:\n%s", text)
	} else if strings.Contains(text[i:j], "consolidation: node") {
		t.Errorf("a node was removed as empty during the interruption steps:\n%s", text[i:j])
	}
	// The replacement went to another Spot pool than the interrupted one.
	first := regexp.MustCompile(`launched \S+ \((\S+) spot (us-east-1\w), NodePool default`).FindStringSubmatch(text)
	repl := regexp.MustCompile(`replacement \S+ \((\S+) spot (us-east-1\w), NodePool default`).FindStringSubmatch(text)
	if first == nil || repl == nil {
		t.Fatalf("no first launch or replacement in output:\n%s", text)
	}
	if first[1] == repl[1] && first[2] == repl[2] {
		t.Errorf("replacement launched in the interrupted pool %s/%s", first[1], first[2])
	}
	if m := regexp.MustCompile(`bill \$([0-9.]+)/h -> \$([0-9.]+)/h`).FindStringSubmatch(text); m == nil {
		t.Error("no bill before and after consolidation")
	} else if before, _ := strconv.ParseFloat(m[1], 64); before <= mustFloat(t, m[2]) {
		t.Errorf("consolidation did not lower the bill: %s -> %s", m[1], m[2])
	}
	if !strings.Contains(text, "interruption notices:  2 handled") {
		t.Errorf("summary does not count the two notices:\n%s", text)
	}
	// Every timeline line carries a virtual timestamp.
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "launched ") && !regexp.MustCompile(`^\[\d\d:\d\d:\d\d\] `).MatchString(line) {
			t.Errorf("timeline line without a virtual timestamp: %q", line)
		}
	}
	// Everything launched was removed again.
	launched := regexp.MustCompile(`nodes launched:\s+(\d+) spot, (\d+) on-demand`).FindStringSubmatch(text)
	removed := regexp.MustCompile(`nodes removed:\s+(\d+)`).FindStringSubmatch(text)
	if launched == nil || removed == nil {
		t.Fatalf("summary lacks node counts:\n%s", text)
	}
	spot, _ := strconv.Atoi(launched[1])
	onDemand, _ := strconv.Atoi(launched[2])
	if n, _ := strconv.Atoi(removed[1]); n != spot+onDemand {
		t.Errorf("removed %d nodes, launched %d", n, spot+onDemand)
	}
	if spot == 0 || onDemand == 0 {
		t.Errorf("want both spot and on-demand launches, got %s spot, %s on-demand", launched[1], launched[2])
	}
}

func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"-h"}, &out, &errOut); code != 0 {
		t.Errorf("exit %d for -h", code)
	}
	if !strings.Contains(errOut.String(), "-v") {
		t.Errorf("usage does not list -v: %s", errOut.String())
	}
}

func TestBadFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"-nope"}, &out, &errOut); code != 2 {
		t.Errorf("exit %d for an unknown flag, want 2", code)
	}
	if out.Len() != 0 {
		t.Errorf("stdout not empty: %s", out.String())
	}
}

func mustFloat(t *testing.T, s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
