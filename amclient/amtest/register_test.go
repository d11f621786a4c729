package amtest_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest"
)

// identityKeys reads an identity as admin and returns its thingKeys kids
// and the identity object.
func (c *client) identityKeys(admin, realm, id string) ([]string, map[string]any) {
	c.t.Helper()
	r := c.getIdentity(admin, realm, id)
	if r.status != 200 {
		c.t.Fatalf("read identity %s: %d %s", id, r.status, r.body)
	}
	x := r.json(c.t)
	var kids []string
	sets, _ := x["thingKeys"].([]any)
	for _, s := range sets {
		set, ok := s.(map[string]any)
		if !ok {
			c.t.Fatalf("thingKeys element is not a JWK set object: %s", r.body)
		}
		keys, _ := set["keys"].([]any)
		for _, k := range keys {
			km := k.(map[string]any)
			if _, private := km["d"]; private {
				c.t.Errorf("stored key holds private material: %v", km)
			}
			kid, _ := km["kid"].(string)
			kids = append(kids, kid)
		}
	}
	return kids, x
}

// TestRegisterCertificate covers POP_WITH_CERTIFICATE registration (§5.3, §5.4).
func TestRegisterCertificate(t *testing.T) {
	cfg, ca := configWithCA(t)
	addTree(cfg, "/", "auth-reg-cert", popNode(true), regNode(amtest.RegPoPWithCertificate))
	addTree(cfg, "/", "reg-cert", nil, regNode(amtest.RegPoPWithCertificate))
	lax := regNode(amtest.RegPoPWithCertificate)
	lax.VerifySubject = false
	addTree(cfg, "/", "reg-cert-lax", nil, lax)
	addTree(cfg, "/", "assert-reg-cert", assertionNode("custom-client-assertion-audience"), regNode(amtest.RegPoPWithCertificate))
	srv, c := startWith(t, cfg)
	admin := c.adminLogin()
	other := newPKI(t, "untrusted-ca")
	now := time.Now()

	type tc struct {
		name   string
		tree   string
		thing  func(id string) *thing
		extra  map[string]any // registration JWT claim overrides
		aud    string
		rounds []string // expected callback ids per round
		ok     bool
	}
	good := func(id string) *thing { return ca.issue(t, newThing(t, id)) }
	tests := []tc{
		{name: "auth-reg tree", tree: "auth-reg-cert", thing: good, rounds: []string{"jwt-pop-authentication", "jwt-pop-registration"}, ok: true},
		{name: "registration-only tree", tree: "reg-cert", thing: good, rounds: []string{"jwt-pop-registration"}, ok: true},
		{name: "no cnf.kid, only cnf.jwk", tree: "reg-cert", thing: good, extra: map[string]any{"cnf": "jwk-only"}, ok: true},
		{name: "untrusted CA", tree: "reg-cert", thing: func(id string) *thing { return other.issue(t, newThing(t, id)) }},
		{name: "no x5c", tree: "reg-cert", thing: func(id string) *thing { return newThing(t, id) }},
		{name: "CN is not the subject", tree: "reg-cert", thing: func(id string) *thing {
			th := newThing(t, id)
			ca.certify(t, th, "someone-else", now.Add(-time.Hour), now.Add(time.Hour))
			return th
		}},
		{name: "CN is not the subject, verifySubject off", tree: "reg-cert-lax", thing: func(id string) *thing {
			th := newThing(t, id)
			ca.certify(t, th, "someone-else", now.Add(-time.Hour), now.Add(time.Hour))
			return th
		}, ok: true},
		{name: "expired leaf", tree: "reg-cert", thing: func(id string) *thing {
			th := newThing(t, id)
			ca.certify(t, th, id, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
			return th
		}},
		{name: "leaf not yet valid", tree: "reg-cert", thing: func(id string) *thing {
			th := newThing(t, id)
			ca.certify(t, th, id, now.Add(24*time.Hour), now.Add(48*time.Hour))
			return th
		}},
		{name: "certificate of another key", tree: "reg-cert", thing: func(id string) *thing {
			th := newThing(t, id)
			th.cert = ca.issue(t, newThing(t, id)).cert
			return th
		}},
		{name: "no thingType", tree: "reg-cert", thing: good, extra: map[string]any{"thingType": nil}},
		{name: "unknown thingType", tree: "reg-cert", thing: good, extra: map[string]any{"thingType": "toaster"}},
		{name: "wrong audience", tree: "reg-cert", thing: good, aud: "/elsewhere"},
		{name: "wrong nonce", tree: "reg-cert", thing: good, extra: map[string]any{"nonce": "not-the-challenge"}},
		{name: "expired JWT", tree: "reg-cert", thing: good, extra: map[string]any{"exp": now.Add(-10 * time.Minute).Unix(), "iat": now.Add(-15 * time.Minute).Unix()}},
	}
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512} {
		tests = append(tests, tc{name: "algorithm " + string(alg), tree: "auth-reg-cert", thing: func(id string) *thing {
			return ca.issue(t, newThingAlg(t, id, alg))
		}, rounds: []string{"jwt-pop-authentication", "jwt-pop-registration"}, ok: true})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := tt.thing(uniqueID("cert"))
			aud := tt.aud
			if aud == "" {
				aud = "/"
			}
			extra := tt.extra
			if extra["cnf"] == "jwk-only" {
				extra = map[string]any{"cnf": map[string]any{"jwk": th.jwk()}}
			}
			res := c.login(c.authURL(tt.tree, "/"), answers{
				"jwt-pop-authentication": c.popAnswer(th, "/"),
				"jwt-pop-registration":   c.regAnswer(th, aud, extra),
			})
			if !registered(t, c, admin, th, res, tt.ok) {
				return
			}
			var rounds []string
			for _, r := range res.rounds {
				rounds = append(rounds, strings.Join(r, "+"))
			}
			if tt.rounds != nil && strings.Join(rounds, ",") != strings.Join(tt.rounds, ",") {
				t.Errorf("callback rounds = %v, want %v", rounds, tt.rounds)
			}
			kids, x := c.identityKeys(admin, "/", th.id)
			if len(kids) != 1 || kids[0] != th.kid {
				t.Errorf("thingKeys kids = %v, want [%s]", kids, th.kid)
			}
			if got := stringList(x, "thingType"); len(got) != 1 || got[0] != "device" {
				t.Errorf("thingType = %v", x["thingType"])
			}
			if x["_id"] != th.id || x["username"] != th.id {
				t.Errorf("identity = %v", x)
			}
			// The registration session is restricted to the registered key.
			s := c.restrictedSession(th, res.token)
			if got := expectStatus(t, s.things("GET", "", "/", nil), 200); got["_id"] != th.id {
				t.Errorf("attributes = %v", got)
			}
			expectCREST(t, c.thingsJSON("GET", c.thingsURL("", "/"), res.token, nil), 401, "")
			// The registered key authenticates afterwards.
			c.mustPoP(th, "auth-tree", "/")
		})
	}

	t.Run("client assertion then registration with the additional audience", func(t *testing.T) {
		th := ca.issue(t, newThing(t, uniqueID("bearer")))
		res := c.login(c.authURL("assert-reg-cert", "/"), answers{
			"client_assertion":     constant(th.assertion(t, "custom-client-assertion-audience", time.Now(), nil)),
			"jwt-pop-registration": c.regAnswer(th, "custom-client-assertion-audience", nil),
		})
		if res.token == "" {
			t.Fatalf("%d %s", res.r.status, res.r.body)
		}
		// The registered thing now passes the client assertion alone.
		again := c.login(c.authURL("assert-reg-cert", "/"), answers{
			"client_assertion": constant(th.assertion(t, srv.URL+"/oauth2", time.Now(), nil)),
		})
		if again.token == "" || len(again.rounds) != 1 {
			t.Fatalf("second authentication: %v %d %s", again.rounds, again.r.status, again.r.body)
		}
	})
	t.Run("additional audience is not accepted by a registration-only tree", func(t *testing.T) {
		th := ca.issue(t, newThing(t, uniqueID("cert")))
		loginFailed(t, c.login(c.authURL("reg-cert", "/"), answers{"jwt-pop-registration": c.regAnswer(th, "custom-client-assertion-audience", nil)}).r)
	})
}

