package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// The soak scenario, small and short: idle sessions in the child process,
// active and reconnecting things beside them, a window a second with the
// gateway's memory and goroutines, no errors, and the gateway's
// goroutines back where they started once every session has closed.
func TestSoak(t *testing.T) {
	args := []string{"gwbench", "--soak", "2s", "--soak-window", "1s", "--soak-interval", "100ms", "--things", "10", "--concurrency", "4", "--json"}
	out, progress, err := runApp(t, args...)
	if err != nil {
		t.Fatalf("gwbench: %v\n%s", err, progress)
	}
	var r soakResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if r.IdleThings != 10 || r.Active != 4 || r.Reconnecting != 1 || r.Settings.SoakS != 2 || r.Settings.SoakWindowS != 1 {
		t.Errorf("soak settings = %+v %+v", r, r.Settings)
	}
	if len(r.Windows) != 2 {
		t.Fatalf("%d windows, want 2: %+v", len(r.Windows), r.Windows)
	}
	tokens, reconnects := 0, 0
	for _, w := range r.Windows {
		tokens += w.Tokens
		reconnects += w.Reconnects
		if w.Gateway.Goroutines <= r.Start.Goroutines || w.Gateway.HeapInuse == 0 {
			t.Errorf("window %vs: gateway %+v (start %+v)", w.EndS, w.Gateway, r.Start)
		}
	}
	if tokens == 0 || reconnects == 0 {
		t.Errorf("%d tokens, %d reconnects", tokens, reconnects)
	}
	if r.Errors != 0 {
		t.Errorf("%d errors, first: %s", r.Errors, r.FirstErr)
	}
	if r.Loaded.Goroutines < r.Start.Goroutines+10 {
		t.Errorf("10 idle sessions: gateway goroutines %d, %d at the start", r.Loaded.Goroutines, r.Start.Goroutines)
	}
	if !r.Back || r.Closed.Goroutines > r.Start.Goroutines+soakGoroutineGap {
		t.Errorf("after every session closed the gateway has %d goroutines, %d at the start", r.Closed.Goroutines, r.Start.Goroutines)
	}
	for _, want := range []string{"soak: 10 idle sessions open", "soak:    1s:", "soak: every session closed"} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress lacks %q:\n%s", want, progress)
		}
	}
}

// The soak's settings are checked like the others.
func TestSoakFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--soak", "25h"}, "--soak 25h0m0s: want at most 24h0m0s"},
		{[]string{"--soak", "2s", "--soak-window", "3s"}, "--soak-window 3s: want 100ms to --soak (2s)"},
		{[]string{"--soak", "2s", "--soak-interval", "1ms"}, "--soak-interval 1ms: want 10ms to --soak (2s)"},
		{[]string{"--soak", "2s", "--idle-clients", "in-process"}, "needs --idle-clients process"},
	} {
		_, _, err := runApp(t, append([]string{"gwbench"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}
