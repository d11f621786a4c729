package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options/config"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// sessionListener counts the DTLS handshakes in progress and the
// sessions established. It closes the handshakes of listeners not made by
// Listen beyond MaxPendingHandshakes or MaxSessions (or while shutting
// down), and refuses sessions whose handshake completes beyond MaxSessions.
type sessionListener struct {
	Listener
	s *Server
}

func (l *sessionListener) AcceptWithContext(ctx context.Context) (net.Conn, error) {
	for {
		c, err := l.Listener.AcceptWithContext(ctx)
		if err != nil || c == nil {
			return c, err
		}
		d, ok := c.(*dtlsConn)
		if !ok { // a DTLSListener admits its own
			if reason := l.s.admission(false, l.s.pending.Load()); reason != "" {
				l.s.refuseHandshake(c.RemoteAddr().String(), reason)
				_ = c.Close()
				continue
			}
		}
		sc := &sessionConn{Conn: c, s: l.s, addr: c.RemoteAddr()}
		if ok {
			d.establish = sc.establish
			sc.resumed = d.resumed
		}
		if sc.resumed == "" { // a resumed session has its parked one's slot
			l.s.pending.Add(1)
		}
		return sc, nil
	}
}

// reasonPending is admission's reason when MaxPendingHandshakes is reached.
const reasonPending = "too many pending handshakes"

// admission returns why a new handshake is refused, or "". handshakes
// counts those under way; replacing is true for a handshake that replaces
// an established session, which then needs no new slot.
func (s *Server) admission(replacing bool, handshakes int64) string {
	switch {
	case s.draining.Load():
		return "shutting down"
	case !replacing && s.sessions.Load() >= s.maxSessions():
		return "too many sessions"
	case handshakes >= s.maxPendingHandshakes():
		return reasonPending
	}
	return ""
}

// refusalLogInterval is the least time between two log lines about
// refused handshakes; the refusals in between are counted in the next.
const refusalLogInterval = 10 * time.Second

