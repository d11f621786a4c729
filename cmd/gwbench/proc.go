package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/thingway/thingway/coapx"
)

// benchGW is a gateway gwbench measures: in its own process (the
// cmd/gateway binary, or iot-edge's) or in gwbench's.
type benchGW interface {
	// address is the gateway's UDP address.
	address() string
	// trust is how things trust it; pinArg the same for the child
	// process's --pin.
	trust() coapx.Trust
	pinArg() string
	// metric sums the samples of a gateway metric (with label=value, if
	// label is given); -1 when the gateway has no metrics.
	metric(name, label, value string) float64
	// memory samples the gateway's process after a garbage collection.
	memory() (memSample, error)
	// cpu is the CPU seconds (user + system) the gateway's process has
	// used; false when the gateway shares gwbench's process.
	cpu() (float64, bool)
	// stop stops the gateway gracefully (SIGTERM, or Shutdown), which
	// saves its sessions when it has a session file.
	stop() error
}

// The values of --gateway-mode.
const (
	gwProcess   = "process"
	gwInProcess = "in-process"
)

// Gateway kinds a process can be.
const (
	kindThingway = "thingway" // cmd/gateway
	kindIoTEdge  = "iot-edge" // ForgeRock iot-edge v7.4's cmd/gateway
)

// procGateway is a gateway running as a child process.
type procGateway struct {
	kind    string
	cmd     *exec.Cmd
	addr    string
	metrics string // http://host:port, or "" (iot-edge)
	pin     []byte // nil: any certificate (iot-edge's changes every start)
	stdout  *lineWatch
	stderr  *lineWatch
	exited  chan struct{}
	waitErr error
	client  *http.Client
	// profileDir: where measure saves a CPU profile of each scenario's
	// window (--gateway-profile), "" for none.
	profileDir string
}

// procOptions are what a gateway process is started with beyond the
// bench's AM, identity and certificates.
type procOptions struct {
	addr        string        // UDP address; "" for a free loopback port
	parkAfter   time.Duration // 0: the gateway's default
	sessionFile string
	sessionKey  string // file
}

var (
	servingLine = regexp.MustCompile(`msg="gateway serving" address=(\S+)`)
	metricsLine = regexp.MustCompile(`msg="metrics serving" address=(\S+)`)
)

// startProcGateway starts bin (kind thingway or iot-edge) in front of the
// bench's AM, or a library server (kind pion or go-coap, this binary), and
// waits until it says it has started.
func (e *env) startProcGateway(ctx context.Context, kind, bin string, o procOptions) (*procGateway, error) {
	addr := o.addr
	if addr == "" {
		var err error
		if addr, err = freeUDPPort(e.s.Address); err != nil {
			return nil, err
		}
	}
	var args []string
	switch kind {
	case kindThingway:
		args = []string{"--url", e.amURL, "--name", benchGateway, "--realm", benchRealm, "--tree", benchTree,
			"--key", e.files.key, "--dtls-cert", e.files.dtlsCert, "--dtls-key", e.files.dtlsKey,
			"--address", addr, "--metrics-address", "127.0.0.1:0", "--pprof",
			"--max-sessions", strconv.Itoa(max(maxSessionsDefault, e.s.Things+2*e.s.Concurrency+64))}
		if o.parkAfter > 0 {
			args = append(args, "--park-after", o.parkAfter.String())
		}
		if o.sessionFile != "" {
			args = append(args, "--session-file", o.sessionFile, "--session-key", o.sessionKey)
		}
	case kindIoTEdge:
		// iot-edge's flags: --audience is required there; no metrics, no
		// stable DTLS certificate (a new key each start).
		args = []string{"--url", e.amURL, "--name", benchGateway, "--realm", benchRealm, "--audience", benchRealm,
			"--tree", benchTree, "--key", e.files.key, "--address", addr}
	case kindPion, kindGoCoAP:
		args = e.libraryArgs(kind, addr)
		var err error
		if bin, err = libraryBinary(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown gateway kind %q", kind)
	}
	g := &procGateway{kind: kind, addr: addr, exited: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}}
	switch kind {
	case kindThingway:
		g.pin, g.profileDir = e.pin, e.s.ProfileDir
	case kindPion, kindGoCoAP:
		g.pin = e.pin // the gateway's certificate
	}
	g.cmd = exec.Command(bin, args...)
	g.cmd.Env = append(os.Environ(), "GATEWAY_LOCAL_AM=127.0.0.1:0")
	stdout, err := g.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := g.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", g.what(), err)
	}
	g.stdout = watchLines(stdout, nil)
	g.stderr = watchLines(stderr, e.progress)
	go func() {
		<-g.stdout.done
		<-g.stderr.done
		g.waitErr = g.cmd.Wait()
		close(g.exited)
	}()
	fail := func(err error) (*procGateway, error) {
		g.kill()
		return nil, fmt.Errorf("%s (%s): %w\nstdout:\n%s\nstderr:\n%s", g.what(), bin, err, g.stdout.text(), g.stderr.text())
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if kind == kindPion || kind == kindGoCoAP {
		m, err := g.stderr.wait(wctx, libraryLine)
		if err != nil {
			return fail(err)
		}
		g.addr, g.metrics = m[1], "http://"+m[2]
		e.progress.printf("setup: %s server process %d at %s", kind, g.cmd.Process.Pid, g.addr)
		return g, nil
	}
	if _, err := g.stdout.wait(wctx, regexp.MustCompile(`IoT Gateway server started\.`)); err != nil {
		return fail(err)
	}
	if kind == kindThingway {
		m, err := g.stderr.wait(wctx, servingLine)
		if err != nil {
			return fail(err)
		}
		g.addr = m[1]
		if m, err = g.stderr.wait(wctx, metricsLine); err != nil {
			return fail(err)
		}
		g.metrics = "http://" + m[1]
	}
	e.progress.printf("setup: %s gateway process %d at %s", kind, g.cmd.Process.Pid, g.addr)
	return g, nil
}

