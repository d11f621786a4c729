package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"

	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/internal/proctest"
)

// transcript is a real DTLS exchange with the gateway's listener,
// datagram by datagram: a thing's handshake (the thing sends the
// gateway's connection ID, RFC 9146), one application record each way and
// the thing's close_notify.
type dtlsTranscript struct {
	toGateway   [][]byte // as the thing sent them
	fromGateway [][]byte // as the thing received them
	cid         []byte   // the connection ID the gateway handed out
}

// first returns the first datagram of ds for which ok holds.
func firstDatagram(tb testing.TB, ds [][]byte, what string, ok func([]byte) bool) []byte {
	tb.Helper()
	for _, d := range ds {
		if ok(d) {
			return d
		}
	}
	tb.Fatalf("the transcript has no %s", what)
	return nil
}

// clientHellos returns the thing's ClientHello without and with the
// cookie of the HelloVerifyRequest.
func (tr *dtlsTranscript) clientHellos(tb testing.TB) (plain, withCookie []byte) {
	tb.Helper()
	var hellos [][]byte
	for _, d := range tr.toGateway {
		if isClientHello(d) && (len(hellos) == 0 || !bytes.Equal(d, hellos[len(hellos)-1])) {
			hellos = append(hellos, d)
		}
	}
	if len(hellos) < 2 {
		tb.Fatalf("%d ClientHellos in the transcript, want 2", len(hellos))
	}
	return hellos[0], hellos[1]
}

// serverHello returns the gateway's datagram that starts with its
// ServerHello (which carries the connection ID).
func (tr *dtlsTranscript) serverHello(tb testing.TB) []byte {
	return firstDatagram(tb, tr.fromGateway, "ServerHello", func(d []byte) bool {
		_, ok := handshakeMessage(d, typeServerHello)
		return ok
	})
}

// cidRecord returns a datagram of the thing that carries the gateway's
// connection ID.
func (tr *dtlsTranscript) cidRecord(tb testing.TB) []byte {
	return firstDatagram(tb, tr.toGateway, "record with the connection ID", func(d []byte) bool {
		cid, ok := recordConnectionID(d)
		return ok && bytes.Equal(cid, tr.cid)
	})
}

// recordingConn is a thing's UDP socket that keeps every datagram.
type recordingConn struct {
	net.PacketConn
	mu      sync.Mutex
	out, in [][]byte
}

func (c *recordingConn) WriteTo(b []byte, to net.Addr) (int, error) {
	c.mu.Lock()
	c.out = append(c.out, append([]byte(nil), b...))
	c.mu.Unlock()
	return c.PacketConn.WriteTo(b, to)
}

func (c *recordingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.PacketConn.ReadFrom(b)
	if err == nil {
		c.mu.Lock()
		c.in = append(c.in, append([]byte(nil), b[:n]...))
		c.mu.Unlock()
	}
	return n, from, err
}

// fuzzListenerServer is a Server with the fields the listener reads.
func fuzzListenerServer(maxSessions, maxPending int) *Server {
	return &Server{MaxSessions: maxSessions, MaxPendingHandshakes: maxPending, log: slog.New(slog.DiscardHandler)}
}

// listenLoopback binds a DTLS listener with the gateway's settings
// (those of Server.Listen) on a loopback port.
func listenLoopback(tb testing.TB, s *Server) *DTLSListener {
	tb.Helper()
	cert, err := coapx.SelfSignedCertificate(nil, "fuzz-gateway")
	if err != nil {
		tb.Fatal(err)
	}
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	opts := coapx.ServerOptions(cert, piondtls.WithConnectionIDGenerator(piondtls.RandomCIDGenerator(cidLength)))
	return newDTLSListener(s, udp, opts)
}

// thingOptions are the DTLS settings of a thing that sends the gateway's
// connection ID.
func thingOptions(tb testing.TB) []piondtls.ClientOption {
	tb.Helper()
	cert, err := coapx.SelfSignedCertificate(nil, "fuzz-thing")
	if err != nil {
		tb.Fatal(err)
	}
	opts, err := coapx.ClientOptions(cert, coapx.Trust{InsecureAnyGateway: true})
	if err != nil {
		tb.Fatal(err)
	}
	return append(opts, piondtls.WithConnectionIDGenerator(piondtls.OnlySendCIDGenerator()))
}

