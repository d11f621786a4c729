package oauth2

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// newGrant is a grant of c to subject (obtained by thing, when a thing
// asked), made now: it lives as long as its access token until a refresh
// token extends it.
func (e *Env) newGrant(c *Client, issuer, subject, thing string, scopes []string) *tokens.Grant {
	return &tokens.Grant{ID: tokens.RandomID(20), Realm: e.Realm, Issuer: issuer, ClientID: c.ID, Subject: subject,
		Thing: thing, Scopes: scopes, AuthTime: e.Now, Expires: e.Now.Add(c.accessLife())}
}

// tokenResponse is the RFC 6749 §5.1 answer for minted tokens.
func tokenResponse(m *tokens.Minted, scopes []string, p tokens.Policy) map[string]any {
	resp := map[string]any{"access_token": m.Access, "scope": strings.Join(scopes, " "),
		"token_type": "Bearer", "expires_in": int64(p.AccessLife/time.Second) - 1}
	if m.Refresh != "" {
		resp["refresh_token"] = m.Refresh
	}
	return resp
}

// issue mints an access token (and a refresh token when the provider and
// client allow it and wantRefresh) for the grant, and answers with an
// RFC 6749 token response.
//
// newGrant says that g is not stored yet: it is stored with the tokens.
func (e *Env) issue(c *Client, g *tokens.Grant, scopes []string, wantRefresh, newGrant bool) (map[string]any, error) {
	policy := c.policy(wantRefresh)
	m, err := tokens.Mint(e.Keys, policy, g, scopes, e.Now, tokens.NewUUID()+"-"+tokens.RandomID(4), newGrant)
	if err != nil {
		return nil, err
	}
	resp := tokenResponse(m, scopes, policy)
	if e.Issued != nil {
		e.Issued.Add(int64(m.Count()))
	}
	if !m.Stored() {
		// Client-side tokens: nothing to store; a signed request's nonce
		// is written before the answer.
		return resp, nil
	}
	// The grant (when new or extended) and the tokens are written in one
	// transaction: all of them are on disk before the answer, or none.
	if err := e.Update(m.Put); err != nil {
		return nil, err
	}
	return resp, nil
}

// ThingToken answers the things endpoint's get_access_token: a new grant
// of the thing's client (the JWT bearer grant) to the thing, or, with a
// refresh token, a refresh of one of the thing's own grants.
func (e *Env) ThingToken(th *identities.Identity, scope []string, refreshToken string) (map[string]any, error) {
	c, err := e.client(e.thingClient(th))
	if err != nil {
		return nil, err
	}
	if refreshToken != "" {
		return e.refresh(c, refreshToken, scope, th.ID)
	}
	if !c.allows(config.GrantJWTBearer) {
		return nil, crest.OAuthErr(http.StatusBadRequest, "unauthorized_client", "Client is not authorised to use the JWT bearer grant")
	}
	scopes, err := validateScopes(scope, c.Settings)
	if err != nil {
		return nil, err
	}
	subject := th.ID
	if attr := e.Config.IoT.OAuthSubjectAttribute; attr != "" {
		if subject = th.First(attr); subject == "" {
			return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_grant", "The thing has no value for the subject attribute "+attr)
		}
	}
	return e.issue(c, e.newGrant(c, e.Issuer, subject, th.ID, scopes), scopes, true, true)
}

// TokenRequest is the form of a token endpoint request, as the client
// sent it.
type TokenRequest struct {
	GrantType string
	// Scope is the scope parameter: scopes separated by spaces.
	Scope              string
	RefreshToken       string
	Username, Password string
}

// Owner authenticates the resource owner of a password grant: the ID of
// its identity, or false.
type Owner func(username, password string) (id string, ok bool)

