package amtest_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest"
)

// entryAuthNode returns the settings of a tree's entry Authenticate Thing node.
func entryAuthNode(cfg *amtest.Config, realm, tree string) *amtest.IoTAuthenticationNode {
	r := cfg.Realms[realm]
	return r.Nodes[r.Trees[tree].EntryNodeID].Authentication
}

// TestAuthenticatePoP covers the Authenticate Thing node's proof-of-possession
// checks (§4.2) on the guide's auth-tree.
func TestAuthenticatePoP(t *testing.T) {
	cfg := amtest.DefaultConfig()
	entryAuthNode(cfg, "/", "auth-tree").AdditionalAudienceValues = []string{"custom-pop-audience"}
	srv, c := startWith(t, cfg)
	admin := c.adminLogin()
	th := newThing(t, "pop-thing")
	c.createThing(admin, "/", th, nil)
	other := newThing(t, "pop-thing") // same name, a key AM does not know

	tests := []struct {
		name   string
		claims func(nonce string) map[string]any
		signer *thing
		ok     bool
	}{
		{"aud is the realm path", func(n string) map[string]any { return th.popClaims("/", n, time.Now()) }, th, true},
		{"aud is an additional audience", func(n string) map[string]any { return th.popClaims("custom-pop-audience", n, time.Now()) }, th, true},
		{"aud is an array holding the realm path", func(n string) map[string]any {
			m := th.popClaims("/", n, time.Now())
			m["aud"] = []string{"elsewhere", "/"}
			return m
		}, th, true},
		{"custom claims are accepted", func(n string) map[string]any {
			m := th.popClaims("/", n, time.Now())
			m["life_universe_everything"] = "42"
			return m
		}, th, true},
		{"aud is another realm", func(n string) map[string]any { return th.popClaims("/other", n, time.Now()) }, th, false},
		{"aud is the deployment URL", func(n string) map[string]any { return th.popClaims(srv.URL, n, time.Now()) }, th, false},
		{"nonce is not the challenge", func(n string) map[string]any { return th.popClaims("/", n+"x", time.Now()) }, th, false},
		{"no nonce", func(n string) map[string]any {
			m := th.popClaims("/", n, time.Now())
			delete(m, "nonce")
			return m
		}, th, false},
		{"no cnf", func(n string) map[string]any {
			m := th.popClaims("/", n, time.Now())
			delete(m, "cnf")
			return m
		}, th, false},
		{"no sub", func(n string) map[string]any {
			m := th.popClaims("/", n, time.Now())
			delete(m, "sub")
			return m
		}, th, false},
		{"no exp", func(n string) map[string]any {
			m := th.popClaims("/", n, time.Now())
			delete(m, "exp")
			return m
		}, th, false},
		{"no iat", func(n string) map[string]any {
			m := th.popClaims("/", n, time.Now())
			delete(m, "iat")
			return m
		}, th, false},
		{"expired", func(n string) map[string]any { return th.popClaims("/", n, time.Now().Add(-10*time.Minute)) }, th, false},
		{"issued in the future", func(n string) map[string]any { return th.popClaims("/", n, time.Now().Add(10*time.Minute)) }, th, false},
		{"issued within the clock skew", func(n string) map[string]any { return th.popClaims("/", n, time.Now().Add(30*time.Second)) }, th, true},
		{"signed by a key that is not the identity's", func(n string) map[string]any { return th.popClaims("/", n, time.Now()) }, other, false},
	}
	u := c.authURL("auth-tree", "/")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.login(u, answers{"jwt-pop-authentication": func(n string) string { return tt.signer.signJWT(t, tt.claims(n)) }})
			if !tt.ok {
				loginFailed(t, res.r)
				return
			}
			if res.token == "" {
				t.Fatalf("no tokenId: %d %s", res.r.status, res.r.body)
			}
			got := res.r.json(t)
			if got["realm"] != "/" || got["successUrl"] != "/openam/console" {
				t.Errorf("success body = %s", res.r.body)
			}
			if len(res.rounds) != 1 || len(res.rounds[0]) != 1 || res.rounds[0][0] != "jwt-pop-authentication" {
				t.Errorf("callbacks = %v, want one jwt-pop-authentication", res.rounds)
			}
		})
	}
}

