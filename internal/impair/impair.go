// Package impair is a UDP relay that makes a loopback link behave like a
// lossy radio link, for tests and benchmarks (these machines have no
// netem): it drops, duplicates, reorders and delays datagrams in each
// direction with given probabilities.
//
// # Use
//
// A relay listens on one address and forwards each client's datagrams to
// the upstream address from a socket of its own for that client (as a NAT
// does), and the answers back:
//
//	r, err := impair.Listen("udp4", "127.0.0.1:0", impair.Config{
//		Upstream: gatewayAddr,
//		Up:       impair.Impairment{Drop: 0.2},
//		Down:     impair.Impairment{Drop: 0.2},
//		Seed:     1,
//	})
//	...
//	defer r.Close()
//	// things dial r.Addr() instead of gatewayAddr
//
// # Determinism
//
// Each client's flow has one random source per direction, seeded from
// Config.Seed and the flow's number (the order in which clients were first
// seen): the same datagrams in the same order meet the same fate for the
// same seed. Timing (retransmission timers, delays) still varies from run
// to run, so the datagrams themselves may differ.
package impair

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Impairment is what happens to the datagrams of one direction.
// Probabilities are in [0, 1]; each is drawn independently per datagram.
type Impairment struct {
	// Drop is the probability that a datagram is dropped.
	Drop float64
	// Duplicate is the probability that a datagram that is not dropped is
	// sent twice.
	Duplicate float64
	// Reorder is the probability that a datagram is held back and sent
	// after the next datagram of its direction (or after ReorderHold,
	// if no other one comes).
	Reorder float64
	// ReorderHold bounds how long a held-back datagram waits for the next
	// one. If zero, 50 ms.
	ReorderHold time.Duration
	// Delay is added to every datagram.
	Delay time.Duration
	// Jitter is a uniformly random extra delay in [0, Jitter); datagrams
	// with different delays can overtake one another.
	Jitter time.Duration
}

func (im Impairment) validate() error {
	for _, p := range []float64{im.Drop, im.Duplicate, im.Reorder} {
		if !(p >= 0 && p <= 1) { // also NaN
			return fmt.Errorf("impair: probability %v not in [0, 1]", p)
		}
	}
	if im.Delay < 0 || im.Jitter < 0 || im.ReorderHold < 0 {
		return errors.New("impair: negative delay")
	}
	return nil
}

// Config configures a [Relay].
type Config struct {
	// Upstream is the host:port datagrams are relayed to. Required.
	Upstream string
	// Up is the impairment of datagrams from clients to Upstream.
	Up Impairment
	// Down is the impairment of datagrams from Upstream to clients.
	Down Impairment
	// Seed seeds the random decisions (see the package comment).
	Seed uint64
	// Logger receives a debug line per new client flow and per datagram.
	// If nil, the relay is silent.
	Logger *slog.Logger
}

// Direction counters of a relay.
type Counters struct {
	In         int64 // datagrams received
	Out        int64 // datagrams sent (duplicates included)
	Dropped    int64 // datagrams dropped
	Duplicated int64 // datagrams sent a second time
	Reordered  int64 // datagrams held back behind the next one
	Delayed    int64 // datagrams sent after a delay
}

// Stats are a relay's counters by direction.
type Stats struct {
	Up, Down Counters
	Flows    int // client flows seen
}

type counters struct {
	in, out, dropped, duplicated, reordered, delayed atomic.Int64
}

func (c *counters) snapshot() Counters {
	return Counters{In: c.in.Load(), Out: c.out.Load(), Dropped: c.dropped.Load(), Duplicated: c.duplicated.Load(),
		Reordered: c.reordered.Load(), Delayed: c.delayed.Load()}
}

// Relay is a running impairment relay.
type Relay struct {
	cfg      Config
	conn     *net.UDPConn
	upstream *net.UDPAddr
	log      *slog.Logger
	up, down counters

	mu     sync.Mutex // guards flows, n, im, closed, timers
	flows  map[string]*flow
	n      uint64
	im     [2]Impairment // by direction
	closed bool
	timers map[*time.Timer]struct{}

	wg sync.WaitGroup // the read loops and pending delayed sends
}

const (
	dirUp = iota
	dirDown
)