// refusalLog rate-limits the log lines about refused handshakes.
type refusalLog struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// refuseHandshake logs a refused handshake at WARN, at most once per
// refusalLogInterval.
func (s *Server) refuseHandshake(peer, reason string) {
	s.Metrics.handshake("refused")
	s.Metrics.refusal(refusalHandshake)
	now := time.Now()
	r := &s.refusals
	r.mu.Lock()
	if now.Before(r.next) {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := r.suppressed
	r.suppressed, r.next = 0, now.Add(refusalLogInterval)
	r.mu.Unlock()
	s.log.LogAttrs(context.Background(), slog.LevelWarn, "DTLS handshake refused", slog.String("peer", peer),
		slog.String("reason", reason), slog.Int64("sessions", s.sessions.Load()), slog.Int64("max_sessions", s.maxSessions()),
		slog.Int64("pending_handshakes", s.pending.Load()), slog.Int64("max_pending_handshakes", s.maxPendingHandshakes()),
		slog.Int("refused_unlogged", suppressed))
}

var errHandshakeRefused = errors.New("gateway: DTLS session refused")

// States of a sessionConn.
const (
	sessionPending int32 = iota
	sessionEstablished
	sessionEnded
)

// sessionConn holds a pending-handshake slot until its handshake
// completes, then a session slot until it is closed.
type sessionConn struct {
	net.Conn
	s     *Server
	mu    sync.Mutex // serialises state changes
	state atomic.Int32
	gone  atomic.Bool // replaced by a new handshake from its address
	// resumed is where a resumed session was parked; it holds the parked
	// session's slot from the start.
	resumed string
	// handoff: the session was parked, and its slot passed to the parked
	// session.
	handoff atomic.Bool
	// deadlines: a read deadline was set; Read then waits inside pion,
	// which keeps it.
	deadlines atomic.Bool
	// addr is the address the session began at, which RemoteAddr keeps
	// for the session's life.
	addr net.Addr
}

// SetReadDeadline sets the read deadline of the connection.
func (c *sessionConn) SetReadDeadline(t time.Time) error {
	c.useDeadlines()
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets the read and write deadlines of the connection.
func (c *sessionConn) SetDeadline(t time.Time) error {
	c.useDeadlines()
	return c.Conn.SetDeadline(t)
}

// useDeadlines makes Read wait inside pion from now on, a Read waiting
// for a record too.
func (c *sessionConn) useDeadlines() {
	c.deadlines.Store(true)
	if d, ok := c.Conn.(*dtlsConn); ok {
		d.peer.holdBuffer.Store(true)
		select {
		case d.peer.recordIn <- struct{}{}:
		default:
		}
	}
}

// HandshakeContext runs the DTLS handshake; go-coap calls it before
// serving the session, and before every read and write.
func (c *sessionConn) HandshakeContext(ctx context.Context) error {
	if c.state.Load() == sessionEstablished {
		return nil
	}
	if h, ok := c.Conn.(interface{ HandshakeContext(context.Context) error }); ok {
		if err := h.HandshakeContext(ctx); err != nil {
			return err
		}
	}
	if err := c.establish(c.RemoteAddr().String()); err != nil {
		return err
	}
	if d, ok := c.Conn.(*dtlsConn); ok {
		d.peer.setOnReplace(c.replaced)
	}
	return nil
}

// establish moves the session from a pending-handshake slot to a session
// slot, or refuses it.
func (c *sessionConn) establish(peer string) error {
	s := c.s
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state.Load() {
	case sessionEstablished:
		return nil
	case sessionEnded:
		return net.ErrClosed
	}
	if c.resumed != "" {
		c.state.Store(sessionEstablished)
		s.Metrics.resumption(c.resumed)
		return nil
	}
	s.pending.Add(-1)
	reason := ""
	if s.draining.Load() {
		reason = "shutting down"
	} else if s.sessions.Add(1) > s.maxSessions() {
		s.sessions.Add(-1)
		reason = "too many sessions"
	}
	if reason != "" {
		c.state.Store(sessionEnded)
		s.refuseHandshake(peer, reason)
		return errHandshakeRefused
	}
	c.state.Store(sessionEstablished)
	s.Metrics.handshake("ok")
	return nil
}

// release frees the session's slot.
func (c *sessionConn) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state.Swap(sessionEnded) {
	case sessionPending:
		if c.resumed == "" {
			c.s.pending.Add(-1)
		} else {
			c.s.sessions.Add(-1) // the parked session's slot
		}
	case sessionEstablished:
		if !c.handoff.Load() {
			c.s.sessions.Add(-1)
		}
	}
}

func (c *sessionConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// replaced frees the slot of a session that a new handshake from its
// address replaces, and gives it another remote address for go-coap,
// which keys its sessions by remote address: the old session's removal
// must not remove the new one, which would then neither expire when idle
// nor be closed by Stop. The session then ends on a read error.
func (c *sessionConn) replaced() {
	c.gone.Store(true)
	c.release()
}

// RemoteAddr returns the address the session began at; a replaced
// session's is marked as such. It stays the same when a thing that uses
// a DTLS connection ID moves: go-coap keys a session's state (a
// block-wise answer waiting for its next block's request, for one) by
// the remote address, and pion updates a moved connection's address only
// after it has handed on the moved record's data, so a handler could
// store the first block under the old address and the request for the
// next find nothing under the new one (TestThingMovesWithConnectionID
// failed so under load). Answers still go where pion sends them: the
// address of the newest record.
func (c *sessionConn) RemoteAddr() net.Addr {
	a := c.addr
	if a == nil {
		a = c.Conn.RemoteAddr()
	}
	if c.gone.Load() {
		return replacedAddr{a}
	}
	return a
}

// replacedAddr is the remote address of a replaced session.
type replacedAddr struct{ net.Addr }

func (a replacedAddr) String() string { return a.Addr.String() + " (replaced)" }

var readBuffers = sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }}

// Read returns the next datagram. go-coap reads with a buffer of its MTU
// (1472 bytes), and a longer datagram would end the session; such a
// request is answered 4.13 with the block size to use instead (RFC 7959
// §2.9.3) and the session goes on.
//
// The read buffer (maxDatagram bytes) is taken from a pool only once a
// record has come in (peerConn.waitRecord), so that an idle session,
// whose reader waits here all the time, holds none.
func (c *sessionConn) Read(b []byte) (int, error) {
	d, _ := c.Conn.(*dtlsConn)
	for {
		if d != nil {
			d.peer.waitRecord(&c.deadlines)
		}
		n, again, err := c.read1(b)
		if errors.Is(err, errReleased) {
			d.peer.tookReleased() // a quiet session's reader let go of its buffer
			continue
		}
		if !again {
			return n, err
		}
	}
}