// TestAuthenticateCallbackShape checks the HiddenValueCallback AM sends for
// PoP authentication (§3.2, §3.6).
func TestAuthenticateCallbackShape(t *testing.T) {
	_, c := startServer(t)
	r, cb := c.authStep(c.authURL("auth-tree", "/"), map[string]any{})
	if r.status != 200 || cb.AuthID == "" || strings.Count(cb.AuthID, ".") != 2 {
		t.Fatalf("first step: %d %s", r.status, r.body)
	}
	if len(cb.Callbacks) != 1 {
		t.Fatalf("callbacks = %v", cb.Callbacks)
	}
	got := cb.Callbacks[0]
	out := got["output"].([]any)
	in := got["input"].([]any)
	if got["type"] != "HiddenValueCallback" || len(out) != 2 || len(in) != 1 {
		t.Fatalf("callback = %v", got)
	}
	value := out[0].(map[string]any)
	id := out[1].(map[string]any)
	if value["name"] != "value" || id["name"] != "id" || id["value"] != "jwt-pop-authentication" {
		t.Errorf("outputs = %v, want value then id", out)
	}
	if v, _ := value["value"].(string); len(v) < 16 {
		t.Errorf("challenge %q is too short", value["value"])
	}
	if in0 := in[0].(map[string]any); in0["name"] != "IDToken1" || in0["value"] != "jwt-pop-authentication" {
		t.Errorf("input = %v", in0)
	}
	// A second start gives a fresh challenge.
	_, cb2 := c.authStep(c.authURL("auth-tree", "/"), map[string]any{})
	if _, v2 := hidden(t, cb2, "jwt-pop-authentication"); v2 == value["value"] {
		t.Errorf("challenge repeated: %s", v2)
	}
}

// TestAuthenticateIdentities covers the identity lookup outcomes (§4.2):
// a non-default kid, an identity without keys and an unknown identity.
func TestAuthenticateIdentities(t *testing.T) {
	_, c := startServer(t)
	admin := c.adminLogin()

	named := newThing(t, "kid-thing")
	named.kid = "pop.cnf"
	c.createThing(admin, "/", named, nil)

	keyless := newThing(t, "keyless-thing")
	if r := c.putIdentity(admin, "/", keyless.id, map[string]any{"userPassword": "5tr0ngG3n3r@ted", "thingType": "device"}); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	unknown := newThing(t, "nobody-thing")

	tests := []struct {
		name string
		th   *thing
		ok   bool
	}{
		{"non-default kid pop.cnf", named, true},
		{"identity without thingKeys", keyless, false},
		{"unknown identity (register → Failure)", unknown, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, r := c.authenticatePoP(tt.th, "auth-tree", "/", "/")
			if tt.ok {
				if tok == "" {
					t.Fatalf("%d %s", r.status, r.body)
				}
				return
			}
			loginFailed(t, r)
		})
	}
	// Nothing was created for the unknown thing.
	if r := c.getIdentity(admin, "/", unknown.id); r.status != 404 {
		t.Errorf("unknown thing after failed authentication: %d %s", r.status, r.body)
	}
}

