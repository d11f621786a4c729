package gateway

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
)

// The listener's limits.
const (
	// maxDatagram is the largest datagram read, as pion's own listener
	// and DTLS connections do; a longer one is truncated and so dropped.
	maxDatagram = 8192
	// cidLength is the length of the DTLS connection IDs the gateway
	// hands out (RFC 9146); records carrying one are routed by it.
	cidLength = 8
	// acceptBacklog bounds the new sessions not yet taken by Serve.
	acceptBacklog = 128
	// peerQueue bounds the datagrams waiting for one session; more are
	// dropped, as a full socket buffer would.
	peerQueue = 64
)

// DTLS record and handshake types the listener looks at (RFC 6347, RFC 9146).
const (
	recordHandshake    = 22
	recordCID          = 25
	recordHeaderLength = 13
	handshakeHeaderLen = 12
	typeClientHello    = 1
	typeServerHello    = 2
)

// DTLSListener is the listener of [Server.Listen]: one UDP socket whose
// datagrams it sorts into DTLS sessions, by the DTLS connection ID of a
// record when it carries one of the gateway's, else by the peer's address
// and port.
//
// It refuses new handshakes beyond [Server.MaxPendingHandshakes] and
// [Server.MaxSessions] at their first datagram. A ClientHello that
// starts a new handshake from the address of an established session (a
// thing that restarted without closing its session, behind a NAT that
// kept its port) goes to a new session; once that peer has answered the
// cookie exchange, proving it receives at the address, the old session is
// closed and its slot freed (RFC 6347 §4.2.8). Until then the old session
// keeps working, so a forged ClientHello cannot end it.
type DTLSListener struct {
	s          *Server
	udp        *net.UDPConn
	opts       []piondtls.ServerOption
	resumeOpts []piondtls.Option
	accept     chan *peerConn
	resumes    atomic.Int64 // sessions resumed so far
	handshakes atomic.Int64 // handshakes started so far

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	readDone  chan struct{} // closed when the read loop ends
	readErr   error         // why it ended; set before readDone is closed
	datagrams atomic.Int64  // datagrams routed (or dropped) so far
	// readBuffer is the UDP socket's receive buffer in bytes, as the
	// kernel granted it (0: unknown).
	readBuffer int

	mu        sync.Mutex
	closed    bool
	peers     map[netip.AddrPort]*peerConn
	cids      map[string]*peerConn
	open      int // peer connections not yet closed
	udpClosed bool
	// handshaking counts the peers whose handshake is under way; unverified
	// holds those of them that have not yet proven they receive at their
	// address (no ServerHello has gone out, so they have not echoed the
	// cookie of a HelloVerifyRequest), oldest first.
	handshaking int
	unverified  list.List
	// saving: Shutdown is saving the sessions to the session file; their
	// datagrams are dropped.
	saving bool
}

// newDTLSListener serves DTLS sessions with opts on udp.
func newDTLSListener(s *Server, udp *net.UDPConn, opts []piondtls.ServerOption) *DTLSListener {
	l := &DTLSListener{
		s:          s,
		udp:        udp,
		opts:       opts,
		resumeOpts: resumeOptions(opts),
		accept:     make(chan *peerConn, acceptBacklog),
		done:       make(chan struct{}),
		readDone:   make(chan struct{}),
		peers:      map[netip.AddrPort]*peerConn{},
		cids:       map[string]*peerConn{},
	}
	s.runExpiry(l.expireParked)
	go l.read()
	return l
}

// AcceptWithContext returns the next DTLS session, before its handshake,
// or a parked session being resumed.
func (l *DTLSListener) AcceptWithContext(ctx context.Context) (net.Conn, error) {
	for {
		c, err := l.accept1(ctx)
		if c != nil || err != nil {
			return c, err
		}
	}
}

