package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/internal/proctest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// T2: a CoAP ping (CON, code 0.00, no token) is answered with a Reset
// carrying its message ID; the iot-edge SDK requires it on connect.
func TestPingIsAnsweredWithReset(t *testing.T) {
	e := newEnv(t)
	g := e.gateway()
	rc := dialRaw(t, g.addr)
	resp := rc.exchange(message.Message{Type: message.Confirmable, Code: codes.Empty})
	if resp.Type != message.Reset || resp.Code != codes.Empty {
		t.Fatalf("ping answered with %v %v, want a Reset", resp.Type, resp.Code)
	}
}

// T10, T23: /aminfo has the PascalCase members in iot-edge's order, and
// its URLs are the very URLs the gateway calls (AM checks them against the
// aud of signed requests).
func TestAMInfoGolden(t *testing.T) {
	e := newEnv(t)
	g := e.gateway()
	cc := dial(t, g.addr)
	code, body := get(t, cc, coapx.PathAMInfo)
	if code != codes.Content {
		t.Fatalf("/aminfo = %v", code)
	}
	got := strings.ReplaceAll(string(body), e.url, "{{AM}}")
	golden := filepath.Join("testdata", "aminfo.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != strings.TrimSuffix(string(want), "\n") {
		t.Errorf("/aminfo =\n%s\nwant\n%s", got, want)
	}
	ref, _ := json.Marshal(callback.NewAMInfo(e.url, "/"))
	if !bytes.Equal(body, ref) {
		t.Errorf("/aminfo differs from callback.NewAMInfo:\n%s\n%s", body, ref)
	}

	// Each URL is the one the gateway then calls for the operation.
	key := newKey(t)
	e.admin.Identity("aminfo-thing", "device", key, nil)
	tok := authenticate(t, cc, callback.AuthenticateHandler{Audience: "/", ThingID: "aminfo-thing", Key: key})
	info := aminfo(t, cc)
	p := &pop{key: key, token: tok}
	for _, c := range []struct {
		path, aud string
		claims    map[string]any
	}{
		{coapx.PathAccessToken, info.AccessTokenURL, map[string]any{"scope": []string{"publish"}}},
		{coapx.PathUserCode, info.UserCodeURL, map[string]any{"scope": []string{"publish"}}},
		{coapx.PathAttributes, info.AttributesURL, nil},
	} {
		before := len(e.rec.requests())
		code, body := post(t, cc, c.path, coapx.AppJOSE, p.sign(t, c.aud, info.ThingsVersion, c.claims))
		if code != codes.Changed {
			t.Fatalf("%s = %v %s", c.path, code, body)
		}
		reqs := e.rec.requests()[before:]
		if len(reqs) != 1 || reqs[0].URL != c.aud {
			t.Errorf("%s: AM saw %+v, want one call to %s", c.path, reqs, c.aud)
		}
	}
}

