package amtest_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestBadAuthenticationInput sends malformed bodies and JWTs to
// /json/authenticate; each is refused and a correct attempt still works.
func TestBadAuthenticationInput(t *testing.T) {
	srv, c := startServer(t)
	admin := c.adminLogin()
	th := newThing(t, "bad-input-thing")
	c.createThing(admin, "/", th, nil)
	u := c.authURL("auth-tree", "/")

	bodies := []struct {
		name, body string
	}{
		{"truncated JSON", `{"authId": "x"`},
		{"not an object", `["authId"]`},
		{"wrong types", `{"authId": 42, "callbacks": "none"}`},
		{"trailing garbage", `{} {}`},
	}
	for _, tt := range bodies {
		t.Run("body "+tt.name, func(t *testing.T) {
			r := c.do("POST", u, []byte(tt.body), "Content-Type: application/json", "Accept-API-Version: protocol=1.0,resource=2.1")
			expectCREST(t, r, 400, "")
			c.mustPoP(th, "auth-tree", "/")
		})
	}

	now := time.Now()
	claims := func(nonce string) map[string]any { return th.popClaims("/", nonce, now) }
	enc := base64.RawURLEncoding
	jwts := []struct {
		name string
		jwt  func(nonce string) string
	}{
		{"two parts", func(n string) string {
			s := th.signJWT(t, claims(n))
			return s[:strings.LastIndex(s, ".")]
		}},
		{"four parts", func(n string) string { return th.signJWT(t, claims(n)) + ".AAAA" }},
		{"bad base64 in the payload", func(n string) string {
			p := strings.Split(th.signJWT(t, claims(n)), ".")
			return p[0] + ".%%%." + p[2]
		}},
		{"padded base64", func(n string) string {
			p := strings.Split(th.signJWT(t, claims(n)), ".")
			return p[0] + "." + base64.URLEncoding.EncodeToString([]byte(`{"sub":"x"}`)) + "=." + p[2]
		}},
		{"alg none", func(n string) string { return rawJWS(map[string]any{"alg": "none", "typ": "JWT"}, claims(n), nil) }},
		{"alg none, signature kept", func(n string) string {
			p := strings.Split(th.signJWT(t, claims(n)), ".")
			h := enc.EncodeToString([]byte(`{"alg":"none"}`))
			return h + "." + p[1] + "." + p[2]
		}},
		{"HS256 with the public key as secret", func(n string) string {
			pub, _ := th.publicJWK().MarshalJSON()
			sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pub}, nil)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := sig.Sign(mustJSON(t, claims(n)))
			if err != nil {
				t.Fatal(err)
			}
			out, _ := obj.CompactSerialize()
			return out
		}},
		{"header not JSON", func(n string) string {
			p := strings.Split(th.signJWT(t, claims(n)), ".")
			return enc.EncodeToString([]byte("alg=ES256")) + "." + p[1] + "." + p[2]
		}},
		{"payload not JSON", func(n string) string {
			p := strings.Split(th.signJWT(t, claims(n)), ".")
			return p[0] + "." + enc.EncodeToString([]byte("sub=x")) + "." + p[2]
		}},
		{"payload edited after signing", func(n string) string {
			p := strings.Split(th.signJWT(t, claims(n)), ".")
			m := claims(n)
			m["sub"] = "someone-else"
			return p[0] + "." + strings.Split(rawJWS(nil, m, nil), ".")[1] + "." + p[2]
		}},
		{"critical header", func(n string) string {
			return sign(t, th.key, th.alg, map[jose.HeaderKey]any{"crit": []string{"exp"}, "exp": 1}, claims(n))
		}},
		{"exp not a number", func(n string) string {
			m := claims(n)
			m["exp"] = "tomorrow"
			return th.signJWT(t, m)
		}},
		{"expired", func(n string) string { return th.signJWT(t, th.popClaims("/", n, now.Add(-time.Hour))) }},
		{"issued in the future", func(n string) string { return th.signJWT(t, th.popClaims("/", n, now.Add(time.Hour))) }},
		{"exp before iat", func(n string) string {
			m := claims(n)
			m["exp"] = now.Add(-time.Minute).Unix()
			m["iat"] = now.Add(30 * time.Second).Unix()
			return th.signJWT(t, m)
		}},
		{"not yet valid", func(n string) string {
			m := claims(n)
			m["nbf"] = now.Add(time.Hour).Unix()
			return th.signJWT(t, m)
		}},
		{"empty", func(string) string { return "" }},
		{"a JSON object", func(n string) string { return `{"sub":"bad-input-thing"}` }},
	}
	for _, tt := range jwts {
		t.Run("JWT "+tt.name, func(t *testing.T) {
			loginFailed(t, c.login(u, answers{"jwt-pop-authentication": tt.jwt}).r)
		})
	}
	// After all that, the thing still authenticates and its identity is intact.
	c.mustPoP(th, "auth-tree", "/")
	if kids, _ := c.identityKeys(admin, "/", th.id); len(kids) != 1 {
		t.Errorf("kids = %v", kids)
	}
	_ = srv
}

