package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/thing"
)

// The idle-clients child process and the library servers are this test
// binary run again with a hidden subcommand: behave as gwbench then.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == childCommand || os.Args[1] == libraryCommand) {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// tiny is the smallest configuration: every scenario, briefly.
var tiny = []string{"gwbench", "--duration", "300ms", "--things", "2", "--concurrency", "1"}

func runApp(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = newApp(&out, &errb).RunContext(ctx, args)
	return out.String(), errb.String(), err
}

// The table names every figure, with the machine and the settings, and
// the progress lines say when each scenario started and finished.
//
// With one session per process, c) and d) open their two in two child
// processes and add up their figures, and e) takes the first thing.
func TestTable(t *testing.T) {
	defer func(n int) { maxProcessSessions = n }(maxProcessSessions)
	maxProcessSessions = 1
	profiles := t.TempDir()
	out, progress, err := runApp(t, append(tiny, "--gateway-profile", profiles, "--library-floor")...)
	if err != nil {
		t.Fatalf("gwbench: %v\n%s", err, progress)
	}
	for _, want := range []string{
		"machine:", "CPUs", "GOMAXPROCS", "go1.",
		"--duration 300ms --concurrency 1 --things 2",
		"a) PoP access tokens", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
		"through the gateway (CoAP/DTLS)", "direct to AM (HTTP)", "gateway/direct:",
		"b) DTLS handshakes", "handshakes/s",
		"c) memory per idle connected thing: 2 DTLS sessions",
		"heap in use", "RSS", "goroutines", "per idle thing", "gateway process (cmd/gateway)",
		"clients' own process, per thing", "load:", "cmd/gateway in a process of its own",
		"gateway process CPU:", "ms per request", "ms per handshake",
		"crypto floor of the server's side", "gateway CPU per handshake / crypto floor:",
		"RSS less the free heap the runtime kept",
		"d) memory per parked thing", "e) graceful restart", "0 new handshakes",
		"then one authentication step per thing: 1 answered",
		"gateway process, ", "s later",
		"g) the libraries' floor", "pion/dtls v3 alone (DTLS handshake + CoAP ping)", "go-coap v3's DTLS server (DTLS handshake + CoAP ping)",
		"CPU of the pion/dtls v3 alone process:", "CPU of the go-coap v3's DTLS server process:",
		"Thingway gateway / pion/dtls v3 alone: CPU per handshake", "Thingway gateway / go-coap v3's DTLS server: CPU per handshake",
		"RSS per idle thing", "pion/dtls v3 alone's CPU per handshake / crypto floor",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A CPU profile of the gateway process for a) through it and for b).
	for _, f := range []string{"thingway-through-the-gateway-coap-dtls.pprof", "thingway-gateway-dtls-handshake-coap-ping.pprof"} {
		if fi, err := os.Stat(filepath.Join(profiles, f)); err != nil || fi.Size() == 0 {
			t.Errorf("profile %s: %v", f, err)
		}
	}
	for _, want := range []string{
		"c) memory per idle thing: started", "c) memory per idle thing: finished",
		"a) access tokens through the gateway: started", "a) access tokens through the gateway: finished",
		"a) access tokens direct over HTTP: started", "a) access tokens direct over HTTP: finished",
		"b) DTLS handshakes: started", "b) DTLS handshakes: finished",
		"child process", "2 sessions open in 2 child processes",
		"d) memory per parked thing: finished", "e) graceful restart: finished",
		"g) pion server: memory per idle session: finished", "g) pion server: DTLS handshakes: finished",
		"g) go-coap server: memory per idle session: finished", "g) go-coap server: DTLS handshakes: finished",
	} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress lacks %q:\n%s", want, progress)
		}
	}
}

