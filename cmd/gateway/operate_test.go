package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/internal/examplepki"
	"github.com/thingway/thingway/internal/pemkey"
	"github.com/thingway/thingway/internal/proctest"
	"github.com/thingway/thingway/thing"
)

// switchableAM is an AM address that refuses every connection until up is
// called, then serves the local AM there: AM down at the gateway's start,
// then back, on the same address.
type switchableAM struct {
	l    net.Listener
	up   atomic.Bool
	conn chan net.Conn
}

func newSwitchableAM(t *testing.T) *switchableAM {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &switchableAM{l: l, conn: make(chan net.Conn)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(a.conn)
				return
			}
			if !a.up.Load() {
				c.Close() // down: the connection is reset at once
				continue
			}
			a.conn <- c
		}
	}()
	return a
}

func (a *switchableAM) url() string { return "http://" + a.l.Addr().String() + "/openam" }

// start serves the local AM (the guide's configuration and identities).
func (a *switchableAM) start(t *testing.T) {
	t.Helper()
	cfg := amtest.DefaultConfig()
	cfg.Realms["/"].Identities = amtest.GuideIdentities()
	am := &amtest.Server{Config: cfg, URL: a.url()}
	if err := am.Init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(am.Close)
	hs := &http.Server{Handler: am, ReadHeaderTimeout: 10 * time.Second}
	t.Cleanup(func() { hs.Close() })
	go hs.Serve(&chanListener{a: a, closed: make(chan struct{})}) //nolint:errcheck // ends with Close
	a.up.Store(true)
}

// chanListener hands the switchable AM's connections to an http.Server.
type chanListener struct {
	a      *switchableAM
	once   sync.Once
	closed chan struct{}
}

func (c *chanListener) Accept() (net.Conn, error) {
	select {
	case conn, ok := <-c.a.conn:
		if ok {
			return conn, nil
		}
	case <-c.closed:
	}
	return nil, net.ErrClosed
}
func (c *chanListener) Close() error   { c.once.Do(func() { close(c.closed) }); return nil }
func (c *chanListener) Addr() net.Addr { return c.a.l.Addr() }

var metricsLine = regexp.MustCompile(`msg="metrics serving" address=(\S+)`)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// metricValue returns the value of the sample of name whose labels
// include every one of labels ("" if there is none).
func metricValue(exposition, name string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err == nil {
			sum += f
		}
	}
	return sum
}

