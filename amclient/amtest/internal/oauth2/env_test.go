package oauth2

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// fixture is a realm "/r" with an OAuth2 Provider and its clients, in an
// in-memory store, at a clock the test moves.
type fixture struct {
	t      *testing.T
	now    time.Time
	db     store.Store
	keys   tokens.Keys
	rc     *config.Realm
	issued atomic.Int64
	polls  Polls
}

const issuer = "http://am.example/openam/oauth2/realms/root/realms/r"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	f.db = store.NewMem(func() time.Time { return f.now })
	f.keys = tokens.Keys{Sign: &jose.JSONWebKey{Key: k, KeyID: "k", Algorithm: "ES256", Use: "sig"}, HMAC: tokens.RandomBytes(32), Enc: tokens.RandomBytes(32)}
	f.rc = &config.Realm{
		IoT: &config.IoTService{OAuthClientName: "thing-client"},
		OAuth2: &config.OAuth2Provider{Core: config.OAuth2Core{AccessTokenLifetime: 3600, RefreshTokenLifetime: 604800, IssueRefreshToken: true},
			Device: config.DeviceCode{DeviceCodeLifetime: 300, DevicePollInterval: 5}},
		OAuth2Clients: map[string]*config.OAuth2Client{
			"thing-client": {Scopes: []string{"publish", "subscribe"},
				GrantTypes: []string{config.GrantJWTBearer, config.GrantDeviceCode, config.GrantRefreshToken}},
			"app": {Secret: "s3cret", Scopes: []string{"publish", "read"}, DefaultScopes: []string{"read"},
				GrantTypes: []string{"client_credentials", "password", "authorization_code", config.GrantRefreshToken}},
			"gateway":  {Secret: "gw", Scopes: []string{"am-introspect-all-tokens"}, GrantTypes: []string{"client_credentials"}},
			"inactive": {Secret: "x", Inactive: true, GrantTypes: []string{"client_credentials"}},
		},
	}
	return f
}

// env is the fixture's view of one request, at its clock now.
func (f *fixture) env() *Env {
	return &Env{Realm: "/r", Issuer: issuer, Config: f.rc, Now: f.now, Keys: f.keys, DB: f.db,
		Get: func(kind, key string, v any) bool {
			var found bool
			if err := f.db.View(func(tx store.Tx) error {
				var err error
				found, err = tx.Get(kind, key, v)
				return err
			}); err != nil {
				f.t.Fatal(err)
			}
			return found
		},
		Update: f.db.Update, Issued: &f.issued, Polls: &f.polls}
}

func (f *fixture) client(id string) *Client {
	f.t.Helper()
	c, err := f.env().client(id)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// wantErr checks that err is AM's OAuth 2.0 error with this status, code
// and description.
func wantErr(t *testing.T, err error, status int, code, description string) {
	t.Helper()
	var ae *crest.Error
	if !errors.As(err, &ae) || !ae.OAuth || ae.Status != status || ae.OAuthCode != code || ae.Message != description {
		t.Errorf("error = %#v, want %d %s %q", err, status, code, description)
	}
}
