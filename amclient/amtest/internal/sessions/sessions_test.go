package sessions_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/sessions"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func newStore(t *testing.T) store.Store {
	t.Helper()
	db := store.NewMem(func() time.Time { return t0 })
	t.Cleanup(func() { db.Close() })
	return db
}

// A token has AM's alphabet and is never what the session is stored under.
func TestToken(t *testing.T) {
	a, b := sessions.NewToken(), sessions.NewToken()
	if a == b || !strings.Contains(a, ".*AAJTSQACMDEAAlNLABQ") || !strings.HasSuffix(a, "*") {
		t.Errorf("tokens %q, %q", a, b)
	}
	if h := sessions.Hash(a); h == a || h != sessions.Hash(a) || h == sessions.Hash(b) {
		t.Errorf("hash %q of %q", h, a)
	}
}

// Nonces must rise: each is taken once, in one transaction with the
// check; one of an ended session is refused as gone.
func TestTakeNonce(t *testing.T) {
	db := newStore(t)
	tok := sessions.NewToken()
	h := sessions.Hash(tok)
	x := &sessions.Session{UID: "thing", Realm: "/", Restricted: true}
	sessions.Start(x, t0, time.Hour)
	if x.LastNonce != -1 || !x.Expires.Equal(t0.Add(time.Hour)) || x.UID0 == "" {
		t.Fatalf("started %+v", x)
	}
	if err := db.Update(func(tx store.Tx) error { return tx.Put(sessions.Kind, h, x, x.Expires) }); err != nil {
		t.Fatal(err)
	}
	take := func(n int64) error {
		return db.Update(func(tx store.Tx) error { return sessions.TakeNonce(tx, tok, n) })
	}
	for _, n := range []int64{0, 1, 5} {
		if err := take(n); err != nil {
			t.Fatalf("nonce %d: %v", n, err)
		}
	}
	for _, n := range []int64{5, 4, -1} {
		if err := take(n); !errors.Is(err, sessions.ErrNonceUsed) {
			t.Errorf("nonce %d again or below: %v", n, err)
		}
	}
	var got *sessions.Session
	db.View(func(tx store.Tx) error {
		var err error
		got, _, err = sessions.Read(tx, h)
		return err
	})
	if got == nil || got.LastNonce != 5 {
		t.Errorf("read back %+v, want LastNonce 5", got)
	}
	var ended bool
	if err := db.Update(func(tx store.Tx) error {
		var err error
		ended, err = sessions.End(tx, h)
		return err
	}); err != nil || !ended {
		t.Fatalf("end: %v %v", ended, err)
	}
	if err := take(6); !errors.Is(err, sessions.ErrGone) {
		t.Errorf("nonce of an ended session: %v", err)
	}
}

// A session idle for the idle time is over; a use before that restarts
// the timer; a swept or forgotten timer counts as fresh.
func TestIdle(t *testing.T) {
	var i sessions.Idle
	i.Touch("h", t0)
	if !i.Use("h", t0.Add(29*time.Minute), 30*time.Minute) {
		t.Error("used after 29 minutes of a 30-minute idle time: refused")
	}
	if i.Use("h", t0.Add(59*time.Minute), 30*time.Minute) {
		t.Error("used after 30 minutes idle: accepted")
	}
	i.Sweep(t0.Add(3*time.Hour), 2*time.Hour)
	if !i.Use("h", t0.Add(3*time.Hour), 30*time.Minute) {
		t.Error("after the sweep: refused")
	}
	i.Forget("h")
	if !i.Use("h", t0.Add(9*time.Hour), 30*time.Minute) {
		t.Error("after Forget: refused")
	}
}
