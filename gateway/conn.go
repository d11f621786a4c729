package gateway

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options/config"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// sessionListener counts the DTLS sessions it hands out and closes those
// beyond MaxSessions (or accepted while shutting down).
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
		n := l.s.sessions.Add(1)
		if n > l.s.maxSessions() || l.s.draining.Load() {
			l.s.sessions.Add(-1)
			l.s.log.LogAttrs(ctx, slog.LevelWarn, "DTLS session refused: too many sessions", slog.String("peer", c.RemoteAddr().String()),
				slog.Int64("max_sessions", l.s.maxSessions()))
			_ = c.Close()
			continue
		}
		return &sessionConn{Conn: c, release: func() { l.s.sessions.Add(-1) }}, nil
	}
}

// sessionConn releases its session slot when closed.
type sessionConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *sessionConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// HandshakeContext runs the DTLS handshake; go-coap calls it before
// serving the session.
func (c *sessionConn) HandshakeContext(ctx context.Context) error {
	if h, ok := c.Conn.(interface{ HandshakeContext(context.Context) error }); ok {
		return h.HandshakeContext(ctx)
	}
	return nil
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
}

type rememberedFormat struct {
	cf      message.MediaType
	expires time.Time
}

func (s *Server) onNewConn(cc *udpclient.Conn) {
	cc.SetContextValue(connStateKey{}, &connState{formats: map[string]rememberedFormat{}})
	s.log.LogAttrs(context.Background(), slog.LevelDebug, "DTLS session opened", slog.String("peer", cc.RemoteAddr().String()),
		slog.Int64("sessions", s.sessions.Load()))
	cc.AddOnClose(func() {
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
func (s *Server) processReceived(req *pool.Message, cc *udpclient.Conn, handler config.HandlerFunc[*udpclient.Conn]) {
	if st, ok := cc.Context().Value(connStateKey{}).(*connState); ok && s.restoreCF.Load() {
		st.fix(req, s.now(), s.timeout()+blockwiseMargin)
	}
	cc.ProcessReceivedMessageWithHandler(req, handler)
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
