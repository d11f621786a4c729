package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/thing"
)

// The AM configuration the bench uses: the evaluation guide's realm and
// tree, as cmd/gateway without --url.
const (
	benchRealm   = "/"
	benchTree    = "auth-tree"
	benchGateway = "gwbench-gateway"
	benchScope   = "publish"
)

// thingID names the i-th registered thing.
func thingID(i int) string { return fmt.Sprintf("gwbench-thing-%05d", i) }

// env is the local AM (in this process) and the gateway (in a process of
// its own, or in this one).
type env struct {
	s        settings
	progress *progress

	am         *amtest.Server
	hs         *http.Server
	amURL      string
	amConns    atomic.Int64 // TCP connections AM accepted
	gw         benchGW      // the main gateway, of scenarios a) to c)
	gwAddr     string
	pin        []byte // SHA-256 of the gateway's DTLS certificate
	gwKey      *ecdsa.PrivateKey
	gwCert     tls.Certificate
	files      benchFiles // gwKey and gwCert as files, for gateway processes
	gatewayBin string     // cmd/gateway, in process mode

	keys  []*ecdsa.PrivateKey // the workers' things: keys[i] is thingID(i)'s
	certs []tls.Certificate   // the workers' DTLS client certificates
}

// start registers the things in a new local AM, starts it and the gateway.
func start(ctx context.Context, s settings, p *progress) (*env, error) {
	e := &env{s: s, progress: p}
	registered := max(s.Things, s.Concurrency)
	p.printf("setup: generating keys, registering %d things and the gateway in the local AM", registered)

	cfg := amtest.DefaultConfig()
	realm := cfg.Realms[benchRealm]
	if realm.Identities == nil {
		realm.Identities = map[string]map[string]any{}
	}
	gwKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if realm.Identities[benchGateway], err = identity(callback.ThingTypeGateway, gwKey); err != nil {
		return nil, err
	}
	for i := range registered {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		if realm.Identities[thingID(i)], err = identity(callback.ThingTypeDevice, key); err != nil {
			return nil, err
		}
		if i < s.Concurrency {
			cert, err := coapx.SelfSignedCertificate(nil, thingID(i))
			if err != nil {
				return nil, err
			}
			e.keys = append(e.keys, key)
			e.certs = append(e.certs, cert)
		}
	}

	l, err := net.Listen("tcp", s.AMAddress)
	if err != nil {
		return nil, fmt.Errorf("local AM: listen on %s: %w", s.AMAddress, err)
	}
	e.am = &amtest.Server{Config: cfg}
	if err := e.am.Init(); err != nil {
		l.Close()
		return nil, fmt.Errorf("local AM: %w", err)
	}
	l = &countingListener{Listener: l, n: &e.amConns}
	e.amURL = "http://" + l.Addr().String() + "/openam"
	e.am.URL = e.amURL
	e.hs = &http.Server{Handler: e.am, ReadHeaderTimeout: 10 * time.Second}
	go e.hs.Serve(l) //nolint:errcheck // ends with close

	dtlsCert, err := coapx.SelfSignedCertificate(nil, benchGateway)
	if err != nil {
		e.close()
		return nil, err
	}
	sum := sha256.Sum256(dtlsCert.Certificate[0])
	e.pin, e.gwKey, e.gwCert = sum[:], gwKey, dtlsCert
	if err := e.writeFiles(); err != nil {
		e.close()
		return nil, err
	}
	if s.GatewayMode == gwProcess {
		e.gatewayBin = s.GatewayBin
		if e.gatewayBin == "" {
			if e.gatewayBin, err = buildGateway(ctx, e.files.dir, p); err != nil {
				e.close()
				return nil, err
			}
		}
	}
	if e.gw, err = e.startGateway(ctx, procOptions{addr: s.Address}); err != nil {
		e.close()
		return nil, err
	}
	e.gwAddr = e.gw.address()
	p.printf("setup: local AM at %s, gateway at %s (udp, DTLS, %s)", e.amURL, e.gwAddr, s.GatewayMode)
	return e, nil
}