// The whole life of a proof-of-possession thing through the gateway, with
// signed (JOSE) requests: authentication with auth_id_digest, token,
// attributes by Uri-Query, introspection, device grant, session.
func TestProofOfPossessionThing(t *testing.T) {
	e := newEnv(t)
	g := e.gateway()
	key := newKey(t)
	e.admin.Identity("pop-thing", "device", key, map[string]any{"thingConfig": "cfg-1"})
	cc := dial(t, g.addr)

	tok := authenticate(t, cc, callback.AuthenticateHandler{Audience: "/", ThingID: "pop-thing", Key: key})
	if n := g.s.ForTest().Digests(); n != 0 {
		t.Errorf("%d digests cached after the flow finished, want 0", n)
	}
	info := aminfo(t, cc)
	p := &pop{key: key, token: tok}

	code, body := post(t, cc, coapx.PathAccessToken, coapx.AppJOSE,
		p.sign(t, info.AccessTokenURL, info.ThingsVersion, map[string]any{"scope": []string{"publish"}}))
	if code != codes.Changed {
		t.Fatalf("/accesstoken = %v %s", code, body)
	}
	var at amclient.TokenResponse
	if err := json.Unmarshal(body, &at); err != nil || at.AccessToken == "" || at.Scope != "publish" {
		t.Fatalf("token response %s: %v", body, err)
	}

	names := []string{"thingConfig", "thingKeys"}
	code, body = post(t, cc, coapx.PathAttributes, coapx.AppJOSE,
		p.sign(t, info.AttributesURLFor(names), info.ThingsVersion, nil), names...)
	if code != codes.Changed {
		t.Fatalf("/attributes = %v %s", code, body)
	}
	var attrs map[string]any
	json.Unmarshal(body, &attrs)
	if attrs["_id"] != "pop-thing" || attrs["thingConfig"] == nil || attrs["thingKeys"] == nil {
		t.Errorf("attributes = %s", body)
	}

	code, body = post(t, cc, coapx.PathIntrospect, coapx.AppJOSE,
		p.sign(t, info.IntrospectURL, info.ThingsVersion, map[string]any{"token": at.AccessToken}))
	var in map[string]any
	json.Unmarshal(body, &in)
	if code != codes.Changed || in["active"] != true {
		t.Fatalf("/introspect = %v %s", code, body)
	}

	code, body = post(t, cc, coapx.PathUserCode, coapx.AppJOSE,
		p.sign(t, info.UserCodeURL, info.ThingsVersion, map[string]any{"scope": []string{"publish"}}))
	var da amclient.DeviceAuthorization
	if code != codes.Changed || json.Unmarshal(body, &da) != nil || da.DeviceCode == "" {
		t.Fatalf("/usercode = %v %s", code, body)
	}
	// T18: while the user has not decided, AM's error body reaches the
	// thing unchanged, with the code of AM's status (403 → 4.03).
	before := len(e.rec.requests())
	code, body = post(t, cc, coapx.PathUserToken, coapx.AppJOSE,
		p.sign(t, info.UserTokenURL, info.ThingsVersion, map[string]any{"device_code": da.DeviceCode}))
	if code != codes.Forbidden || !strings.Contains(string(body), "authorization_pending") {
		t.Fatalf("/usertoken = %v %s, want 4.03 with authorization_pending", code, body)
	}
	if reqs := e.rec.requests()[before:]; len(reqs) != 1 || reqs[0].Status != 403 {
		t.Errorf("AM calls %+v", reqs)
	}

	// T12: AM 7.4 cannot validate a restricted session (OPENAM-19492): 4.01.
	code, _ = post(t, cc, coapx.PathSession, coapx.AppJOSE, p.sign(t, info.SessionValidateURL, info.SessionsVersion, nil), coapx.QueryValidate)
	if code != codes.Unauthorized {
		t.Errorf("validate = %v, want 4.01", code)
	}
	code, body = post(t, cc, coapx.PathSession, coapx.AppJOSE, p.sign(t, info.SessionLogoutURL, info.SessionsVersion, nil), coapx.QueryLogout)
	if code != codes.Changed || len(body) != 0 {
		t.Fatalf("logout = %v %s", code, body)
	}
	// The session is gone: AM's 401 arrives as 4.01 with AM's body.
	code, body = post(t, cc, coapx.PathAccessToken, coapx.AppJOSE, p.sign(t, info.AccessTokenURL, info.ThingsVersion, nil))
	if code != codes.Unauthorized || !json.Valid(body) {
		t.Errorf("after logout: %v %s, want 4.01 with AM's body", code, body)
	}
}

