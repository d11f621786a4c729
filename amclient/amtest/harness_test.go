package amtest_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
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
	// now is the clock the client puts into the JWTs it signs. If nil, time.Now.
	now func() time.Time
}

func (c *client) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
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

// --- helpers shared by the behaviour tests ---

// fakeClock is a settable clock for Server.Time; safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// startWith starts a server with cfg (nil: the default) and optional tweaks.
func startWith(t testing.TB, cfg *amtest.Config, tweak ...func(*amtest.Server)) (*amtest.Server, *client) {
	t.Helper()
	return startServer(t, append([]func(*amtest.Server){func(s *amtest.Server) { s.Config = cfg }}, tweak...)...)
}

// startClocked starts a server whose clock the test controls; the client
// signs its JWTs with the same clock.
func startClocked(t testing.TB, cfg *amtest.Config, tweak ...func(*amtest.Server)) (*amtest.Server, *client, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	srv, c := startWith(t, cfg, append([]func(*amtest.Server){func(s *amtest.Server) { s.Time = clk.Now }}, tweak...)...)
	c.now = clk.Now
	return srv, c, clk
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

// addTree adds a tree to the realm: auth → (register) → reg, or reg alone
// when auth is nil, or auth alone (register → Failure) when reg is nil.
func addTree(cfg *amtest.Config, realm, name string, auth *amtest.IoTAuthenticationNode, reg *amtest.IoTRegistrationNode) {
	r := cfg.Realms[realm]
	authID, regID := name+"-auth-node", name+"-reg-node"
	tree := &amtest.Tree{Nodes: map[string]*amtest.TreeNode{}}
	if reg != nil {
		r.Nodes[regID] = &amtest.Node{Type: amtest.NodeTypeIoTRegistration, Registration: reg}
		tree.Nodes[regID] = &amtest.TreeNode{DisplayName: "Register Thing", NodeType: amtest.NodeTypeIoTRegistration,
			Connections: map[string]string{"success": amtest.SuccessNodeID, "failure": amtest.FailureNodeID}}
		tree.EntryNodeID = regID
	}
	if auth != nil {
		register := amtest.FailureNodeID
		if reg != nil {
			register = regID
		}
		r.Nodes[authID] = &amtest.Node{Type: amtest.NodeTypeIoTAuthentication, Authentication: auth}
		tree.Nodes[authID] = &amtest.TreeNode{DisplayName: "Authenticate Thing", NodeType: amtest.NodeTypeIoTAuthentication,
			Connections: map[string]string{"success": amtest.SuccessNodeID, "failure": amtest.FailureNodeID, "register": register}}
		tree.EntryNodeID = authID
	}
	r.Trees[name] = tree
}

func popNode(restricted bool, extraAud ...string) *amtest.IoTAuthenticationNode {
	return &amtest.IoTAuthenticationNode{JWTAuthenticationMethod: amtest.AuthProofOfPossession, IssueRestrictedToken: restricted, AdditionalAudienceValues: extraAud}
}

func assertionNode(extraAud ...string) *amtest.IoTAuthenticationNode {
	return &amtest.IoTAuthenticationNode{JWTAuthenticationMethod: amtest.AuthClientAssertion, AdditionalAudienceValues: extraAud}
}

func regNode(method string) *amtest.IoTRegistrationNode {
	return &amtest.IoTRegistrationNode{JWTRegistrationMethod: method, VerifySubject: method == amtest.RegPoPWithCertificate, CreateIdentity: true}
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

// uniqueID returns a fresh thing name.
func uniqueID(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + "-" + base64.RawURLEncoding.EncodeToString(b)
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

// answers maps a callback (HiddenValueCallback id, or callback type for the
// others) to a function from its output value to the input to send.
type answers map[string]func(value string) string

// loginResult is the end of a callback exchange.
type loginResult struct {
	token  string
	r      response
	rounds [][]string // callback keys of each callback response, in order
}

func callbackKey(cb map[string]any) (key, value string) {
	key, _ = cb["type"].(string)
	for _, o := range cb["output"].([]any) {
		m := o.(map[string]any)
		switch m["name"] {
		case "value", "prompt":
			value, _ = m["value"].(string)
		case "id":
			if id, _ := m["value"].(string); key == "HiddenValueCallback" {
				key = id
			}
		}
	}
	return key, value
}

// login runs a tree from {} to a tokenId or a non-200, answering callbacks with a.
func (c *client) login(url string, a answers) loginResult {
	c.t.Helper()
	var res loginResult
	r, cb := c.authStep(url, map[string]any{})
	for round := 0; round < 10 && r.status == 200 && cb.TokenID == ""; round++ {
		var keys []string
		for i, callback := range cb.Callbacks {
			k, v := callbackKey(callback)
			keys = append(keys, k)
			f := a[k]
			if f == nil {
				c.t.Fatalf("unexpected callback %s in %s", k, r.body)
			}
			answer(cb, i, f(v))
		}
		res.rounds = append(res.rounds, keys)
		r, cb = c.authStep(url, cb)
	}
	res.token, res.r = cb.TokenID, r
	return res
}

// popAnswer answers jwt-pop-authentication for th with audience aud.
func (c *client) popAnswer(th *thing, aud string) func(string) string {
	return func(nonce string) string { return th.signJWT(c.t, th.popClaims(aud, nonce, c.clock())) }
}

// regAnswer answers jwt-pop-registration for th with audience aud.
func (c *client) regAnswer(th *thing, aud string, extra map[string]any) func(string) string {
	return func(nonce string) string { return th.signJWT(c.t, th.regClaims(aud, nonce, c.clock(), extra)) }
}

func constant(s string) func(string) string { return func(string) string { return s } }

// putIdentity creates or updates an identity with the guide's PUT.
func (c *client) putIdentity(admin, realm, id string, attrs map[string]any, headers ...string) response {
	c.t.Helper()
	body, _ := json.Marshal(attrs)
	return c.do("PUT", c.srv.URL+"/json"+realmJSON(realm)+"/users/"+id, body, append([]string{"Content-Type: application/json",
		"Accept-API-Version: resource=4.0, protocol=2.1", "iPlanetDirectoryPro: " + admin}, headers...)...)
}

// getIdentity reads an identity as admin (resource 4.0).
func (c *client) getIdentity(admin, realm, id string) response {
	c.t.Helper()
	return c.do("GET", c.srv.URL+"/json"+realmJSON(realm)+"/users/"+id, nil,
		"Accept-API-Version: resource=4.0, protocol=2.1", "iPlanetDirectoryPro: "+admin)
}

// createThing creates th's identity in realm with its key and extra attributes.
func (c *client) createThing(admin, realm string, th *thing, extra map[string]any) {
	c.t.Helper()
	attrs := map[string]any{"userPassword": "5tr0ngG3n3r@ted", "thingType": "device", "thingKeys": th.jwks(c.t)}
	for k, v := range extra {
		attrs[k] = v
	}
	if r := c.putIdentity(admin, realm, th.id, attrs); r.status != 201 {
		c.t.Fatalf("create %s: %d %s", th.id, r.status, r.body)
	}
}

// realmJSON turns "/a/b" into "/realms/root/realms/a/realms/b".
func realmJSON(realm string) string {
	p := "/realms/root"
	for _, part := range strings.Split(strings.Trim(realm, "/"), "/") {
		if part != "" {
			p += "/realms/" + part
		}
	}
	return p
}

// mustPoP authenticates th on tree in realm ("/" in the URL) with aud = realm and fails the test otherwise.
func (c *client) mustPoP(th *thing, tree, realm string) string {
	c.t.Helper()
	tok, r := c.authenticatePoP(th, tree, realm, realm)
	if tok == "" {
		c.t.Fatalf("PoP authentication of %s on %s: %d %s", th.id, tree, r.status, r.body)
	}
	return tok
}

// thingsURL is the things endpoint URL for an action ("" for attributes) in realm.
func (c *client) thingsURL(action, realm string) string {
	u := c.srv.URL + "/json/things/*"
	sep := "?"
	if action != "" {
		u += "?_action=" + action
		sep = "&"
	}
	if realm != "" {
		u += sep + "realm=" + realm
	}
	return u
}

// thingsJSON calls the things endpoint with an unrestricted token and a JSON body.
func (c *client) thingsJSON(method, url, token string, body any) response {
	c.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	return c.do(method, url, b, "Content-Type: application/json", "Accept-API-Version: "+thingsAPI, "Cookie: iPlanetDirectoryPro="+token)
}

// session is a restricted session with its nonce counter, as the SDK keeps it.
type restricted struct {
	c     *client
	th    *thing
	token string
	nonce int64
}

func (c *client) restrictedSession(th *thing, token string) *restricted {
	return &restricted{c: c, th: th, token: token}
}

// do sends a signed request with the next nonce.
func (s *restricted) do(method, url, api string, payload map[string]any) response {
	s.c.t.Helper()
	r := s.c.signedRequest(s.th, method, url, api, s.token, s.nonce, payload)
	s.nonce++
	return r
}

func (s *restricted) things(method, action, realm string, payload map[string]any) response {
	s.c.t.Helper()
	return s.do(method, s.c.thingsURL(action, realm), thingsAPI, payload)
}

// expectCREST checks a CREST error body: status, code, reason and, when
// msg is not empty, a message containing msg.
func expectCREST(t testing.TB, r response, status int, msg string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	m := r.json(t)
	if m["code"] != float64(status) || m["reason"] != http.StatusText(status) {
		t.Errorf("CREST body = %s, want code %d reason %q", r.body, status, http.StatusText(status))
	}
	if got, _ := m["message"].(string); got == "" || !strings.Contains(got, msg) {
		t.Errorf("CREST message = %q, want it to contain %q", got, msg)
	}
	return m
}

// expectOAuth checks an OAuth 2.0 error body.
func expectOAuth(t testing.TB, r response, status int, code string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d: %s", r.status, status, r.body)
	}
	m := r.json(t)
	if m["error"] != code {
		t.Errorf("OAuth error = %s, want error %q", r.body, code)
	}
	if _, has := m["code"]; has {
		t.Errorf("OAuth error has a CREST code: %s", r.body)
	}
	return m
}

// expectThingsOAuth checks a things-endpoint OAuth failure: a CREST body
// whose detail carries the OAuth error, and whose text contains substr.
func expectThingsOAuth(t testing.TB, r response, code, substr string) {
	t.Helper()
	m := expectCREST(t, r, 400, "")
	d, _ := m["detail"].(map[string]any)
	if d["error"] != code {
		t.Errorf("detail = %v, want error %q", m["detail"], code)
	}
	if !strings.Contains(string(r.body), substr) {
		t.Errorf("body %s does not contain %q", r.body, substr)
	}
	if _, has := m["access_token"]; has {
		t.Errorf("an error carries a token: %s", r.body)
	}
}

func expectStatus(t testing.TB, r response, status int) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d: %s", r.status, status, r.body)
	}
	return r.json(t)
}

// loginFailed checks AM's generic authentication failure.
func loginFailed(t testing.TB, r response) {
	t.Helper()
	expectCREST(t, r, 401, "Login failure")
	if strings.Contains(string(r.body), "tokenId") {
		t.Errorf("failure carries a tokenId: %s", r.body)
	}
}

// jwtClaims decodes a JWT's claims without verifying it.
func jwtClaims(t testing.TB, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a JWT", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// rawJWS assembles a compact JWS from a header, a payload and a signature.
func rawJWS(header, payload any, sig []byte) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "." + enc.EncodeToString(sig)
}

// stringList reads a JSON array of strings from m[k].
func stringList(m map[string]any, k string) []string {
	l, ok := m[k].([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(l))
	for _, v := range l {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}
