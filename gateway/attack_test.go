package gateway_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/internal/examplepki"
	"github.com/thingway/thingway/thing"
)

// The attack matrix: hostile signed requests and authentication answers,
// sent by an attacker who holds a thing's key (or another thing's), over
// both transports: straight to AM over HTTP and through the gateway over
// CoAP/DTLS. Every row is refused with AM's status (through the gateway,
// the CoAP code that stands for it), changes nothing (a refused request
// consumes no nonce: the next nonce still works; a refused login gives no
// session), and AM's log says why. A new attack is one row.

var b64url = base64.RawURLEncoding.EncodeToString

// es256 signs input with key as a JWS ES256 signature (r || s).
func es256(t *testing.T, key *ecdsa.PrivateKey, input string, hash func([]byte) []byte) string {
	t.Helper()
	r, s, err := ecdsa.Sign(rand.Reader, key, hash([]byte(input)))
	if err != nil {
		t.Fatal(err)
	}
	size := (key.Curve.Params().BitSize + 7) / 8
	sig := make([]byte, 2*size)
	r.FillBytes(sig[:size])
	s.FillBytes(sig[size:])
	return b64url(sig)
}

func sum256(b []byte) []byte { h := sha256.Sum256(b); return h[:] }
func sum384(b []byte) []byte { h := sha512.Sum384(b); return h[:] }

// compact signs header and payload (raw JSON, so that rows can write what
// encoding/json would not, such as duplicate names) with ES256.
func compact(t *testing.T, key *ecdsa.PrivateKey, header, payload string) string {
	t.Helper()
	in := b64url([]byte(header)) + "." + b64url([]byte(payload))
	return in + "." + es256(t, key, in, sum256)
}

// jsonObj writes m as JSON.
func jsonObj(m map[string]any) string { b, _ := json.Marshal(m); return string(b) }

// victim is the thing whose session the attacker uses (with its stolen
// key), and what a signed request of it needs.
type victim struct {
	key      *ecdsa.PrivateKey
	kid      string
	token    string // its SSO token
	other    string // another thing's SSO token
	aud, api string
	nonce    int64 // the last nonce AM accepted
}

func (v *victim) header(nonce int64) map[string]any {
	return map[string]any{"alg": "ES256", "aud": v.aud, "api": v.api, "nonce": nonce}
}

func (v *victim) claims() map[string]any {
	return map[string]any{"csrf": v.token, "scope": []string{"publish"}}
}

// signed is the request that must succeed: the next nonce, honest claims.
func (v *victim) signed(t *testing.T, nonce int64) string {
	return compact(t, v.key, jsonObj(v.header(nonce)), jsonObj(v.claims()))
}

