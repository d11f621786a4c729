package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/thing"
)

// park moves the clock past ParkAfter and waits until the gateway's only
// session is parked: no peer connection open any more.
func park(t *testing.T, g *gw, c *clock) {
	t.Helper()
	parked := g.s.ForTest().Parked()
	c.advance(gateway.DefaultParkAfter + time.Second)
	g.s.ForTest().CheckExpiry()
	waitFor(t, 10*time.Second, func() bool { return g.s.ForTest().Parked() == parked+1 && g.l.ForTest().Peers() == 0 })
}

// A session idle for ParkAfter is parked: its goroutines end, it keeps
// its slot, and the thing's next request resumes it without a handshake,
// as often as it goes idle; a parked session idle for IdleTimeout ends.
func TestParkedSessionResumes(t *testing.T) {
	e := newEnv(t)
	var c clock
	g := e.gateway(func(s *gateway.Server) { s.Time = c.now })
	rc := dialRaw(t, g.addr)
	if resp := rc.exchange(aminfoGET); resp.Code != codes.Content {
		t.Fatalf("/aminfo = %v", resp.Code)
	}
	lf, sf := g.l.ForTest(), g.s.ForTest()
	live := runtime.NumGoroutine()
	park(t, g, &c)
	// pion's handshake and read loops and go-coap's session loop, at least.
	waitFor(t, 10*time.Second, func() bool { return runtime.NumGoroutine() <= live-3 })
	if n := sf.Sessions(); n != 1 {
		t.Errorf("sessions while parked = %d, want 1 (a parked session keeps its slot)", n)
	}
	for i := 1; i <= 2; i++ {
		if resp := rc.exchange(aminfoGET); resp.Code != codes.Content {
			t.Fatalf("/aminfo after parking %d = %v", i, resp.Code)
		}
		if h, r, p := lf.Handshakes(), lf.Resumptions(), sf.Parked(); h != 1 || r != int64(i) || p != 0 {
			t.Fatalf("after parking %d: handshakes %d, resumptions %d, parked %d; want 1, %d, 0", i, h, r, p, i)
		}
		if i == 1 {
			park(t, g, &c)
		}
	}
	park(t, g, &c)
	c.advance(gateway.DefaultIdleTimeout)
	sf.CheckExpiry()
	waitFor(t, 10*time.Second, func() bool { return sf.Sessions() == 0 && sf.Parked() == 0 })
}

// The thing SDK does not notice that its session was parked: its next
// request is answered without a new handshake.
func TestParkedSessionThingSDK(t *testing.T) {
	e := newEnv(t)
	var c clock
	g := e.gateway(func(s *gateway.Server) { s.Time = c.now })
	th := sdkThing(t, e, g.addr, "parked-thing")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	park(t, g, &c)
	if _, err := th.AccessToken(ctx, "publish"); err != nil {
		t.Fatalf("access token after parking: %v", err)
	}
	if h, r := g.l.ForTest().Handshakes(), g.l.ForTest().Resumptions(); h != 1 || r != 1 {
		t.Errorf("handshakes %d, resumptions %d; want 1, 1", h, r)
	}
}

// A ClientHello from the address of a parked session (the thing
// restarted) starts a new session, which replaces the parked one once
// the peer has answered the cookie exchange.
func TestParkedSessionReplaced(t *testing.T) {
	e := newEnv(t)
	var c clock
	g := e.gateway(func(s *gateway.Server) { s.Time = c.now })
	pc := listenUDP(t, "127.0.0.1:0")
	rc := rawOver(t, pc, g.addr)
	rc.exchange(aminfoGET)
	park(t, g, &c)
	// The thing dies without a word and starts again on the same port.
	local := pc.LocalAddr().String()
	pc.Close()
	rc2 := rawOver(t, listenUDP(t, local), g.addr)
	if resp := rc2.exchange(aminfoGET); resp.Code != codes.Content {
		t.Fatalf("/aminfo on the new session = %v", resp.Code)
	}
	waitFor(t, 10*time.Second, func() bool { return g.s.ForTest().Parked() == 0 && g.s.ForTest().Sessions() == 1 })
	if !g.logs.contains("DTLS session replaced by a new handshake from its address", "parked", "true") {
		t.Error("no log line of the parked session's replacement")
	}
}

