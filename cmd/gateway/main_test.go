package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/urfave/cli/v2"

	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/internal/pemkey"
	"github.com/thingway/thingway/internal/proctest"
)

// The tests run the gateway binary as a user would: built with go build,
// on a free loopback port, stopped with signals.

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.Cleanup()
	os.Exit(code)
}

// start starts the gateway with args (and extra environment).
func start(t *testing.T, env []string, args ...string) *proctest.Proc {
	t.Helper()
	// Never the fixed default port of the local AM (127.0.0.1:8080): a
	// free one, unless the test says otherwise.
	return proctest.Start(t, proctest.Build(t, "."), append([]string{"GATEWAY_LOCAL_AM=127.0.0.1:0"}, env...), args...)
}

var servingAddr = regexp.MustCompile(`msg="gateway serving" address=(\S+).*\n`)

// address waits for the serving line on stderr (logged once the gateway
// listens) and returns the UDP address in it.
func address(p *proctest.Proc) string { return p.Stderr.WaitMatch(servingAddr)[1] }

// dialThing connects a thing (a throwaway certificate) to the gateway at
// addr over DTLS, with the given trust; closed when the test ends.
func dialThing(t *testing.T, addr string, trust coapx.Trust) *udpclient.Conn {
	t.Helper()
	cert, _ := coapx.SelfSignedCertificate(nil, "thing")
	opts, err := coapx.ClientOptions(cert, trust)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := dtls.Dial(addr, dtls.NewDTLSClientOptions(opts...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// ping checks the gateway answers /aminfo over DTLS, with the given trust.
func ping(t *testing.T, addr string, trust coapx.Trust) callback.AMInfo {
	t.Helper()
	cc := dialThing(t, addr, trust)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cc.Get(ctx, coapx.PathAMInfo)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code() != codes.Content {
		t.Fatalf("/aminfo = %v", resp.Code())
	}
	b, _ := resp.ReadBody()
	var info callback.AMInfo
	json.Unmarshal(b, &info)
	return info
}

// Without --url, the gateway starts the local AM, registers itself there,
// prints iot-edge's lines and stops on SIGTERM with exit status 0, logging
// its session out.
func TestLocalAM(t *testing.T) {
	p := start(t, nil, "--address", "127.0.0.1:0")
	p.Stdout.Wait("IoT Gateway server started.\n")
	out := p.Stdout.String()
	want := regexp.MustCompile(`^Provided commandline options:
	url: http://127\.0\.0\.1:\d+/openam
	realm: /
	tree: auth-tree
	name: thingway-gateway
	address: 127\.0\.0\.1:0
	key: 
	kid: [A-Za-z0-9_-]{43}=
	certificate: 
	timeout 5s
	debug: false
Local AM started at http://127\.0\.0\.1:\d+/openam \(.*\)\.
Local AM identities manual-thing and manual-gateway registered with the example key \(resources/manual-thing\.jwks\)\.
Connect a thing: \./run\.sh example thing/manual-registration -name manual-thing -url coap://127\.0\.0\.1:(\d+)
IoT Gateway server started\.
$`)
	if !want.MatchString(out) {
		t.Errorf("stdout:\n%q", out)
	}
	info := ping(t, address(p), coapx.Trust{InsecureAnyGateway: true})
	if !strings.HasPrefix(info.AccessTokenURL, "http://127.0.0.1:") {
		t.Errorf("aminfo %+v", info)
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Exit(); code != 0 {
		t.Errorf("exit status %d\nstderr:\n%s", code, p.Stderr)
	}
	if !strings.HasSuffix(p.Stdout.String(), "IoT Gateway server started.\nIoT Gateway server shutting down.\n") {
		t.Errorf("stdout:\n%s", p.Stdout)
	}
	if !strings.Contains(p.Stderr.String(), "gateway session logged out") {
		t.Errorf("the gateway's session was not logged out:\n%s", p.Stderr)
	}
}

// The local AM listens where ./run.sh am does by default, so that the
// README's curl commands reach it; a taken port stops the start with a
// hint.
func TestLocalAMAddress(t *testing.T) {
	for _, f := range newApp(io.Discard, io.Discard).Flags {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Name == flagLocalAM && sf.Value != "127.0.0.1:8080" {
			t.Errorf("--%s defaults to %q", flagLocalAM, sf.Value)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := start(t, nil, "--address", "127.0.0.1:0", "--local-am", l.Addr().String())
	if code := p.Exit(); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	want := "local AM: listen tcp " + l.Addr().String() + ": bind: address already in use (is ./run.sh am running? Give --url to use it, or --local-am 127.0.0.1:0 for any free port)\n"
	if errOut := p.Stderr.String(); !logLine.MatchString(errOut) || !strings.HasSuffix(errOut, want) {
		t.Errorf("stderr = %q, want one line gateway: ...%q", errOut, want)
	}
}

// newAM starts a local AM on a loopback port; admin returns its
// administrator token.
func newAM(t *testing.T) (*amtest.Server, string) {
	t.Helper()
	am := amtest.NewServer()
	t.Cleanup(am.Close)
	req, _ := http.NewRequest("POST", am.URL+"/json/authenticate", nil)
	req.Header.Set("X-OpenAM-Username", "amAdmin")
	req.Header.Set("X-OpenAM-Password", "changeit")
	req.Header.Set("Accept-API-Version", "resource=2.0, protocol=1.0")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v struct{ TokenID string }
	json.NewDecoder(res.Body).Decode(&v)
	return am, v.TokenID
}

func adminDo(t *testing.T, am *amtest.Server, admin, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, am.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-API-Version", "resource=4.0, protocol=2.1")
	req.Header.Set("Cookie", "iPlanetDirectoryPro="+admin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

const eckey1 = "../../resources/eckey1.key.pem"

// The evaluation guide's manual-registration command (flags from the
// environment work too): the block shows the effective key ID.
func TestManualGateway(t *testing.T) {
	am, admin := newAM(t)
	b, _ := os.ReadFile(eckey1)
	key, err := pemkey.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := callback.Thumbprint(key.Public())
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Use: "sig"}}})
	body, _ := json.Marshal(map[string]any{"thingType": "gateway", "thingKeys": string(set)})
	if code, b := adminDo(t, am, admin, "PUT", "/json/realms/root/users/manual-gateway", body); code != 201 {
		t.Fatalf("identity: %d %s", code, b)
	}
	p := start(t, []string{"GATEWAY_TIMEOUT=3s", "GATEWAY_REALM=/"},
		"--name", "manual-gateway", "--url", am.URL, "--audience", "/", "--tree", "auth-tree",
		"--key", eckey1, "--address", "127.0.0.1:0", "--debug")
	p.Stdout.Wait("IoT Gateway server started.\n")
	want := "Provided commandline options:\n\turl: " + am.URL + "\n\trealm: /\n\ttree: auth-tree\n\tname: manual-gateway\n" +
		"\taddress: 127.0.0.1:0\n\tkey: " + eckey1 + "\n\tkid: " + kid + "\n\tcertificate: \n\ttimeout 3s\n\tdebug: true\n" +
		"IoT Gateway server started.\n"
	if got := p.Stdout.String(); got != want {
		t.Errorf("stdout:\n%q\nwant\n%q", got, want)
	}
	ping(t, address(p), coapx.Trust{InsecureAnyGateway: true})
	// The request line is written once the answer is out.
	p.Stderr.Wait(`msg="coap request"`)
	if strings.Contains(p.Stderr.String(), "AQIC") || strings.Contains(p.Stderr.String(), "eyJ") {
		t.Error("a token or JWT reached the log")
	}
	p.Signal(syscall.SIGINT)
	if code := p.Exit(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// The guide's dynamic-registration command: the gateway registers itself
// with its certificate (thing type gateway).
func TestDynamicGateway(t *testing.T) {
	am, admin := newAM(t)
	p := start(t, nil, "--name", "dynamic-gateway", "--url", am.URL, "--audience", "/", "--realm", "/",
		"--tree", "auth-reg-tree", "--key", eckey1, "--cert", "../../resources/dynamic-gateway.cert.pem", "--address", "127.0.0.1:0")
	p.Stdout.Wait("IoT Gateway server started.\n")
	if !strings.Contains(p.Stdout.String(), "\tcertificate: ../../resources/dynamic-gateway.cert.pem\n") {
		t.Errorf("stdout:\n%s", p.Stdout)
	}
	code, b := adminDo(t, am, admin, "GET", "/json/realms/root/users/dynamic-gateway", nil)
	if code != 200 || !strings.Contains(string(b), `"gateway"`) {
		t.Errorf("identity: %d %s", code, b)
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Exit(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// --dtls-cert/--dtls-key give a stable identity that things can pin.
func TestStableDTLSCertificate(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert, err := coapx.SelfSignedCertificate(key, "gateway.example")
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(dir, "c.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	os.WriteFile(filepath.Join(dir, "k.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	p := start(t, []string{"GATEWAY_DTLS_CERT=" + filepath.Join(dir, "c.pem")}, "--address", "127.0.0.1:0",
		"--dtls-key", filepath.Join(dir, "k.pem"), "--log-format", "json")
	p.Stdout.Wait("IoT Gateway server started.\n")
	p.Stderr.Wait(`"msg":"gateway serving"`)
	var addr string
	var readBuffer float64
	for _, line := range strings.Split(p.Stderr.String(), "\n") {
		var v map[string]any
		if json.Unmarshal([]byte(line), &v) == nil && v["msg"] == "gateway serving" {
			addr, _ = v["address"].(string)
			readBuffer, _ = v["udp_read_buffer"].(float64)
		}
	}
	if addr == "" {
		t.Fatalf("no JSON serving line:\n%s", p.Stderr)
	}
	// The gateway asks for a 4 MiB UDP receive buffer, which Linux grants
	// up to net.core.rmem_max.
	if b, err := os.ReadFile("/proc/sys/net/core/rmem_max"); err == nil {
		max, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if want := min(4<<20, max); int(readBuffer) != want {
			t.Errorf("udp_read_buffer = %v, want %d (4 MiB, or rmem_max %d)", readBuffer, want, max)
		}
	}
	if strings.Contains(p.Stderr.String(), "no DTLS certificate configured") {
		t.Error("warned about a missing DTLS certificate")
	}
	sum := sha256.Sum256(cert.Certificate[0])
	ping(t, addr, coapx.Trust{PinnedSHA256: sum[:]})
	p.Signal(syscall.SIGTERM)
	p.Exit()
}

var logLine = regexp.MustCompile(`^gateway: .+\n$`)

// Start-up failures: one line "gateway: ..." on stderr, exit status 1.
func TestStartupFailures(t *testing.T) {
	for _, c := range []struct {
		name      string
		args      []string
		stderr    string
		hasBlock  bool
		blockLine string
	}{
		{"missing key file", []string{"--url", "http://127.0.0.1:1/openam", "--name", "g", "--tree", "t", "--key", "/nonexistent/key.pem", "--kid", ""},
			"open /nonexistent/key.pem: no such file or directory", true, "\tkid: \n"},
		{"required flags", []string{"--url", "http://127.0.0.1:1/openam", "--address", ":0"},
			`the required flags --key, --name and --tree were not specified`, false, ""},
		{"not a key", []string{"--key", "../../resources/dynamic-gateway.cert.pem", "--address", "127.0.0.1:0"},
			"no private key found", true, "\tkid: \n"},
		{"log format", []string{"--log-format", "xml"}, `--log-format "xml"`, false, ""},
		{"duration without unit", []string{"--timeout", "5"}, "--timeout 5: a duration needs a unit, such as 5s or 5m", false, ""},
		{"unknown flag", []string{"--bogus"}, "flag provided but not defined: -bogus (see --help)", false, ""},
		{"misspelt flag", []string{"--idle-timeuot", "1h"}, "flag provided but not defined: -idle-timeuot (did you mean --idle-timeout? see --help)", false, ""},
		{"port in use", []string{"--address", "127.0.0.1:" + busyUDPPort(t)}, "address already in use", true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := start(t, nil, c.args...)
			if code := p.Exit(); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			errOut := p.Stderr.String()
			if !logLine.MatchString(errOut) || !strings.Contains(errOut, c.stderr) {
				t.Errorf("stderr = %q, want one line gateway: ... with %q", errOut, c.stderr)
			}
			out := p.Stdout.String()
			if c.hasBlock != strings.HasPrefix(out, "Provided commandline options:\n") {
				t.Errorf("stdout = %q", out)
			}
			if c.hasBlock && !strings.Contains(out, c.blockLine) {
				t.Errorf("stdout = %q, want %q", out, c.blockLine)
			}
			if strings.Contains(out, "server started") {
				t.Error("printed started")
			}
		})
	}
}

// busyUDPPort holds a UDP port for the test and returns it.
func busyUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	return port
}

// With --log-format json a start-up error is one JSON record.
func TestStartupFailureJSON(t *testing.T) {
	p := start(t, nil, "--log-format", "json", "--address", "127.0.0.1:"+busyUDPPort(t))
	if code := p.Exit(); code != 1 {
		t.Errorf("exit status %d", code)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(p.Stderr.String()), &rec); err != nil || rec["level"] != "ERROR" ||
		!strings.Contains(fmt.Sprint(rec["error"]), "address already in use") {
		t.Errorf("stderr = %q, want one JSON record with the error", p.Stderr)
	}
}

// The example DTLS identity in resources/ (what ./run.sh gateway presents)
// verifies against the example CA.
func TestExampleDTLSIdentity(t *testing.T) {
	b, err := os.ReadFile("../../resources/example-ca.cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("example CA")
	}
	p := start(t, nil, "--address", "127.0.0.1:0",
		"--dtls-cert", "../../resources/gateway-dtls.cert.pem", "--dtls-key", "../../resources/gateway-dtls.key.pem")
	p.Stdout.Wait("IoT Gateway server started.\n")
	ping(t, address(p), coapx.Trust{RootCAs: pool, ServerName: "thingway-gateway"})
	p.Signal(syscall.SIGTERM)
	if code := p.Exit(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

var connectLine = regexp.MustCompile(`(?m)^Connect a thing: \./run\.sh example (\S+) (.*)\n`)

// The two-command quickstart: ./run.sh gateway (the example DTLS identity,
// the local AM with the guide's identities), then the command it prints,
// the guide's "Connect a thing to the gateway", gets a token with no other
// step.
func TestQuickstart(t *testing.T) {
	p := start(t, nil, "--address", "127.0.0.1:0",
		"--dtls-cert", "../../resources/gateway-dtls.cert.pem", "--dtls-key", "../../resources/gateway-dtls.key.pem")
	m := p.Stdout.WaitMatch(connectLine)
	example := proctest.Build(t, filepath.Join("../../examples", m[1]))
	q := proctest.Start(t, example, nil, strings.Fields(m[2])...)
	if code := q.Exit(); code != 0 {
		t.Fatalf("%s %s: exit status %d\n%s", m[1], m[2], code, q.Stdout)
	}
	want := regexp.MustCompile(`^Creating Thing manual-thing\.\.\. Done
Requesting access token\.\.\. Done
Access token: \S+
Expires in: 3599
Scope\(s\): \[publish\]
$`)
	if out := q.Stdout.String(); !want.MatchString(out) {
		t.Errorf("%s output:\n%s", m[1], out)
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Exit(); code != 0 {
		t.Errorf("gateway exit status %d", code)
	}
}

// --version prints the module version and revision of the build.
func TestVersionFlag(t *testing.T) {
	p := start(t, nil, "--version")
	if code := p.Exit(); code != 0 || !strings.HasPrefix(p.Stdout.String(), "gateway version ") {
		t.Errorf("--version: exit %d, stdout %q", code, p.Stdout)
	}
}
