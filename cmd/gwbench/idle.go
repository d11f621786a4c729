package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/thing"
)

// memSample is a process's memory after a full collection.
type memSample struct {
	// Source is where the figures come from: self (gwbench's own
	// process, runtime.MemStats after runtime.GC and debug.FreeOSMemory),
	// metrics (a gateway process: its /metrics after a collection it was
	// asked for) or proc (a process without metrics: RSS only).
	Source     string `json:"source"`
	HeapInuse  uint64 `json:"heap_inuse_bytes"`  // runtime.MemStats.HeapInuse
	HeapAlloc  uint64 `json:"heap_alloc_bytes"`  // runtime.MemStats.HeapAlloc: live objects only
	StackInuse uint64 `json:"stack_inuse_bytes"` // runtime.MemStats.StackInuse (goroutine stacks)
	RSS        int64  `json:"rss_bytes"`         // VmRSS of /proc/PID/status; -1 where unavailable
	// FreeKept is free heap the Go runtime still holds (HeapIdle −
	// HeapReleased), part of RSS: 0 after debug.FreeOSMemory (source
	// self); a gateway process returns it to the OS only gradually.
	FreeKept   int64 `json:"free_heap_kept_bytes"`
	Goroutines int   `json:"goroutines"`
}

// Values of memSample.Source.
const (
	sourceSelf    = "self"
	sourceMetrics = "metrics"
	sourceProc    = "proc"
)

// sampleMemory collects garbage, returns freed pages to the OS (so that RSS
// follows the live heap) and reads the figures.
func sampleMemory() memSample {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ := statusRSS("/proc/self/status")
	return memSample{Source: sourceSelf, HeapInuse: ms.HeapInuse, HeapAlloc: ms.HeapAlloc, StackInuse: ms.StackInuse,
		RSS: rss, FreeKept: int64(ms.HeapIdle) - int64(ms.HeapReleased), Goroutines: runtime.NumGoroutine()}
}

// idleResult is scenario c).
type idleResult struct {
	Things  int    `json:"things"`
	Clients string `json:"clients"` // process or in-process
	// DialRetries counts the session attempts that failed (a stalled or
	// refused handshake) and were tried again.
	DialRetries int `json:"dial_retries"`
	// Measured is the process measured: the gateway's (with the idle local
	// AM), or client and gateway together with in-process clients.
	Before memSample `json:"before"`
	After  memSample `json:"after"`
	Closed memSample `json:"after_close"` // once the sessions were closed again
	// Drained: the goroutines once back at Before's (plus drainSlack), or
	// when drainWait had passed; DrainedAfter is how long after the
	// sessions closed that was.
	Drained      memSample     `json:"after_close_drained"`
	DrainedAfter time.Duration `json:"after_close_drained_ns"`
	// Per thing, in bytes (goroutines: per thing).
	HeapPerThing       float64 `json:"heap_per_thing_bytes"`
	StackPerThing      float64 `json:"stack_per_thing_bytes"`
	RSSPerThing        float64 `json:"rss_per_thing_bytes"`
	GoroutinesPerThing float64 `json:"goroutines_per_thing"`
	// RSSLessFreePerThing is RSSPerThing without the free heap the
	// runtime kept (memSample.FreeKept): what the RSS would be had the
	// gateway returned it to the OS.
	RSSLessFreePerThing float64 `json:"rss_less_free_heap_per_thing_bytes"`
	// The clients' own process (process mode only).
	Client *childReport `json:"client_process,omitempty"`
}

// childReport is what the child process prints once its sessions are open.
type childReport struct {
	Sessions           int       `json:"sessions"`
	DialRetries        int       `json:"dial_retries"`
	Before             memSample `json:"before"`
	After              memSample `json:"after"`
	HeapPerThing       float64   `json:"heap_per_thing_bytes"`
	StackPerThing      float64   `json:"stack_per_thing_bytes"`
	RSSPerThing        float64   `json:"rss_per_thing_bytes"`
	GoroutinesPerThing float64   `json:"goroutines_per_thing"`
	Error              string    `json:"error,omitempty"`
}

// settle is how long the gateway gets to finish its side of the last
// handshakes before it is measured.
const settle = time.Second

// How c) waits for the goroutines of the closed sessions to go: until
// they are back to the count before the sessions (give or take
// drainSlack), at most drainWait, sampling every drainPoll.
const (
	drainSlack = 2
	drainWait  = 15 * time.Second
	drainPoll  = 500 * time.Millisecond
)

// idle is scenario c) on the main gateway.
func (e *env) idle(ctx context.Context) (*idleResult, error) {
	return e.idleOn(ctx, e.gw, e.s.IdleClients)
}