// accept1 is one round of AcceptWithContext; nil, nil when a parked
// session could not be resumed.
func (l *DTLSListener) accept1(ctx context.Context) (net.Conn, error) {
	select {
	case p := <-l.accept:
		l.mu.Lock()
		ps := p.resume
		p.resume = nil
		l.mu.Unlock()
		if ps != nil {
			d, err := l.resumeConn(p, ps)
			if err != nil {
				l.resumeFailed(p, ps, err)
				return nil, nil
			}
			return d, nil
		}
		d := &dtlsConn{peer: p}
		opts := append(l.opts[:len(l.opts):len(l.opts)], piondtls.WithVerifyConnection(d.verify))
		c, err := piondtls.ServerWithOptions(p, p.raddr, opts...)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("gateway: DTLS session: %w", err)
		}
		d.Conn = c
		p.dtls.Store(c)
		return d, nil
	case <-l.done:
		return nil, coapnet.ErrListenerIsClosed
	case <-l.readDone:
		return nil, fmt.Errorf("%w: %w", coapnet.ErrListenerIsClosed, l.readErr)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops accepting sessions. The sessions already accepted go on
// (and the socket stays open for them) until they are closed.
func (l *DTLSListener) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.done)
		var queued []*peerConn
	drain:
		for {
			select {
			case p := <-l.accept:
				queued = append(queued, p)
			default:
				break drain
			}
		}
		for _, p := range l.peers {
			l.dropParkedLocked(p)
		}
		l.closeUDPLocked()
		l.mu.Unlock()
		for _, p := range queued {
			p.Close()
		}
	})
	return nil
}

// Addr returns the address of the UDP socket.
func (l *DTLSListener) Addr() net.Addr { return l.udp.LocalAddr() }

// closeUDPLocked closes the socket once the listener is closed and no
// session uses it.
func (l *DTLSListener) closeUDPLocked() {
	if l.closed && l.open == 0 && !l.udpClosed {
		l.udpClosed = true
		_ = l.udp.Close()
	}
}

func (l *DTLSListener) read() {
	defer close(l.readDone)
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := l.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				l.readErr = err
				return
			}
			// ICMP-reported errors and the like concern one peer.
			l.s.log.LogAttrs(context.Background(), slog.LevelDebug, "UDP read", slog.String("error", err.Error()))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		l.dispatch(from, buf[:n])
	}
}

// dispatch hands a datagram to its session, creating one for a
// ClientHello that is admitted.
func (l *DTLSListener) dispatch(from netip.AddrPort, b []byte) {
	l.mu.Lock()
	p, refused := l.route(from, b)
	l.mu.Unlock()
	if refused != "" {
		l.s.refuseHandshake(from.String(), refused)
	}
	if p != nil {
		p.deliver(from, b)
	}
	l.datagrams.Add(1)
}

// route finds the session of a datagram; with l.mu held. It returns the
// reason when a new handshake is refused.
func (l *DTLSListener) route(from netip.AddrPort, b []byte) (*peerConn, string) {
	if l.saving {
		return nil, ""
	}
	if cid, ok := recordConnectionID(b); ok {
		if p := l.cids[string(cid)]; p != nil {
			if p.parked != nil && !l.resumeLocked(p) {
				return nil, ""
			}
			return p, ""
		}
	}
	hello := isClientHello(b)
	p := l.peers[from]
	switch {
	case p == nil:
	case p.next != nil && isEpoch0(b):
		// The new handshake from the address of an established session.
		return p.next, ""
	case hello && p.next == nil && p.established.Load():
		// RFC 6347 §4.2.8: a new handshake (epoch 0) from the address of
		// an established session. The old session goes when the new
		// peer has answered the cookie exchange (see outgoing).
		if reason, ok := l.admit(true); !ok {
			return nil, reason
		}
		n := l.newPeer(from)
		if n != nil {
			n.prev, p.next = p, n
		}
		return n, ""
	case p.parked != nil:
		// A record of a parked session (an epoch 0 one, not a
		// ClientHello, cannot be one of it).
		if isEpoch0(b) || !l.resumeLocked(p) {
			return nil, ""
		}
		return p, ""
	default:
		return p, ""
	}
	if !hello {
		return nil, ""
	}
	if reason, ok := l.admit(false); !ok {
		return nil, reason
	}
	p = l.newPeer(from)
	if p != nil {
		l.peers[from] = p
	}
	return p, ""
}

