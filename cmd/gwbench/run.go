package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// progress writes timestamped progress lines.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

// Write passes other output (the gateway's warnings, the child process's
// stderr) through, serialised with the progress lines.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.w.Write(b)
}

func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "[%6.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// machine describes where the figures come from.
type machine struct {
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	GoVersion  string `json:"go_version"`
	CPU        string `json:"cpu,omitempty"`
}

func thisMachine() machine {
	return machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GOOS: runtime.GOOS,
		GOARCH: runtime.GOARCH, GoVersion: runtime.Version(), CPU: cpuModel()}
}

// cpuModel is the first "model name" of /proc/cpuinfo, if any.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// report is everything gwbench prints; --json prints it as is.
type report struct {
	Date     time.Time `json:"date"`
	Machine  machine   `json:"machine"`
	Settings settings  `json:"settings"`
	Gateway  string    `json:"gateway_address"`
	AM       string    `json:"am_url"`

	TokensGateway latency `json:"tokens_gateway"`
	// AMConnsGateway is the TCP connections to AM opened during the
	// gateway scenario: near zero when the gateway keeps its connections.
	AMConnsGateway int64          `json:"am_connections_gateway"`
	TokensDirect   latency        `json:"tokens_direct"`
	Handshakes     latency        `json:"handshakes"`
	Idle           *idleResult    `json:"idle"`
	Parked         *parkedResult  `json:"parked"`
	Restart        *restartResult `json:"graceful_restart"`
	// Floor is the crypto floor of a handshake, measured in this run.
	Floor *floorResult `json:"crypto_floor"`
	// IoTEdge is a), b) and c) against iot-edge's gateway (--iot-edge-bin).
	IoTEdge *iotEdgeResult `json:"iot_edge,omitempty"`
	// Libraries is b) and c) against the library servers (--library-floor).
	Libraries *librariesResult `json:"library_floor,omitempty"`
	// LoadAvg is /proc/loadavg's 1-minute figure at the start and the end.
	LoadStart float64 `json:"load_average_start"`
	LoadEnd   float64 `json:"load_average_end"`
}

// iotEdgeResult is the same scenarios against iot-edge's gateway process.
type iotEdgeResult struct {
	Binary     string      `json:"binary"`
	Tokens     latency     `json:"tokens"`
	AMConns    int64       `json:"am_connections"`
	Handshakes latency     `json:"handshakes"`
	Idle       *idleResult `json:"idle"`
}

// loadAverage is the 1-minute load average, or -1.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var l float64
	if _, err := fmt.Sscan(string(b), &l); err != nil {
		return -1
	}
	return l
}

// run starts the environment, runs the scenarios and prints the report.
func run(ctx context.Context, s settings, asJSON bool, stdout, stderr io.Writer) error {
	p := &progress{w: stderr, start: time.Now()}
	r := &report{Date: time.Now().UTC().Truncate(time.Second), Machine: thisMachine(), Settings: s, LoadStart: loadAverage()}
	m := r.Machine
	p.printf("gwbench: %d CPUs, %s/%s, %s; --duration %v --concurrency %d --things %d --idle-clients %s --gateway-mode %s; load average %.2f",
		m.NumCPU, m.GOOS, m.GOARCH, m.GoVersion, s.Duration, s.Concurrency, s.Things, s.IdleClients, s.GatewayMode, r.LoadStart)

	e, err := start(ctx, s, p)
	if err != nil {
		return err
	}
	defer e.close()
	r.Gateway, r.AM = e.gwAddr, e.amURL

	// The memory figure first, while the process holds nothing else.
	p.printf("c) memory per idle thing: started (%d DTLS sessions)", s.Things)
	if r.Idle, err = e.idle(ctx); err != nil {
		return fmt.Errorf("memory per idle thing: %w", err)
	}
	p.printf("c) memory per idle thing: finished: %s heap, %s RSS per thing in the gateway's process",
		kib(r.Idle.HeapPerThing), kib(r.Idle.RSSPerThing))
	if s.IdleClients != idleInProcess {
		p.printf("d) memory per parked thing: started (%d DTLS sessions, parked after %v)", s.Things, benchParkAfter)
		if r.Parked, err = e.parked(ctx); err != nil {
			return fmt.Errorf("memory per parked thing: %w", err)
		}
		p.printf("d) memory per parked thing: finished: %s heap, %s RSS per thing", kib(r.Parked.HeapPerThing), kib(r.Parked.RSSPerThing))
	}
	p.printf("e) graceful restart: started (%d DTLS sessions)", min(s.Things, maxProcessSessions))
	if r.Restart, err = e.restart(ctx); err != nil {
		return fmt.Errorf("graceful restart: %w", err)
	}
	p.printf("e) graceful restart: finished: %d of %d answered, %v new handshakes", r.Restart.Answered, r.Restart.Things, r.Restart.Handshakes)

	type scenario struct {
		label string
		run   func(context.Context) (latency, error)
		out   *latency
	}
	for _, sc := range []scenario{
		{"a) access tokens through the gateway", e.tokensViaGateway, &r.TokensGateway},
		{"a) access tokens direct over HTTP", e.tokensDirect, &r.TokensDirect},
		{"b) DTLS handshakes", e.handshakes, &r.Handshakes},
	} {
		p.printf("%s: started (%d workers, %v)", sc.label, s.Concurrency, s.Duration)
		conns := e.amConns.Load()
		l, err := sc.run(ctx)
		if sc.out == &r.TokensGateway {
			r.AMConnsGateway = e.amConns.Load() - conns
		}
		if err != nil {
			return fmt.Errorf("%s: %w", sc.label, err)
		}
		*sc.out = l
		p.printf("%s: finished: %d in %.1fs, %.1f/s, %d errors", sc.label, l.Ops, l.Seconds, l.PerSec, l.Errors)
		if l.FirstErr != "" {
			p.printf("%s: first error: %s", sc.label, l.FirstErr)
		}
	}
	p.printf("crypto floor of a handshake: started")
	if r.Floor, err = cryptoFloor(); err != nil {
		return err
	}
	p.printf("crypto floor of a handshake: %.3f ms (%s CPU)", r.Floor.TotalMs, r.Floor.Clock)
	if s.IoTEdgeBin != "" {
		if r.IoTEdge, err = e.iotEdge(ctx); err != nil {
			return fmt.Errorf("iot-edge: %w", err)
		}
	}
	if s.LibraryFloor {
		if r.Libraries, err = e.libraries(ctx); err != nil {
			return fmt.Errorf("the libraries' floor: %w", err)
		}
	}
	r.LoadEnd = loadAverage()

	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.print(stdout)
}

