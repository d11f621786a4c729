package introspect_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thingway/thingway/internal/introspect"
)

const issuer = "http://am.example.com/openam/oauth2"

var now = time.Unix(1_800_000_000, 0)

type fixture struct {
	key   *ecdsa.PrivateKey
	kid   string
	set   *jose.JSONWebKeySet
	calls atomic.Int32
	c     *introspect.Checker
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := &fixture{key: k, kid: "am-key"}
	f.set = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.Public(), KeyID: f.kid, Algorithm: "ES256", Use: "sig"}}}
	f.c = &introspect.Checker{
		Fetch: func(context.Context) (introspect.Keys, error) {
			f.calls.Add(1)
			return introspect.Keys{Issuer: issuer, Set: f.set}, nil
		},
		Time: func() time.Time { return now },
	}
	return f
}

// claims are those of an AM client-side access token.
func claims() map[string]any {
	return map[string]any{"sub": "(usr!thing-42)", "iss": issuer, "tokenName": "access_token", "token_type": "Bearer",
		"scope": []string{"publish"}, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, c map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	o, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := o.CompactSerialize()
	return tok
}

func with(k string, v any) map[string]any {
	c := claims()
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func TestCheck(t *testing.T) {
	f := newFixture(t)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	b64 := base64.RawURLEncoding.EncodeToString
	good := sign(t, jose.ES256, f.key, f.kid, claims())
	parts := strings.Split(good, ".")
	tests := []struct {
		name   string
		token  string
		active bool
		cannot bool // ErrCannotCheck
	}{
		{"AM's access token", good, true, false},
		{"within the skew after exp", sign(t, jose.ES256, f.key, f.kid, with("exp", now.Add(-30*time.Second).Unix())), true, false},
		{"expired", sign(t, jose.ES256, f.key, f.kid, with("exp", now.Add(-2*time.Minute).Unix())), false, false},
		{"no exp", sign(t, jose.ES256, f.key, f.kid, with("exp", nil)), false, false},
		{"exp not a number", sign(t, jose.ES256, f.key, f.kid, with("exp", "tomorrow")), false, false},
		{"nbf in the future", sign(t, jose.ES256, f.key, f.kid, with("nbf", now.Add(time.Hour).Unix())), false, false},
		{"iat in the future", sign(t, jose.ES256, f.key, f.kid, with("iat", now.Add(time.Hour).Unix())), false, false},
		{"another issuer", sign(t, jose.ES256, f.key, f.kid, with("iss", "http://evil.example.com/oauth2")), false, false},
		{"no issuer", sign(t, jose.ES256, f.key, f.kid, with("iss", nil)), false, false},
		{"an ID token", sign(t, jose.ES256, f.key, f.kid, with("tokenName", "id_token")), false, false},
		{"signed by another key", sign(t, jose.ES256, other, f.kid, claims()), false, false},
		{"unknown kid", sign(t, jose.ES256, other, "nope", claims()), false, false},
		{"RSA signature under an EC kid", sign(t, jose.RS256, rsaKey, f.kid, claims()), false, false},
		{"body changed after signing", parts[0] + "." + b64([]byte(`{"iss":"`+issuer+`","tokenName":"access_token","exp":9999999999}`)) + "." + parts[2], false, false},
		{"duplicate claim", parts[0] + "." + b64([]byte(`{"exp":1,"exp":9999999999}`)) + "." + parts[2], false, false},
		{"crit header", b64([]byte(`{"alg":"ES256","kid":"am-key","crit":["exp"],"exp":1}`)) + "." + parts[1] + "." + parts[2], false, false},
		{"HS256 (AM's secret)", sign(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), f.kid, claims()), false, true},
		{"alg none", b64([]byte(`{"alg":"none","kid":"am-key"}`)) + "." + parts[1] + ".", false, true},
		{"no kid", sign(t, jose.ES256, f.key, "", claims()), false, true},
		{"opaque CTS token", "I46b6E7k8xHyQPRcJ_Izcas1GVc", false, true},
		{"JWE", "a.b.c.d.e", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := f.c.Check(context.Background(), tt.token)
			if tt.cannot {
				if !errors.Is(err, introspect.ErrCannotCheck) {
					t.Fatalf("Check = %v, %v; want ErrCannotCheck", r, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Active != tt.active || r.Claims["active"] != tt.active {
				t.Fatalf("active = %v (%v), want %v", r.Active, r.Claims, tt.active)
			}
			if tt.active && (r.Claims["scope"] != "publish" || r.Claims["sub"] != "(usr!thing-42)") {
				t.Errorf("claims = %v", r.Claims)
			}
			if !tt.active && len(r.Claims) != 1 {
				t.Errorf("an inactive answer tells %v", r.Claims)
			}
		})
	}
}

// An unknown kid fetches the set again, at most once per pause; a kid that
// arrives with a rotated set is then found.
func TestRefresh(t *testing.T) {
	f := newFixture(t)
	clock := now
	f.c.Time = func() time.Time { return clock }
	if r, _ := f.c.Check(context.Background(), sign(t, jose.ES256, f.key, f.kid, claims())); !r.Active || f.calls.Load() != 1 {
		t.Fatalf("first check: %v, %d fetches", r, f.calls.Load())
	}
	rotated, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok := sign(t, jose.ES256, rotated, "rotated", claims())
	if r, _ := f.c.Check(context.Background(), tok); r.Active || f.calls.Load() != 1 {
		t.Fatalf("unknown kid within the pause: %v, %d fetches, want inactive and no fetch", r, f.calls.Load())
	}
	f.set = &jose.JSONWebKeySet{Keys: append(f.set.Keys, jose.JSONWebKey{Key: rotated.Public(), KeyID: "rotated", Algorithm: "ES256"})}
	clock = clock.Add(introspect.DefaultRefreshPause)
	if r, _ := f.c.Check(context.Background(), tok); !r.Active || f.calls.Load() != 2 {
		t.Fatalf("rotated kid after the pause: %v, %d fetches", r, f.calls.Load())
	}
}

// One fetch at a time, and nobody holds a lock while it runs: checks wait
// for it each with their own deadline, and a check whose key is cached
// does not wait at all.
func TestOneFetchInFlight(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	fetch := f.c.Fetch
	f.c.Fetch = func(ctx context.Context) (introspect.Keys, error) {
		entered <- struct{}{}
		<-release
		return fetch(ctx)
	}
	tok := sign(t, jose.ES256, f.key, f.kid, claims())
	var wg sync.WaitGroup
	results := make(chan bool, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := f.c.Check(context.Background(), tok)
			results <- err == nil && r.Active
		}()
	}
	<-entered
	// A check with a short deadline gives up while the fetch goes on.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.c.Check(ctx, tok); !errors.Is(err, context.Canceled) {
		t.Errorf("check with a cancelled context during the fetch: %v", err)
	}
	close(release)
	wg.Wait()
	close(results)
	for ok := range results {
		if !ok {
			t.Error("a waiting check did not get the fetched set")
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	// Cached now: no fetch, no wait.
	if r, err := f.c.Check(context.Background(), tok); err != nil || !r.Active || f.calls.Load() != 1 {
		t.Errorf("cached check: %v, %v, %d fetches", r, err, f.calls.Load())
	}
}

// AM down: ErrCannotCheck, and no new fetch before the pause.
func TestNoKeys(t *testing.T) {
	f := newFixture(t)
	f.c.Fetch = func(context.Context) (introspect.Keys, error) {
		f.calls.Add(1)
		return introspect.Keys{}, errors.New("connection refused")
	}
	tok := sign(t, jose.ES256, f.key, f.kid, claims())
	for range 3 {
		if _, err := f.c.Check(context.Background(), tok); !errors.Is(err, introspect.ErrCannotCheck) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("Check with AM down = %v", err)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d fetches within the pause, want 1", n)
	}
}
