package thing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/callback"
)

// AccessToken is an OAuth 2.0 token response.
type AccessToken struct {
	AccessToken  string
	RefreshToken string // empty when AM issued none
	TokenType    string
	Scope        []string
	// ExpiresIn is the access token's lifetime in seconds.
	ExpiresIn int64
	// Raw is AM's answer as it arrived.
	Raw json.RawMessage
}

func decodeToken(b []byte) (*AccessToken, error) {
	var v struct {
		AccessToken  string      `json:"access_token"`
		RefreshToken string      `json:"refresh_token"`
		TokenType    string      `json:"token_type"`
		Scope        string      `json:"scope"`
		ExpiresIn    json.Number `json:"expires_in"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.AccessToken == "" {
		return nil, fmt.Errorf("thing: AM's token response is not one: %s", short(b))
	}
	return &AccessToken{AccessToken: v.AccessToken, RefreshToken: v.RefreshToken, TokenType: v.TokenType,
		Scope: strings.Fields(v.Scope), ExpiresIn: saturated(v.ExpiresIn), Raw: b}, nil
}

// saturated is callback.Seconds, 0 for what is not a number.
func saturated(n json.Number) int64 {
	s, _ := callback.Seconds(n)
	return s
}

func short(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

func scopePayload(scopes []string) map[string]any {
	p := map[string]any{}
	if len(scopes) > 0 {
		p["scope"] = scopes
	}
	return p
}

// AccessToken asks AM for an OAuth 2.0 access token with scopes (none: the
// client's default scopes).
func (t *Thing) AccessToken(ctx context.Context, scopes ...string) (*AccessToken, error) {
	b, err := t.do(ctx, callback.OpAccessToken, scopePayload(scopes), nil)
	if err != nil {
		return nil, err
	}
	return decodeToken(b)
}

// RefreshAccessToken exchanges a refresh token for a new access token with
// the same scopes, or with fewer when scopes are given.
func (t *Thing) RefreshAccessToken(ctx context.Context, refreshToken string, scopes ...string) (*AccessToken, error) {
	p := scopePayload(scopes)
	p["refresh_token"] = refreshToken
	b, err := t.do(ctx, callback.OpAccessToken, p, nil)
	if err != nil {
		return nil, err
	}
	return decodeToken(b)
}

// Introspection is an RFC 7662 introspection result.
type Introspection struct {
	Active bool
	Scope  []string
	// Claims holds every member of the answer.
	Claims map[string]any
	// Local is true when AM could not be asked and the token was checked
	// against AM's published keys instead.
	Local bool
}

// tokenKeySource is implemented by connectors that can fetch AM's issuer
// and JWK set (an *amclient.Client); through a gateway, the gateway falls
// back itself.
type tokenKeySource interface {
	TokenKeys(ctx context.Context) (issuer string, set *jose.JSONWebKeySet, err error)
}

// IntrospectAccessToken asks AM whether token is active. When AM cannot
// answer and the connector can fetch AM's keys, a client-side signed
// token is checked locally, as the gateway does (internal/introspect):
// signature with AM's key for its kid, iss, tokenName access_token, exp
// required, exp, nbf and iat with 60 s leeway.
func (t *Thing) IntrospectAccessToken(ctx context.Context, token string) (*Introspection, error) {
	b, err := t.do(ctx, callback.OpIntrospect, map[string]any{"token": token}, nil)
	local := err != nil
	if local {
		if t.local == nil || ctx.Err() != nil {
			return nil, err
		}
		r, lerr := t.local.Check(ctx, token)
		if lerr != nil {
			return nil, errors.Join(err, fmt.Errorf("thing: local introspection: %w", lerr))
		}
		// The answer AM would have given, decoded as AM's is.
		b = r.JSON()
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("thing: AM's introspection answer is not JSON: %w", err)
	}
	in := &Introspection{Claims: m, Local: local}
	in.Active, _ = m["active"].(bool)
	if s, ok := m["scope"].(string); ok {
		in.Scope = strings.Fields(s)
	}
	return in, nil
}

// Attributes are a thing's identity attributes as AM returns them.
type Attributes struct {
	// ID is the thing's identity ID (_id).
	ID string
	// Values holds each attribute's values.
	Values map[string][]string
	// Raw is AM's answer as it arrived.
	Raw json.RawMessage
}

// First returns the first value of attribute name, or "".
func (a *Attributes) First(name string) string {
	if v := a.Values[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Attributes reads the thing's attributes that AM's IoT Service allows it
// to read; with names, only those.
func (t *Thing) Attributes(ctx context.Context, names ...string) (*Attributes, error) {
	b, err := t.do(ctx, callback.OpAttributes, nil, names)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("thing: AM's attributes are not a JSON object: %w", err)
	}
	a := &Attributes{Values: map[string][]string{}, Raw: b}
	for k, v := range m {
		if k == "_id" {
			json.Unmarshal(v, &a.ID)
			continue
		}
		var vals []string
		if json.Unmarshal(v, &vals) == nil {
			a.Values[k] = vals
		}
	}
	if a.ID != "" {
		t.mu.Lock()
		if t.id == "" {
			t.id = a.ID
		}
		t.mu.Unlock()
	}
	return a, nil
}

// DeviceAuthorization is AM's answer to a user code request (RFC 8628);
// [Thing.UserToken] polls with it.
type DeviceAuthorization = callback.DeviceAuthorization

// UserCode starts the OAuth 2.0 device authorization grant: the thing asks
// a person (who opens VerificationURIComplete) to let it act for them.
func (t *Thing) UserCode(ctx context.Context, scopes ...string) (*DeviceAuthorization, error) {
	b, err := t.do(ctx, callback.OpUserCode, scopePayload(scopes), nil)
	if err != nil {
		return nil, err
	}
	var da DeviceAuthorization
	if err := json.Unmarshal(b, &da); err != nil || da.DeviceCode == "" {
		return nil, fmt.Errorf("thing: AM's device authorization is not one: %s", short(b))
	}
	da.Raw = b
	return &da, nil
}

// UserToken polls AM until the person approves (a user access token),
// denies (an *Error with OAuthError authorization_declined), the code
// expires (expired_token), or ctx ends. It waits da.Interval seconds (5 if
// unset) between polls and 5 s more each time AM says slow_down.
func (t *Thing) UserToken(ctx context.Context, da *DeviceAuthorization) (*AccessToken, error) {
	interval := time.Duration(da.Interval) * time.Second
	if interval <= 0 {
		interval = 5 * time.Second
	}
	for {
		b, err := t.do(ctx, callback.OpUserToken, map[string]any{"device_code": da.DeviceCode}, nil)
		if err == nil {
			return decodeToken(b)
		}
		var e *Error
		if !errors.As(err, &e) {
			return nil, err
		}
		switch e.OAuthError {
		case "authorization_pending":
		case "slow_down":
			interval += 5 * time.Second
		default:
			return nil, err
		}
		t.log.LogAttrs(ctx, slog.LevelDebug, "user token pending, polling again", slog.String("reason", e.OAuthError),
			slog.Duration("interval", interval))
		timer := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
}
