package thing

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
)

// GatewayConfig describes how a thing reaches a gateway.
type GatewayConfig struct {
	// Address is the gateway's host:port, or a coap:// or coaps:// URL.
	// Both schemes mean CoAP over DTLS; without a port, coaps uses 5684
	// and coap 5683. Required.
	Address string

	// Trust says how the thing trusts the gateway's DTLS certificate: a
	// CA, a pinned certificate, or (for an iot-edge gateway, whose key
	// changes at every start) explicitly any. Required.
	Trust coapx.Trust

	// Certificate is the thing's DTLS client certificate. If nil, a
	// self-signed certificate with a fresh key: the gateway requires one,
	// and the thing's identity is proven by its signed JWTs.
	Certificate *tls.Certificate

	// AckTimeout is RFC 7252's ACK_TIMEOUT: a request unanswered after its
	// first timeout (random between AckTimeout and AckTimeout ×
	// AckRandomFactor, or from the measured round trips, see
	// MinAckTimeout) is sent again, and again after each doubling of that
	// timeout (up to MaxAckTimeout), MaxRetransmit times. If zero, 2 s
	// (RFC 7252 §4.8). On a link known to be fast, a shorter one recovers
	// a lost datagram sooner. An iot-edge gateway runs a repeated request
	// again, so against one set it above the gateway's AM timeout (6 s
	// for its 5 s default).
	AckTimeout time.Duration

	// AckRandomFactor is ACK_RANDOM_FACTOR, at least 1. If zero, 1.5.
	AckRandomFactor float64

	// MaxRetransmit is MAX_RETRANSMIT: how many times a request is sent
	// again before the DTLS session is taken for lost (a request whose
	// first timeout is below AckTimeout gets one more for each doubling
	// between the two). The thing then dials again and repeats the
	// request over the new session (a signed request with a new nonce, an
	// authentication from its start). If zero, 4; if negative, none.
	MaxRetransmit int

	// MaxAckTimeout is the longest wait for an answer before a request is
	// sent again: the timeouts double from the first up to it (and never
	// go below the first), so that on a lossy link a request that met a
	// few losses in a row is still sent every MaxAckTimeout rather than
	// after waits that double to a minute. If zero, twice AckTimeout; if
	// negative, no ceiling (RFC 7252's plain doubling).
	MaxAckTimeout time.Duration

	// MinAckTimeout is the floor of the first timeout the thing derives
	// from the round-trip times it measures: after a first answered
	// exchange, a request's first timeout is the estimate (RFC 6298's
	// SRTT + 4·RTTVAR, from exchanges answered before any retransmission),
	// between MinAckTimeout and AckTimeout, so that on a fast link a lost
	// datagram is sent again sooner. If zero, 100 ms; if negative, or not
	// below AckTimeout, every first timeout is AckTimeout.
	MinAckTimeout time.Duration

	// HandshakeInterval is the time before the first flight of the DTLS
	// handshake is sent again; it doubles after each retransmission, up to
	// a minute (RFC 6347 §4.2.4, pion's FlightInterval). If zero, 1 s.
	HandshakeInterval time.Duration

	// Logger receives debug lines (requests, codes, re-dials; never
	// tokens). If nil, the connection is silent.
	Logger *slog.Logger
}

// Gateway is a thing's connection to a gateway: a [Connector] over CoAP
// and DTLS. When the DTLS session is lost (the gateway restarted, a NAT
// forgot the mapping), the next request dials again.
type Gateway struct {
	cfg  GatewayConfig
	addr string
	opts []piondtls.ClientOption
	log  *slog.Logger
	rto  *rtoEstimator

	mu     sync.Mutex // guards conn, redial and info; held while dialling
	conn   *client.Conn
	redial bool // the session was dropped unanswered: jitter the next dial
	info   *callback.AMInfo

	verifyMu  sync.Mutex // not mu: the handshake runs while mu is held
	verifyErr error      // why the last handshake refused the gateway's certificate
}

