package reliability_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"strconv"
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
func runFlows(t testing.TB, loss float64, n int, base uint64, limit time.Duration) []result {
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
					r := runFlow(s, f, loss, seedOf(f.name, base+uint64(i)), limit)
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

func runFlow(s *stack, f flow, loss float64, seed uint64, limit time.Duration) result {
	relay := s.link(loss, seed)
	defer relay.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	err := func() error {
		conn, err := dial(ctx, relay, func(c *thing.GatewayConfig) {
			c.AckTimeout = ackTimeout
			c.HandshakeInterval = handshakeInterval
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

// The link's timers in the tests: loopback answers in milliseconds, so a
// shorter ACK_TIMEOUT than RFC 7252's default recovers losses sooner
// (RELIABILITY_ACK and RELIABILITY_FLIGHT change them).
var (
	ackTimeout        = envDuration("RELIABILITY_ACK", 500*time.Millisecond)
	handshakeInterval = envDuration("RELIABILITY_FLIGHT", 500*time.Millisecond)
)

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

func TestLossExperiment(t *testing.T) {
	loss, _ := strconv.ParseFloat(os.Getenv("RELIABILITY_LOSS"), 64)
	res := runFlows(t, loss, envInt("RELIABILITY_FLOWS", 1), 1, 30*time.Second)
	byFlow := map[string][]result{}
	for _, r := range res {
		byFlow[r.flow] = append(byFlow[r.flow], r)
	}
	for name, rs := range byFlow {
		ok := 0
		var d []time.Duration
		for _, r := range rs {
			if r.err == nil {
				ok++
			} else {
				t.Logf("%s: %v after %v", name, r.err, r.took)
			}
			d = append(d, r.took)
		}
		slices.Sort(d)
		fmt.Printf("%-20s %d/%d median %v max %v\n", name, ok, len(rs), d[len(d)/2], d[len(d)-1])
	}
}