// --json has every figure as a number, here with the idle things in the
// same process.
func TestJSON(t *testing.T) {
	out, progress, err := runApp(t, append(tiny, "--json", "--idle-clients", "in-process", "--gateway-mode", "in-process")...)
	if err != nil {
		t.Fatalf("gwbench: %v\n%s", err, progress)
	}
	var r report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if r.Machine.NumCPU < 1 || r.Machine.GoVersion == "" || r.Settings.Concurrency != 1 || r.Settings.Things != 2 || r.Settings.DurationS != 0.3 {
		t.Errorf("machine/settings = %+v %+v", r.Machine, r.Settings)
	}
	// The crypto floor is measured in every run; a gateway in this process
	// has no CPU of its own.
	if f := r.Floor; f == nil || f.TotalMs <= 0 || f.ECDHEMs <= 0 || f.SignMs <= 0 || f.VerifyMs <= 0 || f.ChainMs <= 0 {
		t.Errorf("crypto floor = %+v", f)
	}
	if r.TokensGateway.CPUPerOpMs != 0 || r.Handshakes.CPUPerOpMs != 0 {
		t.Errorf("CPU figures for a gateway in gwbench's process: %+v %+v", r.TokensGateway, r.Handshakes)
	}
	for _, l := range []latency{r.TokensGateway, r.TokensDirect, r.Handshakes} {
		if l.Ops == 0 || l.PerSec <= 0 || l.Errors != 0 || l.P50ms <= 0 || l.P50ms > l.P90ms || l.P90ms > l.P99ms || l.P99ms > l.MaxMs {
			t.Errorf("%s: %+v", l.Name, l)
		}
	}
	// The gateway keeps its connections to AM: no new one per request.
	if r.AMConnsGateway > 2 {
		t.Errorf("%d new TCP connections to AM for %d proxied requests", r.AMConnsGateway, r.TokensGateway.Ops)
	}
	i := r.Idle
	if i == nil || i.Things != 2 || i.Clients != "in-process" || i.After.HeapInuse == 0 || i.Client != nil {
		t.Fatalf("idle = %+v", i)
	}
	if i.GoroutinesPerThing <= 0 {
		t.Errorf("idle sessions added no goroutines: %+v", i)
	}
	if _, err := os.Stat("/proc/self/status"); err == nil && (i.Before.RSS <= 0 || i.After.RSS <= 0) {
		t.Errorf("RSS not read: %+v", i)
	}
	// After the graceful restart every thing is answered without a handshake.
	if rs := r.Restart; rs == nil || rs.Things != 2 || rs.Answered != 2 || rs.Handshakes != 0 || rs.Resumed != 2 || rs.FileBytes == 0 {
		t.Errorf("graceful restart = %+v", rs)
	}
}

// gwbench sends traffic to loopback only.
func TestRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", ":5683", "[::]:0", "192.0.2.1:5683", "10.0.0.1:0", "example.com:0", "127.0.0.1"} {
		for _, flag := range []string{"--address", "--am-address"} {
			t.Run(flag+"="+addr, func(t *testing.T) {
				_, _, err := runApp(t, "gwbench", flag, addr)
				if err == nil || !strings.Contains(err.Error(), flag) {
					t.Fatalf("err = %v, want a refusal of %s", err, flag)
				}
				if strings.Contains(addr, ":") && addr != "127.0.0.1" && !errors.Is(err, errNotLoopback) {
					t.Errorf("err = %v, want errNotLoopback", err)
				}
			})
		}
	}
	_, _, err := runApp(t, "gwbench", childCommand, "--gateway", "192.0.2.1:5684", "--pin", strings.Repeat("00", 32))
	if !errors.Is(err, errNotLoopback) {
		t.Errorf("child: err = %v, want errNotLoopback", err)
	}
	for _, addr := range []string{"127.0.0.1:0", "127.1.2.3:5683", "[::1]:0", "localhost:0", "LOCALHOST:1"} {
		if err := checkLoopback(addr); err != nil {
			t.Errorf("checkLoopback(%q) = %v", addr, err)
		}
	}
}

