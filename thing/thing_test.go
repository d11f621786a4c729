package thing_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/internal/amadmin"
	"github.com/thingway/thingway/thing"
)

// env is a local AM with an administrator session.
type env struct {
	t     *testing.T
	srv   *amtest.Server
	admin *amadmin.Client
	ca    *amadmin.CA
	pub   *amadmin.Publisher // the software publisher
	now   func() time.Time
	clock *clock

	gwKey  crypto.Signer   // the test gateway's identity key
	gwCert tls.Certificate // and its DTLS certificate
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// newEnv starts a local AM with a run-time CA and software publisher, a
// device poll interval of one second, and configure's changes.
func newEnv(t *testing.T, configure ...func(*amtest.Config)) *env {
	t.Helper()
	ca := amadmin.NewCA(t, "Test CA")
	pub := amadmin.NewPublisher(t, "") // its key id: the key's thumbprint
	pub.SoftwareID = "thingway-test"
	cfg := amtest.DefaultConfig()
	cfg.CertVerificationCAs = amtest.Certificates{ca.Cert}
	root := cfg.Realms["/"]
	root.SoftwarePublishers["iot-software-publisher"].JWKSet = pub.JWKSet()
	root.OAuth2.Device.DevicePollInterval = 1
	root.OAuth2Clients["forgerock-iot-oauth2-client"].Secret = "client-secret"
	for _, f := range configure {
		f(cfg)
	}
	e := &env{t: t, ca: ca, pub: pub, clock: &clock{t: time.Now()}}
	e.now = e.clock.Now
	srv := amtest.NewUnstartedServer()
	srv.Config = cfg
	srv.Time = e.now
	srv.Start()
	t.Cleanup(srv.Close)
	e.srv = srv
	e.admin = amadmin.Admin(t, srv.URL, srv.Client())
	return e
}

// manualThing creates an identity holding key's public part.
func (e *env) manualThing(id string, key crypto.Signer) {
	e.t.Helper()
	e.admin.Identity(id, "device", key, nil)
}

func (e *env) connector(tree string) *amclient.Client {
	return &amclient.Client{URL: e.srv.URL, Realm: "/", Tree: tree, HTTPClient: e.srv.Client()}
}

func ecKey(t *testing.T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestManualThingLifecycle(t *testing.T) {
	keys := map[string]func() crypto.Signer{
		"ES256": func() crypto.Signer { return ecKey(t) },
		"EdDSA": func() crypto.Signer { _, k, _ := ed25519.GenerateKey(rand.Reader); return k },
		"PS256": func() crypto.Signer { k, _ := rsa.GenerateKey(rand.Reader, 2048); return k },
	}
	for name, mk := range keys {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			key := mk()
			e.manualThing("manual-thing", key)
			th, err := thing.New(ctx, thing.Config{Connector: e.connector("auth-tree"), ID: "manual-thing", Key: key})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := th.AccessToken(ctx, "publish")
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken == "" || tok.ExpiresIn != 3599 || strings.Join(tok.Scope, " ") != "publish" || tok.RefreshToken == "" {
				t.Fatalf("token = %+v", tok)
			}
			in, err := th.IntrospectAccessToken(ctx, tok.AccessToken)
			if err != nil || !in.Active || in.Local || in.Claims["subname"] != "manual-thing" {
				t.Fatalf("introspection = %+v, %v", in, err)
			}
			ref, err := th.RefreshAccessToken(ctx, tok.RefreshToken, "publish")
			if err != nil || ref.AccessToken == tok.AccessToken {
				t.Fatalf("refresh = %+v, %v", ref, err)
			}
			attrs, err := th.Attributes(ctx)
			if err != nil || attrs.ID != "manual-thing" {
				t.Fatalf("attributes = %+v, %v", attrs, err)
			}
			if _, has := attrs.Values["thingConfig"]; !has {
				t.Errorf("attributes lack the readable thingConfig: %s", attrs.Raw)
			}
			// A restricted session cannot validate itself in AM 7.4.
			if ok, err := th.SessionValid(ctx); err != nil || ok {
				t.Errorf("SessionValid = %v, %v", ok, err)
			}
			if err := th.Logout(ctx); err != nil {
				t.Fatal(err)
			}
			// After logout the next request authenticates again.
			if _, err := th.AccessToken(ctx, "subscribe"); err != nil {
				t.Fatalf("after logout: %v", err)
			}
		})
	}
}

