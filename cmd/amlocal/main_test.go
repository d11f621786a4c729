package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/internal/proctest"
)

// The tests below run the amlocal binary as a user would: built with
// go build, on a port of its own choosing (it prints its URL), stopped
// with signals.

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.Cleanup()
	os.Exit(code)
}

// startAmlocal starts amlocal with args (and extra environment).
func startAmlocal(t *testing.T, env []string, args ...string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, proctest.Build(t, "."), env, args...)
}

var urlLine = regexp.MustCompile(`(?m)^  URL +(\S+)\n`)

// serving waits until amlocal has printed its whole summary (it listens
// before it prints) and returns the URL it printed.
func serving(t *testing.T, p *proctest.Proc) string {
	t.Helper()
	out := p.Stdout.Wait("Press Ctrl-C to stop.\n")
	m := urlLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("amlocal printed no URL line:\n%s", out)
	}
	return m[1]
}

func newHTTPClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

type response struct {
	status int
	body   []byte
}

func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// do sends a request with headers given as "Name: value".
func do(t *testing.T, method, url, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	res, err := newHTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, body: b}
}

// adminLogin logs in as amAdmin/changeit with zero-page login and returns the SSO token.
func adminLogin(t *testing.T, base string) string {
	t.Helper()
	r := do(t, "POST", base+"/json/authenticate", "",
		"Content-Type: application/json", "X-OpenAM-Username: amAdmin", "X-OpenAM-Password: changeit",
		"Accept-API-Version: resource=2.0, protocol=1.0")
	if r.status != http.StatusOK {
		t.Fatalf("admin login: %d %s", r.status, r.body)
	}
	tok, _ := r.object(t)["tokenId"].(string)
	if tok == "" {
		t.Fatalf("admin login: no tokenId in %s", r.body)
	}
	return tok
}

func TestPersistsAcrossKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the amlocal binary")
	}
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"--listen", "127.0.0.1:0", "--data", data}
	jwks, err := os.ReadFile("../../resources/manual-thing.jwks")
	if err != nil {
		t.Fatal(err)
	}
	const userPath = "/json/realms/root/users/persist-thing"

	p := startAmlocal(t, nil, args...)
	base := serving(t, p)
	userURL := base + userPath
	tok := adminLogin(t, base)
	body, _ := json.Marshal(map[string]string{"userPassword": "5tr0ngG3n3r@ted", "thingType": "device", "thingKeys": strings.TrimSpace(string(jwks))})
	r := do(t, "PUT", userURL, string(body), "Content-Type: application/json",
		"Accept-API-Version: resource=4.0, protocol=2.1", "Cookie: iPlanetDirectoryPro="+tok)
	if r.status != http.StatusCreated {
		t.Fatalf("PUT identity: %d %s", r.status, r.body)
	}
	if !strings.Contains(p.Stdout.String(), "data        "+data) {
		t.Errorf("stdout does not name the data directory:\n%s", p.Stdout)
	}

	// SIGKILL: nothing is flushed at exit, so only what was on disk when
	// the PUT was acknowledged survives.
	p.Kill()

	p = startAmlocal(t, nil, args...)
	base = serving(t, p)
	userURL = base + userPath
	tok2 := adminLogin(t, base)
	r = do(t, "GET", userURL, "", "Accept-API-Version: resource=4.0, protocol=2.1", "Cookie: iPlanetDirectoryPro="+tok2)
	if r.status != http.StatusOK {
		t.Fatalf("GET identity after restart: %d %s", r.status, r.body)
	}
	got := r.object(t)
	if tt, _ := got["thingType"].([]any); len(tt) != 1 || tt[0] != "device" {
		t.Errorf("thingType after restart = %v, want [device]", got["thingType"])
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("manual-thing.jwks: %v", err)
	}
	if keys := fmt.Sprint(got["thingKeys"]); !strings.Contains(keys, set.Keys[0].KID) {
		t.Errorf("thingKeys after restart = %v, want the key %s", got["thingKeys"], set.Keys[0].KID)
	}

	// The admin session from before the kill is still valid.
	r = do(t, "POST", base+"/json/sessions?_action=validate", "", "Content-Type: application/json",
		"Accept-API-Version: resource=4.0", "Cookie: iPlanetDirectoryPro="+tok)
	if r.status != http.StatusOK {
		t.Fatalf("validate old session: %d %s", r.status, r.body)
	}
	if v := r.object(t); v["valid"] != true || v["uid"] != "amAdmin" {
		t.Errorf("validate old session = %s, want valid amAdmin", r.body)
	}
}

func TestSIGTERMExitsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the amlocal binary")
	}
	// The listen address comes from the environment.
	p := startAmlocal(t, []string{"AMLOCAL_LISTEN=127.0.0.1:0"})
	base := serving(t, p)
	p.Signal(syscall.SIGTERM)
	if code := p.Exit(); code != 0 {
		t.Errorf("exit status after SIGTERM = %d, want 0\nstderr:\n%s", code, p.Stderr)
	}
	out := p.Stdout.String()
	for _, want := range []string{base, "amAdmin (default password)", "in memory", "CN=Thingway Example CA",
		"iot-software-publisher, issuer https://soft-pub.example.com", "auth-tree"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "changeit") || strings.Contains(p.Stderr.String(), "changeit") {
		t.Errorf("the admin password was printed:\nstdout:\n%s\nstderr:\n%s", out, p.Stderr)
	}
	if !strings.Contains(p.Stderr.String(), "stopped") {
		t.Errorf("stderr lacks the stop log line:\n%s", p.Stderr)
	}
}

func TestBadInputExits1(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the amlocal binary")
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notPEM := write("not-a-cert.pem", "this is not a certificate\n")
	keyOnlyPEM := write("key-only.pem", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----\n")
	notJWKS := write("not.jwks", `{"kty": "EC"`)
	emptyJWKS := write("empty.jwks", `{"keys": []}`)
	secrets, err := filepath.Abs("../../resources/example.secrets")
	if err != nil {
		t.Fatal(err)
	}
	badConfig := write("bad-config.json", `{"realms": {"/": {"services": {"nope": {}}}}}`)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name string
		args []string
		want []string // substrings of stderr
	}{
		{"ca-cert not PEM", []string{"--ca-cert", notPEM}, []string{"amlocal: --ca-cert", notPEM, "no CERTIFICATE block"}},
		{"ca-cert without certificate", []string{"--ca-cert", keyOnlyPEM}, []string{"amlocal: --ca-cert", "no CERTIFICATE block"}},
		{"ca-cert missing", []string{"--ca-cert", filepath.Join(dir, "missing.pem")}, []string{"amlocal: --ca-cert", "no such file"}},
		{"publisher-jwks not JSON", []string{"--publisher-jwks", notJWKS}, []string{"amlocal: --publisher-jwks", "is not a JWK set"}},
		{"publisher-jwks empty", []string{"--publisher-jwks", emptyJWKS}, []string{"amlocal: --publisher-jwks", "has no keys"}},
		{"publisher-jwks private", []string{"--publisher-jwks", secrets}, []string{"amlocal: --publisher-jwks", "private"}},
		{"config unknown service", []string{"--config", badConfig}, []string{"amlocal: --config", `unsupported service "nope"`}},
		{"log level", []string{"--log-level", "loud"}, []string{"amlocal: --log-level", "debug, info, warn or error"}},
		{"tls half", []string{"--tls-cert", notPEM}, []string{"amlocal: --tls-cert and --tls-key must be given together"}},
		{"base path", []string{"--base-path", "openam"}, []string{"amlocal: --base-path", "must start with /"}},
		{"port in use", []string{"--listen", busy.Addr().String()}, []string{"amlocal: listen on " + busy.Addr().String(), "address already in use"}},
		{"argument", []string{"serve"}, []string{"amlocal: unexpected argument"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if args[0] != "--listen" {
				args = append([]string{"--listen", "127.0.0.1:0"}, args...)
			}
			p := startAmlocal(t, nil, args...)
			if code := p.Exit(); code != 1 {
				t.Errorf("exit status = %d, want 1", code)
			}
			stderr := p.Stderr.String()
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 {
				t.Errorf("stderr has %d lines, want one:\n%s", lines, stderr)
			}
			if p.Stdout.String() != "" {
				t.Errorf("stdout = %q, want nothing", p.Stdout)
			}
		})
	}
}

func TestDataDirInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the amlocal binary")
	}
	data := t.TempDir()
	p := startAmlocal(t, nil, "--listen", "127.0.0.1:0", "--data", data)
	serving(t, p)
	q := startAmlocal(t, nil, "--listen", "127.0.0.1:0", "--data", data)
	if code := q.Exit(); code != 1 {
		t.Errorf("second amlocal on the same data directory: exit status %d, want 1", code)
	}
	if want := "data directory " + data + " is in use"; !strings.Contains(q.Stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, q.Stderr)
	}
}

// TestImportAndAdminChanges starts a fresh local AM with --import, changes
// it through the admin REST API, kills it, and finds the changes after a
// restart without --import.
func TestImportAndAdminChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the amlocal binary")
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"services/iot/iot.json":               `{"oauthClientName":"forgerock-iot-oauth2-client","createOAuthClient":true,"attributeAllowlist":["thingConfig"]}`,
		"services/oauth-oidc.json":            `{"coreOAuth2Config":{"statelessTokensEnabled":true}}`,
		"nodes/IotAuthenticationNode/a1.json": `{"_id":"a1","jwtAuthenticationMethod":"PROOF_OF_POSSESSION","issueRestrictedToken":true,"additionalAudienceValues":[]}`,
		"trees/ThingAuth.json": `{"entryNodeId":"a1","nodes":{"a1":{"nodeType":"IotAuthenticationNode","displayName":"Authenticate Thing",
			"connections":{"success":"70e691a5-1e33-4ac3-a356-e7b6d60d92e0","failure":"e301438c-0bd0-429c-ab0c-66126501069a","register":"e301438c-0bd0-429c-ab0c-66126501069a"}}}}`,
		"realms/Fleet/realm.json":                         `{"aliases":["alias-fleet"]}`,
		"realms/Fleet/nodes/UsernameCollectorNode/u.json": `{}`,
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(t.TempDir(), "data")
	p := startAmlocal(t, nil, "--listen", "127.0.0.1:0", "--data", data, "--fresh", "--import", dir)
	base := serving(t, p)
	for _, want := range []string{"imported    " + dir, "realm /     trees ThingAuth, ldapService", "realm /Fleet trees \n"} {
		if !strings.Contains(p.Stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, p.Stdout)
		}
	}
	tok := adminLogin(t, base)
	hdr := []string{"Content-Type: application/json", "Accept-API-Version: protocol=2.0,resource=1.0", "iPlanetDirectoryPro: " + tok}
	r := do(t, "GET", base+"/json/realm-config/authentication/authenticationtrees/trees/ThingAuth", "", hdr...)
	if r.status != http.StatusOK {
		t.Fatalf("imported tree: %d %s", r.status, r.body)
	}
	r = do(t, "PUT", base+"/json/realm-config/authentication/authenticationtrees/nodes/PasswordCollectorNode/p?realm=alias-fleet", "{}",
		append(hdr, "If-None-Match: *")...)
	if r.status != http.StatusCreated {
		t.Fatalf("admin change: %d %s", r.status, r.body)
	}
	p.Kill()

	p = startAmlocal(t, nil, "--listen", "127.0.0.1:0", "--data", data)
	base = serving(t, p)
	if !strings.Contains(p.Stdout.String(), "from the data directory") {
		t.Errorf("stdout does not say the configuration was restored:\n%s", p.Stdout)
	}
	tok = adminLogin(t, base)
	hdr[2] = "iPlanetDirectoryPro: " + tok
	r = do(t, "GET", base+"/json/realm-config/authentication/authenticationtrees/nodes/PasswordCollectorNode/p?realm=/Fleet", "", hdr...)
	if r.status != http.StatusOK {
		t.Fatalf("admin change after restart: %d %s", r.status, r.body)
	}
	// The guide's configuration did not come back over the fresh one.
	r = do(t, "GET", base+"/json/realm-config/authentication/authenticationtrees/trees/auth-tree", "", hdr...)
	if r.status != http.StatusNotFound {
		t.Errorf("auth-tree after restart: %d %s", r.status, r.body)
	}

	// A broken import stops amlocal before it serves.
	bad := t.TempDir()
	os.MkdirAll(filepath.Join(bad, "trees"), 0o755)
	os.WriteFile(filepath.Join(bad, "trees", "T.json"), []byte(`{"entryNodeId":"nope","nodes":{}}`), 0o600)
	p2 := startAmlocal(t, nil, "--listen", "127.0.0.1:0", "--import", bad)
	if code := p2.Exit(); code != 1 || !strings.Contains(p2.Stderr.String(), "T.json") {
		t.Errorf("broken import: exit %d, stderr:\n%s", code, p2.Stderr)
	}
}