// Unrestricted sessions send the JSON wrapper; the gateway itself logs in
// with a name and password on that tree.
func TestJSONThing(t *testing.T) {
	e := newEnv(t)
	e.admin.Identity("plain-gateway", "gateway", nil, map[string]any{"userPassword": "gw-secret-1"})
	e.admin.Identity("plain-thing", "device", nil, map[string]any{"userPassword": "thing-secret-1", "thingConfig": "c"})
	logs := newLogSink()
	g := startGateway(t, &gateway.Server{
		AM:       &amclient.Client{URL: e.url, Realm: "/", Tree: "ldapService"},
		ID:       "plain-gateway",
		Handlers: []callback.Handler{callback.NameHandler{Name: "plain-gateway"}, callback.PasswordHandler{Password: "gw-secret-1"}},
		Logger:   slog_(logs),
	}, logs)
	cc := dial(t, g.addr)
	tok := authenticate(t, cc, callback.NameHandler{Name: "plain-thing"}, callback.PasswordHandler{Password: "thing-secret-1"})

	wrap := func(token, payload string) []byte {
		b, _ := json.Marshal(coapx.ThingsRequest{Token: token, Payload: payload})
		return b
	}
	code, body := post(t, cc, coapx.PathAccessToken, coapx.AppJSON, wrap(tok, `{"scope":["publish"]}`))
	if code != codes.Changed || !strings.Contains(string(body), "access_token") {
		t.Fatalf("/accesstoken = %v %s", code, body)
	}
	code, body = post(t, cc, coapx.PathAttributes, coapx.AppJSON, wrap(tok, ""), "thingConfig")
	if code != codes.Changed || !strings.Contains(string(body), `"thingConfig"`) || strings.Contains(string(body), "thingKeys") {
		t.Fatalf("/attributes = %v %s", code, body)
	}
	// §2.6: AM's 4xx is relayed; there is no local fallback for it.
	var at amclient.TokenResponse
	_, body = post(t, cc, coapx.PathAccessToken, coapx.AppJSON, wrap(tok, ""))
	json.Unmarshal(body, &at)
	code, body = post(t, cc, coapx.PathIntrospect, coapx.AppJSON, wrap("not-a-session", `{"token":"`+at.AccessToken+`"}`))
	if code != codes.Unauthorized {
		t.Errorf("/introspect with a bad session = %v %s, want 4.01", code, body)
	}

	session := func(token, q string) codes.Code {
		b, _ := json.Marshal(coapx.SessionRequest{TokenID: token})
		c, _ := post(t, cc, coapx.PathSession, coapx.AppJSON, b, q)
		return c
	}
	if c := session(tok, coapx.QueryValidate); c != codes.Changed {
		t.Errorf("validate = %v, want 2.04", c)
	}
	if c := session(tok, coapx.QueryLogout); c != codes.Changed {
		t.Errorf("logout = %v, want 2.04", c)
	}
	if c := session(tok, coapx.QueryValidate); c != codes.Unauthorized {
		t.Errorf("validate after logout = %v, want 4.01", c)
	}
	if c := session(tok, coapx.QueryLogout); c != codes.GatewayTimeout {
		t.Errorf("logout of a dead session = %v, want 5.04 (iot-edge)", c)
	}
}

