package main

import (
	"strings"
	"testing"
)

// --pprof serves Go's profiles beside /metrics; without it they are not
// served, and without --metrics-address it is refused.
func TestPprof(t *testing.T) {
	for _, withPprof := range []bool{true, false} {
		args := []string{"--address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0"}
		if withPprof {
			args = append(args, "--pprof")
		}
		p := start(t, nil, args...)
		metrics := "http://" + p.Stderr.WaitMatch(metricsLine)[1]
		p.Stdout.Wait("IoT Gateway server started.\n")
		code, body := httpGet(t, metrics+"/debug/pprof/heap?gc=1&debug=1")
		if withPprof && (code != 200 || !strings.Contains(body, "heap profile")) {
			t.Errorf("--pprof: /debug/pprof/heap = %d %.100q", code, body)
		}
		if !withPprof && code != 404 {
			t.Errorf("without --pprof: /debug/pprof/heap = %d, want 404", code)
		}
		if code, _ := httpGet(t, metrics+"/livez"); code != 200 {
			t.Errorf("/livez = %d", code)
		}
	}
	p := start(t, nil, "--address", "127.0.0.1:0", "--pprof")
	if code := p.Exit(); code != 1 || !strings.Contains(p.Stderr.String(), "--pprof needs --metrics-address") {
		t.Errorf("--pprof alone: exit %d, stderr %q", code, p.Stderr)
	}
}
