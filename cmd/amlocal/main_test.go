package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests below run the amlocal binary as a user would: built with
// go build, on a free loopback port, stopped with signals.

// buildAmlocal builds the command into a temporary directory.
func buildAmlocal(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "amlocal")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address with a port that was free just now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// syncBuffer is a bytes.Buffer safe for a process's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running amlocal.
type proc struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{} // closed when the process has exited
	err            error         // Wait's result, set before done is closed
}

// startAmlocal starts bin with args (and extra environment) and stops it
// with SIGKILL when the test ends if it is still running.
func startAmlocal(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("amlocal %v stdout:\n%s\nstderr:\n%s", args, p.stdout, p.stderr)
		}
	})
	return p
}

// waitReady polls server info until it answers 200.
func (p *proc) waitReady(base string) {
	p.t.Helper()
	c := newHTTPClient()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			p.t.Fatalf("amlocal exited before it was ready: %v\nstderr:\n%s", p.err, p.stderr)
		default:
		}
		res, err := c.Get(base + "/json/serverinfo/*")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("amlocal did not answer %s/json/serverinfo/* within 30s\nstderr:\n%s", base, p.stderr)
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *proc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("amlocal did not exit within %v", d)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatalf("wait: %v", p.err)
	}
	return 0
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
	bin := buildAmlocal(t)
	addr := freeAddr(t)
	base := "http://" + addr + "/openam"
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"--listen", addr, "--data", data}
	jwks, err := os.ReadFile("../../resources/manual-thing.jwks")
	if err != nil {
		t.Fatal(err)
	}
	userURL := base + "/json/realms/root/users/persist-thing"

	p := startAmlocal(t, bin, nil, args...)
	p.waitReady(base)
	tok := adminLogin(t, base)
	body, _ := json.Marshal(map[string]string{"userPassword": "5tr0ngG3n3r@ted", "thingType": "device", "thingKeys": strings.TrimSpace(string(jwks))})
	r := do(t, "PUT", userURL, string(body), "Content-Type: application/json",
		"Accept-API-Version: resource=4.0, protocol=2.1", "Cookie: iPlanetDirectoryPro="+tok)
	if r.status != http.StatusCreated {
		t.Fatalf("PUT identity: %d %s", r.status, r.body)
	}
	if !strings.Contains(p.stdout.String(), "data        "+data) {
		t.Errorf("stdout does not name the data directory:\n%s", p.stdout)
	}

	// SIGKILL: nothing is flushed at exit, so only what was on disk when
	// the PUT was acknowledged survives.
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	p.wait(10 * time.Second)

	p = startAmlocal(t, bin, nil, args...)
	p.waitReady(base)
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
	bin := buildAmlocal(t)
	addr := freeAddr(t)
	base := "http://" + addr + "/openam"
	// The listen address comes from the environment.
	p := startAmlocal(t, bin, []string{"AMLOCAL_LISTEN=" + addr})
	p.waitReady(base)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(10 * time.Second); code != 0 {
		t.Errorf("exit status after SIGTERM = %d, want 0\nstderr:\n%s", code, p.stderr)
	}
	out := p.stdout.String()
	for _, want := range []string{base, "amAdmin (default password)", "in memory", "CN=Thingway Example CA",
		"iot-software-publisher, issuer https://soft-pub.example.com", "auth-tree"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "changeit") || strings.Contains(p.stderr.String(), "changeit") {
		t.Errorf("the admin password was printed:\nstdout:\n%s\nstderr:\n%s", out, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "stopped") {
		t.Errorf("stderr lacks the stop log line:\n%s", p.stderr)
	}
}

func TestBadInputExits1(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the amlocal binary")
	}
	bin := buildAmlocal(t)
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
			p := startAmlocal(t, bin, nil, args...)
			if code := p.wait(10 * time.Second); code != 1 {
				t.Errorf("exit status = %d, want 1", code)
			}
			stderr := p.stderr.String()
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 {
				t.Errorf("stderr has %d lines, want one:\n%s", lines, stderr)
			}
			if p.stdout.String() != "" {
				t.Errorf("stdout = %q, want nothing", p.stdout)
			}
		})
	}
}

func TestDataDirInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the amlocal binary")
	}
	bin := buildAmlocal(t)
	addr := freeAddr(t)
	data := t.TempDir()
	p := startAmlocal(t, bin, nil, "--listen", addr, "--data", data)
	p.waitReady("http://" + addr + "/openam")
	q := startAmlocal(t, bin, nil, "--listen", "127.0.0.1:0", "--data", data)
	if code := q.wait(10 * time.Second); code != 1 {
		t.Errorf("second amlocal on the same data directory: exit status %d, want 1", code)
	}
	if want := "data directory " + data + " is in use"; !strings.Contains(q.stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, q.stderr)
	}
}

// TestImportAndAdminChanges starts a fresh local AM with --import, changes
// it through the admin REST API, kills it, and finds the changes after a
// restart without --import.
func TestImportAndAdminChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the amlocal binary")
	}
	bin := buildAmlocal(t)
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
	addr := freeAddr(t)
	base := "http://" + addr + "/openam"
	data := filepath.Join(t.TempDir(), "data")
	p := startAmlocal(t, bin, nil, "--listen", addr, "--data", data, "--fresh", "--import", dir)
	p.waitReady(base)
	for _, want := range []string{"imported    " + dir, "realm /     trees ThingAuth, ldapService", "realm /Fleet trees \n"} {
		if !strings.Contains(p.stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, p.stdout)
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
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	p.wait(10 * time.Second)

	p = startAmlocal(t, bin, nil, "--listen", addr, "--data", data)
	p.waitReady(base)
	if !strings.Contains(p.stdout.String(), "from the data directory") {
		t.Errorf("stdout does not say the configuration was restored:\n%s", p.stdout)
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
	p2 := startAmlocal(t, bin, nil, "--listen", freeAddr(t), "--import", bad)
	if code := p2.wait(30 * time.Second); code != 1 || !strings.Contains(p2.stderr.String(), "T.json") {
		t.Errorf("broken import: exit %d, stderr:\n%s", code, p2.stderr)
	}
}

// --user creates a person who can sign in (the user who approves device
// codes), without printing the password.
func TestUserFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the amlocal binary")
	}
	bin := buildAmlocal(t)
	addr := freeAddr(t)
	base := "http://" + addr + "/openam"
	p := startAmlocal(t, bin, nil, "--listen", addr, "--user", "bjensen=Ch4ng31t=x")
	p.waitReady(base)
	r := do(t, "POST", base+"/json/authenticate", "", "X-OpenAM-Username: bjensen", "X-OpenAM-Password: Ch4ng31t=x",
		"Accept-API-Version: resource=2.0, protocol=1.0")
	if r.status != http.StatusOK {
		t.Fatalf("bjensen login: %d %s", r.status, r.body)
	}
	if strings.Contains(p.stdout.String()+p.stderr.String(), "Ch4ng31t") {
		t.Errorf("the user's password was printed")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(10 * time.Second)

	q := startAmlocal(t, bin, nil, "--listen", freeAddr(t), "--user", "no-password")
	if code := q.wait(10 * time.Second); code != 1 || !strings.Contains(q.stderr.String(), "NAME=PASSWORD") {
		t.Errorf("--user without a password: exit %d, stderr %s", code, q.stderr)
	}
}
