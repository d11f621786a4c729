package gateway_test

import (
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/thingway/thingway/gateway"
)

// A session quiet for a moment lets go of pion's read buffer: pion's
// reader no longer waits in ReadFrom (with its buffer and the watcher
// goroutine of a read), and the thing's next datagram is answered as
// before, time after time.
// A resumed session does the same, and a quiet session's close_notify
// still ends it.
func TestQuietSessionReleasesReader(t *testing.T) {
	e := newEnv(t)
	var c clock
	g := e.gateway(func(s *gateway.Server) { s.Time = c.now })
	lf, sf := g.l.ForTest(), g.s.ForTest()
	rc := dialRaw(t, g.addr)
	if resp := rc.exchange(aminfoGET); resp.Code != codes.Content {
		t.Fatalf("/aminfo = %v", resp.Code)
	}
	for i := range 3 {
		// pion's reader lets go: it is no longer waiting in ReadFrom.
		waitFor(t, 10*time.Second, func() bool { return lf.Released() == 1 && lf.WaitingReads() == 0 })
		if resp := rc.exchange(aminfoGET); resp.Code != codes.Content {
			t.Fatalf("/aminfo %d after the session went quiet = %v", i, resp.Code)
		}
	}
	park(t, g, &c)
	for i := range 2 {
		if resp := rc.exchange(aminfoGET); resp.Code != codes.Content {
			t.Fatalf("/aminfo %d on the resumed session = %v", i, resp.Code)
		}
		waitFor(t, 10*time.Second, func() bool { return lf.Released() == 1 && lf.WaitingReads() == 0 })
	}
	if h, r := lf.Handshakes(), lf.Resumptions(); h != 1 || r != 1 {
		t.Errorf("handshakes %d, resumptions %d; want 1, 1", h, r)
	}
	rc.c.Close()
	waitFor(t, 10*time.Second, func() bool { return sf.Sessions() == 0 && lf.Peers() == 0 })
}