// rawOver is dialRaw over the socket pc.
func rawOver(t *testing.T, pc net.PacketConn, addr string) *rawConn {
	t.Helper()
	c, err := handshakeOver(t, pc, addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &rawConn{t: t, c: c, mid: 1}
}

// sdkThing connects a thing (identity id, made in AM) with the thing SDK
// and gets an access token.
func sdkThing(t *testing.T, e *env, addr, id string) *thing.Thing {
	t.Helper()
	key := newKey(t)
	e.admin.Identity(id, "device", key, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := thing.DialGateway(ctx, thing.GatewayConfig{Address: addr, Trust: coapx.Trust{InsecureAnyGateway: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	th, err := thing.New(ctx, thing.Config{Connector: conn, ID: id, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := th.AccessToken(ctx, "publish"); err != nil {
		t.Fatal(err)
	}
	return th
}

// restartable makes gateways with one identity and one session file.
type restartable struct {
	e    *env
	id   string
	key  *ecdsa.PrivateKey
	file string
	skey []byte
}

func newRestartable(t *testing.T, e *env) *restartable {
	t.Helper()
	k := newKey(t)
	r := &restartable{e: e, id: "restart-gateway", key: k, file: filepath.Join(t.TempDir(), "sessions"), skey: make([]byte, 32)}
	rand.Read(r.skey)
	e.admin.Identity(r.id, "gateway", k, nil)
	return r
}

// start starts a gateway on address with the session file.
func (r *restartable) start(t *testing.T, address string, configure ...func(*gateway.Server)) *gw {
	t.Helper()
	logs := newLogSink()
	s := &gateway.Server{
		AM:          &amclient.Client{URL: r.e.url, Realm: "/", Tree: "auth-tree"},
		ID:          r.id,
		Key:         r.key,
		Logger:      slog.New(logs),
		SessionFile: r.file,
		SessionKey:  r.skey,
	}
	for _, f := range configure {
		f(s)
	}
	return startGatewayAt(t, s, logs, address)
}

// stop shuts a gateway down, which saves its sessions.
func stop(t *testing.T, g *gw) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-g.errc:
		if !errors.Is(err, gateway.ErrServerClosed) {
			t.Fatalf("Serve = %v", err)
		}
		g.errc <- err // for the cleanup's check
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
}

// After a graceful restart with the session file, the same thing's next
// requests are answered by the new gateway without a handshake, over the
// SDK and over a raw session alike.
func TestGracefulRestart(t *testing.T) {
	e := newEnv(t)
	r := newRestartable(t, e)
	a := r.start(t, "127.0.0.1:0")
	th := sdkThing(t, e, a.addr, "restart-thing")
	rc := dialRaw(t, a.addr)
	rc.exchange(aminfoGET)
	stop(t, a)
	fi, err := os.Stat(r.file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("session file mode %v, want 0600", fi.Mode().Perm())
	}
	if !a.logs.contains("DTLS sessions saved", "sessions", "2") {
		t.Errorf("no log line of 2 sessions saved: %+v", a.logs.records())
	}

	b := r.start(t, a.addr)
	if _, err := os.Stat(r.file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the session file is still there after it was loaded: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := th.AccessToken(ctx, "publish"); err != nil {
		t.Fatalf("access token after the restart: %v", err)
	}
	if resp := rc.exchange(aminfoGET); resp.Code != codes.Content {
		t.Fatalf("/aminfo after the restart = %v", resp.Code)
	}
	if h, res := b.l.ForTest().Handshakes(), b.l.ForTest().Resumptions(); h != 0 || res != 2 {
		t.Errorf("after the restart: handshakes %d, resumptions %d; want 0, 2", h, res)
	}
}

// A session file that cannot be used is ignored with a log line, and the
// gateway serves: things handshake anew.
func TestSessionFileIgnored(t *testing.T) {
	e := newEnv(t)
	r := newRestartable(t, e)
	// A session file, and one whose session was last active longer ago
	// than IdleTimeout: the clock goes back once the gateway has
	// authenticated.
	var c clock
	save := func(back time.Duration) (string, []byte) {
		a := r.start(t, "127.0.0.1:0", func(s *gateway.Server) { s.Time = c.now })
		c.advance(-back)
		dialRaw(t, a.addr).exchange(aminfoGET)
		stop(t, a)
		c.advance(back)
		b, err := os.ReadFile(r.file)
		if err != nil {
			t.Fatal(err)
		}
		return a.addr, b
	}
	addr, saved := save(0)
	staleAddr, stale := save(gateway.DefaultIdleTimeout + time.Minute)
	otherKey := make([]byte, 32)
	rand.Read(otherKey)
	for _, tc := range []struct {
		name      string
		content   []byte // nil: no file
		addr      string
		configure func(*gateway.Server)
		msg, why  string
	}{
		{"missing", nil, addr, nil, "no session file: things handshake anew", ""},
		{"tampered", flip(saved, len(saved)-20), addr, nil, "session file ignored", "tampered"},
		{"truncated", saved[:30], addr, nil, "session file ignored", "not a session file"},
		{"foreign", saved, addr, func(s *gateway.Server) { s.SessionKey = otherKey }, "session file ignored", "another --session-key"},
		{"stale", stale, staleAddr, nil, "session file ignored: its sessions have expired or belong to another address", ""},
		{"other address", saved, "127.0.0.1:0", nil, "session file ignored: its sessions have expired or belong to another address", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(r.file)
			if tc.content != nil {
				if err := os.WriteFile(r.file, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var cfg []func(*gateway.Server)
			if tc.configure != nil {
				cfg = append(cfg, tc.configure)
			}
			b := r.start(t, tc.addr, cfg...)
			found := false
			for _, rec := range b.logs.records() {
				if rec.Msg == tc.msg && strings.Contains(rec.Attrs["error"], tc.why) {
					found = true
				}
			}
			if !found {
				t.Errorf("no log line %q with %q: %+v", tc.msg, tc.why, b.logs.records())
			}
			if n := b.s.ForTest().Parked(); n != 0 {
				t.Errorf("%d sessions restored", n)
			}
			if resp := dialRaw(t, b.addr).exchange(aminfoGET); resp.Code != codes.Content {
				t.Errorf("/aminfo on a new session = %v", resp.Code)
			}
			stop(t, b)
		})
	}
}

func flip(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i] ^= 1
	return out
}

// Parked sessions give their memory back to the OS: once enough have been
// parked, after parking has been quiet for a while, once for the wave.
func TestParkedMemoryReleased(t *testing.T) {
	e := newEnv(t)
	var c clock
	g := e.gateway(func(s *gateway.Server) { s.Time = c.now })
	released := make(chan struct{}, 4)
	g.s.ForTest().SetMemoryRelease(2, 50*time.Millisecond, func() { released <- struct{}{} })
	rcs := []*rawConn{dialRaw(t, g.addr), dialRaw(t, g.addr)}
	for _, rc := range rcs {
		if resp := rc.exchange(aminfoGET); resp.Code != codes.Content {
			t.Fatalf("/aminfo = %v", resp.Code)
		}
	}
	sf := g.s.ForTest()
	c.advance(gateway.DefaultParkAfter + time.Second)
	sf.CheckExpiry()
	waitFor(t, 10*time.Second, func() bool { return sf.Parked() == 2 })
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("2 sessions parked, memory not released")
	}
	// One session more is below the count: no release for it alone.
	if resp := rcs[0].exchange(aminfoGET); resp.Code != codes.Content {
		t.Fatalf("/aminfo after parking = %v", resp.Code)
	}
	c.advance(gateway.DefaultParkAfter + time.Second)
	sf.CheckExpiry()
	waitFor(t, 10*time.Second, func() bool { return sf.Parked() == 2 })
	if n, armed := sf.PendingRelease(); n != 1 || armed {
		t.Errorf("after one more parked session: %d counted, release armed %v; want 1, false", n, armed)
	}
	// A release armed when the server stops is cancelled.
	if resp := rcs[1].exchange(aminfoGET); resp.Code != codes.Content {
		t.Fatalf("/aminfo after parking = %v", resp.Code)
	}
	g.s.ForTest().SetMemoryRelease(2, time.Hour, func() { released <- struct{}{} })
	c.advance(gateway.DefaultParkAfter + time.Second)
	sf.CheckExpiry()
	waitFor(t, 10*time.Second, func() bool { n, armed := sf.PendingRelease(); return n == 2 && armed })
	g.s.Close()
	if _, armed := sf.PendingRelease(); armed {
		t.Error("a release is still armed after Close")
	}
}
