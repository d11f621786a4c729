package reliability_test

import (
	"context"
	"testing"
	"time"

	"github.com/thingway/thingway/internal/impair"
	"github.com/thingway/thingway/thing"
)

// Retransmitted and duplicated requests are answered by the gateway from
// its deduplication cache (or dropped while the first copy is at AM), never
// forwarded to AM a second time: every datagram to the gateway arrives
// twice, some out of order, and a quarter of its answers are lost, so
// that the thing retransmits; AM still sees each step and request once.
func TestDuplicatesReachAMOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackConfig{})
	const things = 3
	before := s.amCalls.snapshot()
	for i := range things {
		relay := s.impairedLink(impair.Impairment{Duplicate: 1, Reorder: 0.3}, impair.Impairment{Drop: 0.25}, uint64(100+i))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		conn, err := dial(ctx, relay, func(c *thing.GatewayConfig) {
			c.AckTimeout, c.HandshakeInterval = 200*time.Millisecond, 200*time.Millisecond
			c.MaxRetransmit = 10 // no request left unanswered: none is sent anew
		})
		if err != nil {
			t.Fatal(err)
		}
		th, err := s.manualThing(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		at, err := th.AccessToken(ctx, "publish")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := th.RefreshAccessToken(ctx, at.RefreshToken); err != nil {
			t.Fatalf("refresh (a refresh token is single-use: a second copy at AM would fail): %v", err)
		}
		if err := th.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		cancel()
		st := relay.Stats()
		if st.Up.Duplicated == 0 || st.Down.Dropped == 0 {
			t.Fatalf("the relay duplicated %d and dropped %d datagrams: nothing tested", st.Up.Duplicated, st.Down.Dropped)
		}
	}
	for call, want := range map[string]int{
		"/json/authenticate?authIndexValue=thing-tree": 2 * things, // the callbacks, then the signed JWT
		"/json/things/*?_action=get_access_token":      2 * things, // the token and its refresh
		"/json/sessions?_action=logout":                things,
	} {
		if got := s.amCalls.since(before, call); got != want {
			t.Errorf("AM saw %s %d times, want %d", call, got, want)
		}
	}
}
