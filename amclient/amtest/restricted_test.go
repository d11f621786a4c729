package amtest_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest"
)

// signHeaders signs payload with th's key and exactly the given extra
// protected headers (alg is always set).
func signHeaders(t testing.TB, th *thing, headers map[jose.HeaderKey]any, payload any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: th.alg, Key: th.key}, &jose.SignerOptions{ExtraHeaders: headers})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(payload)
	obj, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sendJOSE posts body as application/jose with the token cookie.
func (c *client) sendJOSE(method, url, api, token, body string) response {
	c.t.Helper()
	h := []string{"Content-Type: application/jose", "Accept-API-Version: " + api}
	if token != "" {
		h = append(h, "Cookie: iPlanetDirectoryPro="+token)
	}
	return c.do(method, url, []byte(body), h...)
}

// TestRestrictedSessionViolations sends requests that break the PoP
// restriction (§6.3, §15.2): each is refused with a CREST 401 and changes
// nothing — the next correctly signed request with the next nonce works.
func TestRestrictedSessionViolations(t *testing.T) {
	srv, c := startServer(t)
	admin := c.adminLogin()
	th := newThing(t, "restricted-thing")
	c.createThing(admin, "/", th, nil)
	stranger := newThing(t, "restricted-thing")
	u := c.thingsURL("get_access_token", "/")
	scope := map[string]any{"scope": []string{"publish"}}

	type violation func(tok string) response
	headers := func(nonce any, aud any, api any) map[jose.HeaderKey]any {
		h := map[jose.HeaderKey]any{}
		for k, v := range map[jose.HeaderKey]any{"nonce": nonce, "aud": aud, "api": api} {
			if v != nil {
				h[k] = v
			}
		}
		return h
	}
	payload := func(tok string) map[string]any { return map[string]any{"csrf": tok, "scope": []string{"publish"}} }
	tests := []struct {
		name string
		send violation
	}{
		{"signed with another key", func(tok string) response {
			return c.signedRequest(stranger, "POST", u, thingsAPI, tok, 1, map[string]any{"scope": []string{"publish"}})
		}},
		{"aud is another URL", func(tok string) response {
			return c.sendJOSE("POST", u, thingsAPI, tok, signHeaders(t, th, headers(1, c.thingsURL("introspect_token", "/"), thingsAPI), payload(tok)))
		}},
		{"aud without the query", func(tok string) response {
			return c.sendJOSE("POST", u, thingsAPI, tok, signHeaders(t, th, headers(1, srv.URL+"/json/things/*", thingsAPI), payload(tok)))
		}},
		{"aud missing", func(tok string) response {
			return c.sendJOSE("POST", u, thingsAPI, tok, signHeaders(t, th, headers(1, nil, thingsAPI), payload(tok)))
		}},
		{"api is another version", func(tok string) response {
			return c.sendJOSE("POST", u, thingsAPI, tok, signHeaders(t, th, headers(1, u, "protocol=1.0,resource=1.0"), payload(tok)))
		}},
		{"api missing", func(tok string) response {
			return c.sendJOSE("POST", u, thingsAPI, tok, signHeaders(t, th, headers(1, u, nil), payload(tok)))
		}},
		{"csrf missing", func(tok string) response {
			return c.sendJOSE("POST", u, thingsAPI, tok, signHeaders(t, th, headers(1, u, thingsAPI), map[string]any{"scope": []string{"publish"}}))
		}},
		{"csrf is another token", func(tok string) response {
			return c.sendJOSE("POST", u, thingsAPI, tok, signHeaders(t, th, headers(1, u, thingsAPI), payload(admin)))
		}},
		{"nonce replayed", func(tok string) response {
			return c.signedRequest(th, "POST", u, thingsAPI, tok, 0, map[string]any{"scope": []string{"publish"}})
		}},
		{"nonce as a string", func(tok string) response {
			return c.sendJOSE("POST", u, thingsAPI, tok, signHeaders(t, th, headers("1", u, thingsAPI), payload(tok)))
		}},
		{"nonce missing", func(tok string) response {
			return c.sendJOSE("POST", u, thingsAPI, tok, signHeaders(t, th, headers(nil, u, thingsAPI), payload(tok)))
		}},
		{"nonce negative", func(tok string) response {
			return c.sendJOSE("POST", u, thingsAPI, tok, signHeaders(t, th, headers(-1, u, thingsAPI), payload(tok)))
		}},
		{"nonce fractional", func(tok string) response {
			return c.sendJOSE("POST", u, thingsAPI, tok, signHeaders(t, th, headers(1.5, u, thingsAPI), payload(tok)))
		}},
		{"JSON body", func(tok string) response {
			return c.thingsJSON("POST", u, tok, scope)
		}},
		{"no body", func(tok string) response {
			return c.do("POST", u, nil, "Accept-API-Version: "+thingsAPI, "Cookie: iPlanetDirectoryPro="+tok)
		}},
		{"JWS sent as application/json", func(tok string) response {
			body := signHeaders(t, th, headers(1, u, thingsAPI), payload(tok))
			return c.do("POST", u, []byte(body), "Content-Type: application/json", "Accept-API-Version: "+thingsAPI, "Cookie: iPlanetDirectoryPro="+tok)
		}},
		{"alg none", func(tok string) response {
			return c.sendJOSE("POST", u, thingsAPI, tok, rawJWS(map[string]any{"alg": "none", "aud": u, "api": thingsAPI, "nonce": 1}, payload(tok), nil))
		}},
		{"HS256 keyed with the token", func(tok string) response {
			s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(tok)},
				&jose.SignerOptions{ExtraHeaders: headers(1, u, thingsAPI)})
			b, _ := json.Marshal(payload(tok))
			obj, _ := s.Sign(b)
			out, _ := obj.CompactSerialize()
			return c.sendJOSE("POST", u, thingsAPI, tok, out)
		}},
		{"not a JWS", func(tok string) response {
			return c.sendJOSE("POST", u, thingsAPI, tok, "not.a-jws")
		}},
		{"signature cut off", func(tok string) response {
			good := signHeaders(t, th, headers(1, u, thingsAPI), payload(tok))
			return c.sendJOSE("POST", u, thingsAPI, tok, good[:strings.LastIndex(good, ".")+1])
		}},
		{"bad base64", func(tok string) response {
			good := signHeaders(t, th, headers(1, u, thingsAPI), payload(tok))
			return c.sendJOSE("POST", u, thingsAPI, tok, "!!"+good[2:])
		}},
		{"no cookie", func(tok string) response {
			return c.sendJOSE("POST", u, thingsAPI, "", signHeaders(t, th, headers(1, u, thingsAPI), payload(tok)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := c.mustPoP(th, "auth-tree", "/")
			s := c.restrictedSession(th, tok)
			expectStatus(t, s.things("POST", "get_access_token", "/", scope), 200) // nonce 0
			r := tt.send(tok)
			expectCREST(t, r, 401, "")
			if strings.Contains(string(r.body), "access_token") {
				t.Errorf("a refused request issued a token: %s", r.body)
			}
			// Nothing changed: nonce 1 is still unused and the session is live.
			expectStatus(t, s.things("POST", "get_access_token", "/", scope), 200)
		})
	}
}

