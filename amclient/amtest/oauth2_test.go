package amtest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/thingway/thingway/amclient/amtest"
)

const (
	iotClient       = "forgerock-iot-oauth2-client"
	iotClientSecret = "iot-client-s3cret"
	customClient    = "thing-oauth2-client"
	customSecret    = "a@xoS2#7M6hFChR#d4$%" // the harness's secret, with @ # $ %
)

// oauthConfig is the default configuration with secrets for the IoT client
// and the functional tests' custom client.
func oauthConfig() *amtest.Config {
	cfg := amtest.DefaultConfig()
	r := cfg.Realms["/"]
	r.OAuth2Clients[iotClient].Secret = iotClientSecret
	r.OAuth2Clients[customClient] = &amtest.OAuth2Client{Secret: customSecret, Scopes: []string{"create", "modify", "delete"},
		GrantTypes: []string{amtest.GrantJWTBearer}}
	r.IoT.AttributeAllowlist = []string{"thingConfig", "thingType"}
	return cfg
}

// basic is the Authorization header of client_secret_basic, credentials
// form-encoded first (RFC 6749 §2.3.1).
func basic(id, secret string) string {
	return "Authorization: Basic " + b64([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// revoke revokes tok at /oauth2/token/revoke as the client.
func (c *client) revoke(id, secret, tok string) response {
	c.t.Helper()
	return c.do("POST", c.srv.URL+"/oauth2/token/revoke?realm=/", []byte("token="+url.QueryEscape(tok)),
		"Content-Type: application/x-www-form-urlencoded", basic(id, secret))
}

// thingWithSession creates a thing (with extra attributes) and a restricted session for it.
func (c *client) thingWithSession(admin, id string, extra map[string]any) *restricted {
	c.t.Helper()
	th := newThing(c.t, id)
	c.createThing(admin, "/", th, extra)
	return c.restrictedSession(th, c.mustPoP(th, "auth-tree", "/"))
}

func (s *restricted) accessToken(scope ...string) response {
	s.c.t.Helper()
	var p map[string]any
	if scope != nil {
		p = map[string]any{"scope": scope}
	}
	return s.things("POST", "get_access_token", "/", p)
}

func (s *restricted) introspect(tok string) map[string]any {
	s.c.t.Helper()
	r := s.things("POST", "introspect_token", "/", map[string]any{"token": tok})
	if r.status != 200 {
		s.c.t.Fatalf("introspect: %d %s", r.status, r.body)
	}
	return r.json(s.c.t)
}

// TestAccessToken covers get_access_token (§7.3.1, §13.3).
func TestAccessToken(t *testing.T) {
	srv, c := startWith(t, oauthConfig())
	admin := c.adminLogin()
	s := c.thingWithSession(admin, "token-thing", nil)

	tests := []struct {
		name    string
		payload map[string]any
		scope   string // granted scope; "" for an error
		errCode string
		errText string
	}{
		{"exact scopes", map[string]any{"scope": []string{"publish", "subscribe"}}, "publish subscribe", "", ""},
		{"a subset", map[string]any{"scope": []string{"publish"}}, "publish", "", ""},
		{"duplicates", map[string]any{"scope": []string{"publish", "publish"}}, "publish", "", ""},
		{"unsupported scope", map[string]any{"scope": []string{"publish", "subscribe", "delete"}}, "", "invalid_scope", "Unknown/invalid scope(s): [delete]"},
		{"no scope, no default scopes", nil, "", "invalid_scope", "No scope requested and no default scope configured"},
		{"empty scope list, no default scopes", map[string]any{"scope": []string{}}, "", "invalid_scope", "No scope requested"},
		{"scope is not a list", map[string]any{"scope": "publish"}, "", "", "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.things("POST", "get_access_token", "/", tt.payload)
			switch {
			case tt.scope == "" && tt.errCode == "":
				expectCREST(t, r, 400, tt.errText)
				return
			case tt.scope == "":
				expectThingsOAuth(t, r, tt.errCode, tt.errText)
				return
			}
			got := expectStatus(t, r, 200)
			if got["scope"] != tt.scope || got["token_type"] != "Bearer" || got["expires_in"] != float64(3599) {
				t.Errorf("token response = %s", r.body)
			}
			if rt, _ := got["refresh_token"].(string); rt == "" {
				t.Errorf("no refresh_token: %s", r.body)
			}
			claims := jwtClaims(t, got["access_token"].(string))
			want := map[string]any{"sub": "(usr!token-thing)", "subname": "token-thing", "aud": iotClient, "iss": srv.URL + "/oauth2",
				"realm": "/", "token_type": "Bearer", "tokenName": "access_token", "grant_type": amtest.GrantJWTBearer}
			for k, v := range want {
				if claims[k] != v {
					t.Errorf("claim %s = %v, want %v", k, claims[k], v)
				}
			}
			if strings.Join(stringList(claims, "scope"), " ") != tt.scope {
				t.Errorf("claim scope = %v, want the array %q", claims["scope"], tt.scope)
			}
			if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 3600 {
				t.Errorf("exp - iat = %v", exp-iat)
			}
		})
	}

	t.Run("default scopes", func(t *testing.T) {
		cfg := oauthConfig()
		cfg.Realms["/"].OAuth2Clients[iotClient].DefaultScopes = []string{"subscribe"}
		_, c := startWith(t, cfg)
		s := c.thingWithSession(c.adminLogin(), "default-thing", nil)
		if got := expectStatus(t, s.accessToken(), 200); got["scope"] != "subscribe" {
			t.Errorf("scope = %v", got["scope"])
		}
		// Repeated requests on one session (AccessTokenRepeat).
		if got := expectStatus(t, s.accessToken("publish"), 200); got["scope"] != "publish" {
			t.Errorf("scope = %v", got["scope"])
		}
	})

	t.Run("custom client", func(t *testing.T) {
		cs := c.thingWithSession(admin, "custom-thing", map[string]any{"thingOAuth2ClientName": customClient})
		got := expectStatus(t, cs.accessToken("create", "modify", "delete"), 200)
		if got["scope"] != "create modify delete" {
			t.Errorf("scope = %v", got["scope"])
		}
		if _, has := got["refresh_token"]; has {
			t.Errorf("refresh token for a client without the refresh_token grant: %v", got)
		}
		if cl := jwtClaims(t, got["access_token"].(string)); cl["aud"] != customClient {
			t.Errorf("aud = %v", cl["aud"])
		}
		expectThingsOAuth(t, cs.accessToken("publish"), "invalid_scope", "Unknown/invalid scope(s): [publish]")
		// No default scopes on that client either.
		expectThingsOAuth(t, cs.accessToken(), "invalid_scope", "No scope requested")
	})

	t.Run("client that does not exist", func(t *testing.T) {
		ms := c.thingWithSession(admin, "lost-thing", map[string]any{"thingOAuth2ClientName": "no-such-client"})
		expectThingsOAuth(t, ms.accessToken("publish"), "invalid_client", "")
	})

	t.Run("unrestricted session with JSON", func(t *testing.T) {
		if r := c.putIdentity(admin, "/", "pwd-thing", map[string]any{"userPassword": "hifalutin", "thingType": "device"}); r.status != 201 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		res := c.login(c.authURL("ldapService", "/"), answers{"NameCallback": constant("pwd-thing"), "PasswordCallback": constant("hifalutin")})
		r := c.thingsJSON("POST", c.thingsURL("get_access_token", "/"), res.token, map[string]any{"scope": []string{"publish", "subscribe"}})
		if got := expectStatus(t, r, 200); got["scope"] != "publish subscribe" {
			t.Errorf("token = %s", r.body)
		}
		expectThingsOAuth(t, c.thingsJSON("POST", c.thingsURL("get_access_token", "/"), res.token, map[string]any{"scope": []string{"delete"}}),
			"invalid_scope", "Unknown/invalid scope(s)")
	})
}

// TestRefreshToken covers refreshing through the things endpoint (§7.3.2).
func TestRefreshToken(t *testing.T) {
	_, c := startWith(t, oauthConfig())
	admin := c.adminLogin()
	a := c.thingWithSession(admin, "refresh-a", nil)
	b := c.thingWithSession(admin, "refresh-b", nil)
	grant := func(s *restricted, scope ...string) (access, refresh string) {
		t.Helper()
		got := expectStatus(t, s.accessToken(scope...), 200)
		return got["access_token"].(string), got["refresh_token"].(string)
	}
	refresh := func(s *restricted, rt string, scope ...string) response {
		t.Helper()
		p := map[string]any{"refresh_token": rt}
		if scope != nil {
			p["scope"] = scope
		}
		return s.things("POST", "get_access_token", "/", p)
	}

	t.Run("same scopes", func(t *testing.T) {
		_, rt := grant(a, "publish", "subscribe")
		got := expectStatus(t, refresh(a, rt), 200)
		if got["scope"] != "publish subscribe" {
			t.Errorf("scope = %v", got["scope"])
		}
		newRT, _ := got["refresh_token"].(string)
		if newRT == "" || newRT == rt {
			t.Errorf("refresh_token not rotated: %v", got["refresh_token"])
		}
		// The used refresh token is spent; the new one works.
		expectThingsOAuth(t, refresh(a, rt), "invalid_grant", "invalid_grant")
		expectStatus(t, refresh(a, newRT), 200)
	})
	t.Run("same scopes named", func(t *testing.T) {
		_, rt := grant(a, "publish", "subscribe")
		if got := expectStatus(t, refresh(a, rt, "subscribe", "publish"), 200); got["scope"] != "subscribe publish" && got["scope"] != "publish subscribe" {
			t.Errorf("scope = %v", got["scope"])
		}
	})
	t.Run("reduced scope", func(t *testing.T) {
		_, rt := grant(a, "publish", "subscribe")
		got := expectStatus(t, refresh(a, rt, "publish"), 200)
		if got["scope"] != "publish" {
			t.Errorf("scope = %v", got["scope"])
		}
		if in := a.introspect(got["access_token"].(string)); in["active"] != true || in["scope"] != "publish" {
			t.Errorf("introspection = %v", in)
		}
	})
	t.Run("increased scope", func(t *testing.T) {
		_, rt := grant(a, "publish")
		expectThingsOAuth(t, refresh(a, rt, "publish", "subscribe"), "invalid_scope", "invalid_scope")
		// The failed refresh did not spend the token.
		expectStatus(t, refresh(a, rt), 200)
	})
	t.Run("another thing's refresh token", func(t *testing.T) {
		_, rt := grant(a, "publish")
		expectThingsOAuth(t, refresh(b, rt), "invalid_grant", "invalid_grant")
		expectStatus(t, refresh(a, rt), 200)
	})
	t.Run("an access token as refresh token", func(t *testing.T) {
		at, _ := grant(a, "publish")
		expectThingsOAuth(t, refresh(a, at), "invalid_grant", "invalid_grant")
	})
	t.Run("made-up refresh token", func(t *testing.T) {
		expectThingsOAuth(t, refresh(a, "not-a-refresh-token"), "invalid_grant", "invalid_grant")
	})
}

// TestIntrospection covers introspect_token, /oauth2/introspect and
// revocation (§7.4, §9.4, §9.6, §13.4).
func TestIntrospection(t *testing.T) {
	srv, c := startWith(t, oauthConfig())
	admin := c.adminLogin()
	s := c.thingWithSession(admin, "intro-thing", nil)
	other := c.thingWithSession(admin, "intro-other", nil)
	custom := c.thingWithSession(admin, "intro-custom", map[string]any{"thingOAuth2ClientName": customClient})

	t.Run("active", func(t *testing.T) {
		at := expectStatus(t, s.accessToken("publish", "subscribe"), 200)["access_token"].(string)
		in := s.introspect(at)
		want := map[string]any{"active": true, "scope": "publish subscribe", "client_id": iotClient, "sub": "(usr!intro-thing)",
			"subname": "intro-thing", "token_type": "Bearer", "realm": "/", "iss": srv.URL + "/oauth2"}
		for k, v := range want {
			if in[k] != v {
				t.Errorf("%s = %v, want %v", k, in[k], v)
			}
		}
		if _, ok := in["exp"].(float64); !ok {
			t.Errorf("exp = %v", in["exp"])
		}
		// Another thing of the same client sees it too.
		if in := other.introspect(at); in["active"] != true {
			t.Errorf("same-client introspection = %v", in)
		}
		// A thing of another client does not.
		if in := custom.introspect(at); len(in) != 1 || in["active"] != false {
			t.Errorf("other-client introspection = %v", in)
		}
		// The client itself at /oauth2/introspect.
		r := c.do("POST", srv.URL+"/oauth2/introspect", []byte("token="+url.QueryEscape(at)),
			"Content-Type: application/x-www-form-urlencoded", basic(iotClient, iotClientSecret))
		if got := expectStatus(t, r, 200); got["active"] != true || got["scope"] != "publish subscribe" {
			t.Errorf("/oauth2/introspect = %s", r.body)
		}
	})
	t.Run("custom client", func(t *testing.T) {
		at := expectStatus(t, custom.accessToken("create", "modify"), 200)["access_token"].(string)
		if in := custom.introspect(at); in["active"] != true || in["scope"] != "create modify" || in["client_id"] != customClient {
			t.Errorf("introspection = %v", in)
		}
	})
	t.Run("fake", func(t *testing.T) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		fake := sign(t, k, jose.ES256, map[jose.HeaderKey]any{"kid": "made-up"}, map[string]any{"sub": "(usr!intro-thing)",
			"scope": []string{"publish"}, "exp": time.Now().Add(time.Hour).Unix(), "iss": srv.URL + "/oauth2"})
		for _, tok := range []string{fake, "opaque-made-up-token"} {
			if in := s.introspect(tok); len(in) != 1 || in["active"] != false {
				t.Errorf("introspection of %q = %v", tok, in)
			}
		}
	})
	t.Run("missing token", func(t *testing.T) {
		expectThingsOAuth(t, s.things("POST", "introspect_token", "/", map[string]any{}), "invalid_request", "token")
	})
	t.Run("revoked by the client", func(t *testing.T) {
		at := expectStatus(t, s.accessToken("publish"), 200)["access_token"].(string)
		r := c.revoke(iotClient, iotClientSecret, at)
		if got := expectStatus(t, r, 200); len(got) != 0 {
			t.Errorf("revoke body = %s", r.body)
		}
		if in := s.introspect(at); len(in) != 1 || in["active"] != false {
			t.Errorf("introspection after revocation = %v", in)
		}
	})
	t.Run("revoked with the harness's secret", func(t *testing.T) {
		at := expectStatus(t, custom.accessToken("create"), 200)["access_token"].(string)
		expectStatus(t, c.revoke(customClient, customSecret, at), 200)
		if in := custom.introspect(at); in["active"] != false {
			t.Errorf("introspection after revocation = %v", in)
		}
	})
	t.Run("revoking a refresh token revokes its grant", func(t *testing.T) {
		got := expectStatus(t, s.accessToken("publish"), 200)
		expectStatus(t, c.revoke(iotClient, iotClientSecret, got["refresh_token"].(string)), 200)
		if in := s.introspect(got["access_token"].(string)); in["active"] != false {
			t.Errorf("access token after its refresh token was revoked = %v", in)
		}
		expectThingsOAuth(t, s.things("POST", "get_access_token", "/", map[string]any{"refresh_token": got["refresh_token"]}), "invalid_grant", "")
	})
	t.Run("revoke refused", func(t *testing.T) {
		at := expectStatus(t, s.accessToken("publish"), 200)["access_token"].(string)
		tests := []struct {
			name string
			r    func() response
		}{
			{"wrong secret", func() response { return c.revoke(iotClient, "wrong", at) }},
			{"unknown client", func() response { return c.revoke("nobody", "x", at) }},
			{"no credentials", func() response {
				return c.do("POST", srv.URL+"/oauth2/token/revoke", []byte("token="+at), "Content-Type: application/x-www-form-urlencoded")
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := tt.r()
				expectOAuth(t, r, 401, "invalid_client")
				if r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("no WWW-Authenticate header")
				}
			})
		}
		// Another client's revocation is a no-op (RFC 7009 answers 200).
		expectStatus(t, c.revoke(customClient, customSecret, at), 200)
		if in := s.introspect(at); in["active"] != true {
			t.Errorf("token revoked by another client: %v", in)
		}
		expectOAuth(t, c.do("POST", srv.URL+"/oauth2/token/revoke", []byte(""), "Content-Type: application/x-www-form-urlencoded",
			basic(iotClient, iotClientSecret)), 400, "invalid_request")
		expectOAuth(t, c.do("GET", srv.URL+"/oauth2/token/revoke", nil), 405, "invalid_request")
	})
	t.Run("refresh token", func(t *testing.T) {
		got := expectStatus(t, s.accessToken("publish"), 200)
		if in := s.introspect(got["refresh_token"].(string)); in["active"] != true || in["scope"] != "publish" {
			t.Errorf("refresh token introspection = %v", in)
		}
	})
}