// DialGateway connects to a gateway and checks it answers a CoAP ping.
func DialGateway(ctx context.Context, cfg GatewayConfig) (*Gateway, error) {
	addr, err := gatewayAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	cert := cfg.Certificate
	if cert == nil {
		c, err := coapx.SelfSignedCertificate(nil, "thing")
		if err != nil {
			return nil, err
		}
		cert = &c
	}
	opts, err := coapx.ClientOptions(*cert, cfg.Trust)
	if err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, addr: addr, log: cfg.Logger}
	if v := cfg.Trust.Verifier(); v != nil {
		// Remember why a certificate was refused: pion sometimes reports a
		// failed handshake as a cancelled context or a peer's decode error.
		opts = append(opts, piondtls.WithVerifyPeerCertificate(func(raw [][]byte, chains [][]*x509.Certificate) error {
			err := v(raw, chains)
			g.verifyMu.Lock()
			g.verifyErr = err
			g.verifyMu.Unlock()
			return err
		}))
	}
	g.opts = opts
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if err := g.checkTransmission(); err != nil {
		return nil, err
	}
	g.rto = newRTOEstimator(g.minAckTimeout(), g.ackTimeout())
	if _, err := g.connection(ctx, true, false); err != nil {
		return nil, err
	}
	return g, nil
}

func gatewayAddress(a string) (string, error) {
	if a == "" {
		return "", errors.New("thing: GatewayConfig.Address is required")
	}
	host, defPort := a, ""
	if scheme, rest, ok := strings.Cut(a, "://"); ok {
		switch scheme {
		case "coap":
			defPort = "5683"
		case "coaps":
			defPort = "5684"
		default:
			return "", fmt.Errorf("thing: unsupported scheme %q in %q, use coap or coaps", scheme, a)
		}
		host, _, _ = strings.Cut(rest, "/")
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		if defPort == "" {
			return "", fmt.Errorf("thing: gateway address %q has no port", a)
		}
		host = net.JoinHostPort(host, defPort)
	}
	return host, nil
}