// Out-of-bounds settings are refused before anything starts.
func TestBounds(t *testing.T) {
	for _, args := range [][]string{
		{"--duration", "0s"}, {"--duration", "11m"},
		{"--concurrency", "0"}, {"--concurrency", "100000"},
		{"--things", "0"}, {"--things", "1000000"},
		{"--things", strconv.Itoa(maxProcessSessions + 1), "--idle-clients", "in-process"},
		{"--idle-clients", "thread"},
		{"--gateway-mode", "thread"},
		{"--gateway-mode", "in-process", "--gateway-bin", os.Args[0]},
		{"--gateway-bin", "/nonexistent/gateway"},
		{"--iot-edge-bin", "/nonexistent/gateway"},
		{"--gateway-profile", "/nonexistent/dir"},
		{"--gateway-profile", os.TempDir(), "--gateway-mode", "in-process"},
		{"--iot-edge-bin", os.Args[0], "--idle-clients", "in-process"},
		{"extra-argument"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if _, _, err := runApp(t, append([]string{"gwbench"}, args...)...); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// A run that needs more local ports than the system's range is refused
// up front, with the fix in the message.
func TestLocalPorts(t *testing.T) {
	f := filepath.Join(t.TempDir(), "ip_local_port_range")
	if err := os.WriteFile(f, []byte("32768\t60999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkLocalPorts(f, 28232); err != nil {
		t.Errorf("28232 ports of 28232: %v", err)
	}
	err := checkLocalPorts(f, 28233)
	if err == nil || !strings.Contains(err.Error(), "28232 (32768-60999)") || !strings.Contains(err.Error(), "sysctl -w net.ipv4.ip_local_port_range") {
		t.Errorf("28233 ports of 28232: %v", err)
	}
	if err := checkLocalPorts(filepath.Join(t.TempDir(), "none"), 1<<20); err != nil {
		t.Errorf("no range file: %v", err)
	}
}

// A process opens as many sessions as its open-file limit allows, less
// what it keeps for its other files.
func TestProcessSessions(t *testing.T) {
	for limit, want := range map[int]int{20000: 19000, 1024: 512, 0: 15000} {
		if got := processSessions(limit); got != want {
			t.Errorf("processSessions(%d) = %d, want %d", limit, got, want)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50}, {0.9, 90}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := percentile(d, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing")
	}
}

// The process figures: CPU from /proc/PID/stat, RSS from
// /proc/PID/status, samples from a Prometheus exposition.
func TestProcFigures(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	pid := os.Getpid()
	c0, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the clock's 10 ms ticks show it.
	for x := 0; ; x++ {
		c1, err := procCPU(pid)
		if err != nil {
			t.Fatal(err)
		}
		if c1 > c0 {
			break
		}
		if x > 1e9 {
			t.Fatalf("CPU seconds stay at %v", c0)
		}
	}
	if rss, err := procRSS(pid); err != nil || rss < 1<<20 {
		t.Errorf("RSS %d, %v", rss, err)
	}
	expo := "# HELP x\nthingway_gateway_dtls_handshakes_total{result=\"ok\"} 7\nthingway_gateway_dtls_handshakes_total{result=\"failed\"} 2\n" +
		"thingway_gateway_dtls_handshakes_totalx 100\ngo_goroutines 12\n"
	if got := metricSum(expo, "thingway_gateway_dtls_handshakes_total", "", ""); got != 9 {
		t.Errorf("sum = %v, want 9", got)
	}
	if got := metricSum(expo, "thingway_gateway_dtls_handshakes_total", "result", "failed"); got != 2 {
		t.Errorf("failed = %v, want 2", got)
	}
	if got := metricSum(expo, "go_goroutines", "", ""); got != 12 {
		t.Errorf("go_goroutines = %v", got)
	}
}

// The pion library server answers a CoAP ping, and only a ping, with a
// reset of its message ID.
func TestPingReset(t *testing.T) {
	if rst, ok := pingReset([]byte{0x40, 0, 0x12, 0x34}); !ok || !bytes.Equal(rst, []byte{0x70, 0, 0x12, 0x34}) {
		t.Errorf("ping: %x %v", rst, ok)
	}
	for _, m := range [][]byte{
		{0x50, 0, 1, 2},    // non-confirmable
		{0x40, 0x01, 1, 2}, // GET
		{0x41, 0, 1, 2},    // a token length but no token
		{0x40, 0, 1},       // short
		{0x80, 0, 1, 2},    // version 2
	} {
		if _, ok := pingReset(m); ok {
			t.Errorf("%x taken for a ping", m)
		}
	}
}

// A library server stops on its context with sessions still open: pion's
// listener does not close the sessions it has handed out, nor does a
// session end by itself when its client is gone.
func TestLibraryServerStops(t *testing.T) {
	cert, err := coapx.SelfSignedCertificate(nil, "gwbench-library")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "dtls.crt"), filepath.Join(dir, "dtls.key")
	for f, b := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: cert.Certificate[0]}, keyFile: {Type: "PRIVATE KEY", Bytes: key}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pin := sha256.Sum256(cert.Certificate[0])
	for _, mode := range []string{kindPion, kindGoCoAP} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pr, pw := io.Pipe()
			ended := make(chan error, 1)
			go func() {
				ended <- runLibraryServer(ctx, mode, "127.0.0.1:0", certFile, keyFile, pw)
				pw.Close()
			}()
			sc := bufio.NewScanner(pr)
			var m []string
			for m == nil && sc.Scan() {
				m = libraryLine.FindStringSubmatch(sc.Text())
			}
			if m == nil {
				t.Fatalf("no serving line: %v", <-ended)
			}
			go io.Copy(io.Discard, pr) //nolint:errcheck // drain
			// Two sessions that stay open: the server's sessions are
			// waiting for records when it is told to stop.
			for range 2 {
				dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
				g, err := thing.DialGateway(dctx, thing.GatewayConfig{Address: m[1], Trust: coapx.Trust{PinnedSHA256: pin[:]}})
				dcancel()
				if err != nil {
					t.Fatalf("dial the %s server: %v", mode, err)
				}
				defer g.Close()
			}
			cancel()
			select {
			case err := <-ended:
				if err != nil {
					t.Errorf("the %s server: %v", mode, err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("the %s server did not stop with sessions open", mode)
			}
		})
	}
}
