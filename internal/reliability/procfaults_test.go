package reliability_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/internal/amadmin"
	"github.com/thingway/thingway/internal/pemkey"
	"github.com/thingway/thingway/internal/proctest"
	"github.com/thingway/thingway/thing"
)

// Faults in child processes: the real cmd/amlocal and cmd/gateway
// binaries, paused, killed and restarted with signals, while things of
// the SDK talk to the gateway.

const exampleKey = "../../resources/eckey1.key.pem"

// amProc is cmd/amlocal as a child process with its state in a
// directory, so that a restart on its port keeps identities, sessions
// and tokens.
type amProc struct {
	t      *testing.T
	p      *proctest.Proc
	dir    string
	listen string // host:port once started
	url    string
}

func startAMProc(t *testing.T) *amProc {
	t.Helper()
	a := &amProc{t: t, dir: t.TempDir(), listen: "127.0.0.1:0"}
	a.start()
	// The guide's identities (manual-thing and manual-gateway, with the
	// example key), created as the guide does, through the admin API.
	admin := amadmin.Admin(t, a.url, nil)
	for id, attrs := range amtest.GuideIdentities() {
		admin.CreateIdentity(id, attrs)
	}
	return a
}

var (
	amURLLine      = regexp.MustCompile(`(?m)^  URL +(http://(\S+)/openam)\n`)
	gatewayServing = regexp.MustCompile(`msg="gateway serving" address=(\S+)`)
)

// start starts amlocal (again, on the same port after the first time).
func (a *amProc) start() {
	a.t.Helper()
	a.p = proctest.Start(a.t, proctest.Build(a.t, "../../cmd/amlocal"), nil, "--listen", a.listen,
		"--data", filepath.Join(a.dir, "data"), "--log-level", "debug")
	m := a.p.Stdout.WaitMatch(amURLLine)
	a.url = m[1]
	if a.listen == "127.0.0.1:0" {
		a.listen = m[2]
	}
}

// gwProc is cmd/gateway as a child process in front of an amProc.
type gwProc struct {
	t    *testing.T
	p    *proctest.Proc
	am   *amProc
	addr string // UDP host:port once started
}

func startGatewayProc(t *testing.T, am *amProc, timeout time.Duration) *gwProc {
	t.Helper()
	g := &gwProc{t: t, am: am, addr: "127.0.0.1:0"}
	g.start(timeout)
	return g
}

func (g *gwProc) start(timeout time.Duration) {
	g.t.Helper()
	g.p = proctest.Start(g.t, proctest.Build(g.t, "../../cmd/gateway"), nil, "--url", g.am.url, "--name", amtest.GuideGatewayID,
		"--realm", "/", "--tree", "auth-tree", "--key", exampleKey, "--address", g.addr, "--timeout", timeout.String())
	g.p.Stdout.Wait("IoT Gateway server started.\n")
	g.addr = g.p.Stderr.WaitMatch(gatewayServing)[1]
}

// events records when a thing's SDK logged each message.
type events struct {
	mu sync.Mutex
	at map[string][]time.Time
}

func (e *events) Enabled(context.Context, slog.Level) bool { return true }
func (e *events) Handle(_ context.Context, r slog.Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.at == nil {
		e.at = map[string][]time.Time{}
	}
	e.at[r.Message] = append(e.at[r.Message], r.Time)
	return nil
}
func (e *events) WithAttrs([]slog.Attr) slog.Handler { return e }
func (e *events) WithGroup(string) slog.Handler      { return e }

func (e *events) times(msg string) []time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.at[msg])
}

// procThing is an authenticated manual-thing on the gateway at addr,
// with quick timers, its SDK's debug lines recorded.
type procThing struct {
	th  *thing.Thing
	log *events
}

