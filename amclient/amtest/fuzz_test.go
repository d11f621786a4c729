package amtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/proof"
)

// FuzzDecoders feeds arbitrary bytes to the decoders of untrusted input:
// compact JWS, JWT claims, JWK sets, Accept-API-Version and realm paths.
func FuzzDecoders(f *testing.F) {
	f.Add("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA")
	f.Add("protocol=1.0,resource=2.1")
	f.Add(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"k"}]}`)
	f.Add("realms/root/realms/a/realms/b/things/*")
	f.Add(`{"sub":"a","aud":["/","x"],"iat":1.5,"exp":1e10,"cnf":{"kid":"k","jwk":{"kty":"OKP"}}}`)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key := &jose.JSONWebKey{Key: &k.PublicKey}
	f.Fuzz(func(t *testing.T, s string) {
		if j, err := proof.Parse(s); err == nil {
			j.Verify(key)
			j.HeaderString("aud")
			if c, err := proof.DecodeClaims(j.Payload); err == nil {
				proof.CheckTimes(c, time.Now(), time.Minute, true, true)
			}
		}
		proof.DecodeClaims([]byte(s))
		proof.ParseJWKSet(s)
		crest.ParseAPIVersion(s)
		splitRealmPath(s)
		var n Node
		json.Unmarshal([]byte(s), &n)
		var oc OAuth2Client
		json.Unmarshal([]byte(s), &oc)
	})
}

// fuzzServer returns a server with a registered, PoP-authenticated thing.
func fuzzServer(f *testing.F) (s *Server, thingTok, adminTok string) {
	s = &Server{}
	if err := s.Init(); err != nil {
		f.Fatal(err)
	}
	x := identities.New("/", "fuzz-thing", time.Now())
	x.Attrs["thingKeys"] = []string{`{"keys":[]}`}
	if err := s.putIdentity(x); err != nil {
		f.Fatal(err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok, err := s.newSession(&session{UID: "fuzz-thing", Realm: "/", Restricted: true,
		Key: &jose.JSONWebKey{Key: &k.PublicKey, KeyID: "k"}}, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	admin, err := s.newSession(&session{UID: "amAdmin", Realm: "/", Admin: true}, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	return s, tok, admin
}

// FuzzEndpoints sends arbitrary bodies to the endpoints that decode them.
// Whatever arrives, the answer is an AM error or success, never a 5xx, and
// a refused request changes no state.
func FuzzEndpoints(f *testing.F) {
	f.Add(0, `{}`)
	f.Add(0, `{"authId":"x","callbacks":[{"type":"HiddenValueCallback","output":[],"input":[{"name":"IDToken1","value":"a.b.c"}]}]}`)
	f.Add(1, `{"scope":["publish"]}`)
	f.Add(1, `eyJhbGciOiJFUzI1NiIsIm5vbmNlIjoxfQ.eyJjc3JmIjoieCJ9.AAAA`)
	f.Add(2, `{"userPassword":"x","thingKeys":{"keys":null},"thingType":["a",1,{"b":2}]}`)
	f.Add(3, `{"tokenId":"x"}`)
	s, tok, admin := fuzzServer(f)
	f.Fuzz(func(t *testing.T, which int, body string) {
		var req *http.Request
		switch uint(which) % 4 {
		case 0:
			req = httptest.NewRequest("POST", "/openam/json/authenticate?authIndexType=service&authIndexValue=auth-reg-tree", strings.NewReader(body))
		case 1:
			req = httptest.NewRequest("POST", "/openam/json/things/*?_action=get_access_token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/jose")
		case 2:
			req = httptest.NewRequest("PUT", "/openam/json/realms/root/users/fuzz-thing", strings.NewReader(body))
		case 3:
			req = httptest.NewRequest("POST", "/openam/json/sessions?_action=validate", strings.NewReader(body))
		}
		req.Header.Set("Accept-API-Version", "protocol=2.0,resource=1.0")
		if uint(which)%4 == 2 {
			req.Header.Set("Cookie", "iPlanetDirectoryPro="+admin)
		} else {
			req.Header.Set("Cookie", "iPlanetDirectoryPro="+tok)
		}
		before := s.getIdentity("/", "fuzz-thing")
		tokensBefore := s.issued.Load()
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		var crest map[string]any
		if w.Code >= 400 && json.Unmarshal(w.Body.Bytes(), &crest) != nil {
			t.Fatalf("error body is not JSON: %s", w.Body)
		}
		if w.Code >= 400 {
			after := s.getIdentity("/", "fuzz-thing")
			if b1, _ := json.Marshal(before); string(b1) != func() string { b2, _ := json.Marshal(after); return string(b2) }() {
				t.Fatalf("refused request changed the identity")
			}
			if s.issued.Load() != tokensBefore {
				t.Fatalf("refused request issued a token")
			}
		}
	})
}

// FuzzAdmin sends arbitrary bodies to the admin endpoints: the answer is
// never a 5xx, and a refused call leaves the configuration as it was.
func FuzzAdmin(f *testing.F) {
	f.Add(0, `{"jwtAuthenticationMethod":"PROOF_OF_POSSESSION","issueRestrictedToken":true}`)
	f.Add(1, `{"entryNodeId":"x","nodes":{"x":{"nodeType":"UsernameCollectorNode","connections":{"outcome":"70e691a5-1e33-4ac3-a356-e7b6d60d92e0"}}}}`)
	f.Add(2, `{"coreOAuth2Config":{"statelessTokensEnabled":false},"advancedOAuth2Config":{"tokenSigningAlgorithm":"HS256"}}`)
	f.Add(3, `{"coreOAuth2ClientConfig":{"scopes":{"value":["a"],"inherited":false}}}`)
	f.Add(4, `{"name":"s","language":"GROOVY","context":"AUTHENTICATION_TREE_DECISION_NODE","script":"b3V0Y29tZSA9ICJ0cnVlIg=="}`)
	f.Add(5, `{"name":"X","active":true,"parentPath":"/","aliases":["a.b"]}`)
	f.Add(6, `{"script":"s","outcomes":["true"]}`)
	f.Add(7, `{"aliases":["thingway-example-ca"]}`)
	s, _, admin := fuzzServer(f)
	paths := []struct{ method, path string }{
		{"PUT", "realm-config/authentication/authenticationtrees/nodes/IotAuthenticationNode/n"},
		{"PUT", "realm-config/authentication/authenticationtrees/trees/t"},
		{"PUT", "realm-config/services/oauth-oidc"},
		{"PUT", "realm-config/agents/OAuth2Client/forgerock-iot-oauth2-client"},
		{"PUT", "scripts/s"},
		{"POST", "global-config/realms?_action=create"},
		{"PUT", "realm-config/authentication/authenticationtrees/nodes/ScriptedDecisionNode/sd"},
		{"PUT", "global-config/secrets/stores/KeyStoreSecretStore/default-keystore/mappings/am.services.iot.cert.verification"},
	}
	f.Fuzz(func(t *testing.T, which int, body string) {
		p := paths[uint(which)%uint(len(paths))]
		req := httptest.NewRequest(p.method, "/openam/json/"+p.path, strings.NewReader(body))
		req.Header.Set("iPlanetDirectoryPro", admin)
		before, _ := json.Marshal(s.config())
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if w.Code >= 400 {
			if after, _ := json.Marshal(s.config()); string(before) != string(after) {
				t.Fatalf("refused call changed the configuration")
			}
		}
	})
}
