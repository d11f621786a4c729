package amclient

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-jose/go-jose/v4"
)

// OpenIDConfiguration reads the realm's OpenID Connect discovery document
// (GET /oauth2/.well-known/openid-configuration[?realm=…]). It holds,
// among others, issuer, token_endpoint, introspection_endpoint and jwks_uri.
func (c *Client) OpenIDConfiguration(ctx context.Context) (map[string]any, error) {
	u := c.base() + "/oauth2/.well-known/openid-configuration"
	if c.Realm != "" {
		u += "?realm=" + queryValue(c.Realm)
	}
	var out map[string]any
	if _, err := c.call(ctx, request{method: http.MethodGet, url: u}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// JWKS reads the JWK set at the realm's jwks_uri: the public keys AM signs
// client-side (stateless) access tokens with, which lets a client check
// such tokens locally.
func (c *Client) JWKS(ctx context.Context) (*jose.JSONWebKeySet, error) {
	_, set, err := c.tokenKeys(ctx, false)
	return set, err
}

// TokenKeys reads what a client needs to check AM's client-side access
// tokens locally: the realm's OAuth 2.0 issuer (the iss of its tokens) and
// the JWK set at its jwks_uri.
func (c *Client) TokenKeys(ctx context.Context) (issuer string, set *jose.JSONWebKeySet, err error) {
	return c.tokenKeys(ctx, true)
}

func (c *Client) tokenKeys(ctx context.Context, needIssuer bool) (issuer string, set *jose.JSONWebKeySet, err error) {
	cfg, err := c.OpenIDConfiguration(ctx)
	if err != nil {
		return "", nil, err
	}
	issuer, _ = cfg["issuer"].(string)
	if issuer == "" && needIssuer {
		return "", nil, errors.New("amclient: AM's OpenID configuration has no issuer")
	}
	uri, _ := cfg["jwks_uri"].(string)
	if uri == "" {
		return "", nil, errors.New("amclient: AM's OpenID configuration has no jwks_uri")
	}
	set = new(jose.JSONWebKeySet)
	if _, err := c.call(ctx, request{method: http.MethodGet, url: uri}, set); err != nil {
		return "", nil, err
	}
	return issuer, set, nil
}
