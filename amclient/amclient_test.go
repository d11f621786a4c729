package amclient_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/internal/amadmin"
	"github.com/thingway/thingway/internal/examplepki"
)

// start starts a local AM with cfg (nil: the evaluation guide's) and
// returns it with a client for realm.
func start(t *testing.T, cfg *amtest.Config, realm string) (*amtest.Server, *amclient.Client) {
	t.Helper()
	srv := amtest.NewUnstartedServer()
	srv.Config = cfg
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &amclient.Client{URL: srv.URL, Realm: realm, HTTPClient: srv.Client()}
}

// thing is a device with a key.
type thing struct {
	id  string
	key crypto.Signer
	kid string
}

func newKey(t testing.TB, alg jose.SignatureAlgorithm) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case jose.PS384:
		k, err = rsa.GenerateKey(rand.Reader, 3072)
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newThing(t testing.TB, id string, alg jose.SignatureAlgorithm) *thing {
	t.Helper()
	k := newKey(t, alg)
	kid, err := callback.Thumbprint(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &thing{id: id, key: k, kid: kid}
}

func (th *thing) handler(aud string) callback.AuthenticateHandler {
	return callback.AuthenticateHandler{Audience: aud, ThingID: th.id, KeyID: th.kid, Key: th.key}
}

// register creates th's identity with the evaluation guide's identity PUT
// in realm (a realm path), with extra attributes.
func register(t testing.TB, srv *amtest.Server, realm string, th *thing, extra map[string]any) {
	t.Helper()
	alg, err := callback.SigningAlgorithm(th.key)
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]any{"userPassword": "5tr0ngG3n3r@ted", "thingType": "device", "thingKeys": amadmin.KeySet(t, th.key, string(alg))}
	maps.Copy(attrs, extra)
	admin := amadmin.Admin(t, srv.URL, srv.Client())
	admin.Realm = realm
	admin.CreateIdentity(th.id, attrs)
}

func asError(t *testing.T, err error, status int) *amclient.Error {
	t.Helper()
	var e *amclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *amclient.Error", err, err)
	}
	if e.StatusCode != status {
		t.Fatalf("status %d, want %d: %v", e.StatusCode, status, err)
	}
	return e
}

// TestThingLifecycle runs what a thing does with AM, for each key type:
// PoP authentication, tokens, attributes, introspection, refresh, logout.
func TestThingLifecycle(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.PS384} {
		t.Run(string(alg), func(t *testing.T) {
			srv, c := start(t, nil, "/")
			ctx := context.Background()
			th := newThing(t, "thing-"+strings.ToLower(string(alg)), alg)
			register(t, srv, "/", th, map[string]any{"thingConfig": "host=localhost;port=80"})

			s, err := c.Authenticate(ctx, "auth-tree", th.handler("/"))
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if s.Token == "" || !sameKey(s.Key, th.key) || s.Realm != "/" {
				t.Fatalf("session %+v", s)
			}

			tok, err := c.AccessToken(ctx, s, "publish")
			if err != nil {
				t.Fatalf("AccessToken: %v", err)
			}
			if tok.AccessToken == "" || tok.RefreshToken == "" || tok.Scope != "publish" || tok.TokenType != "Bearer" || tok.ExpiresIn != 3599 {
				t.Errorf("token response %+v", tok)
			}
			var raw map[string]any
			if err := json.Unmarshal(tok.Raw, &raw); err != nil || raw["access_token"] != tok.AccessToken {
				t.Errorf("Raw %s: %v", tok.Raw, err)
			}

			attrs, err := c.Attributes(ctx, s)
			if err != nil {
				t.Fatalf("Attributes: %v", err)
			}
			if attrs["_id"] != th.id || !equalStrings(attrs["thingConfig"], "host=localhost;port=80") {
				t.Errorf("attributes %v", attrs)
			}
			attrs, err = c.Attributes(ctx, s, "thingConfig")
			if err != nil {
				t.Fatalf("Attributes(thingConfig): %v", err)
			}
			if len(attrs) != 2 || !equalStrings(attrs["thingConfig"], "host=localhost;port=80") {
				t.Errorf("filtered attributes %v", attrs)
			}

			in, err := c.IntrospectToken(ctx, s, tok.AccessToken)
			if err != nil {
				t.Fatalf("IntrospectToken: %v", err)
			}
			if in["active"] != true || in["scope"] != "publish" {
				t.Errorf("introspection %v", in)
			}
			if in, err := c.IntrospectToken(ctx, s, "not-a-token"); err != nil || in["active"] != false {
				t.Errorf("introspect fake token: %v, %v", in, err)
			}

			ref, err := c.RefreshAccessToken(ctx, s, tok.RefreshToken)
			if err != nil {
				t.Fatalf("RefreshAccessToken: %v", err)
			}
			if ref.AccessToken == "" || ref.AccessToken == tok.AccessToken || ref.Scope != "publish" {
				t.Errorf("refreshed %+v", ref)
			}

			if got := amclientNonce(s); got != 6 {
				t.Errorf("nonce after 6 signed requests = %d", got)
			}
			if err := c.Logout(ctx, s); err != nil {
				t.Fatalf("Logout: %v", err)
			}
			if ok, err := c.ValidateSession(ctx, s); ok || err != nil {
				t.Errorf("ValidateSession after logout = %v, %v", ok, err)
			}
			_, err = c.AccessToken(ctx, s, "publish")
			asError(t, err, http.StatusUnauthorized)
			if !amclient.IsUnauthorized(err) {
				t.Errorf("IsUnauthorized(%v) = false", err)
			}
		})
	}
}

