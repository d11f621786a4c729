package amtest_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest"
)

// Client-side tokens are not stored, as in AM: a get_access_token request
// leaves no token or grant record, the tokens introspect from what they
// carry, a tampered one is inactive, a revocation is a record that lasts
// as long as the token could, and all of it holds across a restart on
// the same data directory.
func TestClientSideTokensStoreNothing(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	start := func() (*amtest.Server, *client) {
		srv := amtest.NewUnstartedServer()
		srv.Config, srv.DataDir, srv.Time = oauthConfig(), dir, clk.Now
		srv.SessionMaxTime, srv.SessionIdleTime = 3*time.Hour, 3*time.Hour
		srv.Start()
		t.Cleanup(srv.Close)
		c := newClient(t, srv)
		c.now = clk.Now
		return srv, c
	}
	srv, c := start()
	s := c.thingWithSession(c.adminLogin(), "client-side-thing", nil)
	var kept, revoked map[string]any
	for i := range 5 {
		got := expectStatus(t, s.accessToken("publish"), 200)
		switch i {
		case 0:
			kept = got
		case 1:
			revoked = got
		}
	}
	if tokens, grants := amtest.StoredTokens(srv); tokens != 0 || grants != 0 {
		t.Fatalf("after 5 client-side token requests the store holds %d tokens and %d grants, want none", tokens, grants)
	}
	at, rt := kept["access_token"].(string), kept["refresh_token"].(string)
	if in := s.introspect(at); in["active"] != true || in["scope"] != "publish" || in["token_type"] != "Bearer" {
		t.Errorf("access token introspection = %v", in)
	}
	if in := s.introspect(rt); in["active"] != true || in["token_type"] != "refresh_token" {
		t.Errorf("refresh token introspection = %v", in)
	}
	// Access tokens carry the provider's ES256 (things check them against
	// the JWK set); refresh tokens, read by the server alone, an HMAC.
	for tok, want := range map[string]string{at: "ES256", rt: "HS256"} {
		head, _, _ := strings.Cut(tok, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(head)
		var h struct{ Alg string }
		if json.Unmarshal(raw, &h); h.Alg != want {
			t.Errorf("token header %s: alg %q, want %s", raw, h.Alg, want)
		}
	}
	tampered := at[:len(at)-2] + map[bool]string{true: "AA", false: "BB"}[at[len(at)-2:] != "AA"]
	if in := s.introspect(tampered); in["active"] != false {
		t.Errorf("tampered token introspection = %v", in)
	}
	expectStatus(t, c.revoke(iotClient, iotClientSecret, revoked["access_token"].(string)), 200)
	if in := s.introspect(revoked["access_token"].(string)); in["active"] != false {
		t.Errorf("revoked token introspection = %v", in)
	}
	if tokens, _ := amtest.StoredTokens(srv); tokens != 1 {
		t.Errorf("after one revocation the store holds %d token records, want 1", tokens)
	}

	// A restart on the same directory: same keys, same revocations, and
	// the thing's session goes on with its next nonce.
	srv.Close()
	srv, c2 := start()
	s2 := &restricted{c: c2, th: s.th, token: s.token, nonce: s.nonce}
	if in := s2.introspect(at); in["active"] != true {
		t.Errorf("access token after a restart = %v", in)
	}
	if in := s2.introspect(revoked["access_token"].(string)); in["active"] != false {
		t.Errorf("revoked token after a restart = %v", in)
	}
	ref := expectStatus(t, s2.things("POST", "get_access_token", "/", map[string]any{"refresh_token": rt}), 200)
	expectThingsOAuth(t, s2.things("POST", "get_access_token", "/", map[string]any{"refresh_token": rt}), "invalid_grant", "")
	if ref["refresh_token"] == rt {
		t.Error("refresh token not rotated")
	}

	// Past the access tokens' lifetime: inactive, and the revocation's
	// record is gone with them.
	clk.Advance(time.Hour + time.Minute)
	if in := s2.introspect(at); in["active"] != false {
		t.Errorf("expired access token introspection = %v", in)
	}
	if tokens, _ := amtest.StoredTokens(srv); tokens != 1 {
		// The rotated refresh token's revocation lives as long as it could.
		t.Errorf("after expiry the store holds %d token records, want 1 (the rotated refresh token)", tokens)
	}
}