// TestAuthenticateClientAssertion covers the Client Assertion method (§4.3).
func TestAuthenticateClientAssertion(t *testing.T) {
	cfg := amtest.DefaultConfig()
	addTree(cfg, "/", "assert-tree", assertionNode("custom-client-assertion-audience"), nil)
	srv, c := startWith(t, cfg)
	admin := c.adminLogin()
	th := newThing(t, "assert-thing")
	c.createThing(admin, "/", th, map[string]any{"thingConfig": "host=localhost;port=80"})
	iss := srv.URL + "/oauth2"
	u := c.authURL("assert-tree", "/")

	tests := []struct {
		name string
		jwt  func() string
		ok   bool
	}{
		{"aud is the issuer", func() string { return th.assertion(t, iss, time.Now(), nil) }, true},
		{"aud is the token endpoint", func() string { return th.assertion(t, iss+"/access_token", time.Now(), nil) }, true},
		{"aud is a custom audience", func() string { return th.assertion(t, "custom-client-assertion-audience", time.Now(), nil) }, true},
		{"no iat", func() string {
			return sign(t, th.key, th.alg, map[jose.HeaderKey]any{"kid": th.kid}, map[string]any{"sub": th.id, "iss": th.id, "aud": iss, "exp": time.Now().Add(time.Minute).Unix()})
		}, true},
		{"aud is the realm path", func() string { return th.assertion(t, "/", time.Now(), nil) }, false},
		{"aud is another realm's issuer", func() string { return th.assertion(t, iss+"/realms/root/realms/x", time.Now(), nil) }, false},
		{"sub differs from iss", func() string { return th.assertion(t, iss, time.Now(), map[string]any{"iss": "someone-else"}) }, false},
		{"no kid header", func() string {
			return sign(t, th.key, th.alg, nil, map[string]any{"sub": th.id, "iss": th.id, "aud": iss, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()})
		}, false},
		{"unknown kid (register → Failure)", func() string {
			return sign(t, th.key, th.alg, map[jose.HeaderKey]any{"kid": "nope"}, map[string]any{"sub": th.id, "iss": th.id, "aud": iss, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()})
		}, false},
		{"no exp", func() string {
			return sign(t, th.key, th.alg, map[jose.HeaderKey]any{"kid": th.kid}, map[string]any{"sub": th.id, "iss": th.id, "aud": iss, "iat": time.Now().Unix()})
		}, false},
		{"expired", func() string { return th.assertion(t, iss, time.Now().Add(-10*time.Minute), nil) }, false},
		{"bad signature", func() string {
			return newThing(t, th.id).assertion(t, iss, time.Now(), nil)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.login(u, answers{"client_assertion": func(v string) string {
				if v != "" {
					t.Errorf("client_assertion value = %q, want empty", v)
				}
				return tt.jwt()
			}})
			if !tt.ok {
				loginFailed(t, res.r)
				return
			}
			if res.token == "" {
				t.Fatalf("%d %s", res.r.status, res.r.body)
			}
			// The token is unrestricted: plain JSON works on the things endpoint.
			r := c.thingsJSON("GET", c.thingsURL("", "/"), res.token, nil)
			if got := expectStatus(t, r, 200); got["_id"] != th.id {
				t.Errorf("attributes = %s", r.body)
			}
		})
	}

	t.Run("replayed jti", func(t *testing.T) {
		a := th.assertion(t, iss, time.Now(), map[string]any{"jti": "jti-1"})
		if res := c.login(u, answers{"client_assertion": constant(a)}); res.token == "" {
			t.Fatalf("first use: %d %s", res.r.status, res.r.body)
		}
		loginFailed(t, c.login(u, answers{"client_assertion": constant(a)}).r)
		// A new jti is fine.
		b := th.assertion(t, iss, time.Now(), map[string]any{"jti": "jti-2"})
		if res := c.login(u, answers{"client_assertion": constant(b)}); res.token == "" {
			t.Fatalf("fresh jti: %d %s", res.r.status, res.r.body)
		}
	})
	t.Run("assertion without jti may be reused", func(t *testing.T) {
		a := th.assertion(t, iss, time.Now(), nil)
		for i := 0; i < 2; i++ {
			if res := c.login(u, answers{"client_assertion": constant(a)}); res.token == "" {
				t.Fatalf("use %d: %d %s", i, res.r.status, res.r.body)
			}
		}
	})
}