func equalStrings(v any, want ...string) bool {
	l, ok := v.([]any)
	if !ok || len(l) != len(want) {
		return false
	}
	for i := range l {
		if l[i] != want[i] {
			return false
		}
	}
	return true
}

func TestAuthenticateWrongKey(t *testing.T) {
	srv, c := start(t, nil, "/")
	th := newThing(t, "wrong-key-thing", jose.ES256)
	register(t, srv, "/", th, nil)
	h := th.handler("/")
	h.Key = newKey(t, jose.ES256) // signs with another key under th's kid
	_, err := c.Authenticate(context.Background(), "auth-tree", h)
	e := asError(t, err, http.StatusUnauthorized)
	if e.Message != "Login failure" || e.Code != 401 || e.Reason != "Unauthorized" {
		t.Errorf("error %+v", e)
	}
	if !amclient.IsUnauthorized(err) {
		t.Error("IsUnauthorized = false")
	}
}

func TestAuthenticateUnhandledCallback(t *testing.T) {
	_, c := start(t, nil, "/")
	_, err := c.Authenticate(context.Background(), "auth-tree", callback.NameHandler{Name: "x"})
	if !errors.Is(err, amclient.ErrUnhandledCallback) || !strings.Contains(err.Error(), `HiddenValueCallback "jwt-pop-authentication"`) {
		t.Errorf("err = %v", err)
	}
}

func TestAuthenticateHandlerError(t *testing.T) {
	_, c := start(t, nil, "/")
	_, err := c.Authenticate(context.Background(), "auth-tree", callback.AuthenticateHandler{})
	if !errors.Is(err, callback.ErrNoKey) {
		t.Errorf("err = %v, want one wrapping callback.ErrNoKey", err)
	}
}

func TestAuthenticateUnknownTree(t *testing.T) {
	_, c := start(t, nil, "/")
	_, err := c.Authenticate(context.Background(), "no-such-tree")
	asError(t, err, http.StatusBadRequest)
}