// maxSessionsDefault is cmd/gateway's default --max-sessions.
const maxSessionsDefault = 10000

func (g *procGateway) address() string { return g.addr }

// what names the process in errors: "thingway gateway", "pion server".
func (g *procGateway) what() string {
	if g.kind == kindPion || g.kind == kindGoCoAP {
		return g.kind + " server"
	}
	return g.kind + " gateway"
}

func (g *procGateway) trust() coapx.Trust {
	if g.pin == nil {
		return coapx.Trust{InsecureAnyGateway: true}
	}
	return coapx.Trust{PinnedSHA256: g.pin}
}

func (g *procGateway) pinArg() string {
	if g.pin == nil {
		return pinAny
	}
	return hex.EncodeToString(g.pin)
}

func (g *procGateway) cpu() (float64, bool) {
	s, err := procCPU(g.cmd.Process.Pid)
	return s, err == nil
}

func (g *procGateway) get(path string) (string, error) {
	if g.metrics == "" {
		return "", errors.New("no metrics address")
	}
	res, err := g.client.Get(g.metrics + path)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, res.Status)
	}
	return string(b), err
}

func (g *procGateway) metric(name, label, value string) float64 {
	expo, err := g.get("/metrics")
	if err != nil {
		return -1
	}
	return metricSum(expo, name, label, value)
}

// metricSum sums the samples of name in a Prometheus text exposition
// whose labels include label="value" (all samples when label is "").
func metricSum(exposition, name, label, value string) float64 {
	var sum float64
	want := label + `="` + value + `"`
	for line := range strings.SplitSeq(exposition, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if label != "" && !strings.Contains(rest, want) {
			continue
		}
		if f, err := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64); err == nil {
			sum += f
		}
	}
	return sum
}

// memory collects garbage in the gateway (pprof's heap profile with
// gc=1, twice), then reads its Go runtime's figures from /metrics and its RSS
// from /proc. Without metrics (iot-edge) only the RSS.
func (g *procGateway) memory() (memSample, error) {
	m := memSample{Source: sourceProc, RSS: -1}
	if g.metrics != "" {
		// Twice, as sampleMemory collects twice (runtime.GC, then
		// debug.FreeOSMemory): what sync.Pools hold survives one
		// collection.
		for range 2 {
			if _, err := g.get("/debug/pprof/heap?gc=1"); err != nil {
				return m, err
			}
		}
		expo, err := g.get("/metrics")
		if err != nil {
			return m, err
		}
		v := func(name string) uint64 { return uint64(max(0, metricSum(expo, name, "", ""))) }
		m.Source = sourceMetrics
		m.HeapInuse, m.HeapAlloc, m.StackInuse = v("go_memstats_heap_inuse_bytes"), v("go_memstats_heap_alloc_bytes"), v("go_memstats_stack_inuse_bytes")
		m.Goroutines = int(v("go_goroutines"))
		m.FreeKept = int64(v("go_memstats_heap_idle_bytes")) - int64(v("go_memstats_heap_released_bytes"))
	}
	rss, err := procRSS(g.cmd.Process.Pid)
	if err != nil {
		return m, err
	}
	m.RSS = rss
	return m, nil
}

