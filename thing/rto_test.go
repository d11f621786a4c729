package thing

import (
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
	e.observe(2500*ms, 2*time.Second)
	if got := e.timeout(); got != 2*time.Second {
		t.Fatalf("after an ambiguous exchange: %v, want 2s", got)
	}
	// First sample: SRTT = R, RTTVAR = R/2, RTO = 3R.
	e.observe(200*ms, 2*time.Second)
	if got := e.timeout(); got != 600*ms {
		t.Fatalf("after 200ms: %v, want 600ms", got)
	}
	// Steady fast answers bring it down to the floor, not below.
	for range 50 {
		e.observe(5*ms, e.timeout())
	}
	if got := e.timeout(); got != 100*ms {
		t.Fatalf("after fast answers: %v, want the 100ms floor", got)
	}
	// An answer just after a retransmission (sent at first·(2^k − 1)) is
	// a lost datagram: no sample, and the estimate stands.
	srtt := e.srtt
	for _, took := range []time.Duration{130 * ms, 310 * ms, 700 * ms} { // retransmissions at 100, 300, 700 ms
		e.observe(took, 100*ms)
		if got := e.timeout(); got != 100*ms {
			t.Fatalf("answered at %v after retransmissions: %v, want 100ms", took, got)
		}
	}
	// An answer long after any retransmission says the gateway is slower
	// than the estimate: the next timeout doubles (RFC 6298 §5.5), up to
	// AckTimeout, without becoming a sample.
	for _, want := range []time.Duration{200 * ms, 400 * ms, 800 * ms, 1600 * ms, 2 * time.Second, 2 * time.Second} {
		first := e.timeout()
		e.observe(first*5/2, first) // 1.5·first after the retransmission at first, before the next at 3·first
		if got := e.timeout(); got != want {
			t.Fatalf("after a late answer at %v: %v, want %v", first, got, want)
		}
	}
	if e.srtt != srtt {
		t.Errorf("a late answer changed SRTT: %v, was %v", e.srtt, srtt)
	}
	// The next clean sample recomputes it from the estimator.
	e.observe(5*ms, e.timeout())
	if got := e.timeout(); got != 100*ms {
		t.Errorf("after a clean sample: %v, want 100ms", got)
	}
	// Slow answers raise it (SRTT + 4·RTTVAR), capped at AckTimeout.
	for range 20 {
		e.observe(900*ms, 2*time.Second)
		e.rto = 2 * time.Second // keep every sample clean
	}
	e.observe(900*ms, 2*time.Second)
	if got := e.timeout(); got < 900*ms || got > 2*time.Second {
		t.Errorf("after 900ms answers: %v, want between 900ms and 2s", got)
	}
}

func TestRTOEstimatorOff(t *testing.T) {
	// MinAckTimeout at (or above) AckTimeout: every timeout is AckTimeout.
	e := newRTOEstimator(3*time.Second, 2*time.Second)
	e.observe(5*ms, 2*time.Second)
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
