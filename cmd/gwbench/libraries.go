package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"regexp"
	"sync"
	"time"

	piondtls "github.com/pion/dtls/v3"
	coapdtls "github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/thingway/thingway/coapx"
)

// The libraries' floor (--library-floor): b) and c) again against two
// servers made of the gateway's libraries alone, with no Thingway code
// between them and the network, each a process of its own started from
// this binary (hidden subcommand libraryCommand):
//
//   - kindPion: pion/dtls v3's own listener (pion/transport's UDP
//     listener) and, for each session, one goroutine that reads records
//     into a 1500-byte buffer and answers a CoAP ping (an empty
//     confirmable message) with a reset, as a CoAP endpoint must.
//   - kindGoCoAP: go-coap v3's DTLS server, as its documentation sets it
//     up (its listener over pion's, an empty router), which answers pings
//     itself.
//
// Both use the gateway's DTLS settings (coapx.ServerOptions: its
// certificate, a client certificate required, the extended master secret,
// connection IDs). What the gateway costs beyond them is what its own code
// costs; what they cost is the floor the gateway cannot go under without
// changing those libraries.
const (
	kindPion   = "pion"
	kindGoCoAP = "go-coap"

	libraryCommand = "library-server"
	flagMode       = "mode"
	flagDTLSCert   = "dtls-cert"
	flagDTLSKey    = "dtls-key"
)

// libraryLine is the library server's line that it serves, on stderr.
var libraryLine = regexp.MustCompile(`msg="library server serving" mode=\S+ address=(\S+) metrics=(\S+)`)

// librariesResult is b) and c) against each library server.
type librariesResult struct {
	Servers []libraryResult `json:"servers"`
}

type libraryResult struct {
	Kind       string      `json:"kind"`
	Handshakes latency     `json:"handshakes"`
	Idle       *idleResult `json:"idle"`
}

// libraries runs c) then b) against a pion server and a go-coap server.
func (e *env) libraries(ctx context.Context) (*librariesResult, error) {
	r := &librariesResult{}
	for _, kind := range []string{kindPion, kindGoCoAP} {
		g, err := e.startProcGateway(ctx, kind, "", procOptions{})
		if err != nil {
			return nil, err
		}
		lr, err := e.libraryOn(ctx, g)
		if err = errors.Join(err, g.stop()); err != nil {
			return nil, fmt.Errorf("%s server: %w", kind, err)
		}
		r.Servers = append(r.Servers, *lr)
	}
	return r, nil
}

func (e *env) libraryOn(ctx context.Context, g *procGateway) (*libraryResult, error) {
	lr := &libraryResult{Kind: g.kind}
	var err error
	e.progress.printf("g) %s server: memory per idle session: started (%d DTLS sessions)", g.kind, e.s.Things)
	if lr.Idle, err = e.idleOn(ctx, g, idleProcess); err != nil {
		return nil, fmt.Errorf("memory per idle session: %w", err)
	}
	e.progress.printf("g) %s server: memory per idle session: finished: %s heap, %s RSS", g.kind, kib(lr.Idle.HeapPerThing), kib(lr.Idle.RSSPerThing))
	e.progress.printf("g) %s server: DTLS handshakes: started (%d workers, %v)", g.kind, e.s.Concurrency, e.s.Duration)
	if lr.Handshakes, err = e.handshakesOn(ctx, g, libraryName(g.kind)+" (DTLS handshake + CoAP ping)"); err != nil {
		return nil, err
	}
	e.progress.printf("g) %s server: DTLS handshakes: finished: %d, %.1f/s, %d errors", g.kind, lr.Handshakes.Ops, lr.Handshakes.PerSec, lr.Handshakes.Errors)
	return lr, nil
}

// libraryName names a library server in the report.
func libraryName(kind string) string {
	if kind == kindPion {
		return "pion/dtls v3 alone"
	}
	return "go-coap v3's DTLS server"
}

