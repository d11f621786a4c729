package amtest

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/oauth2"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
)

// OAuth 2.0's HTTP endpoints: the /oauth2 endpoints and the things
// endpoint's token actions read the request, ask the OAuth 2.0 room
// (amclient/amtest/internal/oauth2) and write its answer; the rules
// (clients, scopes, grants, issuing, introspection, the device grant) are
// the room's.

// oauth is the OAuth 2.0 room's view of the request.
func (s *Server) oauth(c *reqCtx) *oauth2.Env {
	return &oauth2.Env{Realm: c.realm, Issuer: c.issuer(), Config: c.rc, Now: c.now, Keys: s.tokenKeys(),
		DB: failStore{s.db}, Get: s.get, Update: func(f func(tx storeTx) error) error { return storeErr(c.update(f)) },
		Issued: &s.issued, Polls: &s.st.polls}
}

// failStore is the server's store with its failures marked for the log
// (storeErr), as the room returns them.
type failStore struct{ store.Store }

func (f failStore) View(fn func(tx storeTx) error) error   { return storeErr(f.Store.View(fn)) }
func (f failStore) Update(fn func(tx storeTx) error) error { return storeErr(f.Store.Update(fn)) }

// thingAnswer writes the room's answer to a things-endpoint action.
func thingAnswer(c *reqCtx, resp map[string]any, err error) error {
	if err != nil {
		return err
	}
	crest.WriteJSON(c.w, http.StatusOK, resp)
	return nil
}

// thingAccessToken serves get_access_token: a new grant for the thing, or a
// refresh of one of its own grants.
func (s *Server) thingAccessToken(c *reqCtx, thing *identity, payload []byte) error {
	var req struct {
		Scope        []string `json:"scope"`
		RefreshToken string   `json:"refresh_token"`
	}
	if err := c.decodeJSON(payload, &req); err != nil {
		return err
	}
	resp, err := s.oauth(c).ThingToken(thing, req.Scope, req.RefreshToken)
	return thingAnswer(c, resp, err)
}

// thingIntrospect serves introspect_token.
func (s *Server) thingIntrospect(c *reqCtx, thing *identity, payload []byte) error {
	var req struct {
		Token string `json:"token"`
	}
	if err := c.decodeJSON(payload, &req); err != nil {
		return err
	}
	resp, err := s.oauth(c).ThingIntrospect(thing, req.Token)
	return thingAnswer(c, resp, err)
}

// --- /oauth2 endpoints ---

// authenticateClient reads the client's credentials, client_secret_basic
// or client_secret_post, and checks them.
func (s *Server) authenticateClient(c *reqCtx, e *oauth2.Env) (*oauth2.Client, error) {
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
	return e.AuthenticateClient(id, secret)
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
	e := s.oauth(c)
	cl, err := s.authenticateClient(c, e)
	if err != nil {
		return err
	}
	f := c.r.PostForm
	resp, err := e.Token(cl, oauth2.TokenRequest{GrantType: f.Get("grant_type"), Scope: f.Get("scope"),
		RefreshToken: f.Get("refresh_token"), Username: f.Get("username"), Password: f.Get("password")},
		func(username, password string) (string, bool) {
			if !s.checkPassword(c.realm, username, password) {
				return "", false
			}
			if x := s.getIdentity(c.realm, username); x != nil {
				return x.ID, true
			}
			return username, true
		})
	if err != nil {
		return err
	}
	crest.WriteJSON(c.w, http.StatusOK, resp)
	return nil
}

// clientAndToken reads the form of an introspection or revocation: the
// client, authenticated, and the token it asks about.
func (s *Server) clientAndToken(c *reqCtx, e *oauth2.Env) (*oauth2.Client, string, error) {
	if err := s.parseForm(c); err != nil {
		return nil, "", err
	}
	cl, err := s.authenticateClient(c, e)
	if err != nil {
		return nil, "", err
	}
	tok := c.r.PostForm.Get("token")
	if tok == "" {
		return nil, "", crest.OAuthErr(http.StatusBadRequest, "invalid_request", "Missing parameter: token")
	}
	return cl, tok, nil
}

func (s *Server) handleIntrospectEndpoint(c *reqCtx) error {
	e := s.oauth(c)
	cl, tok, err := s.clientAndToken(c, e)
	if err != nil {
		return err
	}
	crest.WriteJSON(c.w, http.StatusOK, e.Introspect(cl, tok))
	return nil
}

// handleRevoke revokes an access token, or a refresh token together with
// every token of its grant. Unknown tokens are answered 200, per RFC 7009.
func (s *Server) handleRevoke(c *reqCtx) error {
	e := s.oauth(c)
	cl, tok, err := s.clientAndToken(c, e)
	if err != nil {
		return err
	}
	if err := e.Revoke(cl, tok); err != nil {
		return err
	}
	crest.WriteJSON(c.w, http.StatusOK, map[string]any{})
	return nil
}

func (s *Server) handleOpenIDConfig(c *reqCtx) error {
	if c.r.Method != http.MethodGet {
		return crest.OAuthErr(http.StatusMethodNotAllowed, "invalid_request", "Method Not Allowed")
	}
	doc, err := s.oauth(c).OpenIDConfiguration()
	if err != nil {
		return err
	}
	crest.WriteJSON(c.w, http.StatusOK, doc)
	return nil
}

func (s *Server) handleJWKS(c *reqCtx) error {
	if c.r.Method != http.MethodGet {
		return crest.OAuthErr(http.StatusMethodNotAllowed, "invalid_request", "Method Not Allowed")
	}
	crest.WriteJSON(c.w, http.StatusOK, oauth2.JWKS(s.tokenKeys()))
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
	crest.KeepFields(info, c.r.URL.Query().Get("_fields"))
	c.w.Header().Set("Content-API-Version", "resource=1.1")
	crest.WriteJSON(c.w, http.StatusOK, info)
	return nil
}
