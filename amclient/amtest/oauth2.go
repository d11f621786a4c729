package amtest

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// oauthContext is what a token operation needs: realm, provider and client.
type oauthContext struct {
	provider *OAuth2Provider
	clientID string
	client   *OAuth2Client
}

func (s *Server) oauthFor(c *reqCtx, clientID string) (*oauthContext, error) {
	if c.rc.OAuth2 == nil {
		return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_request", "The OAuth2 Provider is not configured in this realm")
	}
	cl := c.rc.OAuth2Clients[clientID]
	if cl == nil || cl.Inactive {
		return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_client", "Client authentication failed").WithLog("no active client %q in realm %s", clientID, c.realm)
	}
	return &oauthContext{provider: c.rc.OAuth2, clientID: clientID, client: cl}, nil
}

// thingClient is the OAuth 2.0 client of a thing: its thingOAuth2ClientName,
// else the IoT Service's client.
func thingClient(c *reqCtx, thing *identity) string {
	if n := thing.first("thingOAuth2ClientName"); n != "" {
		return n
	}
	return c.rc.IoT.OAuthClientName
}

// javaSet formats scopes as AM's messages do: [a, b].
func javaSet(s []string) string { return "[" + strings.Join(s, ", ") + "]" }

// validateScopes applies AM's default scope validator.
func validateScopes(requested []string, cl *OAuth2Client) ([]string, error) {
	if len(requested) == 0 {
		if len(cl.DefaultScopes) == 0 {
			return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_scope", "No scope requested and no default scope configured")
		}
		return append([]string(nil), cl.DefaultScopes...), nil
	}
	var bad []string
	for _, sc := range requested {
		if !slices.Contains(cl.Scopes, sc) {
			bad = append(bad, sc)
		}
	}
	if len(bad) > 0 {
		return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_scope", "Unknown/invalid scope(s): "+javaSet(bad))
	}
	return dedupe(requested), nil
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func lifetime(client, provider int64) time.Duration {
	if client > 0 {
		return time.Duration(client) * time.Second
	}
	return time.Duration(provider) * time.Second
}

// issue mints an access token (and a refresh token when the provider and
// client allow it and wantRefresh) for the grant, and answers with an
// RFC 6749 token response.
//
// newGrant says that g is not stored yet: it is stored with the tokens.
func (s *Server) issue(c *reqCtx, oc *oauthContext, g *grant, scopes []string, wantRefresh, newGrant bool) (map[string]any, error) {
	p := oc.provider
	policy := tokens.Policy{
		ClientID:    oc.clientID,
		ClientSide:  p.Core.StatelessTokensEnabled,
		SigningAlg:  p.Advanced.TokenSigningAlgorithm,
		Encrypt:     p.Advanced.TokenEncryptionEnabled,
		AccessLife:  lifetime(oc.client.AccessTokenLifetime, p.Core.AccessTokenLifetime),
		RefreshLife: lifetime(oc.client.RefreshTokenLifetime, p.Core.RefreshTokenLifetime),
		Refresh:     wantRefresh && p.Core.IssueRefreshToken && slices.Contains(oc.client.GrantTypes, GrantRefreshToken),
	}
	m, err := tokens.Mint(s.tokenKeys(), policy, g, scopes, c.now, newUUID()+"-"+randomID(4), newGrant)
	if err != nil {
		return nil, err
	}
	resp := map[string]any{"access_token": m.Access, "scope": strings.Join(scopes, " "),
		"token_type": "Bearer", "expires_in": int64(policy.AccessLife/time.Second) - 1}
	if m.Refresh != "" {
		resp["refresh_token"] = m.Refresh
	}
	s.issued.Add(int64(m.Count()))
	if !m.Stored() {
		// Client-side tokens: nothing to store; a signed request's nonce
		// is written before the answer.
		return resp, nil
	}
	// The grant (when new or extended) and the tokens are written in one
	// transaction: all of them are on disk before the answer, or none.
	err = c.update(m.Put)
	var ae *crest.Error
	if errors.As(err, &ae) {
		return nil, ae
	}
	if err != nil {
		return nil, storeErr(err)
	}
	return resp, nil
}

// lookupToken returns a live token and its grant.
func (s *Server) lookupToken(tok string, now time.Time) (*token, *grant) {
	return tokens.Lookup(s.db, s.tokenKeys(), tok, now)
}

// revokeToken revokes tok, found by lookupToken as t of grant g, and with
// wholeGrant the grant: every token issued for it. A grant is kept revoked
// at least until keepUntil, when every token of it has expired.
func (s *Server) revokeToken(tok string, t *token, g *grant, wholeGrant bool, keepUntil time.Time) error {
	return storeErr(tokens.Revoke(s.db, tok, t, g, wholeGrant, keepUntil))
}

// grantLifetime is how long the tokens of a grant of oc's client can live.
func grantLifetime(oc *oauthContext) time.Duration {
	return max(lifetime(oc.client.AccessTokenLifetime, oc.provider.Core.AccessTokenLifetime),
		lifetime(oc.client.RefreshTokenLifetime, oc.provider.Core.RefreshTokenLifetime))
}

type accessTokenRequest struct {
	Scope        []string `json:"scope"`
	RefreshToken string   `json:"refresh_token"`
}

// thingAccessToken serves get_access_token: a new grant for the thing, or a
// refresh of one of its own grants.
func (s *Server) thingAccessToken(c *reqCtx, thing *identity, payload []byte) error {
	var req accessTokenRequest
	if err := c.decodeJSON(payload, &req); err != nil {
		return err
	}
	oc, err := s.oauthFor(c, thingClient(c, thing))
	if err != nil {
		return err
	}
	if req.RefreshToken != "" {
		return s.refresh(c, oc, req.RefreshToken, req.Scope, thing.ID)
	}
	if !slices.Contains(oc.client.GrantTypes, GrantJWTBearer) {
		return crest.OAuthErr(http.StatusBadRequest, "unauthorized_client", "Client is not authorised to use the JWT bearer grant")
	}
	scopes, err := validateScopes(req.Scope, oc.client)
	if err != nil {
		return err
	}
	subject := thing.ID
	if attr := c.rc.IoT.OAuthSubjectAttribute; attr != "" {
		if subject = thing.first(attr); subject == "" {
			return crest.OAuthErr(http.StatusBadRequest, "invalid_grant", "The thing has no value for the subject attribute "+attr)
		}
	}
	g := &grant{ID: randomID(20), Realm: c.realm, Issuer: c.issuer(), ClientID: oc.clientID, Subject: subject,
		Thing: thing.ID, Scopes: scopes, AuthTime: c.now, Expires: c.now.Add(lifetime(oc.client.AccessTokenLifetime, oc.provider.Core.AccessTokenLifetime))}
	resp, err := s.issue(c, oc, g, scopes, true, true)
	if err != nil {
		return err
	}
	crest.WriteJSON(c.w, http.StatusOK, resp)
	return nil
}

// refresh exchanges a refresh token of the same client (and, when thingID is
// set, obtained by that thing) for a new access token with the same or fewer scopes.
func (s *Server) refresh(c *reqCtx, oc *oauthContext, refreshToken string, requested []string, thingID string) error {
	t, g := s.lookupToken(refreshToken, c.now)
	if t == nil || !t.Refresh || g.Realm != c.realm || g.ClientID != oc.clientID || (thingID != "" && !strings.EqualFold(g.Thing, thingID)) {
		return crest.OAuthErr(http.StatusBadRequest, "invalid_grant", "grant is invalid")
	}
	scopes := t.Scopes
	if len(requested) > 0 {
		var extra []string
		for _, sc := range requested {
			if !slices.Contains(t.Scopes, sc) {
				extra = append(extra, sc)
			}
		}
		if len(extra) > 0 {
			return crest.OAuthErr(http.StatusBadRequest, "invalid_scope", "Scope parameter is not a subset of the original scope: "+javaSet(extra))
		}
		scopes = dedupe(requested)
	}
	rotate := oc.provider.Core.IssueRefreshTokenOnRefreshedToken
	resp, err := s.issue(c, oc, g, scopes, rotate, false)
	if err != nil {
		return err
	}
	if rotate {
		if err := s.revokeToken(refreshToken, t, g, false, time.Time{}); err != nil {
			return err
		}
	}
	crest.WriteJSON(c.w, http.StatusOK, resp)
	return nil
}

// introspection returns the RFC 7662 answer for tok as seen by clientID.
func (s *Server) introspection(c *reqCtx, tok, clientID string, client *OAuth2Client) map[string]any {
	t, g := s.lookupToken(tok, c.now)
	if t == nil || g.Realm != c.realm {
		return map[string]any{"active": false}
	}
	if g.ClientID != clientID && !slices.Contains(client.Scopes, "am-introspect-all-tokens") {
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

func (s *Server) thingIntrospect(c *reqCtx, thing *identity, payload []byte) error {
	var req struct {
		Token string `json:"token"`
	}
	if err := c.decodeJSON(payload, &req); err != nil {
		return err
	}
	if req.Token == "" {
		return crest.OAuthErr(http.StatusBadRequest, "invalid_request", "Missing parameter: token")
	}
	oc, err := s.oauthFor(c, thingClient(c, thing))
	if err != nil {
		return err
	}
	crest.WriteJSON(c.w, http.StatusOK, s.introspection(c, req.Token, oc.clientID, oc.client))
	return nil
}

// --- /oauth2 endpoints ---

// authenticateClient checks client_secret_basic or client_secret_post.
func (s *Server) authenticateClient(c *reqCtx) (*oauthContext, error) {
	id, secret, ok := c.r.BasicAuth()
	if ok {
		// RFC 6749 §2.3.1: the credentials are form-encoded before Basic encoding.
		if v, err := url.QueryUnescape(id); err == nil {
			id = v
		}
		if v, err := url.QueryUnescape(secret); err == nil {
			secret = v
		}
	} else {
		id, secret = c.r.PostForm.Get("client_id"), c.r.PostForm.Get("client_secret")
	}
	bad := crest.OAuthErr(http.StatusUnauthorized, "invalid_client", "Client authentication failed")
	if id == "" {
		return nil, bad.WithLog("no client credentials")
	}
	oc, err := s.oauthFor(c, id)
	if err != nil {
		return nil, bad.WithLog("unknown client %q", id)
	}
	if oc.client.Secret == "" || !constantTimeEqual(secret, oc.client.Secret) {
		return nil, bad.WithLog("wrong secret for client %q", id)
	}
	return oc, nil
}

func (s *Server) parseForm(c *reqCtx) error {
	if c.r.Method != http.MethodPost {
		return crest.OAuthErr(http.StatusMethodNotAllowed, "invalid_request", "The request method must be POST")
	}
	c.r.Body = http.MaxBytesReader(c.w, c.r.Body, s.maxBody())
	if err := c.r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return crest.OAuthErr(http.StatusRequestEntityTooLarge, "invalid_request", "Request Entity Too Large").WithLog("%v", err)
		}
		return crest.OAuthErr(http.StatusBadRequest, "invalid_request", "The request body is not a valid form").WithLog("%v", err)
	}
	return nil
}

func (s *Server) handleTokenEndpoint(c *reqCtx) error {
	if err := s.parseForm(c); err != nil {
		return err
	}
	oc, err := s.authenticateClient(c)
	if err != nil {
		return err
	}
	f := c.r.PostForm
	gt := f.Get("grant_type")
	if gt == "" {
		return crest.OAuthErr(http.StatusBadRequest, "invalid_request", "Missing parameter: grant_type")
	}
	if !slices.Contains(oc.client.GrantTypes, gt) {
		return crest.OAuthErr(http.StatusBadRequest, "unauthorized_client", "Client is not authorised to use the grant type "+gt)
	}
	requested := strings.Fields(f.Get("scope"))
	switch gt {
	case "refresh_token":
		return s.refresh(c, oc, f.Get("refresh_token"), requested, "")
	case "client_credentials", "password":
		subject := oc.clientID
		if gt == "password" {
			if !s.checkPassword(c.realm, f.Get("username"), f.Get("password")) {
				return crest.OAuthErr(http.StatusBadRequest, "invalid_grant", "Authentication failed")
			}
			subject = f.Get("username")
			if x := s.getIdentity(c.realm, subject); x != nil {
				subject = x.ID
			}
		}
		scopes, err := validateScopes(requested, oc.client)
		if err != nil {
			return err
		}
		g := &grant{ID: randomID(20), Realm: c.realm, Issuer: c.issuer(), ClientID: oc.clientID, Subject: subject,
			Scopes: scopes, AuthTime: c.now, Expires: c.now.Add(lifetime(oc.client.AccessTokenLifetime, oc.provider.Core.AccessTokenLifetime))}
		resp, err := s.issue(c, oc, g, scopes, gt == "password", true)
		if err != nil {
			return err
		}
		crest.WriteJSON(c.w, http.StatusOK, resp)
		return nil
	}
	return crest.OAuthErr(http.StatusBadRequest, "unsupported_grant_type", "Grant type is not supported: "+gt)
}

// clientAndToken reads the form of an introspection or revocation: the
// client, authenticated, and the token it asks about.
func (s *Server) clientAndToken(c *reqCtx) (*oauthContext, string, error) {
	if err := s.parseForm(c); err != nil {
		return nil, "", err
	}
	oc, err := s.authenticateClient(c)
	if err != nil {
		return nil, "", err
	}
	tok := c.r.PostForm.Get("token")
	if tok == "" {
		return nil, "", crest.OAuthErr(http.StatusBadRequest, "invalid_request", "Missing parameter: token")
	}
	return oc, tok, nil
}

func (s *Server) handleIntrospectEndpoint(c *reqCtx) error {
	oc, tok, err := s.clientAndToken(c)
	if err != nil {
		return err
	}
	crest.WriteJSON(c.w, http.StatusOK, s.introspection(c, tok, oc.clientID, oc.client))
	return nil
}

// handleRevoke revokes an access token, or a refresh token together with
// every token of its grant. Unknown tokens are answered 200, per RFC 7009.
func (s *Server) handleRevoke(c *reqCtx) error {
	oc, tok, err := s.clientAndToken(c)
	if err != nil {
		return err
	}
	if t, g := s.lookupToken(tok, c.now); t != nil && g.ClientID == oc.clientID && g.Realm == c.realm {
		if err := s.revokeToken(tok, t, g, t.Refresh, c.now.Add(grantLifetime(oc))); err != nil {
			return err
		}
	}
	crest.WriteJSON(c.w, http.StatusOK, map[string]any{})
	return nil
}

func (s *Server) handleOpenIDConfig(c *reqCtx) error {
	if c.r.Method != http.MethodGet {
		return crest.OAuthErr(http.StatusMethodNotAllowed, "invalid_request", "Method Not Allowed")
	}
	if c.rc.OAuth2 == nil {
		return crest.OAuthErr(http.StatusNotFound, "not_found", "The OAuth2 Provider is not configured in this realm")
	}
	iss := c.issuer()
	scopes := map[string]bool{}
	for _, cl := range c.rc.OAuth2Clients {
		for _, sc := range cl.Scopes {
			scopes[sc] = true
		}
	}
	supported := []string{}
	for sc := range scopes {
		supported = append(supported, sc)
	}
	sort.Strings(supported)
	crest.WriteJSON(c.w, http.StatusOK, map[string]any{
		"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/access_token",
		"introspection_endpoint": iss + "/introspect", "revocation_endpoint": iss + "/token/revoke",
		"device_authorization_endpoint": iss + "/device/code", "userinfo_endpoint": iss + "/userinfo",
		"jwks_uri": iss + "/connect/jwk_uri", "scopes_supported": supported,
		"grant_types_supported":                 []string{"client_credentials", "password", "refresh_token", GrantJWTBearer, GrantDeviceCode},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
	})
	return nil
}

func (s *Server) handleJWKS(c *reqCtx) error {
	if c.r.Method != http.MethodGet {
		return crest.OAuthErr(http.StatusMethodNotAllowed, "invalid_request", "Method Not Allowed")
	}
	pub := s.keys.TokenKey.Public()
	crest.WriteJSON(c.w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	return nil
}

// handleServerInfo serves /json/serverinfo/* (and /json/serverinfo/version).
func (s *Server) handleServerInfo(c *reqCtx, sub string) error {
	if c.r.Method != http.MethodGet {
		return crest.Err(http.StatusMethodNotAllowed, "Method Not Allowed")
	}
	var info map[string]any
	switch sub {
	case "*":
		info = map[string]any{
			"_id": "*", "_rev": "1", "domains": []string{}, "protectedUserAttributes": []string{"telephoneNumber", "mail"},
			"cookieName": c.cfg.CookieName, "secureCookie": false, "forgotPassword": "false", "forgotUsername": "false",
			"kbaEnabled": "false", "selfRegistration": "false", "lang": "en-US",
			"successfulUserRegistrationDestination": "default", "socialImplementations": []string{},
			"referralsEnabled": "false", "zeroPageLogin": map[string]any{"enabled": true, "refererWhitelist": []string{}, "allowedWithoutReferer": true},
			"realm": c.realm, "xuiUserSessionValidationEnabled": true, "fileBasedConfiguration": true, "userIdAttributes": []string{},
		}
	case "version":
		info = map[string]any{"_id": "version", "_rev": "1", "version": "7.4.0", "fullVersion": "ForgeRock Access Management 7.4.0 (Thingway local AM)", "revision": "thingway", "date": ""}
	default:
		return errNotFound
	}
	if f := c.r.URL.Query().Get("_fields"); f != "" {
		keep := map[string]bool{"_id": true, "_rev": true}
		for _, name := range strings.Split(f, ",") {
			keep[strings.TrimSpace(name)] = true
		}
		for k := range info {
			if !keep[k] {
				delete(info, k)
			}
		}
	}
	c.w.Header().Set("Content-API-Version", "resource=1.1")
	crest.WriteJSON(c.w, http.StatusOK, info)
	return nil
}
