package amtest_test

// Trust-path hardening (issue 11): one table row per attack of the
// external attack matrix, each over real HTTP against a real server, each
// asserting AM's status and body, that nothing was stored, and that the
// server's log says why.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest"
)

// logBuffer collects a server's log; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

func (l *logBuffer) since(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()[n:]
}

// logTo makes the server log into lb.
func logTo(lb *logBuffer) func(*amtest.Server) {
	return func(s *amtest.Server) {
		s.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
}

// expectLogged checks that the log written since mark gives the reason.
func expectLogged(t testing.TB, lb *logBuffer, mark int, reason string) {
	t.Helper()
	if got := lb.since(mark); !strings.Contains(got, reason) {
		t.Errorf("log does not say %q:\n%s", reason, got)
	}
}

// identityCount is the number of identities in the top-level realm.
func (c *client) identityCount(admin string) int {
	c.t.Helper()
	r := c.do("GET", c.srv.URL+"/json/realms/root/users?_queryFilter=true", nil,
		"Accept-API-Version: resource=4.0, protocol=2.1", "iPlanetDirectoryPro: "+admin)
	n, ok := expectStatus(c.t, r, 200)["resultCount"].(float64)
	if !ok {
		c.t.Fatalf("no resultCount: %s", r.body)
	}
	return int(n)
}

// --- JWS with duplicate member names ---

// signRaw signs header and payload, given as JSON text, with ES256.
func signRaw(t testing.TB, key crypto.Signer, header, payload string) string {
	t.Helper()
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok || k.Curve != elliptic.P256() {
		t.Fatalf("signRaw signs with P-256 keys only")
	}
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	h := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + enc.EncodeToString(sig)
}

// withFirst returns v as a JSON object with an extra member name:first
// written before all the others. encoding/json keeps the last of two
// members, so this server read v as it is before the fix; a reader that
// keeps the first sees first.
func withFirst(t testing.TB, v any, name string, first any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := json.Marshal(first)
	if !bytes.HasPrefix(b, []byte("{")) || bytes.Equal(b, []byte("{}")) {
		t.Fatalf("%s is not a JSON object with members", b)
	}
	return fmt.Sprintf(`{%q:%s,%s`, name, f, b[1:])
}

func jsonText(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDuplicateMembers sends, to every place where the local AM parses a
// JWS, a header or payload naming a member twice. The copy encoding/json
// would keep (the last) is valid, so each row was accepted before; now
// each is refused as AM refuses an invalid JWT at that step, stores
// nothing and logs why.
func TestDuplicateMembers(t *testing.T) {
	cfg := amtest.DefaultConfig()
	addTree(cfg, "/", "assert-tree", assertionNode("custom-client-assertion-audience"), nil)
	addTree(cfg, "/", "reg-pop", nil, regNode(amtest.RegPoPWithoutTrust))
	addTree(cfg, "/", "reg-stmt", nil, regNode(amtest.RegSoftwareStatementOnly))
	cfg.Realms["/"].Nodes["reg-stmt-reg-node"].Registration.DefaultAttributeValues = map[string]string{"thingType": "device"}
	pub := newPublisher(t, "https://soft-pub.example.com")
	pub.configure(t, cfg, "/")
	lb := &logBuffer{}
	_, c := startWith(t, cfg, logTo(lb))
	admin := c.adminLogin()
	th := newThing(t, uniqueID("dup"))
	c.createThing(admin, "/", th, nil)
	victim := newThing(t, uniqueID("dup-victim"))
	c.createThing(admin, "/", victim, nil)

	popHeader := `{"alg":"ES256","typ":"JWT"}`
	pop := func(claims func(nonce string) map[string]any, header func(map[string]any) (string, string)) func(string) string {
		return func(nonce string) string {
			h, p := header(claims(nonce))
			return signRaw(t, th.key, h, p)
		}
	}
	popClaims := func(nonce string) map[string]any { return th.popClaims("/", nonce, time.Now()) }
	regClaims := func(id string) func(nonce string) map[string]any {
		return func(nonce string) map[string]any {
			nt := *th
			nt.id = id
			return nt.regClaims("/", nonce, time.Now(), nil)
		}
	}
	assertion := func() map[string]any {
		return map[string]any{"sub": th.id, "iss": th.id, "aud": "custom-client-assertion-audience",
			"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix(), "cnf": map[string]any{}}
	}
	assertHeader := map[string]any{"alg": "ES256", "kid": th.kid, "typ": "JWT"}
	stmt := func() map[string]any {
		return map[string]any{"iss": pub.iss, "scope": "publish subscribe",
			"jwks": jose.JSONWebKeySet{Keys: []jose.JSONWebKey{th.publicJWK()}}}
	}
	stmtHeader := map[string]any{"alg": "ES256", "kid": pub.kid}

	type login struct {
		tree string
		a    answers
	}
	tests := []struct {
		name   string
		login  login
		reason string
	}{
		{"PoP authentication JWT: header alg twice (none first)", login{"auth-tree", answers{"jwt-pop-authentication": pop(popClaims,
			func(m map[string]any) (string, string) {
				return `{"alg":"none","typ":"JWT","alg":"ES256"}`, jsonText(t, m)
			})}}, `jws: header: strictjson: duplicate member name \"alg\"`},
		{"PoP authentication JWT: payload sub twice", login{"auth-tree", answers{"jwt-pop-authentication": pop(popClaims,
			func(m map[string]any) (string, string) { return popHeader, withFirst(t, m, "sub", victim.id) })}}, `jws: payload: strictjson: duplicate member name \"sub\"`},
		{"PoP authentication JWT: payload nonce twice", login{"auth-tree", answers{"jwt-pop-authentication": pop(popClaims,
			func(m map[string]any) (string, string) {
				return popHeader, withFirst(t, m, "nonce", "another-challenge")
			})}}, `duplicate member name \"nonce\"`},
		{"PoP authentication JWT: cnf.kid twice", login{"auth-tree", answers{"jwt-pop-authentication": pop(popClaims,
			func(m map[string]any) (string, string) {
				m["cnf"] = json.RawMessage(withFirst(t, map[string]any{"kid": th.kid}, "kid", victim.kid))
				return popHeader, jsonText(t, m)
			})}}, `duplicate member name \"kid\"`},
		{"PoP authentication JWT: sub and SUB", login{"auth-tree", answers{"jwt-pop-authentication": pop(popClaims,
			func(m map[string]any) (string, string) { return popHeader, withFirst(t, m, "SUB", victim.id) })}}, `duplicate member name \"sub\"`},
		{"registration JWT: header typ twice", login{"reg-pop", answers{"jwt-pop-registration": pop(regClaims(uniqueID("dup-reg")),
			func(m map[string]any) (string, string) {
				return `{"alg":"ES256","typ":"none","typ":"JWT"}`, jsonText(t, m)
			})}}, `jws: header: strictjson: duplicate member name \"typ\"`},
		{"registration JWT: payload sub twice", login{"reg-pop", answers{"jwt-pop-registration": pop(regClaims(uniqueID("dup-reg")),
			func(m map[string]any) (string, string) { return popHeader, withFirst(t, m, "sub", victim.id) })}}, `jws: payload: strictjson: duplicate member name \"sub\"`},
		{"registration JWT: cnf.jwk.x twice", login{"reg-pop", answers{"jwt-pop-registration": pop(regClaims(uniqueID("dup-reg")),
			func(m map[string]any) (string, string) {
				jwk := jsonText(t, th.jwk())
				m["cnf"] = json.RawMessage(`{"kid":"` + th.kid + `","jwk":` + withFirst(t, json.RawMessage(jwk), "x", "AAAA") + `}`)
				return popHeader, jsonText(t, m)
			})}}, `duplicate member name \"x\"`},
		{"client assertion: header kid twice", login{"assert-tree", answers{"client_assertion": func(string) string {
			return signRaw(t, th.key, withFirst(t, assertHeader, "kid", victim.kid), jsonText(t, assertion()))
		}}}, `jws: header: strictjson: duplicate member name \"kid\"`},
		{"client assertion: payload sub twice", login{"assert-tree", answers{"client_assertion": func(string) string {
			return signRaw(t, th.key, jsonText(t, assertHeader), withFirst(t, assertion(), "sub", victim.id))
		}}}, `jws: payload: strictjson: duplicate member name \"sub\"`},
		{"software statement: header kid twice", login{"reg-stmt", answers{"software_statement": func(string) string {
			return signRaw(t, pub.key, withFirst(t, stmtHeader, "kid", "another-publisher-key"), jsonText(t, stmt()))
		}}}, `jws: header: strictjson: duplicate member name \"kid\"`},
		{"software statement: payload iss twice", login{"reg-stmt", answers{"software_statement": func(string) string {
			return signRaw(t, pub.key, jsonText(t, stmtHeader), withFirst(t, stmt(), "iss", "https://evil.example.com"))
		}}}, `jws: payload: strictjson: duplicate member name \"iss\"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := c.identityCount(admin)
			mark := lb.mark()
			res := c.login(c.authURL(tt.login.tree, "/"), tt.login.a)
			loginFailed(t, res.r)
			if got := c.identityCount(admin); got != n {
				t.Errorf("identities: %d before, %d after", n, got)
			}
			expectLogged(t, lb, mark, tt.reason)
		})
	}

	// Signed requests (§6.2): the header and the payload.
	u := c.thingsURL("get_access_token", "/")
	header := func(nonce int64) map[string]any {
		return map[string]any{"alg": "ES256", "aud": u, "api": thingsAPI, "nonce": nonce}
	}
	signed := []struct {
		name   string
		body   func(tok string) string
		reason string
	}{
		{"signed request: header nonce twice", func(tok string) string {
			return signRaw(t, th.key, withFirst(t, header(1), "nonce", 0), jsonText(t, map[string]any{"csrf": tok, "scope": []string{"publish"}}))
		}, `jws: header: strictjson: duplicate member name \"nonce\"`},
		{"signed request: header aud twice", func(tok string) string {
			return signRaw(t, th.key, withFirst(t, header(1), "aud", c.thingsURL("introspect_token", "/")), jsonText(t, map[string]any{"csrf": tok}))
		}, `duplicate member name \"aud\"`},
		{"signed request: payload csrf twice", func(tok string) string {
			return signRaw(t, th.key, jsonText(t, header(1)), withFirst(t, map[string]any{"csrf": tok, "scope": []string{"publish"}}, "csrf", "x"))
		}, `jws: payload: strictjson: duplicate member name \"csrf\"`},
		{"signed request: payload csrf and CSRF", func(tok string) string {
			return signRaw(t, th.key, jsonText(t, header(1)), withFirst(t, map[string]any{"csrf": tok, "scope": []string{"publish"}}, "CSRF", "x"))
		}, `duplicate member name \"csrf\"`},
		{"signed request: payload scope twice", func(tok string) string {
			return signRaw(t, th.key, jsonText(t, header(1)), withFirst(t, map[string]any{"csrf": tok, "scope": []string{"publish"}}, "scope", []string{"delete"}))
		}, `duplicate member name \"scope\"`},
	}
	for _, tt := range signed {
		t.Run(tt.name, func(t *testing.T) {
			tok := c.mustPoP(th, "auth-tree", "/")
			s := c.restrictedSession(th, tok)
			expectStatus(t, s.things("POST", "get_access_token", "/", map[string]any{"scope": []string{"publish"}}), 200) // nonce 0
			mark := lb.mark()
			r := c.sendJOSE("POST", u, thingsAPI, tok, tt.body(tok))
			expectCREST(t, r, 401, "Access Denied")
			if strings.Contains(string(r.body), "access_token") {
				t.Errorf("a refused request issued a token: %s", r.body)
			}
			expectLogged(t, lb, mark, tt.reason)
			// Nothing changed: nonce 1 is still unused.
			expectStatus(t, s.things("POST", "get_access_token", "/", map[string]any{"scope": []string{"publish"}}), 200)
		})
	}
}
