// Package amadmin is a client of the local AM's REST API for the module's
// tests: admin login, identities, requests with AM's headers. It sends what
// the evaluation guide's curl commands send (zero-page login with the
// X-OpenAM-Username and X-OpenAM-Password headers, the identity PUT and GET
// with AM's Accept-API-Version and the SSO token as iPlanetDirectoryPro
// cookie) and fails the test, through the testing.TB it is given, when AM's
// answer is not the expected one.
//
// It also holds the throw-away PKI material tests present to AM: a
// certificate authority the local AM is configured to trust ([CA]) and a
// software publisher that signs software statements ([Publisher]). Both
// mint with [examplepki]; they add the test's failure reporting and the
// validity windows and claims the tests share.
//
// It is for tests only: no package of the module imports it from non-test
// code (docs/layout.md names it in no row's "may import" column, and
// `go test ./internal/layout` holds the module to that). It talks to AM
// only over HTTP and links no local AM.
package amadmin

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/internal/examplepki"
)

// The administrator of the local AM's default configuration.
const (
	AdminUser     = "amAdmin"
	AdminPassword = "changeit"
)

// Accept-API-Version headers of the endpoints the client calls, as
// "Name: value" for [Client.Do].
const (
	// AuthenticateVersion is /json/authenticate's.
	AuthenticateVersion = "Accept-API-Version: resource=2.0, protocol=1.0"
	// IdentityVersion is the identity endpoint's (/json/realms/.../users).
	IdentityVersion = "Accept-API-Version: resource=4.0, protocol=2.1"
)

// Client sends requests to one AM and fails T's test when one cannot be
// sent or an identity request is refused.
type Client struct {
	T testing.TB
	// URL is AM's base URL, the deployment path included
	// ("http://127.0.0.1:8080/openam"); request paths are appended to it.
	URL string
	// HTTPClient sends the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Realm is the realm of the identities the client creates and reads:
	// "" or "/" for the top-level realm, "/a/b" for a sub-realm.
	Realm string
	// Token is the SSO token the identity requests send as the
	// iPlanetDirectoryPro cookie; [Admin] sets it.
	Token string
}

// Admin returns a client of the AM at url, logged in as the administrator
// ([AdminUser], [AdminPassword]).
func Admin(t testing.TB, url string, hc *http.Client) *Client {
	t.Helper()
	c := &Client{T: t, URL: url, HTTPClient: hc}
	c.Token = c.Login(AdminUser, AdminPassword)
	return c
}

// Do sends a request for path (below URL) with body and headers given as
// "Name: value", and returns the status code and body of the answer.
func (c *Client) Do(method, path string, body []byte, headers ...string) (int, []byte) {
	c.T.Helper()
	return c.DoURL(method, c.URL+path, body, headers...)
}

// DoURL is Do for a whole URL (a verification URI AM gave, say).
func (c *Client) DoURL(method, url string, body []byte, headers ...string) (int, []byte) {
	c.T.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		c.T.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		c.T.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.T.Fatal(err)
	}
	return res.StatusCode, b
}

// Login signs user in with zero-page login (POST /json/authenticate with
// the X-OpenAM-Username and X-OpenAM-Password headers) and returns the SSO
// token. It does not change Token.
func (c *Client) Login(user, password string) string {
	c.T.Helper()
	code, b := c.Do("POST", "/json/authenticate", nil, "X-OpenAM-Username: "+user, "X-OpenAM-Password: "+password,
		AuthenticateVersion)
	var v struct{ TokenID string }
	json.Unmarshal(b, &v)
	if code != 200 || v.TokenID == "" {
		c.T.Fatalf("login %s: %d %s", user, code, b)
	}
	return v.TokenID
}

// usersPath is the identity endpoint of Realm.
func (c *Client) usersPath() string {
	p := "/json/realms/root"
	for _, r := range strings.Split(strings.Trim(c.Realm, "/"), "/") {
		if r != "" {
			p += "/realms/" + r
		}
	}
	return p + "/users/"
}

// CreateIdentity creates identity id with attrs, as the evaluation guide's
// manual registration does (PUT /json/realms/root/users/{id}), and fails
// the test unless AM answers 201.
func (c *Client) CreateIdentity(id string, attrs map[string]any) {
	c.T.Helper()
	b, _ := json.Marshal(attrs)
	code, body := c.Do("PUT", c.usersPath()+id, b, "Content-Type: application/json",
		IdentityVersion, "Cookie: iPlanetDirectoryPro="+c.Token)
	if code != 201 {
		c.T.Fatalf("create %s: %d %s", id, code, body)
	}
}