// Token answers the token endpoint for an authenticated client: the
// refresh_token, client_credentials and password grants.
func (e *Env) Token(c *Client, r TokenRequest, owner Owner) (map[string]any, error) {
	gt := r.GrantType
	if gt == "" {
		return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_request", "Missing parameter: grant_type")
	}
	if !c.allows(gt) {
		return nil, crest.OAuthErr(http.StatusBadRequest, "unauthorized_client", "Client is not authorised to use the grant type "+gt)
	}
	requested := strings.Fields(r.Scope)
	switch gt {
	case "refresh_token":
		return e.refresh(c, r.RefreshToken, requested, "")
	case "client_credentials", "password":
		subject := c.ID
		if gt == "password" {
			id, ok := owner(r.Username, r.Password)
			if !ok {
				return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_grant", "Authentication failed")
			}
			subject = id
		}
		scopes, err := validateScopes(requested, c.Settings)
		if err != nil {
			return nil, err
		}
		return e.issue(c, e.newGrant(c, e.Issuer, subject, "", scopes), scopes, gt == "password", true)
	}
	return nil, crest.OAuthErr(http.StatusBadRequest, "unsupported_grant_type", "Grant type is not supported: "+gt)
}

// refresh exchanges a refresh token of the same client (and, when thingID
// is set, obtained by that thing) for a new access token with the same or
// fewer scopes; with the provider's refresh token rotation, a new refresh
// token replaces it.
func (e *Env) refresh(c *Client, refreshToken string, requested []string, thingID string) (map[string]any, error) {
	t, g := tokens.Lookup(e.DB, e.Keys, refreshToken, e.Now)
	if t == nil || !t.Refresh || g.Realm != e.Realm || g.ClientID != c.ID || (thingID != "" && !strings.EqualFold(g.Thing, thingID)) {
		return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_grant", "grant is invalid")
	}
	scopes, err := refreshScopes(t.Scopes, requested)
	if err != nil {
		return nil, err
	}
	rotate := c.Provider.Core.IssueRefreshTokenOnRefreshedToken
	resp, err := e.issue(c, g, scopes, rotate, false)
	if err != nil {
		return nil, err
	}
	if rotate {
		if err := tokens.Revoke(e.DB, refreshToken, t, g, false, time.Time{}); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// Introspect is the RFC 7662 answer for tok as client c sees it: a live
// token of the realm, of c's grants unless c may introspect every token
// (scope am-introspect-all-tokens).
func (e *Env) Introspect(c *Client, tok string) map[string]any {
	t, g := tokens.Lookup(e.DB, e.Keys, tok, e.Now)
	if t == nil || g.Realm != e.Realm {
		return map[string]any{"active": false}
	}
	if g.ClientID != c.ID && !slices.Contains(c.Settings.Scopes, "am-introspect-all-tokens") {
		return map[string]any{"active": false}
	}
	out := map[string]any{
		"active": true, "scope": strings.Join(t.Scopes, " "), "client_id": g.ClientID,
		"user_id": g.Subject, "username": g.Subject, "sub": "(usr!" + g.Subject + ")", "subname": g.Subject,
		"token_type": "Bearer", "exp": t.Expires.Unix(), "iss": g.Issuer, "realm": g.Realm,
		"auth_level": 0, "authGrantId": g.ID, "auditTrackingId": t.Audit,
	}
	if t.Refresh {
		out["token_type"] = "refresh_token"
	}
	return out
}

// ThingIntrospect answers the things endpoint's introspect_token, as the
// thing's client sees the token.
func (e *Env) ThingIntrospect(th *identities.Identity, tok string) (map[string]any, error) {
	if tok == "" {
		return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_request", "Missing parameter: token")
	}
	c, err := e.client(e.thingClient(th))
	if err != nil {
		return nil, err
	}
	return e.Introspect(c, tok), nil
}

// Revoke revokes a token of client c: an access token alone, a refresh
// token together with every token of its grant (kept revoked until they
// have all expired). A token that is not c's, or not live, is no error
// (RFC 7009).
func (e *Env) Revoke(c *Client, tok string) error {
	t, g := tokens.Lookup(e.DB, e.Keys, tok, e.Now)
	if t == nil || g.ClientID != c.ID || g.Realm != e.Realm {
		return nil
	}
	return tokens.Revoke(e.DB, tok, t, g, t.Refresh, e.Now.Add(c.grantLifetime()))
}
