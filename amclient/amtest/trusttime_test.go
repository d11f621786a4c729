package amtest_test

// Trust-path hardening (issue 11): the time claims and lifetimes of signed
// requests, registration JWTs and client assertions, and assertions' jti.

import (
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest"
)

// TestSignedRequestTimeClaims covers time claims in the payload of signed
// requests (§6.2): neither iot-edge nor this module's SDK sends them, but
// when present they are honoured with the 60 s clock skew.
func TestSignedRequestTimeClaims(t *testing.T) {
	lb := &logBuffer{}
	_, c, clk := startClocked(t, nil, logTo(lb))
	admin := c.adminLogin()
	th := newThing(t, "timed-request-thing")
	c.createThing(admin, "/", th, nil)
	tok := c.mustPoP(th, "auth-tree", "/")
	s := c.restrictedSession(th, tok)
	u := c.thingsURL("get_access_token", "/")

	tests := []struct {
		name   string
		claims func(now time.Time) map[string]any
		reason string // "" when accepted
	}{
		{"exp expired", func(now time.Time) map[string]any { return map[string]any{"exp": now.Add(-2 * time.Minute).Unix()} }, "the JWT has expired"},
		{"exp now", func(now time.Time) map[string]any { return map[string]any{"exp": now.Add(-time.Minute).Unix()} }, "the JWT has expired"},
		{"nbf in the future", func(now time.Time) map[string]any { return map[string]any{"nbf": now.Add(2 * time.Minute).Unix()} }, "the JWT is not valid yet"},
		{"iat in the future", func(now time.Time) map[string]any { return map[string]any{"iat": now.Add(2 * time.Minute).Unix()} }, "the JWT is issued in the future"},
		{"exp before iat", func(now time.Time) map[string]any {
			return map[string]any{"iat": now.Unix(), "exp": now.Add(-30 * time.Second).Unix()}
		}, "expires before it was issued"},
		{"exp not a NumericDate", func(now time.Time) map[string]any { return map[string]any{"exp": "tomorrow"} }, "claim exp"},
		{"exp expired 30 s ago, within the skew", func(now time.Time) map[string]any { return map[string]any{"exp": now.Add(-30 * time.Second).Unix()} }, ""},
		{"nbf and iat 30 s ahead, within the skew", func(now time.Time) map[string]any {
			return map[string]any{"nbf": now.Add(30 * time.Second).Unix(), "iat": now.Add(30 * time.Second).Unix()}
		}, ""},
		{"all three valid", func(now time.Time) map[string]any {
			return map[string]any{"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := tt.claims(clk.Now())
			payload["scope"] = []string{"publish"}
			payload["csrf"] = tok
			mark := lb.mark()
			r := c.sendJOSE("POST", u, thingsAPI, tok, signPayload(t, th, u, thingsAPI, s.nonce, payload))
			if tt.reason == "" {
				expectStatus(t, r, 200)
				s.nonce++
				return
			}
			expectCREST(t, r, 401, "Access Denied")
			expectLogged(t, lb, mark, tt.reason)
			// The refused request did not consume its nonce.
			expectStatus(t, s.things("POST", "get_access_token", "/", map[string]any{"scope": []string{"publish"}}), 200)
		})
	}
}

// TestJWTTimeClaimsAndLifetime covers the time claims of the nodes' JWTs
// and the MaxJWTLifetime ceiling (default 10 minutes): PoP authentication
// and registration JWTs and client assertions that live longer fail as
// any invalid JWT fails at that step (401 Login failure).
func TestJWTTimeClaimsAndLifetime(t *testing.T) {
	newServer := func(t *testing.T, tweak ...func(*amtest.Server)) (*client, *fakeClock, *logBuffer, string) {
		cfg := amtest.DefaultConfig()
		addTree(cfg, "/", "assert-tree", assertionNode("custom-client-assertion-audience"), nil)
		addTree(cfg, "/", "reg-pop", nil, regNode(amtest.RegPoPWithoutTrust))
		lb := &logBuffer{}
		_, c, clk := startClocked(t, cfg, append([]func(*amtest.Server){logTo(lb)}, tweak...)...)
		return c, clk, lb, c.adminLogin()
	}
	c, clk, lb, admin := newServer(t)
	th := newThing(t, "lifetime-thing")
	c.createThing(admin, "/", th, nil)
	year := 365 * 24 * time.Hour

	// popWith answers the PoP callback with claim overrides computed at the
	// server's time (nil deletes a claim).
	popWith := func(over func(now time.Time) map[string]any) func(string) string {
		return func(nonce string) string {
			m := th.popClaims("/", nonce, clk.Now())
			for k, v := range over(clk.Now()) {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			return th.signJWT(t, m)
		}
	}
	assertWith := func(jti string, over func(now time.Time) map[string]any) func(string) string {
		return func(string) string {
			now := clk.Now()
			m := map[string]any{"sub": th.id, "iss": th.id, "aud": "custom-client-assertion-audience",
				"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "cnf": map[string]any{}}
			if jti != "" {
				m["jti"] = jti
			}
			for k, v := range over(now) {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			return sign(t, th.key, th.alg, map[jose.HeaderKey]any{"typ": "JWT", "kid": th.kid}, m)
		}
	}
	tests := []struct {
		name   string
		tree   string
		a      answers
		reason string // "" when accepted
	}{
		{"PoP: exp expired", "auth-tree", answers{"jwt-pop-authentication": popWith(func(now time.Time) map[string]any {
			return map[string]any{"iat": now.Add(-7 * time.Minute).Unix(), "exp": now.Add(-2 * time.Minute).Unix()}
		})}, "the JWT has expired"},
		{"PoP: nbf in the future", "auth-tree", answers{"jwt-pop-authentication": popWith(func(now time.Time) map[string]any {
			return map[string]any{"nbf": now.Add(2 * time.Minute).Unix()}
		})}, "the JWT is not valid yet"},
		{"PoP: iat in the future", "auth-tree", answers{"jwt-pop-authentication": popWith(func(now time.Time) map[string]any {
			return map[string]any{"iat": now.Add(2 * time.Minute).Unix(), "exp": now.Add(7 * time.Minute).Unix()}
		})}, "the JWT is issued in the future"},
		{"PoP: exp ten years ahead", "auth-tree", answers{"jwt-pop-authentication": popWith(func(now time.Time) map[string]any {
			return map[string]any{"exp": now.Add(10 * year).Unix()}
		})}, "longer than the 10m0s allowed"},
		{"PoP: iat a year ago, exp in 5 minutes", "auth-tree", answers{"jwt-pop-authentication": popWith(func(now time.Time) map[string]any {
			return map[string]any{"iat": now.Add(-year).Unix()}
		})}, "longer than the 10m0s allowed"},
		{"PoP: lifetime 10 minutes and 1 second", "auth-tree", answers{"jwt-pop-authentication": popWith(func(now time.Time) map[string]any {
			return map[string]any{"exp": now.Add(10*time.Minute + time.Second).Unix()}
		})}, "lives 10m1s"},
		{"PoP: lifetime 10 minutes", "auth-tree", answers{"jwt-pop-authentication": popWith(func(now time.Time) map[string]any {
			return map[string]any{"exp": now.Add(10 * time.Minute).Unix()}
		})}, ""},
		{"registration: exp ten years ahead", "reg-pop", answers{"jwt-pop-registration": func(nonce string) string {
			nt := newThing(t, uniqueID("long-reg"))
			return nt.signJWT(t, nt.regClaims("/", nonce, clk.Now(), map[string]any{"exp": clk.Now().Add(10 * year).Unix()}))
		}}, "longer than the 10m0s allowed"},
		{"client assertion: exp a year after iat", "assert-tree", answers{"client_assertion": assertWith("long-1", func(now time.Time) map[string]any {
			return map[string]any{"exp": now.Add(year).Unix()}
		})}, "longer than the 10m0s allowed"},
		{"client assertion: no iat, exp in an hour", "assert-tree", answers{"client_assertion": assertWith("long-2", func(now time.Time) map[string]any {
			return map[string]any{"iat": nil, "exp": now.Add(time.Hour).Unix()}
		})}, "has no iat and expires in 1h0m0s"},
		{"client assertion: nbf in the future", "assert-tree", answers{"client_assertion": assertWith("long-3", func(now time.Time) map[string]any {
			return map[string]any{"nbf": now.Add(2 * time.Minute).Unix()}
		})}, "the JWT is not valid yet"},
		{"client assertion: no iat, exp in 10 minutes", "assert-tree", answers{"client_assertion": assertWith("ok-1", func(now time.Time) map[string]any {
			return map[string]any{"iat": nil, "exp": now.Add(10 * time.Minute).Unix()}
		})}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := c.identityCount(admin)
			mark := lb.mark()
			res := c.login(c.authURL(tt.tree, "/"), tt.a)
			if tt.reason == "" {
				if res.token == "" {
					t.Fatalf("%d %s\nlog: %s", res.r.status, res.r.body, lb.since(mark))
				}
				return
			}
			loginFailed(t, res.r)
			expectLogged(t, lb, mark, tt.reason)
			if got := c.identityCount(admin); got != n {
				t.Errorf("identities: %d before, %d after", n, got)
			}
		})
	}
	t.Run("a refused assertion does not use up its jti", func(t *testing.T) {
		// long-1 was refused above; the same jti in a valid assertion works.
		if res := c.login(c.authURL("assert-tree", "/"), answers{"client_assertion": assertWith("long-1", func(time.Time) map[string]any { return nil })}); res.token == "" {
			t.Fatalf("%d %s", res.r.status, res.r.body)
		}
	})
	t.Run("MaxJWTLifetime configured", func(t *testing.T) {
		c2, clk2, _, admin2 := newServer(t, func(s *amtest.Server) { s.MaxJWTLifetime = 2 * time.Hour })
		c2.createThing(admin2, "/", th, nil)
		hour := func(nonce string) string {
			m := th.popClaims("/", nonce, clk2.Now())
			m["exp"] = clk2.Now().Add(time.Hour).Unix()
			return th.signJWT(t, m)
		}
		if res := c2.login(c2.authURL("auth-tree", "/"), answers{"jwt-pop-authentication": hour}); res.token == "" {
			t.Errorf("one hour under a two-hour ceiling: %d %s", res.r.status, res.r.body)
		}
		threeHours := func(nonce string) string {
			m := th.popClaims("/", nonce, clk2.Now())
			m["exp"] = clk2.Now().Add(3 * time.Hour).Unix()
			return th.signJWT(t, m)
		}
		loginFailed(t, c2.login(c2.authURL("auth-tree", "/"), answers{"jwt-pop-authentication": threeHours}).r)
	})
	t.Run("MaxJWTLifetime negative: no ceiling", func(t *testing.T) {
		c3, clk3, _, admin3 := newServer(t, func(s *amtest.Server) { s.MaxJWTLifetime = -1 })
		c3.createThing(admin3, "/", th, nil)
		decade := func(nonce string) string {
			m := th.popClaims("/", nonce, clk3.Now())
			m["exp"] = clk3.Now().Add(10 * year).Unix()
			return th.signJWT(t, m)
		}
		if res := c3.login(c3.authURL("auth-tree", "/"), answers{"jwt-pop-authentication": decade}); res.token == "" {
			t.Errorf("ten years without a ceiling: %d %s", res.r.status, res.r.body)
		}
	})
}

// TestClientAssertionJTI covers the client-assertion replay cache (§4.3):
// a jti is used once per thing, also across a restart with a data
// directory, and RequireAssertionJTI refuses assertions without one.
func TestClientAssertionJTI(t *testing.T) {
	cfg := func() *amtest.Config {
		cfg := amtest.DefaultConfig()
		// A custom audience: the issuer URL would change with the port
		// across the restart.
		addTree(cfg, "/", "assert-tree", assertionNode("custom-client-assertion-audience"), nil)
		return cfg
	}
	clk := newFakeClock()
	assertion := func(t *testing.T, th *thing, jti string) string {
		extra := map[string]any{}
		if jti != "" {
			extra["jti"] = jti
		}
		return th.assertion(t, "custom-client-assertion-audience", clk.Now(), extra)
	}
	start := func(t *testing.T, dir string, require bool) (*amtest.Server, *client, *logBuffer) {
		lb := &logBuffer{}
		srv, c := startWith(t, cfg(), logTo(lb), func(s *amtest.Server) {
			s.Time, s.DataDir, s.RequireAssertionJTI = clk.Now, dir, require
		})
		c.now = clk.Now
		return srv, c, lb
	}
	login := func(c *client, a string) loginResult {
		return c.login(c.authURL("assert-tree", "/"), answers{"client_assertion": constant(a)})
	}

	t.Run("without jti, as iot-edge v7.4 and this module's SDK send it", func(t *testing.T) {
		_, c, _ := start(t, "", false)
		th := newThing(t, uniqueID("nojti"))
		c.createThing(c.adminLogin(), "/", th, nil)
		if res := login(c, assertion(t, th, "")); res.token == "" {
			t.Fatalf("%d %s", res.r.status, res.r.body)
		}
	})

	t.Run("RequireAssertionJTI", func(t *testing.T) {
		_, c, lb := start(t, "", true)
		th := newThing(t, uniqueID("jti"))
		c.createThing(c.adminLogin(), "/", th, nil)
		tests := []struct {
			name   string
			jwt    string
			reason string
		}{
			{"client assertion without jti", assertion(t, th, ""), "the client assertion has no jti"},
			{"client assertion with an empty jti", th.assertion(t, "custom-client-assertion-audience", clk.Now(), map[string]any{"jti": ""}), "the client assertion has no jti"},
			{"client assertion with jti", assertion(t, th, "jti-a"), ""},
			{"replayed jti", assertion(t, th, "jti-a"), `client assertion jti \"jti-a\" was already used`},
			{"the same jti in a new assertion", assertion(t, th, "jti-a"), `client assertion jti \"jti-a\" was already used`},
			{"a fresh jti", assertion(t, th, "jti-b"), ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				mark := lb.mark()
				res := login(c, tt.jwt)
				if tt.reason == "" {
					if res.token == "" {
						t.Fatalf("%d %s", res.r.status, res.r.body)
					}
					return
				}
				loginFailed(t, res.r)
				expectLogged(t, lb, mark, "Authenticate Thing")
				expectLogged(t, lb, mark, tt.reason)
			})
		}
		// The cache is per thing: another thing may pick the same jti.
		other := newThing(t, uniqueID("jti-other"))
		c.createThing(c.adminLogin(), "/", other, nil)
		if res := login(c, assertion(t, other, "jti-a")); res.token == "" {
			t.Errorf("another thing's jti-a: %d %s", res.r.status, res.r.body)
		}
	})

	t.Run("replayed jti after a restart with a data directory", func(t *testing.T) {
		dir := t.TempDir()
		srv, c, _ := start(t, dir, false)
		th := newThing(t, uniqueID("durable"))
		c.createThing(c.adminLogin(), "/", th, nil)
		a := assertion(t, th, "durable-jti")
		if res := login(c, a); res.token == "" {
			t.Fatalf("first use: %d %s", res.r.status, res.r.body)
		}
		srv.Close()

		srv2, c2, lb := start(t, dir, false)
		mark := lb.mark()
		loginFailed(t, login(c2, a).r)
		expectLogged(t, lb, mark, `client assertion jti \"durable-jti\" was already used`)
		// The thing itself is fine: a fresh jti works.
		if res := login(c2, assertion(t, th, "durable-jti-2")); res.token == "" {
			t.Fatalf("fresh jti after the restart: %d %s", res.r.status, res.r.body)
		}
		srv2.Close()

		// Once the assertion has expired it is refused for its exp.
		clk.Advance(10 * time.Minute)
		_, c3, lb3 := start(t, dir, false)
		c3.adminLogin() // a new session sweeps expired state
		mark = lb3.mark()
		loginFailed(t, login(c3, a).r)
		expectLogged(t, lb3, mark, "the JWT has expired")
	})
}
