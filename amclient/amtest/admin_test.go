package amtest_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
	thingsdk "github.com/thingway/thingway/thing"
)

// The tests in this file configure a fresh local AM purely through the
// admin REST API, with AM-shaped JSON, as the iot-edge functional-test
// harness configures AM (am-protocol.md §11), then run things against it.

// Node IDs and script ID of the test configuration (not iot-edge's).
const (
	nodeAuthPoP  = "6a4c1f0e-2b7d-4e55-9c1a-0d3e5f7a9b11"
	nodeAuthCA   = "6a4c1f0e-2b7d-4e55-9c1a-0d3e5f7a9b12"
	nodeRegCert  = "6a4c1f0e-2b7d-4e55-9c1a-0d3e5f7a9b13"
	nodeScripted = "6a4c1f0e-2b7d-4e55-9c1a-0d3e5f7a9b14"
	nodeUser     = "6a4c1f0e-2b7d-4e55-9c1a-0d3e5f7a9b15"
	nodePassword = "6a4c1f0e-2b7d-4e55-9c1a-0d3e5f7a9b16"
	nodeDecision = "6a4c1f0e-2b7d-4e55-9c1a-0d3e5f7a9b17"
	scriptClaims = "0f9e8d7c-6b5a-4938-8271-605f4e3d2c1b"

	adminName, adminPassword = "amadmin", "password"
	cfgAPI                   = "protocol=2.0,resource=1.0"
	readAPI                  = "protocol=1.0,resource=1.0"
	realmsAPI                = "resource=1.0, protocol=2.0"
)

// claimsScript is a Groovy decision script of the kind iot-edge's tests run:
// true unless the verified claim "answer" is not "42".
const claimsScript = `/*
 * Passes things whose authentication JWT carries answer = "42".
 */
outcome = "true"
def claims = transientState.get("org.forgerock.am.iot.jwt.pop.verified_claims")
if (claims == null || claims.get("answer") != "42") {
    logger.error("claim 'answer' is not 42")
    outcome = "false"
}
`

// adminAPI makes admin REST calls with the administrator's token in the
// header named after the cookie, as the iot-edge harness does.
type adminAPI struct {
	c   *client
	tok string
}

func newAdminAPI(c *client) *adminAPI {
	c.t.Helper()
	r := c.do("POST", c.srv.URL+"/json/authenticate?realm=/", nil, "Content-Type: application/json",
		"X-OpenAM-Username: "+adminName, "X-OpenAM-Password: "+adminPassword, "Accept-API-Version: resource=2.0, protocol=1.0")
	if r.status != 200 {
		c.t.Fatalf("admin login: %d %s", r.status, r.body)
	}
	return &adminAPI{c: c, tok: r.json(c.t)["tokenId"].(string)}
}

// call sends method to /json/<p>; body is marshalled unless it is []byte.
func (a *adminAPI) call(method, p, api string, body any, headers ...string) response {
	a.c.t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		b = mustJSON(a.c.t, v)
	}
	h := append([]string{"Content-Type: application/json", "Accept-API-Version: " + api, "iPlanetDirectoryPro: " + a.tok}, headers...)
	return a.c.do(method, a.c.srv.URL+"/json/"+p, b, h...)
}

// must checks the status of an admin call.
func (a *adminAPI) must(r response, status int) map[string]any {
	a.c.t.Helper()
	if r.status != status {
		a.c.t.Fatalf("status = %d, want %d: %s", r.status, status, r.body)
	}
	var m map[string]any
	json.Unmarshal(r.body, &m)
	return m
}

func (a *adminAPI) createRealm(parent, name string, aliases ...string) string {
	a.c.t.Helper()
	if aliases == nil {
		aliases = []string{}
	}
	m := a.must(a.call("POST", "global-config/realms?_action=create", realmsAPI,
		map[string]any{"name": name, "active": true, "parentPath": parent, "aliases": aliases}), 201)
	id, _ := m["_id"].(string)
	if id == "" {
		a.c.t.Fatalf("realm created without _id: %v", m)
	}
	return id
}

func q(realm string) string { return "realm=" + url.QueryEscape(realm) }

func nodePath(typ, id, realm string) string {
	return "realm-config/authentication/authenticationtrees/nodes/" + typ + "/" + id + "?" + q(realm)
}

