package thing

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/udp/client"
)

// The first timeout of a request comes from the round-trip times the
// thing has measured (RFC 6298's estimator, as CoCoA, RFC 9177's
// companion draft, uses it for CoAP): SRTT + 4·RTTVAR from exchanges
// answered before their first timeout could have passed (Karn: an
// exchange that may have been retransmitted is not a sample), kept
// between MinAckTimeout and AckTimeout. Until the first sample it is
// AckTimeout (RFC 7252's 2 s by default). After an exchange that may have
// been retransmitted, the timeout doubles for the next one (RFC 6298
// §5.5), up to AckTimeout, until a clean sample recomputes it. Each
// request's retransmissions still double from its first timeout (RFC
// 7252 §4.2); a request started from a timeout shorter than AckTimeout
// gets as many more retransmissions as doublings separate the two
// (rounded up), so that it gives up no sooner than MaxRetransmit from
// AckTimeout would (a slow AM call is still waited for).

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

// observe records one exchange whose first timeout was first (the
// random factor applied) and that was answered after took. An answer
// before first is a sample. A later one may answer the request or one of
// its retransmissions (Karn: no sample): if it came within the estimate
// of a retransmission (sent at first·(2^k − 1)), a datagram was lost and
// the estimate stands; otherwise the gateway may be slower than the
// estimate, and the next timeout doubles (RFC 6298 §5.5).
func (e *rtoEstimator) observe(took, first time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if took >= first {
		if e.rto == 0 {
			return // no estimate yet: the next timeout is AckTimeout
		}
		var sent time.Duration // the last retransmission before took
		for k := 1; k < 32; k++ {
			at := first * time.Duration(uint64(1)<<k-1)
			if at > took {
				break
			}
			sent = at
		}
		if took-sent >= e.rto+e.rto/4 {
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

// transmission is one message's timers: its first timeout, the random
// factor applied (the SDK draws it, so that it knows when go-coap
// retransmits), and its retransmissions.
type transmission struct {
	first time.Duration
	n     uint32
}

// prepare sets c's timers for the next message.
func (g *Gateway) prepare(c *client.Conn) transmission {
	base := g.rto.timeout()
	tx := transmission{
		first: time.Duration(float64(base) * (1 + (g.ackRandomFactor()-1)*rand.Float64())),
		n:     g.rto.retransmits(base, g.maxRetransmit()),
	}
	t := c.Transmission()
	t.SetTransmissionAcknowledgeRandomFactor(1)
	t.SetTransmissionAcknowledgeTimeout(tx.first)
	t.SetTransmissionMaxRetransmit(tx.n)
	return tx
}
