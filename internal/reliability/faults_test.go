package reliability_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/internal/impair"
	"github.com/thingway/thingway/internal/proctest"
	"github.com/thingway/thingway/thing"
)

// gatewayTimeout is the gateway's AM timeout in the fault tests.
const gatewayTimeout = time.Second

// faultThing is an authenticated thing through a clean link, with quick
// timers, and the relay it goes through.
func faultThing(t *testing.T, s *stack) (*thing.Thing, *impair.Relay) {
	t.Helper()
	relay := s.link(0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := dial(ctx, relay, func(c *thing.GatewayConfig) {
		c.AckTimeout, c.HandshakeInterval = 200*time.Millisecond, 200*time.Millisecond
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	th, err := s.manualThing(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	return th, relay
}

// status is the HTTP status of AM's refusal in err (the CoAP code the
// gateway answered), or 0.
func status(err error) int {
	var e *thing.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// token asks for an access token with a deadline that only bounds a
// failure.
func token(th *thing.Thing) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := th.AccessToken(ctx, "publish")
	return err
}

// AM faults as the gateway sees them (not parallel: it counts the test
// binary's goroutines): AM answering too slowly (or paused:
// connected, silent), AM failing with 5xx, AM gone (connections refused).
// Things get 5.04, AM's 5xx, or 5.03 within the gateway's timeout; once AM
// is back, the next request succeeds without any restart, and the
// gateway's goroutines come back to where they were.
func TestAMFaults(t *testing.T) {
	s := newStack(t, stackConfig{gateway: func(g *gateway.Server) { g.Timeout = gatewayTimeout }})
	th, _ := faultThing(t, s)
	if err := token(th); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	for _, tc := range []struct {
		name   string
		inject func()
		heal   func()
		want   []int // acceptable statuses
	}{
		{"AM slow (2 s)", func() { s.amCalls.delay.Store(int64(2 * time.Second)) }, func() { s.amCalls.delay.Store(0) }, []int{504}},
		{"AM paused", func() { s.amCalls.delay.Store(int64(time.Hour)) }, func() { s.amCalls.delay.Store(0) }, []int{504}},
		{"AM 500", func() { s.amCalls.fail.Store(http.StatusInternalServerError) }, func() { s.amCalls.fail.Store(0) }, []int{500}},
		{"AM 503", func() { s.amCalls.fail.Store(http.StatusServiceUnavailable) }, func() { s.amCalls.fail.Store(0) }, []int{503}},
		{"AM gone", s.stopAM, s.startAM, []int{503}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.inject()
			// Several things' requests at once: each gets its answer, and
			// none is left behind at the gateway.
			errs := make(chan error, 4)
			for range cap(errs) {
				go func() { errs <- token(th) }()
			}
			for range cap(errs) {
				err := <-errs
				if got := status(err); !contains(tc.want, got) {
					t.Errorf("during the fault: %v (status %d), want %v", err, got, tc.want)
				}
			}
			tc.heal()
			if err := token(th); err != nil {
				t.Errorf("after the fault: %v", err)
			}
			if !proctest.Eventually(20*time.Second, func() bool { return runtime.NumGoroutine() <= base+8 }) {
				t.Errorf("%d goroutines after the fault, %d before", runtime.NumGoroutine(), base)
			}
		})
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// stopAM closes AM's listener and connections: AM calls are refused.
func (s *stack) stopAM() {
	s.t.Helper()
	s.amServer.Close()
}

// startAM serves AM again on its port, with its state.
func (s *stack) startAM() {
	s.t.Helper()
	var l net.Listener
	var err error
	if !proctest.Eventually(10*time.Second, func() bool { l, err = net.Listen("tcp", s.amAddr); return err == nil }) {
		s.t.Fatalf("listen again on %s: %v", s.amAddr, err)
	}
	s.serveAM(l)
}

// The gateway killed and restarted on its port: the thing's next request
// gets no answer over its dead DTLS session, the thing dials again and
// sends it (signed anew) over a new session, and its AM session, which AM
// still holds, goes on: no new authentication.
func TestGatewayRestart(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackConfig{})
	th, relay := faultThing(t, s)
	if err := token(th); err != nil {
		t.Fatal(err)
	}
	logins := s.amCalls.count("authIndexValue=thing-tree")
	s.killGateway(relay)
	if err := token(th); err != nil {
		t.Fatalf("after the gateway's restart: %v", err)
	}
	if n := s.amCalls.count("authIndexValue=thing-tree") - logins; n != 0 {
		t.Errorf("the thing authenticated %d more times; its AM session was still valid", n)
	}
}
