package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	piondtls "github.com/pion/dtls/v3"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// DefaultParkAfter is the default of [Server.ParkAfter]: above CoAP's
// EXCHANGE_LIFETIME (247 s, RFC 7252 §4.8.2), so that no exchange of a
// session is still under way when it is parked.
const DefaultParkAfter = 5 * time.Minute

// Where a resumed session was parked: the values of the resumptions
// metric's label.
const (
	resumedIdle = "idle" // parked by ParkAfter
	resumedFile = "file" // loaded from SessionFile
)

// parkedState is a DTLS session without a DTLS connection, goroutine or
// CoAP connection: pion's serialized state and the gateway's state of the
// session. Its peerConn stays in the listener's maps, so that the next
// record from the thing resumes it (see DTLSListener.route).
//
// pion's state holds the session's keys and its next record sequence
// number. It is taken only once the session's writes are dropped
// (peerConn.frozen) and restored at most once (it leaves the map when it
// is resumed, and a loaded session file is removed), so that no record
// sequence number, and so no AEAD nonce, is used twice.
type parkedState struct {
	state   []byte
	expires time.Time  // on the server's clock: the session's idle timeout
	conn    *connState // the gateway's state of the session; nil if none
	from    string     // resumedIdle or resumedFile
}

// parkAfter is ParkAfter's value; 0 when sessions are not parked.
func (s *Server) parkAfter() time.Duration {
	d := durOr(s.ParkAfter, DefaultParkAfter)
	if s.ParkAfter < 0 || d >= s.idleTimeout() {
		return 0
	}
	return d
}

// resumeOptions are the DTLS settings of a resumed session: the
// listener's, less those that only a server handshake takes (pion's
// Resume takes the options shared by clients and servers).
func resumeOptions(opts []piondtls.ServerOption) []piondtls.Option {
	var out []piondtls.Option
	for _, o := range opts {
		if so, ok := o.(piondtls.Option); ok {
			out = append(out, so)
		}
	}
	return out
}

// resumeLocked makes a parked session live again and queues it for
// Accept, which resumes its DTLS connection; with l.mu held. It returns
// false, leaving it parked, while the listener is closing or saving or
// when the backlog is full.
func (l *DTLSListener) resumeLocked(p *peerConn) bool {
	if l.closed || l.saving || l.s.draining.Load() {
		return false
	}
	ps := p.parked
	p.raddr = net.UDPAddrFromAddrPort(p.addr)
	p.inQ, p.inReady = nil, make(chan struct{}, 1)
	p.quiet, p.out, p.unpaid = false, 0, 0
	p.handshook.Store(false)
	p.holdBuffer.Store(false)
	p.closed = make(chan struct{})
	p.rd = makeDeadline()
	p.recordIn = make(chan struct{}, 1)
	p.counting.Store(true)
	p.touch()
	p.parked, p.resume = nil, ps
	select {
	case l.accept <- p:
	default:
		p.parked, p.resume = ps, nil
		return false
	}
	l.open++
	l.s.parked.Add(-1)
	return true
}

// resumeConn restores the DTLS connection of a resumed session.
func (l *DTLSListener) resumeConn(p *peerConn, ps *parkedState) (*dtlsConn, error) {
	var st piondtls.State
	if err := st.UnmarshalBinary(ps.state); err != nil {
		return nil, err
	}
	c, err := piondtls.ResumeWithOptions(&st, p, p.raddr, l.resumeOpts...)
	if err != nil {
		return nil, err
	}
	p.dtls.Store(c)
	return &dtlsConn{Conn: c, peer: p, resumed: ps.from, restored: ps.conn,
		addr: resumedAddr{p.raddr, l.resumes.Add(1)}}, nil
}

// resumeFailed ends a session whose state could not be restored: its slot
// is freed, and the thing's next ClientHello starts a new one.
func (l *DTLSListener) resumeFailed(p *peerConn, ps *parkedState, err error) {
	l.s.log.LogAttrs(context.Background(), slog.LevelWarn, "cannot resume DTLS session; the thing must handshake again",
		slog.String("peer", p.addr.String()), slog.String("error", err.Error()))
	l.s.sessions.Add(-1)
	ps.conn.end()
	p.Close()
}