// admit says whether a new handshake may start; with l.mu held.
// Replacing an established session needs no new session slot.
//
// When the handshakes under way reach MaxPendingHandshakes, the oldest
// handshake whose peer has not answered the cookie exchange makes room:
// a flood of spoofed ClientHellos (whose senders never see the
// HelloVerifyRequest) then only displaces itself, while a thing that
// echoes its cookie within the time the flood takes to send
// MaxPendingHandshakes more gets through. New handshakes are refused only
// when every one under way has proven its address.
func (l *DTLSListener) admit(replacing bool) (string, bool) {
	if l.closed {
		return "", false
	}
	reason := l.s.admission(replacing, int64(l.handshaking))
	if reason == reasonPending && l.evictUnverifiedLocked() {
		reason = l.s.admission(replacing, int64(l.handshaking))
	}
	return reason, reason == ""
}

// evictUnverifiedLocked ends the oldest unverified handshake; with l.mu
// held. It reports whether there was one.
func (l *DTLSListener) evictUnverifiedLocked() bool {
	var p *peerConn
	for front := l.unverified.Front(); front != nil; front = l.unverified.Front() {
		if q := front.Value.(*peerConn); !q.established.Load() {
			p = q
			break
		}
		l.endHandshakeLocked(front.Value.(*peerConn)) // done: never ended here
	}
	if p == nil {
		return false
	}
	l.endHandshakeLocked(p)
	l.s.refuseHandshake(p.addr.String(), "pending handshakes full: the oldest unverified one was ended")
	p.closeLocked()
	return true
}

// endHandshakeLocked stops counting p's handshake as under way: it
// completed, failed or was ended; with l.mu held.
func (l *DTLSListener) endHandshakeLocked(p *peerConn) {
	l.verifiedLocked(p)
	if p.handshaking {
		p.handshaking = false
		l.handshaking--
	}
}

// verifiedLocked notes that p has proven its address; with l.mu held.
func (l *DTLSListener) verifiedLocked(p *peerConn) {
	if p.unverified != nil {
		l.unverified.Remove(p.unverified)
		p.unverified = nil
	}
}

// handshakeDone notes that p's handshake has completed.
func (l *DTLSListener) handshakeDone(p *peerConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.endHandshakeLocked(p)
}

// newPeer queues a new session for Accept; with l.mu held. It returns nil
// when the backlog is full.
func (l *DTLSListener) newPeer(from netip.AddrPort) *peerConn {
	p := &peerConn{
		l:        l,
		addr:     from,
		raddr:    net.UDPAddrFromAddrPort(from),
		inReady:  make(chan struct{}, 1),
		closed:   make(chan struct{}),
		rd:       makeDeadline(),
		recordIn: make(chan struct{}, 1),
	}
	p.inspect.Store(true)
	p.touch()
	select {
	case l.accept <- p:
		l.handshakes.Add(1)
		l.open++
		l.handshaking++
		p.handshaking = true
		p.unverified = l.unverified.PushBack(p)
		return p
	default:
		return nil
	}
}

// outgoing looks at a session's datagrams until its ServerHello has gone
// out: the ServerHello carries the session's connection ID, and is sent
// only after the peer has echoed the cookie of the HelloVerifyRequest.
func (l *DTLSListener) outgoing(p *peerConn, b []byte) {
	body, ok := handshakeMessage(b, typeServerHello)
	if !ok {
		return
	}
	p.inspect.Store(false)
	var cid string
	var sh handshake.MessageServerHello
	if sh.Unmarshal(body) == nil {
		for _, e := range sh.Extensions {
			if c, ok := e.(*extension.ConnectionID); ok && len(c.CID) == cidLength {
				cid = string(c.CID)
			}
		}
	}
	l.mu.Lock()
	l.verifiedLocked(p) // a ServerHello goes out only after the cookie came back
	if cid != "" && !p.isClosed() {
		p.cid = cid
		l.cids[cid] = p
	}
	old := p.prev
	parked := false
	if old != nil {
		old.next, p.prev = nil, nil
		if l.peers[p.addr] == old {
			l.peers[p.addr] = p
		}
		if parked = old.parked != nil; parked {
			l.dropParkedLocked(old)
		}
	}
	l.mu.Unlock()
	if old != nil {
		l.s.log.LogAttrs(context.Background(), slog.LevelInfo, "DTLS session replaced by a new handshake from its address",
			slog.String("peer", p.addr.String()), slog.Bool("parked", parked))
		if !parked {
			old.replace()
		}
	}
}

