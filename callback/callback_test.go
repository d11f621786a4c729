package callback_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/callback"
)

// keys are generated once: RSA-4096 generation is slow.
var (
	keysOnce sync.Once
	keys     map[jose.SignatureAlgorithm]crypto.Signer
)

func testKeys(t testing.TB) map[jose.SignatureAlgorithm]crypto.Signer {
	t.Helper()
	keysOnce.Do(func() {
		keys = map[jose.SignatureAlgorithm]crypto.Signer{}
		for alg, curve := range map[jose.SignatureAlgorithm]elliptic.Curve{jose.ES256: elliptic.P256(), jose.ES384: elliptic.P384(), jose.ES512: elliptic.P521()} {
			k, err := ecdsa.GenerateKey(curve, rand.Reader)
			if err != nil {
				panic(err)
			}
			keys[alg] = k
		}
		_, ed, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		keys[jose.EdDSA] = ed
		for alg, bits := range map[jose.SignatureAlgorithm]int{jose.PS256: 2048, jose.PS384: 3072, jose.PS512: 4096} {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				panic(err)
			}
			keys[alg] = k
		}
	})
	return keys
}

var allAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.PS256, jose.PS384, jose.PS512}

// opaque hides the concrete key type: it has only Public and Sign, like a
// key in an HSM or TPM.
type opaque struct{ s crypto.Signer }

func (o opaque) Public() crypto.PublicKey { return o.s.Public() }
func (o opaque) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.s.Sign(r, d, opts)
}

