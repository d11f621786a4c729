package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
)

// benchParkAfter is the ParkAfter of scenario d)'s gateway: short, so
// that the sessions are parked within seconds of going idle.
const benchParkAfter = time.Second

// parkedResult is scenario d): a second gateway whose sessions are parked
// once idle for benchParkAfter.
type parkedResult struct {
	Things         int       `json:"things"`
	ParkAfter      string    `json:"park_after"`
	ParkedSessions int64     `json:"parked_sessions"`
	Before         memSample `json:"before"`
	Parked         memSample `json:"parked"`
	// Per parked thing, in bytes (goroutines: per thing), in the
	// gateway's process.
	HeapPerThing       float64 `json:"heap_per_thing_bytes"`
	LivePerThing       float64 `json:"live_heap_per_thing_bytes"` // HeapAlloc: without fragmentation
	StackPerThing      float64 `json:"stack_per_thing_bytes"`
	RSSPerThing        float64 `json:"rss_per_thing_bytes"`
	GoroutinesPerThing float64 `json:"goroutines_per_thing"`
	// RSSLessFreePerThing: as idleResult's.
	RSSLessFreePerThing float64 `json:"rss_less_free_heap_per_thing_bytes"`
	// Released is the gateway again once it has returned the parked
	// sessions' freed memory to the OS (it does once parking has been
	// quiet for a while), or at releaseWait; ReleasedAfter is how long
	// after Parked that was.
	Released             memSample     `json:"released"`
	ReleasedAfter        time.Duration `json:"released_after_ns"`
	ReleasedRSSPerThing  float64       `json:"released_rss_per_thing_bytes"`
	ReleasedHeapPerThing float64       `json:"released_heap_per_thing_bytes"`
}

// How d) waits for the gateway to return the parked sessions' memory: until
// the free heap it keeps is under releasedFree, at most releaseWait,
// sampling every drainPoll.
const (
	releaseWait  = 15 * time.Second
	releasedFree = 4 << 20
)

// restartResult is scenario e): a gateway with a session file restarted
// under connected things, each of which then sends a request.
type restartResult struct {
	Things    int     `json:"things"`
	FileBytes int64   `json:"session_file_bytes"`
	Seconds   float64 `json:"restart_seconds"` // from Shutdown to the new gateway listening
	Answered  int     `json:"answered"`
	Errors    int     `json:"errors"`
	FirstErr  string  `json:"first_error,omitempty"`
	// Handshakes at the new gateway while every thing sent its request;
	// Resumed: sessions resumed from the session file.
	Handshakes float64 `json:"handshakes"`
	Resumed    float64 `json:"resumed"`
	// CPUSeconds is the new gateway process's CPU while the things sent
	// their requests (0 in process).
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
}

// extraGateway is a gateway in gwbench's process, in front of the
// bench's AM, configured as cmd/gateway configures it.
type extraGateway struct {
	s     *gateway.Server
	addr  string
	pin   []byte
	serve chan error
	reg   *prometheus.Registry
	tr    *http.Transport
}