// TestRegisterWithCertificate registers a new thing through auth-reg-tree
// (Authenticate Thing → Requires Registration → Register Thing, "Proof of
// Possession & Certificate") with a certificate from a run-time CA.
func TestRegisterWithCertificate(t *testing.T) {
	caCert, caKey, err := examplepki.NewCA("thingway-test-ca", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cfg := amtest.DefaultConfig()
	cfg.CertVerificationCAs = []*x509.Certificate{caCert}
	_, c := start(t, cfg, "/")
	ctx := context.Background()

	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.PS384} {
		t.Run(string(alg), func(t *testing.T) {
			th := newThing(t, "registered-"+strings.ToLower(string(alg)), alg)
			cert, _, err := examplepki.IssueCert(caCert, caKey, th.key.Public(), th.id, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			reg := callback.RegisterHandler{Audience: "/", ThingID: th.id, KeyID: th.kid, Key: th.key, Certificates: []*x509.Certificate{cert}}
			s, err := c.Authenticate(ctx, "auth-reg-tree", th.handler("/"), reg)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if !sameKey(s.Key, th.key) {
				t.Error("the session has not the thing's key")
			}
			attrs, err := c.Attributes(ctx, s)
			if err != nil {
				t.Fatalf("Attributes: %v", err)
			}
			if attrs["_id"] != th.id {
				t.Errorf("attributes %v", attrs)
			}
			keys, _ := attrs["thingKeys"].([]any)
			if len(keys) != 1 || !strings.Contains(keys[0].(string), th.kid) {
				t.Errorf("thingKeys %v does not hold kid %s", attrs["thingKeys"], th.kid)
			}
			if _, err := c.AccessToken(ctx, s, "publish", "subscribe"); err != nil {
				t.Errorf("AccessToken: %v", err)
			}
			// Now registered, the thing authenticates without registering.
			if _, err := c.Authenticate(ctx, "auth-tree", th.handler("/")); err != nil {
				t.Errorf("Authenticate after registration: %v", err)
			}
		})
	}

	t.Run("certificate from an untrusted CA", func(t *testing.T) {
		other, otherKey, _ := examplepki.NewCA("other-ca", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		th := newThing(t, "untrusted", jose.ES256)
		cert, _, _ := examplepki.IssueCert(other, otherKey, th.key.Public(), th.id, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		reg := callback.RegisterHandler{Audience: "/", ThingID: th.id, Key: th.key, Certificates: []*x509.Certificate{cert}}
		_, err := c.Authenticate(ctx, "auth-reg-tree", th.handler("/"), reg)
		asError(t, err, http.StatusUnauthorized)
	})
}

// TestRegisterWithExampleCA registers with a certificate issued at run time
// by the example CA, which the default configuration trusts.
func TestRegisterWithExampleCA(t *testing.T) {
	caKey, err := readKey("../resources/example-ca.key.pem")
	if err != nil {
		t.Fatal(err)
	}
	_, c := start(t, nil, "/")
	th := newThing(t, "example-ca-thing", jose.ES256)
	cert, _, err := examplepki.IssueCert(amtest.ExampleCA(), caKey, th.key.Public(), th.id, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := c.Authenticate(ctx, "reg-tree", callback.RegisterHandler{Audience: "/", ThingID: th.id, Key: th.key,
		ThingType: callback.ThingTypeGateway, Certificates: []*x509.Certificate{cert}})
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if !sameKey(s.Key, th.key) {
		t.Error("the session has not the thing's key")
	}
	if _, err := c.AccessToken(ctx, s, "publish"); err != nil {
		t.Errorf("AccessToken: %v", err)
	}
}

// opaqueKey has only the crypto.Signer methods, like a key in an HSM.
type opaqueKey struct{ s crypto.Signer }

func (o opaqueKey) Public() crypto.PublicKey { return o.s.Public() }
func (o opaqueKey) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.s.Sign(r, d, opts)
}

func TestOpaqueSigner(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.PS384} {
		t.Run(string(alg), func(t *testing.T) {
			srv, c := start(t, nil, "/")
			th := newThing(t, "hsm-thing", alg)
			register(t, srv, "/", th, nil)
			th.key = opaqueKey{th.key}
			ctx := context.Background()
			s, err := c.Authenticate(ctx, "auth-tree", th.handler("/"))
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if _, err := c.AccessToken(ctx, s, "publish"); err != nil {
				t.Fatalf("AccessToken: %v", err)
			}
			if err := c.Logout(ctx, s); err != nil {
				t.Fatalf("Logout: %v", err)
			}
		})
	}
}

// TestConcurrentSignedRequests: AM refuses a nonce below one it has seen,
// so concurrent requests of one restricted session must still arrive in
// nonce order.
func TestConcurrentSignedRequests(t *testing.T) {
	srv, c := start(t, nil, "/")
	th := newThing(t, "busy-thing", jose.ES256)
	register(t, srv, "/", th, nil)
	ctx := context.Background()
	s, err := c.Authenticate(ctx, "auth-tree", th.handler("/"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, err = c.AccessToken(ctx, s, "publish")
			} else {
				_, err = c.Attributes(ctx, s)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := amclientNonce(s); got != n {
		t.Errorf("nonce = %d, want %d", got, n)
	}
}

// TestUsernamePassword authenticates with the realm's ldapService tree and
// uses the unrestricted session with plain JSON requests.
func TestUsernamePassword(t *testing.T) {
	srv, c := start(t, nil, "/")
	th := newThing(t, "password-thing", jose.ES256)
	register(t, srv, "/", th, map[string]any{"thingConfig": "cfg"})
	ctx := context.Background()
	s, err := c.Authenticate(ctx, "ldapService", callback.NameHandler{Name: th.id}, callback.PasswordHandler{Password: "5tr0ngG3n3r@ted"})
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if s.Key != nil {
		t.Error("an unrestricted session has a key")
	}
	if ok, err := c.ValidateSession(ctx, s); !ok || err != nil {
		t.Errorf("ValidateSession = %v, %v", ok, err)
	}
	attrs, err := c.Attributes(ctx, s, "thingConfig")
	if err != nil || !equalStrings(attrs["thingConfig"], "cfg") {
		t.Errorf("Attributes = %v, %v", attrs, err)
	}
	if _, err := c.AccessToken(ctx, s, "subscribe"); err != nil {
		t.Errorf("AccessToken: %v", err)
	}
	if err := c.Logout(ctx, s); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.ValidateSession(ctx, s); ok || err != nil {
		t.Errorf("ValidateSession after logout = %v, %v", ok, err)
	}
	asError(t, c.Logout(ctx, s), http.StatusUnauthorized)

	_, err = c.Authenticate(ctx, "ldapService", callback.NameHandler{Name: th.id}, callback.PasswordHandler{Password: "wrong"})
	asError(t, err, http.StatusUnauthorized)
}

func TestAccessTokenErrors(t *testing.T) {
	srv, c := start(t, nil, "/")
	th := newThing(t, "scoped-thing", jose.ES256)
	register(t, srv, "/", th, nil)
	ctx := context.Background()
	s, err := c.Authenticate(ctx, "auth-tree", th.handler("/"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AccessToken(ctx, s, "delete")
	e := asError(t, err, http.StatusBadRequest)
	if e.OAuthError() != "invalid_scope" || !strings.Contains(e.Message, "Unknown/invalid scope(s)") || len(e.Detail) == 0 {
		t.Errorf("error %+v (%v)", e, e)
	}
	// The default client has no default scopes.
	_, err = c.AccessToken(ctx, s)
	if e := asError(t, err, http.StatusBadRequest); e.OAuthError() != "invalid_scope" {
		t.Errorf("no scopes: %v", err)
	}
	tok, err := c.AccessToken(ctx, s, "publish")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.RefreshAccessToken(ctx, s, tok.RefreshToken, "publish", "subscribe")
	if e := asError(t, err, http.StatusBadRequest); e.OAuthError() != "invalid_scope" {
		t.Errorf("refresh with more scopes: %v", err)
	}
}

// TestSubRealm checks that URLs carry the realm raw (realm=/a), which is
// what AM compares with the aud of signed requests.
func TestSubRealm(t *testing.T) {
	cfg := amtest.DefaultConfig()
	cfg.Realms["/a"] = amtest.GuideRealm()
	srv, c := start(t, cfg, "/a")
	th := newThing(t, "sub-thing", jose.ES256)
	register(t, srv, "/a", th, map[string]any{"thingConfig": "x"})
	ctx := context.Background()
	s, err := c.Authenticate(ctx, "auth-tree", th.handler("/a"))
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if s.Realm != "/a" {
		t.Errorf("session realm %q", s.Realm)
	}
	if _, err := c.Attributes(ctx, s, "thingConfig", "thingKeys"); err != nil {
		t.Errorf("Attributes: %v", err)
	}
	if _, err := c.AccessToken(ctx, s, "publish"); err != nil {
		t.Errorf("AccessToken: %v", err)
	}
	// The root realm's audience is refused in /a.
	if _, err := c.Authenticate(ctx, "auth-tree", th.handler("/")); !amclient.IsUnauthorized(err) {
		t.Errorf("audience / in realm /a: %v", err)
	}
}

func TestOpenIDConfigurationAndJWKS(t *testing.T) {
	srv, c := start(t, nil, "/")
	ctx := context.Background()
	cfg, err := c.OpenIDConfiguration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg["issuer"] != srv.URL+"/oauth2" || cfg["jwks_uri"] != srv.URL+"/oauth2/connect/jwk_uri" {
		t.Errorf("configuration %v", cfg)
	}
	set, err := c.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) == 0 {
		t.Fatal("empty JWK set")
	}
	// An access token verifies locally with the JWK set.
	th := newThing(t, "jwks-thing", jose.ES256)
	register(t, srv, "/", th, nil)
	s, err := c.Authenticate(ctx, "auth-tree", th.handler("/"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.AccessToken(ctx, s, "publish")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("no key %q in the JWK set", parsed.Headers[0].KeyID)
	}
	var claims map[string]any
	if err := parsed.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("access token does not verify with the JWK set: %v", err)
	}
	if claims["subname"] != th.id {
		t.Errorf("claims %v", claims)
	}

	bad := &amclient.Client{URL: srv.URL, Realm: "/no-such-realm", HTTPClient: srv.Client()}
	_, err = bad.OpenIDConfiguration(ctx)
	if e := asError(t, err, http.StatusBadRequest); e.OAuthError() != "invalid_request" {
		t.Errorf("unknown realm: %v", err)
	}
}

func TestContextCanceled(t *testing.T) {
	srv, c := start(t, nil, "/")
	th := newThing(t, "ctx-thing", jose.ES256)
	register(t, srv, "/", th, nil)
	s, err := c.Authenticate(context.Background(), "auth-tree", th.handler("/"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Authenticate(ctx, "auth-tree", th.handler("/")); err != context.Canceled {
		t.Errorf("Authenticate: %v, want context.Canceled", err)
	}
	if _, err := c.AccessToken(ctx, s, "publish"); err != context.Canceled {
		t.Errorf("AccessToken: %v, want context.Canceled", err)
	}
	if _, err := c.ValidateSession(ctx, s); err != context.Canceled {
		t.Errorf("ValidateSession: %v, want context.Canceled", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), -time.Second)
	defer dcancel()
	if _, err := c.OpenIDConfiguration(dctx); err != context.DeadlineExceeded {
		t.Errorf("OpenIDConfiguration: %v, want context.DeadlineExceeded", err)
	}
	// The canceled calls did not spend the session's nonces out of order.
	if _, err := c.AccessToken(context.Background(), s, "publish"); err != nil {
		t.Errorf("AccessToken after cancellations: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	srv := amtest.NewServer()
	url := srv.URL
	srv.Close()
	c := &amclient.Client{URL: url}
	_, err := c.Authenticate(context.Background(), "auth-tree")
	if err == nil || !strings.Contains(err.Error(), "amclient: cannot reach AM at "+url) {
		t.Fatalf("err = %v", err)
	}
	var e *amclient.Error
	if errors.As(err, &e) || amclient.IsUnauthorized(err) {
		t.Errorf("a transport failure is an *amclient.Error: %v", err)
	}
	if _, err := (&amclient.Client{}).OpenIDConfiguration(context.Background()); err == nil {
		t.Error("a Client without URL works")
	}
}

func sameKey(a, b crypto.Signer) bool {
	if a == nil || b == nil {
		return a == b
	}
	pa, ok := a.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pa.Equal(b.Public())
}

func amclientNonce(s *amclient.Session) int64 { return s.Nonce() }
