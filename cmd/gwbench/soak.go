package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/thingway/thingway/thing"
)

// The soak scenario (--soak DURATION) holds --things idle DTLS sessions
// (a child process, as c) opens them) for the duration while --concurrency
// active things work beside them: most ask for an access token every
// --soak-interval on a session they keep, a quarter of them (at least one)
// close their session and open a new one, with a new authentication and a
// token, every interval. Every --soak-window it reports the window's
// requests, errors and latency percentiles and the gateway's memory and
// goroutines (flat means no leak); at the end, once every session is
// closed, the gateway's goroutines against where they started.

// Bounds of the soak settings.
const (
	maxSoak          = 24 * time.Hour
	minSoakWindow    = 100 * time.Millisecond
	minSoakInterval  = 10 * time.Millisecond
	soakSettleMax    = time.Minute // the wait for the gateway to close the sessions
	soakGoroutineGap = 10          // goroutines above the start that count as back
)

// soakWindow is one window of the soak.
type soakWindow struct {
	EndS       float64   `json:"end_s"` // seconds since the soak began
	Tokens     int       `json:"tokens"`
	Reconnects int       `json:"reconnects"`
	Errors     int       `json:"errors"`
	P50ms      float64   `json:"p50_ms"`
	P99ms      float64   `json:"p99_ms"`
	MaxMs      float64   `json:"max_ms"`
	Gateway    memSample `json:"gateway"`
}

// soakResult is the soak scenario's report.
type soakResult struct {
	Date         time.Time    `json:"date"`
	Machine      machine      `json:"machine"`
	Settings     settings     `json:"settings"`
	IdleThings   int          `json:"idle_things"`
	Active       int          `json:"active_things"`
	Reconnecting int          `json:"reconnecting_things"`
	Start        memSample    `json:"gateway_start"` // before any session
	Loaded       memSample    `json:"gateway_loaded"`
	Windows      []soakWindow `json:"windows"`
	// Closed is the gateway once every session closed; ClosedAfterS how
	// long after the closes it got there (or soakSettleMax, when its
	// goroutines did not come back).
	Closed       memSample `json:"gateway_closed"`
	ClosedAfterS float64   `json:"closed_after_s"`
	Back         bool      `json:"goroutines_back"`
	Errors       int       `json:"errors"`
	FirstErr     string    `json:"first_error,omitempty"`
	LoadStart    float64   `json:"load_average_start"`
	LoadEnd      float64   `json:"load_average_end"`
}

// soakTally collects the operations of the current window.
type soakTally struct {
	mu         sync.Mutex
	lat        []time.Duration
	tokens     int
	reconnects int
	errors     int
	total      int
	firstErr   string
}

func (t *soakTally) add(d time.Duration, reconnect bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.errors++
		t.total++
		if t.firstErr == "" {
			t.firstErr = err.Error()
		}
		return
	}
	t.lat = append(t.lat, d)
	if reconnect {
		t.reconnects++
	} else {
		t.tokens++
	}
}

// take ends the window.
func (t *soakTally) take(end time.Duration) soakWindow {
	t.mu.Lock()
	lat := t.lat
	w := soakWindow{EndS: end.Seconds(), Tokens: t.tokens, Reconnects: t.reconnects, Errors: t.errors}
	t.lat, t.tokens, t.reconnects, t.errors = nil, 0, 0, 0
	t.mu.Unlock()
	slices.Sort(lat)
	if len(lat) > 0 {
		w.P50ms, w.P99ms, w.MaxMs = ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99)), ms(lat[len(lat)-1])
	}
	return w
}

// runSoak runs the soak scenario and prints its report.
func runSoak(ctx context.Context, s settings, asJSON bool, stdout io.Writer, p *progress) error {
	r := &soakResult{Date: time.Now().UTC().Truncate(time.Second), Machine: thisMachine(), Settings: s,
		IdleThings: s.Things, Active: s.Concurrency, Reconnecting: max(1, s.Concurrency/4), LoadStart: loadAverage()}
	p.printf("soak: %v, windows of %v: %d idle things, %d active (a token every %v), %d of them reconnecting; load average %.2f",
		s.Soak, s.SoakWindow, r.IdleThings, r.Active, s.SoakInterval, r.Reconnecting, r.LoadStart)
	e, err := start(ctx, s, p)
	if err != nil {
		return err
	}
	defer e.close()
	g := e.gw
	if r.Start, err = g.memory(); err != nil {
		return err
	}
	_, stopChild, err := e.startChild(ctx, g)
	if err != nil {
		return err
	}
	childStopped := false
	defer func() {
		if !childStopped {
			stopChild() //nolint:errcheck // an earlier error is reported
		}
	}()
	p.printf("soak: %d idle sessions open", s.Things)

	var tally soakTally
	wctx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range s.Concurrency {
		wg.Go(func() { e.soakWorker(wctx, i, i < r.Reconnecting, &tally) })
	}
	if r.Loaded, err = g.memory(); err != nil {
		stopWorkers()
		wg.Wait()
		return err
	}

	begin := time.Now()
	for elapsed := time.Duration(0); elapsed < s.Soak; {
		elapsed += min(s.SoakWindow, s.Soak-elapsed)
		timer := time.NewTimer(time.Until(begin.Add(elapsed)))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			stopWorkers()
			wg.Wait()
			return ctx.Err()
		}
		w := tally.take(elapsed)
		if w.Gateway, err = g.memory(); err != nil {
			w.Gateway = memSample{RSS: -1}
		}
		r.Windows = append(r.Windows, w)
		p.printf("soak: %4.0fs: %d tokens, %d reconnects, %d errors, p50 %.1f ms, p99 %.1f ms; gateway %s heap, %s RSS, %d goroutines",
			w.EndS, w.Tokens, w.Reconnects, w.Errors, w.P50ms, w.P99ms, mib(float64(w.Gateway.HeapInuse)), mib(float64(w.Gateway.RSS)), w.Gateway.Goroutines)
	}
	stopWorkers()
	wg.Wait()
	childStopped = true
	if err := stopChild(); err != nil {
		return err
	}
	closed := time.Now()
	r.Closed, r.Back = soakSettle(ctx, g, r.Start.Goroutines+soakGoroutineGap)
	r.ClosedAfterS = time.Since(closed).Seconds()
	r.Errors, r.FirstErr = tally.total, tally.firstErr
	r.LoadEnd = loadAverage()
	p.printf("soak: every session closed; gateway goroutines %d (%d at the start) %.1fs later", r.Closed.Goroutines, r.Start.Goroutines, r.ClosedAfterS)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.print(stdout)
}