// idleOn is scenario c) on gateway g: its process before and after n
// things each opened a DTLS session (and pinged once), divided by n.
func (e *env) idleOn(ctx context.Context, g benchGW, clients string) (*idleResult, error) {
	n := e.s.Things
	r := &idleResult{Things: n, Clients: clients}
	var err error
	if r.Before, err = g.memory(); err != nil {
		return nil, err
	}
	switch clients {
	case idleInProcess:
		e.progress.printf("c) idle things: opening %d DTLS sessions in this process", n)
		sessions, retried, err := openIdle(ctx, g.address(), g.trust(), n, e.s.Concurrency, e.progress)
		r.DialRetries = retried
		if err != nil {
			closeAll(sessions)
			return nil, err
		}
		time.Sleep(settle)
		r.After, err = g.memory()
		closeAll(sessions)
		if err != nil {
			return nil, err
		}
	default:
		rep, stop, err := e.startChild(ctx, g)
		if err != nil {
			return nil, err
		}
		r.Client = rep
		r.DialRetries = rep.DialRetries
		time.Sleep(settle)
		r.After, err = g.memory()
		if pg, ok := g.(*procGateway); ok && pg.profileDir != "" && err == nil {
			pg.snapshot("c-idle")
		}
		if err := errors.Join(err, stop()); err != nil {
			return nil, err
		}
	}
	time.Sleep(settle)
	closed := time.Now()
	if r.Closed, err = g.memory(); err != nil {
		return nil, err
	}
	// Do the sessions still held go later (their close_notify is still
	// being handled), or stay (lost: they go at their idle timeout)?
	if r.Drained, r.DrainedAfter, err = sampleUntil(g, r.Closed, closed, drainWait, func(m memSample) bool {
		return m.Goroutines <= r.Before.Goroutines+drainSlack
	}); err != nil {
		return nil, err
	}
	r.HeapPerThing, r.StackPerThing, r.RSSPerThing, r.GoroutinesPerThing = perThing(r.Before, r.After, n)
	r.RSSLessFreePerThing = float64((r.After.RSS-r.After.FreeKept)-(r.Before.RSS-r.Before.FreeKept)) / float64(n)
	return r, nil
}

// sampleUntil samples g's memory every drainPoll, starting from first
// (taken at since), until done accepts a sample or wait has passed since
// then; it returns the last sample and how long after since it came.
func sampleUntil(g benchGW, first memSample, since time.Time, wait time.Duration, done func(memSample) bool) (memSample, time.Duration, error) {
	m := first
	for !done(m) && time.Since(since) < wait {
		time.Sleep(drainPoll)
		var err error
		if m, err = g.memory(); err != nil {
			return m, 0, err
		}
	}
	return m, time.Since(since), nil
}

func perThing(before, after memSample, n int) (heap, stack, rss, goroutines float64) {
	d := func(a, b int64) float64 { return float64(b-a) / float64(n) }
	return d(int64(before.HeapInuse), int64(after.HeapInuse)), d(int64(before.StackInuse), int64(after.StackInuse)),
		d(before.RSS, after.RSS), d(int64(before.Goroutines), int64(after.Goroutines))
}

// childTimeout bounds the child's wait for the parent.
const childTimeout = 10 * time.Minute

// startChild opens --things idle sessions in child processes (gwbench's
// hidden subcommand), at most maxProcessSessions in each, one child after
// the other; it returns once all of them are open, with the children's
// reports added up. stop makes every child close its sessions and exit.
func (e *env) startChild(ctx context.Context, g benchGW) (*childReport, func() error, error) {
	var stops []func() error
	stopAll := func() error {
		var errs []error
		for _, stop := range stops {
			errs = append(errs, stop())
		}
		return errors.Join(errs...)
	}
	var sum childReport
	for left := e.s.Things; left > 0; {
		n := min(left, maxProcessSessions)
		rep, stop, err := e.startOneChild(ctx, g, n)
		if err != nil {
			return nil, nil, errors.Join(err, stopAll())
		}
		stops = append(stops, stop)
		sum.add(rep)
		left -= n
	}
	if len(stops) > 1 {
		e.progress.printf("c) idle things: %d sessions open in %d child processes", sum.Sessions, len(stops))
	}
	return &sum, stopAll, nil
}

// add adds a child's report to r: sessions, retries and memory summed,
// the per-thing figures recomputed over the sum.
func (r *childReport) add(c *childReport) {
	r.Sessions += c.Sessions
	r.DialRetries += c.DialRetries
	r.Before = r.Before.plus(c.Before)
	r.After = r.After.plus(c.After)
	r.HeapPerThing, r.StackPerThing, r.RSSPerThing, r.GoroutinesPerThing = perThing(r.Before, r.After, r.Sessions)
}

// plus is the figures of two processes together.
func (m memSample) plus(o memSample) memSample {
	m.Source = o.Source
	m.HeapInuse += o.HeapInuse
	m.HeapAlloc += o.HeapAlloc
	m.StackInuse += o.StackInuse
	m.RSS += o.RSS
	m.FreeKept += o.FreeKept
	m.Goroutines += o.Goroutines
	return m
}

