//go:build realam

package realam_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/thing"
)

// The AM under test, from the environment:
//
//	THINGWAY_AM_URL        AM's deployment URL, e.g. http://am.localtest.me:8080/openam (required)
//	THINGWAY_AM_ADMIN      the administrator's user name (default amAdmin)
//	THINGWAY_AM_PASSWORD   the administrator's password (required)
//	THINGWAY_AM_REALM      the realm configured as the guide says (default /)
//
// AM must be configured as the IoT evaluation guide's "Install and
// configure AM" says: the IoT Service with its OAuth 2.0 client
// (forgerock-iot-oauth2-client, scopes publish and subscribe) and JWT
// issuer, and the tree auth-tree (an Authenticate Thing node with default
// settings). The tests register the identities they use, with keys of
// their own, as the guide's "Register identities" does over REST, and
// delete them when done.
type realAM struct {
	url, realm, admin, password string
}

func fromEnv(t *testing.T) realAM {
	t.Helper()
	a := realAM{
		url:      os.Getenv("THINGWAY_AM_URL"),
		admin:    os.Getenv("THINGWAY_AM_ADMIN"),
		password: os.Getenv("THINGWAY_AM_PASSWORD"),
		realm:    os.Getenv("THINGWAY_AM_REALM"),
	}
	if a.url == "" || a.password == "" {
		t.Fatal("the realam tests need THINGWAY_AM_URL and THINGWAY_AM_PASSWORD (and THINGWAY_AM_ADMIN if not amAdmin): see README, \"Checked against real AM\"")
	}
	if a.admin == "" {
		a.admin = "amAdmin"
	}
	if a.realm == "" {
		a.realm = "/"
	}
	a.url = strings.TrimRight(a.url, "/")
	return a
}

// timeout bounds each test's exchanges with AM.
const timeout = time.Minute

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// client is an amclient.Client for the realm, running tree.
func (a realAM) client(tree string) *amclient.Client {
	return &amclient.Client{URL: a.url, Realm: a.realm, Tree: tree}
}

// adminToken signs the administrator in (zero-page login, as the guide's
// curl does) and returns the SSO token and the cookie name that carries it.
func (a realAM) adminToken(ctx context.Context, t *testing.T) (token, cookie string) {
	t.Helper()
	cookie, err := a.client("").CookieName(ctx)
	if err != nil {
		t.Fatalf("cookie name: %v", err)
	}
	status, body := a.do(ctx, t, "POST", a.url+"/json/authenticate", nil, map[string]string{
		"Content-Type":       "application/json",
		"X-OpenAM-Username":  a.admin,
		"X-OpenAM-Password":  a.password,
		"Accept-API-Version": "resource=2.0, protocol=1.0",
	})
	var v struct {
		TokenID string `json:"tokenId"`
	}
	if err := json.Unmarshal(body, &v); status != 200 || err != nil || v.TokenID == "" {
		t.Fatalf("administrator sign-in: %d (body not shown: it may hold a token)", status)
	}
	return v.TokenID, cookie
}

// usersURL is the CREST users endpoint of the realm.
func (a realAM) usersURL() string {
	u := a.url + "/json/realms/root"
	for _, r := range strings.Split(strings.Trim(a.realm, "/"), "/") {
		if r != "" {
			u += "/realms/" + url.PathEscape(r)
		}
	}
	return u + "/users/"
}

// register creates an identity id of thingType whose thingKeys hold key's
// public part, as the guide's "Register identities" does, and deletes it
// when the test ends.
func (a realAM) register(ctx context.Context, t *testing.T, id, thingType string, key crypto.Signer) {
	t.Helper()
	kid, err := callback.Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	password := make([]byte, 16)
	rand.Read(password)
	body, _ := json.Marshal(map[string]any{"userPassword": hex.EncodeToString(password) + "Aa1!", "thingType": thingType, "thingKeys": string(set)})
	token, cookie := a.adminToken(ctx, t)
	headers := map[string]string{
		"Content-Type":       "application/json",
		"Accept-API-Version": "resource=4.0, protocol=2.1",
		"Cookie":             cookie + "=" + token,
		"If-None-Match":      "*",
	}
	if status, b := a.do(ctx, t, "PUT", a.usersURL()+url.PathEscape(id), body, headers); status != 201 {
		t.Fatalf("register %s: %d %s", id, status, b)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		delete(headers, "If-None-Match")
		if status, b := a.do(ctx, t, "DELETE", a.usersURL()+url.PathEscape(id), nil, headers); status != 200 {
			t.Errorf("delete %s: %d %s", id, status, b)
		}
	})
}

func (a realAM) do(ctx context.Context, t *testing.T, method, u string, body []byte, headers map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return resp.StatusCode, b
}

// newThing is a new P-256 key and an ID no other run uses.
func newThing(t *testing.T, prefix string) (string, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 6)
	rand.Read(suffix)
	return prefix + "-" + hex.EncodeToString(suffix), key
}