// recordTranscript runs a thing's handshake with a listener on loopback
// and records the datagrams.
func recordTranscript(tb testing.TB) *dtlsTranscript {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := listenLoopback(tb, fuzzListenerServer(0, 0))
	defer l.Close()
	served := make(chan error, 1)
	go func() {
		c, err := l.AcceptWithContext(ctx)
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		d := c.(*dtlsConn)
		if err := d.HandshakeContext(ctx); err != nil {
			served <- err
			return
		}
		buf := make([]byte, 1500)
		n, err := d.Read(buf)
		if err == nil {
			_, err = d.Write(buf[:n])
		}
		served <- err
		// Keep the session until the thing has closed it.
		d.SetReadDeadline(time.Now().Add(5 * time.Second))
		d.Read(buf)
	}()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	defer pc.Close()
	rec := &recordingConn{PacketConn: pc}
	dc, err := piondtls.ClientWithOptions(rec, l.Addr(), thingOptions(tb)...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := dc.HandshakeContext(ctx); err != nil {
		tb.Fatalf("handshake: %v", err)
	}
	if _, err := dc.Write([]byte("ping")); err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 1500)
	dc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := dc.Read(buf); err != nil || string(buf[:n]) != "ping" {
		tb.Fatalf("echo: %q, %v", buf[:n], err)
	}
	if err := <-served; err != nil {
		tb.Fatalf("gateway side: %v", err)
	}
	tr := &dtlsTranscript{}
	l.mu.Lock()
	for cid := range l.cids {
		tr.cid = []byte(cid)
	}
	l.mu.Unlock()
	dc.Close()
	rec.mu.Lock()
	tr.toGateway, tr.fromGateway = rec.out, rec.in
	rec.mu.Unlock()
	if len(tr.cid) != cidLength {
		tb.Fatalf("the gateway handed out connection ID %x", tr.cid)
	}
	return tr
}

// pionFirstCID is the connection ID of the first tls12_cid record of a
// datagram as pion splits it into records (ContentAwareUnpackDatagram),
// when pion can split it.
func pionFirstCID(b []byte) (cid []byte, found, split bool) {
	recs, err := recordlayer.ContentAwareUnpackDatagram(b, cidLength)
	if err != nil || len(recs) == 0 {
		return nil, false, false
	}
	for _, r := range recs {
		if r[0] == recordCID {
			return r[11 : 11+cidLength], true, true
		}
	}
	return nil, false, true
}

// within reports whether sub is a subslice of b.
func isSubslice(sub, b []byte) bool {
	if len(sub) == 0 {
		return true
	}
	start := cap(b) - cap(sub)
	return start >= 0 && start+len(sub) <= len(b) && &b[start] == &sub[0]
}

