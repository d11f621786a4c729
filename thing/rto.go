package thing

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// The first timeout of a request comes from the round-trip times the
// thing has measured (RFC 6298's estimator, as CoCoA, RFC 9177's
// companion draft, uses it for CoAP): SRTT + 4·RTTVAR from exchanges
// answered before their first timeout passed (Karn: an exchange that may
// have been retransmitted is not a sample), kept between MinAckTimeout
// and AckTimeout. Until the first sample it is AckTimeout (RFC 7252's 2 s
// by default). An answer that came long after the last transmission
// (slower than the estimate, not a lost datagram) doubles the timeout for
// the next request (RFC 6298 §5.5), up to AckTimeout, until a clean
// sample recomputes it.
//
// The SDK sends each message again itself, not go-coap: every
// retransmission's timeout doubles the one before (RFC 7252 §4.2), but
// only up to MaxAckTimeout (twice AckTimeout by default; Californium's
// MAX_ACK_TIMEOUT is the same idea). On a lossy radio link an exchange
// is lost with probability 1-(1-p)² (half the time at p=30% each way),
// and with plain doubling the expected wait for an answer then has no
// bound: from a 100 ms estimate, a request that met five losses in a row
// waits 3.2, 6.4, then 12.8 s before its next copy. A request started
// from a timeout shorter than AckTimeout gets as many more
// retransmissions as doublings separate the two (rounded up). With the defaults a request is sent at most 10 times
// over about 23 s (with an estimate) or 5 times over 18 s (without), and
// never more often than once per first timeout.

// defaultMinAckTimeout is MinAckTimeout's default. An exchange with the
// gateway includes the gateway's call to AM, whose time varies by tens of
// milliseconds even on loopback; a retransmission that overtakes a slow
// answer costs one datagram (the gateway drops duplicates of a request
// it is still answering and answers later ones from its cache), so a
// floor of a few such variations is enough, and it stays above the
// retransmission timer's granularity (at most an eighth of it).
const defaultMinAckTimeout = 100 * time.Millisecond

// rtoEstimator is a Gateway's round-trip estimate. The zero value has
// no sample.
type rtoEstimator struct {
	min, max time.Duration // the floor and AckTimeout; min <= max

	mu         sync.Mutex
	srtt, rttv time.Duration
	sampled    bool
	rto        time.Duration // 0 until the first sample: max
}

func newRTOEstimator(lo, hi time.Duration) *rtoEstimator {
	return &rtoEstimator{min: min(lo, hi), max: hi}
}

// timeout is the next request's first timeout (before the random factor).
func (e *rtoEstimator) timeout() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rto == 0 {
		return e.max
	}
	return e.rto
}

// observe records one exchange whose first timeout was first and that
// was answered after took, its last transmission sent at last (0 when
// it was sent once). An answer before first is a sample. A later one may
// answer the request or one of its retransmissions (Karn: no sample): if
// it came within the estimate of the last transmission, a datagram was
// lost and the estimate stands; otherwise the gateway may be slower than
// the estimate, and the next timeout doubles (RFC 6298 §5.5).
func (e *rtoEstimator) observe(took, first, last time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if took >= first {
		if e.rto == 0 {
			return // no estimate yet: the next timeout is AckTimeout
		}
		if took-last >= e.rto+e.rto/4 {
			e.rto = min(2*e.rto, e.max)
		}
		return
	}
	if !e.sampled {
		e.srtt, e.rttv, e.sampled = took, took/2, true
	} else {
		d := e.srtt - took
		if d < 0 {
			d = -d
		}
		// RFC 6298 §2.3: alpha 1/8, beta 1/4.
		e.rttv = (3*e.rttv + d) / 4
		e.srtt = (7*e.srtt + took) / 8
	}
	e.rto = min(max(e.srtt+4*e.rttv, e.min), e.max)
}

// retransmits is MaxRetransmit for a request whose first timeout is
// base: maxRetransmit plus the doublings from base to AckTimeout.
func (e *rtoEstimator) retransmits(base time.Duration, maxRetransmit uint32) uint32 {
	if base <= 0 || base >= e.max || maxRetransmit == 0 {
		return maxRetransmit
	}
	extra := uint32(math.Ceil(math.Log2(float64(e.max) / float64(base))))
	return min(maxRetransmit+extra, 20)
}

// transmission is one message's schedule: the timeout after each of its
// transmissions, the first one's and then one per retransmission.
type transmission struct {
	timeouts []time.Duration
}

// first is the first transmission's timeout.
func (tx transmission) first() time.Duration { return tx.timeouts[0] }

// span is MAX_TRANSMIT_WAIT for the message: from its first transmission
// to the end of the timeout after its last.
func (tx transmission) span() time.Duration {
	var d time.Duration
	for _, t := range tx.timeouts {
		d += t
	}
	return d
}

// schedule is the next message's: its first timeout is the estimate (or
// AckTimeout) times a random factor in [1, AckRandomFactor]; each
// retransmission's timeout doubles the one before, up to MaxAckTimeout
// (never below the first); it has MaxRetransmit retransmissions plus the
// doublings that separate the estimate from AckTimeout.
func (g *Gateway) schedule() transmission {
	base := g.rto.timeout()
	d := time.Duration(float64(base) * (1 + (g.ackRandomFactor()-1)*rand.Float64()))
	ceiling := max(d, g.maxAckTimeout())
	ts := make([]time.Duration, 1+g.rto.retransmits(base, g.maxRetransmit()))
	for i := range ts {
		ts[i] = d
		d = min(2*d, ceiling)
	}
	return transmission{timeouts: ts}
}

// transmit sends a message, by calling send, once per timeout of tx
// until it is answered: send sends the message (the same message ID each
// time, so that the gateway answers a copy it has answered already from
// its cache) and waits for the answer until its context ends. It feeds
// the round-trip estimate and returns errNoAnswer when every timeout has
// passed unanswered, the error of send when it fails otherwise, or
// ctx's. With own, every copy is a message of its own (a CoAP ping: a new
// message ID each time, and an answer to an earlier copy is not taken),
// so an answer times its copy's round trip exactly and is always a
// sample: a ping answered on its third copy still tells the round trip.
func (g *Gateway) transmit(ctx context.Context, tx transmission, own bool, send func(ctx context.Context) error) error {
	start := time.Now()
	for _, d := range tx.timeouts {
		sent := time.Now()
		actx, cancel := context.WithTimeout(ctx, d)
		err := send(actx)
		timedOut := actx.Err() != nil
		cancel()
		switch {
		case err == nil && own:
			g.rto.observe(time.Since(sent), d, 0)
			return nil
		case err == nil:
			g.rto.observe(time.Since(start), tx.first(), sent.Sub(start))
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !timedOut:
			return err
		}
	}
	return errNoAnswer
}