// resumedAddr is the remote address of a resumed session. go-coap keys
// its sessions by the remote address's String and forgets a closed one
// after it is closed; a resumed session's key is its own, so that the
// late removal of the session it resumes does not remove it.
type resumedAddr struct {
	*net.UDPAddr
	n int64
}

func (a resumedAddr) String() string {
	return a.UDPAddr.String() + " (resumed " + strconv.FormatInt(a.n, 10) + ")"
}

// touch notes that the session is active now, on the server's clock.
func (p *peerConn) touch() { p.lastActive.Store(p.l.s.now().UnixNano()) }

// idleSince is when the session was last active, on the server's clock.
func (p *peerConn) idleSince() time.Time { return time.Unix(0, p.lastActive.Load()) }

// freeze stops the writes of an established session so that its state
// can be taken; it reports false if the session cannot be parked now (its
// listener is closing, a new handshake from its address is under way, its
// peer moved to another address).
func (l *DTLSListener) freeze(p *peerConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.saving || p.isClosed() || p.next != nil || p.prev != nil || l.peers[p.addr] != p ||
		!p.established.Load() || p.replaced.Load() || p.moved.Load() || p.dtls.Load() == nil {
		return false
	}
	p.frozen.Store(true)
	return true
}

// parkFrozen puts a parked session with state in the place of the frozen
// session p. It fails, and p is unfrozen, if a datagram for p came in
// since it was frozen: the session is not idle.
func (l *DTLSListener) parkFrozen(p *peerConn, state []byte, st *connState) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.queued() > 0 || p.isClosed() || p.next != nil || l.peers[p.addr] != p || l.closed || l.saving {
		p.frozen.Store(false)
		return false
	}
	q := &peerConn{l: l, addr: p.addr, cid: p.cid, parked: &parkedState{
		state: state, expires: p.idleSince().Add(l.s.idleTimeout()), conn: st, from: resumedIdle}}
	q.established.Store(true)
	l.peers[p.addr] = q
	if p.cid != "" {
		l.cids[p.cid] = q
	}
	l.s.parked.Add(1)
	return true
}

// dropParkedLocked forgets a parked session and frees its slot; with l.mu
// held.
func (l *DTLSListener) dropParkedLocked(q *peerConn) {
	ps := q.parked
	if ps == nil {
		return
	}
	q.parked = nil
	if l.peers[q.addr] == q {
		delete(l.peers, q.addr)
		if n := q.next; n != nil {
			l.peers[q.addr] = n
		}
	}
	if n := q.next; n != nil && n.prev == q {
		n.prev = nil
	}
	q.next = nil
	if q.cid != "" && l.cids[q.cid] == q {
		delete(l.cids, q.cid)
	}
	l.s.sessions.Add(-1)
	l.s.parked.Add(-1)
	ps.conn.end()
}

// expireParked drops the parked sessions whose idle timeout has passed;
// it is go-coap's periodic runner's check, and reports false once the
// listener is closed.
func (l *DTLSListener) expireParked(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.peers {
		if p.parked != nil && !now.Before(p.parked.expires) {
			l.s.log.LogAttrs(context.Background(), slog.LevelDebug, "parked DTLS session expired", slog.String("peer", p.addr.String()))
			l.dropParkedLocked(p)
		}
	}
	return !l.closed
}

// dtlsConnOf returns the DTLSListener session of a go-coap connection.
func dtlsConnOf(cc *udpclient.Conn) (*sessionConn, *dtlsConn) {
	sc, ok := cc.NetConn().(*sessionConn)
	if !ok {
		return nil, nil
	}
	d, _ := sc.Conn.(*dtlsConn)
	return sc, d
}

// onInactive is go-coap's inactivity callback: a session idle for
// ParkAfter is parked; one that cannot be parked is closed once idle for
// IdleTimeout.
func (s *Server) onInactive(cc *udpclient.Conn) {
	if s.parkAfter() > 0 {
		if s.park(cc) {
			return
		}
		if _, d := dtlsConnOf(cc); d != nil && s.now().Sub(d.peer.idleSince()) < s.idleTimeout() {
			return // tried again at the next check
		}
	}
	s.log.LogAttrs(context.Background(), slog.LevelDebug, "closing idle DTLS session", slog.String("peer", cc.RemoteAddr().String()))
	_ = cc.Close()
}

