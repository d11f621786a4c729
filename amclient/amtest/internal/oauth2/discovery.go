package oauth2

import (
	"net/http"
	"sort"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// OpenIDConfiguration is the realm's OpenID Provider configuration
// document (/.well-known/openid-configuration): its endpoints under the
// issuer, the scopes of its clients, the grant types and authentication
// methods the local AM supports. A realm without an OAuth2 Provider has
// none (404).
func (e *Env) OpenIDConfiguration() (map[string]any, error) {
	if e.Config.OAuth2 == nil {
		return nil, crest.OAuthErr(http.StatusNotFound, "not_found", "The OAuth2 Provider is not configured in this realm")
	}
	iss := e.Issuer
	scopes := map[string]bool{}
	for _, cl := range e.Config.OAuth2Clients {
		for _, sc := range cl.Scopes {
			scopes[sc] = true
		}
	}
	supported := []string{}
	for sc := range scopes {
		supported = append(supported, sc)
	}
	sort.Strings(supported)
	return map[string]any{
		"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/access_token",
		"introspection_endpoint": iss + "/introspect", "revocation_endpoint": iss + "/token/revoke",
		"device_authorization_endpoint": iss + "/device/code", "userinfo_endpoint": iss + "/userinfo",
		"jwks_uri": iss + "/connect/jwk_uri", "scopes_supported": supported,
		"grant_types_supported":                 []string{"client_credentials", "password", "refresh_token", config.GrantJWTBearer, config.GrantDeviceCode},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
	}, nil
}

// JWKS is the provider's JWK set (/connect/jwk_uri): the public key that
// signs ES256 client-side access tokens.
func JWKS(k tokens.Keys) jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.Sign.Public()}}
}