// moved releases the address of a session whose peer now sends from
// another one (with its connection ID); with l.mu held.
func (l *DTLSListener) moved(p *peerConn) {
	if l.peers[p.addr] != p {
		return
	}
	delete(l.peers, p.addr)
	if n := p.next; n != nil {
		l.peers[p.addr] = n
		n.prev, p.next = nil, nil
	}
}

// remove forgets a closed session.
func (l *DTLSListener) remove(p *peerConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.removeLocked(p)
}

// removeLocked is remove with l.mu held.
func (l *DTLSListener) removeLocked(p *peerConn) {
	if p.cid != "" && l.cids[p.cid] == p {
		delete(l.cids, p.cid)
	}
	if l.peers[p.addr] == p {
		delete(l.peers, p.addr)
		if n := p.next; n != nil {
			l.peers[p.addr] = n
		}
	}
	if n := p.next; n != nil && n.prev == p {
		n.prev = nil
	}
	if pr := p.prev; pr != nil && pr.next == p {
		pr.next = nil
	}
	p.next, p.prev = nil, nil
	l.endHandshakeLocked(p)
	l.open--
	l.closeUDPLocked()
}

// checkServerOptions reports the errors pion would return for every
// session.
func checkServerOptions(opts []piondtls.ServerOption) error {
	c, err := piondtls.ServerWithOptions(nopPacketConn{}, &net.UDPAddr{}, opts...)
	if err != nil {
		return err
	}
	return c.Close()
}

// nopPacketConn is a packet connection that never delivers a datagram.
type nopPacketConn struct{}

func (nopPacketConn) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, net.ErrClosed }
func (nopPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	return 0, net.ErrClosed
}
func (nopPacketConn) Close() error                     { return nil }
func (nopPacketConn) LocalAddr() net.Addr              { return &net.UDPAddr{} }
func (nopPacketConn) SetDeadline(time.Time) error      { return nil }
func (nopPacketConn) SetReadDeadline(time.Time) error  { return nil }
func (nopPacketConn) SetWriteDeadline(time.Time) error { return nil }

// peerConn is the packet connection of one DTLS session: the datagrams
// routed to it, and writes to its peer through the listener's socket.
type peerConn struct {
	l     *DTLSListener
	addr  netip.AddrPort
	raddr *net.UDPAddr
	// The datagrams routed to the session and not yet read, at most
	// peerQueue (more are dropped); inReady is signalled when one is
	// queued. The queue's array grows as datagrams wait and goes when a
	// burst has been read, so an idle session holds a small one or none.
	inMu    sync.Mutex
	inQ     []datagram
	inReady chan struct{}
	// quiet: the established session's queue has stayed empty for
	// releaseAfter. out: the errReleased that ReadFrom has returned and
	// Read has not taken; unpaid: those of them not yet counted in records
	// (see ReadFrom). Guarded by inMu.
	quiet       bool
	out, unpaid int

	closed    chan struct{}
	closeOnce sync.Once
	rd        deadline

	inspect     atomic.Bool // outgoing datagrams are looked at
	established atomic.Bool // the handshake has completed
	handshook   atomic.Bool // pion's handshake of this connection has returned: pion passes read errors to Read
	replaced    atomic.Bool
	onReplace   atomic.Pointer[func()]
	moved       atomic.Bool
	frozen      atomic.Bool  // writes are dropped: the session's state is being taken
	lastActive  atomic.Int64 // a datagram was last read, on the server's clock (Unix ns)
	dtls        atomic.Pointer[piondtls.Conn]
	conn        atomic.Pointer[connState] // the gateway's state of the session
	// counting: the peer's Finished has been verified (or the session was
	// resumed), so every record read from now on is counted in records,
	// and recordIn signalled: see waitRecord.
	counting atomic.Bool
	records  atomic.Int64
	recordIn chan struct{}
	// quietTimer is wait's, while the session is not quiet; only pion's
	// reader uses it.
	quietTimer *time.Timer
	// waiting: pion's reader waits in ReadFrom, with its read buffer.
	waiting atomic.Bool
	// holdBuffer: the session's reader no longer lets go of its buffer
	// when quiet: a read deadline was set, so Read waits inside pion and
	// would take one errReleased after another until it passes.
	holdBuffer atomic.Bool

	// Guarded by l.mu.
	handshaking bool          // counted in l.handshaking
	unverified  *list.Element // in l.unverified
	cid         string
	prev        *peerConn // the established session this handshake replaces
	next        *peerConn // the new handshake from this session's address
	// A parked session has no packet flow (inReady, closed and raddr are nil)
	// until it is resumed; resume is what Accept resumes it from.
	parked *parkedState
	resume *parkedState
}

