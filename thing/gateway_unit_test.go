package thing_test

import (
	"testing"
	"time"

	"github.com/thingway/thingway/thing"
)

func TestGatewayAddress(t *testing.T) {
	for in, want := range map[string]string{
		"coap://:5683":         ":5683",
		"coaps://gw.example":   "gw.example:5684",
		"coap://gw.example":    "gw.example:5683",
		"coaps://[::1]:6000/x": "[::1]:6000",
		"127.0.0.1:5683":       "127.0.0.1:5683",
	} {
		if got, err := thing.GatewayAddress(in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "http://gw:80", "gw.example", "coap+tcp://gw:1"} {
		if got, err := thing.GatewayAddress(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}

// A session's timer goroutine ends when the session closes (stop), not at
// its next tick, and until then it runs f every tick until f says stop.
func TestRunPeriodicStops(t *testing.T) {
	stop := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		thing.RunPeriodic(stop, time.Hour, func(time.Time) bool {
			t.Error("f ran before its tick")
			return true
		})
		close(ended)
	}()
	close(stop)
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the timer goroutine outlived its session")
	}

	calls := 0
	thing.RunPeriodic(make(chan struct{}), time.Millisecond, func(time.Time) bool {
		calls++
		return calls < 3
	})
	if calls != 3 {
		t.Errorf("f ran %d times, want 3", calls)
	}
}
