package amtest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Sign-in on the pages is throttled per user name and per client: after 5
// failures a user name is locked for 15 minutes, even with the right
// password, with the same answer whether the user exists or not; after 20
// failures, any sign-in from that client is; the window passes.
func TestSignInThrottled(t *testing.T) {
	srv, c, clk := startClocked(t, nil)
	admin := c.adminLogin()
	if r := c.putIdentity(admin, "/", "bjensen", map[string]any{"userPassword": "Ch4ng31t"}); r.status != 201 {
		t.Fatalf("create bjensen: %d %s", r.status, r.body)
	}
	w := newWeb(t, srv)
	signIn := func(user, password string) response {
		t.Helper()
		return w.signIn(w.get("/openam/ui/login"), user, password)
	}
	const locked = "Too many failed sign-ins. Please try again in 15 minutes."
	for _, user := range []string{"bjensen", "nobody"} {
		for i := range 5 {
			if r := signIn(user, "wrong"); r.status != 200 || !strings.Contains(string(r.body), "not correct") {
				t.Fatalf("%s: failure %d = %d", user, i+1, r.status)
			}
		}
		right := "Ch4ng31t"
		r := signIn(user, right)
		if r.status != http.StatusTooManyRequests || !strings.Contains(string(r.body), locked) || r.header.Get("Retry-After") == "" {
			t.Errorf("%s after 5 failures: %d %s", user, r.status, r.body)
		}
	}
	// Another user from the same client is not locked yet (10 failures).
	if r := signIn("amAdmin", "changeit"); r.status != http.StatusSeeOther {
		t.Errorf("another user: %d", r.status)
	}
	clk.Advance(16 * time.Minute)
	if r := signIn("bjensen", "Ch4ng31t"); r.status != http.StatusSeeOther {
		t.Errorf("after the window: %d %s", r.status, r.body)
	}
	// 20 failures from one client, over many names, lock the client.
	for i := range 20 {
		signIn("user-"+string(rune('a'+i)), "wrong")
	}
	if r := signIn("amAdmin", "changeit"); r.status != http.StatusTooManyRequests {
		t.Errorf("a client with 20 failures: %d", r.status)
	}
}