// FuzzRecordInspection feeds arbitrary datagrams to the functions the
// listener reads records with, before any session sees them:
// recordConnectionID, isEpoch0, isClientHello and handshakeMessage. Each
// result is a view of the datagram at the offset RFC 6347 and RFC 9146 put
// it: the connection ID is that of the first tls12_cid record of the
// datagram as pion splits it (when pion can), a ClientHello is an epoch-0
// handshake record whose first message is one, and a handshake body lies
// within its record and its fragment.
func FuzzRecordInspection(f *testing.F) {
	tr := recordTranscript(f)
	for _, d := range append(append([][]byte(nil), tr.toGateway...), tr.fromGateway...) {
		f.Add(d)
	}
	// Two records in one datagram: an epoch-0 record, then a CID record.
	ch, _ := tr.clientHellos(f)
	f.Add(append(append([]byte(nil), ch...), tr.cidRecord(f)...))
	f.Add(tr.cidRecord(f)[:recordHeaderLength+cidLength-1]) // truncated CID header
	f.Add([]byte{recordHandshake, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0c, typeClientHello, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff})

	if cid, ok := recordConnectionID(tr.cidRecord(f)); !ok || !bytes.Equal(cid, tr.cid) {
		f.Fatalf("the thing's record has connection ID %x, want %x", cid, tr.cid)
	}
	if _, ok := recordConnectionID(ch); ok || !isEpoch0(ch) || !isClientHello(ch) {
		f.Fatal("the ClientHello is not an epoch-0 record without connection ID")
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		orig := append([]byte(nil), b...)
		cid, ok := recordConnectionID(b)
		if ok {
			if len(cid) != cidLength || !isSubslice(cid, b) {
				t.Fatalf("connection ID %x is not %d bytes of the datagram", cid, cidLength)
			}
			// A CID record's header holds the CID at offset 11.
			at := cap(b) - cap(cid) - 11
			if at < 0 || b[at] != recordCID {
				t.Fatalf("connection ID at %d is not in a tls12_cid record header", at+11)
			}
		}
		if want, found, split := pionFirstCID(b); split && (found != ok || !bytes.Equal(want, cid)) {
			t.Fatalf("connection ID %x (%v); pion's split gives %x (%v)", cid, ok, want, found)
		}

		epoch0 := isEpoch0(b)
		if epoch0 && (len(b) < recordHeaderLength || b[0] == recordCID || b[3] != 0 || b[4] != 0) {
			t.Fatal("isEpoch0 accepted a record that is not in epoch 0")
		}
		hello := isClientHello(b)
		if hello && (!epoch0 || b[0] != recordHandshake || b[recordHeaderLength] != typeClientHello) {
			t.Fatal("isClientHello accepted a record that is not an epoch-0 ClientHello")
		}
		for _, typ := range []byte{typeClientHello, typeServerHello} {
			body, ok := handshakeMessage(b, typ)
			if !ok {
				continue
			}
			recLen := int(binary.BigEndian.Uint16(b[11:13]))
			fragLen := int(b[recordHeaderLength+9])<<16 | int(b[recordHeaderLength+10])<<8 | int(b[recordHeaderLength+11])
			start := recordHeaderLength + handshakeHeaderLen
			if !isSubslice(body, b) || (len(body) > 0 && &body[0] != &b[start]) {
				t.Fatalf("handshake body is not the datagram after the headers")
			}
			if len(body) > fragLen || len(body) > recLen-handshakeHeaderLen {
				t.Fatalf("handshake body of %d bytes; record %d, fragment %d", len(body), recLen, fragLen)
			}
			if typ == typeClientHello && !hello {
				t.Fatal("handshakeMessage found a ClientHello that isClientHello missed")
			}
		}
		if !bytes.Equal(b, orig) {
			t.Fatal("the inspection changed the datagram")
		}
	})
}

// Ops of FuzzRoute and FuzzDTLSListener: a datagram stream of frames, each
// a kind byte, a big-endian 16-bit length and that many bytes. The kind's
// low two bits say what happens, its next bits which address or peer.
const (
	opIn        = iota // a datagram arrives from address kind>>2
	opOut              // the gateway sends a datagram on peer kind>>2
	opEstablish        // the handshake of peer kind>>2 completes
	opClose            // peer kind>>2 closes; with bit 7, its peer moves to another address
)

// maxFrames bounds the frames of one input.
const maxFrames = 64

type frame struct {
	kind byte
	data []byte
}

func parseFrames(b []byte) []frame {
	var fs []frame
	for len(b) >= 3 && len(fs) < maxFrames {
		n := int(b[1])<<8 | int(b[2])
		kind := b[0]
		b = b[3:]
		n = min(n, len(b))
		fs = append(fs, frame{kind, b[:n]})
		b = b[n:]
	}
	return fs
}

func encodeFrames(fs ...frame) []byte {
	var b []byte
	for _, f := range fs {
		b = append(b, f.kind, byte(len(f.data)>>8), byte(len(f.data)))
		b = append(b, f.data...)
	}
	return b
}