// TestRegisterSoftwareStatementWithPoP covers POP_WITH_SOFTWARE_STATEMENT (§5.2, §5.5).
func TestRegisterSoftwareStatementWithPoP(t *testing.T) {
	cfg := amtest.DefaultConfig()
	pub := newPublisher(t, "https://soft-pub.example.com")
	pub.configure(t, cfg, "/")
	cfg.Realms["/"].IoT.AttributeAllowlist = []string{"thingConfig", "thingType", "thingKeys"}
	addTree(cfg, "/", "reg-pop-ss", nil, regNode(amtest.RegPoPWithSoftwareStatement))
	_, c := startWith(t, cfg)
	admin := c.adminLogin()
	u := c.authURL("reg-pop-ss", "/")

	t.Run("both callbacks in one response", func(t *testing.T) {
		r, cb := c.authStep(u, map[string]any{})
		if r.status != 200 || len(cb.Callbacks) != 2 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		for i, want := range []string{"jwt-pop-registration", "software_statement"} {
			k, v := callbackKey(cb.Callbacks[i])
			in := cb.Callbacks[i]["input"].([]any)[0].(map[string]any)
			if k != want || in["name"] != "IDToken"+string(rune('1'+i)) {
				t.Errorf("callback %d = %s input %v, want %s IDToken%d", i, k, in["name"], want, i+1)
			}
			if want == "software_statement" && v != "" {
				t.Errorf("software_statement value = %q", v)
			}
			if want == "jwt-pop-registration" && v == "" {
				t.Errorf("no challenge")
			}
		}
		th := newThing(t, uniqueID("ss"))
		_, nonce := hidden(t, cb, "jwt-pop-registration")
		answer(cb, 0, th.signJWT(t, th.regClaims("/", nonce, time.Now(), nil)))
		answer(cb, 1, pub.statement(t, nil, th))
		r, done := c.authStep(u, cb)
		if done.TokenID == "" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		kids, _ := c.identityKeys(admin, "/", th.id)
		if len(kids) != 1 || kids[0] != th.kid {
			t.Errorf("kids = %v", kids)
		}
	})

	wrongKey := newPublisher(t, "https://soft-pub.example.com")
	unknownIss := newPublisher(t, "https://unknown.example.com")
	unknownIss.key, unknownIss.kid = pub.key, pub.kid
	tests := []struct {
		name      string
		statement func(th *thing) string
		regExtra  func(th *thing) map[string]any
		ok        bool
		thingType string
	}{
		{name: "valid", statement: func(th *thing) string { return pub.statement(t, nil, th) }, ok: true, thingType: "device"},
		{name: "PoP JWT with cnf.kid only", statement: func(th *thing) string { return pub.statement(t, nil, th) },
			regExtra: func(th *thing) map[string]any { return map[string]any{"cnf": map[string]any{"kid": th.kid}} }, ok: true, thingType: "device"},
		{name: "statement claims win", statement: func(th *thing) string { return pub.statement(t, map[string]any{"thingType": "service"}, th) }, ok: true, thingType: "service"},
		{name: "signed by a key the publisher does not have", statement: func(th *thing) string { return wrongKey.statement(t, nil, th) }},
		{name: "unknown issuer", statement: func(th *thing) string { return unknownIss.statement(t, nil, th) }},
		{name: "statement without the thing's key", statement: func(th *thing) string { return pub.statement(t, nil, newThing(t, th.id)) }},
		{name: "statement without jwks", statement: func(th *thing) string { return pub.statement(t, map[string]any{"jwks": nil}, th) }},
		{name: "no statement", statement: func(th *thing) string { return "" }},
		{name: "statement is not a JWT", statement: func(th *thing) string { return "software-statement" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newThing(t, uniqueID("ss"))
			var extra map[string]any
			if tt.regExtra != nil {
				extra = tt.regExtra(th)
			}
			res := c.login(u, answers{
				"jwt-pop-registration": c.regAnswer(th, "/", extra),
				"software_statement":   constant(tt.statement(th)),
			})
			if !registered(t, c, admin, th, res, tt.ok) {
				return
			}
			got := expectStatus(t, c.restrictedSession(th, res.token).things("GET", "", "/", nil), 200)
			if tp := stringList(got, "thingType"); len(tp) != 1 || tp[0] != tt.thingType {
				t.Errorf("thingType = %v, want %s", got["thingType"], tt.thingType)
			}
			c.mustPoP(th, "auth-tree", "/")
		})
	}
}