// soakSettle waits until the gateway's goroutines are at most want, for
// soakSettleMax at the most, and returns its memory then.
func soakSettle(ctx context.Context, g benchGW, want int) (memSample, bool) {
	deadline := time.Now().Add(soakSettleMax)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		m, err := g.memory()
		if err == nil && m.Goroutines <= want {
			return m, true
		}
		if time.Now().After(deadline) {
			return m, false
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return m, false
		}
	}
}

// soakWorker is active thing i: a token every interval on a session it
// keeps, or, reconnecting, a new session, authentication and token every
// interval. It starts at a random point of the first interval, so that
// the things do not work in step.
func (e *env) soakWorker(ctx context.Context, i int, reconnect bool, t *soakTally) {
	interval := e.s.SoakInterval
	timer := time.NewTimer(rand.N(interval))
	defer timer.Stop()
	var conn *thing.Gateway
	var th *thing.Thing
	closeConn := func() {
		if th != nil {
			lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			th.Logout(lctx) //nolint:errcheck // best effort: frees the AM session
			cancel()
			th = nil
		}
		if conn != nil {
			conn.Close()
			conn = nil
		}
	}
	defer closeConn()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(interval)
		if reconnect {
			closeConn()
		}
		start := time.Now()
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		err := func() error {
			if conn == nil {
				var err error
				if conn, err = dialGateway(octx, thing.GatewayConfig{Address: e.gw.address(), Trust: e.gw.trust(), Certificate: &e.certs[i]}); err != nil {
					return fmt.Errorf("dial: %w", err)
				}
			}
			if th == nil {
				var err error
				if th, err = thing.New(octx, thing.Config{Connector: conn, ID: thingID(i), Key: e.keys[i]}); err != nil {
					return fmt.Errorf("authenticate: %w", err)
				}
			}
			_, err := th.AccessToken(octx, benchScope)
			return err
		}()
		cancel()
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return // the soak ended during the request
		}
		if err != nil {
			closeConn() // start again with a new session
		}
		t.add(time.Since(start), reconnect, err)
	}
}

func (r *soakResult) print(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	m, s := r.Machine, r.Settings
	fmt.Fprintf(w, "Thingway gateway soak (gwbench --soak), %s\n", r.Date.Format(time.RFC3339))
	fmt.Fprintf(w, "machine:   %d CPUs (GOMAXPROCS %d), %s/%s, %s\n", m.NumCPU, m.GOMAXPROCS, m.GOOS, m.GOARCH, m.GoVersion)
	fmt.Fprintf(w, "settings:  --soak %v --soak-window %v --soak-interval %v --things %d --concurrency %d --gateway-mode %s\n",
		s.Soak, s.SoakWindow, s.SoakInterval, s.Things, s.Concurrency, s.GatewayMode)
	fmt.Fprintf(w, "load:      1-minute load average %.2f at the start, %.2f at the end\n", r.LoadStart, r.LoadEnd)
	fmt.Fprintf(w, "things:    %d idle DTLS sessions (child process); %d active, a token every %v; %d of them a new session, authentication and token every %v\n",
		r.IdleThings, r.Active, s.SoakInterval, r.Reconnecting, s.SoakInterval)
	fmt.Fprintf(w, "\n   window end\ttokens\treconnects\terrors\tp50 ms\tp99 ms\tmax ms\tgateway heap\tRSS\tgoroutines\n")
	for _, x := range r.Windows {
		fmt.Fprintf(w, "   %.0fs\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%s\t%s\t%d\n", x.EndS, x.Tokens, x.Reconnects, x.Errors,
			x.P50ms, x.P99ms, x.MaxMs, mib(float64(x.Gateway.HeapInuse)), mib(float64(x.Gateway.RSS)), x.Gateway.Goroutines)
	}
	fmt.Fprintf(w, "\n   gateway\theap in use\tgoroutine stacks\tRSS\tgoroutines\n")
	memRow(w, "at the start, no sessions", r.Start)
	memRow(w, "idle sessions open, workers starting", r.Loaded)
	memRow(w, fmt.Sprintf("every session closed (%.1fs later)", r.ClosedAfterS), r.Closed)
	back := "back to the start"
	if !r.Back {
		back = fmt.Sprintf("NOT back within %v", soakSettleMax)
	}
	fmt.Fprintf(w, "   goroutines after all closed: %d against %d at the start: %s\n", r.Closed.Goroutines, r.Start.Goroutines, back)
	fmt.Fprintf(w, "   errors: %d", r.Errors)
	if r.FirstErr != "" {
		fmt.Fprintf(w, " (first: %s)", r.FirstErr)
	}
	fmt.Fprintln(w)
	return w.Flush()
}
