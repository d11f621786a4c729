package amclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/thingway/thingway/callback"
)

// TokenResponse is an OAuth 2.0 token response (RFC 6749 §5.1).
type TokenResponse struct {
	// AccessToken is the access token.
	AccessToken string `json:"access_token"`
	// RefreshToken is the refresh token, when AM issued one.
	RefreshToken string `json:"refresh_token,omitempty"`
	// Scope is the space-separated list of granted scopes.
	Scope string `json:"scope,omitempty"`
	// TokenType is normally "Bearer".
	TokenType string `json:"token_type,omitempty"`
	// ExpiresIn is the access token's lifetime in seconds.
	ExpiresIn int64 `json:"expires_in,omitempty"`
	// Raw is AM's answer as it arrived.
	Raw json.RawMessage `json:"-"`
}

// Scopes returns the granted scopes.
func (t *TokenResponse) Scopes() []string { return strings.Fields(t.Scope) }

// UnmarshalJSON accepts expires_in as any JSON number.
func (t *TokenResponse) UnmarshalJSON(b []byte) error {
	type plain TokenResponse
	var v struct {
		plain
		ExpiresIn json.Number `json:"expires_in"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*t = TokenResponse(v.plain)
	n, err := callback.Seconds(v.ExpiresIn)
	if err != nil {
		return fmt.Errorf("expires_in: %w", err)
	}
	t.ExpiresIn = n
	return nil
}

// DeviceAuthorization is AM's answer to a user code request: an OAuth 2.0
// device authorization response (RFC 8628 §3.2); its DeviceCode is what
// the thing presents to [Client.UserToken].
type DeviceAuthorization = callback.DeviceAuthorization

// thingsURL is the URL of a things endpoint action, built as the iot-edge
// SDK builds it (AM compares it with the aud of signed requests):
// B/json/things/*?_action=<action>[&realm=<realm>].
func (c *Client) thingsURL(action string) string {
	u := c.base() + "/json/things/*?_action=" + action
	if c.Realm != "" {
		u += "&realm=" + queryValue(c.Realm)
	}
	return u
}

// attributesURL is B/json/things/*[?realm=<realm>][&_fields=a,b].
func (c *Client) attributesURL(fields []string) string {
	var q []string
	if c.Realm != "" {
		q = append(q, "realm="+queryValue(c.Realm))
	}
	if len(fields) > 0 {
		names := make([]string, len(fields))
		for i, f := range fields {
			names[i] = queryValue(f)
		}
		q = append(q, "_fields="+strings.Join(names, ","))
	}
	u := c.base() + "/json/things/*"
	if len(q) > 0 {
		u += "?" + strings.Join(q, "&")
	}
	return u
}

func (c *Client) sessionsURL(action string) string {
	return c.base() + "/json/sessions?_action=" + action
}

// sessionCall sends a request made with session s. With s.Key the payload
// (plus the token as csrf) travels as a signed JWS, otherwise as JSON (no
// body when payload is nil).
func (c *Client) sessionCall(ctx context.Context, s *Session, method, u, version string, payload map[string]any) (*response, error) {
	if s == nil || s.Token == "" {
		return nil, errors.New("amclient: no session")
	}
	if _, err := c.CookieName(ctx); err != nil {
		return nil, err
	}
	r := request{method: method, url: u, version: version, token: s.Token}
	if s.Key != nil {
		if err := s.acquire(ctx); err != nil {
			return nil, err
		}
		defer s.release()
		p := make(map[string]any, len(payload)+1)
		for k, v := range payload {
			p[k] = v
		}
		p["csrf"] = s.Token
		jws, err := callback.SignRequest(s.Key, u, version, s.nextNonce(), p)
		if err != nil {
			return nil, fmt.Errorf("amclient: signing request: %w", err)
		}
		r.body, r.contentType = []byte(jws), "application/jose"
	} else if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("amclient: request body: %w", err)
		}
		r.body = b
	}
	return c.do(ctx, r)
}

// thingsCall makes a things endpoint request and decodes a 200 answer into out.
func (c *Client) thingsCall(ctx context.Context, s *Session, method, u string, payload map[string]any, out any) (*response, error) {
	res, err := c.sessionCall(ctx, s, method, u, thingsVersion, payload)
	if err != nil {
		return nil, err
	}
	if res.status != http.StatusOK {
		return res, newError(res.status, res.body)
	}
	if err := json.Unmarshal(res.body, out); err != nil {
		return res, fmt.Errorf("amclient: AM's answer to %s is not the expected JSON: %w", pathOf(u), err)
	}
	return res, nil
}

// Attributes reads the attributes of the session's thing:
// GET /json/things/*[?realm=…][&_fields=…]. AM returns "_id" (a string)
// and each readable attribute as an array of strings; with fields, only
// those attributes.
func (c *Client) Attributes(ctx context.Context, s *Session, fields ...string) (map[string]any, error) {
	var out map[string]any
	_, err := c.thingsCall(ctx, s, http.MethodGet, c.attributesURL(fields), nil, &out)
	return out, err
}

func scopePayload(scopes []string) map[string]any {
	p := map[string]any{}
	if len(scopes) > 0 {
		p["scope"] = scopes
	}
	return p
}

// AccessToken asks AM for an OAuth 2.0 access token for the session's
// thing (_action=get_access_token). Without scopes, AM grants the OAuth 2.0
// client's default scopes. An OAuth failure is an [*Error] whose
// OAuthError is e.g. invalid_scope.
func (c *Client) AccessToken(ctx context.Context, s *Session, scopes ...string) (*TokenResponse, error) {
	return c.token(ctx, s, "get_access_token", scopePayload(scopes))
}

// RefreshAccessToken exchanges refreshToken for a new access token
// (_action=get_access_token with refresh_token). Without scopes, the new
// token has the scopes of the old one; scopes may narrow them.
func (c *Client) RefreshAccessToken(ctx context.Context, s *Session, refreshToken string, scopes ...string) (*TokenResponse, error) {
	p := scopePayload(scopes)
	p["refresh_token"] = refreshToken
	return c.token(ctx, s, "get_access_token", p)
}

// UserToken polls once for the token of a device authorization grant
// started with [Client.UserCode] (_action=get_user_token). Until the user
// decides, AM answers with an [*Error] whose OAuthError is
// authorization_pending (or slow_down); a refusal gives
// authorization_declined and an expired code expired_token. Poll no more
// often than [DeviceAuthorization.Interval] seconds.
func (c *Client) UserToken(ctx context.Context, s *Session, deviceCode string) (*TokenResponse, error) {
	return c.token(ctx, s, "get_user_token", map[string]any{"device_code": deviceCode})
}

func (c *Client) token(ctx context.Context, s *Session, action string, payload map[string]any) (*TokenResponse, error) {
	var out TokenResponse
	res, err := c.thingsCall(ctx, s, http.MethodPost, c.thingsURL(action), payload, &out)
	if err != nil {
		return nil, err
	}
	out.Raw = res.body
	return &out, nil
}

// IntrospectToken asks AM to introspect token with the thing's OAuth 2.0
// client (_action=introspect_token). The answer is RFC 7662's: {"active":
// false} for unknown, expired or revoked tokens.
func (c *Client) IntrospectToken(ctx context.Context, s *Session, token string) (map[string]any, error) {
	var out map[string]any
	_, err := c.thingsCall(ctx, s, http.MethodPost, c.thingsURL("introspect_token"), map[string]any{"token": token}, &out)
	return out, err
}

// UserCode starts an OAuth 2.0 device authorization grant for the
// session's thing (_action=get_user_code): a user approves the returned
// code, then [Client.UserToken] collects the token.
func (c *Client) UserCode(ctx context.Context, s *Session, scopes ...string) (*DeviceAuthorization, error) {
	var out DeviceAuthorization
	res, err := c.thingsCall(ctx, s, http.MethodPost, c.thingsURL("get_user_code"), scopePayload(scopes), &out)
	if err != nil {
		return nil, err
	}
	out.Raw = res.body
	return &out, nil
}

// ValidateSession asks AM whether the session is valid
// (POST /json/sessions?_action=validate). AM's 401 means invalid.
//
// AM 7.4 cannot validate a restricted session itself (issue OPENAM-19492)
// and answers 401, so for a session with a Key false may also mean that
// AM could not tell.
func (c *Client) ValidateSession(ctx context.Context, s *Session) (bool, error) {
	res, err := c.sessionCall(ctx, s, http.MethodPost, c.sessionsURL("validate"), sessionsVersion, nil)
	if err != nil {
		return false, err
	}
	switch res.status {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return false, nil
	default:
		return false, newError(res.status, res.body)
	}
	var v struct {
		Valid bool `json:"valid"`
	}
	if err := json.Unmarshal(res.body, &v); err != nil {
		return false, fmt.Errorf("amclient: AM's answer to session validation is not the expected JSON: %w", err)
	}
	return v.Valid, nil
}

// Logout ends the session (POST /json/sessions?_action=logout).
func (c *Client) Logout(ctx context.Context, s *Session) error {
	res, err := c.sessionCall(ctx, s, http.MethodPost, c.sessionsURL("logout"), sessionsVersion, nil)
	if err != nil {
		return err
	}
	if res.status != http.StatusOK {
		return newError(res.status, res.body)
	}
	return nil
}