// park parks an idle session: its DTLS state is taken, and its DTLS and
// CoAP connections are closed without a word to the thing.
func (s *Server) park(cc *udpclient.Conn) bool {
	sc, d := dtlsConnOf(cc)
	if d == nil {
		return false
	}
	p, l := d.peer, d.peer.l
	if !l.freeze(p) {
		return false
	}
	state, err := marshalState(p.dtls.Load())
	st, _ := cc.Context().Value(connStateKey{}).(*connState)
	if err != nil {
		p.frozen.Store(false)
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "cannot park DTLS session", slog.String("peer", p.addr.String()),
			slog.String("error", err.Error()))
		return false
	}
	if !l.parkFrozen(p, state, st) {
		return false
	}
	// The slot and the gateway's state of the session pass to the
	// parked session.
	sc.handoff.Store(true)
	if st != nil {
		st.kept.Store(true)
	}
	_ = cc.Close() // its close_notify is not sent: p is frozen
	s.Metrics.park()
	s.noteParked()
	s.log.LogAttrs(context.Background(), slog.LevelDebug, "DTLS session parked", slog.String("peer", p.addr.String()),
		slog.Int("state_bytes", len(state)))
	return true
}

// marshalState serializes an established DTLS connection's state.
func marshalState(c *piondtls.Conn) ([]byte, error) {
	if c == nil {
		return nil, errors.New("no DTLS connection")
	}
	st, ok := c.ConnectionState()
	if !ok {
		return nil, errors.New("no DTLS state")
	}
	b, err := st.MarshalBinary()
	return bytes.Clone(b), err // without the encoder's spare capacity
}

// end drops what a session's state holds that is counted server-wide
// (its authentication flows); nil does nothing.
func (st *connState) end() {
	if st == nil {
		return
	}
	st.mu.Lock()
	flows := st.flows
	st.mu.Unlock()
	if flows != nil {
		flows.clear()
	}
}

// hold drops every datagram of the listener's sessions from now on: the
// gateway is about to save them, and a thing's request is better retried
// with the restored session than answered "shutting down".
func (l *DTLSListener) hold() {
	l.mu.Lock()
	l.saving = true
	l.mu.Unlock()
}

// collect freezes every established session of the listener and returns
// them, and the parked ones, for the session file.
func (l *DTLSListener) collect(now time.Time) []savedSession {
	type live struct {
		p  *peerConn
		st *connState
	}
	var out []savedSession
	var lives []live
	local := l.Addr().String()
	l.mu.Lock()
	l.saving = true
	for addr, p := range l.peers {
		switch {
		case p.parked != nil:
			if now.Before(p.parked.expires) {
				out = append(out, saveSession(local, addr, p.cid, p.parked.state, p.parked.expires, p.parked.conn, now))
			}
		case p.established.Load() && !p.isClosed() && !p.moved.Load() && !p.replaced.Load() && p.dtls.Load() != nil:
			p.frozen.Store(true)
			lives = append(lives, live{p, p.conn.Load()})
		}
	}
	l.mu.Unlock()
	for _, lv := range lives {
		state, err := marshalState(lv.p.dtls.Load())
		if err != nil {
			l.s.log.LogAttrs(context.Background(), slog.LevelWarn, "cannot save DTLS session", slog.String("peer", lv.p.addr.String()),
				slog.String("error", err.Error()))
			continue
		}
		out = append(out, saveSession(local, lv.p.addr, lv.p.cid, state, lv.p.idleSince().Add(l.s.idleTimeout()), lv.st, now))
	}
	return out
}

func saveSession(local string, addr netip.AddrPort, cid string, state []byte, expires time.Time, st *connState, now time.Time) savedSession {
	ss := savedSession{Listener: local, Peer: addr.String(), State: state, Expires: expires}
	if cid != "" {
		ss.CID = []byte(cid)
	}
	if st != nil {
		st.mu.Lock()
		ss.AuthTokens, ss.AuthLast = st.auth.tokens, st.auth.last
		flows := st.flows
		st.mu.Unlock()
		if flows != nil {
			ss.Flows = flows.export(now)
		}
	}
	return ss
}

