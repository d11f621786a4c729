package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/thing"
)

// authStep posts one authentication step and returns the code, the
// Max-Age option (0 if none) and the answer.
func authStep(t *testing.T, cc *client.Conn, step callback.Step) (codes.Code, uint32, callback.Step) {
	t.Helper()
	b, _ := json.Marshal(step)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := cc.Post(ctx, coapx.PathAuthenticate, coapx.AppJSON, bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST /authenticate: %v", err)
	}
	maxAge, _ := resp.GetOptionUint32(message.MaxAge)
	var out callback.Step
	if body, _ := resp.ReadBody(); len(body) > 0 {
		json.Unmarshal(body, &out)
	}
	return resp.Code(), maxAge, out
}

// A flow belongs to the DTLS session that started it: another session
// cannot continue it with its digest, nor evict it by starting many flows
// of its own.
func TestAuthFlowsBoundToSession(t *testing.T) {
	e := newEnv(t)
	g := e.gateway(func(s *gateway.Server) { s.MaxAuthPerMinute = -1 }) // the flood is the point here
	key := newKey(t)
	e.admin.Identity("flow-thing", "device", key, nil)
	a, b := dial(t, g.addr), dial(t, g.addr)

	code, _, first := authStep(t, a, callback.Step{})
	if code != codes.Valid || first.AuthIDDigest == "" {
		t.Fatalf("first step = %v %+v", code, first)
	}
	// b floods the gateway with flows of its own: 50, more than any cache.
	for range 50 {
		if code, _, _ := authStep(t, b, callback.Step{}); code != codes.Valid {
			t.Fatalf("b's flow: %v", code)
		}
	}
	if n := g.s.ForTest().Digests(); n != 1+4 {
		t.Errorf("%d flows held, want a's 1 and b's last 4", n)
	}
	// b cannot use a's digest.
	h := callback.AuthenticateHandler{Audience: "/", ThingID: "flow-thing", Key: key}
	stolen := callback.Step{AuthIDDigest: first.AuthIDDigest, Callbacks: append([]callback.Callback(nil), first.Callbacks...)}
	for i := range stolen.Callbacks {
		h.Handle(&stolen.Callbacks[i])
	}
	if code, _, _ := authStep(t, b, stolen); code != codes.Unauthorized {
		t.Errorf("a's digest on b's session = %v, want 4.01", code)
	}
	// a's flow goes on.
	if code, _, done := authStep(t, a, stolen); code != codes.Valid || done.TokenID == "" {
		t.Errorf("a's second step = %v %+v, want a session", code, done)
	}
	// A session's flows end with it.
	b.Close()
	waitFor(t, 10*time.Second, func() bool { return g.s.ForTest().Digests() == 0 })
}

// MaxAuthPerMinute: a session's steps beyond it get 5.03 with Max-Age
// until its allowance refills; other sessions are not affected.
func TestAuthRatePerSession(t *testing.T) {
	e := newEnv(t)
	var c clock
	g := e.gateway(func(s *gateway.Server) { s.MaxAuthPerMinute = 3; s.Time = c.now })
	a, b := dial(t, g.addr), dial(t, g.addr)
	for i := range 3 {
		if code, _, _ := authStep(t, a, callback.Step{}); code != codes.Valid {
			t.Fatalf("step %d = %v", i+1, code)
		}
	}
	code, maxAge, _ := authStep(t, a, callback.Step{})
	if code != codes.ServiceUnavailable || maxAge < 1 || maxAge > 20 {
		t.Fatalf("4th step in a minute = %v, Max-Age %d; want 5.03 and 1-20 s (a step every 20 s)", code, maxAge)
	}
	if code, _, _ := authStep(t, b, callback.Step{}); code != codes.Valid {
		t.Errorf("another session's step = %v", code)
	}
	if !g.logs.contains("request refused", "reason", "authentication rate") {
		t.Error("no log line for the refusal")
	}
	c.advance(time.Duration(maxAge) * time.Second)
	if code, _, _ := authStep(t, a, callback.Step{}); code != codes.Valid {
		t.Errorf("after Max-Age = %v", code)
	}
}

// MaxConcurrentAuth: while AM works on as many steps as allowed, another
// is answered 5.03 with Max-Age 1 at once, not queued.
func TestAuthAdmission(t *testing.T) {
	e := newEnv(t)
	g := e.gateway(func(s *gateway.Server) { s.MaxConcurrentAuth = 1 })
	a, b := dial(t, g.addr), dial(t, g.addr)
	hold := make(chan struct{})
	e.rec.hold.Store(&hold)
	done := make(chan codes.Code, 1)
	go func() {
		code, _, _ := authStep(t, a, callback.Step{})
		done <- code
	}()
	<-e.rec.held // a's step is at AM
	code, maxAge, _ := authStep(t, b, callback.Step{})
	if code != codes.ServiceUnavailable || maxAge != 1 {
		t.Errorf("step while AM is busy = %v, Max-Age %d; want 5.03, 1", code, maxAge)
	}
	e.rec.hold.Store(nil)
	close(hold)
	if code := <-done; code != codes.Valid {
		t.Errorf("the held step = %v", code)
	}
	if code, _, _ := authStep(t, b, callback.Step{}); code != codes.Valid {
		t.Errorf("after the slot freed: %v", code)
	}
	if !g.logs.contains("request refused", "reason", "authentication admission") {
		t.Error("no log line for the refusal")
	}
}

