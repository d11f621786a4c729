package gateway_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/internal/impair"
	"github.com/thingway/thingway/thing"
)

// dialThings opens n sessions to addr (thing.DialGateway, which pings
// once), a few at a time.
func dialThings(t *testing.T, addr string, n int) []*thing.Gateway {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conns := make([]*thing.Gateway, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			conns[i], errs[i] = thing.DialGateway(ctx, thing.GatewayConfig{Address: addr, Trust: coapx.Trust{InsecureAnyGateway: true}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			for _, c := range conns {
				if c != nil {
					c.Close()
				}
			}
			t.Fatalf("session %d: %v", i, err)
		}
	}
	return conns
}

// closeAll closes the sessions all at once.
func closeAll(conns []*thing.Gateway) {
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); c.Close() }()
	}
	wg.Wait()
}

// Sessions closed in a burst all go, with their goroutines: those whose
// close_notify arrives at once, those whose close_notify is lost when
// they have been idle for IdleTimeout (parked first at ParkAfter). No
// session, peer connection or goroutine is left behind.
func TestClosedSessionsGo(t *testing.T) {
	e := newEnv(t)
	var c clock
	g := e.gateway(func(s *gateway.Server) { s.Time = c.now })
	sf, lf := g.s.ForTest(), g.l.ForTest()
	closeAll(dialThings(t, g.addr, 1)) // the process's lazily started goroutines
	waitFor(t, 30*time.Second, func() bool { return sf.Sessions() == 0 && lf.Peers() == 0 })
	base := runtime.NumGoroutine()
	gone := func() bool {
		return sf.Sessions() == 0 && sf.Parked() == 0 && lf.Peers() == 0 && runtime.NumGoroutine() <= base
	}

	// close_notify delivered: the sessions end when it comes.
	const n = 64
	conns := dialThings(t, g.addr, n)
	if got := sf.Sessions(); got != n {
		t.Fatalf("sessions = %d, want %d", got, n)
	}
	closeAll(conns)
	waitFor(t, 30*time.Second, gone)

	// close_notify lost: the sessions stay until their idle timeout.
	relay, err := impair.Listen("udp4", "127.0.0.1:0", impair.Config{Upstream: g.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	const lost = 16
	conns = dialThings(t, relay.Addr().String(), lost)
	if err := relay.SetImpairment(impair.Impairment{Drop: 1}, impair.Impairment{Drop: 1}); err != nil {
		t.Fatal(err)
	}
	closeAll(conns)
	relay.Close()
	sf.CheckExpiry()
	if got := sf.Sessions(); got != lost {
		t.Fatalf("sessions whose close_notify was lost = %d before their idle timeout, want %d", got, lost)
	}
	c.advance(gateway.DefaultIdleTimeout + time.Second)
	waitFor(t, 30*time.Second, func() bool {
		sf.CheckExpiry() // parks them (idle past ParkAfter), then drops the parked ones (past IdleTimeout)
		return gone()
	})
}