func with(m map[string]any, kv ...any) map[string]any {
	c := map[string]any{}
	for k, v := range m {
		c[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

// signedAttacks are hostile get_access_token requests; forge makes one
// with nonce n (the next the victim may use). status is AM's answer;
// coap, if set, the gateway's own (it refuses some before AM).
var signedAttacks = []struct {
	name   string
	forge  func(t *testing.T, v *victim, n int64) string
	status int
	coap   codes.Code
}{
	{"replayed nonce", func(t *testing.T, v *victim, n int64) string { return v.signed(t, v.nonce) }, 401, 0},
	{"lower nonce", func(t *testing.T, v *victim, n int64) string { return v.signed(t, v.nonce-1) }, 401, 0},
	{"nonce not an integer", func(t *testing.T, v *victim, n int64) string {
		return compact(t, v.key, jsonObj(with(v.header(n), "nonce", fmt.Sprint(n))), jsonObj(v.claims()))
	}, 401, 0},
	{"alg none", func(t *testing.T, v *victim, n int64) string {
		return b64url([]byte(jsonObj(with(v.header(n), "alg", "none")))) + "." + b64url([]byte(jsonObj(v.claims()))) + "."
	}, 401, 0},
	{"HS256 keyed with the public key", func(t *testing.T, v *victim, n int64) string {
		der, _ := x509.MarshalPKIXPublicKey(v.key.Public())
		in := b64url([]byte(jsonObj(with(v.header(n), "alg", "HS256")))) + "." + b64url([]byte(jsonObj(v.claims())))
		m := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		m.Write([]byte(in))
		return in + "." + b64url(m.Sum(nil))
	}, 401, 0},
	{"ES384 header over a P-256 key", func(t *testing.T, v *victim, n int64) string {
		in := b64url([]byte(jsonObj(with(v.header(n), "alg", "ES384")))) + "." + b64url([]byte(jsonObj(v.claims())))
		return in + "." + es256(t, v.key, in, sum384)
	}, 401, 0},
	{"signed by another key", func(t *testing.T, v *victim, n int64) string {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return compact(t, k, jsonObj(v.header(n)), jsonObj(v.claims()))
	}, 401, 0},
	{"no signature", func(t *testing.T, v *victim, n int64) string {
		s := v.signed(t, n)
		return s[:strings.LastIndex(s, ".")+1]
	}, 401, 0},
	{"expired", func(t *testing.T, v *victim, n int64) string {
		return compact(t, v.key, jsonObj(v.header(n)), jsonObj(with(v.claims(), "exp", time.Now().Add(-time.Hour).Unix())))
	}, 401, 0},
	{"nbf in the future", func(t *testing.T, v *victim, n int64) string {
		return compact(t, v.key, jsonObj(v.header(n)), jsonObj(with(v.claims(), "nbf", time.Now().Add(time.Hour).Unix())))
	}, 401, 0},
	{"iat in the future", func(t *testing.T, v *victim, n int64) string {
		return compact(t, v.key, jsonObj(v.header(n)), jsonObj(with(v.claims(), "iat", time.Now().Add(time.Hour).Unix())))
	}, 401, 0},
	{"wrong aud", func(t *testing.T, v *victim, n int64) string {
		return compact(t, v.key, jsonObj(with(v.header(n), "aud", strings.Replace(v.aud, "get_access_token", "get_user_code", 1))), jsonObj(v.claims()))
	}, 401, 0},
	{"api header mismatch", func(t *testing.T, v *victim, n int64) string {
		return compact(t, v.key, jsonObj(with(v.header(n), "api", "protocol=1.0,resource=1.0")), jsonObj(v.claims()))
	}, 401, 0},
	{"no csrf", func(t *testing.T, v *victim, n int64) string {
		return compact(t, v.key, jsonObj(v.header(n)), jsonObj(with(v.claims(), "csrf", nil)))
	}, 401, codes.BadRequest},
	{"another thing's session as csrf", func(t *testing.T, v *victim, n int64) string {
		return compact(t, v.key, jsonObj(v.header(n)), jsonObj(with(v.claims(), "csrf", v.other)))
	}, 401, 0},
	{"body changed after signing", func(t *testing.T, v *victim, n int64) string {
		p := strings.Split(v.signed(t, n), ".")
		return p[0] + "." + b64url([]byte(jsonObj(with(v.claims(), "scope", []string{"publish", "subscribe"})))) + "." + p[2]
	}, 401, 0},
	{"duplicate nonce in the header", func(t *testing.T, v *victim, n int64) string {
		h := jsonObj(v.header(v.nonce))
		return compact(t, v.key, strings.TrimSuffix(h, "}")+fmt.Sprintf(`,"nonce":%d}`, n), jsonObj(v.claims()))
	}, 401, codes.BadRequest},
	{"duplicate csrf in the payload", func(t *testing.T, v *victim, n int64) string {
		return compact(t, v.key, jsonObj(v.header(n)), `{"csrf":"x","scope":["publish"],"csrf":"`+v.token+`"}`)
	}, 401, codes.BadRequest},
	{"garbage base64", func(t *testing.T, v *victim, n int64) string { return "!!!.???.***" }, 401, codes.BadRequest},
	{"1 MB JWT", func(t *testing.T, v *victim, n int64) string {
		return compact(t, v.key, jsonObj(v.header(n)), jsonObj(with(v.claims(), "pad", strings.Repeat("A", 1<<20))))
	}, 413, codes.RequestEntityTooLarge},
}

// authAttacks are hostile answers to the Authenticate Thing node's PoP
// callback; forge signs one with the challenge AM gave. The victim's key
// is the attacker's.
var authAttacks = []struct {
	name  string
	forge func(t *testing.T, a *popAttack) string
}{
	{"unknown kid", func(t *testing.T, a *popAttack) string { return a.jwt(t, "cnf", map[string]any{"kid": "nope"}) }},
	{"another thing's kid", func(t *testing.T, a *popAttack) string { return a.jwt(t, "cnf", map[string]any{"kid": a.otherKid}) }},
	{"another thing's name", func(t *testing.T, a *popAttack) string { return a.jwt(t, "sub", "attack-other") }},
	{"another flow's challenge", func(t *testing.T, a *popAttack) string { return a.jwt(t, "nonce", a.otherChallenge) }},
	{"expired", func(t *testing.T, a *popAttack) string {
		return a.jwt(t, "iat", time.Now().Add(-2*time.Hour).Unix(), "exp", time.Now().Add(-time.Hour).Unix())
	}},
	{"iat in the future", func(t *testing.T, a *popAttack) string {
		return a.jwt(t, "iat", time.Now().Add(time.Hour).Unix(), "exp", time.Now().Add(time.Hour+5*time.Minute).Unix())
	}},
	{"ten-year lifetime", func(t *testing.T, a *popAttack) string {
		return a.jwt(t, "exp", time.Now().Add(10*365*24*time.Hour).Unix())
	}},
	{"wrong aud", func(t *testing.T, a *popAttack) string { return a.jwt(t, "aud", "/elsewhere") }},
	{"alg none", func(t *testing.T, a *popAttack) string {
		return b64url([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64url([]byte(jsonObj(a.claims()))) + "."
	}},
	{"duplicate sub", func(t *testing.T, a *popAttack) string {
		c := jsonObj(a.claims())
		return compact(t, a.key, `{"alg":"ES256","typ":"JWT"}`, `{"sub":"attack-other",`+c[1:])
	}},
}

type popAttack struct {
	key                      *ecdsa.PrivateKey
	kid, challenge, otherKid string
	otherChallenge           string
}

func (a *popAttack) claims() map[string]any {
	now := time.Now().Unix()
	return map[string]any{"sub": "attack-thing", "aud": "/", "iat": now, "exp": now + 300, "nonce": a.challenge,
		"cnf": map[string]any{"kid": a.kid}}
}

func (a *popAttack) jwt(t *testing.T, kv ...any) string {
	return compact(t, a.key, `{"alg":"ES256","typ":"JWT"}`, jsonObj(with(a.claims(), kv...)))
}

// transport sends what an attacker sends, one way or the other.
type transport interface {
	// things posts a signed get_access_token request made on session
	// token and returns AM's status, or the gateway's code.
	things(t *testing.T, token, jws string) (status int, code codes.Code)
	// authStart starts a flow of auth-tree and returns its first step.
	authStart(t *testing.T) callback.Step
	// authAnswer answers a step and returns the session it gave, if any.
	authAnswer(t *testing.T, step callback.Step) (token string, status int, code codes.Code)
}

type direct struct{ e *env }

func (d direct) things(t *testing.T, token, jws string) (int, codes.Code) {
	t.Helper()
	req, _ := http.NewRequest("POST", d.e.url+"/json/things/*?_action=get_access_token&realm=/", strings.NewReader(jws))
	req.Header.Set("Content-Type", "application/jose")
	req.Header.Set("Accept-API-Version", callback.ThingsVersion)
	req.Header.Set("Cookie", "iPlanetDirectoryPro="+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, 0
}

func (d direct) am() *amclient.Client { return &amclient.Client{URL: d.e.url, Realm: "/"} }

func (d direct) authStart(t *testing.T) callback.Step {
	t.Helper()
	res, err := d.am().AuthenticateStep(context.Background(), "auth-tree", amclient.AuthPayload{})
	if err != nil {
		t.Fatal(err)
	}
	return callback.Step{AuthID: res.AuthID, Callbacks: res.Callbacks}
}

func (d direct) authAnswer(t *testing.T, step callback.Step) (string, int, codes.Code) {
	t.Helper()
	res, err := d.am().AuthenticateStep(context.Background(), "auth-tree", amclient.AuthPayload{AuthID: step.AuthID, Callbacks: step.Callbacks})
	var ae *amclient.Error
	if errors.As(err, &ae) {
		return "", ae.StatusCode, 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return res.TokenID, 200, 0
}

type viaGateway struct {
	e  *env
	cc *client.Conn
}

func (g viaGateway) things(t *testing.T, _ string, jws string) (int, codes.Code) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := g.cc.Post(ctx, coapx.PathAccessToken, coapx.AppJOSE, bytes.NewReader([]byte(jws)))
	if err != nil {
		t.Fatal(err)
	}
	return 0, resp.Code()
}

func (g viaGateway) authStart(t *testing.T) callback.Step {
	t.Helper()
	code, _, step := authStep(t, g.cc, callback.Step{})
	if code != codes.Valid {
		t.Fatalf("first step = %v", code)
	}
	return step
}

func (g viaGateway) authAnswer(t *testing.T, step callback.Step) (string, int, codes.Code) {
	t.Helper()
	code, _, res := authStep(t, g.cc, step)
	return res.TokenID, 0, code
}

func TestAttackMatrix(t *testing.T) {
	e := newEnv(t)
	g := e.gateway(func(s *gateway.Server) { s.MaxAuthPerMinute = -1 })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	e.admin.Identity("attack-thing", "device", key, nil)
	e.admin.Identity("attack-other", "device", otherKey, nil)
	kid, _ := callback.Thumbprint(key.Public())
	otherKid, _ := callback.Thumbprint(otherKey.Public())
	info := callback.NewAMInfo(e.url, "/")

	for _, tr := range []struct {
		name string
		tr   transport
	}{
		{"HTTP", direct{e}},
		{"gateway", viaGateway{e, dial(t, g.addr)}},
	} {
		t.Run(tr.name, func(t *testing.T) {
			login := func(k *ecdsa.PrivateKey, id string) string {
				t.Helper()
				step := tr.tr.authStart(t)
				for i := range step.Callbacks {
					callback.AuthenticateHandler{Audience: "/", ThingID: id, Key: k}.Handle(&step.Callbacks[i])
				}
				tok, status, code := tr.tr.authAnswer(t, step)
				if tok == "" {
					t.Fatalf("honest login of %s: %d %v", id, status, code)
				}
				return tok
			}
			v := &victim{key: key, kid: kid, aud: info.AccessTokenURL, api: info.ThingsVersion, nonce: 10}
			v.token, v.other = login(key, "attack-thing"), login(otherKey, "attack-other")
			if status, code := tr.tr.things(t, v.token, v.signed(t, v.nonce)); status != 200 && code != codes.Changed {
				t.Fatalf("honest request: %d %v", status, code)
			}
			for _, a := range signedAttacks {
				t.Run(a.name, func(t *testing.T) {
					// The gateway refuses some before AM: its own log says why.
					logs := e.amLogs
					if _, ok := tr.tr.(viaGateway); ok && a.coap != 0 {
						logs = g.logs
					}
					refusals := logs.count("request refused")
					status, code := tr.tr.things(t, v.token, a.forge(t, v, v.nonce+1))
					checkRefused(t, status, code, a.status, a.coap)
					if logs.count("request refused") == refusals {
						t.Error("the log does not say why")
					}
					// Nothing consumed: the next nonce still works.
					if status, code := tr.tr.things(t, v.token, v.signed(t, v.nonce+1)); status != 200 && code != codes.Changed {
						t.Fatalf("honest request after the attack: %d %v", status, code)
					}
					v.nonce++
				})
			}
			for _, a := range authAttacks {
				t.Run("login: "+a.name, func(t *testing.T) {
					other := tr.tr.authStart(t)
					step := tr.tr.authStart(t)
					p := &popAttack{key: key, kid: kid, otherKid: otherKid,
						challenge: step.Callbacks[0].Value(), otherChallenge: other.Callbacks[0].Value()}
					step.Callbacks[0].SetInput(a.forge(t, p))
					outcomes := e.amLogs.count("node outcome")
					tok, status, code := tr.tr.authAnswer(t, step)
					if tok != "" {
						t.Fatal("the attack gave a session")
					}
					checkRefused(t, status, code, 401, 0)
					if e.amLogs.count("node outcome") == outcomes {
						t.Error("AM's log does not say why")
					}
				})
			}
		})
	}
}

// checkRefused checks a refusal: AM's status over HTTP, or the gateway's
// code (the one for AM's status unless coap is given).
func checkRefused(t *testing.T, status int, code codes.Code, want int, coap codes.Code) {
	t.Helper()
	if code == 0 { // HTTP
		if status != want {
			t.Errorf("AM answered %d, want %d", status, want)
		}
		return
	}
	if coap == 0 {
		coap = coapx.CodeForStatus(want)
	}
	if code != coap {
		t.Errorf("the gateway answered %v, want %v", code, coap)
	}
}

// certificate makes a certificate from tmpl for pub, signed by parent's
// key (self-signed when parent is nil).
func certificate(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// registrationAttacks are hostile certificate chains for the "Proof of
// Possession & Certificate" registration; chain returns the chain (leaf
// first) the thing with key presents. The local AM trusts e.ca. (A leaf
// whose key is not the JWT's, a v1 intermediate, and the other chain
// attacks need a signer of the attacker's own, as the SDK refuses them:
// TestRegistrationChains in amclient/amtest sends those over HTTP.)
var registrationAttacks = []struct {
	name  string
	chain func(t *testing.T, e *env, key *ecdsa.PrivateKey) []*x509.Certificate
}{
	{"intermediate that is not a CA", func(t *testing.T, e *env, key *ecdsa.PrivateKey) []*x509.Certificate {
		// Any leaf the CA issued, used to sign a certificate for any name.
		ik, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		now := time.Now()
		mid := certificate(t, &x509.Certificate{Subject: pkix.Name{CommonName: "a thing"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			BasicConstraintsValid: true, IsCA: false}, e.ca.Cert, ik.Public(), e.ca.Key)
		leaf := certificate(t, &x509.Certificate{Subject: pkix.Name{CommonName: "attack-reg-thing"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)},
			mid, key.Public(), ik)
		return []*x509.Certificate{leaf, mid}
	}},
	{"leaf of a foreign CA", func(t *testing.T, e *env, key *ecdsa.PrivateKey) []*x509.Certificate {
		now := time.Now()
		ca, caKey, err := examplepki.NewCA("Foreign CA", now.Add(-time.Hour), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		leaf, _, err := examplepki.IssueCert(ca, caKey, key.Public(), "attack-reg-thing", now.Add(-time.Hour), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return []*x509.Certificate{leaf, ca}
	}},
	{"expired leaf", func(t *testing.T, e *env, key *ecdsa.PrivateKey) []*x509.Certificate {
		now := time.Now()
		return []*x509.Certificate{certificate(t, &x509.Certificate{Subject: pkix.Name{CommonName: "attack-reg-thing"},
			NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}, e.ca.Cert, key.Public(), e.ca.Key)}
	}},
	{"self-signed leaf", func(t *testing.T, e *env, key *ecdsa.PrivateKey) []*x509.Certificate {
		now := time.Now()
		return []*x509.Certificate{certificate(t, &x509.Certificate{Subject: pkix.Name{CommonName: "attack-reg-thing"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, nil, key.Public(), key)}
	}},
}

// Hostile registrations, straight to AM and through the gateway (whose
// things register with auth-reg-tree): each is refused (401 / 4.01),
// creates no identity, and AM's log says why. The honest chain registers.
func TestRegistrationAttackMatrix(t *testing.T) {
	e := newEnv(t)
	g := e.gateway(func(s *gateway.Server) { s.ThingTree = "auth-reg-tree"; s.MaxAuthPerMinute = -1 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := thing.DialGateway(ctx, thing.GatewayConfig{Address: g.addr, Trust: coapx.Trust{InsecureAnyGateway: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, tr := range []struct {
		name string
		conn thing.Connector
	}{
		{"HTTP", &amclient.Client{URL: e.url, Realm: "/", Tree: "auth-reg-tree"}},
		{"gateway", conn},
	} {
		t.Run(tr.name, func(t *testing.T) {
			register := func(key *ecdsa.PrivateKey, chain []*x509.Certificate) error {
				_, err := thing.New(ctx, thing.Config{Connector: tr.conn, ID: "attack-reg-thing", Key: key,
					Registration: &thing.Registration{Certificates: chain}})
				return err
			}
			for _, a := range registrationAttacks {
				t.Run(a.name, func(t *testing.T) {
					key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
					outcomes := e.amLogs.count("node outcome")
					err := register(key, a.chain(t, e, key))
					var te *thing.Error
					if !errors.As(err, &te) || te.Status != 401 {
						t.Fatalf("registration = %v, want AM's 401", err)
					}
					if code, _ := e.admin.Do("GET", "/json/realms/root/users/attack-reg-thing", nil, "Accept-API-Version: resource=4.0, protocol=2.1",
						"Cookie: iPlanetDirectoryPro="+e.admin.Token); code != 404 {
						t.Errorf("the identity exists after the attack: %d", code)
					}
					if e.amLogs.count("node outcome") == outcomes {
						t.Error("AM's log does not say why")
					}
				})
			}
			// The honest chain: the CA's certificate for the thing's key.
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err := register(key, e.ca.Issue(key, "attack-reg-thing")); err != nil {
				t.Fatalf("honest registration: %v", err)
			}
			e.admin.Do("DELETE", "/json/realms/root/users/attack-reg-thing", nil, "Accept-API-Version: resource=4.0, protocol=2.1",
				"Cookie: iPlanetDirectoryPro="+e.admin.Token)
		})
	}
}
