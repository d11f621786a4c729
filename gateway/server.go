package gateway

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/dtls"
	dtlsserver "github.com/plgd-dev/go-coap/v3/dtls/server"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/internal/introspect"
	"github.com/thingway/thingway/thing"
)

// ErrServerClosed is returned by [Server.Serve] and [Server.ListenAndServe]
// after a call to [Server.Shutdown] or [Server.Close].
var ErrServerClosed = errors.New("gateway: Server closed")

// Defaults of the Server fields.
const (
	DefaultAddress              = ":5683"
	DefaultTimeout              = 5 * time.Second
	DefaultMaxSessions          = 10000
	DefaultMaxPendingHandshakes = 1000
	DefaultHandshakeTimeout     = 10 * time.Second
	DefaultIdleTimeout          = time.Hour
	DefaultMaxRequestBytes      = 64 << 10
	DefaultSessionRenewal       = 25 * time.Minute
	DefaultMaxAuthPerMinute     = 30
	DefaultMaxConcurrentAuth    = 64
)

// blockwiseMargin is added to Timeout to give the block-wise transfer
// timeout: a Block1 upload or Block2 download must survive an AM call.
const blockwiseMargin = 30 * time.Second

// expiryInterval is how often go-coap's expiry checks run (idle sessions,
// block-wise transfers, message caches): its own default.
const expiryInterval = 4 * time.Second