// startGateway starts a gateway in front of the bench's AM: the cmd/gateway
// binary in a process of its own, or in this process (--gateway-mode).
func (e *env) startGateway(ctx context.Context, o procOptions) (benchGW, error) {
	if e.s.GatewayMode == gwProcess {
		return e.startProcGateway(ctx, kindThingway, e.gatewayBin, o)
	}
	var key []byte
	if o.sessionKey != "" {
		var err error
		if key, err = os.ReadFile(o.sessionKey); err != nil {
			return nil, err
		}
	}
	g := &extraGateway{pin: e.pin, serve: make(chan error, 1), reg: prometheus.NewRegistry(), tr: gateway.NewAMTransport(nil, gateway.DefaultTimeout)}
	g.s = &gateway.Server{
		AM:              &amclient.Client{URL: e.amURL, Realm: benchRealm, Tree: benchTree, HTTPClient: &http.Client{Transport: g.tr}},
		ID:              benchGateway,
		Key:             e.gwKey,
		DTLSCertificate: e.gwCert,
		Logger:          slog.New(slog.NewTextHandler(e.progress, &slog.HandlerOptions{Level: slog.LevelWarn})),
		MaxSessions:     max(gateway.DefaultMaxSessions, e.s.Things+2*e.s.Concurrency+64),
		Metrics:         gateway.NewMetrics(g.reg),
		ParkAfter:       o.parkAfter,
		SessionFile:     o.sessionFile,
		SessionKey:      key,
	}
	if err := g.s.Authenticate(ctx); err != nil {
		g.tr.CloseIdleConnections()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	host, network := loopbackHost(o.addr)
	l, err := g.s.Listen(network, host)
	if err != nil {
		g.s.Close()
		g.tr.CloseIdleConnections()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.addr = l.Addr().String()
	go func() { g.serve <- g.s.Serve(l) }()
	return g, nil
}

func (g *extraGateway) address() string            { return g.addr }
func (g *extraGateway) trust() coapx.Trust         { return coapx.Trust{PinnedSHA256: g.pin} }
func (g *extraGateway) pinArg() string             { return hex.EncodeToString(g.pin) }
func (g *extraGateway) memory() (memSample, error) { return sampleMemory(), nil }
func (g *extraGateway) cpu() (float64, bool)       { return 0, false }

// stop shuts the gateway down (saving its sessions when it has a session
// file) and waits for Serve to return.
func (g *extraGateway) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := g.s.Shutdown(ctx)
	if err != nil {
		g.s.Close()
	}
	if serr := <-g.serve; serr != nil && !errors.Is(serr, gateway.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	g.tr.CloseIdleConnections() // its connections to AM, and their goroutines
	return err
}

// metric sums the samples of a metric family (with the label, if given).
func (g *extraGateway) metric(name, label, value string) float64 {
	families, err := g.reg.Gather()
	if err != nil {
		return -1
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			ok := label == ""
			for _, l := range m.GetLabel() {
				ok = ok || (l.GetName() == label && l.GetValue() == value)
			}
			if !ok {
				continue
			}
			switch {
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// parked is scenario d): the child process opens --things sessions on a
// gateway that parks them after benchParkAfter; the gateway's process is
// measured once all are parked.
func (e *env) parked(ctx context.Context) (*parkedResult, error) {
	n := e.s.Things
	g, err := e.startGateway(ctx, procOptions{addr: e.s.Address, parkAfter: benchParkAfter})
	if err != nil {
		return nil, err
	}
	defer g.stop() //nolint:errcheck // measured already
	r := &parkedResult{Things: n, ParkAfter: benchParkAfter.String()}
	if r.Before, err = g.memory(); err != nil {
		return nil, err
	}
	_, stopChild, err := e.startChild(ctx, g)
	if err != nil {
		return nil, err
	}
	defer stopChild() //nolint:errcheck // measured already
	e.progress.printf("d) parked things: waiting for the %d sessions to be parked", n)
	deadline := time.Now().Add(time.Minute + time.Duration(n)*time.Millisecond)
	for g.metric("thingway_gateway_parked_sessions", "", "") < float64(n) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%v of %d sessions parked in time", g.metric("thingway_gateway_parked_sessions", "", ""), n)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	time.Sleep(settle)
	if r.Parked, err = g.memory(); err != nil {
		return nil, err
	}
	if pg, ok := g.(*procGateway); ok && pg.profileDir != "" {
		pg.snapshot("d-parked")
	}
	r.ParkedSessions = int64(g.metric("thingway_gateway_parked_sessions", "", ""))
	r.HeapPerThing, r.StackPerThing, r.RSSPerThing, r.GoroutinesPerThing = perThing(r.Before, r.Parked, n)
	r.LivePerThing = (float64(r.Parked.HeapAlloc) - float64(r.Before.HeapAlloc)) / float64(n)
	r.RSSLessFreePerThing = float64((r.Parked.RSS-r.Parked.FreeKept)-(r.Before.RSS-r.Before.FreeKept)) / float64(n)
	if r.Released, r.ReleasedAfter, err = sampleUntil(g, r.Parked, time.Now(), releaseWait, func(m memSample) bool {
		return m.FreeKept <= releasedFree
	}); err != nil {
		return nil, err
	}
	r.ReleasedHeapPerThing, _, r.ReleasedRSSPerThing, _ = perThing(r.Before, r.Released, n)
	return r, nil
}

// restart is scenario e): --things sessions (in this process) on a
// gateway with a session file; the gateway is shut down and a new one
// started on its address with the file; then every thing sends one
// authentication step, and the new gateway's handshakes are counted.
func (e *env) restart(ctx context.Context) (*restartResult, error) {
	dir, err := os.MkdirTemp("", "gwbench-sessions-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file, keyFile, key := filepath.Join(dir, "sessions"), filepath.Join(dir, "session.key"), make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return nil, err
	}
	withFile := procOptions{addr: e.s.Address, sessionFile: file, sessionKey: keyFile}
	g, err := e.startGateway(ctx, withFile)
	if err != nil {
		return nil, err
	}
	// The things are in this process, each with a socket: past one
	// process's share, e) takes the first maxProcessSessions.
	n := min(e.s.Things, maxProcessSessions)
	r := &restartResult{Things: n}
	e.progress.printf("e) graceful restart: opening %d DTLS sessions in this process", n)
	sessions, _, err := openIdle(ctx, g.address(), g.trust(), n, e.s.Concurrency, e.progress)
	defer closeAll(sessions)
	if err != nil {
		g.stop() //nolint:errcheck // failed already
		return nil, err
	}
	start := time.Now()
	if err := g.stop(); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(file); err == nil {
		r.FileBytes = fi.Size()
	}
	withFile.addr = g.address()
	g2, err := e.startGateway(ctx, withFile)
	if err != nil {
		return nil, err
	}
	defer g2.stop() //nolint:errcheck // measured already
	r.Seconds = time.Since(start).Seconds()
	cpu0, hasCPU := g2.cpu()
	e.progress.printf("e) graceful restart: new gateway up in %.2fs; each thing sends one request", r.Seconds)
	var next, answered, failed atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for range min(e.s.Concurrency, n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := sessions[i].AuthStep(rctx, callback.Step{})
				cancel()
				if err != nil {
					failed.Add(1)
					once.Do(func() { r.FirstErr = err.Error() })
					continue
				}
				answered.Add(1)
			}
		})
	}
	wg.Wait()
	r.Answered, r.Errors = int(answered.Load()), int(failed.Load())
	if cpu1, ok := g2.cpu(); hasCPU && ok {
		r.CPUSeconds = cpu1 - cpu0
	}
	r.Handshakes = g2.metric("thingway_gateway_dtls_handshakes_total", "", "")
	r.Resumed = g2.metric("thingway_gateway_dtls_resumptions_total", "from", "file")
	return r, nil
}