func treePath(name, realm string) string {
	return "realm-config/authentication/authenticationtrees/trees/" + name + "?" + q(realm)
}

func wrapped(v any) map[string]any { return map[string]any{"value": v, "inherited": false} }

// treeJSON is an AM tree: entry node, then node → connections.
func treeJSON(entry string, nodes map[string][2]any) map[string]any {
	out := map[string]any{}
	for id, n := range nodes {
		out[id] = map[string]any{"displayName": n[0], "nodeType": n[0], "x": 100, "y": 50, "connections": n[1]}
	}
	return map[string]any{"uiConfig": map[string]any{}, "entryNodeId": entry, "nodes": out,
		"staticNodes": map[string]any{"startNode": map[string]any{"x": 50, "y": 50}}}
}

// configureRealm gives a realm (named as the harness names it) the IoT
// configuration of the tests, with the calls and bodies of §11.
func (a *adminAPI) configureRealm(realm string) {
	a.c.t.Helper()
	a.must(a.call("POST", "realm-config/services/iot?_action=create&"+q(realm), cfgAPI, map[string]any{
		"oauthJwtIssuerName": "forgerock-iot-jwt-issuer", "oauthClientName": "forgerock-iot-oauth2-client",
		"createOAuthClient": true, "createOAuthJwtIssuer": true,
		"attributeAllowlist": []string{"thingConfig", "thingType", "thingProperties"}}), 201)
	a.must(a.call("POST", "realm-config/services/oauth-oidc?_action=create&"+q(realm), cfgAPI, map[string]any{
		"coreOAuth2Config": map[string]any{"accessTokenLifetime": 3600, "refreshTokenLifetime": 604800, "codeLifetime": 120,
			"statelessTokensEnabled": true, "issueRefreshToken": true, "issueRefreshTokenOnRefreshedToken": true},
		"advancedOAuth2Config": map[string]any{"tokenSigningAlgorithm": "ES256", "tokenEncryptionEnabled": false,
			"supportedScopes": []string{"publish", "subscribe"}, "hashSalt": "changeme"},
		"deviceCodeConfig": map[string]any{"deviceCodeLifetime": 300, "devicePollInterval": 5},
		"cibaConfig":       map[string]any{"cibaAuthReqIdLifetime": 600},
		"_type":            map[string]any{"_id": "oauth-oidc", "name": "OAuth2 Provider", "collection": false},
	}), 201)
	a.must(a.call("POST", "scripts?_action=create&"+q(realm), readAPI, map[string]any{
		"_id": scriptClaims, "name": "answer check", "description": "", "language": "GROOVY",
		"context": "AUTHENTICATION_TREE_DECISION_NODE", "script": base64.StdEncoding.EncodeToString([]byte(claimsScript)),
		"createdBy": "null", "creationDate": 0, "lastModifiedBy": "null", "lastModifiedDate": 0}), 201)
	inm := "If-None-Match: *"
	for _, n := range []struct {
		typ, id string
		body    map[string]any
	}{
		{"IotAuthenticationNode", nodeAuthPoP, map[string]any{"jwtAuthenticationMethod": "PROOF_OF_POSSESSION",
			"issueRestrictedToken": true, "additionalAudienceValues": []string{}}},
		{"IotAuthenticationNode", nodeAuthCA, map[string]any{"jwtAuthenticationMethod": "CLIENT_ASSERTION",
			"issueRestrictedToken": false, "additionalAudienceValues": []string{"custom-assertion-audience"}}},
		{"IotRegistrationNode", nodeRegCert, map[string]any{"jwtRegistrationMethod": "POP_WITH_CERTIFICATE",
			"createIdentity": true, "allowKeyRotation": false, "allowAttributeOverwrite": false,
			"claimToAttributeMapping": map[string]string{"thingProperties": "thingProperties"}}},
		{"ScriptedDecisionNode", nodeScripted, map[string]any{"script": scriptClaims, "outcomes": []string{"true", "false"},
			"inputs": []string{"org.forgerock.am.iot.jwt.pop.verified_claims"}}},
		{"UsernameCollectorNode", nodeUser, map[string]any{}},
		{"PasswordCollectorNode", nodePassword, map[string]any{}},
		{"DataStoreDecisionNode", nodeDecision, map[string]any{}},
	} {
		n.body["_id"] = n.id
		a.must(a.call("PUT", nodePath(n.typ, n.id, realm), cfgAPI, n.body, inm), 201)
	}
	ok, fail := amtest.SuccessNodeID, amtest.FailureNodeID
	trees := map[string]map[string]any{
		"RegAuth": treeJSON(nodeAuthPoP, map[string][2]any{
			nodeAuthPoP: {"IotAuthenticationNode", map[string]string{"success": ok, "failure": fail, "register": nodeRegCert}},
			nodeRegCert: {"IotRegistrationNode", map[string]string{"success": ok, "failure": fail}},
		}),
		"Claims": treeJSON(nodeAuthPoP, map[string][2]any{
			nodeAuthPoP:  {"IotAuthenticationNode", map[string]string{"success": nodeScripted, "failure": fail, "register": fail}},
			nodeScripted: {"ScriptedDecisionNode", map[string]string{"true": ok, "false": fail}},
		}),
		"UserPwd": treeJSON(nodeUser, map[string][2]any{
			nodeUser:     {"UsernameCollectorNode", map[string]string{"outcome": nodePassword}},
			nodePassword: {"PasswordCollectorNode", map[string]string{"outcome": nodeDecision}},
			nodeDecision: {"DataStoreDecisionNode", map[string]string{"true": ok, "false": fail}},
		}),
	}
	for name, tree := range trees {
		a.must(a.call("PUT", treePath(name, realm), cfgAPI, tree, inm), 201)
	}
	// The IoT Service created its client; give it the scopes (#19), then
	// add a client of our own (#18).
	a.must(a.call("PUT", "realm-config/agents/OAuth2Client/forgerock-iot-oauth2-client?"+q(realm), cfgAPI, map[string]any{
		"coreOAuth2ClientConfig": map[string]any{"scopes": wrapped([]string{"publish", "subscribe"}),
			"defaultScopes": wrapped([]string{"subscribe"}), "status": wrapped("Active"), "clientType": wrapped("Confidential")},
		"advancedOAuth2ClientConfig": map[string]any{"grantTypes": wrapped([]string{amtest.GrantJWTBearer, amtest.GrantDeviceCode, amtest.GrantRefreshToken}),
			"tokenEndpointAuthMethod": wrapped("client_secret_basic")},
		"_type": map[string]any{"_id": "OAuth2Client", "name": "OAuth2 Clients", "collection": true},
	}), 200)
	a.must(a.call("PUT", "realm-config/agents/OAuth2Client/fleet-client?"+q(realm), cfgAPI, map[string]any{
		"coreOAuth2ClientConfig": map[string]any{"userpassword": wrapped("fleet-s3cret"),
			"scopes": wrapped([]string{"create", "modify"}), "defaultScopes": wrapped([]string{}), "status": wrapped("Active")},
		"advancedOAuth2ClientConfig": map[string]any{"grantTypes": wrapped([]string{amtest.GrantJWTBearer, amtest.GrantRefreshToken, "client_credentials"})},
	}, inm), 201)
}

