package amtest_test

// The configuration across restarts, imports, and changes made while
// things authenticate.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/thingway/thingway/amclient/amtest"
)

// TestAdminPersistence restarts a server on its data directory: the
// configuration changed through REST is restored, and a deleted realm's
// identities are gone.
func TestAdminPersistence(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, func(s *amtest.Server) { s.DataDir = dir })
	a := f.admin
	th := newThing(t, uniqueID("kept"))
	a.must(a.call("POST", "users?_action=create&realm=alias-Ali", "resource=3.0, protocol=1.0",
		map[string]any{"username": th.id, "userPassword": "5tr0ngG3n3r@ted", "thingType": "device", "thingKeys": json.RawMessage(th.jwks(t))}), 201)
	gone := newThing(t, uniqueID("gone"))
	a.createRealm("/", "Tmp")
	a.must(a.call("POST", "users?_action=create&realm=/Tmp", "resource=3.0, protocol=1.0",
		map[string]any{"username": gone.id, "userPassword": "5tr0ngG3n3r@ted", "thingType": "device", "thingKeys": json.RawMessage(gone.jwks(t))}), 201)
	a.must(a.call("DELETE", "global-config/realms/"+base64.StdEncoding.EncodeToString([]byte("/Tmp")), realmsAPI, nil), 200)
	a.createRealm("/", "Tmp")
	expectCREST(t, f.c.getIdentity(a.tok, "/Tmp", gone.id), 404, "")
	a.must(a.call("PUT", "realm-config/services/oauth-oidc?realm=/Ali", readAPI,
		map[string]any{"coreOAuth2Config": map[string]any{"statelessTokensEnabled": false}}), 200)
	before := snapshot(f)
	f.srv.Close()

	// The restart gives a different Config: the data directory's wins,
	// but for the administrator and the keystore.
	cfg := amtest.DefaultConfig()
	cfg.AdminUser, cfg.AdminPassword = adminName, adminPassword
	cfg.KeystoreAliases = map[string]amtest.Certificates{"team-ca": {f.pki.ca}}
	srv, c := startWith(t, cfg, func(s *amtest.Server) { s.DataDir = dir; s.BasePath = "/am" })
	if !srv.ConfigurationRestored() {
		t.Fatal("configuration not restored")
	}
	f2 := &fixture{srv: srv, c: c, admin: newAdminAPI(c), pki: f.pki, kinds: f.kinds}
	if after := snapshot(f2); after != before {
		t.Errorf("configuration after restart differs:\n%s\n---\n%s", after, before)
	}
	tok, r := c.authenticatePoP(th, "RegAuth", "alias-Ali", "/Ali")
	if tok == "" {
		t.Fatalf("authentication after restart: %d %s", r.status, r.body)
	}
	r = c.restrictedSession(th, tok).things("POST", "get_access_token", "alias-Ali", map[string]any{"scope": []string{"publish"}})
	if m := expectStatus(t, r, 200); strings.Contains(m["access_token"].(string), ".") {
		t.Errorf("the provider switch to server-side tokens was lost: %v", m)
	}
	expectCREST(t, c.getIdentity(f2.admin.tok, "/Tmp", gone.id), 404, "")
	// The revocation client's secret survived too.
	r = c.do("POST", c.srv.URL+"/oauth2/token/revoke?realm=/Sub", []byte("token=x"),
		"Content-Type: application/x-www-form-urlencoded", basic("fleet-client", "fleet-s3cret"))
	expectStatus(t, r, 200)
	if got := srv.Configuration().Realms["/Par/Kid"]; got == nil || got.Trees["Claims"] == nil {
		t.Errorf("Configuration() lacks /Par/Kid: %v", got)
	}
}