// Requests the gateway refuses itself, with short texts.
func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	g := e.gateway()
	cc := dial(t, g.addr)
	jws := func(claims string) []byte {
		enc := func(s string) string { return b64([]byte(s)) }
		return []byte(enc(`{"alg":"ES256"}`) + "." + enc(claims) + ".c2ln")
	}
	noCF := func(path string, body []byte) (codes.Code, []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := cc.NewPostRequest(ctx, path, coapx.AppJSON, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Remove(message.ContentFormat)
		resp, err := cc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := resp.ReadBody()
		return resp.Code(), b
	}
	for _, c := range []struct {
		name string
		do   func() (codes.Code, []byte)
		code codes.Code
		text string
	}{
		{"missing content format", func() (codes.Code, []byte) { return noCF(coapx.PathAccessToken, []byte(`{"token":"x"}`)) },
			codes.BadRequest, "missing content format"},
		{"missing content format on /session", func() (codes.Code, []byte) { return noCF(coapx.PathSession, []byte(`{"tokenId":"x"}`)) },
			codes.BadRequest, "missing content format"},
		{"unsupported content format", func() (codes.Code, []byte) {
			return post(t, cc, coapx.PathAccessToken, message.TextPlain, []byte(`{"token":"x"}`))
		}, codes.UnsupportedMediaType, "unsupported content format"},
		{"malformed JSON", func() (codes.Code, []byte) {
			return post(t, cc, coapx.PathAccessToken, coapx.AppJSON, []byte(`{"token":`))
		}, codes.BadRequest, "malformed JSON"},
		{"payload not a string", func() (codes.Code, []byte) {
			return post(t, cc, coapx.PathUserCode, coapx.AppJSON, []byte(`{"token":"x","payload":{"scope":[]}}`))
		}, codes.BadRequest, "malformed JSON"},
		{"JOSE not a JWS", func() (codes.Code, []byte) {
			return post(t, cc, coapx.PathAccessToken, coapx.AppJOSE, []byte(`{"csrf":"x"}`))
		}, codes.BadRequest, "malformed JWS"},
		{"JOSE without csrf", func() (codes.Code, []byte) {
			return post(t, cc, coapx.PathAccessToken, coapx.AppJOSE, jws(`{"scope":["publish"]}`))
		}, codes.BadRequest, "JWS without csrf claim"},
		{"session query", func() (codes.Code, []byte) {
			return post(t, cc, coapx.PathSession, coapx.AppJSON, []byte(`{"tokenId":"x"}`), "_action=validate", "x=y")
		}, codes.BadRequest, "unknown/missing query"},
		{"authenticate not JSON", func() (codes.Code, []byte) {
			return post(t, cc, coapx.PathAuthenticate, coapx.AppJSON, []byte(`callbacks`))
		}, codes.BadRequest, "Unable to unmarshal payload"},
		{"authenticate unknown digest", func() (codes.Code, []byte) {
			return post(t, cc, coapx.PathAuthenticate, coapx.AppJSON, []byte(`{"auth_id_digest":"q7FbOHYPxGj1JGEbE3q9qH8r9+1zvB6PDuFQx5fY+1k=","callbacks":[]}`))
		}, codes.Unauthorized, "unknown or expired auth_id_digest"},
		{"authenticate content format", func() (codes.Code, []byte) {
			return post(t, cc, coapx.PathAuthenticate, coapx.AppJOSE, []byte(`{}`))
		}, codes.UnsupportedMediaType, "unsupported content format"},
		{"unknown path", func() (codes.Code, []byte) { return post(t, cc, "/nope", coapx.AppJSON, []byte(`{}`)) },
			codes.NotFound, ""},
		{"path prefix", func() (codes.Code, []byte) { return get(t, cc, "/aminfo/x") }, codes.NotFound, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := c.do()
			if code != c.code || string(body) != c.text {
				t.Errorf("= %v %q, want %v %q", code, body, c.code, c.text)
			}
		})
	}
}

// The gateway registers itself, with thing type gateway, on a tree that
// asks for registration; a thing then registers through it with a Block1
// upload (T16: its registration body is over 1 KiB).
func TestGatewayRegistersItself(t *testing.T) {
	e := newEnv(t)
	key := newKey(t)
	logs := newLogSink()
	g := startGateway(t, &gateway.Server{
		AM:           &amclient.Client{URL: e.url, Realm: "/", Tree: "auth-reg-tree"},
		ID:           "dynamic-gateway",
		Key:          key,
		Certificates: e.ca.Issue(key, "dynamic-gateway"),
		Logger:       slog_(logs),
	}, logs)
	if got := e.admin.ReadIdentity("dynamic-gateway")["thingType"]; !strings.Contains(jsonString(got), "gateway") {
		t.Errorf("thingType = %v, want gateway", got)
	}

	thingKey := newKey(t)
	cc := dial(t, g.addr)
	kid, _ := callback.Thumbprint(thingKey.Public())
	tok, largest := authenticateSized(t, cc,
		callback.AuthenticateHandler{Audience: "/", ThingID: "dynamic-thing", Key: thingKey},
		callback.RegisterHandler{Audience: "/", ThingID: "dynamic-thing", ThingType: "device", KeyID: kid, Key: thingKey,
			Certificates: e.ca.Issue(thingKey, "dynamic-thing")})
	if tok == "" {
		t.Fatal("no token")
	}
	if largest <= 1024 {
		t.Errorf("largest /authenticate body %d bytes: the test no longer exercises a Block1 upload", largest)
	}
	if got := e.admin.ReadIdentity("dynamic-thing")["thingType"]; !strings.Contains(jsonString(got), "device") {
		t.Errorf("thing thingType = %v", got)
	}
}