// Server is a Thingway gateway. Set its fields before the first call of
// Authenticate, Serve or ListenAndServe and do not change them afterwards.
// A Server serves until Shutdown or Close; it cannot be restarted.
type Server struct {
	// AM is the AM client. Required, with URL and Tree set. Its URL,
	// Realm and Tree are the AM connection of the gateway and of every
	// thing behind it (things cannot choose a realm or tree); its
	// HTTPClient and Logger are used for every AM call. The Server does not
	// change it.
	AM *amclient.Client

	// ID is the gateway's identity in AM (the subject of its
	// authentication JWT). Required.
	ID string

	// Audience is the aud of the gateway's authentication JWT: the realm
	// path for proof of possession. If empty, AM.Realm, or "/".
	Audience string

	// Key is the gateway's signing key, registered with its identity.
	// Required unless Handlers answer the tree's callbacks.
	Key crypto.Signer

	// KeyID names Key in the gateway's identity. If empty, the key's RFC
	// 7638 thumbprint in padded base64url ([callback.Thumbprint]).
	KeyID string

	// Certificates, if set, is the gateway's certificate chain (leaf
	// first); the gateway then registers itself, with thing type gateway,
	// when the tree asks (the Register Thing node's "Proof of Possession &
	// Certificate" method).
	Certificates []*x509.Certificate

	// Handlers answer other callbacks of the gateway's own
	// authentication, for example [callback.NameHandler] and
	// [callback.PasswordHandler] for a username/password tree. They are
	// tried before the key's handlers.
	Handlers []callback.Handler

	// DTLSCertificate is the certificate the gateway presents in DTLS
	// handshakes by [Server.Listen] and [Server.ListenAndServe]. Give it a
	// stable one so that things can pin it. If zero, a self-signed
	// certificate with a fresh P-256 key is generated when the Server first
	// listens (as iot-edge does at every start) and a warning is logged.
	DTLSCertificate tls.Certificate

	// Logger receives a line at start and stop, one debug line per request
	// (path, code, duration, peer) and the details of every failure; never
	// tokens, JWTs or keys. If nil, the Server is silent.
	Logger *slog.Logger

	// Timeout bounds each AM call made for a thing. The gateway's own
	// authentication is bounded by four times Timeout. If zero, 5 seconds.
	Timeout time.Duration

	// MaxSessions caps the established DTLS sessions held at once; new
	// handshakes are refused while it is reached. A handshake takes a slot
	// only when it completes. If zero, 10000.
	MaxSessions int

	// MaxPendingHandshakes caps the DTLS handshakes in progress, from a
	// peer's first ClientHello until its session is established (or the
	// handshake fails or times out); new handshakes beyond it are refused
	// at their first datagram. It keeps peers that never finish a
	// handshake from holding session slots or unbounded memory. If zero,
	// 1000.
	MaxPendingHandshakes int

	// HandshakeTimeout bounds a DTLS handshake, from the peer's first
	// ClientHello. If zero, 10 seconds.
	HandshakeTimeout time.Duration

	// IdleTimeout closes a DTLS session without traffic for that long.
	// iot-edge things never re-dial, so a short timeout disconnects them
	// for good. If zero, one hour.
	IdleTimeout time.Duration

	// MaxRequestBytes caps the body of a request. A larger one is answered
	// 4.13 Request Entity Too Large with a Size1 option giving the limit
	// (RFC 7959 §2.9.3, §4) as soon as its Size1 option or a Block1 block
	// passes the limit, before more of it is buffered and before AM is
	// called. iot-edge's largest requests (registration and
	// authentication with a certificate) are about 1.5 KiB. If zero, 64
	// KiB.
	MaxRequestBytes int

	// MaxAuthPerMinute caps the authentication steps (POST /authenticate)
	// one DTLS session may send a minute: a PoP login is two steps, a
	// registration two or three. More are answered 5.03 Service
	// Unavailable with Max-Age saying when the next is allowed. If zero,
	// 30; if negative, no cap.
	MaxAuthPerMinute int

	// MaxConcurrentAuth caps the authentication steps forwarded to AM at
	// once, for all things together, so that a burst (every thing logging
	// in after a power cut) queues at the things rather than at AM. A step
	// beyond it is answered 5.03 with Max-Age 1. If zero, 64; if negative,
	// no cap.
	MaxConcurrentAuth int

	// SessionRenewal is how often the gateway authenticates itself again
	// (and logs the previous session out). The gateway's own session is
	// otherwise unused, so it must be renewed before AM's idle timeout (30
	// minutes by default). AM 7.4 cannot validate restricted sessions, so
	// the renewal is on a timer rather than on demand. If zero, 25
	// minutes; if negative, the session is never renewed.
	SessionRenewal time.Duration

	// Time returns the current time (JWT lifetimes, local introspection,
	// cache expiry). If nil, time.Now.
	Time func() time.Time

	// ThingTree is the authentication tree things authenticate and
	// register with. If empty, AM.Tree, the gateway's own. With a tree of
	// their own, things can register dynamically while the gateway logs
	// in with a tree that registers nothing, or move to a new tree
	// without touching the gateway's login.
	ThingTree string

	// RetryAuthentication makes Serve serve even while the gateway cannot
	// authenticate itself with AM (AM down, its name not resolving yet):
	// things then get 5.03 Service Unavailable with Max-Age for every
	// request that needs AM, and the gateway tries again with jittered
	// exponential backoff (1 s doubling to 1 minute), logging each failure
	// with the time of the next attempt. If false, Serve fails when the
	// gateway cannot authenticate.
	RetryAuthentication bool

	// Metrics, if not nil, records the gateway's Prometheus metrics.
	Metrics *Metrics

	// ParkAfter parks a DTLS session of a [DTLSListener] idle for that
	// long: its DTLS state is kept (a few KiB) and its DTLS and CoAP
	// connections, goroutines and buffers are released; the thing's next
	// record resumes it without a handshake, and the thing cannot tell. A
	// parked session keeps its slot of MaxSessions and is closed when
	// idle for IdleTimeout. If zero, 5 minutes (above CoAP's
	// EXCHANGE_LIFETIME, 247 s); if negative, or not below IdleTimeout,
	// sessions are not parked.
	ParkAfter time.Duration

	// SessionFile, if set, is where Shutdown saves the state of every
	// established DTLS session of the listeners made by Listen, and where
	// Listen loads it from, so that things go on after a restart without
	// a new handshake. The file is encrypted and authenticated with
	// SessionKey, written with mode 0600 and removed once loaded (a
	// session's state must be restored once only); each session in it
	// expires with its idle timeout. A missing, stale, foreign or damaged
	// file is ignored with a log line. While Shutdown saves, the
	// sessions' datagrams are dropped: a thing's request is sent again (a
	// confirmable one) and answered by the next gateway.
	//
	// Kept with each session: its DTLS state, its authentication flows
	// under way (auth_id_digest) and its MaxAuthPerMinute allowance. Not
	// kept: CoAP message deduplication and block-wise transfers in
	// progress, so a Block2 download cut by the restart must start over.
	SessionFile string

	// SessionKey is the secret that seals SessionFile (AES-256-GCM, its
	// key derived with HKDF-SHA256), at least 32 bytes. Required with
	// SessionFile; a file sealed with another key is ignored.
	SessionKey []byte

	initOnce sync.Once
	initErr  error
	log      *slog.Logger
	ctx      context.Context // cancelled by Close and at the end of Shutdown
	cancel   context.CancelFunc
	aminfo   []byte
	flows    atomic.Int64  // authentication flows held by all sessions' digest caches
	authSem  chan struct{} // MaxConcurrentAuth slots
	jwks     *introspect.Checker
	wg       sync.WaitGroup // background goroutines (renewal, JWKS prefetch)

	certOnce sync.Once
	cert     tls.Certificate
	certErr  error

	sessions atomic.Int64 // established DTLS sessions held, parked ones included
	parked   atomic.Int64 // parked DTLS sessions
	release  memRelease   // returns parked sessions' memory to the OS
	saved    atomic.Bool  // Shutdown has saved the sessions to SessionFile
	pending  atomic.Int64 // DTLS handshakes in progress
	refusals refusalLog
	inflight atomic.Int64 // requests being handled
	draining atomic.Bool  // Shutdown started: refuse sessions and requests

	authMu      sync.Mutex // serialises Authenticate
	selfMu      sync.Mutex // guards self
	self        *thing.Thing
	renewCancel context.CancelFunc
	renewDone   chan struct{}

	mu        sync.Mutex
	closed    bool
	listeners map[Listener]struct{}
	servers   map[*dtlsserver.Server]struct{}
	addr      net.Addr
	serving   sync.WaitGroup

	restoreCF atomic.Bool // T6 hook on; false only in tests

	keysOnce    sync.Once
	keysFetched chan struct{} // closed when the start-up fetch of AM's keys has ended

	authState atomic.Pointer[authAttempt] // the last failed self-authentication, while unauthenticated

	expiryMu sync.Mutex
	expiry   []func(now time.Time) bool // each Serve's expiry check
}