// The SDK follows a busy gateway's 5.03 with Max-Age: it sends the step
// again after Max-Age and logs in once AM has room.
func TestSDKWaitsForBusyGateway(t *testing.T) {
	e := newEnv(t)
	g := e.gateway(func(s *gateway.Server) { s.MaxConcurrentAuth = 1 })
	key := newKey(t)
	e.admin.Identity("patient-sdk-thing", "device", key, nil)
	hold := make(chan struct{})
	e.rec.hold.Store(&hold)
	a := dial(t, g.addr)
	held := make(chan codes.Code, 1)
	go func() {
		code, _, _ := authStep(t, a, callback.Step{})
		held <- code
	}()
	<-e.rec.held // AM's one slot is taken

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := thing.DialGateway(ctx, thing.GatewayConfig{Address: g.addr, Trust: coapx.Trust{InsecureAnyGateway: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	newErr := make(chan error, 1)
	go func() {
		_, err := thing.New(ctx, thing.Config{Connector: conn, ID: "patient-sdk-thing", Key: key})
		newErr <- err
	}()
	// Release AM once the SDK's first step has been refused.
	waitFor(t, 10*time.Second, func() bool { return g.logs.contains("request refused", "reason", "authentication admission") })
	e.rec.hold.Store(nil)
	close(hold)
	if err := <-newErr; err != nil {
		t.Fatalf("thing.New through a busy gateway: %v", err)
	}
	if code := <-held; code != codes.Valid {
		t.Errorf("the held step = %v", code)
	}
}

// ThingTree: the gateway logs itself in with auth-tree (which registers
// nothing), while things authenticate and register with auth-reg-tree; a
// thing's outcome is one INFO line with its ID, peer, tree and result.
func TestThingTree(t *testing.T) {
	e := newEnv(t)
	g := e.gateway(func(s *gateway.Server) { s.ThingTree = "auth-reg-tree" })
	plain := e.gateway()
	thingKey := newKey(t)
	kid, _ := callback.Thumbprint(thingKey.Public())
	handlers := []callback.Handler{
		callback.AuthenticateHandler{Audience: "/", ThingID: "tree-thing", Key: thingKey},
		callback.RegisterHandler{Audience: "/", ThingID: "tree-thing", ThingType: "device", KeyID: kid, Key: thingKey,
			Certificates: e.ca.Issue(thingKey, "tree-thing")},
	}
	run := func(cc *client.Conn) (codes.Code, callback.Step) {
		step := callback.Step{}
		for range 6 {
			code, _, res := authStep(t, cc, step)
			if code != codes.Valid || res.TokenID != "" {
				return code, res
			}
			for i := range res.Callbacks {
				for _, h := range handlers {
					if ok, _ := h.Handle(&res.Callbacks[i]); ok {
						break
					}
				}
			}
			step = callback.Step{AuthIDDigest: res.AuthIDDigest, Callbacks: res.Callbacks}
		}
		return 0, callback.Step{}
	}
	// Without ThingTree, the gateway's tree cannot register the thing.
	if code, _ := run(dial(t, plain.addr)); code != codes.Unauthorized {
		t.Errorf("registration through the gateway's own auth-tree = %v, want 4.01", code)
	}
	if !plain.logs.contains("thing authentication", "result", "refused") {
		t.Error("no refusal line for the thing")
	}
	code, res := run(dial(t, g.addr))
	if code != codes.Valid || res.TokenID == "" {
		t.Fatalf("registration with ThingTree auth-reg-tree = %v %+v", code, res)
	}
	var line *logRecord
	for _, r := range g.logs.records() {
		if r.Msg == "thing authentication" && r.Attrs["result"] == "ok" {
			line = &r
		}
	}
	if line == nil || line.Level != slog.LevelInfo || line.Attrs["thing"] != "tree-thing" || line.Attrs["tree"] != "auth-reg-tree" ||
		line.Attrs["registration"] != "true" || line.Attrs["peer"] == "" || line.Attrs["took"] == "" {
		t.Errorf("outcome line = %+v", line)
	}
	for _, r := range g.logs.records() {
		for _, v := range r.Attrs {
			if strings.Contains(v, "eyJ") || strings.Contains(v, res.TokenID) {
				t.Errorf("a token or JWT reached the log: %+v", r)
			}
		}
	}
}