func TestSigningAlgorithm(t *testing.T) {
	ks := testKeys(t)
	for _, alg := range allAlgs {
		t.Run(string(alg), func(t *testing.T) {
			for _, k := range []crypto.Signer{ks[alg], opaque{ks[alg]}} {
				got, err := callback.SigningAlgorithm(k)
				if err != nil || got != alg {
					t.Errorf("SigningAlgorithm(%T) = %q, %v; want %q", k, got, err, alg)
				}
			}
		})
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	var typedNil *ecdsa.PrivateKey
	for name, k := range map[string]crypto.Signer{"P-224": p224, "RSA-1024": rsa1024, "nil": nil, "typed nil": typedNil} {
		t.Run(name, func(t *testing.T) {
			if alg, err := callback.SigningAlgorithm(k); err == nil {
				t.Errorf("SigningAlgorithm = %q, want an error", alg)
			}
		})
	}
	if _, err := callback.SigningAlgorithm(nil); !errors.Is(err, callback.ErrNoKey) || err.Error() != "callback: no signing key" {
		t.Errorf("nil key: %v, want %v", err, callback.ErrNoKey)
	}
}

func b64int(t *testing.T, s string) *big.Int {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return new(big.Int).SetBytes(b)
}

func TestThumbprint(t *testing.T) {
	// The manual-thing key of the evaluation guide and its kid.
	manual := &ecdsa.PublicKey{Curve: elliptic.P256(),
		X: b64int(t, "wjC9kMzwIeXNn6lsjdqplcq9aCWpAOZ0af1_yruCcJ4"),
		Y: b64int(t, "ihIziCymBnU8W8m5zx69DsQr0sWDiXsDMq04lBmfEHw")}
	// RFC 7638 §3.1 example key.
	rfc := &rsa.PublicKey{E: 65537, N: b64int(t, "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")}
	for name, tc := range map[string]struct {
		key  crypto.PublicKey
		want string
	}{
		"manual-thing": {manual, "cbnztC8J_l2feNf0aTFBDDQJuvrd2JbLPoOAxHR2N8o="},
		"RFC 7638":     {rfc, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs="},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := callback.Thumbprint(tc.key)
			if err != nil || got != tc.want {
				t.Errorf("Thumbprint = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, alg := range allAlgs {
		k := testKeys(t)[alg]
		a, err := callback.Thumbprint(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != 44 || !strings.HasSuffix(a, "=") || strings.ContainsAny(a, "+/") {
			t.Errorf("%s thumbprint %q is not padded base64url of 32 bytes", alg, a)
		}
		if b, _ := callback.Thumbprint(k); b != a {
			t.Errorf("%s: thumbprint of the private key %q differs from the public key's %q", alg, b, a)
		}
	}
	if _, err := callback.Thumbprint(nil); err == nil {
		t.Error("Thumbprint(nil) succeeded")
	}
}

// decoded is a compact JWS split into its parts; the signature is verified.
type decoded struct {
	header map[string]any
	claims map[string]any
}

// decode verifies tok with pub (with go-jose, an explicit algorithm list)
// and returns its header and claims as generic JSON.
func decode(t *testing.T, tok string, pub crypto.PublicKey, alg jose.SignatureAlgorithm) decoded {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	var d decoded
	for i, dst := range []*map[string]any{&d.header, &d.claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
	}
	obj, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if _, err := obj.Verify(pub); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	return d
}

// roundTrip marshals v and decodes it as generic JSON with json.Number.
func roundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func equalJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, w := roundTrip(t, got), roundTrip(t, want); !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}

func hidden(id, value string) *callback.Callback {
	return &callback.Callback{Type: callback.TypeHiddenValueCallback,
		Output: []callback.Entry{{Name: "value", Value: value}, {Name: "id", Value: id}},
		Input:  []callback.Entry{{Name: "IDToken1", Value: id}}}
}

var fixed = time.Unix(1700000000, 0)

func clock() time.Time { return fixed }

func TestAuthenticateHandlerPoP(t *testing.T) {
	for _, alg := range allAlgs {
		key := testKeys(t)[alg]
		for name, k := range map[string]crypto.Signer{"concrete": key, "opaque": opaque{key}} {
			t.Run(string(alg)+"/"+name, func(t *testing.T) {
				h := callback.AuthenticateHandler{Audience: "/a", ThingID: "thing-42", KeyID: "keyOne", Key: k, Time: clock,
					Claims: func() map[string]any { return map[string]any{"life_universe_everything": "42"} }}
				cb := hidden(callback.IDPoPAuthentication, "kP3qVn0y2rA6bT9sWmE1cQ")
				ok, err := h.Handle(cb)
				if !ok || err != nil {
					t.Fatalf("Handle = %v, %v", ok, err)
				}
				d := decode(t, cb.Input[0].Value.(string), key.Public(), alg)
				equalJSON(t, "header", d.header, map[string]any{"alg": string(alg), "typ": "JWT"})
				equalJSON(t, "claims", d.claims, map[string]any{"sub": "thing-42", "aud": "/a", "iat": 1700000000,
					"exp": 1700000300, "nonce": "kP3qVn0y2rA6bT9sWmE1cQ", "cnf": map[string]any{"kid": "keyOne"},
					"life_universe_everything": "42"})
				if cb.Input[0].Name != "IDToken1" || len(cb.Input) != 1 {
					t.Errorf("input = %+v", cb.Input)
				}
			})
		}
	}
}

func TestAuthenticateHandlerDefaults(t *testing.T) {
	key := testKeys(t)[jose.ES256]
	kid, _ := callback.Thumbprint(key.Public())
	before := time.Now().Unix()
	h := callback.AuthenticateHandler{Audience: "/", ThingID: "t", Key: key}
	cb := hidden(callback.IDPoPAuthentication, "c")
	if _, err := h.Handle(cb); err != nil {
		t.Fatal(err)
	}
	d := decode(t, cb.Input[0].Value.(string), key.Public(), jose.ES256)
	if got := d.claims["cnf"].(map[string]any)["kid"]; got != kid {
		t.Errorf("default cnf.kid = %v, want the thumbprint %s", got, kid)
	}
	iat, _ := d.claims["iat"].(json.Number).Int64()
	exp, _ := d.claims["exp"].(json.Number).Int64()
	if iat < before || iat > time.Now().Unix() || exp != iat+300 {
		t.Errorf("iat %d exp %d, want now and now+300", iat, exp)
	}
	if h.SigningKey() != key {
		t.Error("SigningKey is not Key")
	}
	var _ callback.SigningHandler = h
	var _ callback.SigningHandler = callback.RegisterHandler{}
}

func TestAuthenticateHandlerClientAssertion(t *testing.T) {
	key := testKeys(t)[jose.PS256]
	aud := "http://am.localtest.me:8080/am/oauth2/realms/root/realms/a/access_token"
	for name, h := range map[string]callback.AuthenticateHandler{
		"AssertionAudience": {Audience: "/a", AssertionAudience: aud, ThingID: "thing-42", KeyID: "keyOne", Key: key, Time: clock},
		"Audience":          {Audience: aud, ThingID: "thing-42", KeyID: "keyOne", Key: key, Time: clock},
	} {
		t.Run(name, func(t *testing.T) {
			cb := hidden(callback.IDClientAssertion, "")
			if ok, err := h.Handle(cb); !ok || err != nil {
				t.Fatalf("Handle = %v, %v", ok, err)
			}
			d := decode(t, cb.Input[0].Value.(string), key.Public(), jose.PS256)
			equalJSON(t, "header", d.header, map[string]any{"alg": "PS256", "kid": "keyOne", "typ": "JWT"})
			// jti: 16 random bytes, new for every assertion.
			jti, _ := d.claims["jti"].(string)
			if b, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(b) != 16 {
				t.Errorf("jti = %q, want 16 bytes in base64url", jti)
			}
			again := hidden(callback.IDClientAssertion, "")
			h.Handle(again)
			if d2 := decode(t, again.Input[0].Value.(string), key.Public(), jose.PS256); d2.claims["jti"] == jti {
				t.Error("two assertions with one jti")
			}
			delete(d.claims, "jti")
			equalJSON(t, "claims", d.claims, map[string]any{"sub": "thing-42", "iss": "thing-42", "aud": aud,
				"iat": 1700000000, "exp": 1700000300, "cnf": map[string]any{}})
		})
	}
}

func selfSigned(t *testing.T, key crypto.Signer, cn string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: fixed.Add(-time.Hour), NotAfter: fixed.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRegisterHandler(t *testing.T) {
	key := testKeys(t)[jose.ES256].(*ecdsa.PrivateKey)
	cert := selfSigned(t, key, "thing-42")
	kid, _ := callback.Thumbprint(key.Public())
	coord := func(b *big.Int) string { return base64.RawURLEncoding.EncodeToString(b.FillBytes(make([]byte, 32))) }
	jwk := map[string]any{"kty": "EC", "crv": "P-256", "x": coord(key.X), "y": coord(key.Y), "kid": kid, "use": "sig", "alg": "ES256"}
	withCert := map[string]any{}
	for k, v := range jwk {
		withCert[k] = v
	}
	withCert["x5c"] = []string{base64.StdEncoding.EncodeToString(cert.Raw)}

	for name, tc := range map[string]struct {
		h       callback.RegisterHandler
		jwk     map[string]any
		typ     string
		extra   map[string]any
		opaqueK bool
	}{
		"certificate": {h: callback.RegisterHandler{Audience: "/", ThingID: "thing-42", Key: key, Certificates: []*x509.Certificate{cert}, Time: clock},
			jwk: withCert, typ: "device"},
		"no certificate, service, claims": {h: callback.RegisterHandler{Audience: "/", ThingID: "thing-42", ThingType: callback.ThingTypeService, Key: opaque{key}, Time: clock,
			Claims: func() map[string]any { return map[string]any{"thingProperties": `{"ipAddress":"1.2.3.4"}`} }},
			jwk: jwk, typ: "service", extra: map[string]any{"thingProperties": `{"ipAddress":"1.2.3.4"}`}},
	} {
		t.Run(name, func(t *testing.T) {
			cb := hidden(callback.IDPoPRegistration, "Vg7McIhuLQ-qwmrMhJHkOw")
			if ok, err := tc.h.Handle(cb); !ok || err != nil {
				t.Fatalf("Handle = %v, %v", ok, err)
			}
			d := decode(t, cb.Input[0].Value.(string), key.Public(), jose.ES256)
			equalJSON(t, "header", d.header, map[string]any{"alg": "ES256", "typ": "JWT"})
			want := map[string]any{"sub": "thing-42", "aud": "/", "iat": 1700000000, "exp": 1700000300,
				"nonce": "Vg7McIhuLQ-qwmrMhJHkOw", "thingType": tc.typ, "cnf": map[string]any{"jwk": tc.jwk, "kid": kid}}
			for k, v := range tc.extra {
				want[k] = v
			}
			equalJSON(t, "claims", d.claims, want)
		})
	}

	t.Run("certificate of another key", func(t *testing.T) {
		other := selfSigned(t, testKeys(t)[jose.ES384], "thing-42")
		h := callback.RegisterHandler{Audience: "/", ThingID: "thing-42", Key: key, Certificates: []*x509.Certificate{other}}
		if ok, err := h.Handle(hidden(callback.IDPoPRegistration, "n")); !ok || err == nil {
			t.Errorf("Handle = %v, %v; want an error", ok, err)
		}
	})
}

func TestHandlersRecognise(t *testing.T) {
	key := testKeys(t)[jose.ES256]
	name := &callback.Callback{Type: callback.TypeNameCallback, Output: []callback.Entry{{Name: "prompt", Value: "User Name"}}, Input: []callback.Entry{{Name: "IDToken1", Value: ""}}}
	pass := &callback.Callback{Type: callback.TypePasswordCallback, Output: []callback.Entry{{Name: "prompt", Value: "Password"}}, Input: []callback.Entry{{Name: "IDToken1", Value: ""}}}
	cbs := map[string]func() *callback.Callback{
		"name": func() *callback.Callback {
			c := *name
			c.Input = append([]callback.Entry(nil), name.Input...)
			return &c
		},
		"password": func() *callback.Callback {
			c := *pass
			c.Input = append([]callback.Entry(nil), pass.Input...)
			return &c
		},
		"pop-auth":  func() *callback.Callback { return hidden(callback.IDPoPAuthentication, "c") },
		"assertion": func() *callback.Callback { return hidden(callback.IDClientAssertion, "") },
		"pop-reg":   func() *callback.Callback { return hidden(callback.IDPoPRegistration, "c") },
		"statement": func() *callback.Callback { return hidden(callback.IDSoftwareStatement, "") },
		"other":     func() *callback.Callback { return hidden("something-else", "") },
	}
	handlers := map[string]struct {
		h       callback.Handler
		handles []string
	}{
		"NameHandler":              {callback.NameHandler{Name: "bob"}, []string{"name"}},
		"PasswordHandler":          {callback.PasswordHandler{Password: "pw"}, []string{"password"}},
		"AuthenticateHandler":      {callback.AuthenticateHandler{Audience: "/", ThingID: "t", Key: key}, []string{"pop-auth", "assertion"}},
		"RegisterHandler":          {callback.RegisterHandler{Audience: "/", ThingID: "t", Key: key}, []string{"pop-reg"}},
		"SoftwareStatementHandler": {callback.SoftwareStatementHandler{Statement: "a.b.c"}, []string{"statement"}},
	}
	for hn, h := range handlers {
		for cn, mk := range cbs {
			t.Run(hn+"/"+cn, func(t *testing.T) {
				cb := mk()
				before := roundTrip(t, cb)
				ok, err := h.h.Handle(cb)
				want := false
				for _, x := range h.handles {
					want = want || x == cn
				}
				if ok != want || err != nil {
					t.Fatalf("Handle = %v, %v; want %v, nil", ok, err, want)
				}
				if !ok {
					equalJSON(t, "unhandled callback changed", cb, before)
					return
				}
				v, _ := cb.Input[0].Value.(string)
				switch cn {
				case "name":
					if v != "bob" {
						t.Errorf("input %q", v)
					}
				case "password":
					if v != "pw" {
						t.Errorf("input %q", v)
					}
				case "statement":
					if v != "a.b.c" {
						t.Errorf("input %q", v)
					}
				default:
					if strings.Count(v, ".") != 2 {
						t.Errorf("input %q is not a JWS", v)
					}
				}
			})
		}
	}
}

func TestHandlerErrors(t *testing.T) {
	key := testKeys(t)[jose.ES256]
	var typedNil *ecdsa.PrivateKey
	noInput := hidden(callback.IDPoPAuthentication, "c")
	noInput.Input = nil
	for name, tc := range map[string]struct {
		h    callback.Handler
		cb   *callback.Callback
		want string
	}{
		"zero AuthenticateHandler":  {callback.AuthenticateHandler{}, hidden(callback.IDPoPAuthentication, "c"), "callback: no signing key"},
		"zero assertion handler":    {callback.AuthenticateHandler{}, hidden(callback.IDClientAssertion, ""), "callback: no signing key"},
		"typed nil key":             {callback.AuthenticateHandler{Audience: "/", ThingID: "t", Key: typedNil}, hidden(callback.IDPoPAuthentication, "c"), "callback: no signing key"},
		"zero RegisterHandler":      {callback.RegisterHandler{}, hidden(callback.IDPoPRegistration, "c"), "callback: no signing key"},
		"no thing ID":               {callback.AuthenticateHandler{Audience: "/", Key: key}, hidden(callback.IDPoPAuthentication, "c"), "callback: no thing ID"},
		"no audience":               {callback.AuthenticateHandler{ThingID: "t", Key: key}, hidden(callback.IDPoPAuthentication, "c"), "callback: no audience"},
		"no register audience":      {callback.RegisterHandler{ThingID: "t", Key: key}, hidden(callback.IDPoPRegistration, "c"), "callback: no audience"},
		"empty challenge":           {callback.AuthenticateHandler{Audience: "/", ThingID: "t", Key: key}, hidden(callback.IDPoPAuthentication, ""), "callback: jwt-pop-authentication callback has no challenge"},
		"no input":                  {callback.AuthenticateHandler{Audience: "/", ThingID: "t", Key: key}, noInput, "callback: jwt-pop-authentication callback has no input"},
		"zero SoftwareStatement":    {callback.SoftwareStatementHandler{}, hidden(callback.IDSoftwareStatement, ""), "callback: no software statement"},
		"unsupported key algorithm": {callback.AuthenticateHandler{Audience: "/", ThingID: "t", KeyID: "k", Key: mustP224(t)}, hidden(callback.IDPoPAuthentication, "c"), "callback: unsupported ECDSA curve P-224"},
	} {
		t.Run(name, func(t *testing.T) {
			ok, err := tc.h.Handle(tc.cb)
			if !ok || err == nil || err.Error() != tc.want {
				t.Errorf("Handle = %v, %v; want true, %q", ok, err, tc.want)
			}
		})
	}
}

func mustP224(t *testing.T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignRequest(t *testing.T) {
	const aud = "http://am.localtest.me:8080/am/json/things/*?_action=get_access_token&realm=/a"
	for _, alg := range allAlgs {
		key := testKeys(t)[alg]
		for name, k := range map[string]crypto.Signer{"concrete": key, "opaque": opaque{key}} {
			t.Run(string(alg)+"/"+name, func(t *testing.T) {
				payload := map[string]any{"csrf": "AQIC5w.*AAJTSQACMDE.*", "scope": []string{"publish"}}
				tok, err := callback.SignRequest(k, aud, "protocol=2.0,resource=1.0", 7, payload)
				if err != nil {
					t.Fatal(err)
				}
				d := decodeUnverified(t, tok)
				equalJSON(t, "header", d.header, map[string]any{"alg": string(alg), "aud": aud, "api": "protocol=2.0,resource=1.0", "nonce": 7})
				if string(d.rawHeader["nonce"]) != "7" {
					t.Errorf("nonce is %s, want the JSON integer 7", d.rawHeader["nonce"])
				}
				equalJSON(t, "payload", d.claims, payload)
				verifyRaw(t, tok, key.Public(), alg)
			})
		}
	}
	t.Run("nil payload", func(t *testing.T) {
		tok, err := callback.SignRequest(testKeys(t)[jose.ES256], "u", "resource=4.0", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := decodeUnverified(t, tok)
		equalJSON(t, "payload", d.claims, map[string]any{})
		if string(d.rawHeader["nonce"]) != "0" {
			t.Errorf("nonce %s", d.rawHeader["nonce"])
		}
	})
	t.Run("no key", func(t *testing.T) {
		if _, err := callback.SignRequest(nil, "u", "resource=4.0", 0, nil); !errors.Is(err, callback.ErrNoKey) {
			t.Errorf("err = %v", err)
		}
	})
}

type unverified struct {
	decoded
	rawHeader map[string]json.RawMessage
}

func decodeUnverified(t *testing.T, tok string) unverified {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	var u unverified
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(hb, &u.rawHeader); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		b   []byte
		dst *map[string]any
	}{{hb, &u.header}, {pb, &u.claims}} {
		dec := json.NewDecoder(strings.NewReader(string(p.b)))
		dec.UseNumber()
		if err := dec.Decode(p.dst); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// verifyRaw checks a JWS signature by hand (go-jose refuses integer nonce
// headers when parsing).
func verifyRaw(t *testing.T, tok string, pub crypto.PublicKey, alg jose.SignatureAlgorithm) {
	t.Helper()
	i := strings.LastIndex(tok, ".")
	input, sig := []byte(tok[:i]), tok[i+1:]
	s, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}[string(alg)[2:]]
	digest := func() []byte { w := h.New(); w.Write(input); return w.Sum(nil) }
	ok := false
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		n := (k.Curve.Params().BitSize + 7) / 8
		if len(s) != 2*n {
			t.Fatalf("ECDSA signature is %d bytes, want %d", len(s), 2*n)
		}
		ok = ecdsa.Verify(k, digest(), new(big.Int).SetBytes(s[:n]), new(big.Int).SetBytes(s[n:]))
	case ed25519.PublicKey:
		ok = ed25519.Verify(k, input, s)
	case *rsa.PublicKey:
		ok = rsa.VerifyPSS(k, h, digest(), s, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	}
	if !ok {
		t.Fatalf("%s signature does not verify", alg)
	}
}

func TestCallbackJSON(t *testing.T) {
	const am = `{"type":"HiddenValueCallback","output":[{"name":"value","value":"kP3q"},{"name":"id","value":"jwt-pop-authentication"}],"input":[{"name":"IDToken1","value":"jwt-pop-authentication"}]}`
	var cb callback.Callback
	if err := json.Unmarshal([]byte(am), &cb); err != nil {
		t.Fatal(err)
	}
	if cb.ID() != "jwt-pop-authentication" || cb.Value() != "kP3q" {
		t.Errorf("ID %q Value %q", cb.ID(), cb.Value())
	}
	cb.SetInput("answer")
	out, _ := json.Marshal(cb)
	want := strings.Replace(am, `"IDToken1","value":"jwt-pop-authentication"`, `"IDToken1","value":"answer"`, 1)
	if string(out) != want {
		t.Errorf("marshal:\n got %s\nwant %s", out, want)
	}
	empty := callback.Callback{Type: "TextOutputCallback"}
	if b, _ := json.Marshal(empty); string(b) != `{"type":"TextOutputCallback"}` {
		t.Errorf("empty callback marshals to %s", b)
	}
	if empty.ID() != "" || empty.Value() != "" {
		t.Error("ID/Value of a callback without outputs")
	}
	empty.SetInput("x")
	if len(empty.Input) != 1 || empty.Input[0].Name != "IDToken1" || empty.Input[0].Value != "x" {
		t.Errorf("SetInput on no input: %+v", empty.Input)
	}
	numeric := callback.Callback{Output: []callback.Entry{{Name: "id", Value: 3.0}}}
	if numeric.ID() != "" {
		t.Error("a non-string id output is not an ID")
	}
}