type datagram struct {
	b    []byte
	from netip.AddrPort
}

func (p *peerConn) deliver(from netip.AddrPort, b []byte) {
	p.inMu.Lock()
	if len(p.inQ) >= peerQueue {
		p.inMu.Unlock()
		return // full: dropped
	}
	p.inQ = append(p.inQ, datagram{b: append([]byte(nil), b...), from: from})
	unpaid := p.unpaid
	p.quiet, p.unpaid = false, 0
	p.inMu.Unlock()
	if unpaid > 0 {
		// pion's reader waits to hand Read the errReleased it got: they
		// count as records, so that sessionConn.Read takes them, and
		// pion's reader goes on to read this datagram.
		p.records.Add(int64(unpaid))
		select {
		case p.recordIn <- struct{}{}:
		default:
		}
	}
	select {
	case p.inReady <- struct{}{}:
	default:
	}
}

// releaseAfter is how long an established session's datagrams may stop
// before pion's reader lets go of its read buffer (see ReadFrom).
const releaseAfter = 500 * time.Millisecond

// errReleased is what ReadFrom returns to pion's reader of a quiet
// established session so that it puts its read buffer back; pion hands it
// to Read, which sessionConn.Read passes over.
var errReleased = errors.New("gateway: quiet session: read buffer released")

// maxReleased is how many errReleased it takes to park pion's reader:
// pion buffers one for Read, then waits to hand on the next. While Read
// takes them (a record counted earlier had yielded nothing), ReadFrom
// returns more.
const maxReleased = 2

// take takes the oldest datagram queued, or says that pion's reader
// should let go of its buffer: the session has been quiet for
// releaseAfter and fewer than maxReleased errReleased are waiting.
func (p *peerConn) take() (d datagram, ok, release bool) {
	p.inMu.Lock()
	defer p.inMu.Unlock()
	if len(p.inQ) == 0 && p.quiet && p.out < maxReleased && !p.holdBuffer.Load() {
		p.out++
		p.unpaid++
		return datagram{}, false, true
	}
	d, ok = p.popLocked()
	return d, ok, false
}

// tookReleased notes that Read took an errReleased. pion hands them on in
// order, and deliver counts all those out at once, so the one taken was
// not counted in records only when none of those out was. (Read takes one
// before the next datagram when a record counted earlier yielded nothing:
// a handshake record, or a datagram pion discarded.) A miscount would only
// ever be too many records, which makes one Read wait inside pion.
func (p *peerConn) tookReleased() {
	p.inMu.Lock()
	if p.unpaid > 0 && p.unpaid == p.out {
		p.unpaid--
		// No datagram has come since: what Read had before it has been
		// taken, and a count left in records is one that yielded nothing
		// (datagrams pion discards count too). Dropped here, so that the
		// next ones do not make Read and pion trade errReleased.
		p.records.Store(0)
	}
	if p.out > 0 {
		p.out--
	}
	p.inMu.Unlock()
}