// The gateway starts with AM down and stays up: /livez answers, /readyz
// says 503 and why, things get 5.03 with Max-Age. Once AM answers on the
// same address, the gateway authenticates by itself (no restart), /readyz
// says 200 and a thing gets a token; /metrics shows it all.
func TestStartsWithoutAM(t *testing.T) {
	am := newSwitchableAM(t)
	p := start(t, nil, "--url", am.url(), "--name", "manual-gateway", "--realm", "/", "--tree", "auth-tree",
		"--key", eckey1, "--address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", "--timeout", "2s")
	metrics := "http://" + p.Stderr.WaitMatch(metricsLine)[1]
	p.Stdout.Wait("IoT Gateway server started.\n")
	addr := address(p)
	p.Stderr.Wait(`msg="AM does not answer yet`)

	if code, body := httpGet(t, metrics+"/livez"); code != 200 {
		t.Errorf("/livez = %d %s", code, body)
	}
	if code, body := httpGet(t, metrics+"/readyz"); code != 503 || !strings.Contains(body, "not authenticated with AM") {
		t.Errorf("/readyz with AM down = %d %q, want 503 and the reason", code, body)
	}
	cc := dialThing(t, addr, coapx.Trust{InsecureAnyGateway: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cc.Post(ctx, coapx.PathAuthenticate, coapx.AppJSON, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if maxAge, err := resp.GetOptionUint32(message.MaxAge); resp.Code() != codes.ServiceUnavailable || err != nil || maxAge < 1 {
		t.Errorf("/authenticate with AM down = %v, Max-Age %d (%v); want 5.03 with Max-Age", resp.Code(), maxAge, err)
	}

	am.start(t)
	if !proctest.Eventually(90*time.Second, func() bool { code, _ := httpGet(t, metrics+"/readyz"); return code == 200 }) {
		_, body := httpGet(t, metrics+"/readyz")
		t.Fatalf("/readyz did not become 200 after AM came up: %s", body)
	}
	b, err := os.ReadFile(eckey1)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pemkey.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := thing.DialGateway(ctx, thing.GatewayConfig{Address: addr, Trust: coapx.Trust{InsecureAnyGateway: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	th, err := thing.New(ctx, thing.Config{Connector: conn, ID: amtest.GuideThingID, Key: key})
	if err != nil {
		t.Fatalf("a thing after AM came up: %v", err)
	}
	if _, err := th.AccessToken(ctx, "publish"); err != nil {
		t.Fatal(err)
	}

	_, expo := httpGet(t, metrics+"/metrics")
	for _, c := range []struct {
		name   string
		labels []string
		least  float64
	}{
		{"thingway_gateway_authentications_total", []string{`result="failed"`}, 1},
		{"thingway_gateway_authentications_total", []string{`result="ok"`}, 1},
		{"thingway_gateway_am_reachable", nil, 1},
		{"thingway_gateway_am_calls_total", []string{`endpoint="authenticate"`, `outcome="ok"`}, 2},
		{"thingway_gateway_am_calls_total", []string{`endpoint="things"`, `outcome="ok"`}, 1},
		{"thingway_gateway_am_calls_total", []string{`outcome="unreachable"`}, 1},
		{"thingway_gateway_am_call_duration_seconds_count", []string{`endpoint="authenticate"`}, 2},
		{"thingway_gateway_coap_requests_total", []string{`path="authenticate"`, `code="ServiceUnavailable"`}, 1},
		{"thingway_gateway_coap_requests_total", []string{`path="accesstoken"`, `code="Changed"`}, 1},
		{"thingway_gateway_refusals_total", []string{`reason="not_ready"`}, 1},
		{"thingway_gateway_dtls_handshakes_total", []string{`result="ok"`}, 2},
		{"thingway_gateway_sessions", nil, 2},
		{"thingway_gateway_ready", nil, 1},
		{"go_goroutines", nil, 1},
		{"process_resident_memory_bytes", nil, 1},
	} {
		if v := metricValue(expo, c.name, c.labels...); v < c.least {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, v, c.least)
		}
	}
	if strings.Contains(expo, "eyJ") {
		t.Error("a JWT reached the metrics")
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Exit(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// writePEM writes blocks to a file in dir and returns its path.
func writePEM(t *testing.T, dir, name string, blocks ...*pem.Block) string {
	t.Helper()
	var b []byte
	for _, blk := range blocks {
		b = append(b, pem.EncodeToMemory(blk)...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// AM over HTTPS with a private CA made at run time, asking for a client
// certificate: the gateway logs in only with --am-ca (which replaces the
// system's roots) and --am-client-cert/--am-client-key.
func TestAMOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, caKey, err := examplepki.NewCA("AM Test CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	serverKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serverCert, _, err := examplepki.IssueServerCert(ca, caKey, serverKey.Public(), "am.test", nil, []net.IP{net.IPv4(127, 0, 0, 1)}, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clientCert, _, err := examplepki.IssueCert(ca, caKey, clientKey.Public(), "manual-gateway", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	clientDER, _ := x509.MarshalPKCS8PrivateKey(clientKey)
	caFile := writePEM(t, dir, "ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	certFile := writePEM(t, dir, "client.pem", &pem.Block{Type: "CERTIFICATE", Bytes: clientCert.Raw})
	keyFile := writePEM(t, dir, "client.key", &pem.Block{Type: "PRIVATE KEY", Bytes: clientDER})

	cfg := amtest.DefaultConfig()
	cfg.Realms["/"].Identities = amtest.GuideIdentities()
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{serverCert.Raw}, PrivateKey: serverKey}},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + l.Addr().String() + "/openam"
	am := &amtest.Server{Config: cfg, URL: url}
	if err := am.Init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(am.Close)
	hs := &http.Server{Handler: am, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go hs.Serve(l) //nolint:errcheck // ends with Close
	t.Cleanup(func() { hs.Close() })

	args := []string{"--url", url, "--name", "manual-gateway", "--realm", "/", "--tree", "auth-tree", "--key", eckey1,
		"--address", "127.0.0.1:0", "--timeout", "2s"}
	for _, c := range []struct {
		name  string
		extra []string
		ok    bool
	}{
		{"system roots", nil, false},
		{"CA without client certificate", []string{"--am-ca", caFile}, false},
		{"CA and client certificate", []string{"--am-ca", caFile, "--am-client-cert", certFile, "--am-client-key", keyFile}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := start(t, nil, append(args, c.extra...)...)
			// Either line comes before the serving line.
			out := p.Stderr.Wait(`msg="gateway serving"`)
			if got := strings.Contains(out, `msg="gateway authenticated"`); got != c.ok {
				t.Errorf("authenticated = %v, want %v\n%s", got, c.ok, out)
			}
			if !c.ok && !strings.Contains(out, "certificate") {
				t.Errorf("the failure does not say it is about a certificate:\n%s", out)
			}
			p.Signal(syscall.SIGTERM)
			p.Exit()
		})
	}
}

// The systemd unit in resources/ is one systemd accepts, with the binary
// in place (systemd-analyze verify; skipped where systemd is not installed).
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile("../../resources/systemd/thingway-gateway.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/thingway-gateway", proctest.Build(t, "."))
	text = strings.ReplaceAll(text, "/etc/thingway/", dir+"/")
	for _, f := range []string{"gateway.env", "gateway.key.pem", "gateway-dtls.cert.pem", "gateway-dtls.key.pem"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o600)
	}
	path := filepath.Join(dir, "thingway-gateway.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// --config: a YAML file of the flags' names; environment variables and
// flags override it; an unknown key stops the start with its line.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfg, []byte("# settings\naddress: 127.0.0.1:0\nmax-sessions: 500\nidle-timeout: 2h\nmax-auth-per-minute: 12\ndebug: true\n"), 0o600)
	p := start(t, []string{"GATEWAY_MAX_SESSIONS=7"}, "--config", cfg, "--idle-timeout", "3h")
	line := p.Stderr.WaitMatch(servingAddr)[0]
	for _, want := range []string{"max_sessions=7", "idle_timeout=3h0m0s", "max_auth_per_minute=12"} {
		if !strings.Contains(line, want) {
			t.Errorf("serving line lacks %s: %s", want, line)
		}
	}
	// stdout is another pipe: wait for the line there too.
	p.Stdout.Wait("\tdebug: true\n")
	p.Signal(syscall.SIGTERM)
	p.Exit()

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("address: 127.0.0.1:0\nidel-timeout: 2h\n"), 0o600)
	q := start(t, nil, "--config", bad)
	if code := q.Exit(); code != 1 {
		t.Errorf("exit status %d", code)
	}
	if want := "gateway: " + bad + ":2: unknown key \"idel-timeout\" (did you mean idle-timeout?)\n"; q.Stderr.String() != want {
		t.Errorf("stderr = %q, want %q", q.Stderr, want)
	}
}

// The sysctl drop-in in resources/ lets the kernel grant the UDP receive
// buffer the gateway asks for.
func TestSysctlDropIn(t *testing.T) {
	b, err := os.ReadFile("../../resources/systemd/99-thingway-gateway.conf")
	if err != nil {
		t.Fatal(err)
	}
	var rmemMax int
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "net.core.rmem_max" {
			rmemMax, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if rmemMax < gateway.UDPReadBuffer {
		t.Errorf("net.core.rmem_max = %d in the drop-in, want at least gateway.UDPReadBuffer, %d", rmemMax, gateway.UDPReadBuffer)
	}
}
