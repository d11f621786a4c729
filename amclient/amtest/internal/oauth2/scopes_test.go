package oauth2

import (
	"slices"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
)

// AM's default scope validator: the requested scopes, each one of the
// client's, in the order asked without repeats; without any, the client's
// default scopes; AM's messages name the refused scopes as a Java set.
func TestValidateScopes(t *testing.T) {
	cl := &config.OAuth2Client{Scopes: []string{"publish", "subscribe"}, DefaultScopes: []string{"publish"}}
	for _, tc := range []struct {
		requested []string
		want      []string
		err       string
	}{
		{nil, []string{"publish"}, ""},
		{[]string{"subscribe", "publish", "subscribe"}, []string{"subscribe", "publish"}, ""},
		{[]string{"delete", "publish", "admin"}, nil, "Unknown/invalid scope(s): [delete, admin]"},
		{[]string{""}, nil, "Unknown/invalid scope(s): []"},
	} {
		got, err := validateScopes(tc.requested, cl)
		if tc.err != "" {
			wantErr(t, err, 400, "invalid_scope", tc.err)
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("validateScopes(%q) = %q, %v; want %q", tc.requested, got, err, tc.want)
		}
	}
	// The defaults are the client's copy: a grant's scopes do not alias them.
	got, _ := validateScopes(nil, cl)
	got[0] = "changed"
	if cl.DefaultScopes[0] != "publish" {
		t.Errorf("the client's default scopes changed: %q", cl.DefaultScopes)
	}
	_, err := validateScopes(nil, &config.OAuth2Client{Scopes: []string{"publish"}})
	wantErr(t, err, 400, "invalid_scope", "No scope requested and no default scope configured")
}

// A refresh keeps the refresh token's scopes or narrows them.
func TestRefreshScopes(t *testing.T) {
	granted := []string{"publish", "subscribe"}
	if got, err := refreshScopes(granted, nil); err != nil || !slices.Equal(got, granted) {
		t.Errorf("no scope asked: %q, %v", got, err)
	}
	if got, err := refreshScopes(granted, []string{"subscribe", "subscribe"}); err != nil || !slices.Equal(got, []string{"subscribe"}) {
		t.Errorf("narrower: %q, %v", got, err)
	}
	_, err := refreshScopes(granted, []string{"publish", "read", "write"})
	wantErr(t, err, 400, "invalid_scope", "Scope parameter is not a subset of the original scope: [read, write]")
}

// The client's lifetimes win over the provider's; a refresh token comes
// only when the caller wants one, the provider issues them and the client
// may use the refresh grant.
func TestPolicy(t *testing.T) {
	if lifetime(0, 3600) != time.Hour || lifetime(60, 3600) != time.Minute {
		t.Errorf("lifetime: %v, %v", lifetime(0, 3600), lifetime(60, 3600))
	}
	f := newFixture(t)
	f.rc.OAuth2Clients["thing-client"].AccessTokenLifetime = 60
	c := f.client("thing-client")
	p := c.policy(true)
	if p.ClientID != "thing-client" || p.AccessLife != time.Minute || p.RefreshLife != 7*24*time.Hour || !p.Refresh || p.ClientSide {
		t.Errorf("policy = %+v", p)
	}
	if c.grantLifetime() != 7*24*time.Hour {
		t.Errorf("grant lifetime = %v", c.grantLifetime())
	}
	if c.policy(false).Refresh {
		t.Error("a refresh token the caller did not want")
	}
	f.rc.OAuth2.Core.IssueRefreshToken = false
	if c.policy(true).Refresh {
		t.Error("a refresh token the provider does not issue")
	}
	f.rc.OAuth2.Core.IssueRefreshToken = true
	if f.client("gateway").policy(true).Refresh {
		t.Error("a refresh token for a client without the refresh grant")
	}
	f.rc.OAuth2.Core.StatelessTokensEnabled = true
	f.rc.OAuth2.Advanced = config.OAuth2Advanced{TokenSigningAlgorithm: "HS256", TokenEncryptionEnabled: true}
	if p := c.policy(true); !p.ClientSide || p.SigningAlg != "HS256" || !p.Encrypt {
		t.Errorf("client-side policy = %+v", p)
	}
}
