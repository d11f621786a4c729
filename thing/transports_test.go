package thing_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/internal/proctest"
	"github.com/thingway/thingway/thing"
)

// The tests in this file run every flow over both transports: directly to
// AM over HTTP, and through a gateway over CoAP and DTLS on loopback.
var transports = []string{"http", "gateway"}

// via returns a connector to the env's AM for tree over transport.
func (e *env) via(transport, tree string) thing.Connector {
	e.t.Helper()
	if transport == "http" {
		return e.connector(tree)
	}
	gw, addr := e.gateway(tree, "127.0.0.1:0")
	return e.dial(gw, addr)
}

// gateway starts a gateway for tree listening on addr, authenticated in
// AM as test-gateway.
func (e *env) gateway(tree, addr string) (*gateway.Server, string) {
	e.t.Helper()
	const id = "test-gateway"
	if e.gwKey == nil {
		e.gwKey = ecKey(e.t)
		kid, _ := callback.Thumbprint(e.gwKey.Public())
		e.admin.CreateIdentity(id, map[string]any{"thingType": "gateway", "userPassword": "G4t3w4y-pw",
			"thingKeys": fmt.Sprintf(`{"keys":[%s]}`, jwkJSON(e.t, e.gwKey.Public(), kid))})
		cert, err := coapx.SelfSignedCertificate(nil, "test-gateway")
		if err != nil {
			e.t.Fatal(err)
		}
		e.gwCert = cert
	}
	gw := &gateway.Server{AM: e.connector(tree), ID: id, Key: e.gwKey, DTLSCertificate: e.gwCert, Time: e.now}
	if tree == "ldapService" {
		gw.Key = nil
		gw.Handlers = []callback.Handler{callback.NameHandler{Name: id}, callback.PasswordHandler{Password: "G4t3w4y-pw"}}
	}
	l, err := gw.Listen("udp4", addr)
	if err != nil {
		e.t.Fatal(err)
	}
	go gw.Serve(l)
	e.t.Cleanup(func() { gw.Close() })
	return gw, l.Addr().String()
}

