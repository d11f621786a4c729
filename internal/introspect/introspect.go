// Package introspect checks AM's client-side (JWT) access tokens against
// AM's published keys, for the gateway and the thing SDK when AM itself
// cannot be asked: one implementation, so both answer alike.
//
// # What makes a token active
//
// A token is active only if every check holds:
//
//   - it is a compact JWS ([jws.Split]: canonical base64url, header and
//     claims JSON objects without duplicate member names) with one
//     signature, alg one of [Algorithms] (asymmetric: an HMAC token cannot
//     be checked without AM's secret), a kid, and no crit header;
//   - the key named kid is in AM's JWK set, and the signature verifies
//     with it (go-jose refuses a key whose type or curve does not fit alg);
//   - iss is AM's issuer for the realm (from its OpenID configuration);
//   - tokenName is access_token (an ID token signed with the same key is
//     not an access token);
//   - exp is present and not past; nbf and iat, when present, are not in
//     the future; each with [Checker.Skew] of leeway.
//
// A token that is not a compact JWS (an opaque token, a JWE), not signed
// with such an algorithm, has no kid, or meets a JWK set that cannot be
// had is [ErrCannotCheck]: the caller's AM error stands. Any other failure
// is an inactive token ({"active": false}).
//
// # The JWK set
//
// The set is fetched on first need and again when a token names an
// unknown kid (or the last fetch failed), at most once per
// [Checker.RefreshPause]. One fetch runs at a
// time, without holding a lock: other checks use the set they have or wait
// for that fetch, each until its own context ends.
package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thingway/thingway/internal/jws"
)

// Defaults of the Checker's fields.
const (
	DefaultSkew         = 60 * time.Second
	DefaultRefreshPause = 30 * time.Second
	// fetchTimeout bounds one fetch of the JWK set, whoever waits for it.
	fetchTimeout = 30 * time.Second
)

// Algorithms are the signature algorithms of tokens that can be checked:
// AM's asymmetric ones.
var Algorithms = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

// ErrCannotCheck means the token cannot be checked locally.
var ErrCannotCheck = errors.New("introspect: the token cannot be checked locally")

// Keys are what AM publishes for its realm: the issuer of its tokens and
// the keys that sign them.
type Keys struct {
	Issuer string
	Set    *jose.JSONWebKeySet
}

// Checker checks tokens. Set Fetch; the other fields have defaults. A
// Checker is safe for concurrent use; do not change its fields after the
// first Check.
type Checker struct {
	// Fetch reads AM's issuer and JWK set. Required.
	Fetch func(ctx context.Context) (Keys, error)
	// Time returns the current time. If nil, time.Now.
	Time func() time.Time
	// Skew is the leeway on exp, nbf and iat. If zero, DefaultSkew.
	Skew time.Duration
	// RefreshPause is the least time between two fetches. If zero,
	// DefaultRefreshPause.
	RefreshPause time.Duration

	mu      sync.Mutex
	keys    *Keys
	fetched time.Time     // start of the last fetch
	flight  chan struct{} // closed when the fetch under way ends; nil if none
	lastErr error         // of the last fetch
}

// Result is an RFC 7662 answer.
type Result struct {
	Active bool
	// Claims are the token's claims, with active set and scope as a
	// space-separated string, as AM's introspection answers; for an
	// inactive token, only active.
	Claims map[string]any
}

// JSON is the answer as AM's introspection endpoint writes it.
func (r *Result) JSON() []byte {
	b, err := json.Marshal(r.Claims)
	if err != nil { // claims came from JSON
		return []byte(`{"active":false}`)
	}
	return b
}

func inactive() *Result { return &Result{Claims: map[string]any{"active": false}} }

func (c *Checker) now() time.Time {
	if c.Time != nil {
		return c.Time()
	}
	return time.Now()
}

func (c *Checker) skew() time.Duration {
	if c.Skew > 0 {
		return c.Skew
	}
	return DefaultSkew
}

func (c *Checker) pause() time.Duration {
	if c.RefreshPause > 0 {
		return c.RefreshPause
	}
	return DefaultRefreshPause
}