// flows runs what the guide's manual-registration example does, and the
// SDK's other requests of a thing's session, against conn: authenticate
// with proof of possession, an access token for publish, its
// introspection and refresh, the thing's attributes, a scope the client
// lacks, a session check, and logout.
func flows(ctx context.Context, t *testing.T, conn thing.Connector, id string, key crypto.Signer) {
	t.Helper()
	th, err := thing.New(ctx, thing.Config{Connector: conn, ID: id, Key: key})
	if err != nil {
		t.Fatalf("authenticate %s: %v", id, err)
	}
	tok, err := th.AccessToken(ctx, "publish")
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	if !slices.Equal(tok.Scope, []string{"publish"}) || tok.AccessToken == "" || tok.ExpiresIn <= 0 {
		t.Errorf("access token: scope %v, lifetime %d s, token given: %v", tok.Scope, tok.ExpiresIn, tok.AccessToken != "")
	}
	in, err := th.IntrospectAccessToken(ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("introspection: %v", err)
	}
	if !in.Active || !slices.Equal(in.Scope, []string{"publish"}) || in.Claims["subname"] != id {
		t.Errorf("introspection: active %v, scope %v, subname %v", in.Active, in.Scope, in.Claims["subname"])
	}
	if tok.RefreshToken != "" {
		ref, err := th.RefreshAccessToken(ctx, tok.RefreshToken, "publish")
		if err != nil || ref.AccessToken == "" || ref.AccessToken == tok.AccessToken {
			t.Errorf("refresh: new token given: %v, %v", err == nil && ref.AccessToken != tok.AccessToken, err)
		}
	}
	attrs, err := th.Attributes(ctx, "thingKeys")
	if err != nil {
		t.Fatalf("attributes: %v", err)
	}
	if attrs.ID != id || !strings.Contains(attrs.First("thingKeys"), `"keys"`) {
		t.Errorf("attributes: ID %q, thingKeys %q", attrs.ID, attrs.First("thingKeys"))
	}
	if _, err := th.AccessToken(ctx, "no-such-scope"); !refused(err, "invalid_scope") {
		t.Errorf("a scope the client lacks: %v, want invalid_scope", err)
	}
	// AM 7.4 cannot validate a restricted (proof-of-possession) session
	// and answers that it is not valid (OPENAM-19492); the local AM
	// answers alike. An AM that fixed it would answer true.
	if ok, err := th.SessionValid(ctx); err != nil {
		t.Errorf("session validation: %v", err)
	} else {
		t.Logf("session valid: %v (AM 7.4: false, OPENAM-19492)", ok)
	}
	if err := th.Logout(ctx); err != nil {
		t.Errorf("logout: %v", err)
	}
}

// refused reports whether err is AM's refusal with the OAuth 2.0 error code.
func refused(err error, code string) bool {
	var te *thing.Error
	return errors.As(err, &te) && te.OAuthError == code
}

// The guide's manual registration and the SDK's requests, over HTTP.
func TestDirect(t *testing.T) {
	a := fromEnv(t)
	ctx := testContext(t)
	id, key := newThing(t, "thingway-realam-thing")
	a.register(ctx, t, id, "device", key)
	flows(ctx, t, a.client("auth-tree"), id, key)

	t.Run("unknown thing", func(t *testing.T) {
		other, otherKey := newThing(t, "thingway-realam-unknown")
		_, err := thing.New(ctx, thing.Config{Connector: a.client("auth-tree"), ID: other, Key: otherKey})
		var te *thing.Error
		if !errors.As(err, &te) || te.Op != "authentication" || te.Status != 401 {
			t.Errorf("an unregistered thing: %v, want AM's 401 refusal", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		_, wrongKey := newThing(t, "unused")
		_, err := thing.New(ctx, thing.Config{Connector: a.client("auth-tree"), ID: id, Key: wrongKey})
		var te *thing.Error
		if !errors.As(err, &te) || te.Op != "authentication" || te.Status != 401 {
			t.Errorf("a thing signing with a key it did not register: %v, want AM's 401 refusal", err)
		}
	})
}

// The guide's "Connect a thing to the gateway": a gateway registered by
// hand (thingType gateway) authenticates itself with AM, and a thing
// connects to it over CoAP/DTLS and runs the same requests through it.
func TestThroughGateway(t *testing.T) {
	a := fromEnv(t)
	ctx := testContext(t)
	gwID, gwKey := newThing(t, "thingway-realam-gateway")
	a.register(ctx, t, gwID, "gateway", gwKey)
	id, key := newThing(t, "thingway-realam-thing")
	a.register(ctx, t, id, "device", key)

	gw := &gateway.Server{AM: a.client("auth-tree"), ID: gwID, Key: gwKey}
	l, err := gw.Listen("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, gateway.ErrServerClosed) {
			t.Errorf("gateway: %v", err)
		}
	})

	conn, err := thing.DialGateway(ctx, thing.GatewayConfig{
		Address: "coaps://" + l.Addr().String(),
		Trust:   coapx.Trust{InsecureAnyGateway: true}, // the gateway's certificate is a throw-away one
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	flows(ctx, t, conn, id, key)
}