func frameIn(addr int, d []byte) frame  { return frame{byte(addr<<2 | opIn), d} }
func frameOut(peer int, d []byte) frame { return frame{byte(peer<<2 | opOut), d} }
func frameEstablish(peer int) frame     { return frame{byte(peer<<2 | opEstablish), nil} }
func frameClose(peer int) frame         { return frame{byte(peer<<2 | opClose), nil} }
func frameMove(peer int) frame          { return frame{byte(0x80 | peer<<2 | opClose), nil} }
func frameAddr(k byte, n int) int       { return int(k>>2) % n }
func framePeer(k byte, n int) int       { return int(k>>2&0x1f) % n }
func frameMoves(k byte) bool            { return k&0x80 != 0 }
func opOf(k byte) byte                  { return k & 3 }

// The addresses datagrams come from in FuzzRoute.
var routeAddrs = []netip.AddrPort{
	netip.MustParseAddrPort("192.0.2.1:5683"), netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("[2001:db8::1]:5683"),
}

// simConn stands for the DTLS connection of a peer: closing it ends the
// peer's packet flow, as pion's Conn.Close does.
type simConn struct {
	net.Conn
	p *peerConn
}

func (c simConn) Close() error         { return c.p.Close() }
func (c simConn) RemoteAddr() net.Addr { return c.p.raddr }

// routeSim is a listener without socket, its peers accepted at once with
// the accounting of Server.Serve (sessionListener, sessionConn).
type routeSim struct {
	t     *testing.T
	s     *Server
	l     *DTLSListener
	peers []*peerConn
	conns map[*peerConn]*sessionConn
}

func newRouteSim(t *testing.T, maxSessions, maxPending int) *routeSim {
	s := fuzzListenerServer(maxSessions, maxPending)
	l := &DTLSListener{
		s:        s,
		accept:   make(chan *peerConn, acceptBacklog),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
		peers:    map[netip.AddrPort]*peerConn{},
		cids:     map[string]*peerConn{},
	}
	return &routeSim{t: t, s: s, l: l, conns: map[*peerConn]*sessionConn{}}
}

// acceptAll takes the new peers from the backlog as Serve would.
func (r *routeSim) acceptAll() []*peerConn {
	var fresh []*peerConn
	for {
		select {
		case p := <-r.l.accept:
			r.s.pending.Add(1) // sessionListener.AcceptWithContext
			r.conns[p] = &sessionConn{Conn: simConn{p: p}, s: r.s}
			r.peers = append(r.peers, p)
			fresh = append(fresh, p)
		default:
			return fresh
		}
	}
}

// incoming dispatches d from addr and checks where it went.
func (r *routeSim) incoming(from netip.AddrPort, d []byte) {
	t, l := r.t, r.l
	l.mu.Lock()
	cidsBefore := make(map[string]*peerConn, len(l.cids))
	for k, p := range l.cids {
		cidsBefore[k] = p
	}
	atAddr := l.peers[from]
	l.mu.Unlock()
	l.dispatch(from, d)
	fresh := r.acceptAll()
	if len(fresh) > 1 {
		t.Fatalf("one datagram started %d sessions", len(fresh))
	}
	var got []*peerConn
	for _, p := range r.peers {
		for {
			dg, ok := p.pop()
			if !ok {
				break
			}
			if !bytes.Equal(dg.b, d) || dg.from != from {
				t.Fatalf("session got %x from %v, want %x from %v", dg.b, dg.from, d, from)
			}
			got = append(got, p)
		}
	}
	if len(got) > 1 {
		t.Fatalf("one datagram reached %d sessions", len(got))
	}
	cid, hasCID := recordConnectionID(d)
	owner := cidsBefore[string(cid)]
	if hasCID && owner != nil && !owner.isClosed() {
		// A record with one of the gateway's connection IDs reaches the
		// session that handed it out, from wherever it comes.
		if len(got) != 1 || got[0] != owner {
			t.Fatalf("record with connection ID %x from %v did not reach its session", cid, from)
		}
		return
	}
	if len(fresh) == 1 {
		n := fresh[0]
		if !isClientHello(d) {
			t.Fatalf("a datagram that is no ClientHello started a session: %x", d)
		}
		if atAddr != nil && !(atAddr.established.Load() && atAddr.next == n) {
			t.Fatal("a ClientHello started a second handshake from the address of one in progress")
		}
		if n.addr != from {
			t.Fatalf("new session for %v has address %v", from, n.addr)
		}
	}
	if len(got) == 0 {
		return
	}
	p := got[0]
	if p.isClosed() {
		t.Fatal("datagram delivered to a closed session")
	}
	// Without a connection ID of the gateway's, a datagram reaches only
	// a session of its source address: the one there, or the handshake
	// replacing it.
	if p.addr != from || (p != atAddr && (atAddr == nil || p != atAddr.next) && (len(fresh) == 0 || p != fresh[0])) {
		t.Fatalf("datagram from %v reached the session of %v", from, p.addr)
	}
}