func (r *report) print(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	m, s := r.Machine, r.Settings
	fmt.Fprintf(w, "Thingway gateway benchmark (gwbench), %s\n", r.Date.Format(time.RFC3339))
	cpu := ""
	if m.CPU != "" {
		cpu = ", " + m.CPU
	}
	fmt.Fprintf(w, "machine:   %d CPUs (GOMAXPROCS %d), %s/%s, %s%s\n", m.NumCPU, m.GOMAXPROCS, m.GOOS, m.GOARCH, m.GoVersion, cpu)
	fmt.Fprintf(w, "settings:  --duration %v --concurrency %d --things %d --address %s --am-address %s --idle-clients %s --gateway-mode %s\n",
		s.Duration, s.Concurrency, s.Things, s.Address, s.AMAddress, s.IdleClients, s.GatewayMode)
	fmt.Fprintf(w, "load:      1-minute load average %.2f at the start, %.2f at the end\n", r.LoadStart, r.LoadEnd)
	where := "cmd/gateway in a process of its own"
	if s.GatewayMode == gwInProcess {
		where = "in gwbench's process"
	}
	fmt.Fprintf(w, "setup:     gateway udp %s (%s; DTLS, pinned certificate), local AM %s, realm %s, tree %s;\n", r.Gateway, where, r.AM, benchRealm, benchTree)
	fmt.Fprintf(w, "           clients, gateway and AM share this machine's CPUs: rates are a lower bound for the gateway\n")

	fmt.Fprintf(w, "\na) PoP access tokens: thing.AccessToken(%q) on a restricted session, %d workers (one thing each), %v\n", benchScope, s.Concurrency, s.Duration)
	fmt.Fprintf(w, "   path\trequests\terrors\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\n")
	for _, l := range []latency{r.TokensGateway, r.TokensDirect} {
		latencyRow(w, l)
	}
	if d := r.TokensDirect; d.PerSec > 0 {
		g := r.TokensGateway
		fmt.Fprintf(w, "   gateway/direct: %.2f× the rate, p50 %+.2f ms\n", g.PerSec/d.PerSec, g.P50ms-d.P50ms)
	}
	if g := r.TokensGateway; g.Ops > 0 {
		fmt.Fprintf(w, "   new TCP connections to AM through the gateway: %d for %d requests (%.2f per 1000)\n",
			r.AMConnsGateway, g.Ops, 1000*float64(r.AMConnsGateway)/float64(g.Ops))
		cpuLine(w, "request", g, 1000)
	}

	fmt.Fprintf(w, "\nb) DTLS handshakes: thing.DialGateway (handshake + CoAP ping) then Close, %d workers, %v\n", s.Concurrency, s.Duration)
	fmt.Fprintf(w, "   \thandshakes\terrors\thandshakes/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\n")
	latencyRow(w, r.Handshakes)
	cpuLine(w, "handshake", r.Handshakes, 1)
	if f := r.Floor; f != nil {
		fmt.Fprintf(w, "   crypto floor of the server's side (crypto/ecdh, crypto/ecdsa, crypto/x509 in a loop, %s CPU): %.3f ms per handshake\n", f.Clock, f.TotalMs)
		fmt.Fprintf(w, "     (ECDHE %.3f + ServerKeyExchange signature %.3f + CertificateVerify check %.3f + client certificate parse and check %.3f ms)\n",
			f.ECDHEMs, f.SignMs, f.VerifyMs, f.ChainMs)
		if h := r.Handshakes.CPUPerOpMs; h > 0 && f.TotalMs > 0 {
			fmt.Fprintf(w, "   gateway CPU per handshake / crypto floor: %.2f×\n", h/f.TotalMs)
		}
	}
	for _, l := range []latency{r.TokensGateway, r.TokensDirect, r.Handshakes} {
		if l.FirstErr != "" {
			fmt.Fprintf(w, "   %s, first error: %s\n", l.Name, l.FirstErr)
		}
	}

	if i := r.Idle; i != nil {
		who, per := "gateway process (gateway + idle AM)", "per idle thing, gateway process"
		if i.Clients == idleInProcess {
			who, per = "this process (clients + gateway + idle AM)", "per idle thing, clients + gateway"
		}
		if i.After.Source == sourceMetrics {
			who = "gateway process (cmd/gateway)"
		}
		fmt.Fprintf(w, "\nc) memory per idle connected thing: %d DTLS sessions (thing.DialGateway, one ping each), then idle\n", i.Things)
		fmt.Fprintf(w, "   \theap in use\tgoroutine stacks\tRSS\tgoroutines\n")
		memRow(w, who+", before", i.Before)
		memRow(w, who+", with the sessions", i.After)
		fmt.Fprintf(w, "   %s\t%s\t%s\t%s\t%.1f\n", per, kib(i.HeapPerThing), kib(i.StackPerThing), kib(i.RSSPerThing), i.GoroutinesPerThing)
		memRow(w, "after the sessions closed", i.Closed)
		if i.Drained.Source == sourceMetrics && i.Drained.Goroutines != i.Closed.Goroutines {
			memRow(w, fmt.Sprintf("after the sessions closed, %.1fs", i.DrainedAfter.Seconds()), i.Drained)
		}
		if i.After.Source == sourceMetrics {
			fmt.Fprintf(w, "   per idle thing, RSS less the free heap the runtime kept: %s\n", kib(i.RSSLessFreePerThing))
		}
		if c := i.Client; c != nil {
			fmt.Fprintf(w, "   clients' own process, per thing\t%s\t%s\t%s\t%.1f\n", kib(c.HeapPerThing), kib(c.StackPerThing), kib(c.RSSPerThing), c.GoroutinesPerThing)
		}
		if i.DialRetries > 0 {
			fmt.Fprintf(w, "   %d session attempts failed (stalled or refused handshakes) and were tried again\n", i.DialRetries)
		}
	}
	if pk := r.Parked; pk != nil {
		fmt.Fprintf(w, "\nd) memory per parked thing: %d DTLS sessions (child process) on a gateway with ParkAfter %s, all %d parked\n",
			pk.Things, pk.ParkAfter, pk.ParkedSessions)
		fmt.Fprintf(w, "   \theap in use\tgoroutine stacks\tRSS\tgoroutines\n")
		memRow(w, "gateway process, before", pk.Before)
		memRow(w, "gateway process, sessions parked", pk.Parked)
		fmt.Fprintf(w, "   per parked thing\t%s\t%s\t%s\t%.1f\n", kib(pk.HeapPerThing), kib(pk.StackPerThing), kib(pk.RSSPerThing), pk.GoroutinesPerThing)
		if pk.Parked.Source == sourceMetrics {
			// The gateway returns the parked sessions' memory to the OS
			// once parking has been quiet for a while.
			memRow(w, fmt.Sprintf("gateway process, %.1fs later", pk.ReleasedAfter.Seconds()), pk.Released)
			fmt.Fprintf(w, "   per parked thing, %.1fs later\t%s\t\t%s\t\n", pk.ReleasedAfter.Seconds(), kib(pk.ReleasedHeapPerThing), kib(pk.ReleasedRSSPerThing))
		}
		fmt.Fprintf(w, "   per parked thing, live heap objects only (HeapAlloc)\t%s\n", kib(pk.LivePerThing))
		if pk.Parked.Source == sourceMetrics {
			fmt.Fprintf(w, "   per parked thing, RSS less the free heap the runtime kept: %s\n", kib(pk.RSSLessFreePerThing))
		}
	}
	if rs := r.Restart; rs != nil {
		fmt.Fprintf(w, "\ne) graceful restart: %d DTLS sessions, Shutdown with a session file (%d bytes), a new gateway on the address (%.2fs),\n", rs.Things, rs.FileBytes, rs.Seconds)
		fmt.Fprintf(w, "   then one authentication step per thing: %d answered, %d errors, %.0f new handshakes, %.0f sessions resumed from the file\n",
			rs.Answered, rs.Errors, rs.Handshakes, rs.Resumed)
		if rs.CPUSeconds > 0 && rs.Answered > 0 {
			fmt.Fprintf(w, "   the new gateway process's CPU meanwhile: %.2f s (%.3f ms per request)\n", rs.CPUSeconds, 1000*rs.CPUSeconds/float64(rs.Answered))
		}
		if rs.FirstErr != "" {
			fmt.Fprintf(w, "   first error: %s\n", rs.FirstErr)
		}
	}
	if ie := r.IoTEdge; ie != nil {
		r.printIoTEdge(w, ie)
	}
	if lib := r.Libraries; lib != nil {
		r.printLibraries(w, lib)
	}
	return w.Flush()
}