// setQuiet marks the session quiet if nothing came in meanwhile, and
// says whether it did.
func (p *peerConn) setQuiet() bool {
	p.inMu.Lock()
	defer p.inMu.Unlock()
	p.quiet = len(p.inQ) == 0
	return p.quiet
}

// releasable says whether a quiet session's reader may let go of its
// buffer: once its handshake has returned, for pion passes a read error
// to Read only then. Records are counted by then (waitRecord): from the
// peer's verified Finished on, or from the resumption.
func (p *peerConn) releasable() bool {
	return p.handshook.Load()
}

// keptQueue is the largest array an empty queue keeps.
const keptQueue = 4

// pop takes the oldest datagram queued for the session.
func (p *peerConn) pop() (datagram, bool) {
	p.inMu.Lock()
	defer p.inMu.Unlock()
	return p.popLocked()
}

// popLocked is pop with inMu held.
func (p *peerConn) popLocked() (datagram, bool) {
	n := len(p.inQ)
	if n == 0 {
		return datagram{}, false
	}
	d := p.inQ[0]
	copy(p.inQ, p.inQ[1:])
	p.inQ[n-1] = datagram{}
	p.inQ = p.inQ[:n-1]
	if n == 1 && cap(p.inQ) > keptQueue {
		p.inQ = nil
	}
	return d, true
}

// queued is the number of datagrams queued for the session.
func (p *peerConn) queued() int {
	p.inMu.Lock()
	defer p.inMu.Unlock()
	return len(p.inQ)
}

func (p *peerConn) isClosed() bool {
	select {
	case <-p.closed:
		return true
	default:
		return false
	}
}

// wait waits for a datagram, the end of the packet flow or the read
// deadline, and marks the session quiet when it has waited releaseAfter.
// Its timer runs only while the session is not quiet yet and may still
// let go of its buffer; pion may read again before its handshake has
// returned (releasable), so it runs then too, and is checked when it
// fires.
func (p *peerConn) wait() error {
	var quiet <-chan time.Time
	if p.mayQuiet() {
		if p.quietTimer == nil {
			p.quietTimer = time.NewTimer(releaseAfter)
		} else {
			p.quietTimer.Reset(releaseAfter)
		}
		t := p.quietTimer
		defer t.Stop()
		quiet = t.C
	}
	p.waiting.Store(true)
	defer p.waiting.Store(false)
	select {
	case <-p.inReady:
	case <-quiet:
		if p.releasable() && p.setQuiet() {
			p.quietTimer = nil // a quiet session keeps no timer
		}
	case <-p.closed:
		return net.ErrClosed
	case <-p.rd.wait():
		return os.ErrDeadlineExceeded
	}
	return nil
}

// mayQuiet says whether the session may yet become quiet.
func (p *peerConn) mayQuiet() bool {
	if p.holdBuffer.Load() {
		return false
	}
	p.inMu.Lock()
	defer p.inMu.Unlock()
	return !p.quiet
}

// ReadFrom is pion's read of the session's next datagram, with a read
// buffer of its own (8 KiB) that it holds while it waits here. Once an
// established session has been quiet for releaseAfter, ReadFrom returns
// errReleased instead, which pion passes on to Read, putting the buffer
// back; after maxReleased of them pion's reader waits for Read to take
// them, holding no buffer and no watcher goroutine (pion's netctx starts
// one for every read). The session's next datagram counts them as records
// (deliver), so that sessionConn.Read takes them and pion reads on.
func (p *peerConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		if p.isClosed() {
			return 0, nil, net.ErrClosed
		}
		d, ok, release := p.take()
		if release {
			return 0, nil, errReleased
		}
		if !ok {
			if err := p.wait(); err != nil {
				return 0, nil, err
			}
			continue
		}
		p.touch()
		if p.counting.Load() {
			p.records.Add(int64(countRecords(d.b)))
			select {
			case p.recordIn <- struct{}{}:
			default:
			}
		}
		var from net.Addr = p.raddr
		if d.from != p.addr {
			from = net.UDPAddrFromAddrPort(d.from)
		}
		return copy(b, d.b), from, nil
	}
}