// An AM outage is 5.03 (refused) at once, not 4.01; introspection falls
// back to a local check of the JWT; when AM listens again on the same
// address, the gateway recovers with no restart.
func TestAMOutageAndRecovery(t *testing.T) {
	e := newEnv(t)
	g := e.gateway(func(s *gateway.Server) { s.Timeout = 2 * time.Second })
	key := newKey(t)
	e.admin.Identity("outage-thing", "device", key, nil)
	cc := dial(t, g.addr)
	tok := authenticate(t, cc, callback.AuthenticateHandler{Audience: "/", ThingID: "outage-thing", Key: key})
	info := aminfo(t, cc)
	p := &pop{key: key, token: tok}
	_, body := post(t, cc, coapx.PathAccessToken, coapx.AppJOSE, p.sign(t, info.AccessTokenURL, info.ThingsVersion, map[string]any{"scope": []string{"publish"}}))
	var at amclient.TokenResponse
	if err := json.Unmarshal(body, &at); err != nil || at.AccessToken == "" {
		t.Fatalf("token %s", body)
	}

	e.stopAM()
	start := time.Now()
	code, body := post(t, cc, coapx.PathAccessToken, coapx.AppJOSE, p.sign(t, info.AccessTokenURL, info.ThingsVersion, nil))
	if took := time.Since(start); code != codes.ServiceUnavailable || string(body) != "AM unavailable" || took > 2*time.Second {
		t.Errorf("AM down: %v %q after %v, want 5.03 \"AM unavailable\" within the 2s timeout", code, body, took)
	}
	code, _ = post(t, cc, coapx.PathAuthenticate, coapx.AppJSON, []byte(`{}`))
	if code != codes.ServiceUnavailable {
		t.Errorf("/authenticate with AM down = %v, want 5.03", code)
	}
	// Local introspection with the JWK set fetched at start-up.
	code, body = post(t, cc, coapx.PathIntrospect, coapx.AppJOSE, p.sign(t, info.IntrospectURL, info.ThingsVersion, map[string]any{"token": at.AccessToken}))
	var in map[string]any
	json.Unmarshal(body, &in)
	if code != codes.Changed || in["active"] != true || in["scope"] == nil {
		t.Errorf("local introspection = %v %s", code, body)
	}
	if _, ok := in["scope"].(string); !ok {
		t.Errorf("scope = %#v, want a space-separated string", in["scope"])
	}
	code, body = post(t, cc, coapx.PathIntrospect, coapx.AppJOSE, p.sign(t, info.IntrospectURL, info.ThingsVersion, map[string]any{"token": "opaque"}))
	if code != codes.ServiceUnavailable {
		t.Errorf("opaque token with AM down = %v %s, want 5.03", code, body)
	}

	e.startAM()
	code, body = post(t, cc, coapx.PathAccessToken, coapx.AppJOSE, p.sign(t, info.AccessTokenURL, info.ThingsVersion, map[string]any{"scope": []string{"publish"}}))
	if code != codes.Changed {
		t.Errorf("after AM came back: %v %s", code, body)
	}
}