// TestTokenFormats covers opaque (CTS) tokens, HS256 client-side tokens and
// the local verification of ES256 tokens against the published JWK set (§2, §9.2).
func TestTokenFormats(t *testing.T) {
	t.Run("client-side ES256 verifies against jwks_uri", func(t *testing.T) {
		srv, c := startWith(t, oauthConfig())
		s := c.thingWithSession(c.adminLogin(), "jwks-thing", nil)
		at := expectStatus(t, s.accessToken("publish"), 200)["access_token"].(string)

		oidc := expectStatus(t, c.do("GET", srv.URL+"/oauth2/.well-known/openid-configuration", nil, "Content-Type: application/json"), 200)
		iss := srv.URL + "/oauth2"
		for k, v := range map[string]string{"issuer": iss, "token_endpoint": iss + "/access_token", "introspection_endpoint": iss + "/introspect",
			"revocation_endpoint": iss + "/token/revoke", "jwks_uri": iss + "/connect/jwk_uri", "device_authorization_endpoint": iss + "/device/code"} {
			if oidc[k] != v {
				t.Errorf("%s = %v, want %s", k, oidc[k], v)
			}
		}
		r := c.do("GET", oidc["jwks_uri"].(string), nil, "Content-Type: application/json")
		if r.status != 200 {
			t.Fatalf("jwks: %d %s", r.status, r.body)
		}
		var set jose.JSONWebKeySet
		if err := jsonDecode(r.body, &set); err != nil || len(set.Keys) == 0 {
			t.Fatalf("jwks = %s (%v)", r.body, err)
		}
		for _, k := range set.Keys {
			if !k.IsPublic() {
				t.Errorf("the JWK set publishes private material")
			}
		}
		tok, err := jwt.ParseSigned(at, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		kid := tok.Headers[0].KeyID
		found := set.Key(kid)
		if kid == "" || len(found) != 1 {
			t.Fatalf("token kid %q not in the JWK set", kid)
		}
		var cl jwt.Claims
		if err := tok.Claims(found[0].Key, &cl); err != nil {
			t.Fatalf("token does not verify with the published key: %v", err)
		}
		if err := cl.Validate(jwt.Expected{Issuer: iss, AnyAudience: jwt.Audience{iotClient}, Time: time.Now()}); err != nil {
			t.Errorf("claims: %v", err)
		}
	})
	t.Run("sub-realm discovery", func(t *testing.T) {
		cfg := oauthConfig()
		cfg.Realms["/sub"] = amtest.GuideRealm()
		srv, c := startWith(t, cfg)
		want := srv.URL + "/oauth2/realms/root/realms/sub"
		for _, u := range []string{srv.URL + "/oauth2/.well-known/openid-configuration?realm=/sub", want + "/.well-known/openid-configuration"} {
			got := expectStatus(t, c.do("GET", u, nil), 200)
			if got["issuer"] != want || got["jwks_uri"] != want+"/connect/jwk_uri" {
				t.Errorf("%s: %v", u, got)
			}
		}
		expectStatus(t, c.do("GET", want+"/connect/jwk_uri", nil), 200)
		expectOAuth(t, c.do("GET", srv.URL+"/oauth2/.well-known/openid-configuration?realm=/nope", nil), 400, "invalid_request")
	})
	t.Run("opaque tokens", func(t *testing.T) {
		cfg := oauthConfig()
		cfg.Realms["/"].OAuth2.Core.StatelessTokensEnabled = false
		_, c := startWith(t, cfg)
		s := c.thingWithSession(c.adminLogin(), "cts-thing", nil)
		got := expectStatus(t, s.accessToken("publish", "subscribe"), 200)
		at := got["access_token"].(string)
		if strings.Contains(at, ".") || len(at) < 20 {
			t.Errorf("access_token %q is not opaque", at)
		}
		if in := s.introspect(at); in["active"] != true || in["scope"] != "publish subscribe" || in["sub"] != "(usr!cts-thing)" {
			t.Errorf("introspection = %v", in)
		}
		expectStatus(t, c.revoke(iotClient, iotClientSecret, at), 200)
		if in := s.introspect(at); in["active"] != false {
			t.Errorf("introspection after revocation = %v", in)
		}
		// Refreshing works with opaque tokens too.
		got = expectStatus(t, s.things("POST", "get_access_token", "/", map[string]any{"refresh_token": got["refresh_token"]}), 200)
		if strings.Contains(got["access_token"].(string), ".") {
			t.Errorf("refreshed token is not opaque")
		}
	})
	t.Run("client-side HS256", func(t *testing.T) {
		cfg := oauthConfig()
		cfg.Realms["/"].OAuth2.Advanced.TokenSigningAlgorithm = "HS256"
		_, c := startWith(t, cfg)
		s := c.thingWithSession(c.adminLogin(), "hs-thing", nil)
		at := expectStatus(t, s.accessToken("publish"), 200)["access_token"].(string)
		tok, err := jwt.ParseSigned(at, []jose.SignatureAlgorithm{jose.HS256})
		if err != nil {
			t.Fatalf("not an HS256 JWT: %v", err)
		}
		_ = tok
		if in := s.introspect(at); in["active"] != true {
			t.Errorf("introspection = %v", in)
		}
	})
}

// TestOAuth2Endpoints covers the OAuth 2.0 error format of /oauth2 (§1.4).
func TestOAuth2Endpoints(t *testing.T) {
	srv, c := startWith(t, oauthConfig())
	form := "Content-Type: application/x-www-form-urlencoded"
	tests := []struct {
		name   string
		method string
		url    string
		body   string
		hdr    []string
		status int
		code   string
	}{
		{"unknown endpoint", "GET", "/oauth2/nope", "", nil, 404, "not_found"},
		{"access_token with GET", "GET", "/oauth2/access_token", "", nil, 405, "invalid_request"},
		{"access_token without client", "POST", "/oauth2/access_token", "grant_type=client_credentials", []string{form}, 401, "invalid_client"},
		{"access_token without grant_type", "POST", "/oauth2/access_token", "", []string{form, basic(iotClient, iotClientSecret)}, 400, "invalid_request"},
		{"grant type the client lacks", "POST", "/oauth2/access_token", "grant_type=client_credentials", []string{form, basic(iotClient, iotClientSecret)}, 400, "unauthorized_client"},
		{"introspect without token", "POST", "/oauth2/introspect", "", []string{form, basic(iotClient, iotClientSecret)}, 400, "invalid_request"},
		{"introspect with wrong secret", "POST", "/oauth2/introspect", "token=x", []string{form, basic(iotClient, "nope")}, 401, "invalid_client"},
		{"unknown realm", "GET", "/oauth2/.well-known/openid-configuration?realm=/nope", "", nil, 400, "invalid_request"},
		{"bad realm path", "GET", "/oauth2/realms/nope/.well-known/openid-configuration", "", nil, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectOAuth(t, c.do(tt.method, srv.URL+tt.url, []byte(tt.body), tt.hdr...), tt.status, tt.code)
		})
	}
	t.Run("refresh at the token endpoint", func(t *testing.T) {
		s := c.thingWithSession(c.adminLogin(), "endpoint-thing", nil)
		rt := expectStatus(t, s.accessToken("publish", "subscribe"), 200)["refresh_token"].(string)
		r := c.do("POST", srv.URL+"/oauth2/access_token", []byte("grant_type=refresh_token&scope=publish&refresh_token="+url.QueryEscape(rt)),
			form, basic(iotClient, iotClientSecret))
		if got := expectStatus(t, r, 200); got["scope"] != "publish" {
			t.Errorf("refresh = %s", r.body)
		}
		r = c.do("POST", srv.URL+"/oauth2/access_token", []byte("grant_type=refresh_token&refresh_token="+url.QueryEscape(rt)),
			form, basic(iotClient, iotClientSecret))
		expectOAuth(t, r, 400, "invalid_grant")
	})
}

func jsonDecode(b []byte, v any) error { return json.Unmarshal(b, v) }

// Client-side encrypted tokens are JWEs (five parts, opaque to the thing)
// that AM still introspects.
func TestEncryptedAccessTokens(t *testing.T) {
	cfg := amtest.DefaultConfig()
	cfg.Realms["/"].OAuth2.Advanced.TokenEncryptionEnabled = true
	_, c := startWith(t, cfg)
	admin := c.adminLogin()
	th := newThing(t, "sealed-thing")
	c.createThing(admin, "/", th, nil)
	s := c.restrictedSession(th, c.mustPoP(th, "auth-tree", "/"))
	tok := expectStatus(t, s.things("POST", "get_access_token", "/", map[string]any{"scope": []string{"publish"}}), 200)
	at, _ := tok["access_token"].(string)
	if n := strings.Count(at, "."); n != 4 {
		t.Fatalf("access token has %d dots, want a compact JWE: %.40s", n, at)
	}
	in := expectStatus(t, s.things("POST", "introspect_token", "/", map[string]any{"token": at}), 200)
	if in["active"] != true || in["scope"] != "publish" {
		t.Errorf("introspection = %v", in)
	}
}
