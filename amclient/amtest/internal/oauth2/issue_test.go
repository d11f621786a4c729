package oauth2

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
)

// keys lists an answer's members.
func keys(m map[string]any) string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return strings.Join(k, " ")
}

// owner is a resource owner store with one user, bjensen, whose identity's
// ID is spelt BJensen.
func owner(username, password string) (string, bool) {
	if strings.EqualFold(username, "bjensen") && password == "Ch4ng31t" {
		return "BJensen", true
	}
	return "", false
}

// The client is authenticated by its secret; every refusal is the same
// 401 invalid_client, with the reason for the log only.
func TestAuthenticateClient(t *testing.T) {
	f := newFixture(t)
	e := f.env()
	if c, err := e.AuthenticateClient("app", "s3cret"); err != nil || c.ID != "app" || c.Settings != f.rc.OAuth2Clients["app"] {
		t.Fatalf("AuthenticateClient = %+v, %v", c, err)
	}
	for _, tc := range []struct{ id, secret, log string }{
		{"", "s3cret", "no client credentials"},
		{"nobody", "s3cret", `unknown client "nobody"`},
		{"inactive", "x", `unknown client "inactive"`},
		{"app", "wrong", `wrong secret for client "app"`},
		{"thing-client", "", `wrong secret for client "thing-client"`}, // a client without a secret
	} {
		_, err := e.AuthenticateClient(tc.id, tc.secret)
		wantErr(t, err, 401, "invalid_client", "Client authentication failed")
		if ae, _ := err.(*crest.Error); ae == nil || ae.Log != tc.log {
			t.Errorf("%q: log %q, want %q", tc.id, ae.Log, tc.log)
		}
	}
	f.rc.OAuth2 = nil
	_, err := f.env().client("app")
	wantErr(t, err, 400, "invalid_request", "The OAuth2 Provider is not configured in this realm")
}

// The token endpoint's grants and its refusals.
func TestToken(t *testing.T) {
	f := newFixture(t)
	e := f.env()
	app := f.client("app")
	resp, err := e.Token(app, TokenRequest{GrantType: "client_credentials", Scope: "publish  publish"}, owner)
	if err != nil || keys(resp) != "access_token expires_in scope token_type" || resp["scope"] != "publish" ||
		resp["token_type"] != "Bearer" || resp["expires_in"] != int64(3599) {
		t.Fatalf("client_credentials = %v, %v", resp, err)
	}
	in := e.Introspect(app, resp["access_token"].(string))
	if in["active"] != true || in["sub"] != "(usr!app)" || in["client_id"] != "app" || in["realm"] != "/r" || in["iss"] != issuer ||
		in["exp"] != f.now.Add(time.Hour).Unix() {
		t.Errorf("introspection = %v", in)
	}
	resp, err = e.Token(app, TokenRequest{GrantType: "password", Username: "bjensen", Password: "Ch4ng31t"}, owner)
	if err != nil || resp["refresh_token"] == nil || resp["scope"] != "read" {
		t.Fatalf("password = %v, %v", resp, err)
	}
	if in := e.Introspect(app, resp["access_token"].(string)); in["subname"] != "BJensen" {
		t.Errorf("password grant's subject: %v", in)
	}
	if n := f.issued.Load(); n != 3 {
		t.Errorf("%d tokens counted, want 3", n)
	}
	for _, tc := range []struct {
		r                 TokenRequest
		code, description string
	}{
		{TokenRequest{}, "invalid_request", "Missing parameter: grant_type"},
		{TokenRequest{GrantType: "urn:x"}, "unauthorized_client", "Client is not authorised to use the grant type urn:x"},
		{TokenRequest{GrantType: "authorization_code"}, "unsupported_grant_type", "Grant type is not supported: authorization_code"},
		{TokenRequest{GrantType: "password", Username: "bjensen", Password: "no"}, "invalid_grant", "Authentication failed"},
		{TokenRequest{GrantType: "client_credentials", Scope: "write"}, "invalid_scope", "Unknown/invalid scope(s): [write]"},
		{TokenRequest{GrantType: "refresh_token", RefreshToken: "nope"}, "invalid_grant", "grant is invalid"},
	} {
		_, err := e.Token(app, tc.r, owner)
		wantErr(t, err, 400, tc.code, tc.description)
	}
}

