package amtest_test

// Test harness (with harness_test.go): things' keys and signed JWTs,
// the test PKI and software statement publishers.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/internal/examplepki"
)

// thing is a device with a key pair.
type thing struct {
	id   string
	key  crypto.Signer
	kid  string
	alg  jose.SignatureAlgorithm
	cert []*x509.Certificate
}

func newThing(t testing.TB, id string) *thing {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := examplepki.Thumbprint(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &thing{id: id, key: k, kid: kid, alg: jose.ES256}
}

func (th *thing) publicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: th.key.Public(), KeyID: th.kid, Algorithm: string(th.alg), Use: "sig"}
}

func (th *thing) jwks(t testing.TB) string {
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{th.publicJWK()}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// register creates the thing's identity with the guide's PUT.
func (c *client) register(admin string, th *thing, realmPath string) response {
	c.t.Helper()
	body, _ := json.Marshal(map[string]any{"userPassword": "5tr0ngG3n3r@ted", "thingType": "device", "thingKeys": th.jwks(c.t)})
	return c.do("PUT", c.srv.URL+"/json"+realmPath+"/users/"+th.id, body, "Content-Type: application/json",
		"Accept-Api-Version: resource=4.0, protocol=2.1", "Cookie: iPlanetDirectoryPro="+admin)
}

func sign(t testing.TB, key crypto.Signer, alg jose.SignatureAlgorithm, extra map[jose.HeaderKey]any, claims any) string {
	t.Helper()
	opts := &jose.SignerOptions{ExtraHeaders: extra}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// popClaims are the claims of the SDK's PoP authentication JWT.
func (th *thing) popClaims(aud, nonce string, now time.Time) map[string]any {
	return map[string]any{"sub": th.id, "aud": aud, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": nonce, "cnf": map[string]any{"kid": th.kid}}
}

// pki is a certificate authority minted at run time.
type pki struct {
	ca  *x509.Certificate
	key *ecdsa.PrivateKey
}

func newPKI(t testing.TB, cn string) *pki {
	t.Helper()
	ca, key, err := examplepki.NewCA(cn, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return &pki{ca: ca, key: key}
}

// certify gives th a certificate with subject CN=cn valid in [nb, na].
func (p *pki) certify(t testing.TB, th *thing, cn string, nb, na time.Time) {
	t.Helper()
	cert, _, err := examplepki.IssueCert(p.ca, p.key, th.key.Public(), cn, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	th.cert = []*x509.Certificate{cert}
}

// issue certifies th for its own ID, valid for a day either side of now.
func (p *pki) issue(t testing.TB, th *thing) *thing {
	t.Helper()
	p.certify(t, th, th.id, time.Now().Add(-24*time.Hour), time.Now().Add(24*time.Hour))
	return th
}

// configWithCA returns the default configuration trusting a fresh CA.
func configWithCA(t testing.TB) (*amtest.Config, *pki) {
	t.Helper()
	p := newPKI(t, "thingway-test-ca")
	cfg := amtest.DefaultConfig()
	cfg.CertVerificationCAs = []*x509.Certificate{p.ca}
	return cfg, p
}

// newThingAlg makes a thing whose key signs with alg.
func newThingAlg(t testing.TB, id string, alg jose.SignatureAlgorithm) *thing {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.ES512:
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case jose.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case jose.PS256, jose.PS384, jose.PS512:
		k, err = rsaKey()
	default:
		t.Fatalf("no key type for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	kid, err := examplepki.Thumbprint(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &thing{id: id, key: k, kid: kid, alg: alg}
}

var (
	rsaOnce sync.Once
	rsaPriv *rsa.PrivateKey
	rsaErr  error
)

// rsaKey returns one 2048-bit RSA key shared by the PS* tests; AM does not
// tie the PS variant to the modulus size, and generating keys is slow
// under the race detector.
func rsaKey() (*rsa.PrivateKey, error) {
	rsaOnce.Do(func() { rsaPriv, rsaErr = rsa.GenerateKey(rand.Reader, 2048) })
	return rsaPriv, rsaErr
}

// jwk is the thing's public key as the SDK puts it in cnf.jwk (with x5c when
// the thing has a certificate).
func (th *thing) jwk() jose.JSONWebKey {
	k := th.publicJWK()
	k.Algorithm = ""
	k.Certificates = th.cert
	return k
}

// regClaims are the claims of the SDK's PoP registration JWT.
func (th *thing) regClaims(aud, nonce string, now time.Time, extra map[string]any) map[string]any {
	m := map[string]any{"sub": th.id, "aud": aud, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": nonce, "thingType": "device", "cnf": map[string]any{"jwk": th.jwk(), "kid": th.kid}}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	return m
}

// signJWT signs claims as the SDK signs PoP JWTs: header alg and typ only.
func (th *thing) signJWT(t testing.TB, claims any) string {
	t.Helper()
	return sign(t, th.key, th.alg, map[jose.HeaderKey]any{"typ": "JWT"}, claims)
}

// assertion is the SDK's client-assertion JWT: header kid, sub = iss = ID.
func (th *thing) assertion(t testing.TB, aud string, now time.Time, extra map[string]any) string {
	t.Helper()
	cl := map[string]any{"sub": th.id, "iss": th.id, "aud": aud, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "cnf": map[string]any{}}
	for k, v := range extra {
		cl[k] = v
	}
	return sign(t, th.key, th.alg, map[jose.HeaderKey]any{"typ": "JWT", "kid": th.kid}, cl)
}

// publisher is a software publisher with its own signing key.
type publisher struct {
	iss string
	key *ecdsa.PrivateKey
	kid string
}

func newPublisher(t testing.TB, iss string) *publisher {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := examplepki.Thumbprint(k.Public())
	return &publisher{iss: iss, key: k, kid: kid}
}

// jwkSet is the publisher's public JWK set as JSON text (the agent's jwkSet).
func (p *publisher) jwkSet(t testing.TB) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: p.key.Public(), KeyID: p.kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// configure makes p the realm's iot-software-publisher.
func (p *publisher) configure(t testing.TB, cfg *amtest.Config, realm string) {
	t.Helper()
	cfg.Realms[realm].SoftwarePublishers["iot-software-publisher"] = &amtest.SoftwarePublisher{
		Issuer: p.iss, PublicKeyLocation: "jwks", JWKSet: p.jwkSet(t), SigningAlgorithm: "ES256"}
}

// statement is a software statement vouching for the things' keys.
func (p *publisher) statement(t testing.TB, extra map[string]any, things ...*thing) string {
	t.Helper()
	var keys []jose.JSONWebKey
	for _, th := range things {
		keys = append(keys, th.publicJWK())
	}
	cl := map[string]any{"iss": p.iss, "software_id": "5a0b5f55-6b1e-4b1d-9a0e-2f2b7d4c0c11",
		"redirect_uris": []string{"https://client.example.com:8443/callback"}, "scope": "publish subscribe",
		"jwks": jose.JSONWebKeySet{Keys: keys}}
	for k, v := range extra {
		cl[k] = v
	}
	return sign(t, p.key, jose.ES256, map[jose.HeaderKey]any{"kid": p.kid}, cl)
}