// TestImport applies an AM-shaped directory with Server.Import, and a
// broken one without changing anything.
func TestImport(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte(claimsScript))
	node := func(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body)} }
	ok, fail := amtest.SuccessNodeID, amtest.FailureNodeID
	tree := string(mustJSON(t, treeJSON(nodeAuthPoP, map[string][2]any{
		nodeAuthPoP:  {"IotAuthenticationNode", map[string]string{"success": nodeScripted, "failure": fail, "register": fail}},
		nodeScripted: {"ScriptedDecisionNode", map[string]string{"true": ok, "false": fail}},
	})))
	realmFiles := func(prefix string) fstest.MapFS {
		return fstest.MapFS{
			prefix + "services/iot/iot.json": node(`{"oauthClientName":"forgerock-iot-oauth2-client","oauthJwtIssuerName":"forgerock-iot-jwt-issuer",
				"createOAuthClient":true,"createOAuthJwtIssuer":true,"attributeAllowlist":["thingConfig"]}`),
			prefix + "services/oauth-oidc.json":                                         node(`{"coreOAuth2Config":{"statelessTokensEnabled":true}}`),
			prefix + "scripts/" + scriptClaims + ".json":                                node(`{"_id":"` + scriptClaims + `","name":"answer check","language":"GROOVY","context":"AUTHENTICATION_TREE_DECISION_NODE","script":"` + b64 + `"}`),
			prefix + "nodes/README.md":                                                  node("not JSON"),
			prefix + "nodes/independent/IotAuthenticationNode/" + nodeAuthPoP + ".json": node(`{"_id":"` + nodeAuthPoP + `","jwtAuthenticationMethod":"PROOF_OF_POSSESSION","issueRestrictedToken":true,"additionalAudienceValues":[]}`),
			prefix + "nodes/independent/ScriptedDecisionNode/" + nodeScripted + ".json": node(`{"_id":"` + nodeScripted + `","script":"` + scriptClaims + `","outcomes":["true","false"],"inputs":["*"]}`),
			prefix + "trees/Claims.json":                                                node(tree),
			prefix + "agents/forgerock-iot-oauth2-client.json":                          node(`{"coreOAuth2ClientConfig":{"scopes":{"value":["publish"],"inherited":false}},"_type":{"_id":"OAuth2Client"}}`),
			prefix + "agents/SoftwarePublisher/pub.json":                                node(`{"issuer":"https://pub.example.com","publicKeyLocation":"jwks","jwkSet":` + string(mustJSON(t, newPublisher(t, "x").jwkSet(t))) + `}`),
			prefix + "agents/issuer.json":                                               node(`{"issuer":"x","consentedScopesClaim":"scope","resourceOwnerIdentityClaim":"sub"}`),
		}
	}
	fsys := realmFiles("")
	for k, v := range realmFiles("realms/Fleet/") {
		fsys[k] = v
	}
	for k, v := range realmFiles("realms/Fleet/realms/North/") {
		fsys[k] = v
	}
	fsys["realms/Fleet/realm.json"] = node(`{"aliases":["fleet.localtest.me"]}`)
	p := newPKI(t, "import-ca")
	fsys["secrets/mappings/am.services.iot.cert.verification.json"] = node(`{"secretId":"am.services.iot.cert.verification","aliases":["import-ca"]}`)

	cfg := amtest.EmptyConfig()
	cfg.KeystoreAliases = map[string]amtest.Certificates{"import-ca": {p.ca}}
	srv, c := startWith(t, cfg)
	if err := srv.Import(fsys); err != nil {
		t.Fatal(err)
	}
	// Importing again updates in place.
	if err := srv.Import(fsys); err != nil {
		t.Fatalf("second import: %v", err)
	}
	got := srv.Configuration()
	for _, path := range []string{"/", "/Fleet", "/Fleet/North"} {
		r := got.Realms[path]
		if r == nil || r.IoT == nil || r.Trees["Claims"] == nil || r.SoftwarePublishers["pub"] == nil ||
			r.TrustedJWTIssuers["issuer"] == nil || r.OAuth2Clients["forgerock-iot-oauth2-client"] == nil {
			t.Fatalf("realm %s after import: %+v", path, r)
		}
		if s := r.OAuth2Clients["forgerock-iot-oauth2-client"].Scopes; len(s) != 1 || s[0] != "publish" {
			t.Errorf("realm %s client scopes = %v", path, s)
		}
	}
	if a := got.Realms["/Fleet"].Aliases; len(a) != 1 || a[0] != "fleet.localtest.me" {
		t.Errorf("/Fleet aliases = %v", a)
	}
	if len(got.VerificationCAs()) != 1 || !got.VerificationCAs()[0].Equal(p.ca) {
		t.Errorf("verification CAs = %v", got.VerificationCAs())
	}
	th := newThing(t, uniqueID("imported"))
	c.createThing(c.adminLogin(), "/Fleet/North", th, nil)
	r := c.login(c.authURL("Claims", "/Fleet/North"), answers{"jwt-pop-authentication": func(nonce string) string {
		cl := th.popClaims("/Fleet/North", nonce, c.clock())
		cl["answer"] = "42"
		return th.signJWT(t, cl)
	}})
	if r.token == "" {
		t.Fatalf("login in an imported realm: %d %s", r.r.status, r.r.body)
	}

	// A broken directory changes nothing, though its first files are fine.
	broken := realmFiles("realms/Extra/")
	broken["realms/Extra/trees/Zz.json"] = node(`{"entryNodeId":"missing","nodes":{}}`)
	before, _ := json.Marshal(srv.Configuration())
	err := srv.Import(broken)
	if err == nil || !strings.Contains(err.Error(), "Zz.json") || !strings.Contains(err.Error(), "400") {
		t.Fatalf("broken import: %v", err)
	}
	after, _ := json.Marshal(srv.Configuration())
	if string(before) != string(after) {
		t.Error("a failed import changed the configuration")
	}
	if err := srv.Import(fstest.MapFS{"agents/odd.json": node(`{"name":"?"}`)}); err == nil || !strings.Contains(err.Error(), "agent's type") {
		t.Errorf("agent of unknown type: %v", err)
	}
}