// A refresh narrows scopes or keeps them; with rotation the refresh token
// is replaced and the old one revoked. Only the thing that obtained a
// grant refreshes it on the things endpoint.
func TestRefresh(t *testing.T) {
	f := newFixture(t)
	th := &identities.Identity{ID: "Thing-1"}
	first, err := f.env().ThingToken(th, []string{"publish", "subscribe"}, "")
	if err != nil || first["refresh_token"] == nil {
		t.Fatalf("get_access_token = %v, %v", first, err)
	}
	rt := first["refresh_token"].(string)
	_, err = f.env().ThingToken(&identities.Identity{ID: "thing-2"}, nil, rt)
	wantErr(t, err, 400, "invalid_grant", "grant is invalid")
	_, err = f.env().ThingToken(th, []string{"admin"}, rt)
	wantErr(t, err, 400, "invalid_scope", "Scope parameter is not a subset of the original scope: [admin]")
	// Without rotation: no new refresh token, the old one still works
	// (for a thing whose ID differs in case only).
	r1, err := f.env().ThingToken(&identities.Identity{ID: "thing-1"}, []string{"publish"}, rt)
	if err != nil || r1["scope"] != "publish" || r1["refresh_token"] != nil {
		t.Fatalf("refresh = %v, %v", r1, err)
	}
	f.rc.OAuth2.Core.IssueRefreshTokenOnRefreshedToken = true
	r2, err := f.env().ThingToken(th, nil, rt)
	if err != nil || r2["scope"] != "publish subscribe" || r2["refresh_token"] == nil || r2["refresh_token"] == rt {
		t.Fatalf("rotating refresh = %v, %v", r2, err)
	}
	_, err = f.env().ThingToken(th, nil, rt)
	wantErr(t, err, 400, "invalid_grant", "grant is invalid")
	if _, err := f.env().ThingToken(th, nil, r2["refresh_token"].(string)); err != nil {
		t.Errorf("the new refresh token: %v", err)
	}
	// The same refresh token on another client's endpoint is not that
	// client's grant.
	_, err = f.env().Token(f.client("app"), TokenRequest{GrantType: "refresh_token", RefreshToken: r2["refresh_token"].(string)}, owner)
	wantErr(t, err, 400, "invalid_grant", "grant is invalid")
}

// get_access_token's own rules: the JWT bearer grant, and the IoT
// Service's subject attribute.
func TestThingToken(t *testing.T) {
	f := newFixture(t)
	f.rc.IoT.OAuthSubjectAttribute = "serialNumber"
	_, err := f.env().ThingToken(&identities.Identity{ID: "t"}, nil, "")
	wantErr(t, err, 400, "invalid_scope", "No scope requested and no default scope configured")
	_, err = f.env().ThingToken(&identities.Identity{ID: "t"}, []string{"publish"}, "")
	wantErr(t, err, 400, "invalid_grant", "The thing has no value for the subject attribute serialNumber")
	th := &identities.Identity{ID: "t", Attrs: map[string][]string{"serialNumber": {"SN-1", "SN-2"}}}
	resp, err := f.env().ThingToken(th, []string{"publish"}, "")
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.env().ThingIntrospect(th, resp["access_token"].(string))
	if err != nil || in["sub"] != "(usr!SN-1)" {
		t.Errorf("introspection = %v, %v", in, err)
	}
	_, err = f.env().ThingIntrospect(th, "")
	wantErr(t, err, 400, "invalid_request", "Missing parameter: token")
	// A thing's own client, named by its attribute, without the grant.
	th.Attrs["thingOAuth2ClientName"] = []string{"app"}
	_, err = f.env().ThingToken(th, []string{"publish"}, "")
	wantErr(t, err, 400, "unauthorized_client", "Client is not authorised to use the JWT bearer grant")
	th.Attrs["thingOAuth2ClientName"] = []string{"nobody"}
	_, err = f.env().ThingToken(th, []string{"publish"}, "")
	wantErr(t, err, 400, "invalid_client", "Client authentication failed")
}