// Listener is what [Server.Serve] accepts: a DTLS listener such as the
// [DTLSListener] of [Server.Listen] or go-coap's net.NewDTLSListener.
type Listener interface {
	AcceptWithContext(ctx context.Context) (net.Conn, error)
	Close() error
	Addr() net.Addr
}

func (s *Server) timeout() time.Duration { return durOr(s.Timeout, DefaultTimeout) }
func (s *Server) thingTree() string {
	if s.ThingTree != "" {
		return s.ThingTree
	}
	return s.AM.Tree
}
func (s *Server) idleTimeout() time.Duration { return durOr(s.IdleTimeout, DefaultIdleTimeout) }
func (s *Server) handshakeTimeout() time.Duration {
	return durOr(s.HandshakeTimeout, DefaultHandshakeTimeout)
}

func (s *Server) maxSessions() int64 { return int64(intOr(s.MaxSessions, DefaultMaxSessions)) }
func (s *Server) maxPendingHandshakes() int64 {
	return int64(intOr(s.MaxPendingHandshakes, DefaultMaxPendingHandshakes))
}
func (s *Server) maxRequestBytes() int64 {
	return int64(intOr(s.MaxRequestBytes, DefaultMaxRequestBytes))
}

// size1 is MaxRequestBytes as the value of a Size1 option.
func (s *Server) size1() uint32 { return uint32(min(s.maxRequestBytes(), math.MaxUint32)) }