// TestRestrictedSessionAccepted covers what a restricted session may do:
// nonce gaps, equivalent api and aud spellings, GET bodies.
func TestRestrictedSessionAccepted(t *testing.T) {
	srv, c := startServer(t)
	admin := c.adminLogin()
	th := newThing(t, "gappy-thing")
	c.createThing(admin, "/", th, map[string]any{"thingConfig": "x"})
	tok := c.mustPoP(th, "auth-tree", "/")
	u := c.thingsURL("get_access_token", "/")
	scope := map[string]any{"scope": []string{"publish"}}

	for _, n := range []int64{0, 5, 1_000_000, 1_700_000_000} {
		expectStatus(t, c.signedRequest(th, "POST", u, thingsAPI, tok, n, scope), 200)
	}
	expectCREST(t, c.signedRequest(th, "POST", u, thingsAPI, tok, 999_999, scope), 401, "")
	next := int64(1_700_000_001)

	tests := []struct {
		name, url, api, aud string
	}{
		{"api with the other order and spaces", u, "resource=1.0, protocol=2.0", u},
		{"aud with the realm percent-encoded", u, thingsAPI, strings.Replace(u, "realm=/", "realm=%2F", 1)},
		{"attribute GET with _fields", c.thingsURL("", "/") + "&_fields=thingConfig", thingsAPI, c.thingsURL("", "/") + "&_fields=thingConfig"},
		{"realm in the path", srv.URL + "/json/realms/root/things/*?_action=get_access_token", thingsAPI, srv.URL + "/json/realms/root/things/*?_action=get_access_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "POST"
			var p any = map[string]any{"csrf": tok, "scope": []string{"publish"}}
			if strings.Contains(tt.url, "_fields") {
				method, p = "GET", map[string]any{"csrf": tok}
			}
			body := signHeaders(t, th, map[jose.HeaderKey]any{"aud": tt.aud, "api": tt.api, "nonce": next}, p)
			next++
			r := c.do(method, tt.url, []byte(body), "Content-Type: application/jose", "Accept-API-Version: "+tt.api, "Cookie: iPlanetDirectoryPro="+tok)
			expectStatus(t, r, 200)
		})
	}
}

// TestUnrestrictedSessions covers sessions without the PoP restriction (§4.5, §6.6).
func TestUnrestrictedSessions(t *testing.T) {
	cfg := amtest.DefaultConfig()
	addTree(cfg, "/", "pop-unrestricted", popNode(false), nil)
	addTree(cfg, "/", "reg-unrestricted", popNode(false), regNode(amtest.RegPoPWithoutTrust))
	_, c := startWith(t, cfg)
	admin := c.adminLogin()
	th := newThing(t, "free-thing")
	c.createThing(admin, "/", th, nil)
	tok := c.mustPoP(th, "pop-unrestricted", "/")
	scope := map[string]any{"scope": []string{"publish"}}

	expectStatus(t, c.thingsJSON("POST", c.thingsURL("get_access_token", "/"), tok, scope), 200)
	expectStatus(t, c.thingsJSON("GET", c.thingsURL("", "/"), tok, nil), 200)
	s := c.restrictedSession(th, tok)
	expectStatus(t, s.things("GET", "", "/", nil), 200)
	expectStatus(t, s.things("POST", "get_access_token", "/", scope), 200)
	// A signed request is checked even so: a replayed nonce is refused.
	expectCREST(t, c.signedRequest(th, "GET", c.thingsURL("", "/"), thingsAPI, tok, 0, nil), 401, "")

	// Registration after an unrestricted Authenticate Thing node: signed
	// requests work (UnrestrictedSessionTokenAfterRegistration).
	nt := newThing(t, uniqueID("free-reg"))
	res := c.login(c.authURL("reg-unrestricted", "/"), answers{
		"jwt-pop-authentication": c.popAnswer(nt, "/"),
		"jwt-pop-registration":   c.regAnswer(nt, "/", nil),
	})
	if res.token == "" {
		t.Fatalf("%d %s", res.r.status, res.r.body)
	}
	expectStatus(t, c.restrictedSession(nt, res.token).things("GET", "", "/", nil), 200)
}