// Introspection answers for the client's own tokens, or any token for a
// client with am-introspect-all-tokens; revocation of a refresh token
// revokes its grant.
func TestIntrospectRevoke(t *testing.T) {
	f := newFixture(t)
	e := f.env()
	app := f.client("app")
	resp, err := e.Token(app, TokenRequest{GrantType: "password", Scope: "publish", Username: "bjensen", Password: "Ch4ng31t"}, owner)
	if err != nil {
		t.Fatal(err)
	}
	at, rt := resp["access_token"].(string), resp["refresh_token"].(string)
	want := "active auditTrackingId authGrantId auth_level client_id exp iss realm scope sub subname token_type user_id username"
	if in := e.Introspect(app, at); keys(in) != want || in["token_type"] != "Bearer" {
		t.Errorf("introspection = %v", in)
	}
	if in := e.Introspect(app, rt); in["token_type"] != "refresh_token" {
		t.Errorf("refresh token's introspection = %v", in)
	}
	if in := e.Introspect(f.client("thing-client"), at); keys(in) != "active" || in["active"] != false {
		t.Errorf("another client's introspection = %v", in)
	}
	if in := e.Introspect(f.client("gateway"), at); in["active"] != true {
		t.Errorf("am-introspect-all-tokens: %v", in)
	}
	other := *e
	other.Realm = "/other"
	if in := other.Introspect(app, at); in["active"] != false {
		t.Errorf("another realm's introspection = %v", in)
	}
	// Another client's revocation does nothing, and is no error.
	if err := e.Revoke(f.client("gateway"), at); err != nil || e.Introspect(app, at)["active"] != true {
		t.Errorf("revoked by another client: %v", err)
	}
	if err := e.Revoke(app, "unknown"); err != nil {
		t.Errorf("an unknown token: %v", err)
	}
	if err := e.Revoke(app, rt); err != nil {
		t.Fatal(err)
	}
	if e.Introspect(app, at)["active"] != false || e.Introspect(app, rt)["active"] != false {
		t.Error("the grant's tokens outlived the revocation of its refresh token")
	}
}

// The OpenID configuration document: endpoints under the issuer, the
// clients' scopes sorted once each.
func TestOpenIDConfiguration(t *testing.T) {
	f := newFixture(t)
	doc, err := f.env().OpenIDConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != issuer || doc["token_endpoint"] != issuer+"/access_token" || doc["jwks_uri"] != issuer+"/connect/jwk_uri" ||
		!slices.Equal(doc["scopes_supported"].([]string), []string{"am-introspect-all-tokens", "publish", "read", "subscribe"}) {
		t.Errorf("document = %v", doc)
	}
	f.rc.OAuth2Clients = nil
	if doc, _ := f.env().OpenIDConfiguration(); doc["scopes_supported"] == nil || len(doc["scopes_supported"].([]string)) != 0 {
		t.Errorf("no clients: scopes_supported = %#v, want an empty list", doc["scopes_supported"])
	}
	f.rc.OAuth2 = nil
	_, err = f.env().OpenIDConfiguration()
	wantErr(t, err, 404, "not_found", "The OAuth2 Provider is not configured in this realm")
	if set := JWKS(f.keys); len(set.Keys) != 1 || !set.Keys[0].IsPublic() || set.Keys[0].KeyID != "k" {
		t.Errorf("JWK set = %+v", set)
	}
}