// dial makes one DTLS session and checks, with a CoAP ping, that the
// gateway answers over it: pion/dtls runs the handshake on the first
// write. A handshake or ping that is not answered in time (the ping: its
// transmissions, see [Gateway.transmit]) is reported as errNoAnswer.
func (g *Gateway) dial(ctx context.Context) (*client.Conn, error) {
	type result struct {
		c   *client.Conn
		err error
	}
	done := make(chan result, 1)
	opts := append(g.opts[:len(g.opts):len(g.opts)], piondtls.WithFlightInterval(durOr(g.cfg.HandshakeInterval, time.Second)))
	go func() {
		// stop ends the session's timer goroutine when the session closes.
		stop := make(chan struct{})
		var once sync.Once
		closeStop := func() { once.Do(func() { close(stop) }) }
		c, err := dtls.Dial(g.addr, dtls.NewDTLSClientOptions(opts...), g.coapOptions(stop)...)
		if err != nil {
			closeStop()
		} else {
			c.AddOnClose(closeStop)
		}
		done <- result{c, err}
	}()
	var c *client.Conn
	select {
	case r := <-done:
		if r.err != nil {
			if verr := g.takeVerifyErr(); verr != nil {
				return nil, &untrustedError{g.addr, verr}
			}
			return nil, fmt.Errorf("thing: cannot reach the gateway at %s: %w", g.addr, r.err)
		}
		c = r.c
	case <-ctx.Done():
		go func() {
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
	// A handshake without progress for four flights' intervals (doubling:
	// 15 times HandshakeInterval) starts again with a fresh ClientHello,
	// rather than waiting out pion's backoff, which doubles up to a minute.
	hs := durOr(g.cfg.HandshakeInterval, time.Second) * handshakeFlights
	step := func(d time.Duration, f func(ctx context.Context) error) error {
		sctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		err := untilDone(sctx, c, func() error { return f(sctx) })
		if err != nil && ctx.Err() == nil && sctx.Err() != nil {
			return errNoAnswer
		}
		return err
	}
	err := step(hs, func(ctx context.Context) error {
		if h, ok := c.NetConn().(interface{ HandshakeContext(context.Context) error }); ok {
			return h.HandshakeContext(ctx)
		}
		return nil
	})
	if err == nil {
		tx := g.schedule()
		err = step(tx.span(), func(ctx context.Context) error {
			return g.transmit(ctx, tx, true, c.Ping)
		})
	}
	if err != nil {
		c.Close()
		if verr := g.takeVerifyErr(); verr != nil {
			return nil, &untrustedError{g.addr, verr}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("thing: the gateway at %s does not answer: %w", g.addr, err)
	}
	g.log.LogAttrs(ctx, slog.LevelDebug, "gateway connected", slog.String("address", g.addr))
	return c, nil
}

// handshakeFlights bounds a handshake attempt, in HandshakeIntervals:
// its first flight and three retransmissions, each after twice the wait.
const handshakeFlights = 15

// untilDone runs f, but returns when ctx ends even if f is stuck: pion/dtls
// v3 runs the handshake on the first write, under its own context, so a
// gateway that never completes a handshake would block f. Closing conn
// ends f.
func untilDone(ctx context.Context, conn *client.Conn, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		conn.Close()
		return ctx.Err()
	}
}

// takeVerifyErr returns and clears the last certificate refusal.
func (g *Gateway) takeVerifyErr() error {
	g.verifyMu.Lock()
	defer g.verifyMu.Unlock()
	err := g.verifyErr
	g.verifyErr = nil
	return err
}

// Close ends the DTLS session.
func (g *Gateway) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == nil {
		return nil
	}
	err := g.conn.Close()
	g.conn = nil
	return err
}

// connection returns the live session, dialling again if it was lost
// (or, with fresh, in any case). A dial the gateway does not answer is
// tried again, after a jittered pause, until ctx ends; with persist, so is
// one that failed otherwise (the gateway restarting), but never one that
// found the gateway untrusted.
func (g *Gateway) connection(ctx context.Context, fresh, persist bool) (*client.Conn, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn != nil && !fresh {
		select {
		case <-g.conn.Done():
			g.log.LogAttrs(ctx, slog.LevelDebug, "DTLS session lost, dialling again", slog.String("address", g.addr))
		default:
			return g.conn, nil
		}
	}
	if g.conn != nil {
		g.conn.Close()
		g.conn = nil
	}
	if g.redial {
		// Things whose sessions a gateway restart dropped together do not
		// dial again together.
		g.redial = false
		if err := g.jitter(ctx); err != nil {
			return nil, fmt.Errorf("thing: the gateway at %s does not answer: %w", g.addr, err)
		}
	}
	for attempt := 0; ; attempt++ {
		c, err := g.dial(ctx)
		if err == nil {
			g.conn = c
			return c, nil
		}
		var ue *untrustedError
		if errors.As(err, &ue) || ctx.Err() != nil || !(persist || errors.Is(err, errNoAnswer)) {
			return nil, err
		}
		g.log.LogAttrs(ctx, slog.LevelDebug, "gateway did not answer the dial, dialling again", slog.String("address", g.addr),
			slog.Int("attempt", attempt+1))
		if err := g.pause(ctx, attempt); err != nil {
			return nil, fmt.Errorf("thing: the gateway at %s does not answer: %w", g.addr, err)
		}
	}
}

// exchange sends a request and reads the answer. Each message is sent
// with RFC 7252's retransmission (AckTimeout, AckRandomFactor,
// MaxRetransmit); its retransmissions keep its message ID, so that the
// gateway answers them from its deduplication cache. A request with no
// answer after them, or whose session is lost, is sent again over a new
// session when idempotent; otherwise exchange returns an error wrapping
// errNoAnswer, and the caller repeats it in its own way (a fresh nonce, a
// fresh authentication).
func (g *Gateway) exchange(ctx context.Context, r request, idempotent bool) (codes.Code, []byte, error) {
	path := r.path
	busy, lost := 0, 0
	fresh := false
	for {
		conn, err := g.connection(ctx, fresh, true)
		if err != nil {
			return 0, nil, err
		}
		fresh = false
		start := time.Now()
		var res reply
		err = untilDone(ctx, conn, func() error {
			var err error
			res, err = g.roundTrip(ctx, conn, r)
			return err
		})
		noAnswer := errors.Is(err, errNoAnswer)
		if err != nil {
			if ctx.Err() != nil {
				return 0, nil, fmt.Errorf("thing: gateway request %s: no answer within the deadline: %w", path, ctx.Err())
			}
			why := "session lost"
			if noAnswer {
				why = "no answer after retransmissions"
			}
			g.log.LogAttrs(ctx, slog.LevelDebug, "gateway request failed, dialling again", slog.String("path", path),
				slog.String("reason", why), slog.String("error", err.Error()))
			lost++
			fresh = true
			if !idempotent {
				// The next request dials again; this one is the caller's to repeat.
				g.dropConnection(conn)
				return 0, nil, fmt.Errorf("thing: gateway request %s: %s: %w", path, why, errNoAnswer)
			}
			if err := g.pause(ctx, lost-1); err != nil {
				return 0, nil, fmt.Errorf("thing: gateway request %s: no answer within the deadline: %w", path, err)
			}
			continue
		}
		code, body, maxAge, ageErr := res.code, res.body, res.maxAge, res.hasAge
		g.log.LogAttrs(ctx, slog.LevelDebug, "gateway request", slog.String("path", path),
			slog.String("code", code.String()), slog.Duration("took", time.Since(start)))
		// 5.03 with Max-Age: the gateway is busy and did not forward the
		// request (its admission limits); it may be sent again after
		// Max-Age, if the context allows.
		if code == codes.ServiceUnavailable && ageErr && maxAge <= maxBusyWait && busy < maxBusyRetries {
			wait := time.Duration(max(maxAge, 1)) * time.Second
			if d, ok := ctx.Deadline(); !ok || time.Until(d) > wait {
				busy++
				g.log.LogAttrs(ctx, slog.LevelDebug, "gateway busy, sending again after Max-Age", slog.String("path", path), slog.Duration("wait", wait))
				timer := time.NewTimer(wait)
				select {
				case <-timer.C:
					continue
				case <-ctx.Done():
					timer.Stop()
					return 0, nil, ctx.Err()
				}
			}
		}
		return code, body, nil
	}
}

// dropConnection closes conn if it is still the session, so that the next
// request dials again.
func (g *Gateway) dropConnection(conn *client.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == conn {
		g.conn = nil
		g.redial = true
	}
	conn.Close()
}

// A busy gateway's 5.03 with Max-Age is followed at most maxBusyRetries
// times, each waiting at most maxBusyWait seconds.
const (
	maxBusyRetries = 5
	maxBusyWait    = 60
)

// gatewayError is a gateway's error answer: its CoAP code, the HTTP status
// it stands for and its payload (AM's body for AM's refusals).
type gatewayError struct {
	code   codes.Code
	status int
	body   []byte
}

func (e *gatewayError) Error() string {
	msg := fmt.Sprintf("thing: the gateway answered %s", e.code)
	if len(e.body) > 0 && len(e.body) < 200 && !bytes.ContainsAny(e.body, "{") {
		msg += ": " + string(e.body)
	}
	return msg
}

func (e *gatewayError) HTTPStatus() int      { return e.status }
func (e *gatewayError) ResponseBody() []byte { return e.body }

func newGatewayError(c codes.Code, body []byte) error {
	status, ok := coapx.StatusForCode(c)
	if !ok {
		status = 500
	}
	return &gatewayError{code: c, status: status, body: body}
}

// AuthStep sends one authentication step to /authenticate.
func (g *Gateway) AuthStep(ctx context.Context, step callback.Step) (callback.Step, error) {
	body, err := json.Marshal(callback.Step{AuthIDDigest: step.AuthIDDigest, AuthID: step.AuthID, Callbacks: step.Callbacks})
	if err != nil {
		return callback.Step{}, err
	}
	code, res, err := g.exchange(ctx, request{code: codes.POST, path: coapx.PathAuthenticate, cf: coapx.AppJSON, body: body},
		step.AuthIDDigest == "")
	if err != nil {
		return callback.Step{}, err
	}
	if code != codes.Valid {
		if code >= codes.InternalServerError {
			return callback.Step{}, newGatewayError(code, res)
		}
		// Any other refusal of /authenticate means AM did not authenticate.
		return callback.Step{}, &gatewayError{code: code, status: 401, body: res}
	}
	var out callback.Step
	if err := json.Unmarshal(res, &out); err != nil {
		return callback.Step{}, fmt.Errorf("thing: the gateway's authentication answer is not JSON: %w", err)
	}
	if out.TokenID == "" && out.AuthIDDigest == "" && out.AuthID == "" {
		return callback.Step{}, errors.New("thing: the gateway's authentication answer has neither a token nor a digest")
	}
	return out, nil
}

// AMInfo asks the gateway for the AM URLs to sign for, once per session.
func (g *Gateway) AMInfo(ctx context.Context) (callback.AMInfo, error) {
	g.mu.Lock()
	if g.info != nil {
		info := *g.info
		g.mu.Unlock()
		return info, nil
	}
	g.mu.Unlock()
	code, res, err := g.exchange(ctx, request{code: codes.GET, path: coapx.PathAMInfo}, true)
	if err != nil {
		return callback.AMInfo{}, err
	}
	if code != codes.Content {
		return callback.AMInfo{}, newGatewayError(code, res)
	}
	var info callback.AMInfo
	if err := json.Unmarshal(res, &info); err != nil {
		return callback.AMInfo{}, fmt.Errorf("thing: the gateway's AM information is not JSON: %w", err)
	}
	g.mu.Lock()
	g.info = &info
	g.mu.Unlock()
	return info, nil
}

// Send carries a things-endpoint or session request through the gateway.
func (g *Gateway) Send(ctx context.Context, req callback.Request) ([]byte, error) {
	path, query, err := coapx.Route(req.Op)
	if err != nil {
		return nil, err
	}
	cf, body := coapx.AppJOSE, req.Body
	if !req.Signed {
		cf = coapx.AppJSON
		var w any = coapx.ThingsRequest{Token: req.Token, Payload: string(req.Body)}
		if path == coapx.PathSession {
			w = coapx.SessionRequest{TokenID: req.Token}
		}
		if body, err = json.Marshal(w); err != nil {
			return nil, err
		}
	}
	var opts []message.Option
	if query != "" {
		opts = append(opts, message.Option{ID: message.URIQuery, Value: []byte(query)})
	}
	for _, f := range req.Fields {
		opts = append(opts, message.Option{ID: message.URIQuery, Value: []byte(f)})
	}
	code, res, err := g.exchange(ctx, request{code: codes.POST, path: path, cf: cf, body: body, opts: opts}, !req.Signed)
	if err != nil {
		return nil, err
	}
	if !coapx.IsSuccess(code) {
		return nil, newGatewayError(code, res)
	}
	switch req.Op {
	case callback.OpSessionValidate:
		return []byte(`{"valid":true}`), nil
	case callback.OpSessionLogout:
		return []byte(`{}`), nil
	}
	return res, nil
}