// startOneChild runs one child process that opens n idle sessions and
// reports once they are all open; stop makes it close them and exit.
func (e *env) startOneChild(ctx context.Context, g benchGW, n int) (*childReport, func() error, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("idle clients: %w", err)
	}
	cmd := exec.Command(exe, childCommand,
		"--"+flagGateway, g.address(), "--"+flagPin, g.pinArg(),
		"--"+flagThings, strconv.Itoa(n), "--"+flagConcurrency, strconv.Itoa(e.s.Concurrency))
	cmd.Stderr = e.progress
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("idle clients: %w", err)
	}
	e.progress.printf("c) idle things: child process %d opens %d DTLS sessions", cmd.Process.Pid, n)
	stop := func() error {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("idle clients: %w", err)
			}
			return nil
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			return errors.New("idle clients: the child process did not exit; killed")
		}
	}
	lines := make(chan []byte, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		if sc.Scan() {
			lines <- bytes.Clone(sc.Bytes())
		}
		close(lines)
		io.Copy(io.Discard, stdout) //nolint:errcheck // drain
	}()
	var line []byte
	select {
	case l, ok := <-lines:
		if !ok {
			return nil, nil, errors.Join(errors.New("idle clients: the child process exited without a report"), stop())
		}
		line = l
	case <-ctx.Done():
		return nil, nil, errors.Join(ctx.Err(), stop())
	}
	var rep childReport
	if err := json.Unmarshal(line, &rep); err != nil {
		return nil, nil, errors.Join(fmt.Errorf("idle clients: report %q: %w", line, err), stop())
	}
	if rep.Error != "" {
		return nil, nil, errors.Join(fmt.Errorf("idle clients: %s", rep.Error), stop())
	}
	return &rep, stop, nil
}

// runIdleChild is the hidden subcommand: it opens n idle sessions, prints
// a childReport line, waits until stdin ends and closes them.
func runIdleChild(ctx context.Context, addr, pin string, n, c int, stdin io.Reader, stdout io.Writer) error {
	if n < 1 || n > maxProcessSessions || c < 1 || c > maxConcurrency {
		return fmt.Errorf("%s: --%s and --%s out of bounds", childCommand, flagThings, flagConcurrency)
	}
	trust := coapx.Trust{InsecureAnyGateway: pin == pinAny}
	if !trust.InsecureAnyGateway {
		sum, err := hex.DecodeString(pin)
		if err != nil || len(sum) != 32 {
			return fmt.Errorf("%s: --%s wants a hex SHA-256 (or %s)", childCommand, flagPin, pinAny)
		}
		trust.PinnedSHA256 = sum
	}
	ctx, cancel := context.WithTimeout(ctx, childTimeout)
	defer cancel()
	rep := childReport{Sessions: n, Before: sampleMemory()}
	sessions, retried, err := openIdle(ctx, addr, trust, n, c, nil)
	rep.DialRetries = retried
	defer closeAll(sessions)
	if err != nil {
		rep.Error = err.Error()
	} else {
		rep.After = sampleMemory()
		rep.HeapPerThing, rep.StackPerThing, rep.RSSPerThing, rep.GoroutinesPerThing = perThing(rep.Before, rep.After, n)
	}
	b, _ := json.Marshal(rep)
	if _, err := fmt.Fprintf(stdout, "%s\n", b); err != nil {
		return err
	}
	if rep.Error != "" {
		return nil // the parent reports it
	}
	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, stdin); close(eof) }() //nolint:errcheck // EOF or error: both mean stop
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return nil
}

// openIdle opens n gateway sessions (each a thing.DialGateway, which
// pings), c at a time, and returns them open with the number of failed
// attempts that were tried again.
func openIdle(ctx context.Context, addr string, trust coapx.Trust, n, c int, p *progress) ([]*thing.Gateway, int, error) {
	sessions := make([]*thing.Gateway, n)
	var next, opened, retried atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range min(c, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				g, failed, err := dialRetry(ctx, thing.GatewayConfig{Address: addr, Trust: trust})
				retried.Add(int64(failed))
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("session %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				sessions[i] = g
				if k := opened.Add(1); p != nil && k%1000 == 0 {
					p.printf("c) idle things: %d sessions open", k)
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return sessions, int(retried.Load()), firstErr
}

// closeAll closes the sessions that were opened, one after the other.
// Closed all at once, a burst of close_notify alerts overflows the
// gateway's socket and some are lost: the gateway then keeps those
// sessions until its idle timeout, and later handshakes from a reused
// client port can stall on them.
func closeAll(sessions []*thing.Gateway) {
	for _, g := range sessions {
		if g != nil {
			g.Close()
		}
	}
}