// Identity creates identity id of thingType with key's public part as its
// thingKeys ([KeySet], no alg; none if key is nil) and the extra attrs.
func (c *Client) Identity(id, thingType string, key crypto.Signer, attrs map[string]any) {
	c.T.Helper()
	a := map[string]any{"thingType": thingType}
	if key != nil {
		a["thingKeys"] = KeySet(c.T, key, "")
	}
	maps.Copy(a, attrs)
	c.CreateIdentity(id, a)
}

// ReadIdentity returns identity id as the administrator sees it, and fails
// the test unless AM answers 200.
func (c *Client) ReadIdentity(id string) map[string]any {
	c.T.Helper()
	code, body := c.Do("GET", c.usersPath()+id, nil, IdentityVersion, "Cookie: iPlanetDirectoryPro="+c.Token)
	if code != 200 {
		c.T.Fatalf("read %s: %d %s", id, code, body)
	}
	var v map[string]any
	json.Unmarshal(body, &v)
	return v
}

// KeySet returns the JWK set (JSON) of key's public part as an identity's
// thingKeys hold it: kid its thumbprint ([callback.Thumbprint]), use sig,
// and alg if not "".
func KeySet(t testing.TB, key crypto.Signer, alg string) string {
	t.Helper()
	kid, err := callback.Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(set)
}

// CA is a throw-away certificate authority of a test: the local AM
// verifies the certificates it issues once its configuration lists Cert
// (Config.CertVerificationCAs).
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	t    testing.TB
}

// NewCA makes a CA with common name cn, valid from an hour ago for 48
// hours.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	notBefore := time.Now().Add(-time.Hour)
	cert, key, err := examplepki.NewCA(cn, notBefore, notBefore.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, Key: key, t: t}
}

// Issue issues a certificate for key's public part with common name cn,
// valid from an hour ago to an hour from now, and returns it as a chain
// of one, as a thing presents it.
func (ca *CA) Issue(key crypto.Signer, cn string) []*x509.Certificate {
	ca.t.Helper()
	c, _, err := examplepki.IssueCert(ca.Cert, ca.Key, key.Public(), cn, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		ca.t.Fatal(err)
	}
	return []*x509.Certificate{c}
}

// StatementIssuer is the iss of every software statement a [Publisher]
// signs.
const StatementIssuer = "https://soft-pub.example.com"

// Publisher is a software publisher of a test, with an ES256 key: the
// local AM accepts its software statements once a software publisher's
// JWK set is [Publisher.JWKSet].
type Publisher struct {
	Key   *ecdsa.PrivateKey
	KeyID string
	// SoftwareID, if not "", is the software_id claim of its statements.
	SoftwareID string
	t          testing.TB
}

// NewPublisher makes a publisher with a fresh P-256 key whose key id is
// kid, or the key's thumbprint if kid is "".
func NewPublisher(t testing.TB, kid string) *Publisher {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if kid == "" {
		if kid, err = callback.Thumbprint(key.Public()); err != nil {
			t.Fatal(err)
		}
	}
	return &Publisher{Key: key, KeyID: kid, t: t}
}

// JWKSet returns the JWK set (JSON) of the publisher's public key: kid
// KeyID, alg ES256, use sig.
func (p *Publisher) JWKSet() string {
	p.t.Helper()
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: p.Key.Public(), KeyID: p.KeyID, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		p.t.Fatal(err)
	}
	return string(set)
}

// Statement returns a software statement for key: a compact JWS signed
// ES256 by the publisher (header kid KeyID) with the claims iss
// ([StatementIssuer]), software_id (if SoftwareID is set) and jwks, key's
// public part with kid its thumbprint, alg ES256, use sig.
func (p *Publisher) Statement(key crypto.Signer) string {
	p.t.Helper()
	kid, err := callback.Thumbprint(key.Public())
	if err != nil {
		p.t.Fatal(err)
	}
	claims := map[string]any{"iss": StatementIssuer,
		"jwks": jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}}}}
	if p.SoftwareID != "" {
		claims["software_id"] = p.SoftwareID
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		p.t.Fatal(err)
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: p.Key, KeyID: p.KeyID}}, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	j, err := sg.Sign(payload)
	if err != nil {
		p.t.Fatal(err)
	}
	out, err := j.CompactSerialize()
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}
