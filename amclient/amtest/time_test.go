package amtest_test

import (
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest"
)

// TestSessionIdleTimeout covers AM's default idle timeout of 30 minutes.
func TestSessionIdleTimeout(t *testing.T) {
	_, c, clk := startClocked(t, nil)
	admin := c.adminLogin()
	if r := c.putIdentity(admin, "/", "idle-user", map[string]any{"userPassword": "pa55word", "thingType": "device"}); r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	tok := c.userLogin("idle-user", "pa55word")
	for i := 0; i < 3; i++ { // each use restarts the idle timer
		clk.Advance(29 * time.Minute)
		expectStatus(t, c.thingsJSON("GET", c.thingsURL("", "/"), tok, nil), 200)
	}
	clk.Advance(30 * time.Minute)
	expectCREST(t, c.thingsJSON("GET", c.thingsURL("", "/"), tok, nil), 401, "")
	if valid(t, c.session("validate", tok, nil)) {
		t.Errorf("idle session validates")
	}
	// The admin, idle just as long, is logged out too: its own session is
	// the one reported invalid.
	if valid(t, c.adminSession("validate", admin, tok)) {
		t.Errorf("idle admin session validates")
	}
	expectCREST(t, c.adminSession("logout", admin, tok), 401, "")
	admin = c.adminLogin()
	if valid(t, c.adminSession("validate", admin, tok)) {
		t.Errorf("admin sees the idle session valid")
	}
}

// TestSessionMaxTime covers AM's default maximum session time of 120 minutes
// and the configurable limits.
func TestSessionMaxTime(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		_, c, clk := startClocked(t, nil)
		admin := c.adminLogin()
		th := newThing(t, "max-thing")
		c.createThing(admin, "/", th, nil)
		s := c.restrictedSession(th, c.mustPoP(th, "auth-tree", "/"))
		for i := 0; i < 4; i++ {
			clk.Advance(29 * time.Minute)
			expectStatus(t, s.things("GET", "", "/", nil), 200)
		}
		clk.Advance(5 * time.Minute) // 121 minutes
		expectCREST(t, s.things("GET", "", "/", nil), 401, "")
	})
	t.Run("configured", func(t *testing.T) {
		_, c, clk := startClocked(t, nil, func(s *amtest.Server) {
			s.SessionMaxTime = 10 * time.Minute
			s.SessionIdleTime = 3 * time.Minute
		})
		admin := c.adminLogin()
		th := newThing(t, "short-thing")
		c.createThing(admin, "/", th, nil)
		s := c.restrictedSession(th, c.mustPoP(th, "auth-tree", "/"))
		clk.Advance(2 * time.Minute)
		expectStatus(t, s.things("GET", "", "/", nil), 200)
		clk.Advance(3 * time.Minute)
		expectCREST(t, s.things("GET", "", "/", nil), 401, "")

		admin = c.adminLogin()
		s = c.restrictedSession(th, c.mustPoP(th, "auth-tree", "/"))
		for i := 0; i < 4; i++ {
			clk.Advance(2 * time.Minute)
			expectStatus(t, s.things("GET", "", "/", nil), 200)
		}
		clk.Advance(2 * time.Minute) // 10 minutes
		expectCREST(t, s.things("GET", "", "/", nil), 401, "")
	})
}

// TestTokenExpiry covers access- and refresh-token lifetimes (§9.1): an
// expired access token introspects inactive; its refresh token still works.
func TestTokenExpiry(t *testing.T) {
	cfg := oauthConfig()
	cfg.Realms["/"].OAuth2.Core.RefreshTokenLifetime = 7200
	_, c, clk := startClocked(t, cfg, func(s *amtest.Server) {
		s.SessionMaxTime = 24 * time.Hour
		s.SessionIdleTime = 24 * time.Hour
	})
	admin := c.adminLogin()
	s := c.thingWithSession(admin, "expiring-thing", nil)
	got := expectStatus(t, s.accessToken("publish"), 200)
	at, rt := got["access_token"].(string), got["refresh_token"].(string)

	clk.Advance(3599 * time.Second)
	if in := s.introspect(at); in["active"] != true {
		t.Errorf("introspection before expiry = %v", in)
	}
	clk.Advance(time.Second)
	if in := s.introspect(at); len(in) != 1 || in["active"] != false {
		t.Errorf("introspection at expiry = %v", in)
	}
	got = expectStatus(t, s.things("POST", "get_access_token", "/", map[string]any{"refresh_token": rt}), 200)
	at2, rt2 := got["access_token"].(string), got["refresh_token"].(string)
	if in := s.introspect(at2); in["active"] != true {
		t.Errorf("refreshed token = %v", in)
	}
	// The new refresh token lives 7200 s from its issue.
	clk.Advance(7200 * time.Second)
	expectThingsOAuth(t, s.things("POST", "get_access_token", "/", map[string]any{"refresh_token": rt2}), "invalid_grant", "")
}