// TestAuthenticateUsernamePassword covers the ldapService tree (Username
// Collector → Password Collector → Data Store Decision) and zero-page login (§3.5).
func TestAuthenticateUsernamePassword(t *testing.T) {
	srv, c := startServer(t)
	admin := c.adminLogin()
	if r := c.putIdentity(admin, "/", "bjensen", map[string]any{"userPassword": "hifalutin"}); r.status != 201 {
		t.Fatalf("create user: %d %s", r.status, r.body)
	}
	tests := []struct {
		name, url, user, password string
		ok                        bool
	}{
		{"ldapService", c.authURL("ldapService", "/"), "bjensen", "hifalutin", true},
		{"default tree", srv.URL + "/json/authenticate?realm=/", "bjensen", "hifalutin", true},
		{"user name is case-insensitive", c.authURL("ldapService", "/"), "BJensen", "hifalutin", true},
		{"wrong password", c.authURL("ldapService", "/"), "bjensen", "wrong", false},
		{"empty password", c.authURL("ldapService", "/"), "bjensen", "", false},
		{"unknown user", c.authURL("ldapService", "/"), "nobody", "hifalutin", false},
		{"administrator", c.authURL("ldapService", "/"), "amAdmin", "changeit", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prompts []string
			res := c.login(tt.url, answers{
				"NameCallback":     func(p string) string { prompts = append(prompts, p); return tt.user },
				"PasswordCallback": func(p string) string { prompts = append(prompts, p); return tt.password },
			})
			if len(res.rounds) != 2 || res.rounds[0][0] != "NameCallback" || res.rounds[1][0] != "PasswordCallback" {
				t.Errorf("rounds = %v, want NameCallback then PasswordCallback", res.rounds)
			}
			if strings.Join(prompts, "|") != "User Name|Password" {
				t.Errorf("prompts = %q", prompts)
			}
			if !tt.ok {
				loginFailed(t, res.r)
				return
			}
			if res.token == "" {
				t.Fatalf("%d %s", res.r.status, res.r.body)
			}
			// The session is unrestricted and valid.
			r := c.do("POST", srv.URL+"/json/sessions?_action=validate", nil, "Content-Type: application/json",
				"Accept-API-Version: resource=4.0", "Cookie: iPlanetDirectoryPro="+res.token)
			if got := expectStatus(t, r, 200); got["valid"] != true {
				t.Errorf("validate = %s", r.body)
			}
		})
	}

	zp := []struct {
		name, user, password string
		status               int
	}{
		{"user", "bjensen", "hifalutin", 200},
		{"user, wrong password", "bjensen", "nope", 401},
		{"admin", "amAdmin", "changeit", 200},
		{"admin, wrong password", "amAdmin", "nope", 401},
		{"unknown user", "nobody", "x", 401},
	}
	for _, tt := range zp {
		t.Run("zero-page "+tt.name, func(t *testing.T) {
			r := c.do("POST", srv.URL+"/json/authenticate?realm=/", nil, "Content-Type: application/json",
				"X-OpenAM-Username: "+tt.user, "X-OpenAM-Password: "+tt.password, "Accept-API-Version: resource=2.0, protocol=1.0")
			if tt.status != 200 {
				loginFailed(t, r)
				return
			}
			got := expectStatus(t, r, 200)
			if tok, _ := got["tokenId"].(string); tok == "" || got["realm"] != "/" {
				t.Errorf("body = %s", r.body)
			}
		})
	}
}

// TestAuthenticateAlgorithms authenticates and signs requests with every
// algorithm the SDK derives from a key (§4.2, AccessTokenWithNoScopes*).
func TestAuthenticateAlgorithms(t *testing.T) {
	cfg := amtest.DefaultConfig()
	cfg.Realms["/"].OAuth2Clients["forgerock-iot-oauth2-client"].DefaultScopes = []string{"subscribe"}
	addTree(cfg, "/", "reg-pop", nil, regNode(amtest.RegPoPWithoutTrust))
	_, c := startWith(t, cfg)
	admin := c.adminLogin()
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.PS256, jose.PS384, jose.PS512} {
		t.Run(string(alg), func(t *testing.T) {
			th := newThingAlg(t, "alg-"+strings.ToLower(string(alg)), alg)
			c.createThing(admin, "/", th, nil)
			tok := c.mustPoP(th, "auth-tree", "/")
			s := c.restrictedSession(th, tok)
			r := s.things("POST", "get_access_token", "/", nil)
			if got := expectStatus(t, r, 200); got["scope"] != "subscribe" {
				t.Errorf("token = %s", r.body)
			}
			r = s.things("GET", "", "/", nil)
			if got := expectStatus(t, r, 200); got["_id"] != th.id {
				t.Errorf("attributes = %s", r.body)
			}
			// Registration without trust with the same algorithm.
			nt := newThingAlg(t, "reg-"+strings.ToLower(string(alg)), alg)
			res := c.login(c.authURL("reg-pop", "/"), answers{"jwt-pop-registration": c.regAnswer(nt, "/", nil)})
			if res.token == "" {
				t.Fatalf("registration: %d %s", res.r.status, res.r.body)
			}
			r = c.restrictedSession(nt, res.token).things("GET", "", "/", nil)
			if got := expectStatus(t, r, 200); got["_id"] != nt.id {
				t.Errorf("attributes after registration = %s", r.body)
			}
		})
	}
}