// An AM slower than Timeout is 5.04.
func TestAMTimeout(t *testing.T) {
	e := newEnv(t)
	g := e.gateway(func(s *gateway.Server) { s.Timeout = 500 * time.Millisecond })
	key := newKey(t)
	e.admin.Identity("slow-thing", "device", key, nil)
	cc := dial(t, g.addr)
	tok := authenticate(t, cc, callback.AuthenticateHandler{Audience: "/", ThingID: "slow-thing", Key: key})
	info := aminfo(t, cc)
	p := &pop{key: key, token: tok}
	e.rec.delay.Store(int64(3 * time.Second))
	defer e.rec.delay.Store(0)
	start := time.Now()
	code, body := post(t, cc, coapx.PathAccessToken, coapx.AppJOSE, p.sign(t, info.AccessTokenURL, info.ThingsVersion, nil))
	if took := time.Since(start); code != codes.GatewayTimeout || string(body) != "AM did not answer in time" || took > 2*time.Second {
		t.Errorf("slow AM: %v %q after %v, want 5.04", code, body, took)
	}
}

// T6, T15: an iot-edge thing asks for blocks 1… of a large POST response
// without Content-Format. The handler runs once and the body is whole.
// Without the gateway's hook, go-coap runs the handler again.
func TestBlock2ContinuationWithoutContentFormat(t *testing.T) {
	for _, restore := range []bool{true, false} {
		name := "restored"
		if !restore {
			name = "hook off"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			g := e.gateway()
			g.s.ForTest().RestoreContentFormat(restore)
			key := newKey(t)
			e.admin.Identity("old-thing", "device", key, nil)
			am := &amclient.Client{URL: e.url, Realm: "/"}
			sess, err := am.Authenticate(context.Background(), "auth-tree", callback.AuthenticateHandler{Audience: "/", ThingID: "old-thing", Key: key})
			if err != nil {
				t.Fatal(err)
			}
			info := callback.NewAMInfo(e.url, "/")
			p := &pop{key: key, token: sess.Token}
			body := p.sign(t, info.AccessTokenURL, info.ThingsVersion, map[string]any{"scope": []string{"publish", "subscribe"}})

			rc := dialRaw(t, g.addr)
			token := []byte{1, 2, 3, 4, 5, 6, 7, 8}
			// Like iot-edge: Block1(NUM 0, M 0, SZX 6) and Size1 on every POST.
			resp := rc.exchange(message.Message{Token: token, Code: codes.POST, Payload: body,
				Options: opts(message.URIPath, "accesstoken", message.ContentFormat, uint32(coapx.AppJOSE),
					message.Block1, uint32(0x06), message.Size1, uint32(len(body)))})
			if resp.Code != codes.Changed {
				t.Fatalf("block 0: %v %s", resp.Code, resp.Payload)
			}
			full := append([]byte(nil), resp.Payload...)
			b2, ok := optUint(resp, message.Block2)
			if !ok {
				t.Fatalf("the response (%d bytes) is not block-wise; the test needs ≥ 1024 bytes", len(resp.Payload))
			}
			for num := int64(1); ; num++ {
				_, _, more, _ := blockwise.DecodeBlockOption(b2)
				if !more {
					break
				}
				v, _ := blockwise.EncodeBlockOption(blockwise.SZX1024, num, more)
				resp = rc.exchange(message.Message{Token: token, Code: codes.POST,
					Options: opts(message.URIPath, "accesstoken", message.Block2, v)})
				if !restore {
					break // the block came from a second run of the handler
				}
				if resp.Code != codes.Changed {
					t.Fatalf("block %d: %v %s", num, resp.Code, resp.Payload)
				}
				full = append(full, resp.Payload...)
				if b2, ok = optUint(resp, message.Block2); !ok {
					t.Fatalf("block %d has no Block2", num)
				}
			}
			runs := g.logs.requests(coapx.PathAccessToken)
			if !restore {
				// The second run's log line follows its answer.
				if !proctest.Eventually(10*time.Second, func() bool { return g.logs.requests(coapx.PathAccessToken) >= 2 }) {
					t.Errorf("without the hook the handler ran %d times; the test no longer shows trap T6", g.logs.requests(coapx.PathAccessToken))
				}
				return
			}
			if runs != 1 {
				t.Errorf("handler ran %d times, want 1", runs)
			}
			var at amclient.TokenResponse
			if err := json.Unmarshal(full, &at); err != nil || at.AccessToken == "" {
				t.Fatalf("assembled body (%d bytes) is not one token response: %v", len(full), err)
			}
			if len(full) < 1024 {
				t.Errorf("response is %d bytes", len(full))
			}
		})
	}
}