// capOr is a limit's value: def if n is zero, 0 (no limit) if negative.
func capOr(n, def int) int {
	if n < 0 {
		return 0
	}
	return intOr(n, def)
}

func intOr(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// runExpiry is go-coap's periodic runner: it calls check, go-coap's
// expiry of idle sessions, block-wise transfers and message caches, every
// expiryInterval with the server's clock until check returns false.
func (s *Server) runExpiry(check func(now time.Time) bool) {
	s.expiryMu.Lock()
	s.expiry = append(s.expiry, check)
	s.expiryMu.Unlock()
	go func() {
		t := time.NewTicker(expiryInterval)
		defer t.Stop()
		for range t.C {
			if !check(s.now()) {
				return
			}
		}
	}()
}

func (s *Server) now() time.Time {
	if s.Time != nil {
		return s.Time()
	}
	return time.Now()
}

func durOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// init applies the defaults and checks the configuration, once.
func (s *Server) init() error {
	s.initOnce.Do(func() {
		s.log = s.Logger
		if s.log == nil {
			s.log = slog.New(slog.DiscardHandler)
		}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = map[Listener]struct{}{}
		s.servers = map[*dtlsserver.Server]struct{}{}
		s.restoreCF.Store(true)
		s.initErr = s.setup()
		if s.initErr == nil {
			s.Metrics.attach(s)
		}
	})
	return s.initErr
}

func (s *Server) setup() error {
	switch {
	case s.AM == nil:
		return errors.New("gateway: Server.AM is required")
	case s.AM.URL == "":
		return errors.New("gateway: Server.AM.URL is required")
	case s.AM.Tree == "":
		return errors.New("gateway: Server.AM.Tree is required")
	case s.ID == "":
		return errors.New("gateway: Server.ID is required")
	case s.Key == nil && len(s.Handlers) == 0:
		return errors.New("gateway: Server.Key is required")
	}
	if err := s.checkSessionFile(); err != nil {
		return err
	}
	// The URLs the thing signs for are the URLs the AM client calls (T10).
	info, err := s.AM.AMInfo(s.ctx)
	if err != nil {
		return fmt.Errorf("gateway: AM information: %w", err)
	}
	if s.aminfo, err = json.Marshal(info); err != nil {
		return fmt.Errorf("gateway: AM information: %w", err)
	}
	if n := capOr(s.MaxConcurrentAuth, DefaultMaxConcurrentAuth); n > 0 {
		s.authSem = make(chan struct{}, n)
	}
	s.jwks = s.newIntrospector()
	s.keysFetched = make(chan struct{})
	return nil
}

// Authenticate authenticates the gateway itself with AM, registering it
// when the tree asks and Certificates is set, and starts the session's
// renewal. Serve calls it when it has not yet succeeded; call it first to
// fail fast at start-up. It does nothing once it has succeeded.
func (s *Server) Authenticate(ctx context.Context) error {
	if err := s.init(); err != nil {
		return err
	}
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if s.current() != nil {
		return nil
	}
	if s.isClosed() {
		return ErrServerClosed
	}
	ctx, cancel := mergeCancel(ctx, s.ctx)
	defer cancel()
	// AM's cookie name is needed for every relayed request; iot-edge
	// fetched it at start too, and failed without it.
	cctx, ccancel := context.WithTimeout(ctx, s.timeout())
	_, err := s.AM.CookieName(cctx)
	ccancel()
	if err != nil {
		s.Metrics.selfAuthentication(err)
		return fmt.Errorf("gateway: AM at %s: %w", s.AM.URL, err)
	}
	t, err := s.login(ctx)
	s.Metrics.selfAuthentication(err)
	if err != nil {
		return err
	}
	// Shutdown marks the Server closed before it stops the renewal and
	// logs out: either it sees this session, or this session is dropped.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		lctx, lcancel := context.WithTimeout(context.Background(), s.timeout())
		defer lcancel()
		_ = t.Logout(lctx)
		return ErrServerClosed
	}
	s.selfMu.Lock()
	s.self = t
	s.selfMu.Unlock()
	s.startRenewal()
	s.wg.Add(1)
	s.mu.Unlock()
	s.log.LogAttrs(ctx, slog.LevelInfo, "gateway authenticated", slog.String("id", s.ID),
		slog.Bool("registration", len(s.Certificates) > 0))
	go func() { // best effort, for local introspection when AM is down later
		defer s.wg.Done()
		defer s.keysOnce.Do(func() { close(s.keysFetched) })
		ctx, cancel := context.WithTimeout(s.ctx, s.timeout())
		defer cancel()
		if err := s.jwks.Refresh(ctx); err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "cannot fetch AM's JWK set; local introspection unavailable until AM answers",
				slog.String("error", err.Error()))
		}
	}()
	return nil
}