func (p *peerConn) WriteTo(b []byte, to net.Addr) (int, error) {
	if p.isClosed() {
		return 0, net.ErrClosed
	}
	if p.frozen.Load() {
		return len(b), nil // the record's sequence number is in the taken state
	}
	if p.inspect.Load() {
		p.l.outgoing(p, b)
	}
	if ua, ok := to.(*net.UDPAddr); ok && ua != p.raddr && !p.moved.Load() {
		// pion writes to a new address only when a record with the
		// session's connection ID came from there (RFC 9146 §6).
		if ap := ua.AddrPort(); netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) != p.addr {
			p.moved.Store(true)
			p.l.mu.Lock()
			p.l.moved(p)
			p.l.mu.Unlock()
		}
	}
	return p.l.udp.WriteTo(b, to)
}

// waitRecord waits until pion has read a record that may give the
// session's DTLS connection something to return from Read (application
// data, or an alert or error it passes on), or until the packet flow ends;
// it returns at once for a session whose records are not counted yet, and
// as soon as stop is set (its Read then waits inside pion: a deadline was
// set, which pion keeps).
// Records are counted from the verification of the peer's Finished on,
// before which the peer cannot send application data; every record
// counts, so the count is never below what pion's Read will return, and a
// record that yields nothing (a retransmitted handshake message, one that
// fails its check) only makes one Read wait inside pion, as all did
// before.
//
// It lets sessionConn.Read take its read buffer only when a datagram is
// there: an idle session holds none.
func (p *peerConn) waitRecord(stop *atomic.Bool) {
	if !p.counting.Load() {
		return
	}
	for !stop.Load() {
		if n := p.records.Load(); n > 0 {
			if p.records.CompareAndSwap(n, n-1) {
				return
			}
			continue
		}
		select {
		case <-p.recordIn:
		case <-p.closed:
			return
		}
	}
}

// countRecords counts the DTLS records of a datagram: those whose
// headers it holds, and one for what follows the last of them.
func countRecords(b []byte) int {
	n := 0
	for len(b) >= recordHeaderLength {
		n++
		l := recordHeaderLength + (int(b[11])<<8 | int(b[12]))
		if b[0] == recordCID {
			if len(b) < recordHeaderLength+cidLength {
				return n
			}
			l = recordHeaderLength + cidLength + (int(b[11+cidLength])<<8 | int(b[12+cidLength]))
		}
		if l > len(b) {
			return n
		}
		b = b[l:]
	}
	if len(b) > 0 || n == 0 {
		n++
	}
	return n
}

// Close ends the session's packet flow: reads return net.ErrClosed and
// writes are not sent.
func (p *peerConn) Close() error {
	p.closeOnce.Do(func() {
		close(p.closed)
		p.l.remove(p)
	})
	return nil
}

// closeLocked is Close with p.l.mu held.
func (p *peerConn) closeLocked() {
	p.closeOnce.Do(func() {
		close(p.closed)
		p.l.removeLocked(p)
	})
}

// replace ends an established session that a new handshake from its
// address replaces: it tells the session's owner, then ends the packet
// flow, so that the DTLS connection fails to read and is closed without
// a close_notify (which would reach the new peer).
func (p *peerConn) replace() {
	p.replaced.Store(true)
	if f := p.onReplace.Swap(nil); f != nil {
		(*f)()
	}
	p.Close()
}

// setOnReplace registers what to do when the session is replaced, before
// its packet flow ends; at once if it already is. f must not do I/O on
// the session.
func (p *peerConn) setOnReplace(f func()) {
	p.onReplace.Store(&f)
	if p.replaced.Load() {
		if f := p.onReplace.Swap(nil); f != nil {
			(*f)()
		}
	}
}

func (p *peerConn) LocalAddr() net.Addr { return p.l.udp.LocalAddr() }

func (p *peerConn) SetDeadline(t time.Time) error { return p.SetReadDeadline(t) }

func (p *peerConn) SetReadDeadline(t time.Time) error {
	p.rd.set(t)
	return nil
}