// T3: a thing must present a certificate.
func TestClientCertificateRequired(t *testing.T) {
	e := newEnv(t)
	g := e.gateway()
	ua, _ := netResolve(g.addr)
	c, err := piondtls.DialWithOptions("udp4", ua, piondtls.WithInsecureSkipVerify(true),
		piondtls.WithExtendedMasterSecret(piondtls.RequireExtendedMasterSecret))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.HandshakeContext(ctx); err == nil {
		t.Fatal("handshake without a client certificate succeeded")
	}
}

// T5: a session idle for longer than go-coap's default of 16 s still
// works (iot-edge things never re-dial); one idle for longer than
// IdleTimeout (an hour by default) is closed. The server's clock moves on
// instead of the test waiting.
func TestIdleSessionSurvives(t *testing.T) {
	e := newEnv(t)
	var c clock
	g := e.gateway(func(s *gateway.Server) { s.Time = c.now })
	rc := dialRaw(t, g.addr)
	get := message.Message{Code: codes.GET, Token: []byte{9, 9}, Options: opts(message.URIPath, "aminfo")}
	if resp := rc.exchange(get); resp.Code != codes.Content {
		t.Fatalf("/aminfo = %v", resp.Code)
	}
	c.advance(20 * time.Second)
	g.s.ForTest().CheckExpiry()
	if n := g.s.ForTest().Sessions(); n != 1 {
		t.Fatalf("sessions after 20 s idle = %d, want 1", n)
	}
	if resp := rc.exchange(get); resp.Code != codes.Content {
		t.Fatalf("after 20 s idle: %v", resp.Code)
	}
	c.advance(gateway.DefaultIdleTimeout + time.Second)
	g.s.ForTest().CheckExpiry()
	waitFor(t, 10*time.Second, func() bool { return g.s.ForTest().Sessions() == 0 })
}

// A short IdleTimeout does close idle sessions.
func TestIdleTimeoutCloses(t *testing.T) {
	e := newEnv(t)
	var c clock
	g := e.gateway(func(s *gateway.Server) { s.IdleTimeout = time.Second; s.Time = c.now })
	rc := dialRaw(t, g.addr)
	rc.exchange(message.Message{Code: codes.GET, Token: []byte{1}, Options: opts(message.URIPath, "aminfo")})
	c.advance(2 * time.Second)
	g.s.ForTest().CheckExpiry()
	waitFor(t, 10*time.Second, func() bool { return g.s.ForTest().Sessions() == 0 })
}