// identity is an AM identity holding key's public part under its
// thumbprint, as the evaluation guide registers things by hand.
func identity(thingType string, key *ecdsa.PrivateKey) (map[string]any, error) {
	kid, err := callback.Thumbprint(key.Public())
	if err != nil {
		return nil, err
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	return map[string]any{"thingType": thingType, "thingKeys": string(set)}, nil
}

// close stops the gateway (gracefully, with a fresh timeout) and the AM,
// and removes the key files.
func (e *env) close() {
	if e.gw != nil {
		if err := e.gw.stop(); err != nil {
			e.progress.printf("gateway: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if e.hs != nil {
		if err := e.hs.Shutdown(ctx); err != nil {
			e.hs.Close()
		}
	}
	if e.am != nil {
		e.am.Close()
	}
	if e.files.dir != "" {
		os.RemoveAll(e.files.dir)
	}
}

// trust is how the bench's things trust the main gateway: its pinned
// certificate.
func (e *env) trust() coapx.Trust { return e.gw.trust() }

// latency is the outcome of one throughput scenario.
type latency struct {
	Name     string  `json:"name"`
	Workers  int     `json:"workers"`
	Ops      int     `json:"ops"`
	Errors   int     `json:"errors"`
	FirstErr string  `json:"first_error,omitempty"`
	Seconds  float64 `json:"seconds"`
	PerSec   float64 `json:"per_second"`
	P50ms    float64 `json:"p50_ms"`
	P90ms    float64 `json:"p90_ms"`
	P99ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	// GatewayCPUSeconds is the CPU (user + system) the gateway's process
	// used from the start of the window to the end of the last
	// operation, and CPUPerOpMs that divided by the operations (all
	// successful ones, as in the percentiles); zero for a gateway in
	// gwbench's own process, and for the direct path.
	GatewayCPUSeconds float64 `json:"gateway_cpu_seconds,omitempty"`
	CPUPerOpMs        float64 `json:"gateway_cpu_per_op_ms,omitempty"`
}

// worker is one worker's operation, prepared before the clock starts,
// and what to release after.
type worker struct {
	op      func(context.Context) error
	cleanup func()
}

// measure prepares c workers with prepare, then runs their operations in
// a loop for d and returns the rate and latency percentiles of the
// operations that succeeded. Errors are counted, not retried.
//
// When g is a gateway in a process of its own, its CPU is read at the
// start of the window and once the last operation ended.
func measure(ctx context.Context, name string, g benchGW, c int, d time.Duration, prepare func(ctx context.Context, i int) (worker, error)) (latency, error) {
	ws := make([]worker, c)
	prepErr := make([]error, c)
	var wg sync.WaitGroup
	for i := range c {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, prepareTimeout)
			defer cancel()
			ws[i], prepErr[i] = prepare(pctx, i)
		})
	}
	wg.Wait()
	defer func() {
		for _, w := range ws {
			if w.cleanup != nil {
				w.cleanup()
			}
		}
	}()
	if err := errors.Join(prepErr...); err != nil {
		return latency{}, fmt.Errorf("%s: preparing the workers: %w", name, err)
	}

	lats := make([][]time.Duration, c)
	inWindow := make([]int, c) // operations that ended by the deadline
	errs := make([]int, c)
	firstErr := make([]error, c)
	var cpu0 float64
	hasCPU := false
	if g != nil {
		cpu0, hasCPU = g.cpu()
	}
	if pg, ok := g.(*procGateway); ok && pg.profileDir != "" {
		defer pg.profile(name, d)()
	}
	begin := time.Now()
	deadline := begin.Add(d)
	for i := range c {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if err := ws[i].op(ctx); err != nil {
					errs[i]++
					if firstErr[i] == nil {
						firstErr[i] = err
					}
					continue
				}
				t1 := time.Now()
				lats[i] = append(lats[i], t1.Sub(t0))
				if !t1.After(deadline) {
					inWindow[i]++
				}
			}
		})
	}
	wg.Wait()
	var cpu1 float64
	if hasCPU {
		cpu1, hasCPU = g.cpu()
	}
	if err := ctx.Err(); err != nil {
		return latency{}, err
	}

	// The rate counts the operations that ended within the window; the
	// percentiles cover every operation, including those still under way
	// at the deadline.
	all := slices.Concat(lats...)
	slices.Sort(all)
	r := latency{Name: name, Workers: c, Ops: len(all), Seconds: d.Seconds()}
	n := 0
	for i := range c {
		n += inWindow[i]
		r.Errors += errs[i]
		if firstErr[i] != nil && r.FirstErr == "" {
			r.FirstErr = firstErr[i].Error()
		}
	}
	r.PerSec = float64(n) / d.Seconds()
	r.P50ms = ms(percentile(all, 0.50))
	r.P90ms = ms(percentile(all, 0.90))
	r.P99ms = ms(percentile(all, 0.99))
	if len(all) > 0 {
		r.MaxMs = ms(all[len(all)-1])
	}
	if hasCPU {
		r.GatewayCPUSeconds = cpu1 - cpu0
		if len(all) > 0 {
			r.CPUPerOpMs = 1000 * r.GatewayCPUSeconds / float64(len(all))
		}
	}
	return r, nil
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// opTimeout bounds one operation: one that takes longer counts as an
// error. prepareTimeout bounds the preparation of a worker: its session,
// tried up to dialAttempts times, authentication and a first request.
const (
	opTimeout      = 10 * time.Second
	prepareTimeout = (dialAttempts + 2) * opTimeout
)