// Refresh fetches AM's keys now, or waits for the fetch under way.
func (c *Checker) Refresh(ctx context.Context) error {
	c.mu.Lock()
	done := c.startLocked()
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// startLocked starts a fetch unless one is under way and returns the
// channel closed when it ends; with c.mu held.
func (c *Checker) startLocked() <-chan struct{} {
	if c.flight != nil {
		return c.flight
	}
	done := make(chan struct{})
	c.flight, c.fetched = done, c.now()
	go func() {
		// The fetch serves every waiter, so no single caller's context
		// bounds it.
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		keys, err := c.Fetch(ctx)
		cancel()
		c.mu.Lock()
		if err == nil && keys.Set == nil {
			err = errors.New("introspect: no JWK set")
		}
		if err == nil {
			c.keys = &keys
		}
		c.lastErr, c.flight = err, nil
		c.mu.Unlock()
		close(done)
	}()
	return done
}

// key returns AM's keys and the key named kid, fetching the set when it
// has none or does not know kid and the pause allows. keys is nil when
// no set can be had.
func (c *Checker) key(ctx context.Context, kid string) (keys *Keys, k *jose.JSONWebKey, err error) {
	for fetched := false; ; fetched = true {
		c.mu.Lock()
		if c.keys != nil {
			if ks := c.keys.Set.Key(kid); len(ks) > 0 {
				keys, k = c.keys, &ks[0]
				c.mu.Unlock()
				return keys, k, nil
			}
		}
		if fetched || (c.flight == nil && !c.fetched.IsZero() && c.now().Sub(c.fetched) < c.pause()) {
			keys, err = c.keys, c.lastErr
			c.mu.Unlock()
			return keys, nil, err
		}
		done := c.startLocked()
		c.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// Check checks token. It returns ErrCannotCheck (wrapped) when the token
// cannot be checked here, and otherwise a Result.
func (c *Checker) Check(ctx context.Context, token string) (*Result, error) {
	parts, err := jws.Split(token)
	if errors.Is(err, jws.ErrNotCompact) {
		return nil, fmt.Errorf("%w: %w", ErrCannotCheck, err) // opaque, or a JWE
	}
	if err != nil {
		return inactive(), nil // a JWS no reader may read two ways
	}
	sig, err := jose.ParseSignedCompact(strings.TrimSpace(token), Algorithms)
	if err != nil || len(sig.Signatures) != 1 {
		return nil, fmt.Errorf("%w: not a JWT signed with an asymmetric key", ErrCannotCheck)
	}
	h := sig.Signatures[0].Protected
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: the token has no kid", ErrCannotCheck)
	}
	var crit struct {
		Crit json.RawMessage `json:"crit"`
	}
	if json.Unmarshal(parts.Header, &crit) != nil || crit.Crit != nil {
		return inactive(), nil
	}
	keys, key, err := c.key(ctx, h.KeyID)
	if keys == nil {
		if err == nil {
			err = errors.New("no JWK set")
		}
		return nil, fmt.Errorf("%w: AM's keys: %w", ErrCannotCheck, err)
	}
	if key == nil {
		return inactive(), nil
	}
	payload, err := sig.Verify(key.Public())
	if err != nil {
		return inactive(), nil
	}
	var claims map[string]any
	d := json.NewDecoder(strings.NewReader(string(payload)))
	d.UseNumber()
	if d.Decode(&claims) != nil {
		return inactive(), nil
	}
	if !c.valid(claims, keys.Issuer) {
		return inactive(), nil
	}
	if scopes, ok := claims["scope"].([]any); ok {
		names := make([]string, 0, len(scopes))
		for _, v := range scopes {
			if s, ok := v.(string); ok {
				names = append(names, s)
			}
		}
		claims["scope"] = strings.Join(names, " ")
	}
	claims["active"] = true
	return &Result{Active: true, Claims: claims}, nil
}

// valid checks the claims of a verified token.
func (c *Checker) valid(claims map[string]any, issuer string) bool {
	if iss, _ := claims["iss"].(string); issuer == "" || iss != issuer {
		return false
	}
	if name, _ := claims["tokenName"].(string); name != "access_token" {
		return false
	}
	now, skew := c.now(), c.skew()
	exp, ok := numericDate(claims["exp"])
	if !ok || now.After(exp.Add(skew)) {
		return false
	}
	for _, name := range []string{"nbf", "iat"} {
		v, present := claims[name]
		if !present {
			continue
		}
		t, ok := numericDate(v)
		if !ok || t.After(now.Add(skew)) {
			return false
		}
	}
	return true
}

// numericDate reads a JSON number of seconds (RFC 7519 §2).
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<53 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}