// stop sends SIGTERM and waits for the process to exit.
func (g *procGateway) stop() error {
	defer g.client.CloseIdleConnections()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-g.exited:
		if g.waitErr != nil {
			return fmt.Errorf("%s: %w\n%s", g.what(), g.waitErr, g.stderr.text())
		}
		return nil
	case <-time.After(30 * time.Second):
		g.kill()
		return fmt.Errorf("%s did not stop within 30s of SIGTERM; killed", g.what())
	}
}

func (g *procGateway) kill() {
	defer g.client.CloseIdleConnections()
	g.cmd.Process.Kill() //nolint:errcheck // it may have exited
	<-g.exited
}

// pinAny is the child's --pin for a gateway whose certificate is not
// pinned (iot-edge's).
const pinAny = "any"

// freeUDPPort returns a loopback UDP address on the host of like that was
// free a moment ago: iot-edge's gateway does not say which port it bound.
func freeUDPPort(like string) (string, error) {
	host, network := loopbackHost(like)
	h, _, _ := net.SplitHostPort(host)
	c, err := net.ListenPacket(network, net.JoinHostPort(h, "0"))
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}

// lineWatch reads a child's output line by line: it keeps the first
// lines (for waiting on them and for error messages) and passes warnings
// and errors on to the progress output.
type lineWatch struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced at each line
	done    chan struct{}
}

// keptLines bounds what a lineWatch keeps.
const keptLines = 2000

func watchLines(r io.Reader, forward *progress) *lineWatch {
	w := &lineWatch{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if forward != nil && (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) {
				forward.printf("gateway: %s", line)
			}
			w.mu.Lock()
			if len(w.lines) < keptLines {
				w.lines = append(w.lines, line)
			}
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
		}
		io.Copy(io.Discard, r) //nolint:errcheck // drain after a too long line
	}()
	return w
}

// wait returns the submatches of the first kept line that matches re,
// waiting for it until ctx ends or the output does.
func (w *lineWatch) wait(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	for {
		w.mu.Lock()
		for _, l := range w.lines {
			if m := re.FindStringSubmatch(l); m != nil {
				w.mu.Unlock()
				return m, nil
			}
		}
		changed := w.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-w.done:
			return nil, fmt.Errorf("the process ended its output without a line matching %q", re)
		case <-ctx.Done():
			return nil, fmt.Errorf("no line matching %q: %w", re, ctx.Err())
		}
	}
}

func (w *lineWatch) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// procCPU returns the user + system CPU seconds of process pid, from
// /proc/PID/stat.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// pid (comm) state ppid ...: the fields after the command, which may
	// hold spaces and parentheses itself; utime and stime are fields 14
	// and 15 of the line, 12th and 13th after the command.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return float64(u+k) / clockTicks, nil
}

// procRSS returns VmRSS of process pid in bytes.
func procRSS(pid int) (int64, error) {
	return statusRSS(filepath.Join("/proc", strconv.Itoa(pid), "status"))
}

// statusRSS reads VmRSS from a /proc/.../status file.
func statusRSS(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return n * 1024, nil
				}
			}
		}
	}
	return -1, fmt.Errorf("%s: no VmRSS", path)
}

// benchFiles are the gateway's key and DTLS certificate as files, for
// gateway processes.
type benchFiles struct {
	dir                    string
	key, dtlsCert, dtlsKey string
}

// writeFiles writes the gateway's signing key (PKCS#8, which iot-edge
// requires) and DTLS certificate and key into a new directory.
func (e *env) writeFiles() error {
	dir, err := os.MkdirTemp("", "gwbench-")
	if err != nil {
		return err
	}
	e.files = benchFiles{dir: dir, key: filepath.Join(dir, "gateway.key"),
		dtlsCert: filepath.Join(dir, "dtls.crt"), dtlsKey: filepath.Join(dir, "dtls.key")}
	write := func(path, typ string, der []byte) error {
		return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
	}
	key, err := x509.MarshalPKCS8PrivateKey(e.gwKey)
	if err != nil {
		return err
	}
	dkey, err := x509.MarshalPKCS8PrivateKey(e.gwCert.PrivateKey)
	if err != nil {
		return err
	}
	return errors.Join(write(e.files.key, "PRIVATE KEY", key), write(e.files.dtlsKey, "PRIVATE KEY", dkey),
		write(e.files.dtlsCert, "CERTIFICATE", e.gwCert.Certificate[0]))
}