// printLibraries prints g) beside the Thingway gateway's b) and c).
func (r *report) printLibraries(w io.Writer, lib *librariesResult) {
	fmt.Fprintf(w, "\ng) the libraries' floor: the same b) and c) against servers made of the gateway's libraries alone (no Thingway code),\n")
	fmt.Fprintf(w, "   each a process of its own with the gateway's DTLS settings\n")
	fmt.Fprintf(w, "   \thandshakes\terrors\thandshakes/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\n")
	for _, s := range lib.Servers {
		latencyRow(w, s.Handshakes)
	}
	for _, s := range lib.Servers {
		if l := s.Handshakes; l.CPUPerOpMs > 0 {
			fmt.Fprintf(w, "   CPU of the %s process: %.2f s for %d handshakes: %.3f ms per handshake\n", libraryName(s.Kind), l.GatewayCPUSeconds, l.Ops, l.CPUPerOpMs)
		}
	}
	fmt.Fprintf(w, "   per idle session\theap in use\tgoroutine stacks\tRSS\tgoroutines\n")
	for _, s := range lib.Servers {
		if i := s.Idle; i != nil {
			fmt.Fprintf(w, "   %s\t%s\t%s\t%s\t%.1f\n", libraryName(s.Kind), kib(i.HeapPerThing), kib(i.StackPerThing), kib(i.RSSPerThing), i.GoroutinesPerThing)
		}
	}
	if i := r.Idle; i != nil {
		fmt.Fprintf(w, "   the Thingway gateway (c) above)\t%s\t%s\t%s\t%.1f\n", kib(i.HeapPerThing), kib(i.StackPerThing), kib(i.RSSPerThing), i.GoroutinesPerThing)
	}
	ratio := func(a, b float64) string {
		if a <= 0 || b <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	for _, s := range lib.Servers {
		fmt.Fprintf(w, "   Thingway gateway / %s: CPU per handshake %s", libraryName(s.Kind), ratio(r.Handshakes.CPUPerOpMs, s.Handshakes.CPUPerOpMs))
		if r.Idle != nil && s.Idle != nil {
			fmt.Fprintf(w, ", RSS per idle thing %s", ratio(r.Idle.RSSPerThing, s.Idle.RSSPerThing))
		}
		if f := r.Floor; f != nil {
			fmt.Fprintf(w, "; %s's CPU per handshake / crypto floor %s", libraryName(s.Kind), ratio(s.Handshakes.CPUPerOpMs, f.TotalMs))
		}
		fmt.Fprintln(w)
	}
	for _, s := range lib.Servers {
		if s.Handshakes.FirstErr != "" {
			fmt.Fprintf(w, "   %s, first error: %s\n", s.Handshakes.Name, s.Handshakes.FirstErr)
		}
	}
}

// runLibraryServer is the hidden subcommand: a DTLS server of kind mode on
// addr with the gateway's DTLS settings, and the Go runtime's metrics and
// heap profile on a loopback HTTP port, until ctx ends.
func runLibraryServer(ctx context.Context, mode, addr, certFile, keyFile string, stderr io.Writer) error {
	if err := checkLoopback(addr); err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("%s: %w", libraryCommand, err)
	}
	opts := coapx.ServerOptions(cert)
	var l net.Listener
	var serve func() error
	var stop func() // closes the listener and ends the sessions
	switch mode {
	case kindPion:
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		if l, err = piondtls.ListenWithOptions("udp", ua, opts...); err != nil {
			return err
		}
		ps := &pionServer{l: l, conns: map[net.Conn]struct{}{}}
		serve, stop = ps.serve, ps.stop
	case kindGoCoAP:
		cl, err := coapnet.NewDTLSListener("udp", addr, coapnet.NewDTLSServerOptions(opts...))
		if err != nil {
			return err
		}
		l = cl
		// As the gateway: sessions stay until the bench closes them
		// (go-coap's default closes a session idle for 16 s), and a
		// handshake gives up after libraryHandshakeTimeout.
		s := coapdtls.NewServer(options.WithMux(mux.NewRouter()),
			options.WithInactivityMonitor(time.Hour, func(cc *udpclient.Conn) { cc.Close() }),
			options.WithDTLSHandshakeTimeout(libraryHandshakeTimeout))
		serve = func() error { return s.Serve(cl) }
		stop = func() {
			cl.Close()
			s.Stop()
		}
	default:
		return fmt.Errorf("%s: --%s is %s or %s", libraryCommand, flagMode, kindPion, kindGoCoAP)
	}
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.Close()
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	hm := http.NewServeMux()
	hm.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hm.Handle("GET /debug/pprof/heap", pprof.Handler("heap"))
	hs := &http.Server{Handler: hm}
	go hs.Serve(ml) //nolint:errcheck // ends with Close below
	slog.New(slog.NewTextHandler(stderr, nil)).Info("library server serving", "mode", mode,
		"address", l.Addr().String(), "metrics", ml.Addr().String())
	done := make(chan error, 1)
	go func() { done <- serve() }()
	select {
	case <-ctx.Done():
		stop()
		hs.Close()
		<-done
		return nil
	case err := <-done:
		hs.Close()
		return err
	}
}

// libraryHandshakeTimeout bounds a library server's handshake, as the
// gateway's does, so that a client gone mid-handshake leaves no session.
const libraryHandshakeTimeout = 30 * time.Second

// pionServer serves pion sessions, each read by a goroutine of its own.
type pionServer struct {
	l       net.Listener
	mu      sync.Mutex
	conns   map[net.Conn]struct{} // the sessions being served
	closing bool
	wg      sync.WaitGroup
}

// serve accepts sessions until the listener is closed.
func (p *pionServer) serve() error {
	defer p.wg.Wait()
	for {
		c, err := p.l.Accept()
		if err != nil {
			p.mu.Lock()
			closing := p.closing
			p.mu.Unlock()
			if closing {
				return nil
			}
			return err
		}
		p.mu.Lock()
		if p.closing {
			p.mu.Unlock()
			c.Close()
			return nil
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.session(c)
	}
}

// session completes c's handshake and answers its pings until it ends.
func (p *pionServer) session(c net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	if dc, ok := c.(*piondtls.Conn); ok {
		ctx, cancel := context.WithTimeout(context.Background(), libraryHandshakeTimeout)
		err := dc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return
		}
	}
	b := make([]byte, 1500)
	for {
		n, err := c.Read(b)
		if err != nil {
			return
		}
		if rst, ok := pingReset(b[:n]); ok {
			if _, err := c.Write(rst); err != nil {
				return
			}
		}
	}
}

// stop closes the listener, then the sessions: pion's listener closes
// only those it has not handed out, and a session whose client is gone
// would read for ever.
func (p *pionServer) stop() {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	p.l.Close()
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// pingReset answers a CoAP ping (RFC 7252 §4.3: an empty confirmable
// message, version 1, no token) with a reset of the same message ID.
func pingReset(m []byte) ([]byte, bool) {
	if len(m) != 4 || m[0] != 0x40 || m[1] != 0 {
		return nil, false
	}
	return []byte{0x70, 0, m[2], m[3]}, true
}

// libraryArgs are the library server's command line for kind.
func (e *env) libraryArgs(kind, addr string) []string {
	return []string{libraryCommand, "--" + flagMode, kind, "--" + flagAddress, addr,
		"--" + flagDTLSCert, e.files.dtlsCert, "--" + flagDTLSKey, e.files.dtlsKey}
}

// libraryBinary is this program, which runs the library servers.
func libraryBinary() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("library server: %w", err)
	}
	return exe, nil
}