// mergeCancel returns a context of ctx that is also cancelled with other.
func mergeCancel(ctx, other context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(other, cancel)
	return ctx, func() { stop(); cancel() }
}

// Listen binds a DTLS listener on address (host:port; ":5683" if empty)
// for network "udp", "udp4" or "udp6", with the gateway's DTLS settings
// (coapx.ServerOptions with DTLSCertificate), the session and handshake
// caps, and the replacement of a session by a new handshake from its
// address (see [DTLSListener]).
func (s *Server) Listen(network, address string) (*DTLSListener, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	if address == "" {
		address = DefaultAddress
	}
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("gateway: listen on %s: unsupported network %q", address, network)
	}
	// Bind first: a port in use is the first error, before any other
	// work or warning.
	ua, err := net.ResolveUDPAddr(network, address)
	if err != nil {
		return nil, fmt.Errorf("gateway: listen on %s: %w", address, err)
	}
	udp, err := net.ListenUDP(network, ua)
	if err != nil {
		return nil, fmt.Errorf("gateway: listen on %s: %w", address, err)
	}
	readBuffer := growReadBuffer(udp)
	cert, err := s.dtlsCertificate()
	if err != nil {
		udp.Close()
		return nil, err
	}
	// The listener routes records by connection ID, so it must know
	// their length. The sessions share their loggers (dtlsLoggers).
	opts := coapx.ServerOptions(cert, piondtls.WithConnectionIDGenerator(piondtls.RandomCIDGenerator(cidLength)),
		piondtls.WithLoggerFactory(dtlsLoggers))
	if err := checkServerOptions(opts); err != nil {
		udp.Close()
		return nil, fmt.Errorf("gateway: DTLS settings: %w", err)
	}
	l := newDTLSListener(s, udp, opts)
	l.readBuffer = readBuffer
	s.loadSessions(l)
	return l, nil
}

func (s *Server) dtlsCertificate() (tls.Certificate, error) {
	if len(s.DTLSCertificate.Certificate) > 0 {
		return s.DTLSCertificate, nil
	}
	s.certOnce.Do(func() {
		s.cert, s.certErr = coapx.SelfSignedCertificate(nil, s.ID)
		if s.certErr == nil {
			s.log.LogAttrs(context.Background(), slog.LevelWarn,
				"no DTLS certificate configured: using a self-signed one with a new key; things cannot pin it across restarts")
		}
	})
	return s.cert, s.certErr
}