// flow is one client's mapping: its own upstream socket, and one random
// source and one held-back datagram per direction.
type flow struct {
	client *net.UDPAddr
	conn   *net.UDPConn // to upstream
	dir    [2]struct {
		mu   sync.Mutex
		rng  *rand.Rand
		held []byte
		hold *time.Timer
	}
}

// Listen starts a relay listening on address for network (udp, udp4 or
// udp6).
func Listen(network, address string, cfg Config) (*Relay, error) {
	if cfg.Upstream == "" {
		return nil, errors.New("impair: Config.Upstream is required")
	}
	if err := cfg.Up.validate(); err != nil {
		return nil, err
	}
	if err := cfg.Down.validate(); err != nil {
		return nil, err
	}
	up, err := net.ResolveUDPAddr(network, cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("impair: upstream: %w", err)
	}
	la, err := net.ResolveUDPAddr(network, address)
	if err != nil {
		return nil, fmt.Errorf("impair: listen: %w", err)
	}
	c, err := net.ListenUDP(network, la)
	if err != nil {
		return nil, fmt.Errorf("impair: listen: %w", err)
	}
	r := &Relay{cfg: cfg, conn: c, upstream: up, log: cfg.Logger, flows: map[string]*flow{},
		timers: map[*time.Timer]struct{}{}}
	r.im = [2]Impairment{cfg.Up, cfg.Down}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.wg.Add(1)
	go r.readClients()
	return r, nil
}

// Addr is the address clients send to.
func (r *Relay) Addr() net.Addr { return r.conn.LocalAddr() }

// Stats returns the counters so far.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	n := len(r.flows)
	r.mu.Unlock()
	return Stats{Up: r.up.snapshot(), Down: r.down.snapshot(), Flows: n}
}

// SetImpairment changes both directions' impairments for the datagrams
// that arrive from now on; Drop 1 each way is a partition.
func (r *Relay) SetImpairment(up, down Impairment) error {
	if err := up.validate(); err != nil {
		return err
	}
	if err := down.validate(); err != nil {
		return err
	}
	r.mu.Lock()
	r.im = [2]Impairment{up, down}
	r.mu.Unlock()
	return nil
}

// Rebind forgets every client flow and closes their upstream sockets:
// the next datagram of each client comes to upstream from a new port, as
// after a NAT forgot its mappings.
func (r *Relay) Rebind() {
	r.mu.Lock()
	flows := r.flows
	r.flows = map[string]*flow{}
	r.mu.Unlock()
	for _, f := range flows {
		f.conn.Close()
	}
}

// Close stops the relay: its sockets are closed, datagrams still delayed
// or held back are dropped, and Close returns when its goroutines have
// ended. Close may be called more than once.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.wg.Wait()
		return nil
	}
	r.closed = true
	flows := r.flows
	r.flows = map[string]*flow{}
	for t := range r.timers {
		if t.Stop() {
			r.wg.Done()
		}
	}
	clear(r.timers)
	r.mu.Unlock()
	err := r.conn.Close()
	for _, f := range flows {
		f.conn.Close()
	}
	r.wg.Wait()
	return err
}

// maxDatagram is the largest datagram relayed.
const maxDatagram = 64 << 10

func (r *Relay) readClients() {
	defer r.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP port unreachable reported on the socket
		}
		f, err := r.flowOf(from)
		if err != nil {
			r.log.Debug("impair: cannot open an upstream socket", "client", from.String(), "error", err.Error())
			continue
		}
		if f == nil {
			return // closed
		}
		r.relay(f, dirUp, append([]byte(nil), buf[:n]...))
	}
}

// flowOf returns from's flow, opening it on its first datagram; nil
// once the relay is closed.
func (r *Relay) flowOf(from *net.UDPAddr) (*flow, error) {
	key := from.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil
	}
	if f, ok := r.flows[key]; ok {
		return f, nil
	}
	c, err := net.DialUDP(r.upstream.Network(), nil, r.upstream)
	if err != nil {
		return nil, err
	}
	f := &flow{client: from, conn: c}
	for d := range f.dir {
		k := r.n<<1 | uint64(d)
		f.dir[d].rng = rand.New(rand.NewPCG(mix(r.cfg.Seed^mix(k)), mix(k^0x5851f42d4c957f2d)))
	}
	r.n++
	r.flows[key] = f
	r.log.Debug("impair: new flow", "client", key, "upstream_local", c.LocalAddr().String())
	r.wg.Add(1)
	go r.readUpstream(f)
	return f, nil
}