// dial connects a thing to a gateway, trusting exactly its certificate.
func (e *env) dial(gw *gateway.Server, addr string) *thing.Gateway {
	e.t.Helper()
	pin := sha256.Sum256(e.gwCert.Certificate[0])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := thing.DialGateway(ctx, thing.GatewayConfig{Address: addr, Trust: coapx.Trust{PinnedSHA256: pin[:]}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

func TestLifecycleBothTransports(t *testing.T) {
	keys := map[string]func() crypto.Signer{
		"ES256": func() crypto.Signer { return ecKey(t) },
		"EdDSA": func() crypto.Signer { _, k, _ := ed25519.GenerateKey(rand.Reader); return k },
		"PS384": func() crypto.Signer { k, _ := rsa.GenerateKey(rand.Reader, 3072); return k },
	}
	for _, tr := range transports {
		for alg, mk := range keys {
			t.Run(tr+"/"+alg, func(t *testing.T) {
				e := newEnv(t)
				ctx := context.Background()
				key := mk()
				e.manualThing("manual-thing", key)
				e.admin.CreateIdentity("manual-thing-2", map[string]any{"thingType": "device"}) // unrelated identity
				th, err := thing.New(ctx, thing.Config{Connector: e.via(tr, "auth-tree"), ID: "manual-thing", Key: key})
				if err != nil {
					t.Fatal(err)
				}
				tok, err := th.AccessToken(ctx, "publish", "subscribe")
				if err != nil || len(tok.AccessToken) < 100 || tok.RefreshToken == "" {
					t.Fatalf("token = %+v, %v", tok, err)
				}
				in, err := th.IntrospectAccessToken(ctx, tok.AccessToken)
				if err != nil || !in.Active || strings.Join(in.Scope, " ") != "publish subscribe" {
					t.Fatalf("introspection = %+v, %v", in, err)
				}
				ref, err := th.RefreshAccessToken(ctx, tok.RefreshToken, "publish")
				if err != nil || strings.Join(ref.Scope, " ") != "publish" {
					t.Fatalf("refresh = %+v, %v", ref, err)
				}
				_, err = th.RefreshAccessToken(ctx, ref.RefreshToken, "publish", "subscribe")
				var te *thing.Error
				if !errors.As(err, &te) || te.OAuthError != "invalid_scope" {
					t.Fatalf("increased scope: %v", err)
				}
				attrs, err := th.Attributes(ctx, "thingKeys")
				if err != nil || attrs.ID != "manual-thing" || !strings.Contains(attrs.First("thingKeys"), `"keys"`) {
					t.Fatalf("attributes = %+v, %v", attrs, err)
				}
				if _, has := attrs.Values["thingConfig"]; has {
					t.Errorf("_fields not applied: %s", attrs.Raw)
				}
				if ok, err := th.SessionValid(ctx); err != nil || ok {
					t.Errorf("restricted SessionValid = %v, %v", ok, err)
				}
				if err := th.Logout(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := th.AccessToken(ctx, "publish"); err != nil {
					t.Fatalf("after logout: %v", err)
				}
			})
		}
	}
}

func TestFailuresBothTransports(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			key := ecKey(t)
			e.manualThing("known-thing", key)
			conn := e.via(tr, "auth-tree")
			for name, cfg := range map[string]thing.Config{
				"wrong key":        {Connector: conn, ID: "known-thing", Key: ecKey(t)},
				"unknown identity": {Connector: conn, ID: "nobody", Key: key},
			} {
				_, err := thing.New(ctx, cfg)
				var te *thing.Error
				if !errors.As(err, &te) || te.Status != 401 {
					t.Errorf("%s: %v", name, err)
				}
			}
			th, err := thing.New(ctx, thing.Config{Connector: conn, ID: "known-thing", Key: key})
			if err != nil {
				t.Fatal(err)
			}
			_, err = th.AccessToken(ctx, "delete")
			var te *thing.Error
			if !errors.As(err, &te) || te.Status != 400 || te.OAuthError != "invalid_scope" || !strings.Contains(te.Message, "Unknown/invalid scope(s)") {
				t.Errorf("unsupported scope: %v", err)
			}
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := th.AccessToken(cctx, "publish"); !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled: %v", err)
			}
		})
	}
}

