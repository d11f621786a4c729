package thing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
)

// errNoAnswer says a request was sent, with every retransmission, and not
// answered: it may or may not have reached the gateway. Callers that
// repeat it over a new session do so with a fresh nonce (a signed
// request) or a fresh authentication flow (a step), never as it was.
var errNoAnswer = errors.New("no answer from the gateway")

// untrustedError is a handshake that refused the gateway's certificate:
// never dialled again.
type untrustedError struct {
	addr string
	err  error
}

func (e *untrustedError) Error() string {
	return fmt.Sprintf("thing: the gateway at %s is not trusted: %v", e.addr, e.err)
}
func (e *untrustedError) Unwrap() error { return e.err }

// RFC 7252 §4.8 defaults.
const (
	defaultAckTimeout      = 2 * time.Second
	defaultAckRandomFactor = 1.5
	defaultMaxRetransmit   = 4
)

func durOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (g *Gateway) ackTimeout() time.Duration { return durOr(g.cfg.AckTimeout, defaultAckTimeout) }

func (g *Gateway) minAckTimeout() time.Duration {
	switch d := g.cfg.MinAckTimeout; {
	case d < 0:
		return g.ackTimeout()
	case d == 0:
		return defaultMinAckTimeout
	default:
		return d
	}
}

func (g *Gateway) ackRandomFactor() float64 {
	if g.cfg.AckRandomFactor == 0 {
		return defaultAckRandomFactor
	}
	return g.cfg.AckRandomFactor
}

func (g *Gateway) maxRetransmit() uint32 {
	switch {
	case g.cfg.MaxRetransmit < 0:
		return 0
	case g.cfg.MaxRetransmit == 0:
		return defaultMaxRetransmit
	}
	return uint32(min(g.cfg.MaxRetransmit, 20))
}

func (g *Gateway) checkTransmission() error {
	if f := g.cfg.AckRandomFactor; f != 0 && !(f >= 1 && f <= 16) {
		return fmt.Errorf("thing: GatewayConfig.AckRandomFactor %v is not in [1, 16]", f)
	}
	return nil
}

// maxAckTimeout is MaxAckTimeout, or twice AckTimeout; with a negative
// MaxAckTimeout, no ceiling.
func (g *Gateway) maxAckTimeout() time.Duration {
	switch d := g.cfg.MaxAckTimeout; {
	case d < 0:
		return 24 * time.Hour
	case d == 0:
		return 2 * g.ackTimeout()
	default:
		return d
	}
}

// expiryTick is how often go-coap's timers run for the session. They no
// longer retransmit (the SDK does, see [Gateway.transmit]); they expire
// what go-coap keeps for a while (answers to duplicates).
const expiryTick = time.Second

// noRetransmit is go-coap's acknowledgement timeout for the session: long
// enough that go-coap never retransmits nor expires a message itself.
const noRetransmit = 24 * time.Hour

// coapOptions are the settings of one session; stop is closed when it
// has closed.
func (g *Gateway) coapOptions(stop <-chan struct{}) []udp.Option {
	return []udp.Option{
		// The SDK sends every message again itself ([Gateway.transmit]).
		options.WithTransmission(1, noRetransmit, 0, 1),
		options.WithPeriodicRunner(func(f func(now time.Time) bool) {
			go runPeriodic(stop, expiryTick, f)
		}),
		// Block-wise transfers are the SDK's own (roundTrip).
		options.WithBlockwise(false, blockSZX, 60*time.Second),
		// go-coap prints transport errors on stdout by default.
		options.WithErrors(func(err error) {
			g.log.LogAttrs(context.Background(), slog.LevelDebug, "coap", slog.String("error", err.Error()))
		}),
	}
}

// runPeriodic calls f every tick until f returns false (go-coap's timers
// find the session closed) or stop is closed, which ends it at once rather
// than at the next tick.
func runPeriodic(stop <-chan struct{}, tick time.Duration, f func(now time.Time) bool) {
	t := time.NewTimer(tick)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			if !f(now) {
				return
			}
			t.Reset(tick)
		case <-stop:
			return
		}
	}
}

// jitter waits a random part of AckTimeout before a session dropped
// unanswered is dialled again: things whose sessions one gateway restart
// dropped and that noticed it together spread their handshakes over
// AckTimeout rather than all dial at once.
func (g *Gateway) jitter(ctx context.Context) error {
	return sleepCtx(ctx, time.Duration(rand.Float64()*float64(g.ackTimeout())))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pause waits before dialling again after attempt failures (0 for the
// first): AckTimeout doubled per attempt up to a minute, times a random
// factor in [0.5, 1.5), so that things that lost their sessions together
// (a gateway restart) do not dial again together.
func (g *Gateway) pause(ctx context.Context, attempt int) error {
	d := g.ackTimeout() << min(attempt, 5)
	d = min(d, time.Minute)
	d = time.Duration(float64(d) * (0.5 + rand.Float64()))
	return sleepCtx(ctx, d)
}