// TestAuthID covers authId handling: single use, tampering, realm binding.
func TestAuthID(t *testing.T) {
	cfg := amtest.DefaultConfig()
	cfg.Realms["/sub"] = amtest.GuideRealm()
	_, c := startWith(t, cfg)
	admin := c.adminLogin()
	th := newThing(t, "authid-thing")
	c.createThing(admin, "/", th, nil)
	u := c.authURL("auth-tree", "/")

	t.Run("reused after success", func(t *testing.T) {
		_, cb := c.authStep(u, map[string]any{})
		i, nonce := hidden(t, cb, "jwt-pop-authentication")
		cb = answer(cb, i, th.signJWT(t, th.popClaims("/", nonce, time.Now())))
		r, got := c.authStep(u, cb)
		if r.status != 200 || got.TokenID == "" {
			t.Fatalf("first use: %d %s", r.status, r.body)
		}
		r, _ = c.authStep(u, cb)
		loginFailed(t, r)
	})
	t.Run("reused after failure", func(t *testing.T) {
		_, cb := c.authStep(u, map[string]any{})
		i, nonce := hidden(t, cb, "jwt-pop-authentication")
		loginFailed(t, func() response {
			r, _ := c.authStep(u, answer(cb, i, th.signJWT(t, th.popClaims("/elsewhere", nonce, time.Now()))))
			return r
		}())
		r, _ := c.authStep(u, answer(cb, i, th.signJWT(t, th.popClaims("/", nonce, time.Now()))))
		loginFailed(t, r)
	})
	t.Run("tampered", func(t *testing.T) {
		_, cb := c.authStep(u, map[string]any{})
		i, nonce := hidden(t, cb, "jwt-pop-authentication")
		cb.AuthID = cb.AuthID[:len(cb.AuthID)-2] + "AA"
		r, _ := c.authStep(u, answer(cb, i, th.signJWT(t, th.popClaims("/", nonce, time.Now()))))
		loginFailed(t, r)
	})
	t.Run("not a JWT", func(t *testing.T) {
		r, _ := c.authStep(u, map[string]any{"authId": "garbage", "callbacks": []any{}})
		loginFailed(t, r)
	})
	t.Run("used in another realm", func(t *testing.T) {
		_, cb := c.authStep(u, map[string]any{})
		i, nonce := hidden(t, cb, "jwt-pop-authentication")
		r, _ := c.authStep(c.authURL("auth-tree", "/sub"), answer(cb, i, th.signJWT(t, th.popClaims("/", nonce, time.Now()))))
		loginFailed(t, r)
	})
	t.Run("callbacks not answered", func(t *testing.T) {
		_, cb := c.authStep(u, map[string]any{})
		r, _ := c.authStep(u, map[string]any{"authId": cb.AuthID})
		loginFailed(t, r)
	})
}

// TestAuthenticateSelection covers tree and realm selection errors.
func TestAuthenticateSelection(t *testing.T) {
	srv, c := startServer(t)
	tests := []struct {
		name   string
		url    string
		status int
		msg    string
	}{
		{"unknown tree", c.authURL("no-such-tree", "/"), 400, "No Configuration found"},
		{"empty tree name", srv.URL + "/json/authenticate?authIndexType=service&authIndexValue=", 400, "No Configuration found"},
		{"unknown authIndexType", srv.URL + "/json/authenticate?authIndexType=bogus&authIndexValue=auth-tree", 400, "authIndexType"},
		{"unknown realm (query)", c.authURL("auth-tree", "/nope"), 400, "Invalid realm"},
		{"unknown bare realm (query)", c.authURL("auth-tree", "nope"), 400, "Invalid realm"},
		{"unknown realm (path)", srv.URL + "/json/realms/root/realms/nope/authenticate?authIndexType=service&authIndexValue=auth-tree", 404, "not found"},
		{"GET", c.authURL("auth-tree", "/"), 405, "Method Not Allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "POST"
			if tt.name == "GET" {
				method = "GET"
			}
			r := c.do(method, tt.url, []byte("{}"), "Content-Type: application/json", "Accept-API-Version: protocol=1.0,resource=2.1")
			expectCREST(t, r, tt.status, tt.msg)
		})
	}
}