// --user creates a person who can sign in (the user who approves device
// codes), without printing the password.
func TestUserFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the amlocal binary")
	}
	p := startAmlocal(t, nil, "--listen", "127.0.0.1:0", "--user", "bjensen=Ch4ng31t=x")
	base := serving(t, p)
	r := do(t, "POST", base+"/json/authenticate", "", "X-OpenAM-Username: bjensen", "X-OpenAM-Password: Ch4ng31t=x",
		"Accept-API-Version: resource=2.0, protocol=1.0")
	if r.status != http.StatusOK {
		t.Fatalf("bjensen login: %d %s", r.status, r.body)
	}
	if strings.Contains(p.Stdout.String()+p.Stderr.String(), "Ch4ng31t") {
		t.Errorf("the user's password was printed")
	}
	p.Signal(syscall.SIGTERM)
	p.Exit()

	q := startAmlocal(t, nil, "--listen", "127.0.0.1:0", "--user", "no-password")
	if code := q.Exit(); code != 1 || !strings.Contains(q.Stderr.String(), "NAME=PASSWORD") {
		t.Errorf("--user without a password: exit %d, stderr %s", code, q.Stderr)
	}
}

// --max-jwt-lifetime caps a thing's PoP JWT (the SDK signs for 5
// minutes); 0 lifts the ceiling.
func TestTrustFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the amlocal binary")
	}
	for _, tc := range []struct {
		args  []string
		login bool
	}{
		{nil, true},
		{[]string{"--max-jwt-lifetime", "1m"}, false},
		{[]string{"--max-jwt-lifetime", "0"}, true},
	} {
		t.Run(strings.Join(append([]string{"flags"}, tc.args...), " "), func(t *testing.T) {
			p := startAmlocal(t, nil, append([]string{"--listen", "127.0.0.1:0"}, tc.args...)...)
			base := serving(t, p)
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			kid, _ := callback.Thumbprint(key.Public())
			set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Use: "sig"}}})
			body, _ := json.Marshal(map[string]string{"thingType": "device", "thingKeys": string(set)})
			r := do(t, "PUT", base+"/json/realms/root/users/flag-thing", string(body), "Content-Type: application/json",
				"Accept-API-Version: resource=4.0, protocol=2.1", "Cookie: iPlanetDirectoryPro="+adminLogin(t, base))
			if r.status != http.StatusCreated {
				t.Fatalf("PUT identity: %d %s", r.status, r.body)
			}
			c := &amclient.Client{URL: base, Realm: "/"}
			_, err = c.Authenticate(context.Background(), "auth-tree", callback.AuthenticateHandler{Audience: "/", ThingID: "flag-thing", Key: key})
			if tc.login != (err == nil) {
				t.Errorf("login with a 5-minute PoP JWT: %v, want success %v", err, tc.login)
			}
		})
	}
}

// AM's probes, and its Prometheus path behind --monitoring-password (from
// the environment here), whose value is never printed.
func TestProbesAndMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the amlocal binary")
	}
	p := startAmlocal(t, []string{"AMLOCAL_MONITORING_PASSWORD=s3cr3t-m0n"}, "--listen", "127.0.0.1:0")
	base := serving(t, p)
	for _, path := range []string{"/json/health/live", "/json/health/ready", "/isAlive.jsp"} {
		if r := do(t, "GET", base+path, ""); r.status != 200 {
			t.Errorf("%s = %d", path, r.status)
		}
	}
	if r := do(t, "GET", base+"/json/metrics/prometheus", ""); r.status != 401 {
		t.Errorf("metrics without credentials = %d", r.status)
	}
	req, _ := http.NewRequest("GET", base+"/json/metrics/prometheus", nil)
	req.SetBasicAuth("prometheus", "s3cr3t-m0n")
	res, err := newHTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "thingway_am_requests_total") {
		t.Errorf("metrics = %d %.200s", res.StatusCode, b)
	}
	p.Signal(syscall.SIGTERM)
	p.Exit()
	if strings.Contains(p.Stdout.String()+p.Stderr.String(), "s3cr3t-m0n") {
		t.Error("the monitoring password was printed")
	}
}