func TestRegistrationBothTransports(t *testing.T) {
	method := func(m string) func(*amtest.Config) {
		return func(cfg *amtest.Config) {
			for _, n := range cfg.Realms["/"].Nodes {
				if n.Registration != nil {
					n.Registration.JWTRegistrationMethod = m
				}
			}
		}
	}
	for _, tr := range transports {
		t.Run(tr+"/certificate", func(t *testing.T) {
			e := newEnv(t)
			key := ecKey(t)
			th, err := thing.New(context.Background(), thing.Config{Connector: e.via(tr, "auth-reg-tree"), ID: "dynamic-thing", Key: key,
				Registration: &thing.Registration{Certificates: e.ca.Issue(key, "dynamic-thing")}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := th.AccessToken(context.Background(), "publish"); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(tr+"/proof of possession", func(t *testing.T) {
			e := newEnv(t, method(amtest.RegPoPWithoutTrust))
			key := ecKey(t)
			th, err := thing.New(context.Background(), thing.Config{Connector: e.via(tr, "auth-reg-tree"), ID: "pop-thing", Key: key, Registration: &thing.Registration{}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := th.AccessToken(context.Background(), "publish"); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(tr+"/software statement and proof of possession", func(t *testing.T) {
			e := newEnv(t, method(amtest.RegPoPWithSoftwareStatement))
			key := ecKey(t)
			th, err := thing.New(context.Background(), thing.Config{Connector: e.via(tr, "auth-reg-tree"), ID: "pop-sw-thing", Key: key,
				Registration: &thing.Registration{SoftwareStatement: e.pub.Statement(key)}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := th.AccessToken(context.Background(), "publish"); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(tr+"/username and password", func(t *testing.T) {
			e := newEnv(t)
			e.admin.CreateIdentity("pw-thing", map[string]any{"userPassword": "5tr0ngG3n3r@ted", "thingType": "device"})
			th, err := thing.New(context.Background(), thing.Config{Connector: e.via(tr, "ldapService"), ID: "pw-thing",
				Handlers: []callback.Handler{callback.NameHandler{Name: "pw-thing"}, callback.PasswordHandler{Password: "5tr0ngG3n3r@ted"}}})
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := th.SessionValid(context.Background()); err != nil || !ok {
				t.Fatalf("SessionValid = %v, %v", ok, err)
			}
			if _, err := th.AccessToken(context.Background(), "publish"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Every outcome of the device grant, over both transports.
func TestDeviceGrantBothTransports(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			e.admin.CreateIdentity("bjensen", map[string]any{"userPassword": "Ch4ng31t"})
			key, otherKey := ecKey(t), ecKey(t)
			e.manualThing("grant-thing", key)
			e.manualThing("other-thing", otherKey)
			conn := e.via(tr, "auth-tree")
			pending := newMessageSignal("user token pending, polling again")
			th, err := thing.New(ctx, thing.Config{Connector: conn, ID: "grant-thing", Key: key, Time: e.now, Logger: slog.New(pending)})
			if err != nil {
				t.Fatal(err)
			}
			other, err := thing.New(ctx, thing.Config{Connector: conn, ID: "other-thing", Key: otherKey, Time: e.now})
			if err != nil {
				t.Fatal(err)
			}
			oauthErr := func(err error) string {
				var te *thing.Error
				if errors.As(err, &te) {
					return te.OAuthError
				}
				return fmt.Sprint(err)
			}

			// Allowed while the thing polls (pending, then the token).
			da, err := th.UserCode(ctx, "publish")
			if err != nil {
				t.Fatal(err)
			}
			go func() { <-pending.seen; e.consent(da, "allow") }()
			tok, err := th.UserToken(ctx, da)
			if err != nil {
				t.Fatalf("allow: %v", err)
			}
			in, err := th.IntrospectAccessToken(ctx, tok.AccessToken)
			if err != nil || in.Claims["subname"] != "bjensen" {
				t.Fatalf("user token introspection = %+v, %v", in, err)
			}
			// A code is good for one token.
			if _, err := th.UserToken(ctx, da); oauthErr(err) != "invalid_grant" {
				t.Errorf("code reuse: %v", err)
			}
			// Denied.
			da, _ = th.UserCode(ctx, "publish")
			e.consent(da, "deny")
			if _, err := th.UserToken(ctx, da); oauthErr(err) != "authorization_declined" {
				t.Errorf("deny: %v", err)
			}
			// Another thing cannot poll this thing's code.
			da, _ = th.UserCode(ctx, "publish")
			if _, err := other.UserToken(ctx, da); oauthErr(err) != "invalid_grant" {
				t.Errorf("wrong thing polling: %v", err)
			}
			// Expired.
			e.clock.Add(301 * time.Second)
			if _, err := th.UserToken(ctx, da); oauthErr(err) != "expired_token" {
				t.Errorf("expired: %v", err)
			}
			// Unsupported scope.
			if _, err := th.UserCode(ctx, "delete"); oauthErr(err) != "invalid_scope" {
				t.Errorf("unsupported scope: %v", err)
			}
		})
	}
}

// A thing keeps working when its gateway restarts: the gateway's DTLS close
// alert ends the session, and the next request dials a new one. (The retry
// after an abrupt loss, without an alert, is not covered here.)
func TestGatewayRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := ecKey(t)
	e.manualThing("restart-thing", key)
	gw, addr := e.gateway("auth-tree", "127.0.0.1:0")
	conn := e.dial(gw, addr)
	th, err := thing.New(ctx, thing.Config{Connector: conn, ID: "restart-thing", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := th.AccessToken(ctx, "publish"); err != nil {
		t.Fatal(err)
	}
	gw.Close()
	// The same address, a new gateway process (in spirit): the DTLS
	// session is gone. The port is free once the old sessions have ended.
	var err2 error
	if !proctest.Eventually(10*time.Second, func() bool {
		pc, err := net.ListenPacket("udp4", addr)
		if err == nil {
			pc.Close()
		}
		err2 = err
		return err == nil
	}) {
		t.Fatalf("address not released: %v", err2)
	}
	e.gateway("auth-tree", addr)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := th.AccessToken(rctx, "publish"); err != nil {
		t.Fatalf("after the gateway restarted: %v", err)
	}
}

// A thing that does not trust the gateway's certificate says why, every
// time (pion alone sometimes reports a refused handshake as a cancelled
// context or a peer's decode error).
func TestGatewayNotTrusted(t *testing.T) {
	e := newEnv(t)
	_, addr := e.gateway("auth-tree", "127.0.0.1:0")
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.Cert) // a CA that did not issue the gateway's certificate
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := thing.DialGateway(ctx, thing.GatewayConfig{Address: addr, Trust: coapx.Trust{RootCAs: pool, ServerName: "test-gateway"}})
		cancel()
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) || !strings.Contains(err.Error(), "not trusted") {
			t.Fatalf("dial %d: %v", i, err)
		}
	}
	wrongPin := make([]byte, 32)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := thing.DialGateway(ctx, thing.GatewayConfig{Address: addr, Trust: coapx.Trust{PinnedSHA256: wrongPin}}); err == nil || !strings.Contains(err.Error(), "pinned digest") {
		t.Fatalf("wrong pin: %v", err)
	}
}

// slow_down and authorization_pending reach the thing as AM sends them, over
// both transports (the SDK's UserToken absorbs them; here the connector is
// driven directly, with an unrestricted session).
func TestDevicePollingErrorsBothTransports(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			e.admin.CreateIdentity("poll-thing", map[string]any{"userPassword": "5tr0ngG3n3r@ted", "thingType": "device"})
			conn := e.via(tr, "ldapService")
			handlers := []callback.Handler{callback.NameHandler{Name: "poll-thing"}, callback.PasswordHandler{Password: "5tr0ngG3n3r@ted"}}
			var step callback.Step
			for range 5 {
				res, err := conn.AuthStep(ctx, step)
				if err != nil {
					t.Fatal(err)
				}
				if res.TokenID != "" {
					step = res
					break
				}
				for i := range res.Callbacks {
					for _, h := range handlers {
						if ok, _ := h.Handle(&res.Callbacks[i]); ok {
							break
						}
					}
				}
				step = callback.Step{AuthID: res.AuthID, AuthIDDigest: res.AuthIDDigest, Callbacks: res.Callbacks}
			}
			if step.TokenID == "" {
				t.Fatal("no session")
			}
			send := func(op string, body any) ([]byte, error) {
				b, _ := json.Marshal(body)
				return conn.Send(ctx, callback.Request{Op: op, Token: step.TokenID, Body: b})
			}
			b, err := send(callback.OpUserCode, map[string]any{"scope": []string{"publish"}})
			if err != nil {
				t.Fatal(err)
			}
			var da struct {
				DeviceCode string `json:"device_code"`
			}
			json.Unmarshal(b, &da)
			wantError := func(code string) {
				t.Helper()
				_, err := send(callback.OpUserToken, map[string]any{"device_code": da.DeviceCode})
				var se interface {
					HTTPStatus() int
					ResponseBody() []byte
				}
				if !errors.As(err, &se) || se.HTTPStatus() != 403 {
					t.Fatalf("poll: %v, want a 403", err)
				}
				var body struct {
					Detail struct {
						Error string `json:"error"`
					} `json:"detail"`
				}
				if json.Unmarshal(se.ResponseBody(), &body); body.Detail.Error != code {
					t.Fatalf("poll: %s, want detail.error %s", se.ResponseBody(), code)
				}
			}
			wantError("authorization_pending")
			wantError("slow_down") // polled again at once
			e.clock.Add(2 * time.Second)
			wantError("authorization_pending")
		})
	}
}

// DialGateway gives up when its context ends, even if the peer never
// completes a DTLS handshake (here a UDP socket that never answers).
func TestDialGatewayHonoursContext(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = thing.DialGateway(ctx, thing.GatewayConfig{Address: pc.LocalAddr().String(), Trust: coapx.Trust{InsecureAnyGateway: true}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("DialGateway returned after %v", d)
	}
}