// realmKind is one way of naming a realm, as the functional tests use them.
type realmKind struct {
	name    string // test name
	path    string // realm path (the JWT audience)
	param   string // realm query value the harness passes ("" with the DNS alias)
	adminID string // what admin calls pass as realm
	host    string // DNS alias host, or ""
}

// fixture is a fresh local AM configured through REST in four realm kinds.
type fixture struct {
	srv   *amtest.Server
	c     *client
	admin *adminAPI
	pki   *pki
	kinds []realmKind
}

func newFixture(t *testing.T, tweak ...func(*amtest.Server)) *fixture {
	t.Helper()
	p := newPKI(t, "team-ca")
	cfg := amtest.EmptyConfig()
	cfg.AdminUser, cfg.AdminPassword = adminName, adminPassword
	cfg.KeystoreAliases = map[string]amtest.Certificates{"team-ca": {p.ca}}
	srv, c := startWith(t, cfg, append([]func(*amtest.Server){func(s *amtest.Server) { s.BasePath = "/am" }}, tweak...)...)
	f := &fixture{srv: srv, c: c, admin: newAdminAPI(c), pki: p}
	f.configure(t)
	return f
}

func (f *fixture) configure(t *testing.T) {
	t.Helper()
	a := f.admin
	a.must(a.call("PUT", "global-config/secrets/stores/KeyStoreSecretStore/default-keystore/mappings/am.services.iot.cert.verification",
		cfgAPI, map[string]any{"secretId": "am.services.iot.cert.verification", "aliases": []string{"team-ca"}}), 201)
	a.createRealm("/", "Sub")
	a.createRealm("/", "Par")
	a.createRealm("/Par/", "Kid")
	a.createRealm("/", "Kid") // a decoy with the same leaf name, not configured
	a.createRealm("/", "Ali", "alias-Ali")
	a.createRealm("/", "Dns", "dns.localtest.me")
	props := a.must(a.call("GET", "global-config/servers/server-default/properties/advanced", "resource=1.0", nil), 200)
	props["com.sun.identity.server.fqdnMap[dns.localtest.me]"] = "dns.localtest.me"
	a.must(a.call("PUT", "global-config/servers/server-default/properties/advanced", readAPI, props), 200)
	f.kinds = []realmKind{
		{name: "root", path: "/", param: "/", adminID: "/"},
		{name: "sub-realm", path: "/Sub", param: "/Sub", adminID: "/Sub"},
		{name: "sub-sub-realm", path: "/Par/Kid", param: "/Par/Kid", adminID: "/Par/Kid"},
		{name: "alias realm", path: "/Ali", param: "alias-Ali", adminID: "alias-Ali"},
		{name: "DNS alias realm", path: "/Dns", adminID: "Dns", host: "dns.localtest.me"},
	}
	for _, k := range f.kinds {
		a.configureRealm(k.adminID)
	}
}

