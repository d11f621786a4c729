package amtest_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest"
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

// uniqueID returns a fresh thing name.
func uniqueID(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + "-" + base64.RawURLEncoding.EncodeToString(b)
}

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
