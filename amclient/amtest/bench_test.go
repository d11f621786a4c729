package amtest_test

import (
	"testing"
)

// BenchmarkPoPAuthentication measures complete PoP authentications over
// real HTTP on loopback: two round trips each (challenge, signed answer),
// ending in a restricted session.
func BenchmarkPoPAuthentication(b *testing.B) {
	srv, c := startServer(b)
	t := b
	_ = srv
	admin := c.adminLogin()
	th := newThing(t, "bench-thing")
	if r := c.register(admin, th, "/realms/root"); r.status != 201 {
		b.Fatalf("register: %d %s", r.status, r.body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if tok, r := c.authenticatePoP(th, "auth-tree", "/", "/"); tok == "" {
			b.Fatalf("auth: %d %s", r.status, r.body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "auths/s")
}

// BenchmarkAccessToken measures signed get_access_token requests on one
// restricted session (client-side ES256 access tokens with refresh tokens).
func BenchmarkAccessToken(b *testing.B) {
	srv, c := startServer(b)
	t := b
	_ = srv
	admin := c.adminLogin()
	th := newThing(t, "bench-thing")
	c.register(admin, th, "/realms/root")
	tok, r := c.authenticatePoP(th, "auth-tree", "/", "/")
	if tok == "" {
		b.Fatalf("auth: %d %s", r.status, r.body)
	}
	u := srv.URL + "/json/things/*?_action=get_access_token&realm=/"
	var nonce int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := c.signedRequest(th, "POST", u, thingsAPI, tok, nonce, map[string]any{"scope": []string{"publish"}})
		if r.status != 200 {
			b.Fatalf("token: %d %s", r.status, r.body)
		}
		nonce++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