// restore parks the sessions of a session file that belong to the
// listener; it returns how many it took.
func (l *DTLSListener) restore(sessions []savedSession, now time.Time) int {
	local := l.Addr().String()
	n := 0
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ss := range sessions {
		addr, err := netip.ParseAddrPort(ss.Peer)
		if err != nil || ss.Listener != local || !now.Before(ss.Expires) || l.peers[addr] != nil {
			continue
		}
		if l.s.sessions.Load() >= l.s.maxSessions() {
			break
		}
		st := &connState{formats: map[string]rememberedFormat{}, auth: authBucket{tokens: ss.AuthTokens, last: ss.AuthLast}}
		if len(ss.Flows) > 0 {
			st.flows = newDigestCache(maxFlowsPerSession, l.s.now, &l.s.flows)
			st.flows.restore(ss.Flows, now)
		}
		q := &peerConn{l: l, addr: addr, parked: &parkedState{state: ss.State, expires: ss.Expires, conn: st, from: resumedFile}}
		q.established.Store(true)
		if len(ss.CID) == cidLength && l.cids[string(ss.CID)] == nil {
			q.cid = string(ss.CID)
			l.cids[q.cid] = q
		}
		l.peers[addr] = q
		l.s.sessions.Add(1)
		l.s.parked.Add(1)
		n++
	}
	return n
}

// loadSessions parks the sessions of SessionFile that belong to l, and
// removes the file: a session's state is restored once only. A missing,
// stale, foreign or damaged file is ignored with a log line.
func (s *Server) loadSessions(l *DTLSListener) {
	if s.SessionFile == "" {
		return
	}
	ctx := context.Background()
	file := slog.String("file", s.SessionFile)
	b, err := os.ReadFile(s.SessionFile)
	if errors.Is(err, fs.ErrNotExist) {
		s.log.LogAttrs(ctx, slog.LevelInfo, "no session file: things handshake anew", file)
		return
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "session file ignored", file, slog.String("error", err.Error()))
		return
	}
	f, err := openSessions(s.SessionKey, b)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "session file ignored", file, slog.String("error", err.Error()))
		return
	}
	// Before any session is used: a state restored twice would send
	// records with sequence numbers already used.
	if err := os.Remove(s.SessionFile); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "session file ignored: it cannot be removed, so its sessions could be restored twice",
			file, slog.String("error", err.Error()))
		return
	}
	now := s.now()
	n := l.restore(f.Sessions, now)
	level, msg := slog.LevelInfo, "DTLS sessions restored from the session file"
	if n == 0 && len(f.Sessions) > 0 {
		level, msg = slog.LevelWarn, "session file ignored: its sessions have expired or belong to another address"
	}
	s.log.LogAttrs(ctx, level, msg, file, slog.Int("sessions", n), slog.Int("in_file", len(f.Sessions)),
		slog.Time("saved", f.Saved), slog.String("address", l.Addr().String()))
}

// holdSessions makes the listeners drop their sessions' datagrams before
// Shutdown saves them.
func (s *Server) holdSessions() {
	if s.SessionFile == "" {
		return
	}
	for _, l := range s.dtlsListeners() {
		l.hold()
	}
}

// saveSessions writes the sessions of every DTLSListener to SessionFile.
func (s *Server) saveSessions() {
	if s.SessionFile == "" || s.saved.Swap(true) {
		return
	}
	now := s.now()
	f := &sessionFile{Saved: now}
	for _, l := range s.dtlsListeners() {
		f.Sessions = append(f.Sessions, l.collect(now)...)
	}
	ctx := context.Background()
	file := slog.String("file", s.SessionFile)
	b, err := sealSessions(s.SessionKey, f)
	if err == nil {
		err = writeFileAtomic(s.SessionFile, b)
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "cannot save the DTLS sessions; things will handshake anew", file, slog.String("error", err.Error()))
		return
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "DTLS sessions saved", file, slog.Int("sessions", len(f.Sessions)), slog.Int("bytes", len(b)))
}

// dtlsListeners returns the listeners made by Listen that Serve serves.
func (s *Server) dtlsListeners() []*DTLSListener {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*DTLSListener
	for l := range s.listeners {
		if d, ok := l.(*DTLSListener); ok {
			out = append(out, d)
		}
	}
	return out
}

// checkSessionFile checks the session file settings.
func (s *Server) checkSessionFile() error {
	if s.SessionFile == "" {
		return nil
	}
	if _, _, err := sessionKeys(s.SessionKey); err != nil {
		return fmt.Errorf("gateway: Server.SessionKey: %w", err)
	}
	return nil
}
