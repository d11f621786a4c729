package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Local introspection settings.
const (
	introspectSkew   = 60 * time.Second // leeway on exp and nbf
	jwksRefreshPause = 30 * time.Second // at most one refresh per pause for unknown kids
)

// jwksCache holds AM's JWK set: fetched at start-up (best effort) or on
// first need, fetched again when a token names an unknown kid.
type jwksCache struct {
	fetch func(context.Context) (*jose.JSONWebKeySet, error)

	mu      sync.Mutex
	set     *jose.JSONWebKeySet
	fetched time.Time // last attempt
}

// refresh fetches the set.
func (c *jwksCache) refresh(ctx context.Context) (*jose.JSONWebKeySet, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refreshLocked(ctx)
}

func (c *jwksCache) refreshLocked(ctx context.Context) (*jose.JSONWebKeySet, error) {
	c.fetched = time.Now()
	set, err := c.fetch(ctx)
	if err != nil {
		return c.set, err
	}
	c.set = set
	return set, nil
}

// key returns the key named kid, fetching the set when it has none or
// does not know kid (at most once per jwksRefreshPause). ok is false when
// no set is available at all.
func (c *jwksCache) key(ctx context.Context, kid string) (k *jose.JSONWebKey, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set != nil {
		if ks := c.set.Key(kid); len(ks) > 0 {
			return &ks[0], true
		}
	}
	if c.fetched.IsZero() || time.Since(c.fetched) >= jwksRefreshPause {
		c.refreshLocked(ctx) //nolint:errcheck // an unavailable set is reported by ok
	}
	if c.set == nil {
		return nil, false
	}
	if ks := c.set.Key(kid); len(ks) > 0 {
		return &ks[0], true
	}
	return nil, true
}

// Algorithms AM signs client-side access tokens with that can be checked
// locally; HMAC tokens cannot.
var asymmetricAlgs = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

// errCannotIntrospect means the token cannot be checked locally (opaque,
// HMAC-signed, no kid, no JWK set); the AM failure stands.
var errCannotIntrospect = errors.New("gateway: token cannot be introspected locally")

var inactive = []byte(`{"active":false}`)

// introspectLocally checks a client-side (JWT) access token with AM's
// JWK set, as iot-edge does when AM is unavailable: an RFC 7662 answer.
func (s *Server) introspectLocally(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, asymmetricAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errCannotIntrospect
	}
	kid := jws.Signatures[0].Protected.KeyID
	if kid == "" {
		return nil, errCannotIntrospect
	}
	key, ok := s.jwks.key(ctx, kid)
	if !ok {
		return nil, errCannotIntrospect
	}
	if key == nil {
		return inactive, nil
	}
	payload, err := jws.Verify(key.Public())
	if err != nil {
		return inactive, nil
	}
	var claims map[string]any
	d := json.NewDecoder(strings.NewReader(string(payload)))
	d.UseNumber()
	if err := d.Decode(&claims); err != nil {
		return inactive, nil
	}
	now := s.now()
	if exp, ok := numericDate(claims["exp"]); ok && now.After(exp.Add(introspectSkew)) {
		return inactive, nil
	}
	if nbf, ok := numericDate(claims["nbf"]); ok && now.Add(introspectSkew).Before(nbf) {
		return inactive, nil
	}
	if scopes, ok := claims["scope"].([]any); ok {
		names := make([]string, 0, len(scopes))
		for _, v := range scopes {
			names = append(names, fmt.Sprint(v))
		}
		claims["scope"] = strings.Join(names, " ")
	}
	claims["active"] = true
	return json.Marshal(claims)
}

func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}
