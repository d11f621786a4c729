package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/thing"
)

// Our thing SDK over its CoAP connector, against our gateway.
func TestThingSDK(t *testing.T) {
	e := newEnv(t)
	g := e.gateway()
	key := newKey(t)
	e.admin.Identity("sdk-thing", "device", key, map[string]any{"thingConfig": "sdk"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := thing.DialGateway(ctx, thing.GatewayConfig{Address: g.addr, Trust: coapx.Trust{InsecureAnyGateway: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	th, err := thing.New(ctx, thing.Config{Connector: conn, ID: "sdk-thing", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	at, err := th.AccessToken(ctx, "publish")
	if err != nil {
		t.Fatal(err)
	}
	in, err := th.IntrospectAccessToken(ctx, at.AccessToken)
	if err != nil || !in.Active {
		t.Fatalf("introspect: %+v %v", in, err)
	}
	attrs, err := th.Attributes(ctx, "thingConfig")
	if err != nil || attrs.First("thingConfig") != "sdk" {
		t.Fatalf("attributes: %+v %v", attrs, err)
	}
	if _, err := th.UserCode(ctx, "publish"); err != nil {
		t.Fatal(err)
	}
	if err := th.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	// The next request authenticates again.
	if _, err := th.AccessToken(ctx, "publish"); err != nil {
		t.Fatalf("after logout: %v", err)
	}
}

// The gateway renews its own session on a timer and logs the previous one
// out.
func TestSessionRenewal(t *testing.T) {
	e := newEnv(t)
	e.gateway(func(s *gateway.Server) { s.SessionRenewal = 300 * time.Millisecond })
	logins := e.rec.count("/json/authenticate")
	waitFor(t, 10*time.Second, func() bool {
		return e.rec.count("/json/authenticate") >= logins+4 && e.rec.count("_action=logout") >= 2
	})
	for _, r := range e.rec.requests() {
		if strings.Contains(r.URL, "_action=logout") && r.Status != 200 {
			t.Errorf("logout of the previous session: %+v", r)
		}
	}
}
