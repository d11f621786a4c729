package amtest_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/internal/examplepki"
)

// client talks to a local AM over real HTTP exactly as curl and the SDK do.
type client struct {
	t    testing.TB
	srv  *amtest.Server
	http *http.Client
}

func newClient(t testing.TB, srv *amtest.Server) *client {
	t.Helper()
	return &client{t: t, srv: srv, http: srv.Client()}
}

// startServer starts a default local AM and closes it when the test ends.
func startServer(t testing.TB, configure ...func(*amtest.Server)) (*amtest.Server, *client) {
	t.Helper()
	srv := amtest.NewUnstartedServer()
	for _, f := range configure {
		f(srv)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, newClient(t, srv)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// do sends a request; headers are "Name: value" strings.
func (c *client) do(method, url string, body []byte, headers ...string) response {
	c.t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		if strings.EqualFold(strings.TrimSpace(k), "Host") {
			req.Host = strings.TrimSpace(v)
			continue
		}
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// adminLogin performs the guide's zero-page login and returns the tokenId.
func (c *client) adminLogin() string {
	c.t.Helper()
	r := c.do("POST", c.srv.URL+"/json/authenticate", nil, "Content-Type: application/json",
		"X-OpenAM-Username: amAdmin", "X-OpenAM-Password: changeit", "Accept-API-Version: resource=2.0, protocol=1.0")
	if r.status != 200 {
		c.t.Fatalf("admin login: %d %s", r.status, r.body)
	}
	return r.json(c.t)["tokenId"].(string)
}

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

// callbacks is an AM callback response.
type callbacks struct {
	AuthID    string           `json:"authId"`
	Callbacks []map[string]any `json:"callbacks"`
	TokenID   string           `json:"tokenId"`
}

func (c *client) authURL(tree, realm string) string {
	u := c.srv.URL + "/json/authenticate?authIndexType=service&authIndexValue=" + tree
	if realm != "" {
		u += "&realm=" + realm
	}
	return u
}

func (c *client) authStep(url string, body any) (response, callbacks) {
	c.t.Helper()
	b, _ := json.Marshal(body)
	r := c.do("POST", url, b, "Content-Type: application/json", "Accept-API-Version: protocol=1.0,resource=2.1")
	var cb callbacks
	if r.status == 200 {
		json.Unmarshal(r.body, &cb)
	}
	return r, cb
}

// hidden returns the value output of the HiddenValueCallback with id.
func hidden(t testing.TB, cb callbacks, id string) (index int, value string) {
	t.Helper()
	for i, c := range cb.Callbacks {
		var v, got string
		for _, o := range c["output"].([]any) {
			m := o.(map[string]any)
			switch m["name"] {
			case "value":
				v, _ = m["value"].(string)
			case "id":
				got, _ = m["value"].(string)
			}
		}
		if got == id {
			return i, v
		}
	}
	t.Fatalf("no %s callback in %+v", id, cb.Callbacks)
	return 0, ""
}

// answer fills the input of callback i.
func answer(cb callbacks, i int, value string) callbacks {
	in := cb.Callbacks[i]["input"].([]any)
	in[0].(map[string]any)["value"] = value
	return cb
}

// authenticatePoP runs the PoP flow of the Authenticate Thing node and
// returns the tokenId.
func (c *client) authenticatePoP(th *thing, tree, realm, aud string) (string, response) {
	c.t.Helper()
	u := c.authURL(tree, realm)
	r, cb := c.authStep(u, map[string]any{})
	if r.status != 200 {
		return "", r
	}
	i, nonce := hidden(c.t, cb, "jwt-pop-authentication")
	jwtStr := sign(c.t, th.key, th.alg, map[jose.HeaderKey]any{"typ": "JWT"}, th.popClaims(aud, nonce, c.clock()))
	r, cb = c.authStep(u, answer(cb, i, jwtStr))
	return cb.TokenID, r
}

// signedRequest sends a request signed the way the SDK signs restricted requests.
func (c *client) signedRequest(th *thing, method, url, api, token string, nonce int64, payload map[string]any) response {
	c.t.Helper()
	if payload == nil {
		payload = map[string]any{}
	}
	payload["csrf"] = token
	body := signPayload(c.t, th, url, api, nonce, payload)
	return c.do(method, url, []byte(body), "Content-Type: application/jose", "Accept-API-Version: "+api,
		"Cookie: iPlanetDirectoryPro="+token)
}

func signPayload(t testing.TB, th *thing, aud, api string, nonce int64, payload any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: th.alg, Key: th.key},
		&jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"aud": aud, "api": api, "nonce": nonce}})
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

const thingsAPI = "protocol=2.0,resource=1.0"

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