// read1 is one read of Read; again when the datagram was too large and
// has been answered.
func (c *sessionConn) read1(b []byte) (int, bool, error) {
	bp := readBuffers.Get().(*[]byte)
	defer readBuffers.Put(bp)
	n, err := c.Conn.Read(*bp)
	if err != nil || n <= len(b) {
		return copy(b, (*bp)[:n]), false, err
	}
	c.s.oversizeDatagram(c.Conn, (*bp)[:n])
	return 0, true, nil
}

// oversizeDatagram answers a request in a datagram too large to read.
func (s *Server) oversizeDatagram(c net.Conn, b []byte) {
	s.log.LogAttrs(context.Background(), slog.LevelDebug, "datagram too large", slog.String("peer", c.RemoteAddr().String()),
		slog.Int("bytes", len(b)))
	if len(b) < 4 || b[0]>>6 != 1 {
		return
	}
	typ, tkl, code := message.Type(b[0]>>4&3), int(b[0]&0xf), codes.Code(b[1])
	if tkl > 8 || len(b) < 4+tkl || code < codes.GET || code >= 32 || (typ != message.Confirmable && typ != message.NonConfirmable) {
		return // not a request
	}
	resp := message.Message{
		Token:     b[4 : 4+tkl],
		Code:      codes.RequestEntityTooLarge,
		Type:      message.Acknowledgement,
		MessageID: int32(b[2])<<8 | int32(b[3]),
		Options: message.Options{
			{ID: message.Block1, Value: []byte{byte(blockwise.SZX1024)}}, // NUM 0, M 0
			{ID: message.Size1, Value: uintOption(s.size1())},
		},
	}
	if typ == message.NonConfirmable {
		resp.Type, resp.MessageID = message.NonConfirmable, message.GetMID()
	}
	out := make([]byte, 64)
	n, err := coder.DefaultCoder.Encode(resp, out)
	if err == nil {
		_, _ = c.Write(out[:n])
	}
}

// uintOption encodes an unsigned option value in the fewest bytes.
func uintOption(v uint32) []byte {
	var b []byte
	for ; v > 0; v >>= 8 {
		b = append([]byte{byte(v)}, b...)
	}
	return b
}

// connStateKey keys a session's *connState in its go-coap context.
type connStateKey struct{}

// maxRememberedFormats bounds the Content-Formats remembered per session.
const maxRememberedFormats = 64

// connState is what the gateway keeps per DTLS session: the Content-Format
// of each recent request, by token, to restore it on Block2
// continuations that leave it out (trap T6).
type connState struct {
	mu      sync.Mutex
	formats map[string]rememberedFormat
	auth    authBucket   // MaxAuthPerMinute allowance
	flows   *digestCache // the session's authentication flows; nil until its first
	kept    atomic.Bool  // the session is parked: its state outlives its connection
}

// connStateOf is the state of the session a request came on; a fresh
// one, not kept, for a connection the gateway did not set up.
func connStateOf(w mux.ResponseWriter) *connState {
	if st, ok := w.Conn().Context().Value(connStateKey{}).(*connState); ok {
		return st
	}
	return &connState{formats: map[string]rememberedFormat{}}
}

// digests is the session's digest cache, made on first use.
func (st *connState) digests(s *Server) *digestCache {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.flows == nil {
		st.flows = newDigestCache(maxFlowsPerSession, s.now, &s.flows)
	}
	return st.flows
}

type rememberedFormat struct {
	cf      message.MediaType
	expires time.Time
}

func (s *Server) onNewConn(cc *udpclient.Conn) {
	st := &connState{formats: map[string]rememberedFormat{}}
	if _, d := dtlsConnOf(cc); d != nil {
		if d.restored != nil { // a resumed session goes on with its state
			st = d.restored
			st.kept.Store(false)
		}
		d.peer.conn.Store(st)
	}
	cc.SetContextValue(connStateKey{}, st)
	s.log.LogAttrs(context.Background(), slog.LevelDebug, "DTLS session opened", slog.String("peer", cc.RemoteAddr().String()),
		slog.Int64("sessions", s.sessions.Load()), slog.Int64("pending_handshakes", s.pending.Load()))
	cc.AddOnClose(func() {
		if !st.kept.Load() { // the session's flows end with it
			st.end()
		}
		s.log.LogAttrs(context.Background(), slog.LevelDebug, "DTLS session closed", slog.String("peer", cc.RemoteAddr().String()))
	})
}

