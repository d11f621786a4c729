package impair_test

import (
	"encoding/binary"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thingway/thingway/internal/impair"
	"github.com/thingway/thingway/internal/proctest"
)

// upstream is a UDP server that records the sequence numbers it receives
// and, if echo is set, sends each datagram back.
type upstream struct {
	conn *net.UDPConn
	echo bool

	mu    sync.Mutex
	got   []uint32
	peers map[string]bool
}

func newUpstream(t *testing.T, echo bool) *upstream {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{conn: c, echo: echo, peers: map[string]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			u.mu.Lock()
			u.got = append(u.got, binary.BigEndian.Uint32(buf[:4]))
			u.peers[from.String()] = true
			u.mu.Unlock()
			if echo {
				c.WriteToUDP(buf[:n], from)
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return u
}

func (u *upstream) received() []uint32 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]uint32(nil), u.got...)
}

func (u *upstream) peerCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.peers)
}

func listen(t *testing.T, cfg impair.Config) *impair.Relay {
	t.Helper()
	r, err := impair.Listen("udp4", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func dial(t *testing.T, r *impair.Relay) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, r.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func datagram(i uint32) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint32(b, i)
	return b
}

// send sends n numbered datagrams, each after the relay has read the one
// before (so that the relay sees them in order), and waits until the relay
// has sent or dropped them all upstream.
func send(t *testing.T, r *impair.Relay, c *net.UDPConn, n int) {
	t.Helper()
	start := r.Stats().Up.In
	for i := range n {
		if _, err := c.Write(datagram(uint32(i))); err != nil {
			t.Fatal(err)
		}
		if !proctest.Eventually(10*time.Second, func() bool { return r.Stats().Up.In >= start+int64(i+1) }) {
			t.Fatalf("the relay did not read datagram %d", i)
		}
	}
}

// waitUpstream waits until the relay has sent every datagram it did not
// drop (delayed and held-back ones too) and upstream has received them.
func waitUpstream(t *testing.T, r *impair.Relay, u *upstream) []uint32 {
	t.Helper()
	if !proctest.Eventually(10*time.Second, func() bool {
		st := r.Stats().Up
		return st.Out == st.In-st.Dropped+st.Duplicated
	}) {
		t.Fatalf("the relay did not send everything: %+v", r.Stats().Up)
	}
	if !proctest.Eventually(10*time.Second, func() bool { return int64(len(u.received())) == r.Stats().Up.Out }) {
		t.Fatalf("upstream received %d datagrams, the relay sent %d", len(u.received()), r.Stats().Up.Out)
	}
	return u.received()
}

func TestPassThrough(t *testing.T) {
	u := newUpstream(t, true)
	r := listen(t, impair.Config{Upstream: u.conn.LocalAddr().String()})
	c := dial(t, r)
	send(t, r, c, 20)
	got := waitUpstream(t, r, u)
	if want := seq(20); !slices.Equal(got, want) {
		t.Errorf("upstream got %v, want %v", got, want)
	}
	// Every echo comes back to the client.
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range 20 {
		n, err := c.Read(buf)
		if err != nil || n != 16 || binary.BigEndian.Uint32(buf) != uint32(i) {
			t.Fatalf("echo %d: %d bytes %x, %v", i, n, buf[:n], err)
		}
	}
	st := r.Stats()
	if st.Up != (impair.Counters{In: 20, Out: 20}) || st.Down != (impair.Counters{In: 20, Out: 20}) || st.Flows != 1 {
		t.Errorf("stats %+v", st)
	}
}

func seq(n int) []uint32 {
	s := make([]uint32, n)
	for i := range s {
		s[i] = uint32(i)
	}
	return s
}

// The same seed drops the same datagrams; another seed others.
func TestDropDeterministic(t *testing.T) {
	run := func(seed uint64) []uint32 {
		u := newUpstream(t, false)
		r := listen(t, impair.Config{Upstream: u.conn.LocalAddr().String(), Up: impair.Impairment{Drop: 0.3}, Seed: seed})
		send(t, r, dial(t, r), 200)
		got := waitUpstream(t, r, u)
		st := r.Stats().Up
		if st.In != 200 || st.Dropped+st.Out != 200 || int(st.Out) != len(got) {
			t.Errorf("seed %d: counters %+v, upstream got %d", seed, st, len(got))
		}
		// 30% of 200: 60 expected; far outside [20, 100] means the
		// probability is not applied.
		if st.Dropped < 20 || st.Dropped > 100 {
			t.Errorf("seed %d: %d of 200 dropped at p=0.3", seed, st.Dropped)
		}
		return got
	}
	a, b, c := run(7), run(7), run(8)
	if !slices.Equal(a, b) {
		t.Errorf("seed 7 twice: different datagrams dropped:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 dropped the same datagrams")
	}
}

func TestDropAll(t *testing.T) {
	u := newUpstream(t, true)
	r := listen(t, impair.Config{Upstream: u.conn.LocalAddr().String(), Down: impair.Impairment{Drop: 1}})
	c := dial(t, r)
	send(t, r, c, 10)
	waitUpstream(t, r, u)
	if !proctest.Eventually(10*time.Second, func() bool { return r.Stats().Down.In == 10 }) {
		t.Fatalf("stats %+v", r.Stats())
	}
	if st := r.Stats().Down; st.Dropped != 10 || st.Out != 0 {
		t.Errorf("down %+v, want all 10 dropped", st)
	}
	// A partition ends: answers flow again.
	if err := r.SetImpairment(impair.Impairment{}, impair.Impairment{}); err != nil {
		t.Fatal(err)
	}
	c.Write(datagram(99))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	if n, err := c.Read(buf); err != nil || binary.BigEndian.Uint32(buf[:n]) != 99 {
		t.Fatalf("after the partition: %x %v", buf[:n], err)
	}
}

func TestDuplicate(t *testing.T) {
	u := newUpstream(t, false)
	r := listen(t, impair.Config{Upstream: u.conn.LocalAddr().String(), Up: impair.Impairment{Duplicate: 1}})
	send(t, r, dial(t, r), 5)
	got := waitUpstream(t, r, u)
	if want := []uint32{0, 0, 1, 1, 2, 2, 3, 3, 4, 4}; !slices.Equal(got, want) {
		t.Errorf("upstream got %v, want %v", got, want)
	}
	if st := r.Stats().Up; st.Duplicated != 5 || st.Out != 10 {
		t.Errorf("up %+v", st)
	}
}

// With Reorder 1, each datagram is held back behind the next: pairs swap.
func TestReorder(t *testing.T) {
	u := newUpstream(t, false)
	r := listen(t, impair.Config{Upstream: u.conn.LocalAddr().String(),
		Up: impair.Impairment{Reorder: 1, ReorderHold: time.Minute}})
	send(t, r, dial(t, r), 6)
	got := waitUpstream(t, r, u)
	if want := []uint32{1, 0, 3, 2, 5, 4}; !slices.Equal(got, want) {
		t.Errorf("upstream got %v, want %v", got, want)
	}
	if st := r.Stats().Up; st.Reordered != 3 {
		t.Errorf("up %+v, want 3 reordered", st)
	}
}

// A datagram held back with no other one after it still goes.
func TestReorderHoldEnds(t *testing.T) {
	u := newUpstream(t, false)
	r := listen(t, impair.Config{Upstream: u.conn.LocalAddr().String(),
		Up: impair.Impairment{Reorder: 1, ReorderHold: time.Millisecond}})
	send(t, r, dial(t, r), 1)
	if !proctest.Eventually(10*time.Second, func() bool { return len(u.received()) == 1 }) {
		t.Fatalf("the held-back datagram never went: %+v", r.Stats())
	}
}

func TestDelay(t *testing.T) {
	u := newUpstream(t, false)
	r := listen(t, impair.Config{Upstream: u.conn.LocalAddr().String(),
		Up: impair.Impairment{Delay: time.Millisecond, Jitter: time.Millisecond}})
	send(t, r, dial(t, r), 10)
	got := waitUpstream(t, r, u)
	slices.Sort(got)
	if !slices.Equal(got, seq(10)) {
		t.Errorf("upstream got %v", got)
	}
	if st := r.Stats().Up; st.Delayed != 10 {
		t.Errorf("up %+v, want 10 delayed", st)
	}
}

// Each client has its own upstream socket; Rebind gives it a new one.
func TestFlowsAndRebind(t *testing.T) {
	u := newUpstream(t, false)
	r := listen(t, impair.Config{Upstream: u.conn.LocalAddr().String()})
	a, b := dial(t, r), dial(t, r)
	send(t, r, a, 1)
	send(t, r, b, 1)
	waitUpstream(t, r, u)
	if n := u.peerCount(); n != 2 || r.Stats().Flows != 2 {
		t.Fatalf("%d upstream peers, %d flows; want 2", n, r.Stats().Flows)
	}
	r.Rebind()
	send(t, r, a, 1)
	waitUpstream(t, r, u)
	if n := u.peerCount(); n != 3 {
		t.Errorf("%d upstream peers after Rebind, want 3", n)
	}
}

// Close ends every goroutine, even with datagrams still delayed.
func TestClose(t *testing.T) {
	u := newUpstream(t, true)
	before := runtime.NumGoroutine()
	r, err := impair.Listen("udp4", "127.0.0.1:0", impair.Config{Upstream: u.conn.LocalAddr().String(),
		Down: impair.Impairment{Delay: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, r)
	send(t, r, c, 3)
	if !proctest.Eventually(10*time.Second, func() bool { return r.Stats().Down.Delayed == 3 }) {
		t.Fatalf("stats %+v", r.Stats())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !proctest.Eventually(10*time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
		t.Errorf("%d goroutines after Close, %d before Listen", runtime.NumGoroutine(), before)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []impair.Config{
		{},
		{Upstream: "127.0.0.1:1", Up: impair.Impairment{Drop: 1.5}},
		{Upstream: "127.0.0.1:1", Down: impair.Impairment{Duplicate: -0.1}},
		{Upstream: "127.0.0.1:1", Up: impair.Impairment{Delay: -time.Second}},
		{Upstream: "no port"},
	} {
		if r, err := impair.Listen("udp4", "127.0.0.1:0", cfg); err == nil {
			r.Close()
			t.Errorf("Listen(%+v) succeeded", cfg)
		}
	}
}