// buildGateway builds cmd/gateway of this module into dir, for a run
// without --gateway-bin (from within the module's tree).
func buildGateway(ctx context.Context, dir string, p *progress) (string, error) {
	bin := filepath.Join(dir, "gateway")
	p.printf("setup: go build -o %s github.com/thingway/thingway/cmd/gateway", bin)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/thingway/thingway/cmd/gateway")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the gateway (run gwbench inside the module, or give --%s): %w\n%s", flagGatewayBin, err, out)
	}
	return bin, nil
}

// iotEdge runs c), a) and b) against iot-edge's gateway (--iot-edge-bin)
// in a process of its own, in front of the same AM, driven by the same
// things.
func (e *env) iotEdge(ctx context.Context) (*iotEdgeResult, error) {
	g, err := e.startProcGateway(ctx, kindIoTEdge, e.s.IoTEdgeBin, procOptions{})
	if err != nil {
		return nil, err
	}
	defer g.stop() //nolint:errcheck // measured already
	r := &iotEdgeResult{Binary: e.s.IoTEdgeBin}
	e.progress.printf("iot-edge c) memory per idle thing: started (%d DTLS sessions)", e.s.Things)
	if r.Idle, err = e.idleOn(ctx, g, idleProcess); err != nil {
		return nil, fmt.Errorf("memory per idle thing: %w", err)
	}
	e.progress.printf("iot-edge c) memory per idle thing: finished: %s RSS per thing", kib(r.Idle.RSSPerThing))
	e.progress.printf("iot-edge a) access tokens through the gateway: started (%d workers, %v)", e.s.Concurrency, e.s.Duration)
	conns := e.amConns.Load()
	if r.Tokens, err = e.tokensVia(ctx, g, "through iot-edge's gateway (CoAP/DTLS)"); err != nil {
		return nil, err
	}
	r.AMConns = e.amConns.Load() - conns
	e.progress.printf("iot-edge a) access tokens: finished: %d, %.1f/s, %d errors", r.Tokens.Ops, r.Tokens.PerSec, r.Tokens.Errors)
	e.progress.printf("iot-edge b) DTLS handshakes: started (%d workers, %v)", e.s.Concurrency, e.s.Duration)
	if r.Handshakes, err = e.handshakesOn(ctx, g, "iot-edge's gateway (DTLS handshake + CoAP ping)"); err != nil {
		return nil, err
	}
	e.progress.printf("iot-edge b) DTLS handshakes: finished: %d, %.1f/s, %d errors", r.Handshakes.Ops, r.Handshakes.PerSec, r.Handshakes.Errors)
	return r, nil
}

// profile fetches a CPU profile of the next d (in whole seconds, at
// least 1) from the gateway's /debug/pprof/ into profileDir, named after
// the scenario; the function it returns waits for it.
func (g *procGateway) profile(scenario string, d time.Duration) func() {
	words := strings.FieldsFunc(strings.ToLower(scenario), func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	})
	file := filepath.Join(g.profileDir, fmt.Sprintf("%s-%s.pprof", g.kind, strings.Join(words, "-")))
	done := make(chan struct{})
	go func() {
		defer close(done)
		b, err := g.get(fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(1, int(d.Round(time.Second).Seconds()))))
		if err == nil {
			err = os.WriteFile(file, []byte(b), 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "gwbench: CPU profile %s: %v\n", file, err)
		}
	}()
	return func() { <-done }
}

// snapshot saves a heap profile and the goroutines' stacks of the gateway
// process as they are now into profileDir, named after the scenario
// (<kind>-<name>-heap.pprof, <kind>-<name>-goroutines.txt).
func (g *procGateway) snapshot(name string) {
	for _, f := range []struct{ path, file string }{
		{"/debug/pprof/heap", name + "-heap.pprof"},
		{"/debug/pprof/goroutine?debug=1", name + "-goroutines.txt"},
	} {
		file := filepath.Join(g.profileDir, g.kind+"-"+f.file)
		b, err := g.get(f.path)
		if err == nil {
			err = os.WriteFile(file, []byte(b), 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "gwbench: profile %s: %v\n", file, err)
		}
	}
}