// processReceived is the go-coap hook that sees every request before the
// block-wise layer. iot-edge things send the Block2 continuation of a POST
// (block 1, 2, …) with the same token but without Content-Format; go-coap
// matches continuations of POSTs on token and options (RFC 9175), so it
// would run the handler again and the thing would splice two different
// responses. Restoring the Content-Format the token's first request
// carried makes the continuation match the stored response.
//
// It also refuses request bodies over MaxRequestBytes before the
// block-wise layer buffers them: such a request goes on without body and
// block options, marked so that the middleware answers 4.13.
func (s *Server) processReceived(req *pool.Message, cc *udpclient.Conn, handler config.HandlerFunc[*udpclient.Conn]) {
	if size, over := s.requestSize(req); over {
		s.log.LogAttrs(req.Context(), slog.LevelDebug, "request body too large", slog.String("peer", cc.RemoteAddr().String()),
			slog.Int64("bytes", size), slog.Int64("max_request_bytes", s.maxRequestBytes()))
		req.Remove(message.Block1)
		req.Remove(message.Block2)
		req.Remove(message.Size1)
		req.SetBody(nil)
		req.SetContext(context.WithValue(req.Context(), tooLargeKey{}, true))
	} else if st, ok := cc.Context().Value(connStateKey{}).(*connState); ok && s.restoreCF.Load() {
		st.fix(req, s.now(), s.timeout()+blockwiseMargin)
	}
	cc.ProcessReceivedMessageWithHandler(req, handler)
}

// tooLargeKey marks, in its context, a request whose body is over
// MaxRequestBytes.
type tooLargeKey struct{}

// requestSize returns the size of a request's body as far as it is known
// (the end of its Block1 block, or its Size1 option when larger) and
// whether that is over MaxRequestBytes.
func (s *Server) requestSize(req *pool.Message) (int64, bool) {
	if c := req.Code(); c < codes.GET || c >= 32 {
		return 0, false // not a request
	}
	var size int64
	if req.Body() != nil {
		n, err := req.BodySize()
		if err != nil {
			return 0, false
		}
		size = n
	}
	if v, err := req.GetOptionUint32(message.Block1); err == nil {
		if szx, num, _, err := blockwise.DecodeBlockOption(v); err == nil {
			size += num * szx.Size()
		}
	}
	if v, err := req.GetOptionUint32(message.Size1); err == nil {
		size = max(size, int64(v))
	}
	return size, size > s.maxRequestBytes()
}

func isBodyMethod(c codes.Code) bool {
	switch c {
	case codes.POST, codes.PUT, codes.FETCH, codes.PATCH, codes.IPATCH:
		return true
	}
	return false
}

// fix remembers the Content-Format of a body request, or restores it on a
// Block2 continuation that has none.
func (st *connState) fix(req *pool.Message, now time.Time, ttl time.Duration) {
	if !isBodyMethod(req.Code()) || len(req.Token()) == 0 {
		return
	}
	key := string(req.Token())
	cf, err := req.ContentFormat()
	st.mu.Lock()
	defer st.mu.Unlock()
	if err == nil {
		if _, ok := st.formats[key]; !ok && len(st.formats) >= maxRememberedFormats {
			st.evict(now)
		}
		st.formats[key] = rememberedFormat{cf: cf, expires: now.Add(ttl)}
		return
	}
	if !isBlock2Continuation(req) {
		return
	}
	if f, ok := st.formats[key]; ok && now.Before(f.expires) {
		req.SetContentFormat(f.cf)
	}
}

// evict drops expired entries, or the one closest to expiry.
func (st *connState) evict(now time.Time) {
	var oldest string
	var first time.Time
	for k, f := range st.formats {
		if !now.Before(f.expires) {
			delete(st.formats, k)
			continue
		}
		if oldest == "" || f.expires.Before(first) {
			oldest, first = k, f.expires
		}
	}
	if len(st.formats) >= maxRememberedFormats {
		delete(st.formats, oldest)
	}
}

// isBlock2Continuation reports whether req asks for block 1 or later.
func isBlock2Continuation(req *pool.Message) bool {
	v, err := req.GetOptionUint32(message.Block2)
	if err != nil {
		return false
	}
	_, num, _, err := blockwise.DecodeBlockOption(v)
	return err == nil && num > 0
}