// TestAuthenticationTimeouts covers the authId lifetime, JWT time checks
// against the server clock, and certificate validity at the server's time.
func TestAuthenticationTimeouts(t *testing.T) {
	cfg, ca := configWithCA(t)
	srv, c, clk := startClocked(t, cfg)
	admin := c.adminLogin()
	th := newThing(t, "clock-thing")
	c.createThing(admin, "/", th, nil)
	u := c.authURL("auth-tree", "/")

	t.Run("authId expires after 5 minutes", func(t *testing.T) {
		_, cb := c.authStep(u, map[string]any{})
		i, nonce := hidden(t, cb, "jwt-pop-authentication")
		clk.Advance(5*time.Minute + time.Second)
		r, _ := c.authStep(u, answer(cb, i, th.signJWT(t, th.popClaims("/", nonce, clk.Now()))))
		loginFailed(t, r)
	})
	t.Run("authId within 5 minutes", func(t *testing.T) {
		_, cb := c.authStep(u, map[string]any{})
		i, nonce := hidden(t, cb, "jwt-pop-authentication")
		clk.Advance(4 * time.Minute)
		r, done := c.authStep(u, answer(cb, i, th.signJWT(t, th.popClaims("/", nonce, clk.Now()))))
		if done.TokenID == "" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("JWT expired by the server clock", func(t *testing.T) {
		_, cb := c.authStep(u, map[string]any{})
		i, nonce := hidden(t, cb, "jwt-pop-authentication")
		// exp = iat + 5 min; with 60 s of skew it is stale 6 min after iat.
		old := th.popClaims("/", nonce, clk.Now().Add(-6*time.Minute-time.Second))
		r, _ := c.authStep(u, answer(cb, i, th.signJWT(t, old)))
		loginFailed(t, r)
		// Expired 30 s ago, within the 60 s skew: accepted.
		_, cb = c.authStep(u, map[string]any{})
		i, nonce = hidden(t, cb, "jwt-pop-authentication")
		r, done := c.authStep(u, answer(cb, i, th.signJWT(t, th.popClaims("/", nonce, clk.Now().Add(-5*time.Minute-30*time.Second)))))
		if done.TokenID == "" {
			t.Errorf("JWT within the skew: %d %s", r.status, r.body)
		}
	})
	t.Run("JWT issued after the server clock", func(t *testing.T) {
		_, cb := c.authStep(u, map[string]any{})
		i, nonce := hidden(t, cb, "jwt-pop-authentication")
		r, _ := c.authStep(u, answer(cb, i, th.signJWT(t, th.popClaims("/", nonce, clk.Now().Add(2*time.Minute)))))
		loginFailed(t, r)
	})
	t.Run("certificate validity at the server clock", func(t *testing.T) {
		nt := newThing(t, "cert-clock-thing")
		ca.certify(t, nt, nt.id, clk.Now().Add(-time.Hour), clk.Now().Add(time.Hour))
		clk.Advance(2 * time.Hour)
		loginFailed(t, c.login(c.authURL("reg-tree", "/"), answers{"jwt-pop-registration": c.regAnswer(nt, "/", nil)}).r)
		later := newThing(t, "cert-later-thing")
		ca.certify(t, later, later.id, clk.Now().Add(time.Hour), clk.Now().Add(2*time.Hour))
		loginFailed(t, c.login(c.authURL("reg-tree", "/"), answers{"jwt-pop-registration": c.regAnswer(later, "/", nil)}).r)
		clk.Advance(90 * time.Minute)
		if res := c.login(c.authURL("reg-tree", "/"), answers{"jwt-pop-registration": c.regAnswer(later, "/", nil)}); res.token == "" {
			t.Errorf("registration inside the certificate's validity: %d %s", res.r.status, res.r.body)
		}
	})
	_ = srv
}