// TestAuthenticateSubRealm authenticates in a sub-realm addressed in every
// way the SDK and the harness address it (§1.3).
func TestAuthenticateSubRealm(t *testing.T) {
	cfg := amtest.DefaultConfig()
	sub := amtest.GuideRealm()
	sub.Aliases = []string{"alias-sub", "sub.localtest.me"}
	cfg.Realms["/sub"] = sub
	addTree(cfg, "/sub", "assert-tree", assertionNode(), nil)
	srv, c := startWith(t, cfg)
	admin := c.adminLogin()
	th := newThing(t, "sub-thing")
	c.createThing(admin, "/sub", th, nil)
	rootOnly := newThing(t, "root-thing")
	c.createThing(admin, "/", rootOnly, nil)
	query := "?authIndexType=service&authIndexValue=auth-tree"

	tests := []struct {
		name string
		url  string
		th   *thing
		aud  string
		ok   bool
	}{
		{"realm=/sub", srv.URL + "/json/authenticate" + query + "&realm=/sub", th, "/sub", true},
		{"realm=%2Fsub", srv.URL + "/json/authenticate" + query + "&realm=%2Fsub", th, "/sub", true},
		{"bare name", srv.URL + "/json/authenticate" + query + "&realm=sub", th, "/sub", true},
		{"alias", srv.URL + "/json/authenticate" + query + "&realm=alias-sub", th, "/sub", true},
		{"path", srv.URL + "/json/realms/root/realms/sub/authenticate" + query, th, "/sub", true},
		{"aud is the top-level realm", srv.URL + "/json/authenticate" + query + "&realm=/sub", th, "/", false},
		{"aud is the alias", srv.URL + "/json/authenticate" + query + "&realm=alias-sub", th, "alias-sub", false},
		{"identity of another realm", srv.URL + "/json/authenticate" + query + "&realm=/sub", rootOnly, "/sub", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.login(tt.url, answers{"jwt-pop-authentication": c.popAnswer(tt.th, tt.aud)})
			if !tt.ok {
				loginFailed(t, res.r)
				return
			}
			if res.token == "" {
				t.Fatalf("%d %s", res.r.status, res.r.body)
			}
			if got := res.r.json(t); got["realm"] != "/sub" {
				t.Errorf("realm = %v", got["realm"])
			}
			// The session belongs to /sub: the things endpoint serves it there only.
			s := c.restrictedSession(tt.th, res.token)
			r := s.things("GET", "", "/sub", nil)
			if got := expectStatus(t, r, 200); got["_id"] != tt.th.id {
				t.Errorf("attributes = %s", r.body)
			}
			expectCREST(t, s.things("GET", "", "/", nil), 401, "")
			r = s.do("GET", srv.URL+"/json/realms/root/realms/sub/things/*", thingsAPI, nil)
			expectStatus(t, r, 200)
		})
	}

	t.Run("DNS alias", func(t *testing.T) {
		u := srv.URL + "/json/authenticate" + query
		host := "Host: sub.localtest.me"
		step := func(body any) (response, callbacks) {
			b, _ := json.Marshal(body)
			r := c.do("POST", u, b, "Content-Type: application/json", "Accept-API-Version: protocol=1.0,resource=2.1", host)
			var cb callbacks
			if r.status == 200 {
				cb = decodeCallbacks(t, r)
			}
			return r, cb
		}
		_, cb := step(map[string]any{})
		i, nonce := hidden(t, cb, "jwt-pop-authentication")
		r, cb := step(answer(cb, i, th.signJWT(t, th.popClaims("/sub", nonce, time.Now()))))
		if cb.TokenID == "" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if got := r.json(t); got["realm"] != "/sub" {
			t.Errorf("realm = %v", got["realm"])
		}
	})

	t.Run("client assertion with the sub-realm issuer", func(t *testing.T) {
		iss := srv.URL + "/oauth2/realms/root/realms/sub"
		u := srv.URL + "/json/authenticate?authIndexType=service&authIndexValue=assert-tree&realm=/sub"
		for _, aud := range []string{iss, iss + "/access_token"} {
			if res := c.login(u, answers{"client_assertion": constant(th.assertion(t, aud, time.Now(), nil))}); res.token == "" {
				t.Errorf("aud %s: %d %s", aud, res.r.status, res.r.body)
			}
		}
		loginFailed(t, c.login(u, answers{"client_assertion": constant(th.assertion(t, srv.URL+"/oauth2", time.Now(), nil))}).r)
	})
}

func decodeCallbacks(t testing.TB, r response) callbacks {
	t.Helper()
	var cb callbacks
	if err := json.Unmarshal(r.body, &cb); err != nil {
		t.Fatalf("callbacks: %v: %s", err, r.body)
	}
	return cb
}