func newProcThing(t *testing.T, addr string, ack time.Duration) *procThing {
	t.Helper()
	b, err := os.ReadFile(exampleKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pemkey.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	log := slog.New(ev)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := thing.DialGateway(ctx, thing.GatewayConfig{Address: addr, Trust: coapx.Trust{InsecureAnyGateway: true},
		AckTimeout: ack, HandshakeInterval: ack, MaxRetransmit: 3, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	th, err := thing.New(ctx, thing.Config{Connector: conn, ID: amtest.GuideThingID, Key: key, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return &procThing{th: th, log: ev}
}

// timed is token with how long it took.
func timed(th *thing.Thing) (time.Duration, error) {
	start := time.Now()
	err := token(th)
	return time.Since(start), err
}

// The local AM process paused (SIGSTOP) and resumed (SIGCONT), then
// killed (SIGKILL) and started again on its port with its data: things
// get 5.04 within the gateway's timeout while it is paused and 5.03
// while it is gone, and go on without a gateway restart once it is back,
// their AM session kept (no new authentication).
func TestAMProcessFaults(t *testing.T) {
	t.Parallel()
	am := startAMProc(t)
	gw := startGatewayProc(t, am, gatewayTimeout)
	pt := newProcThing(t, gw.addr, 200*time.Millisecond)
	if err := token(pt.th); err != nil {
		t.Fatal(err)
	}
	logins := len(pt.log.times("thing authenticated"))

	am.p.Signal(syscall.SIGSTOP)
	if !proctest.Eventually(30*time.Second, func() bool { return procState(am.p) == "T" }) {
		t.Fatalf("amlocal not stopped after SIGSTOP: state %q", procState(am.p))
	}
	took, err := timed(pt.th)
	am.p.Signal(syscall.SIGCONT)
	if status(err) != 504 {
		t.Errorf("AM paused: %v (status %d), want 5.04", err, status(err))
	}
	// The gateway's timeout, and the slack of a loaded machine.
	if took > gatewayTimeout+10*time.Second {
		t.Errorf("AM paused: the answer took %v; the gateway's timeout is %v", took, gatewayTimeout)
	}
	t.Logf("AM paused: %v after %v", err, took.Round(time.Millisecond))
	took, err = timed(pt.th)
	if err != nil {
		t.Fatalf("AM resumed: %v", err)
	}
	t.Logf("AM resumed: a token after %v", took.Round(time.Millisecond))

	am.p.Kill()
	took, err = timed(pt.th)
	if status(err) != 503 {
		t.Errorf("AM killed: %v (status %d), want 5.03", err, status(err))
	}
	t.Logf("AM killed: %v after %v", err, took.Round(time.Millisecond))
	am.start()
	took, err = timed(pt.th)
	if err != nil {
		t.Fatalf("AM restarted: %v\ngateway:\n%s", err, gw.p.Stderr)
	}
	t.Logf("AM restarted: a token after %v", took.Round(time.Millisecond))
	if n := len(pt.log.times("thing authenticated")) - logins; n != 0 {
		t.Errorf("the thing authenticated %d more times; AM kept its session", n)
	}
	select {
	case <-gw.p.Exited():
		t.Errorf("the gateway exited:\n%s", gw.p.Stderr)
	default:
	}
}

// procState is the process's state letter in /proc (T: stopped).
func procState(p *proctest.Proc) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Cmd.Process.Pid))
	if err != nil {
		return ""
	}
	// pid (comm) state ...: comm may hold spaces; the state follows its ")".
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return string(b[i+2])
	}
	return ""
}

// The gateway process killed (SIGKILL) and started again on its address:
// every thing's next request finds its DTLS session gone, the thing dials
// again and goes on with its AM session (no new authentication). The
// re-dials' offsets from the restart (min, median, max) are logged: how
// they spread over the things (RELIABILITY_THINGS of them, 5 by default).
func TestGatewayProcessRestart(t *testing.T) {
	t.Parallel()
	n := envInt("RELIABILITY_THINGS", 5)
	am := startAMProc(t)
	gw := startGatewayProc(t, am, 5*time.Second)
	things := make([]*procThing, n)
	for i := range things {
		things[i] = newProcThing(t, gw.addr, 200*time.Millisecond)
		if err := token(things[i].th); err != nil {
			t.Fatal(err)
		}
	}
	logins := make([]int, n)
	dials := make([]int, n)
	for i, pt := range things {
		logins[i] = len(pt.log.times("thing authenticated"))
		dials[i] = len(pt.log.times("gateway connected"))
	}
	gw.p.Kill()
	gw.start(5 * time.Second)
	restarted := time.Now()

	errs := make(chan error, n)
	for _, pt := range things {
		go func() { errs <- token(pt.th) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("after the gateway's restart: %v", err)
		}
	}
	var offsets []time.Duration
	for i, pt := range things {
		if m := len(pt.log.times("thing authenticated")) - logins[i]; m != 0 {
			t.Errorf("thing %d authenticated %d more times; AM kept its session", i, m)
		}
		at := pt.log.times("gateway connected")
		if len(at) <= dials[i] {
			t.Errorf("thing %d did not dial again", i)
			continue
		}
		offsets = append(offsets, at[dials[i]].Sub(restarted))
	}
	if len(offsets) == 0 {
		return
	}
	slices.Sort(offsets)
	t.Logf("re-dials of %d things after the gateway's restart: min %v, median %v, max %v", len(offsets),
		offsets[0].Round(time.Millisecond), offsets[len(offsets)/2].Round(time.Millisecond), offsets[len(offsets)-1].Round(time.Millisecond))
}