// dialGateway is thing.DialGateway bounded by ctx. DialGateway itself can
// block past its ctx while a DTLS handshake stalls (its CoAP ping is
// written under the connection's own context, which triggers the
// handshake), so it runs in a goroutine that ctx abandons; a session it
// opens late is closed.
func dialGateway(ctx context.Context, cfg thing.GatewayConfig) (*thing.Gateway, error) {
	type result struct {
		g   *thing.Gateway
		err error
	}
	done := make(chan result, 1)
	go func() {
		g, err := thing.DialGateway(ctx, cfg)
		done <- result{g, err}
	}()
	select {
	case r := <-done:
		return r.g, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.g != nil {
				r.g.Close()
			}
		}()
		return nil, fmt.Errorf("thing.DialGateway still running at its deadline (stalled DTLS handshake): %w", ctx.Err())
	}
}

// dialAttempts is how often a session that is needed (a worker's, an
// idle thing's) is tried.
const dialAttempts = 3

// dialRetry is dialGateway, each attempt bounded by opTimeout and tried
// up to dialAttempts times; it returns the number of failed attempts.
func dialRetry(ctx context.Context, cfg thing.GatewayConfig) (*thing.Gateway, int, error) {
	var err error
	for attempt := range dialAttempts {
		dctx, cancel := context.WithTimeout(ctx, opTimeout)
		var g *thing.Gateway
		g, err = dialGateway(dctx, cfg)
		cancel()
		if err == nil {
			return g, attempt, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, dialAttempts, fmt.Errorf("%d attempts: %w", dialAttempts, err)
}

// tokenWorker returns a worker whose thing (thingID(i), a restricted PoP
// session over conn) asks for an access token in a loop.
func tokenWorker(ctx context.Context, conn thing.Connector, id string, key *ecdsa.PrivateKey, release func()) (worker, error) {
	w := worker{cleanup: release}
	th, err := thing.New(ctx, thing.Config{Connector: conn, ID: id, Key: key})
	if err != nil {
		return w, fmt.Errorf("%s: %w", id, err)
	}
	w.cleanup = func() {
		lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		th.Logout(lctx) //nolint:errcheck // best effort: frees the AM session
		cancel()
		release()
	}
	w.op = func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		_, err := th.AccessToken(ctx, benchScope)
		return err
	}
	// One request before the clock starts (connections, JIT caches).
	return w, w.op(ctx)
}

// tokensViaGateway is scenario a) through the main gateway.
func (e *env) tokensViaGateway(ctx context.Context) (latency, error) {
	return e.tokensVia(ctx, e.gw, "through the gateway (CoAP/DTLS)")
}

// tokensVia is scenario a) through gateway g: each worker its own DTLS
// session (thing.DialGateway) and restricted session.
func (e *env) tokensVia(ctx context.Context, g benchGW, name string) (latency, error) {
	return measure(ctx, name, g, e.s.Concurrency, e.s.Duration, func(ctx context.Context, i int) (worker, error) {
		conn, failed, err := dialRetry(ctx, thing.GatewayConfig{Address: g.address(), Trust: g.trust(), Certificate: &e.certs[i]})
		if err != nil {
			return worker{}, err
		}
		if failed > 0 {
			e.progress.printf("a) worker %d: %d failed session attempts before its session opened", i, failed)
		}
		return tokenWorker(ctx, conn, thingID(i), e.keys[i], func() { conn.Close() })
	})
}

// tokensDirect is scenario a) directly over HTTP: each worker its own
// HTTP client (one keep-alive connection, as a thing of its own has).
func (e *env) tokensDirect(ctx context.Context) (latency, error) {
	return measure(ctx, "direct to AM (HTTP)", nil, e.s.Concurrency, e.s.Duration, func(ctx context.Context, i int) (worker, error) {
		tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}
		conn := &amclient.Client{URL: e.amURL, Realm: benchRealm, Tree: benchTree, HTTPClient: &http.Client{Transport: tr}}
		return tokenWorker(ctx, conn, thingID(i), e.keys[i], tr.CloseIdleConnections)
	})
}

// handshakes is scenario b) on the main gateway.
func (e *env) handshakes(ctx context.Context) (latency, error) {
	return e.handshakesOn(ctx, e.gw, "gateway (DTLS handshake + CoAP ping)")
}

// handshakesOn is scenario b) on gateway g: each worker dials it (a full
// DTLS handshake and a CoAP ping) and closes the session, in a loop.
func (e *env) handshakesOn(ctx context.Context, g benchGW, name string) (latency, error) {
	return measure(ctx, name, g, e.s.Concurrency, e.s.Duration, func(ctx context.Context, i int) (worker, error) {
		cfg := thing.GatewayConfig{Address: g.address(), Trust: g.trust(), Certificate: &e.certs[i]}
		return worker{op: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, opTimeout)
			defer cancel()
			conn, err := dialGateway(ctx, cfg)
			if err != nil {
				return err
			}
			return conn.Close()
		}}, nil
	})
}

// countingListener counts the connections it accepts: the TCP connections
// the gateway (and the direct clients) open to AM.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}