// TestRegisterWithoutTrust covers POP_WITHOUT_TRUST (§5.3).
func TestRegisterWithoutTrust(t *testing.T) {
	cfg := amtest.DefaultConfig()
	addTree(cfg, "/", "reg-pop", nil, regNode(amtest.RegPoPWithoutTrust))
	addTree(cfg, "/", "auth-reg-pop", popNode(true), regNode(amtest.RegPoPWithoutTrust))
	_, c := startWith(t, cfg)
	admin := c.adminLogin()
	tests := []struct {
		name  string
		tree  string
		extra func(th *thing) map[string]any
		ok    bool
	}{
		{name: "registration-only tree", tree: "reg-pop", ok: true},
		{name: "auth-reg tree", tree: "auth-reg-pop", ok: true},
		{name: "no cnf.jwk", tree: "reg-pop", extra: func(th *thing) map[string]any { return map[string]any{"cnf": map[string]any{"kid": th.kid}} }},
		{name: "cnf.jwk is another key", tree: "reg-pop", extra: func(th *thing) map[string]any {
			o := newThing(t, th.id)
			return map[string]any{"cnf": map[string]any{"jwk": o.jwk(), "kid": o.kid}}
		}},
		{name: "cnf.jwk holds the private key", tree: "reg-pop", extra: func(th *thing) map[string]any {
			return map[string]any{"cnf": map[string]any{"jwk": jose.JSONWebKey{Key: th.key, KeyID: th.kid}, "kid": th.kid}}
		}},
		{name: "cnf.jwk without kid takes cnf.kid", tree: "reg-pop", extra: func(th *thing) map[string]any {
			return map[string]any{"cnf": map[string]any{"jwk": jose.JSONWebKey{Key: th.key.Public()}, "kid": th.kid}}
		}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newThing(t, uniqueID("pop"))
			var extra map[string]any
			if tt.extra != nil {
				extra = tt.extra(th)
			}
			res := c.login(c.authURL(tt.tree, "/"), answers{
				"jwt-pop-authentication": c.popAnswer(th, "/"),
				"jwt-pop-registration":   c.regAnswer(th, "/", extra),
			})
			if !registered(t, c, admin, th, res, tt.ok) {
				return
			}
			if kids, _ := c.identityKeys(admin, "/", th.id); len(kids) != 1 || kids[0] != th.kid {
				t.Errorf("kids = %v", kids)
			}
			expectStatus(t, c.restrictedSession(th, res.token).things("GET", "", "/", nil), 200)
		})
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestRegisterSoftwareStatementOnly covers SOFTWARE_STATEMENT_WITHOUT_POP:
// a generated ID learned by reading attributes, an unrestricted session,
// then client-assertion authentication with that ID (RegisterDeviceSoftState).
func TestRegisterSoftwareStatementOnly(t *testing.T) {
	cfg := amtest.DefaultConfig()
	pub := newPublisher(t, "https://soft-pub.example.com")
	pub.configure(t, cfg, "/")
	cfg.Realms["/"].IoT.AttributeAllowlist = []string{"thingConfig", "thingType", "thingKeys"}
	reg := regNode(amtest.RegSoftwareStatementOnly)
	reg.DefaultAttributeValues = map[string]string{"thingType": "device"}
	addTree(cfg, "/", "reg-ss", nil, reg)
	addTree(cfg, "/", "assert-tree", assertionNode(), nil)
	srv, c := startWith(t, cfg)
	admin := c.adminLogin()
	th := newThing(t, "")

	res := c.login(c.authURL("reg-ss", "/"), answers{"software_statement": constant(pub.statement(t, nil, th))})
	if res.token == "" {
		t.Fatalf("registration: %d %s", res.r.status, res.r.body)
	}
	if len(res.rounds) != 1 || strings.Join(res.rounds[0], "+") != "software_statement" {
		t.Errorf("rounds = %v", res.rounds)
	}
	// Unrestricted: plain JSON attribute read.
	r := c.thingsJSON("GET", c.thingsURL("", "/"), res.token, nil)
	attrs := expectStatus(t, r, 200)
	id, _ := attrs["_id"].(string)
	if !uuidRE.MatchString(id) {
		t.Fatalf("_id = %q, want a generated UUID", id)
	}
	if got := stringList(attrs, "thingType"); len(got) != 1 || got[0] != "device" {
		t.Errorf("thingType = %v", attrs["thingType"])
	}
	if got := stringList(attrs, "thingKeys"); len(got) != 1 || !strings.Contains(got[0], th.kid) {
		t.Errorf("thingKeys = %v", attrs["thingKeys"])
	}
	if got := stringList(attrs, "thingConfig"); got == nil || len(got) != 0 {
		t.Errorf("thingConfig = %v, want []", attrs["thingConfig"])
	}
	// The session validates as the new identity.
	v := expectStatus(t, c.do("POST", srv.URL+"/json/sessions?_action=validate", nil, "Content-Type: application/json",
		"Accept-API-Version: resource=4.0", "Cookie: iPlanetDirectoryPro="+res.token), 200)
	if v["valid"] != true || v["uid"] != id {
		t.Errorf("validate = %v", v)
	}
	// Client assertion with sub = iss = the generated ID.
	th.id = id
	a := c.login(c.authURL("assert-tree", "/"), answers{"client_assertion": constant(th.assertion(t, srv.URL+"/oauth2", time.Now(), nil))})
	if a.token == "" {
		t.Fatalf("client assertion: %d %s", a.r.status, a.r.body)
	}
	if kids, _ := c.identityKeys(admin, "/", id); len(kids) != 1 || kids[0] != th.kid {
		t.Errorf("kids = %v", kids)
	}
	// The same statement registers a second, different thing.
	again := c.login(c.authURL("reg-ss", "/"), answers{"software_statement": constant(pub.statement(t, nil, th))})
	if again.token == "" {
		t.Fatalf("second registration: %d %s", again.r.status, again.r.body)
	}
	id2, _ := expectStatus(t, c.thingsJSON("GET", c.thingsURL("", "/"), again.token, nil), 200)["_id"].(string)
	if id2 == id || !uuidRE.MatchString(id2) {
		t.Errorf("second ID = %q, first %q", id2, id)
	}
	// A statement from an unknown publisher fails.
	stranger := newPublisher(t, "https://stranger.example.com")
	loginFailed(t, c.login(c.authURL("reg-ss", "/"), answers{"software_statement": constant(stranger.statement(t, nil, th))}).r)
}

// TestRegisterGuideTrees runs the default configuration's reg-tree and
// auth-reg-tree with the example CA replaced by a run-time CA.
func TestRegisterGuideTrees(t *testing.T) {
	cfg, ca := configWithCA(t)
	_, c := startWith(t, cfg)
	admin := c.adminLogin()
	for _, tree := range []string{"reg-tree", "auth-reg-tree"} {
		t.Run(tree, func(t *testing.T) {
			th := ca.issue(t, newThing(t, uniqueID(tree)))
			res := c.login(c.authURL(tree, "/"), answers{
				"jwt-pop-authentication": c.popAnswer(th, "/"),
				"jwt-pop-registration":   c.regAnswer(th, "/", nil),
			})
			if res.token == "" {
				t.Fatalf("%d %s", res.r.status, res.r.body)
			}
			kids, x := c.identityKeys(admin, "/", th.id)
			if len(kids) != 1 || kids[0] != th.kid {
				t.Errorf("kids = %v", kids)
			}
			classes := stringList(x, "objectClass")
			if !strings.Contains(strings.Join(classes, ","), "fr-iot") {
				t.Errorf("objectClass = %v", classes)
			}
			// Registered keys are stored without the certificate chain.
			// Look for the member, not the text: "x5c" can occur by
			// chance inside a key's base64url coordinates.
			sets, _ := x["thingKeys"].([]any)
			for _, s := range sets {
				keys, _ := s.(map[string]any)["keys"].([]any)
				for _, k := range keys {
					if _, kept := k.(map[string]any)["x5c"]; kept {
						t.Errorf("thingKeys keeps x5c: %v", k)
					}
				}
			}
		})
	}
	t.Run("default example CA does not trust a run-time CA", func(t *testing.T) {
		srv2, c2 := startServer(t)
		_ = srv2
		th := ca.issue(t, newThing(t, uniqueID("reg")))
		loginFailed(t, c2.login(c2.authURL("reg-tree", "/"), answers{"jwt-pop-registration": c2.regAnswer(th, "/", nil)}).r)
	})
}

// registered checks a registration's login against ok: a refused one
// leaves no identity behind, an accepted one has a session. It reports
// whether the test goes on with the session.
func registered(t *testing.T, c *client, admin string, th *thing, res loginResult, ok bool) bool {
	t.Helper()
	if !ok {
		loginFailed(t, res.r)
		if r := c.getIdentity(admin, "/", th.id); r.status != 404 {
			t.Errorf("identity exists after failed registration: %d", r.status)
		}
		return false
	}
	if res.token == "" {
		t.Fatalf("%d %s", res.r.status, res.r.body)
	}
	return true
}