// printIoTEdge prints the iot-edge scenarios beside the Thingway gateway's.
func (r *report) printIoTEdge(w io.Writer, ie *iotEdgeResult) {
	fmt.Fprintf(w, "\nf) side by side with iot-edge's gateway (%s), a process of its own in front of the same AM, the same things\n", ie.Binary)
	fmt.Fprintf(w, "   \trequests\terrors\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\n")
	latencyRow(w, ie.Tokens)
	cpuLine(w, "request", ie.Tokens, 1000)
	if ie.Tokens.Ops > 0 {
		fmt.Fprintf(w, "   new TCP connections to AM through iot-edge's gateway: %d for %d requests (%.2f per 1000)\n",
			ie.AMConns, ie.Tokens.Ops, 1000*float64(ie.AMConns)/float64(ie.Tokens.Ops))
	}
	latencyRow(w, ie.Handshakes)
	cpuLine(w, "handshake", ie.Handshakes, 1)
	for _, l := range []latency{ie.Tokens, ie.Handshakes} {
		if l.FirstErr != "" {
			fmt.Fprintf(w, "   %s, first error: %s\n", l.Name, l.FirstErr)
		}
	}
	if i := ie.Idle; i != nil {
		fmt.Fprintf(w, "   iot-edge gateway process, RSS: %s before, %s with %d idle sessions, %s after they closed: %s per idle thing\n",
			mib(float64(i.Before.RSS)), mib(float64(i.After.RSS)), i.Things, mib(float64(i.Closed.RSS)), kib(i.RSSPerThing))
	}
	ratio := func(a, b float64) string {
		if a <= 0 || b <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	fmt.Fprintf(w, "   Thingway / iot-edge: CPU per request %s, CPU per handshake %s", ratio(r.TokensGateway.CPUPerOpMs, ie.Tokens.CPUPerOpMs),
		ratio(r.Handshakes.CPUPerOpMs, ie.Handshakes.CPUPerOpMs))
	if r.Idle != nil && ie.Idle != nil {
		fmt.Fprintf(w, ", RSS per idle thing %s", ratio(r.Idle.RSSPerThing, ie.Idle.RSSPerThing))
	}
	fmt.Fprintf(w, "; rate through the gateway %s\n", ratio(r.TokensGateway.PerSec, ie.Tokens.PerSec))
}

// cpuLine prints a scenario's gateway CPU per operation (per 1000 with
// per1000), when the gateway ran in a process of its own.
func cpuLine(w io.Writer, op string, l latency, scale int) {
	if l.CPUPerOpMs <= 0 {
		return
	}
	if scale == 1000 {
		fmt.Fprintf(w, "   gateway process CPU: %.2f s for %d %ss: %.3f ms per %s, %.2f s per 1000\n",
			l.GatewayCPUSeconds, l.Ops, op, l.CPUPerOpMs, op, l.CPUPerOpMs)
		return
	}
	fmt.Fprintf(w, "   gateway process CPU: %.2f s for %d %ss: %.3f ms per %s\n", l.GatewayCPUSeconds, l.Ops, op, l.CPUPerOpMs, op)
}

func latencyRow(w io.Writer, l latency) {
	fmt.Fprintf(w, "   %s\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\n", l.Name, l.Ops, l.Errors, l.PerSec, l.P50ms, l.P90ms, l.P99ms, l.MaxMs)
}

func memRow(w io.Writer, label string, m memSample) {
	rss := "n/a"
	if m.RSS >= 0 {
		rss = mib(float64(m.RSS))
	}
	if m.Source == sourceProc {
		fmt.Fprintf(w, "   %s\tn/a\tn/a\t%s\tn/a\n", label, rss)
		return
	}
	fmt.Fprintf(w, "   %s\t%s\t%s\t%s\t%d\n", label, mib(float64(m.HeapInuse)), mib(float64(m.StackInuse)), rss, m.Goroutines)
}

func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }
func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