// SetWriteDeadline does nothing: writes to a UDP socket do not wait.
func (p *peerConn) SetWriteDeadline(time.Time) error { return nil }

// dtlsConn is a DTLS session of a DTLSListener.
type dtlsConn struct {
	*piondtls.Conn
	peer *peerConn
	// establish, if set, takes a session slot for the session or refuses
	// it. It runs when the peer's Finished has been verified, before the
	// gateway's Finished is sent, so that a refusal fails the handshake
	// and a thing whose handshake succeeded is counted.
	establish func(peer string) error
	refused   atomic.Bool // establish refused the session
	// A resumed session's: where it was parked (resumedIdle or
	// resumedFile), the gateway's state of it, and its remote address.
	resumed  string
	restored *connState
	addr     net.Addr
}

// RemoteAddr is the peer's address; a resumed session's is marked so.
func (c *dtlsConn) RemoteAddr() net.Addr {
	if c.addr != nil {
		return c.addr
	}
	return c.Conn.RemoteAddr()
}

// verify is pion's VerifyConnection callback.
func (c *dtlsConn) verify(*piondtls.State) error {
	c.peer.l.handshakeDone(c.peer)
	c.peer.counting.Store(true) // the peer sends application data only after our Finished
	if c.establish == nil {
		return nil
	}
	err := c.establish(c.peer.addr.String())
	c.refused.Store(err != nil)
	return err
}

// HandshakeContext runs the DTLS handshake and marks the session
// established, so that a new ClientHello from its address replaces it.
func (c *dtlsConn) HandshakeContext(ctx context.Context) error {
	if err := c.Conn.HandshakeContext(ctx); err != nil {
		if !c.refused.Load() { // a refusal is counted as such
			c.peer.l.s.Metrics.handshake("failed")
		}
		return err
	}
	c.peer.established.Store(true)
	c.peer.handshook.Store(true)
	return nil
}

// deadline is a read deadline that wakes a waiting reader (as
// net.Pipe's).
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

func makeDeadline() deadline { return deadline{cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait until it has closed cancel
	}
	d.timer = nil
	closed := isClosedChan(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosedChan(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// isEpoch0 reports whether the first record of a datagram is
// unencrypted (epoch 0): a handshake message, ChangeCipherSpec or alert of
// a handshake in progress.
func isEpoch0(b []byte) bool {
	return len(b) >= recordHeaderLength && b[0] != recordCID && b[3] == 0 && b[4] == 0
}

// isClientHello reports whether a datagram starts with a ClientHello in
// epoch 0.
func isClientHello(b []byte) bool {
	_, ok := handshakeMessage(b, typeClientHello)
	return ok
}

// handshakeMessage returns the body of the handshake message of type t
// that starts the datagram's first record, if it is unencrypted and
// unfragmented enough to hold the message header.
func handshakeMessage(b []byte, t byte) ([]byte, bool) {
	if !isEpoch0(b) || b[0] != recordHandshake || len(b) < recordHeaderLength+handshakeHeaderLen || b[recordHeaderLength] != t {
		return nil, false
	}
	rec := b[recordHeaderLength:]
	if n := int(b[11])<<8 | int(b[12]); n < len(rec) {
		rec = rec[:n]
	}
	if len(rec) < handshakeHeaderLen {
		return nil, false
	}
	n := int(rec[9])<<16 | int(rec[10])<<8 | int(rec[11]) // fragment length
	body := rec[handshakeHeaderLen:]
	if n < len(body) {
		body = body[:n]
	}
	return body, true
}

// recordConnectionID returns the connection ID of the first record of
// the datagram that carries one (content type tls12_cid, RFC 9146).
func recordConnectionID(b []byte) ([]byte, bool) {
	for len(b) >= recordHeaderLength {
		if b[0] == recordCID {
			if len(b) < recordHeaderLength+cidLength {
				return nil, false
			}
			return b[11 : 11+cidLength], true
		}
		n := recordHeaderLength + (int(b[11])<<8 | int(b[12]))
		if n > len(b) {
			return nil, false
		}
		b = b[n:]
	}
	return nil, false
}