// httpClient reaches the server under any *.localtest.me name.
func (f *fixture) httpClient() *http.Client {
	tr := f.srv.Client().Transport.(*http.Transport).Clone()
	d := &net.Dialer{}
	addr := strings.TrimPrefix(f.srv.URL, "http://")
	addr = addr[:strings.Index(addr, "/")]
	tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		if h, _, _ := net.SplitHostPort(a); strings.HasSuffix(h, ".localtest.me") {
			a = addr
		}
		return d.DialContext(ctx, network, a)
	}
	return &http.Client{Transport: tr}
}

// connector is the SDK's AM client for a realm kind and tree.
func (f *fixture) connector(k realmKind, tree string) *amclient.Client {
	u := f.srv.URL
	if k.host != "" {
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimSuffix(u, "/am"), "http://"))
		u = "http://" + k.host + ":" + port + "/am"
	}
	return &amclient.Client{URL: u, Realm: k.param, Tree: tree, HTTPClient: f.httpClient()}
}

// gatewayFor starts a gateway in realm kind k, authenticated with tree
// RegAuth as an identity of type gateway, and returns a thing's connection
// to it.
func (f *fixture) gatewayFor(t *testing.T, k realmKind) thingsdk.Connector {
	t.Helper()
	key := ecKeyT(t)
	kid, _ := callback.Thumbprint(key.Public())
	id := "gateway-" + strings.Trim(strings.ReplaceAll(k.path, "/", "-"), "-")
	jwk, _ := json.Marshal(map[string]any{"keys": []any{json.RawMessage(jwkOf(t, key, kid))}})
	f.admin.must(f.admin.call("POST", "users?_action=create&"+q(k.adminID), "resource=3.0, protocol=1.0",
		map[string]any{"username": id, "userPassword": "G4t3w4y-pw", "thingType": "gateway", "thingKeys": json.RawMessage(jwk)}), 201)
	cert, err := coapx.SelfSignedCertificate(nil, id)
	if err != nil {
		t.Fatal(err)
	}
	gw := &gateway.Server{AM: f.connector(k, "RegAuth"), ID: id, Key: key, Audience: k.path, DTLSCertificate: cert}
	l, err := gw.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve(l)
	t.Cleanup(func() { gw.Close() })
	pin := sha256.Sum256(cert.Certificate[0])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := thingsdk.DialGateway(ctx, thingsdk.GatewayConfig{Address: l.Addr().String(), Trust: coapx.Trust{PinnedSHA256: pin[:]}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func ecKeyT(t *testing.T) crypto.Signer { return newThing(t, "k").key }

func jwkOf(t *testing.T, key crypto.Signer, kid string) string {
	t.Helper()
	th := &thing{key: key, kid: kid, alg: "ES256"}
	b, err := json.Marshal(th.publicJWK())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// thingFlows registers a thing with a certificate, gets tokens, introspects
// and reads attributes, then authenticates through the Scripted Decision
// node with the right and the wrong claim.
func (f *fixture) thingFlows(t *testing.T, k realmKind, conn func(tree string) thingsdk.Connector) {
	t.Helper()
	ctx := context.Background()
	th := newThing(t, uniqueID("thing"))
	f.pki.issue(t, th)
	dev, err := thingsdk.New(ctx, thingsdk.Config{Connector: conn("RegAuth"), ID: th.id, Key: th.key, Audience: k.path,
		Registration: &thingsdk.Registration{Certificates: th.cert,
			Claims: func() map[string]any { return map[string]any{"thingProperties": `{"fleet":"blue"}`} }}})
	if err != nil {
		t.Fatalf("registration in %s: %v", k.path, err)
	}
	tok, err := dev.AccessToken(ctx, "publish")
	if err != nil || tok.AccessToken == "" || strings.Join(tok.Scope, " ") != "publish" {
		t.Fatalf("access token = %+v, %v", tok, err)
	}
	if claims := jwtClaims(t, tok.AccessToken); claims["realm"] != k.path {
		t.Errorf("token realm = %v, want %s", claims["realm"], k.path)
	}
	in, err := dev.IntrospectAccessToken(ctx, tok.AccessToken)
	if err != nil || !in.Active {
		t.Fatalf("introspection = %+v, %v", in, err)
	}
	if _, err := dev.AccessToken(ctx, "delete"); err == nil {
		t.Error("a scope the client lacks was granted")
	}
	attrs, err := dev.Attributes(ctx)
	if err != nil || attrs.ID != th.id || attrs.First("thingType") != "device" || attrs.First("thingProperties") != `{"fleet":"blue"}` {
		t.Fatalf("attributes = %+v, %v", attrs, err)
	}
	for _, c := range []struct {
		answer string
		ok     bool
	}{{"42", true}, {"0", false}} {
		_, err := thingsdk.New(ctx, thingsdk.Config{Connector: conn("Claims"), ID: th.id, Key: th.key, Audience: k.path,
			Claims: func() map[string]any { return map[string]any{"answer": c.answer} }})
		var te *thingsdk.Error
		switch {
		case c.ok && err != nil:
			t.Errorf("claim answer=%s: %v", c.answer, err)
		case !c.ok && (!errors.As(err, &te) || te.Status != 401):
			t.Errorf("claim answer=%s: err = %v, want 401", c.answer, err)
		}
	}
}

func TestAdminConfiguredRealms(t *testing.T) {
	f := newFixture(t)
	for _, k := range f.kinds {
		t.Run("direct/"+k.name, func(t *testing.T) {
			f.thingFlows(t, k, func(tree string) thingsdk.Connector { return f.connector(k, tree) })
		})
	}
	for _, k := range f.kinds {
		t.Run("gateway/"+k.name, func(t *testing.T) {
			gw := f.gatewayFor(t, k)
			f.thingFlows(t, k, func(tree string) thingsdk.Connector {
				if tree != "RegAuth" {
					// A gateway serves one tree: the custom-claims tree
					// is exercised directly.
					return f.connector(k, tree)
				}
				return gw
			})
		})
	}
	t.Run("decoy realm is not configured", func(t *testing.T) {
		r := f.c.do("POST", f.c.srv.URL+"/json/authenticate?authIndexType=service&authIndexValue=RegAuth&realm=/Kid", []byte("{}"),
			"Content-Type: application/json", "Accept-API-Version: protocol=1.0,resource=2.1")
		expectCREST(t, r, 400, "No Configuration found")
	})
}

// TestAdminRealmAddressing checks every way of naming a realm on a
// configured server: realm query values, realm paths and DNS aliases.
func TestAdminRealmAddressing(t *testing.T) {
	f := newFixture(t)
	hc := f.httpClient()
	info := func(u, host string) (int, string) {
		req, _ := http.NewRequest("GET", u, nil)
		if host != "" {
			req.Host = host
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		s, _ := m["realm"].(string)
		return res.StatusCode, s
	}
	base := f.srv.URL + "/json"
	dnsHost := "dns.localtest.me" + f.srv.URL[strings.LastIndex(f.srv.URL, ":"):strings.LastIndex(f.srv.URL, "/am")]
	for _, c := range []struct {
		name, url, host, want string
		status                int
	}{
		{"query path", base + "/serverinfo/*?realm=/Par/Kid", "", "/Par/Kid", 200},
		{"query path with slash", base + "/serverinfo/*?realm=/Par/Kid/", "", "/Par/Kid", 200},
		{"query alias", base + "/serverinfo/*?realm=alias-Ali", "", "/Ali", 200},
		{"query bare name", base + "/serverinfo/*?realm=Dns", "", "/Dns", 200},
		{"query bare name of decoy", base + "/serverinfo/*?realm=Kid", "", "/Kid", 200},
		{"query DNS alias as alias", base + "/serverinfo/*?realm=dns.localtest.me", "", "/Dns", 200},
		{"realm path", base + "/realms/root/realms/Par/realms/Kid/serverinfo/*", "", "/Par/Kid", 200},
		{"top-level path", base + "/realms/root/serverinfo/*", "", "/", 200},
		{"DNS alias", base + "/serverinfo/*", dnsHost, "/Dns", 200},
		{"DNS alias, path wins", base + "/realms/root/realms/Sub/serverinfo/*", dnsHost, "/Sub", 200},
		{"DNS alias, query wins", base + "/serverinfo/*?realm=/Sub", dnsHost, "/Sub", 200},
		{"unknown query realm", base + "/serverinfo/*?realm=/Nope", "", "", 400},
		{"unknown path realm", base + "/realms/root/realms/Nope/serverinfo/*", "", "", 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, realm := info(c.url, c.host)
			if status != c.status || (c.status == 200 && realm != c.want) {
				t.Errorf("%s: %d %q, want %d %q", c.url, status, realm, c.status, c.want)
			}
		})
	}
	t.Run("inactive realm", func(t *testing.T) {
		id := base64.StdEncoding.EncodeToString([]byte("/Sub"))
		f.admin.must(f.admin.call("PUT", "global-config/realms/"+id, realmsAPI,
			map[string]any{"name": "Sub", "parentPath": "/", "active": false, "aliases": []string{}}), 200)
		if status, _ := info(base+"/serverinfo/*?realm=/Sub", ""); status != 400 {
			t.Errorf("inactive realm answers %d", status)
		}
		// Its configuration can still be read and changed.
		f.admin.must(f.admin.call("GET", "realm-config/services/iot?realm=/Sub", readAPI, nil), 200)
		f.admin.must(f.admin.call("PUT", "global-config/realms/"+id, realmsAPI,
			map[string]any{"name": "Sub", "parentPath": "/", "active": true, "aliases": []string{"alias-sub"}}), 200)
		if status, realm := info(base+"/serverinfo/*?realm=alias-sub", ""); status != 200 || realm != "/Sub" {
			t.Errorf("reactivated realm by its new alias: %d %q", status, realm)
		}
	})
	t.Run("realm query", func(t *testing.T) {
		m := f.admin.must(f.admin.call("GET", "global-config/realms?_queryFilter=true", realmsAPI, nil), 200)
		byName := map[string]map[string]any{}
		for _, r := range m["result"].([]any) {
			rm := r.(map[string]any)
			byName[fmt.Sprint(rm["parentPath"], "|", rm["name"])] = rm
		}
		root := byName["<nil>|/"]
		if root == nil || root["_id"] == "" {
			t.Fatalf("no root realm in %s", mustJSON(t, m))
		}
		kid := byName["/Par|Kid"]
		if kid == nil || kid["active"] != true {
			t.Fatalf("no /Par/Kid in %s", mustJSON(t, m))
		}
		if dns := byName["/|Dns"]; dns == nil || fmt.Sprint(dns["aliases"]) != "[dns.localtest.me]" {
			t.Errorf("/Dns = %v", dns)
		}
		got := f.admin.must(f.admin.call("GET", "global-config/realms/"+kid["_id"].(string), realmsAPI, nil), 200)
		if got["name"] != "Kid" || got["parentPath"] != "/Par" {
			t.Errorf("read /Par/Kid = %v", got)
		}
		props := f.admin.must(f.admin.call("GET", "global-config/servers/server-default/properties/advanced", "resource=1.0", nil), 200)
		if props["com.sun.identity.server.fqdnMap[dns.localtest.me]"] != "dns.localtest.me" {
			t.Errorf("server properties = %v", props)
		}
	})
}