// mix is SplitMix64's finaliser: nearby seeds (1, 2, 3) give unrelated
// random sources, which seeding PCG with them directly does not.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func (r *Relay) readUpstream(f *flow) {
	defer r.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, err := f.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // upstream not listening (yet): ICMP port unreachable
		}
		r.relay(f, dirDown, append([]byte(nil), buf[:n]...))
	}
}

func (r *Relay) counters(d int) *counters {
	if d == dirUp {
		return &r.up
	}
	return &r.down
}

// relay applies direction d's impairment to b and sends what is left.
func (r *Relay) relay(f *flow, d int, b []byte) {
	c := r.counters(d)
	c.in.Add(1)
	r.mu.Lock()
	im := r.im[d]
	r.mu.Unlock()
	fd := &f.dir[d]
	fd.mu.Lock()
	// Every draw is made for every datagram, so that one probability's
	// value does not change the others' sequence.
	drop := fd.rng.Float64() < im.Drop
	dup := fd.rng.Float64() < im.Duplicate
	reorder := fd.rng.Float64() < im.Reorder
	jitter := fd.rng.Float64()
	var out [][]byte
	switch {
	case drop:
		c.dropped.Add(1)
	case reorder && fd.held == nil:
		c.reordered.Add(1)
		fd.held = b
		if dup {
			out = append(out, b) // the first copy goes now, the second later
			c.duplicated.Add(1)
		}
		hold := im.ReorderHold
		if hold <= 0 {
			hold = 50 * time.Millisecond
		}
		fd.hold = r.after(hold, func() { r.releaseHeld(f, d) })
	default:
		out = append(out, b)
		if dup {
			out = append(out, b)
			c.duplicated.Add(1)
		}
		if fd.held != nil { // the held-back one goes after this one
			out = append(out, fd.held)
			fd.held = nil
			if fd.hold != nil {
				r.stop(fd.hold)
				fd.hold = nil
			}
		}
	}
	fd.mu.Unlock()
	if r.log.Enabled(context.Background(), slog.LevelDebug) {
		r.log.LogAttrs(context.Background(), slog.LevelDebug, "impair: datagram", slog.String("client", f.client.String()),
			slog.String("dir", [2]string{"up", "down"}[d]), slog.Int("bytes", len(b)), slog.Bool("dropped", drop),
			slog.Int("sent", len(out)))
	}
	delay := im.Delay + time.Duration(jitter*float64(im.Jitter))
	for _, p := range out {
		if delay <= 0 {
			r.write(f, d, p)
			continue
		}
		c.delayed.Add(1)
		r.after(delay, func() { r.write(f, d, p) })
	}
}

// releaseHeld sends a held-back datagram no other one came after.
func (r *Relay) releaseHeld(f *flow, d int) {
	fd := &f.dir[d]
	fd.mu.Lock()
	b := fd.held
	fd.held, fd.hold = nil, nil
	fd.mu.Unlock()
	if b != nil {
		r.write(f, d, b)
	}
}

// after runs fn after delay, unless the relay is closed first.
func (r *Relay) after(delay time.Duration, fn func()) *time.Timer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.wg.Add(1)
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		defer r.wg.Done()
		r.mu.Lock()
		delete(r.timers, t)
		closed := r.closed
		r.mu.Unlock()
		if !closed {
			fn()
		}
	})
	r.timers[t] = struct{}{}
	return t
}

// stop cancels a timer of after.
func (r *Relay) stop(t *time.Timer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.timers[t]; ok && t.Stop() {
		delete(r.timers, t)
		r.wg.Done()
	}
}

func (r *Relay) write(f *flow, d int, b []byte) {
	var err error
	if d == dirUp {
		_, err = f.conn.Write(b)
	} else {
		_, err = r.conn.WriteToUDP(b, f.client)
	}
	if err == nil {
		r.counters(d).out.Add(1)
	}
}