func TestAuthenticationFailures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := ecKey(t)
	e.manualThing("known-thing", key)
	tests := []struct {
		name string
		cfg  thing.Config
	}{
		{"wrong key", thing.Config{Connector: e.connector("auth-tree"), ID: "known-thing", Key: ecKey(t)}},
		{"unknown identity on a tree without registration", thing.Config{Connector: e.connector("auth-tree"), ID: "nobody", Key: key}},
		{"wrong audience", thing.Config{Connector: e.connector("auth-tree"), ID: "known-thing", Key: key, Audience: "/elsewhere"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := thing.New(ctx, tt.cfg)
			var te *thing.Error
			if !errors.As(err, &te) || te.Status != 401 {
				t.Fatalf("err = %v, want a 401 *thing.Error", err)
			}
		})
	}
	t.Run("unknown tree", func(t *testing.T) {
		_, err := thing.New(ctx, thing.Config{Connector: e.connector("no-such-tree"), ID: "known-thing", Key: key})
		var te *thing.Error
		if !errors.As(err, &te) || te.Status != 400 {
			t.Fatalf("err = %v, want a 400 *thing.Error", err)
		}
	})
	t.Run("no key", func(t *testing.T) {
		if _, err := thing.New(ctx, thing.Config{Connector: e.connector("auth-tree"), ID: "known-thing"}); !errors.Is(err, thing.ErrNoKey) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("AM unreachable", func(t *testing.T) {
		c := &amclient.Client{URL: "http://127.0.0.1:1/openam", Tree: "auth-tree"}
		_, err := thing.New(ctx, thing.Config{Connector: c, ID: "known-thing", Key: key})
		var te *thing.Error
		if err == nil || errors.As(err, &te) || !strings.Contains(err.Error(), "cannot reach AM") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := thing.New(cctx, thing.Config{Connector: e.connector("auth-tree"), ID: "known-thing", Key: key}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unsupported scope", func(t *testing.T) {
		th, err := thing.New(ctx, thing.Config{Connector: e.connector("auth-tree"), ID: "known-thing", Key: key})
		if err != nil {
			t.Fatal(err)
		}
		_, err = th.AccessToken(ctx, "delete")
		var te *thing.Error
		if !errors.As(err, &te) || te.Status != 400 || te.OAuthError != "invalid_scope" || !strings.Contains(te.Message, "Unknown/invalid scope(s)") {
			t.Fatalf("err = %v (%+v)", err, te)
		}
	})
}

// An unknown thing on auth-reg-tree is asked to register, registers with
// its certificate, and is authenticated.
func TestRegistrationWithCertificate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := ecKey(t)
	th, err := thing.New(ctx, thing.Config{Connector: e.connector("auth-reg-tree"), ID: "dynamic-thing", Key: key,
		Registration: &thing.Registration{Certificates: e.ca.Issue(key, "dynamic-thing"),
			Claims: func() map[string]any { return map[string]any{"thingProperties": `{"site":"b1"}`} }}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := th.AccessToken(ctx, "publish"); err != nil {
		t.Fatal(err)
	}
	// Now known: plain authentication works with the same key.
	if _, err := thing.New(ctx, thing.Config{Connector: e.connector("auth-tree"), ID: "dynamic-thing", Key: key}); err != nil {
		t.Fatalf("authentication after registration: %v", err)
	}
	// A certificate for another name is refused.
	other := ecKey(t)
	_, err = thing.New(ctx, thing.Config{Connector: e.connector("auth-reg-tree"), ID: "impostor", Key: other,
		Registration: &thing.Registration{Certificates: e.ca.Issue(other, "someone-else")}})
	var te *thing.Error
	if !errors.As(err, &te) || te.Status != 401 {
		t.Fatalf("impostor: %v", err)
	}
}

func TestRegistrationMethods(t *testing.T) {
	setMethod := func(method string) func(*amtest.Config) {
		return func(cfg *amtest.Config) {
			for _, n := range cfg.Realms["/"].Nodes {
				if n.Registration != nil {
					n.Registration.JWTRegistrationMethod = method
				}
			}
		}
	}
	ctx := context.Background()
	t.Run("proof of possession", func(t *testing.T) {
		e := newEnv(t, setMethod(amtest.RegPoPWithoutTrust))
		key := ecKey(t)
		th, err := thing.New(ctx, thing.Config{Connector: e.connector("auth-reg-tree"), ID: "pop-thing", Key: key, Registration: &thing.Registration{}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := th.AccessToken(ctx, "publish"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("proof of possession and software statement", func(t *testing.T) {
		e := newEnv(t, setMethod(amtest.RegPoPWithSoftwareStatement))
		key := ecKey(t)
		th, err := thing.New(ctx, thing.Config{Connector: e.connector("auth-reg-tree"), ID: "pop-sw-thing", Key: key,
			Registration: &thing.Registration{SoftwareStatement: e.pub.Statement(key)}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := th.AccessToken(ctx, "publish"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("software statement, then client assertion", func(t *testing.T) {
		e := newEnv(t, setMethod(amtest.RegSoftwareStatementOnly), func(cfg *amtest.Config) {
			r := cfg.Realms["/"]
			for id, n := range r.Nodes {
				if n.Registration != nil {
					n.Registration.DefaultAttributeValues = map[string]string{"thingType": "device"}
				}
				if n.Authentication != nil && r.Trees["auth-tree"].Nodes[id] != nil {
					n.Authentication.JWTAuthenticationMethod = amtest.AuthClientAssertion
					n.Authentication.IssueRestrictedToken = false
				}
			}
		})
		key := ecKey(t)
		reg, err := thing.New(ctx, thing.Config{Connector: e.connector("reg-tree"), Registration: &thing.Registration{SoftwareStatement: e.pub.Statement(key)}})
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := reg.Attributes(ctx)
		if err != nil || len(attrs.ID) != 36 || reg.ID() != attrs.ID {
			t.Fatalf("attributes = %+v, %v (ID %q)", attrs, err, reg.ID())
		}
		if err := reg.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		th, err := thing.New(ctx, thing.Config{Connector: e.connector("auth-tree"), ID: attrs.ID, Key: key,
			Audience: e.srv.URL + "/oauth2/access_token"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := th.AccessToken(ctx, "publish"); err != nil {
			t.Fatal(err)
		}
	})
}

// An expired session is renewed once, transparently.
func TestExpiredSessionRenewed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := ecKey(t)
	e.manualThing("sleepy-thing", key)
	th, err := thing.New(ctx, thing.Config{Connector: e.connector("auth-tree"), ID: "sleepy-thing", Key: key, Time: e.now})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(3 * time.Hour) // beyond the session's maximum time
	tok, err := th.AccessToken(ctx, "publish")
	if err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if tok.AccessToken == "" {
		t.Fatal("no token")
	}
}

func TestRevokedTokenIsInactive(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := ecKey(t)
	e.manualThing("revoking-thing", key)
	th, err := thing.New(ctx, thing.Config{Connector: e.connector("auth-tree"), ID: "revoking-thing", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := th.AccessToken(ctx, "publish")
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"token": {tok.AccessToken}}
	code, body := e.admin.Do("POST", "/oauth2/token/revoke", []byte(form.Encode()),
		"Content-Type: application/x-www-form-urlencoded", "Authorization: Basic Zm9yZ2Vyb2NrLWlvdC1vYXV0aDItY2xpZW50OmNsaWVudC1zZWNyZXQ=")
	if code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	in, err := th.IntrospectAccessToken(ctx, tok.AccessToken)
	if err != nil || in.Active {
		t.Fatalf("introspection after revocation = %+v, %v", in, err)
	}
}

// failingIntrospection is AM with its introspection out of order: the
// thing falls back to checking the token against AM's JWK set.
type failingIntrospection struct{ *amclient.Client }

func (f failingIntrospection) Send(ctx context.Context, req callback.Request) ([]byte, error) {
	if req.Op == callback.OpIntrospect {
		return nil, &amclient.Error{StatusCode: 503, Body: []byte(`{"code":503,"reason":"Service Unavailable","message":"down"}`)}
	}
	return f.Client.Send(ctx, req)
}

func TestLocalIntrospection(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := ecKey(t)
	e.manualThing("offline-thing", key)
	th, err := thing.New(ctx, thing.Config{Connector: failingIntrospection{e.connector("auth-tree")}, ID: "offline-thing", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := th.AccessToken(ctx, "publish", "subscribe")
	if err != nil {
		t.Fatal(err)
	}
	in, err := th.IntrospectAccessToken(ctx, tok.AccessToken)
	if err != nil || !in.Active || !in.Local || strings.Join(in.Scope, " ") != "publish subscribe" || in.Claims["scope"] != "publish subscribe" {
		t.Fatalf("local introspection = %+v, %v", in, err)
	}
	// A token signed by someone else is inactive.
	fake, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: ecKey(t)}, (&jose.SignerOptions{}).WithHeader("kid", "nope"))
	ft, _ := jwt.Signed(fake).Claims(map[string]any{"exp": time.Now().Add(time.Hour).Unix()}).Serialize()
	if in, err := th.IntrospectAccessToken(ctx, ft); err != nil || in.Active {
		t.Fatalf("fake token = %+v, %v", in, err)
	}
}

func TestUsernamePassword(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.admin.CreateIdentity("pw-thing", map[string]any{"userPassword": "5tr0ngG3n3r@ted", "thingType": "device"})
	th, err := thing.New(ctx, thing.Config{Connector: e.connector("ldapService"), ID: "pw-thing",
		Handlers: []callback.Handler{callback.NameHandler{Name: "pw-thing"}, callback.PasswordHandler{Password: "5tr0ngG3n3r@ted"}}})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := th.SessionValid(ctx); err != nil || !ok {
		t.Fatalf("unrestricted session valid = %v, %v", ok, err)
	}
	if _, err := th.AccessToken(ctx, "publish"); err != nil {
		t.Fatal(err)
	}
	_, err = thing.New(ctx, thing.Config{Connector: e.connector("ldapService"), ID: "pw-thing",
		Handlers: []callback.Handler{callback.NameHandler{Name: "pw-thing"}, callback.PasswordHandler{Password: "wrong"}}})
	if te := (*thing.Error)(nil); !errors.As(err, &te) || te.Status != 401 {
		t.Fatalf("wrong password: %v", err)
	}
}

// consent approves or denies a user code as bjensen.
func (e *env) consent(da *thing.DeviceAuthorization, decision string) {
	e.t.Helper()
	user := e.admin.Login("bjensen", "Ch4ng31t")
	form := url.Values{"user_code": {da.UserCode}, "decision": {decision}, "csrf": {user}}
	code, body := e.admin.DoURL("POST", da.VerificationURI, []byte(form.Encode()), "Content-Type: application/x-www-form-urlencoded",
		"Cookie: iPlanetDirectoryPro="+user)
	if code != 200 || !strings.Contains(string(body), "done: true") {
		e.t.Fatalf("consent: %d %s", code, body)
	}
}

// messageSignal is a slog.Handler whose channel seen is closed when a
// record with its message is logged.
type messageSignal struct {
	msg  string
	once *sync.Once
	seen chan struct{}
}

func newMessageSignal(msg string) messageSignal {
	return messageSignal{msg: msg, once: new(sync.Once), seen: make(chan struct{})}
}

func (h messageSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h messageSignal) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h messageSignal) WithGroup(string) slog.Handler            { return h }
func (h messageSignal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.seen) })
	}
	return nil
}

// userThing makes the user bjensen (who consents) and a thing id whose
// identity is in AM, on cfg (its connector: auth-tree over HTTP unless
// cfg names one).
func (e *env) userThing(id string, cfg thing.Config) *thing.Thing {
	e.t.Helper()
	e.admin.CreateIdentity("bjensen", map[string]any{"userPassword": "Ch4ng31t"})
	cfg.ID, cfg.Key = id, ecKey(e.t)
	e.manualThing(id, cfg.Key)
	if cfg.Connector == nil {
		cfg.Connector = e.connector("auth-tree")
	}
	th, err := thing.New(context.Background(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return th
}

func TestUserToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pending := newMessageSignal("user token pending, polling again")
	th := e.userThing("user-thing", thing.Config{Logger: slog.New(pending)})
	t.Run("allow", func(t *testing.T) {
		da, err := th.UserCode(ctx, "publish", "subscribe")
		if err != nil || da.Interval != 1 || !strings.Contains(da.VerificationURIComplete, da.UserCode) {
			t.Fatalf("user code = %+v, %v", da, err)
		}
		// The user allows while the thing polls: after its first poll
		// was answered authorization_pending.
		go func() {
			<-pending.seen
			e.consent(da, "allow")
		}()
		tok, err := th.UserToken(ctx, da)
		if err != nil || strings.Join(tok.Scope, " ") != "publish subscribe" {
			t.Fatalf("user token = %+v, %v", tok, err)
		}
		in, err := th.IntrospectAccessToken(ctx, tok.AccessToken)
		if err != nil || in.Claims["subname"] != "bjensen" {
			t.Fatalf("introspection = %+v, %v", in, err)
		}
		ref, err := th.RefreshAccessToken(ctx, tok.RefreshToken, "publish")
		if err != nil || strings.Join(ref.Scope, " ") != "publish" {
			t.Fatalf("refresh = %+v, %v", ref, err)
		}
	})
	t.Run("deny", func(t *testing.T) {
		da, err := th.UserCode(ctx, "publish")
		if err != nil {
			t.Fatal(err)
		}
		e.consent(da, "deny")
		_, err = th.UserToken(ctx, da)
		var te *thing.Error
		if !errors.As(err, &te) || te.OAuthError != "authorization_declined" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		da, err := th.UserCode(ctx, "publish")
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if _, err := th.UserToken(cctx, da); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	})
}

// Concurrent requests of one restricted thing keep their nonces in order.
func TestConcurrentRequests(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := ecKey(t)
	e.manualThing("busy-thing", key)
	th, err := thing.New(ctx, thing.Config{Connector: e.connector("auth-tree"), ID: "busy-thing", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if _, err := th.AccessToken(ctx, "publish"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func jwkJSON(t *testing.T, pub crypto.PublicKey, kid string) string {
	b, err := json.Marshal(jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lostUserToken is a connection that loses AM's answer to the first user
// token that AM issues, as a radio link that drops every copy of it
// would: AM acted on the request, the thing never learns of it.
type lostUserToken struct {
	*amclient.Client
	lost atomic.Bool
}

func (l *lostUserToken) Send(ctx context.Context, req callback.Request) ([]byte, error) {
	b, err := l.Client.Send(ctx, req)
	if err == nil && req.Op == callback.OpUserToken && l.lost.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("user token answer dropped: %w", thing.ErrNoAnswer)
	}
	return b, err
}

// A signed request whose answer was lost is sent again with a new nonce;
// when AM refuses the repeat because the first copy was acted on (a user
// code's token is issued once), the error says so and keeps AM's status.
func TestRepeatRefusedAfterLostAnswer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	conn := &lostUserToken{Client: e.connector("auth-tree")}
	th := e.userThing("lossy-user-thing", thing.Config{Connector: conn})
	da, err := th.UserCode(ctx, "publish")
	if err != nil {
		t.Fatal(err)
	}
	e.consent(da, "allow")
	_, err = th.UserToken(ctx, da)
	if !conn.lost.Load() {
		t.Fatalf("no user token was issued: %v", err)
	}
	var te *thing.Error
	if !errors.As(err, &te) || te.Status != 400 {
		t.Fatalf("user token after a lost answer: %v, want AM's 400", err)
	}
	if !strings.Contains(err.Error(), "an earlier copy may have reached AM") {
		t.Errorf("the error does not say an earlier copy may have been acted on: %v", err)
	}
}