// TestOversizeBodies checks the 64 KiB request limit (413) on every kind of
// endpoint, and that a body of exactly 64 KiB is read.
func TestOversizeBodies(t *testing.T) {
	srv, c := startServer(t)
	admin := c.adminLogin()
	th := newThing(t, "big-thing")
	c.createThing(admin, "/", th, nil)
	const limit = 64 << 10
	pad := func(n int) []byte { return append([]byte("{}"), bytes.Repeat([]byte(" "), n-2)...) }

	t.Run("authenticate at the limit", func(t *testing.T) {
		r := c.do("POST", c.authURL("auth-tree", "/"), pad(limit), "Content-Type: application/json")
		expectStatus(t, r, 200)
	})
	t.Run("authenticate over the limit", func(t *testing.T) {
		r := c.do("POST", c.authURL("auth-tree", "/"), pad(limit+1), "Content-Type: application/json")
		expectCREST(t, r, 413, "")
	})
	t.Run("things over the limit", func(t *testing.T) {
		tok := c.mustPoP(th, "auth-tree", "/")
		s := c.restrictedSession(th, tok)
		big := strings.Repeat("x", limit)
		expectCREST(t, s.things("POST", "get_access_token", "/", map[string]any{"scope": []string{"publish"}, "pad": big}), 413, "")
		// The refused request used no nonce.
		s.nonce--
		expectStatus(t, s.things("GET", "", "/", nil), 200)
	})
	t.Run("identity over the limit", func(t *testing.T) {
		r := c.putIdentity(admin, "/", "huge-thing", map[string]any{"thingConfig": strings.Repeat("x", limit)})
		expectCREST(t, r, 413, "")
		if r := c.getIdentity(admin, "/", "huge-thing"); r.status != 404 {
			t.Errorf("huge-thing: %d", r.status)
		}
	})
	t.Run("sessions over the limit", func(t *testing.T) {
		expectCREST(t, c.session("logout", admin, map[string]any{"tokenId": strings.Repeat("x", limit)}), 413, "")
		if !valid(t, c.session("validate", admin, nil)) {
			t.Errorf("admin session ended")
		}
	})
	t.Run("oauth2 over the limit", func(t *testing.T) {
		r := c.do("POST", srv.URL+"/oauth2/token/revoke", append([]byte("token="), bytes.Repeat([]byte("x"), limit)...),
			"Content-Type: application/x-www-form-urlencoded", basic("forgerock-iot-oauth2-client", "x"))
		expectOAuth(t, r, 413, "invalid_request")
	})
}

// TestUnknownRoutes checks AM's own answers for requests the local AM does not serve.
func TestUnknownRoutes(t *testing.T) {
	srv, c := startServer(t)
	admin := c.adminLogin()
	base := strings.TrimSuffix(srv.URL, "/openam")
	tests := []struct {
		name, method, url string
		status            int
	}{
		{"unknown /json resource", "GET", srv.URL + "/json/nope", 404},
		{"unknown things resource", "GET", srv.URL + "/json/things/other-thing", 404},
		{"things collection", "GET", srv.URL + "/json/things", 404},
		{"unknown resource in a realm", "GET", srv.URL + "/json/realms/root/nope", 404},
		{"malformed realm path", "GET", srv.URL + "/json/realms/nope/things/*", 404},
		{"unknown realm in the path", "GET", srv.URL + "/json/realms/root/realms/nope/things/*", 404},
		{"unknown realm in the query", "GET", srv.URL + "/json/things/*?realm=/nope", 400},
		{"authenticate sub-resource", "POST", srv.URL + "/json/authenticate/extra", 404},
		{"sessions sub-resource", "POST", srv.URL + "/json/sessions/abc?_action=validate", 404},
		{"outside the deployment path", "GET", base + "/json/serverinfo/*", 404},
		{"unknown serverinfo", "GET", srv.URL + "/json/serverinfo/nope", 404},
		{"malformed Accept-API-Version", "GET", srv.URL + "/json/serverinfo/*", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := []string{"iPlanetDirectoryPro: " + admin}
			if strings.Contains(tt.name, "Accept-API-Version") {
				h = append(h, "Accept-API-Version: resource=one")
			}
			expectCREST(t, c.do(tt.method, tt.url, nil, h...), tt.status, "")
		})
	}
	t.Run("serverinfo", func(t *testing.T) {
		got := expectStatus(t, c.do("GET", srv.URL+"/json/serverinfo/*?_fields=cookieName", nil, "Accept-API-Version: resource=1.1"), 200)
		if got["cookieName"] != "iPlanetDirectoryPro" {
			t.Errorf("serverinfo = %v", got)
		}
		expectStatus(t, c.do("GET", srv.URL+"/json/serverinfo/*", nil), 200)
	})
}

// TestBadThingsInput sends malformed JSON to the things endpoint with an
// unrestricted session: 400, and no token is issued.
func TestBadThingsInput(t *testing.T) {
	_, c := startServer(t)
	admin := c.adminLogin()
	if r := c.putIdentity(admin, "/", "json-thing", map[string]any{"userPassword": "pa55word", "thingType": "device"}); r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	tok := c.userLogin("json-thing", "pa55word")
	u := c.thingsURL("get_access_token", "/")
	for _, body := range []string{`{"scope": ["publish"]`, `"publish"`, `{"scope": [1, 2]}`, `{"refresh_token": 7}`} {
		t.Run(body, func(t *testing.T) {
			r := c.do("POST", u, []byte(body), "Content-Type: application/json", "Accept-API-Version: "+thingsAPI, "Cookie: iPlanetDirectoryPro="+tok)
			expectCREST(t, r, 400, "")
			if strings.Contains(string(r.body), "access_token") {
				t.Errorf("token issued: %s", r.body)
			}
		})
	}
	t.Run("garbage JOSE from an unrestricted session", func(t *testing.T) {
		r := c.sendJOSE("POST", u, thingsAPI, tok, "a.b.c")
		expectCREST(t, r, 400, "")
	})
	if !valid(t, c.session("validate", tok, nil)) {
		t.Errorf("session ended")
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
