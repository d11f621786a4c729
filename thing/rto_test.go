package thing

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

const ms = time.Millisecond

func TestRTOEstimator(t *testing.T) {
	e := newRTOEstimator(100*ms, 2*time.Second)
	if got := e.timeout(); got != 2*time.Second {
		t.Fatalf("before any sample: %v, want AckTimeout 2s", got)
	}
	// An exchange that may have been retransmitted is no sample (Karn),
	// and before the first sample there is nothing to back off from.
	e.observe(2500*ms, 2*time.Second, 2*time.Second)
	if got := e.timeout(); got != 2*time.Second {
		t.Fatalf("after an ambiguous exchange: %v, want 2s", got)
	}
	// First sample: SRTT = R, RTTVAR = R/2, RTO = 3R.
	e.observe(200*ms, 2*time.Second, 0)
	if got := e.timeout(); got != 600*ms {
		t.Fatalf("after 200ms: %v, want 600ms", got)
	}
	// Steady fast answers bring it down to the floor, not below.
	for range 50 {
		e.observe(5*ms, e.timeout(), 0)
	}
	if got := e.timeout(); got != 100*ms {
		t.Fatalf("after fast answers: %v, want the 100ms floor", got)
	}
	// An answer soon after the last retransmission is a lost datagram: no
	// sample, and the estimate stands.
	srtt := e.srtt
	for _, c := range []struct{ took, last time.Duration }{{130 * ms, 100 * ms}, {310 * ms, 300 * ms}, {700 * ms, 700 * ms}} {
		took := c.took
		e.observe(took, 100*ms, c.last)
		if got := e.timeout(); got != 100*ms {
			t.Fatalf("answered at %v after retransmissions: %v, want 100ms", took, got)
		}
	}
	// An answer long after any retransmission says the gateway is slower
	// than the estimate: the next timeout doubles (RFC 6298 §5.5), up to
	// AckTimeout, without becoming a sample.
	for _, want := range []time.Duration{200 * ms, 400 * ms, 800 * ms, 1600 * ms, 2 * time.Second, 2 * time.Second} {
		first := e.timeout()
		e.observe(first*5/2, first, first) // 1.5·first after the retransmission at first
		if got := e.timeout(); got != want {
			t.Fatalf("after a late answer at %v: %v, want %v", first, got, want)
		}
	}
	if e.srtt != srtt {
		t.Errorf("a late answer changed SRTT: %v, was %v", e.srtt, srtt)
	}
	// The next clean sample recomputes it from the estimator.
	e.observe(5*ms, e.timeout(), 0)
	if got := e.timeout(); got != 100*ms {
		t.Errorf("after a clean sample: %v, want 100ms", got)
	}
	// Slow answers raise it (SRTT + 4·RTTVAR), capped at AckTimeout.
	for range 20 {
		e.observe(900*ms, 2*time.Second, 0)
		e.rto = 2 * time.Second // keep every sample clean
	}
	e.observe(900*ms, 2*time.Second, 0)
	if got := e.timeout(); got < 900*ms || got > 2*time.Second {
		t.Errorf("after 900ms answers: %v, want between 900ms and 2s", got)
	}
}

func TestRTOEstimatorOff(t *testing.T) {
	// MinAckTimeout at (or above) AckTimeout: every timeout is AckTimeout.
	e := newRTOEstimator(3*time.Second, 2*time.Second)
	e.observe(5*ms, 2*time.Second, 0)
	if got := e.timeout(); got != 2*time.Second {
		t.Errorf("%v, want 2s", got)
	}
}

func TestRetransmits(t *testing.T) {
	e := newRTOEstimator(100*ms, 2*time.Second)
	for _, c := range []struct {
		base time.Duration
		want uint32
	}{
		{2 * time.Second, 4},
		{1 * time.Second, 5},
		{600 * ms, 6},
		{500 * ms, 6},
		{400 * ms, 7},
		{100 * ms, 9}, // 100ms·2^5 >= 2s
	} {
		if got := e.retransmits(c.base, 4); got != c.want {
			t.Errorf("base %v: %d retransmissions, want %d", c.base, got, c.want)
		}
	}
	if got := e.retransmits(100*ms, 0); got != 0 {
		t.Errorf("MaxRetransmit none: %d, want 0", got)
	}
}