// ListenAndServe listens on address (":5683" if empty) with [Server.Listen]
// and calls Serve. It returns [ErrServerClosed] after Shutdown or Close.
func (s *Server) ListenAndServe(address string) error {
	if err := s.init(); err != nil {
		return err
	}
	if s.isClosed() {
		return ErrServerClosed
	}
	l, err := s.Listen("udp", address)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Serve authenticates the gateway (if [Server.Authenticate] has not
// succeeded yet) and then serves CoAP on l until Shutdown or Close, after
// which it returns [ErrServerClosed]. Serve closes l when it returns.
//
// When l was not made by [Server.Listen], its DTLS settings are the
// caller's; handshakes beyond MaxPendingHandshakes or MaxSessions are
// closed right after they are accepted rather than refused at their first
// datagram, and a new handshake from the address of an established
// session is up to l.
func (s *Server) Serve(l Listener) error {
	if err := s.init(); err != nil {
		l.Close()
		return err
	}
	if !s.track(l) {
		l.Close()
		return ErrServerClosed
	}
	defer s.untrack(l)
	if s.RetryAuthentication {
		s.wg.Add(1)
		go s.authenticateUntilDone()
	} else if err := s.Authenticate(s.ctx); err != nil {
		l.Close()
		if s.isClosed() {
			return ErrServerClosed
		}
		return err
	}
	_, parking := l.(*DTLSListener)
	cs := s.newCoAPServer(parking && s.parkAfter() > 0)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.servers[cs] = struct{}{}
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()
	s.log.LogAttrs(s.ctx, slog.LevelInfo, "gateway serving", slog.String("address", l.Addr().String()),
		slog.String("am", s.AM.URL), slog.String("realm", s.AM.Realm), slog.String("tree", s.AM.Tree), slog.String("thing_tree", s.thingTree()),
		slog.String("id", s.ID), slog.Int64("max_sessions", s.maxSessions()), slog.Duration("idle_timeout", s.idleTimeout()),
		slog.Int64("max_pending_handshakes", s.maxPendingHandshakes()), slog.Duration("handshake_timeout", s.handshakeTimeout()),
		slog.Int64("max_request_bytes", s.maxRequestBytes()), slog.Int("max_auth_per_minute", capOr(s.MaxAuthPerMinute, DefaultMaxAuthPerMinute)),
		slog.Int("max_concurrent_auth", capOr(s.MaxConcurrentAuth, DefaultMaxConcurrentAuth)), slog.Duration("timeout", s.timeout()),
		slog.Int("udp_read_buffer", readBufferOf(l)))
	err := cs.Serve(&sessionListener{Listener: l, s: s})
	l.Close()
	if s.isClosed() {
		return ErrServerClosed
	}
	if err == nil {
		err = fmt.Errorf("gateway: listener closed: %w", net.ErrClosed)
	}
	return err
}

// track registers a listener; false if the Server is closed.
func (s *Server) track(l Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.listeners[l] = struct{}{}
	if s.addr == nil {
		s.addr = l.Addr()
	}
	return true
}

func (s *Server) untrack(l Listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
}

// Addr returns the address of the first listener given to Serve (by
// ListenAndServe or directly), or nil before.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// markClosed marks the Server closed.
func (s *Server) markClosed() {
	_ = s.init() // sets up ctx even when the configuration is invalid
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// Shutdown stops the Server gracefully: it refuses new DTLS sessions and
// answers new requests 5.03, waits for the requests being handled to
// finish, logs the gateway's own session out of AM, then closes every
// session and listener; Serve returns [ErrServerClosed]. If ctx ends
// first, Shutdown closes what is left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.markClosed()
	s.holdSessions()
	s.draining.Store(true)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for s.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			err = ctx.Err()
			break wait
		case <-tick.C:
		}
	}
	s.stopRenewal()
	if err == nil {
		s.logout(ctx)
	}
	s.saveSessions()
	s.stop()
	done := make(chan struct{})
	go func() {
		s.serving.Wait()
		s.wg.Wait()
		close(done)
	}()
	if err == nil {
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "gateway stopped")
	return err
}