// TestAdminChangesUnderLoad changes the configuration while things
// authenticate and get tokens in the same realm: every request runs with
// one whole configuration, the one before or the one after a change.
func TestAdminChangesUnderLoad(t *testing.T) {
	f := newFixture(t)
	a := f.admin
	done := make(chan struct{})
	errs := make(chan string, 100)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			th := newThing(t, uniqueID(fmt.Sprint("load", i)))
			body, _ := json.Marshal(map[string]any{"username": th.id, "userPassword": "5tr0ngG3n3r@ted", "thingType": "device",
				"thingKeys": json.RawMessage(th.jwks(t))})
			if r := a.call("POST", "users?_action=create&realm=/Sub", "resource=3.0, protocol=1.0", body); r.status != 201 {
				errs <- fmt.Sprintf("create: %d %s", r.status, r.body)
				return
			}
			for {
				select {
				case <-done:
					return
				default:
				}
				tok, r := f.c.authenticatePoP(th, "RegAuth", "/Sub", "/Sub")
				if tok == "" {
					errs <- fmt.Sprintf("login: %d %s", r.status, r.body)
					return
				}
				s := f.c.restrictedSession(th, tok)
				if r := s.things("POST", "get_access_token", "/Sub", map[string]any{"scope": []string{"publish"}}); r.status != 200 {
					errs <- fmt.Sprintf("token: %d %s", r.status, r.body)
					return
				}
			}
		}()
	}
	for i := range 30 {
		stateless := i%2 == 0
		a.must(a.call("PUT", "realm-config/services/oauth-oidc?realm=/Sub", readAPI,
			map[string]any{"coreOAuth2Config": map[string]any{"statelessTokensEnabled": stateless}}), 200)
		id := fmt.Sprintf("load-node-%d", i)
		a.must(a.call("PUT", nodePath("UsernameCollectorNode", id, "/Sub"), cfgAPI, map[string]any{}), 201)
		a.must(a.call("DELETE", nodePath("UsernameCollectorNode", id, "/Sub"), cfgAPI, nil), 200)
		a.createRealm("/Sub", fmt.Sprint("Child", i))
	}
	close(done)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
