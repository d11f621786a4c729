package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thingway/thingway/thing"
)

// result is one flow's outcome.
type result struct {
	flow string
	took time.Duration
	err  error
}

// runFlows runs n of each flow through its own relay at loss, each within
// limit, flows of the same AM configuration sharing a stack, and returns
// the results. Flow i of a kind uses seed base+i.
func runFlows(t testing.TB, loss float64, n int, base uint64, limit time.Duration, tm timers) []result {
	var (
		mu  sync.Mutex
		out []result
		wg  sync.WaitGroup
	)
	for _, group := range flowsByRealm() {
		s := newStack(t, stackConfig{realm: group[0].realm})
		for _, f := range group {
			if only := os.Getenv("RELIABILITY_ONLY"); only != "" && only != f.name {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					r := runFlow(s, f, loss, seedOf(f.name, base+uint64(i)), limit, tm)
					mu.Lock()
					out = append(out, r)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return out
}

// seedOf gives each flow kind its own seeds.
func seedOf(name string, i uint64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64() + i
}

func runFlow(s *stack, f flow, loss float64, seed uint64, limit time.Duration, tm timers) result {
	relay := s.link(loss, seed)
	defer relay.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	err := func() error {
		conn, err := dial(ctx, relay, func(c *thing.GatewayConfig) {
			c.AckTimeout, c.HandshakeInterval = tm.ack, tm.flight
		})
		if err != nil {
			return err
		}
		defer conn.Close()
		return f.run(ctx, s, conn, int(seed))
	}()
	if l := debugLog("relay"); l != nil {
		l.Debug("flow done", "flow", f.name, "seed", seed, "stats", fmt.Sprintf("%+v", relay.Stats()), "err", err)
	}
	return result{flow: f.name, took: time.Since(start), err: err}
}

// timers are the things' timers: loopback answers in milliseconds, so
// shorter ones than RFC 7252's defaults recover losses sooner.
type timers struct{ ack, flight time.Duration }

// benchTimers are BenchmarkLoss's (RELIABILITY_ACK and RELIABILITY_FLIGHT
// change them), testTimers the tests'.
func benchTimers() timers {
	return timers{envDuration("RELIABILITY_ACK", 500*time.Millisecond), envDuration("RELIABILITY_FLIGHT", 500*time.Millisecond)}
}

// Quicker timers than BenchmarkLoss's keep the tests short; loopback
// answers well within them even on a loaded machine (and a retransmission
// that overtakes a slow answer is dropped by the gateway as a duplicate).
var testTimers = timers{250 * time.Millisecond, 250 * time.Millisecond}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// summary is the outcome of one kind of flow: how many succeeded, and
// the median and slowest durations.
type summary struct {
	ok, n       int
	median, max time.Duration
	failures    []string
}

func summarise(res []result) map[string]*summary {
	out := map[string]*summary{}
	durs := map[string][]time.Duration{}
	for _, r := range res {
		s := out[r.flow]
		if s == nil {
			s = &summary{}
			out[r.flow] = s
		}
		s.n++
		if r.err == nil {
			s.ok++
		} else {
			s.failures = append(s.failures, fmt.Sprintf("%v after %v", r.err, r.took.Round(time.Millisecond)))
		}
		durs[r.flow] = append(durs[r.flow], r.took)
	}
	for name, d := range durs {
		slices.Sort(d)
		out[name].median, out[name].max = d[len(d)/2], d[len(d)-1]
	}
	return out
}

// Every example flow completes at 20% loss each way, with each
// retransmitted request answered from the gateway's cache: the limit is
// long (it only bounds a failure); the 30 s target is measured by
// BenchmarkLoss.
func TestLoss20(t *testing.T) {
	t.Parallel()
	for name, s := range summarise(runFlows(t, 0.2, 1, 1, 90*time.Second, testTimers)) {
		if s.ok != s.n {
			t.Errorf("%s at 20%% loss: %d of %d completed: %v", name, s.ok, s.n, s.failures)
		}
	}
}

// At 50% loss each way a flow completes or fails with the caller's
// deadline, named as such, and returns.
func TestLoss50(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackConfig{})
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := runFlow(s, flows[0], 0.5, uint64(i+1), 8*time.Second, testTimers)
			if r.err != nil && !errors.Is(r.err, context.DeadlineExceeded) {
				t.Errorf("flow %d at 50%% loss: %v, want success or context.DeadlineExceeded", i, r.err)
			}
			if r.err != nil && !strings.Contains(r.err.Error(), "deadline") {
				t.Errorf("flow %d: the error does not say the deadline passed: %v", i, r.err)
			}
		}()
	}
	wg.Wait()
}

// BenchmarkLoss measures the example flows through the relay at 0%, 20%,
// 30% and 50% loss each way, -benchtime Nx flows of each kind per rate
// (run them with -benchtime 20x), each within 30 s, and reports the share
// completed, the median and the slowest. docs/reliability.md quotes it.
//
//	go test -run '^$' -bench Loss -benchtime 20x ./internal/reliability
func BenchmarkLoss(b *testing.B) {
	for _, loss := range []float64{0, 0.2, 0.3, 0.5} {
		b.Run(fmt.Sprintf("loss=%.0f%%", loss*100), func(b *testing.B) {
			res := runFlows(b, loss, b.N, 1000, 30*time.Second, benchTimers())
			var all []time.Duration
			ok := 0
			for _, r := range res {
				all = append(all, r.took)
				if r.err == nil {
					ok++
				}
			}
			slices.Sort(all)
			names := make([]string, 0)
			sums := summarise(res)
			for name := range sums {
				names = append(names, name)
			}
			slices.Sort(names)
			for _, name := range names {
				s := sums[name]
				b.Logf("%-20s %2d/%-2d completed, median %5.2f s, slowest %5.2f s", name, s.ok, s.n, s.median.Seconds(), s.max.Seconds())
				for _, f := range s.failures {
					b.Logf("    %s", f)
				}
			}
			b.ReportMetric(100*float64(ok)/float64(len(res)), "%completed")
			b.ReportMetric(all[len(all)/2].Seconds(), "s-median")
			b.ReportMetric(all[len(all)-1].Seconds(), "s-slowest")
			b.ReportMetric(0, "ns/op")
		})
	}
}