// Close stops the Server at once: it closes every listener and DTLS
// session and abandons the requests being handled (their AM calls are
// cancelled). The gateway's AM session is not logged out; use Shutdown for
// that. Serve returns [ErrServerClosed]. Close may be called more than once.
func (s *Server) Close() error {
	s.markClosed()
	s.draining.Store(true)
	s.stopRenewal()
	s.stop()
	return nil
}

// stop cancels everything and stops the CoAP servers and listeners.
func (s *Server) stop() {
	s.cancel()
	s.stopRelease()
	s.mu.Lock()
	servers := make([]*dtlsserver.Server, 0, len(s.servers))
	for cs := range s.servers {
		servers = append(servers, cs)
	}
	listeners := make([]Listener, 0, len(s.listeners))
	for l := range s.listeners {
		listeners = append(listeners, l)
	}
	s.mu.Unlock()
	for _, cs := range servers {
		cs.Stop()
	}
	for _, l := range listeners {
		l.Close()
	}
}

// maxUploadsPerSession bounds the Block1 uploads a session has in
// progress at once (go-coap allows 4096), so that a session buffers at
// most that many times MaxRequestBytes. Things send one request at a time.
const maxUploadsPerSession = 16

// newCoAPServer builds a go-coap DTLS server with the gateway's resources
// and the settings iot-edge things need (traps T5, T6, T8).
func (s *Server) newCoAPServer(parking bool) *dtlsserver.Server {
	// T5: iot-edge things never re-dial; go-coap's default closes after
	// 16 s. A session idle for ParkAfter is parked, one idle for
	// IdleTimeout closed.
	idle, onIdle := s.idleTimeout(), func(cc *udpclient.Conn) {
		s.log.LogAttrs(context.Background(), slog.LevelDebug, "closing idle DTLS session", slog.String("peer", cc.RemoteAddr().String()))
		_ = cc.Close()
	}
	if parking {
		idle, onIdle = s.parkAfter(), s.onInactive
	}
	r := mux.NewRouter()
	r.SetErrorHandler(func(err error) {
		s.log.LogAttrs(context.Background(), slog.LevelDebug, "coap router", slog.String("error", err.Error()))
	})
	r.Use(s.middleware)
	for path, h := range map[string]mux.HandlerFunc{
		coapx.PathAuthenticate: s.serveAuthenticate,
		coapx.PathAMInfo:       s.serveAMInfo,
		coapx.PathAccessToken:  s.things(callback.OpAccessToken),
		coapx.PathIntrospect:   s.serveIntrospect,
		coapx.PathAttributes:   s.things(callback.OpAttributes),
		coapx.PathUserCode:     s.things(callback.OpUserCode),
		coapx.PathUserToken:    s.things(callback.OpUserToken),
		coapx.PathSession:      s.serveSession,
	} {
		if err := r.Handle(path, h); err != nil {
			panic(err) // constant paths
		}
	}
	r.DefaultHandle(mux.HandlerFunc(func(w mux.ResponseWriter, _ *mux.Message) {
		setResponse(w, codes.NotFound, message.TextPlain, nil)
	}))
	return dtls.NewServer(
		options.WithMux(r),
		options.WithContext(s.ctx),
		options.WithErrors(func(err error) {
			s.log.LogAttrs(context.Background(), slog.LevelDebug, "coap", slog.String("error", err.Error()))
		}),
		// Expiry on the server's clock (Time), so that it can be tested
		// without waiting.
		options.WithPeriodicRunner(s.runExpiry),
		options.WithInactivityMonitor(idle, onIdle),
		// T8: a transfer must outlive the AM call that produces its response.
		options.WithBlockwise(true, blockwise.SZX1024, s.timeout()+blockwiseMargin),
		options.WithBlockwiseReceivingMessagesCacheMaxEntries(maxUploadsPerSession),
		options.WithDTLSHandshakeTimeout(s.handshakeTimeout()),
		options.WithOnNewConn(s.onNewConn),
		// T6: restore the Content-Format of Block2 continuations.
		options.WithProcessReceivedMessageFunc(s.processReceived),
	)
}
