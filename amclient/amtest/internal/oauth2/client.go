package oauth2

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// Client is an active OAuth 2.0 client of the request's realm, with the
// realm's provider: what a token operation needs.
type Client struct {
	ID       string
	Settings *config.OAuth2Client
	Provider *config.OAuth2Provider
}

// client returns the realm's active client id.
func (e *Env) client(id string) (*Client, error) {
	if e.Config.OAuth2 == nil {
		return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_request", "The OAuth2 Provider is not configured in this realm")
	}
	cl := e.Config.OAuth2Clients[id]
	if cl == nil || cl.Inactive {
		return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_client", "Client authentication failed").WithLog("no active client %q in realm %s", id, e.Realm)
	}
	return &Client{ID: id, Settings: cl, Provider: e.Config.OAuth2}, nil
}

// AuthenticateClient checks the credentials a client presented
// (client_secret_basic or client_secret_post, as the server read them).
func (e *Env) AuthenticateClient(id, secret string) (*Client, error) {
	bad := crest.OAuthErr(http.StatusUnauthorized, "invalid_client", "Client authentication failed")
	if id == "" {
		return nil, bad.WithLog("no client credentials")
	}
	c, err := e.client(id)
	if err != nil {
		return nil, bad.WithLog("unknown client %q", id)
	}
	if c.Settings.Secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(c.Settings.Secret)) != 1 {
		return nil, bad.WithLog("wrong secret for client %q", id)
	}
	return c, nil
}

// allows reports whether the client may use the grant type.
func (c *Client) allows(grantType string) bool {
	return slices.Contains(c.Settings.GrantTypes, grantType)
}

// accessLife and refreshLife are the lifetimes of the client's tokens:
// the client's own, else the provider's.
func (c *Client) accessLife() time.Duration {
	return lifetime(c.Settings.AccessTokenLifetime, c.Provider.Core.AccessTokenLifetime)
}

func (c *Client) refreshLife() time.Duration {
	return lifetime(c.Settings.RefreshTokenLifetime, c.Provider.Core.RefreshTokenLifetime)
}

// grantLifetime is how long the tokens of a grant of the client can live.
func (c *Client) grantLifetime() time.Duration { return max(c.accessLife(), c.refreshLife()) }

// policy is what the provider and client decide about the tokens of a
// grant: a refresh token comes with the access token when the caller
// wants one, the provider issues them and the client may use the refresh
// grant.
func (c *Client) policy(wantRefresh bool) tokens.Policy {
	p := c.Provider
	return tokens.Policy{
		ClientID:    c.ID,
		ClientSide:  p.Core.StatelessTokensEnabled,
		SigningAlg:  p.Advanced.TokenSigningAlgorithm,
		Encrypt:     p.Advanced.TokenEncryptionEnabled,
		AccessLife:  c.accessLife(),
		RefreshLife: c.refreshLife(),
		Refresh:     wantRefresh && p.Core.IssueRefreshToken && c.allows(config.GrantRefreshToken),
	}
}