// Handshakes beyond MaxSessions are refused; a slot frees when a session ends.
func TestMaxSessions(t *testing.T) {
	e := newEnv(t)
	g := e.gateway(func(s *gateway.Server) { s.MaxSessions = 2; s.IdleTimeout = 2 * time.Second })
	a := dialRaw(t, g.addr)
	dialRaw(t, g.addr)
	if n := g.s.ForTest().Sessions(); n != 2 {
		t.Fatalf("sessions = %d", n)
	}
	ua, _ := netResolve(g.addr)
	c, err := piondtls.DialWithOptions("udp4", ua, clientOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err = c.HandshakeContext(ctx)
	cancel()
	c.Close()
	if err == nil {
		t.Fatal("a third session was accepted")
	}
	a.c.Close()
	// The closed session (close_notify, or at worst the idle timeout)
	// frees its slot.
	waitFor(t, 15*time.Second, func() bool { return g.s.ForTest().Sessions() < 2 })
	dialRaw(t, g.addr)
}

// Shutdown logs the gateway's session out of AM (iot-edge leaked it),
// returns, and Serve returns ErrServerClosed; Close is idempotent; a
// closed Server does not serve again.
func TestShutdown(t *testing.T) {
	e := newEnv(t)
	key := newKey(t)
	e.admin.Identity("shutdown-gateway", "gateway", key, nil)
	s := &gateway.Server{AM: &amclient.Client{URL: e.url, Realm: "/", Tree: "auth-tree"}, ID: "shutdown-gateway", Key: key}
	l, err := s.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	waitFor(t, 10*time.Second, func() bool { return s.Addr() != nil && e.rec.count("/json/authenticate") > 0 })
	cc := dial(t, l.Addr().String())
	aminfo(t, cc) // serving

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := <-errc; !errors.Is(err, gateway.ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	var logout *amRequest
	for _, r := range e.rec.requests() {
		if strings.Contains(r.URL, "/json/sessions?_action=logout") {
			logout = &r
		}
	}
	if logout == nil || logout.Status != 200 {
		t.Errorf("the gateway's session was not logged out: %+v", logout)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if err := s.ListenAndServe("127.0.0.1:0"); !errors.Is(err, gateway.ErrServerClosed) {
		t.Errorf("ListenAndServe after Shutdown = %v", err)
	}
}

// Close during the start-up authentication ends Serve with ErrServerClosed.
func TestCloseWhileAuthenticating(t *testing.T) {
	e := newEnv(t)
	e.stopAM()
	s := &gateway.Server{AM: &amclient.Client{URL: e.url, Realm: "/", Tree: "auth-tree"}, ID: "x", Key: newKey(t)}
	err := s.ListenAndServe("127.0.0.1:0")
	if err == nil || errors.Is(err, gateway.ErrServerClosed) {
		t.Fatalf("ListenAndServe with AM down = %v, want a start-up error", err)
	}
	// An AM that accepts connections and never answers.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	s2 := &gateway.Server{AM: &amclient.Client{URL: "http://" + hang.Addr().String() + "/openam", Realm: "/", Tree: "auth-tree"},
		ID: "x", Key: newKey(t), Timeout: 30 * time.Second}
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := hang.Accept(); err == nil {
			accepted <- c
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- s2.ListenAndServe("127.0.0.1:0") }()
	// Close while the gateway waits for AM's answer.
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway did not connect to AM")
	}
	s2.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, gateway.ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
}

// 20 things handshake at once and are all served.
func TestConcurrentHandshakes(t *testing.T) {
	e := newEnv(t)
	g := e.gateway()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ua, _ := netResolve(g.addr)
			c, err := piondtls.DialWithOptions("udp4", ua, clientOptions(t)...)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := c.HandshakeContext(ctx); err != nil {
				errs <- err
				return
			}
			rc := &rawConn{t: t, c: c, mid: uint16(100 * (i + 1))}
			if resp := rc.exchange(message.Message{Code: codes.GET, Token: []byte{byte(i)}, Options: opts(message.URIPath, "aminfo")}); resp.Code != codes.Content {
				errs <- errors.New(resp.Code.String())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestConfigurationErrors(t *testing.T) {
	key := newKey(t)
	am := &amclient.Client{URL: "http://127.0.0.1:1/openam", Tree: "auth-tree"}
	for name, s := range map[string]*gateway.Server{
		"no AM":   {ID: "g", Key: key},
		"no URL":  {AM: &amclient.Client{Tree: "t"}, ID: "g", Key: key},
		"no tree": {AM: &amclient.Client{URL: am.URL}, ID: "g", Key: key},
		"no ID":   {AM: am, Key: key},
		"no key":  {AM: am, ID: "g"},
	} {
		if err := s.ListenAndServe("127.0.0.1:0"); err == nil || errors.Is(err, gateway.ErrServerClosed) {
			t.Errorf("%s: %v", name, err)
		}
		s.Close()
	}
}
