package jwttool_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/internal/examplepki"
	"github.com/thingway/thingway/internal/jwttool"
	"github.com/thingway/thingway/internal/jwttool/jwstest"
)

var (
	testTime = time.Unix(1700000000, 0)
	testNow  = func() time.Time { return testTime }
	b64url   = base64.RawURLEncoding.EncodeToString
)

func ecCoords(k *ecdsa.PrivateKey) (x, y string) {
	size := (k.Curve.Params().BitSize + 7) / 8
	pub := k.Public().(*ecdsa.PublicKey)
	b, _ := pub.Bytes() // 0x04 || X || Y
	return b64url(b[1 : 1+size]), b64url(b[1+size:])
}

func mustEC(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRSA(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func issue(t *testing.T, pub crypto.PublicKey, cn string) []*x509.Certificate {
	t.Helper()
	ca, caKey, err := examplepki.NewCA("test CA", testTime.Add(-time.Hour), testTime.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _, err := examplepki.IssueCert(ca, caKey, pub, cn, testTime.Add(-time.Hour), testTime.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return []*x509.Certificate{leaf, ca}
}

func TestAuthJWT(t *testing.T) {
	ec := mustEC(t, elliptic.P256())
	x, y := ecCoords(ec)
	chain := issue(t, ec.Public(), "thingymabot")
	x5c := fmt.Sprintf("%q,%q", base64.StdEncoding.EncodeToString(chain[0].Raw), base64.StdEncoding.EncodeToString(chain[1].Raw))
	tp, err := callback.Thumbprint(ec.Public())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		opts       jwttool.AuthJWTOptions
		wantHeader string
		wantClaims string
	}{
		{
			name:       "authentication, default kid",
			opts:       jwttool.AuthJWTOptions{Subject: "manual-thing", Audience: "/", Challenge: "Vg7McIhuLQ", Key: ec},
			wantHeader: `{"alg":"ES256"}`,
			wantClaims: `{"sub":"manual-thing","aud":"/","iat":1700000000,"exp":1700000300,"nonce":"Vg7McIhuLQ","cnf":{"kid":"` + tp + `"}}`,
		},
		{
			name:       "authentication, iot-edge's kid",
			opts:       jwttool.AuthJWTOptions{Subject: "manual-thing", Audience: "/", Challenge: "Vg7McIhuLQ", Key: ec, KeyID: jwttool.IoTEdgeKeyID},
			wantHeader: `{"alg":"ES256"}`,
			wantClaims: `{"sub":"manual-thing","aud":"/","iat":1700000000,"exp":1700000300,"nonce":"Vg7McIhuLQ","cnf":{"kid":"pop.cnf"}}`,
		},
		{
			name:       "authentication, kid, type ignored",
			opts:       jwttool.AuthJWTOptions{Subject: "t", Audience: "/a/b", Challenge: "n", Key: ec, KeyID: "k1", ThingType: "gateway"},
			wantHeader: `{"alg":"ES256"}`,
			wantClaims: `{"sub":"t","aud":"/a/b","iat":1700000000,"exp":1700000300,"nonce":"n","cnf":{"kid":"k1"}}`,
		},
		{
			name:       "registration, default type",
			opts:       jwttool.AuthJWTOptions{Subject: "thingymabot", Audience: "/", Challenge: "n", Key: ec, KeyID: "k1", Certificates: chain[:1]},
			wantHeader: `{"alg":"ES256"}`,
			wantClaims: `{"sub":"thingymabot","aud":"/","iat":1700000000,"exp":1700000300,"nonce":"n","cnf":{"jwk":{"use":"sig","kty":"EC","kid":"k1","crv":"P-256","x":"` + x + `","y":"` + y + `","x5c":[` + strings.Split(x5c, ",")[0] + `]}},"thingType":"device"}`,
		},
		{
			name:       "registration, chain, gateway",
			opts:       jwttool.AuthJWTOptions{Subject: "thingymabot", Audience: "/", Challenge: "n", Key: ec, Certificates: chain, ThingType: "gateway"},
			wantHeader: `{"alg":"ES256"}`,
			wantClaims: `{"sub":"thingymabot","aud":"/","iat":1700000000,"exp":1700000300,"nonce":"n","cnf":{"jwk":{"use":"sig","kty":"EC","kid":"` + tp + `","crv":"P-256","x":"` + x + `","y":"` + y + `","x5c":[` + x5c + `]}},"thingType":"gateway"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Time = testNow
			jws, err := jwttool.AuthJWT(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			h, p := jwstest.Split(t, jws, tt.opts.Key.Public())
			if h != tt.wantHeader {
				t.Errorf("header = %s\nwant     %s", h, tt.wantHeader)
			}
			if p != tt.wantClaims {
				t.Errorf("claims = %s\nwant     %s", p, tt.wantClaims)
			}
		})
	}
}

func TestAuthJWTAlgorithms(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		key  crypto.Signer
		want string
	}{
		{mustEC(t, elliptic.P256()), "ES256"},
		{mustEC(t, elliptic.P384()), "ES384"},
		{mustEC(t, elliptic.P521()), "ES512"},
		{mustRSA(t, 2048), "PS256"},
		{ed, "EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			jws, err := jwttool.AuthJWT(jwttool.AuthJWTOptions{Subject: "s", Audience: "/", Challenge: "c", Key: tt.key})
			if err != nil {
				t.Fatal(err)
			}
			h, p := jwstest.Split(t, jws, tt.key.Public())
			if want := `{"alg":"` + tt.want + `"}`; h != want {
				t.Errorf("header = %s, want %s", h, want)
			}
			var c struct{ IAT, Exp int64 }
			if err := json.Unmarshal([]byte(p), &c); err != nil {
				t.Fatal(err)
			}
			if now := time.Now().Unix(); c.IAT < now-5 || c.IAT > now+5 || c.Exp != c.IAT+300 {
				t.Errorf("iat %d exp %d, want now and now + 300", c.IAT, c.Exp)
			}
			// Registration JWTs carry the key's own members.
			chain := issue(t, tt.key.Public(), "s")
			jws, err = jwttool.AuthJWT(jwttool.AuthJWTOptions{Subject: "s", Audience: "/", Challenge: "c", Key: tt.key, Certificates: chain[:1]})
			if err != nil {
				t.Fatal(err)
			}
			_, p = jwstest.Split(t, jws, tt.key.Public())
			var reg struct {
				Cnf struct{ JWK json.RawMessage }
			}
			if err := json.Unmarshal([]byte(p), &reg); err != nil {
				t.Fatal(err)
			}
			var jwk jose.JSONWebKey
			if err := jwk.UnmarshalJSON(reg.Cnf.JWK); err != nil {
				t.Fatalf("cnf.jwk %s: %v", reg.Cnf.JWK, err)
			}
			tp, _ := callback.Thumbprint(tt.key.Public())
			if !jwk.IsPublic() || jwk.Use != "sig" || jwk.KeyID != tp || len(jwk.Certificates) != 1 {
				t.Errorf("cnf.jwk = %s", reg.Cnf.JWK)
			}
		})
	}
}

// opaque is a crypto.Signer that is not an in-memory key.
type opaque struct{ crypto.Signer }

func TestAuthJWTErrors(t *testing.T) {
	ec := mustEC(t, elliptic.P256())
	other := mustEC(t, elliptic.P256())
	ok := jwttool.AuthJWTOptions{Subject: "s", Audience: "/", Challenge: "c", Key: ec}
	with := func(f func(o *jwttool.AuthJWTOptions)) jwttool.AuthJWTOptions {
		o := ok
		f(&o)
		return o
	}
	tests := []struct {
		name string
		opts jwttool.AuthJWTOptions
		want string
	}{
		{"no subject", with(func(o *jwttool.AuthJWTOptions) { o.Subject = "" }), "jwttool: the subject is empty"},
		{"no audience", with(func(o *jwttool.AuthJWTOptions) { o.Audience = "" }), "jwttool: the audience is empty"},
		{"no challenge", with(func(o *jwttool.AuthJWTOptions) { o.Challenge = "" }), "jwttool: the challenge is empty"},
		{"no key", with(func(o *jwttool.AuthJWTOptions) { o.Key = nil }), "jwttool: no key"},
		{"opaque key", with(func(o *jwttool.AuthJWTOptions) { o.Key = opaque{ec} }), "jwttool: unsupported key type jwttool_test.opaque"},
		{"P-224", with(func(o *jwttool.AuthJWTOptions) { o.Key = mustEC(t, elliptic.P224()) }), "jwttool: callback: unsupported ECDSA curve P-224"},
		{"RSA 1024", with(func(o *jwttool.AuthJWTOptions) { o.Key = mustRSA(t, 1024) }), "jwttool: callback: unsupported RSA key size 1024 bits (want 2048, 3072 or 4096)"},
		{"bad type", with(func(o *jwttool.AuthJWTOptions) { o.ThingType = "Device" }), `jwttool: thing type "Device" is not device, service or gateway`},
		{"foreign certificate", with(func(o *jwttool.AuthJWTOptions) { o.Certificates = issue(t, other.Public(), "s") }), `jwttool: the certificate "CN=s" does not certify the key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jws, err := jwttool.AuthJWT(tt.opts)
			if err == nil || err.Error() != tt.want {
				t.Errorf("AuthJWT = %q, %v; want error %q", jws, err, tt.want)
			}
		})
	}
}

func TestThingsJWT(t *testing.T) {
	ec := mustEC(t, elliptic.P256())
	const u = "http://am.localtest.me:8080/am/json/things/*?_action=get_access_token&realm=/"
	// encoding/json, and so go-jose and SignRequest, write & < > in
	// strings as \u0026 \u003c \u003e: the same JSON values.
	const uJSON = `http://am.localtest.me:8080/am/json/things/*?_action=get_access_token\u0026realm=/`
	tests := []struct {
		name       string
		opts       jwttool.ThingsJWTOptions
		wantHeader string
		wantClaims string
	}{
		{
			name:       "defaults",
			opts:       jwttool.ThingsJWTOptions{URL: u, Key: ec, Nonce: -1},
			wantHeader: `{"alg":"ES256","api":"protocol=2.0,resource=1.0","aud":"` + uJSON + `","nonce":1700000000}`,
			wantClaims: `{}`,
		},
		{
			name:       "nonce 0 and claims in their order",
			opts:       jwttool.ThingsJWTOptions{URL: u, Key: ec, Claims: []byte(" {\"scope\": [\"publish\"],\n \"csrf\": \"tok.*AAJ\", \"n\": 1.50} ")},
			wantHeader: `{"alg":"ES256","api":"protocol=2.0,resource=1.0","aud":"` + uJSON + `","nonce":0}`,
			wantClaims: `{"scope":["publish"],"csrf":"tok.*AAJ","n":1.50}`,
		},
		{
			name:       "api and large nonce",
			opts:       jwttool.ThingsJWTOptions{URL: "http://x/json/sessions?_action=logout", Key: ec, Nonce: 1 << 53, APIVersion: "resource=4.0", Claims: []byte(`{"csrf":"t"}`)},
			wantHeader: `{"alg":"ES256","api":"resource=4.0","aud":"http://x/json/sessions?_action=logout","nonce":9007199254740992}`,
			wantClaims: `{"csrf":"t"}`,
		},
		{
			name:       "escaped and unicode claims",
			opts:       jwttool.ThingsJWTOptions{URL: "u", Key: ec, Nonce: 7, Claims: []byte(`{"a":"<&>","b":"\u00e9t\u00e9 é"}`)},
			wantHeader: `{"alg":"ES256","api":"protocol=2.0,resource=1.0","aud":"u","nonce":7}`,
			wantClaims: `{"a":"\u003c\u0026\u003e","b":"\u00e9t\u00e9 é"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Time = testNow
			jws, err := jwttool.ThingsJWT(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			h, p := jwstest.Split(t, jws, ec.Public())
			if h != tt.wantHeader {
				t.Errorf("header = %s\nwant     %s", h, tt.wantHeader)
			}
			if p != tt.wantClaims {
				t.Errorf("claims = %s\nwant     %s", p, tt.wantClaims)
			}
		})
	}
}

func TestThingsJWTErrors(t *testing.T) {
	ec := mustEC(t, elliptic.P256())
	tests := []struct {
		name   string
		url    string
		key    crypto.Signer
		claims string
		want   string
	}{
		{"no URL", "", ec, "{}", "jwttool: the URL is empty"},
		{"no key", "u", nil, "{}", "jwttool: no key"},
		{"array", "u", ec, `[{"csrf":"t"}]`, "jwttool: the claims must be a JSON object, not an array"},
		{"string", "u", ec, `"x"`, "jwttool: the claims must be a JSON object, not a string"},
		{"null", "u", ec, `null`, "jwttool: the claims must be a JSON object, not null"},
		{"number", "u", ec, `-1`, "jwttool: the claims must be a JSON object, not a number"},
		{"boolean", "u", ec, `true`, "jwttool: the claims must be a JSON object, not a boolean"},
		{"invalid", "u", ec, `{"csrf":}`, "jwttool: the claims are not valid JSON: invalid character '}' looking for beginning of value"},
		{"two objects", "u", ec, `{} {}`, "jwttool: the claims are not valid JSON: invalid character '{' after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jws, err := jwttool.ThingsJWT(jwttool.ThingsJWTOptions{URL: tt.url, Key: tt.key, Claims: []byte(tt.claims)})
			if err == nil || err.Error() != tt.want {
				t.Errorf("ThingsJWT = %q, %v; want error %q", jws, err, tt.want)
			}
		})
	}
}

func TestPEMToJWKS(t *testing.T) {
	ec := mustEC(t, elliptic.P256())
	x, y := ecCoords(ec)
	ec521 := mustEC(t, elliptic.P521())
	x521, y521 := ecCoords(ec521)
	rk := mustRSA(t, 2048)
	edPub, ed, _ := ed25519.GenerateKey(rand.Reader)
	tp, err := callback.Thumbprint(ec)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts jwttool.PEMToJWKSOptions
		want string
	}{
		{"EC default kid", jwttool.PEMToJWKSOptions{Key: ec},
			`{"keys":[{"use":"sig","kty":"EC","kid":"` + tp + `","crv":"P-256","x":"` + x + `","y":"` + y + `"}]}`},
		{"EC iot-edge's kid", jwttool.PEMToJWKSOptions{Key: ec, KeyID: jwttool.IoTEdgeKeyID},
			`{"keys":[{"use":"sig","kty":"EC","kid":"pop.cnf","crv":"P-256","x":"` + x + `","y":"` + y + `"}]}`},
		{"EC kid", jwttool.PEMToJWKSOptions{Key: ec, KeyID: "my-key"},
			`{"keys":[{"use":"sig","kty":"EC","kid":"my-key","crv":"P-256","x":"` + x + `","y":"` + y + `"}]}`},
		{"EC thumbprint", jwttool.PEMToJWKSOptions{Key: ec, KeyID: "ignored", ThumbprintKeyID: true},
			`{"keys":[{"use":"sig","kty":"EC","kid":"` + tp + `","crv":"P-256","x":"` + x + `","y":"` + y + `"}]}`},
		{"P-521", jwttool.PEMToJWKSOptions{Key: ec521, KeyID: "pop.cnf"},
			`{"keys":[{"use":"sig","kty":"EC","kid":"pop.cnf","crv":"P-521","x":"` + x521 + `","y":"` + y521 + `"}]}`},
		{"RSA", jwttool.PEMToJWKSOptions{Key: rk, KeyID: "pop.cnf"},
			`{"keys":[{"use":"sig","kty":"RSA","kid":"pop.cnf","n":"` + b64url(rk.N.Bytes()) + `","e":"AQAB"}]}`},
		{"Ed25519", jwttool.PEMToJWKSOptions{Key: ed, KeyID: "pop.cnf"},
			`{"keys":[{"use":"sig","kty":"OKP","kid":"pop.cnf","crv":"Ed25519","x":"` + b64url(edPub) + `"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jwttool.PEMToJWKS(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if got, err := jwttool.PEMToJWKS(jwttool.PEMToJWKSOptions{}); err == nil || err.Error() != "jwttool: no key" {
		t.Errorf("no key: %s, %v", got, err)
	}
	// The RSA exponent is written in its shortest form.
	small := *rk
	small.PublicKey.E = 3
	got, _ := jwttool.PEMToJWKS(jwttool.PEMToJWKSOptions{Key: &small})
	if !strings.HasSuffix(string(got), `"e":"`+b64url(big.NewInt(3).Bytes())+`"}]}`) {
		t.Errorf("e=3: %s", got)
	}
}

// The example resources agree with each other: pem-to-jwks --thumbprint-kid
// gives manual-thing.jwks without its alg member.
func TestPEMToJWKSResources(t *testing.T) {
	key, err := jwttool.ReadKey(filepath.Join("..", "..", "resources", "eckey1.key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := jwttool.PEMToJWKS(jwttool.PEMToJWKSOptions{Key: key, ThumbprintKeyID: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "resources", "manual-thing.jwks"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(strings.TrimSpace(string(b)), `"alg":"ES256",`, "", 1)
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := jwttool.ReadKey(bad); err == nil || err.Error() != bad+": pemkey: no private key found in PEM" {
		t.Errorf("ReadKey(bad) = %v", err)
	}
	if _, err := jwttool.ReadCertificates(bad); err == nil || err.Error() != bad+": pemkey: no certificate found in PEM" {
		t.Errorf("ReadCertificates(bad) = %v", err)
	}
	missing := filepath.Join(dir, "missing.pem")
	if _, err := jwttool.ReadKey(missing); !os.IsNotExist(err) {
		t.Errorf("ReadKey(missing) = %v", err)
	}
	if _, err := jwttool.ReadCertificates(missing); !os.IsNotExist(err) {
		t.Errorf("ReadCertificates(missing) = %v", err)
	}
	certs, err := jwttool.ReadCertificates(filepath.Join("..", "..", "resources", "thingymabot.cert.pem"))
	if err != nil || len(certs) != 1 || certs[0].Subject.CommonName != "thingymabot" {
		t.Errorf("ReadCertificates(thingymabot) = %v, %v", certs, err)
	}
}