// The schedule doubles from the first timeout up to MaxAckTimeout, with a
// retransmission more for each doubling from the estimate to AckTimeout.
func TestSchedule(t *testing.T) {
	for _, c := range []struct {
		name        string
		cfg         GatewayConfig
		rto         time.Duration // 0: no estimate
		want        []time.Duration
		wantSpanMax time.Duration
	}{
		{"no estimate, RFC's defaults, ceiling 4s", GatewayConfig{AckRandomFactor: 1}, 0,
			[]time.Duration{2000 * ms, 4000 * ms, 4000 * ms, 4000 * ms, 4000 * ms}, 18 * time.Second},
		{"no estimate, no ceiling: RFC 7252", GatewayConfig{AckRandomFactor: 1, MaxAckTimeout: -1}, 0,
			[]time.Duration{2000 * ms, 4000 * ms, 8000 * ms, 16000 * ms, 32000 * ms}, 62 * time.Second},
		{"estimate 100ms, AckTimeout 500ms", GatewayConfig{AckRandomFactor: 1, AckTimeout: 500 * ms}, 100 * ms,
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1000 * ms, 1000 * ms, 1000 * ms, 1000 * ms}, 5500 * ms},
		{"ceiling below the first", GatewayConfig{AckRandomFactor: 1, MaxAckTimeout: 50 * ms}, 0,
			[]time.Duration{2000 * ms, 2000 * ms, 2000 * ms, 2000 * ms, 2000 * ms}, 10 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := &Gateway{cfg: c.cfg}
			g.rto = newRTOEstimator(g.minAckTimeout(), g.ackTimeout())
			g.rto.rto = c.rto
			tx := g.schedule()
			if !slices.Equal(tx.timeouts, c.want) {
				t.Errorf("timeouts %v, want %v", tx.timeouts, c.want)
			}
			if tx.span() != c.wantSpanMax {
				t.Errorf("span %v, want %v", tx.span(), c.wantSpanMax)
			}
		})
	}
	// The random factor stretches the first timeout, and the ceiling
	// never cuts below it.
	g := &Gateway{cfg: GatewayConfig{AckRandomFactor: 1.5}}
	g.rto = newRTOEstimator(g.minAckTimeout(), g.ackTimeout())
	for range 100 {
		tx := g.schedule()
		if f := tx.first(); f < 2*time.Second || f > 3*time.Second {
			t.Fatalf("first timeout %v, want in [2s, 3s]", f)
		}
		for _, d := range tx.timeouts[1:] {
			if d < tx.first() || d > max(tx.first(), 4*time.Second) {
				t.Fatalf("timeouts %v: a retransmission's outside [first, max(first, 4s)]", tx.timeouts)
			}
		}
	}
}

// transmit sends once per timeout of the schedule, each copy with its own
// deadline, stops at the first answer, and tells a lost exchange
// (errNoAnswer) from a failed one and from the caller's deadline.
func TestTransmit(t *testing.T) {
	g := &Gateway{}
	g.rto = newRTOEstimator(time.Millisecond, time.Second)
	tx := transmission{timeouts: []time.Duration{2 * ms, 4 * ms, 8 * ms, 8 * ms}}

	// Never answered: every copy waits its own timeout, then errNoAnswer.
	// A copy's deadline is at most its timeout away when it is sent, and
	// it is sent only once the copy before has timed out: so deadlines
	// are apart by at least the later copy's timeout (without depending
	// on how fast the machine is).
	var left []time.Duration
	var deadlines []time.Time
	err := g.transmit(context.Background(), tx, false, func(ctx context.Context) error {
		d, _ := ctx.Deadline()
		left = append(left, time.Until(d))
		deadlines = append(deadlines, d)
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, errNoAnswer) {
		t.Fatalf("unanswered: %v, want errNoAnswer", err)
	}
	if len(left) != len(tx.timeouts) {
		t.Fatalf("sent %d times, want %d", len(left), len(tx.timeouts))
	}
	for i, d := range left {
		if d > tx.timeouts[i] {
			t.Errorf("copy %d had %v to wait, more than its timeout %v", i, d, tx.timeouts[i])
		}
		if i > 0 && deadlines[i].Sub(deadlines[i-1]) < tx.timeouts[i] {
			t.Errorf("copy %d's deadline %v after copy %d's, want at least its timeout %v", i, deadlines[i].Sub(deadlines[i-1]), i-1, tx.timeouts[i])
		}
	}

	// Answered on the third copy: no more copies, and no sample (the
	// estimate stays unset).
	n := 0
	err = g.transmit(context.Background(), tx, false, func(ctx context.Context) error {
		n++
		if n == 3 {
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	})
	if err != nil || n != 3 {
		t.Fatalf("answered on the third copy: err %v after %d copies", err, n)
	}
	if g.rto.sampled {
		t.Errorf("an answer after retransmissions became a sample")
	}

	// Answered at once: a sample.
	if err := g.transmit(context.Background(), tx, false, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if !g.rto.sampled {
		t.Errorf("a first-copy answer was not a sample")
	}

	// Copies that are messages of their own (pings): an answer on the
	// third copy times that copy and is a sample (timed from the first
	// copy it would be at least the two timeouts before, 60 ms).
	g.rto = newRTOEstimator(time.Millisecond, time.Second)
	pings := transmission{timeouts: []time.Duration{20 * ms, 40 * ms, 80 * ms}}
	n = 0
	err = g.transmit(context.Background(), pings, true, func(ctx context.Context) error {
		if n++; n == 3 {
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	})
	if err != nil || !g.rto.sampled || g.rto.srtt >= 60*ms {
		t.Errorf("own copies answered on the third: err %v, sampled %v, srtt %v (want the third copy's own time, under 60ms)", err, g.rto.sampled, g.rto.srtt)
	}

	// A failure that is not a timeout ends it at once.
	boom := errors.New("boom")
	n = 0
	err = g.transmit(context.Background(), tx, false, func(context.Context) error { n++; return boom })
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("failed send: %v after %d copies, want boom after 1", err, n)
	}

	// The caller's deadline wins over the schedule, and is named.
	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	err = g.transmit(ctx, tx, false, func(actx context.Context) error {
		if n++; n == 2 {
			cancel()
		}
		<-actx.Done()
		return actx.Err()
	})
	if !errors.Is(err, context.Canceled) || n != 2 {
		t.Errorf("cancelled: %v after %d copies, want context.Canceled after 2", err, n)
	}
}
