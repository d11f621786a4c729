package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/thingway/thingway/internal/impair"
)

// A thing of the SDK offers a DTLS connection ID: when a NAT gives it
// another port (the relay's Rebind), its session goes on without a new
// handshake, and the gateway answers at the new address.
func TestThingMovesWithConnectionID(t *testing.T) {
	e := newEnv(t)
	g := e.gateway()
	relay, err := impair.Listen("udp4", "127.0.0.1:0", impair.Config{Upstream: g.addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	th := sdkThing(t, e, relay.Addr().String(), "moving-thing")
	lf := g.l.ForTest()
	if h := lf.Handshakes(); h != 1 {
		t.Fatalf("handshakes before the move = %d, want 1", h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 1; i <= 2; i++ {
		relay.Rebind()
		if _, err := th.AccessToken(ctx, "publish"); err != nil {
			t.Fatalf("access token after move %d: %v\ngateway: %v\nAM: %v", i, err, g.logs.records(), e.amLogs.records())
		}
		if h := lf.Handshakes(); h != 1 {
			t.Fatalf("handshakes after move %d = %d, want 1 (the session should have gone on)", i, h)
		}
		if s := g.s.ForTest().Sessions(); s != 1 {
			t.Fatalf("sessions after move %d = %d, want 1", i, s)
		}
	}
}