// check verifies the listener's maps and the slot accounting.
func (r *routeSim) check() {
	t, l, s := r.t, r.l, r.s
	// A session whose peer closed is torn down, as go-coap does when its
	// reads fail.
	for p, sc := range r.conns {
		if p.isClosed() {
			sc.Close()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for addr, p := range l.peers {
		if p.addr != addr || p.isClosed() {
			t.Fatalf("peers[%v] is the session of %v (closed %v)", addr, p.addr, p.isClosed())
		}
	}
	for cid, p := range l.cids {
		if p.cid != cid || len(cid) != cidLength || p.isClosed() {
			t.Fatalf("cids[%x] is a session with connection ID %x (closed %v)", cid, p.cid, p.isClosed())
		}
	}
	live, pending, established := 0, int64(0), int64(0)
	for _, p := range r.peers {
		if p.next != nil && p.next.prev != p || p.prev != nil && p.prev.next != p {
			t.Fatal("replacement links are not mutual")
		}
		if p.isClosed() {
			if p.next != nil || p.prev != nil {
				t.Fatal("a closed session is still linked")
			}
			continue
		}
		live++
		switch r.conns[p].state.Load() {
		case sessionPending:
			pending++
		case sessionEstablished:
			established++
		}
	}
	if l.open != live {
		t.Fatalf("listener counts %d open sessions, %d are", l.open, live)
	}
	if s.pending.Load() != pending || s.sessions.Load() != established {
		t.Fatalf("slots: %d pending, %d sessions; want %d, %d", s.pending.Load(), s.sessions.Load(), pending, established)
	}
	if pending > s.maxPendingHandshakes() || established > s.maxSessions() {
		t.Fatalf("%d pending handshakes (max %d), %d sessions (max %d)", pending, s.maxPendingHandshakes(), established, s.maxSessions())
	}
}

// FuzzRoute drives the listener's demultiplexer (dispatch, route,
// outgoing, moved, remove) with a stream of datagrams from three
// addresses and of the events of its sessions (the gateway's own
// datagrams, completed handshakes, closes, peers moving), without
// sockets. After every event: a datagram reaches at most one session,
// byte for byte; one with a connection ID of a live session reaches that
// session from any address; any other reaches only a session of its
// source address; only a ClientHello starts a session, and never beside a
// handshake in progress from its address; the address and connection-ID
// maps point at live sessions with that address and ID; and the pending
// and established slots match the sessions and stay within
// MaxPendingHandshakes and MaxSessions.
func FuzzRoute(f *testing.F) {
	tr := recordTranscript(f)
	hello, cookie := tr.clientHellos(f)
	sh, rec := tr.serverHello(f), tr.cidRecord(f)
	flight5 := firstDatagram(f, tr.toGateway, "thing's second flight", func(d []byte) bool { return !isClientHello(d) && isEpoch0(d) })
	// The full handshake, then the thing's NAT rebinding: its records
	// come from another port with the connection ID.
	f.Add(encodeFrames(frameIn(0, hello), frameIn(0, cookie), frameOut(0, sh), frameIn(0, flight5), frameEstablish(0), frameIn(1, rec), frameMove(0), frameIn(0, hello), frameIn(0, rec)))
	// A restarted thing: a new handshake from the address of its
	// established session replaces it once the ServerHello goes out.
	f.Add(encodeFrames(frameIn(0, hello), frameOut(0, sh), frameEstablish(0), frameIn(0, hello), frameIn(0, cookie), frameIn(0, rec), frameOut(1, sh), frameEstablish(1), frameIn(0, rec), frameClose(1), frameIn(0, rec)))
	// Handshakes beyond the caps, from every address.
	f.Add(encodeFrames(frameIn(0, hello), frameIn(1, hello), frameIn(2, hello), frameEstablish(0), frameEstablish(1), frameEstablish(2), frameIn(0, hello), frameIn(1, hello), frameIn(2, hello), frameEstablish(3), frameEstablish(4), frameEstablish(5)))
	// Garbage and records of nobody.
	f.Add(encodeFrames(frameIn(2, rec), frameIn(2, flight5), frameIn(0, []byte{recordCID}), frameOut(0, sh), frameClose(0)))

	f.Fuzz(func(t *testing.T, b []byte) {
		r := newRouteSim(t, 2, 3)
		for _, fr := range parseFrames(b) {
			switch opOf(fr.kind) {
			case opIn:
				r.incoming(routeAddrs[frameAddr(fr.kind, len(routeAddrs))], fr.data)
			case opOut:
				if len(r.peers) == 0 {
					continue
				}
				// peerConn.WriteTo: the gateway's datagrams are looked at
				// until its ServerHello has gone out.
				p := r.peers[framePeer(fr.kind, len(r.peers))]
				if !p.isClosed() && p.inspect.Load() {
					r.l.outgoing(p, fr.data)
				}
			case opEstablish:
				if len(r.peers) == 0 {
					continue
				}
				// sessionConn.HandshakeContext after pion's handshake.
				p := r.peers[framePeer(fr.kind, len(r.peers))]
				sc := r.conns[p]
				if p.isClosed() || sc.state.Load() != sessionPending {
					continue
				}
				if err := sc.establish(p.addr.String()); err != nil {
					if !errors.Is(err, errHandshakeRefused) {
						t.Fatal(err)
					}
					sc.Close()
					continue
				}
				p.established.Store(true)
				p.setOnReplace(sc.replaced)
			case opClose:
				if len(r.peers) == 0 {
					continue
				}
				p := r.peers[framePeer(fr.kind, len(r.peers))]
				if !frameMoves(fr.kind) {
					r.conns[p].Close()
				} else if !p.isClosed() && !p.moved.Load() {
					// peerConn.WriteTo to another address.
					p.moved.Store(true)
					r.l.mu.Lock()
					r.l.moved(p)
					r.l.mu.Unlock()
				}
			}
			r.check()
		}
		// Everything closes: nothing stays counted.
		for _, p := range r.peers {
			r.conns[p].Close()
		}
		r.check()
		if r.l.open != 0 || len(r.l.peers) != 0 || len(r.l.cids) != 0 {
			t.Fatalf("after closing every session: %d open, %d addresses, %d connection IDs", r.l.open, len(r.l.peers), len(r.l.cids))
		}
	})
}

// FuzzDTLSListener sends arbitrary datagrams from three UDP sockets to a
// DTLSListener on loopback whose sessions are served as Server.Serve does
// (pion handshakes under sessionListener's accounting). Whatever they
// hold, the listener sorts each one (it never stops reading), the
// sessions it opens stay within MaxPendingHandshakes and MaxSessions,
// closing them frees every slot, and a real thing's ClientHello is then
// still answered with a HelloVerifyRequest.
func FuzzDTLSListener(f *testing.F) {
	tr := recordTranscript(f)
	hello, cookie := tr.clientHellos(f)
	rec := tr.cidRecord(f)
	f.Add(encodeFrames(frameIn(0, hello), frameIn(0, cookie), frameIn(1, rec), frameIn(0, rec)))
	f.Add(encodeFrames(frameIn(0, hello), frameIn(1, hello), frameIn(2, hello), frameIn(0, hello), frameIn(1, cookie), frameIn(2, rec)))
	for _, d := range tr.toGateway {
		f.Add(encodeFrames(frameIn(2, d)))
	}
	f.Add(encodeFrames(frameIn(0, make([]byte, maxDatagram+1)), frameIn(1, nil), frameIn(2, []byte{recordHandshake})))

	const maxPending, maxSessions = 3, 2
	s := fuzzListenerServer(maxSessions, maxPending)
	l := listenLoopback(f, s)
	defer l.Close()
	sl := &sessionListener{Listener: l, s: s}
	lt := l.ForTest()

	// Serve's accept loop: every session runs its handshake until the
	// input's end closes it.
	var mu sync.Mutex
	conns := map[net.Conn]context.CancelFunc{}
	acceptCtx, stopAccept := context.WithCancel(context.Background())
	defer stopAccept()
	go func() {
		for {
			c, err := sl.AcceptWithContext(acceptCtx)
			if err != nil {
				if acceptCtx.Err() != nil {
					return
				}
				continue
			}
			ctx, cancel := context.WithTimeout(acceptCtx, 10*time.Second)
			mu.Lock()
			conns[c] = cancel
			mu.Unlock()
			go func() {
				c.(*sessionConn).HandshakeContext(ctx)
				<-ctx.Done()
			}()
		}
	}()
	closeAll := func(t testing.TB) {
		t.Helper()
		if !proctest.Eventually(10*time.Second, func() bool {
			mu.Lock()
			for c, cancel := range conns {
				cancel()
				c.Close()
				delete(conns, c)
			}
			mu.Unlock()
			return lt.Peers() == 0 && s.pending.Load() == 0 && s.sessions.Load() == 0
		}) {
			t.Fatalf("after closing the sessions: %d peers, %d pending, %d sessions", lt.Peers(), s.pending.Load(), s.sessions.Load())
		}
	}

	var socks []*net.UDPConn
	for range 4 {
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			f.Fatal(err)
		}
		defer pc.Close()
		socks = append(socks, pc)
	}
	// The gateway's answers to the fuzzed peers are read and dropped.
	for _, pc := range socks[:3] {
		go func() {
			buf := make([]byte, 65536)
			for {
				if _, _, err := pc.ReadFrom(buf); errors.Is(err, net.ErrClosed) {
					return
				}
			}
		}()
	}
	probe := socks[3]
	to := l.Addr().(*net.UDPAddr)

	f.Fuzz(func(t *testing.T, b []byte) {
		for _, fr := range parseFrames(b) {
			if opOf(fr.kind) != opIn || len(fr.data) > 8<<10+1 {
				continue
			}
			sorted := lt.Datagrams()
			if _, err := socks[frameAddr(fr.kind, 3)].WriteTo(fr.data, to); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for lt.Datagrams() == sorted {
				if time.Now().After(deadline) {
					t.Fatal("the listener stopped reading datagrams")
				}
				runtime.Gosched() // the read loop is about to sort it
			}
			// The handshake cap is the listener's own count: a handshake
			// evicted at the cap frees its slot at once, while its session
			// leaves s.pending only when its DTLS connection has noticed.
			if lt.Peers() > maxPending+maxSessions || lt.Handshaking() > maxPending || s.sessions.Load() > maxSessions {
				t.Fatalf("%d peers, %d handshakes under way, %d sessions", lt.Peers(), lt.Handshaking(), s.sessions.Load())
			}
		}
		closeAll(t)
		// A thing can still start a handshake.
		if _, err := probe.WriteTo(hello, to); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		probe.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			n, _, err := probe.ReadFrom(buf)
			if err != nil {
				t.Fatalf("no HelloVerifyRequest for a real ClientHello: %v", err)
			}
			const helloVerifyRequest = 3
			if n > recordHeaderLength && buf[0] == recordHandshake && buf[recordHeaderLength] == helloVerifyRequest {
				break
			}
		}
		closeAll(t)
	})
}
