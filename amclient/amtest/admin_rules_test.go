package amtest_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/thingway/thingway/amclient/amtest"
)

// adminCalls is one call of each admin endpoint family, reading or
// changing configuration.
var adminCalls = []struct{ method, path, body string }{
	{"POST", "global-config/realms?_action=create", `{"name":"X","active":true,"parentPath":"/","aliases":[]}`},
	{"GET", "global-config/realms?_queryFilter=true", ""},
	{"GET", "global-config/servers/server-default/properties/advanced", ""},
	{"PUT", "global-config/secrets/stores/KeyStoreSecretStore/default-keystore/mappings/am.services.iot.cert.verification", `{"aliases":["team-ca"]}`},
	{"GET", "realm-config/services/iot?realm=/Sub", ""},
	{"DELETE", "realm-config/services/oauth-oidc?realm=/Sub", ""},
	{"PUT", "realm-config/authentication/authenticationtrees/nodes/UsernameCollectorNode/x?realm=/Sub", `{}`},
	{"DELETE", "realm-config/authentication/authenticationtrees/trees/UserPwd?realm=/Sub", ""},
	{"PUT", "realm-config/agents/SoftwarePublisher/p?realm=/Sub", `{}`},
	{"POST", "scripts?_action=create&realm=/Sub", `{}`},
	{"DELETE", "scripts/" + scriptClaims + "?realm=/Sub", ""},
}

// snapshot is the configuration as the admin API shows it.
func snapshot(f *fixture) string {
	var b strings.Builder
	for _, p := range []string{"global-config/realms?_queryFilter=true",
		"global-config/secrets/stores/KeyStoreSecretStore/default-keystore/mappings?_queryFilter=true",
		"global-config/servers/server-default/properties/advanced"} {
		b.Write(f.admin.call("GET", p, cfgAPI, nil).body)
	}
	for _, k := range f.kinds {
		for _, p := range []string{"realm-config/services/iot?", "realm-config/services/oauth-oidc?",
			"realm-config/authentication/authenticationtrees/nodes?_queryFilter=true&",
			"realm-config/authentication/authenticationtrees/trees?_queryFilter=true&",
			"realm-config/agents/OAuth2Client?_queryFilter=true&", "realm-config/agents/SoftwarePublisher?_queryFilter=true&",
			"realm-config/agents/TrustedJwtIssuer?_queryFilter=true&", "scripts?_queryFilter=true&"} {
			b.Write(f.admin.call("GET", p+q(k.adminID), cfgAPI, nil).body)
		}
	}
	return b.String()
}

func TestAdminAccess(t *testing.T) {
	f := newFixture(t)
	// A person in the sub-realm and a thing in the top-level realm.
	f.admin.must(f.admin.call("POST", "users?_action=create&realm=/Sub", "resource=3.0, protocol=1.0",
		map[string]any{"username": "alice", "userPassword": "4l1ce-pw"}), 201)
	r := f.c.do("POST", f.c.srv.URL+"/json/authenticate?realm=/Sub", nil, "X-OpenAM-Username: alice",
		"X-OpenAM-Password: 4l1ce-pw", "Accept-API-Version: resource=2.0, protocol=1.0")
	alice := expectStatus(t, r, 200)["tokenId"].(string)
	before := snapshot(f)
	for _, call := range adminCalls {
		t.Run(call.method+" "+call.path, func(t *testing.T) {
			u := f.c.srv.URL + "/json/" + call.path
			r := f.c.do(call.method, u, []byte(call.body), "Content-Type: application/json", "Accept-API-Version: "+cfgAPI)
			expectCREST(t, r, 401, "")
			r = f.c.do(call.method, u, []byte(call.body), "Content-Type: application/json", "Accept-API-Version: "+cfgAPI,
				"iPlanetDirectoryPro: "+alice)
			expectCREST(t, r, 403, "")
			r = f.c.do(call.method, u, []byte(call.body), "Content-Type: application/json", "Accept-API-Version: "+cfgAPI,
				"Cookie: iPlanetDirectoryPro="+alice)
			expectCREST(t, r, 403, "")
		})
	}
	if after := snapshot(f); after != before {
		t.Error("refused calls changed the configuration")
	}
	// The administrator's token works in the cookie too.
	r = f.c.do("GET", f.c.srv.URL+"/json/global-config/realms?_queryFilter=true", nil, "Accept-API-Version: "+realmsAPI,
		"Cookie: iPlanetDirectoryPro="+f.admin.tok)
	expectStatus(t, r, 200)
}

// TestAdminRefusals checks AM's answers to malformed, unknown or
// conflicting configuration, and that a refused call changes nothing.
func TestAdminRefusals(t *testing.T) {
	f := newFixture(t)
	a := f.admin
	nodes := "realm-config/authentication/authenticationtrees/nodes/"
	trees := "realm-config/authentication/authenticationtrees/trees/"
	ok, fail := amtest.SuccessNodeID, amtest.FailureNodeID
	badScript := func(src string) map[string]any {
		return map[string]any{"name": "bad " + src[:8], "language": "GROOVY", "context": "AUTHENTICATION_TREE_DECISION_NODE",
			"script": base64.StdEncoding.EncodeToString([]byte(src))}
	}
	a.must(a.call("PUT", "scripts/bad-script?realm=/Sub", readAPI, badScript(`outcome = "true"; sharedState.put("x", 1)`)), 201)
	a.must(a.call("PUT", "scripts/other-context?realm=/Sub", readAPI, map[string]any{"name": "oauth", "language": "JAVASCRIPT",
		"context": "OAUTH2_ACCESS_TOKEN_MODIFICATION", "script": base64.StdEncoding.EncodeToString([]byte(`outcome = "true"`))}), 201)
	before := snapshot(f)
	for _, c := range []struct {
		name, method, path string
		body               any
		status             int
		msg                string
		headers            []string
	}{
		// 400: malformed or unknown configuration.
		{"not JSON", "PUT", nodes + "UsernameCollectorNode/n1?realm=/Sub", "{", 400, "not valid JSON", nil},
		{"unknown node type", "PUT", nodes + "PageNode/n1?realm=/Sub", map[string]any{}, 400, "unsupported node type", nil},
		{"unknown node setting", "PUT", nodes + "IotAuthenticationNode/n1?realm=/Sub",
			map[string]any{"jwtAuthenticationMethod": "PROOF_OF_POSSESSION", "colour": "red"}, 400, "colour", nil},
		{"unknown authentication method", "PUT", nodes + "IotAuthenticationNode/n1?realm=/Sub",
			map[string]any{"jwtAuthenticationMethod": "PASSWORD"}, 400, "jwtAuthenticationMethod", nil},
		{"node _id mismatch", "PUT", nodes + "UsernameCollectorNode/n1?realm=/Sub", map[string]any{"_id": "n2"}, 400, "_id", nil},
		{"node _type mismatch", "PUT", nodes + "UsernameCollectorNode/n1?realm=/Sub",
			map[string]any{"_type": map[string]any{"_id": "PasswordCollectorNode"}}, 400, "_type", nil},
		{"script not in realm", "PUT", nodes + "ScriptedDecisionNode/n1?realm=/Sub",
			map[string]any{"script": "nope", "outcomes": []string{"true", "false"}}, 400, "not in the realm", nil},
		{"script outside the subset", "PUT", nodes + "ScriptedDecisionNode/n1?realm=/Sub",
			map[string]any{"script": "bad-script", "outcomes": []string{"true", "false"}}, 400, "subset", nil},
		{"script of another context", "PUT", nodes + "ScriptedDecisionNode/n1?realm=/Sub",
			map[string]any{"script": "other-context", "outcomes": []string{"true", "false"}}, 400, "context", nil},
		{"unsupported outcome", "PUT", nodes + "ScriptedDecisionNode/n1?realm=/Sub",
			map[string]any{"script": scriptClaims, "outcomes": []string{"true", "maybe"}}, 400, "maybe", nil},
		{"tree with an unknown node", "PUT", trees + "T1?realm=/Sub", treeJSON("n9", map[string][2]any{
			"n9": {"UsernameCollectorNode", map[string]string{"outcome": ok}}}), 400, "n9", nil},
		{"tree with an unconnected outcome", "PUT", trees + "T1?realm=/Sub", treeJSON(nodeDecision, map[string][2]any{
			nodeDecision: {"DataStoreDecisionNode", map[string]string{"true": ok}}}), 400, "not connected", nil},
		{"tree with a wrong node type", "PUT", trees + "T1?realm=/Sub", treeJSON(nodeDecision, map[string][2]any{
			nodeDecision: {"UsernameCollectorNode", map[string]string{"outcome": ok}}}), 400, "DataStoreDecisionNode", nil},
		{"tree entry not in tree", "PUT", trees + "T1?realm=/Sub", treeJSON(nodeUser, map[string][2]any{
			nodeDecision: {"DataStoreDecisionNode", map[string]string{"true": ok, "false": fail}}}), 400, "entry node", nil},
		{"unsupported signing algorithm", "PUT", "realm-config/services/oauth-oidc?realm=/Sub",
			map[string]any{"advancedOAuth2Config": map[string]any{"tokenSigningAlgorithm": "RS256"}}, 400, "RS256", nil},
		{"lifetime of the wrong type", "PUT", "realm-config/services/oauth-oidc?realm=/Sub",
			map[string]any{"coreOAuth2Config": map[string]any{"accessTokenLifetime": "long"}}, 400, "oauth-oidc", nil},
		{"unknown agent type", "PUT", "realm-config/agents/WebAgent/w?realm=/Sub", map[string]any{}, 400, "WebAgent", nil},
		{"publisher without keys", "PUT", "realm-config/agents/SoftwarePublisher/p?realm=/Sub",
			map[string]any{"issuer": "https://x", "publicKeyLocation": "jwks", "jwkSet": "{}"}, 400, "software publisher p", nil},
		{"publisher with jwks_uri", "PUT", "realm-config/agents/SoftwarePublisher/p?realm=/Sub",
			map[string]any{"issuer": "https://x", "publicKeyLocation": "jwks_uri", "jwksUri": "https://x/jwks"}, 400, "jwks_uri", nil},
		{"script without a language", "POST", "scripts?_action=create&realm=/Sub",
			map[string]any{"name": "n", "context": "AUTHENTICATION_TREE_DECISION_NODE", "script": ""}, 400, "language", nil},
		{"script not base64", "POST", "scripts?_action=create&realm=/Sub",
			map[string]any{"name": "n", "language": "GROOVY", "context": "AUTHENTICATION_TREE_DECISION_NODE", "script": "%%%"}, 400, "base64", nil},
		{"unknown keystore alias", "PUT", "global-config/secrets/stores/KeyStoreSecretStore/default-keystore/mappings/am.services.iot.cert.verification",
			map[string]any{"secretId": "am.services.iot.cert.verification", "aliases": []string{"es256test"}}, 400, "es256test", nil},
		{"mapping without aliases", "PUT", "global-config/secrets/stores/KeyStoreSecretStore/default-keystore/mappings/am.services.iot.cert.verification",
			map[string]any{"aliases": []string{}}, 400, "alias", nil},
		{"realm without a name", "POST", "global-config/realms?_action=create", map[string]any{"active": true, "parentPath": "/", "aliases": []string{}}, 400, "name", nil},
		{"realm name with a slash", "POST", "global-config/realms?_action=create", map[string]any{"name": "a/b", "active": true, "parentPath": "/", "aliases": []string{}}, 400, "cannot contain", nil},
		{"realm active not boolean", "POST", "global-config/realms?_action=create", map[string]any{"name": "A", "active": "yes", "parentPath": "/", "aliases": []string{}}, 400, "active", nil},
		{"realm alias of another realm", "POST", "global-config/realms?_action=create", map[string]any{"name": "A", "active": true, "parentPath": "/", "aliases": []string{"alias-Ali"}}, 400, "alias-Ali", nil},
		{"realm update of another name", "PUT", "global-config/realms/" + base64.StdEncoding.EncodeToString([]byte("/Sub")),
			map[string]any{"name": "Other", "active": true, "parentPath": "/", "aliases": []string{}}, 400, "does not match", nil},
		{"server property not a string", "PUT", "global-config/servers/server-default/properties/advanced", map[string]any{"a": []int{1}}, 400, "string", nil},
		{"unsupported query", "GET", "global-config/realms?_queryFilter=name+eq+%22Sub%22", nil, 501, "not supported", nil},
		// 404: unknown resources.
		{"unknown realm in parent", "POST", "global-config/realms?_action=create", map[string]any{"name": "A", "active": true, "parentPath": "/Nope", "aliases": []string{}}, 404, "/Nope", nil},
		{"unknown realm id", "GET", "global-config/realms/" + base64.StdEncoding.EncodeToString([]byte("/Nope")), nil, 404, "/Nope", nil},
		{"unknown service", "GET", "realm-config/services/saml2?realm=/Sub", nil, 404, "saml2", nil},
		{"update of a missing service", "PUT", "realm-config/services/iot?realm=/Kid", map[string]any{}, 404, "iot", nil},
		{"unknown node", "GET", nodes + "UsernameCollectorNode/nope?realm=/Sub", nil, 404, "nope", nil},
		{"node of another type", "GET", nodes + "PasswordCollectorNode/" + nodeUser + "?realm=/Sub", nil, 404, "", nil},
		{"unknown tree", "DELETE", trees + "Nope?realm=/Sub", nil, 404, "Nope", nil},
		{"unknown agent", "GET", "realm-config/agents/OAuth2Client/nope?realm=/Sub", nil, 404, "nope", nil},
		{"unknown script", "DELETE", "scripts/nope?realm=/Sub", nil, 404, "nope", nil},
		{"unknown mapping", "GET", "global-config/secrets/stores/KeyStoreSecretStore/default-keystore/mappings/nope", nil, 404, "nope", nil},
		{"unknown global config", "GET", "global-config/servers/server-default/properties/general", nil, 404, "", nil},
		// 409: conflicts and what is in use.
		{"existing realm", "POST", "global-config/realms?_action=create", map[string]any{"name": "Sub", "active": true, "parentPath": "/", "aliases": []string{}}, 409, "exists", nil},
		{"existing service", "POST", "realm-config/services/iot?_action=create&realm=/Sub", map[string]any{}, 409, "Service already exists", nil},
		{"existing top-level provider", "POST", "realm-config/services/oauth-oidc?_action=create&realm=/", map[string]any{}, 409, "Service already exists", nil},
		{"node in use", "DELETE", nodes + "IotAuthenticationNode/" + nodeAuthPoP + "?realm=/Sub", nil, 409, "in use", nil},
		{"node ID of another type", "PUT", nodes + "PasswordCollectorNode/" + nodeUser + "?realm=/Sub", map[string]any{}, 409, "UsernameCollectorNode", nil},
		{"script in use", "DELETE", "scripts/" + scriptClaims + "?realm=/Sub", nil, 409, "in use", nil},
		{"existing script", "POST", "scripts?_action=create&realm=/Sub", map[string]any{"_id": scriptClaims, "name": "x",
			"language": "GROOVY", "context": "AUTHENTICATION_TREE_DECISION_NODE", "script": ""}, 409, "exists", nil},
		{"script name taken", "POST", "scripts?_action=create&realm=/Sub", map[string]any{"name": "answer check",
			"language": "GROOVY", "context": "AUTHENTICATION_TREE_DECISION_NODE", "script": ""}, 409, "answer check", nil},
		{"realm with sub-realms", "DELETE", "global-config/realms/" + base64.StdEncoding.EncodeToString([]byte("/Par")), nil, 409, "sub-realm", nil},
		{"top-level realm", "DELETE", "global-config/realms/" + base64.StdEncoding.EncodeToString([]byte("/")), nil, 401, "root", nil},
		// 412: If-None-Match and If-Match.
		{"existing node", "PUT", nodes + "UsernameCollectorNode/" + nodeUser + "?realm=/Sub", map[string]any{}, 412, "", []string{"If-None-Match: *"}},
		{"existing tree", "PUT", trees + "UserPwd?realm=/Sub", treeJSON(nodeUser, map[string][2]any{
			nodeUser:     {"UsernameCollectorNode", map[string]string{"outcome": nodePassword}},
			nodePassword: {"PasswordCollectorNode", map[string]string{"outcome": nodeDecision}},
			nodeDecision: {"DataStoreDecisionNode", map[string]string{"true": ok, "false": fail}}}), 412, "", []string{"If-None-Match: *"}},
		{"existing agent", "PUT", "realm-config/agents/OAuth2Client/fleet-client?realm=/Sub", map[string]any{}, 412, "", []string{"If-None-Match: *"}},
		{"existing service by PUT", "PUT", "realm-config/services/iot?realm=/Sub", map[string]any{}, 412, "", []string{"If-None-Match: *"}},
		{"stale revision", "PUT", nodes + "UsernameCollectorNode/" + nodeUser + "?realm=/Sub", map[string]any{}, 412, "", []string{"If-Match: 12345"}},
		{"update of a missing node", "PUT", nodes + "UsernameCollectorNode/new?realm=/Sub", map[string]any{}, 412, "", []string{"If-Match: *"}},
		// 405 and 501.
		{"POST on a node", "POST", nodes + "UsernameCollectorNode/" + nodeUser + "?realm=/Sub", map[string]any{}, 405, "", nil},
		{"unknown action", "POST", "global-config/realms?_action=explode", map[string]any{}, 501, "explode", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			api := cfgAPI
			if strings.HasPrefix(c.path, "global-config/realms") {
				api = realmsAPI
			}
			expectCREST(t, a.call(c.method, c.path, api, c.body, c.headers...), c.status, c.msg)
		})
	}
	if after := snapshot(f); after != before {
		t.Error("refused calls changed the configuration")
	}
	t.Run("the unsupported-script answer explains the subset", func(t *testing.T) {
		r := a.call("PUT", nodes+"ScriptedDecisionNode/n1?realm=/Sub", cfgAPI, map[string]any{"script": "bad-script", "outcomes": []string{"true", "false"}})
		m := expectCREST(t, r, 400, "line 1")
		for _, want := range []string{"sharedState", "verified_claims", `outcome = \"true\"`} {
			if !strings.Contains(string(r.body), want) {
				t.Errorf("message %q does not mention %s", m["message"], want)
			}
		}
	})
	t.Run("deleting in order", func(t *testing.T) {
		// What was in use can go once its users are gone.
		a.must(a.call("DELETE", trees+"Claims?realm=/Sub", cfgAPI, nil), 200)
		a.must(a.call("DELETE", "scripts/"+scriptClaims+"?realm=/Sub", readAPI, nil), 200)
		a.must(a.call("DELETE", trees+"RegAuth?realm=/Sub", cfgAPI, nil), 200)
		a.must(a.call("DELETE", nodes+"IotAuthenticationNode/"+nodeAuthPoP+"?realm=/Sub", cfgAPI, nil), 200)
		kid := base64.StdEncoding.EncodeToString([]byte("/Par/Kid"))
		a.must(a.call("DELETE", "global-config/realms/"+kid, realmsAPI, nil), 200)
		a.must(a.call("DELETE", "global-config/realms/"+base64.StdEncoding.EncodeToString([]byte("/Par")), realmsAPI, nil), 200)
		expectCREST(t, a.call("GET", "realm-config/services/iot?realm=/Par/Kid", cfgAPI, nil), 400, "Invalid realm")
	})
}

// TestAdminHarnessFlows runs the harness's service and agent round trips:
// read and rewrite the OAuth2 Provider (token switches), update the IoT
// Service's client by a plain PUT, remove and re-create what it removes.
func TestAdminHarnessFlows(t *testing.T) {
	f := newFixture(t)
	a := f.admin
	orig := a.must(a.call("GET", "realm-config/services/oauth-oidc?realm=/Sub", readAPI, nil), 200)
	for _, k := range []string{"_id", "_rev", "_type", "cibaConfig"} {
		if _, ok := orig[k]; !ok {
			t.Fatalf("provider lacks %s: %v", k, orig)
		}
	}
	if adv := orig["advancedOAuth2Config"].(map[string]any); adv["hashSalt"] != "changeme" {
		t.Errorf("an unknown member was dropped: %v", adv)
	}
	th := newThing(t, uniqueID("switch"))
	a.must(a.call("POST", "users?_action=create&realm=/Sub", "resource=3.0, protocol=1.0",
		map[string]any{"username": th.id, "userPassword": "5tr0ngG3n3r@ted", "thingType": "device",
			"thingKeys": json.RawMessage(th.jwks(t)), "thingOAuth2ClientName": "fleet-client"}), 201)
	tok := f.c.mustPoP(th, "RegAuth", "/Sub")
	sess := f.c.restrictedSession(th, tok)
	set := func(core, adv map[string]any) {
		t.Helper()
		cfg := map[string]any{}
		b, _ := json.Marshal(orig)
		json.Unmarshal(b, &cfg)
		for k, v := range core {
			cfg["coreOAuth2Config"].(map[string]any)[k] = v
		}
		for k, v := range adv {
			cfg["advancedOAuth2Config"].(map[string]any)[k] = v
		}
		a.must(a.call("PUT", "realm-config/services/oauth-oidc?realm=/Sub", readAPI, cfg), 200)
	}
	for _, c := range []struct {
		name      string
		core, adv map[string]any
		check     func(string) bool
	}{
		{"server-side", map[string]any{"statelessTokensEnabled": false}, nil, func(s string) bool { return strings.Count(s, ".") == 0 }},
		{"HS256", nil, map[string]any{"tokenSigningAlgorithm": "HS256"}, func(s string) bool {
			h, _ := base64.RawURLEncoding.DecodeString(strings.Split(s, ".")[0])
			return strings.Contains(string(h), "HS256")
		}},
		{"encrypted", nil, map[string]any{"tokenEncryptionEnabled": true}, func(s string) bool { return strings.Count(s, ".") == 4 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			set(c.core, c.adv)
			r := sess.things("POST", "get_access_token", "/Sub", map[string]any{"scope": []string{"create"}})
			m := expectStatus(t, r, 200)
			at := m["access_token"].(string)
			if !c.check(at) {
				t.Errorf("token %q is not %s", at, c.name)
			}
			in := expectStatus(t, sess.things("POST", "introspect_token", "/Sub", map[string]any{"token": at}), 200)
			if in["active"] != true {
				t.Errorf("introspection = %v", in)
			}
			// Revocation at /oauth2 with the client's credentials (§9.6).
			r = f.c.do("POST", f.c.srv.URL+"/oauth2/token/revoke?realm=/Sub", []byte("token="+at),
				"Content-Type: application/x-www-form-urlencoded", basic("fleet-client", "fleet-s3cret"))
			expectStatus(t, r, 200)
			in = expectStatus(t, sess.things("POST", "introspect_token", "/Sub", map[string]any{"token": at}), 200)
			if in["active"] != false {
				t.Errorf("revoked token: introspection = %v", in)
			}
		})
	}
	a.must(a.call("PUT", "realm-config/services/oauth-oidc?realm=/Sub", readAPI, orig), 200)
	back := a.must(a.call("GET", "realm-config/services/oauth-oidc?realm=/Sub", readAPI, nil), 200)
	if string(mustJSON(t, back)) != string(mustJSON(t, orig)) {
		t.Errorf("restored provider differs:\n%s\n%s", mustJSON(t, back), mustJSON(t, orig))
	}

	t.Run("the IoT Service's agents", func(t *testing.T) {
		cl := a.must(a.call("GET", "realm-config/agents/OAuth2Client/forgerock-iot-oauth2-client?realm=/Sub", cfgAPI, nil), 200)
		if strings.Contains(string(mustJSON(t, cl)), "userpassword") {
			t.Errorf("the client's secret is shown: %v", cl)
		}
		core := cl["coreOAuth2ClientConfig"].(map[string]any)
		if core["clientType"].(map[string]any)["value"] != "Confidential" || cl["_type"].(map[string]any)["_id"] != "OAuth2Client" {
			t.Errorf("client = %v", cl)
		}
		iss := a.must(a.call("GET", "realm-config/agents/TrustedJwtIssuer/forgerock-iot-jwt-issuer?realm=/Sub", cfgAPI, nil), 200)
		if iss["issuer"] != "forgerock-iot-service" || iss["consentedScopesClaim"] != "scope" || iss["resourceOwnerIdentityClaim"] != "sub" {
			t.Errorf("issuer = %v", iss)
		}
		// The harness's clean-up order: services, then agents, trees, scripts.
		for _, p := range []string{"realm-config/services/iot", "realm-config/services/oauth-oidc",
			"realm-config/agents/OAuth2Client/forgerock-iot-oauth2-client", "realm-config/agents/OAuth2Client/fleet-client",
			"realm-config/agents/TrustedJwtIssuer/forgerock-iot-jwt-issuer",
			"realm-config/authentication/authenticationtrees/trees/RegAuth", "realm-config/authentication/authenticationtrees/trees/Claims",
			"realm-config/authentication/authenticationtrees/trees/UserPwd", "scripts/" + scriptClaims} {
			a.must(a.call("DELETE", p+"?realm=/Sub", cfgAPI, nil), 200)
		}
		expectCREST(t, a.call("GET", "realm-config/services/iot?realm=/Sub", readAPI, nil), 404, "")
		// The harness never deletes nodes; without them the realm can be
		// configured again from scratch.
		nodes := a.must(a.call("GET", "realm-config/authentication/authenticationtrees/nodes?_queryFilter=true&realm=/Sub", cfgAPI, nil), 200)
		for _, n := range nodes["result"].([]any) {
			nm := n.(map[string]any)
			a.must(a.call("DELETE", nodePath(nm["_type"].(map[string]any)["_id"].(string), nm["_id"].(string), "/Sub"), cfgAPI, nil), 200)
		}
		a.configureRealm("/Sub")
	})

	t.Run("sessions acting on other sessions", func(t *testing.T) {
		x := newThing(t, uniqueID("sess"))
		a.must(a.call("POST", "users?_action=create&realm=/Ali", "resource=3.0, protocol=1.0",
			map[string]any{"username": x.id, "userPassword": "5tr0ngG3n3r@ted", "thingType": "device", "thingKeys": json.RawMessage(x.jwks(t))}), 201)
		tok := f.c.mustPoP(x, "RegAuth", "/Ali")
		validate := func() bool {
			m := expectStatus(t, a.call("POST", "sessions?_action=validate", "resource=4.0", map[string]any{"tokenId": tok}), 200)
			return m["valid"] == true
		}
		if !validate() {
			t.Fatal("live session not valid")
		}
		expectStatus(t, a.call("POST", "sessions?_action=logout", "resource=4.0", map[string]any{"tokenId": tok}), 200)
		if validate() {
			t.Fatal("logged-out session still valid")
		}
	})
}

// TestScriptedDecisionSubset runs scripts of the supported subset through
// a Scripted Decision node, and refuses others when the node is created.
func TestScriptedDecisionSubset(t *testing.T) {
	f := newFixture(t)
	a := f.admin
	th := newThing(t, uniqueID("claims"))
	a.must(a.call("POST", "users?_action=create&realm=/Sub", "resource=3.0, protocol=1.0",
		map[string]any{"username": th.id, "userPassword": "5tr0ngG3n3r@ted", "thingType": "device", "thingKeys": json.RawMessage(th.jwks(t))}), 201)
	login := func(claims map[string]any) int {
		r := f.c.login(f.c.authURL("Claims", "/Sub"), answers{"jwt-pop-authentication": func(nonce string) string {
			cl := th.popClaims("/Sub", nonce, f.c.clock())
			for k, v := range claims {
				cl[k] = v
			}
			return th.signJWT(t, cl)
		}})
		return r.r.status
	}
	setScript := func(lang, src string) response {
		return a.call("PUT", "scripts/"+scriptClaims+"?realm=/Sub", readAPI, map[string]any{"name": "answer check", "language": lang,
			"context": "AUTHENTICATION_TREE_DECISION_NODE", "script": base64.StdEncoding.EncodeToString([]byte(src))})
	}
	// The iot-edge script's exact form, assignment in the condition included.
	harnessForm := `outcome = "true"
def verifiedClaims = transientState.get("org.forgerock.am.iot.jwt.pop.verified_claims")
if ( verifiedClaims = null || verifiedClaims.get("answer") != "42") {
    logger.error("Custom claim 'answer' not correct")
    outcome = "false"
}`
	for _, c := range []struct {
		name, lang, src string
		claims          map[string]any
		want            int
	}{
		{"groovy 42", "GROOVY", claimsScript, map[string]any{"answer": "42"}, 200},
		{"groovy 0", "GROOVY", claimsScript, map[string]any{"answer": "0"}, 401},
		{"groovy missing claim", "GROOVY", claimsScript, nil, 401},
		{"groovy number is not the string", "GROOVY", claimsScript, map[string]any{"answer": 42}, 401},
		{"harness form 42", "GROOVY", harnessForm, map[string]any{"answer": "42"}, 200},
		{"harness form 0", "GROOVY", harnessForm, map[string]any{"answer": "0"}, 401},
		{"javascript number equals string", "JAVASCRIPT", `var c = sharedState.get("org.forgerock.am.iot.jwt.pop.verified_claims");
outcome = "false";
if (c != null && c.get("answer") == "42" && c["fleet"] === 'blue') { outcome = "true"; }`, map[string]any{"answer": 42, "fleet": "blue"}, 200},
		{"javascript strict", "JAVASCRIPT", `var c = nodeState.get("org.forgerock.am.iot.jwt.pop.verified_claims");
if (c.answer === "42" || !(c.level >= 3)) { outcome = "true" } else { outcome = "false" }`, map[string]any{"answer": 42, "level": 5}, 401},
		{"else if and numbers", "GROOVY", `def c = transientState.get("org.forgerock.am.iot.jwt.pop.verified_claims")
if (c.get("level") > 9) { outcome = "false" } else if (c.get("level") >= 3 && c.get("sub").asString() != "x") { outcome = "true" } else { outcome = "false" }`,
			map[string]any{"level": 3}, 200},
		{"script error fails the login", "GROOVY", `def c = transientState.get("org.forgerock.am.iot.jwt.pop.verified_claims")
outcome = "true"
if (c.get("nested").get("x") == "1") { outcome = "false" }`, nil, 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			expectStatus(t, setScript(c.lang, c.src), 200)
			if got := login(c.claims); got != c.want {
				t.Errorf("login = %d, want %d", got, c.want)
			}
		})
	}
	expectStatus(t, setScript("GROOVY", claimsScript), 200)
	for _, src := range []string{
		`outcome = "maybe"`,
		`if (true) { }`,
		`outcome = "true"; java.lang.Runtime.getRuntime().exec("ls")`,
		`outcome = "true"; def x = sharedState.get("username")`,
		`outcome = "true"; while (true) {}`,
		`outcome = "true"; def c = transientState.get("org.forgerock.am.iot.jwt.pop.verified_claims"); c.put("a", 1)`,
		`outcome = "true"; action = fr.Action.goTo("true").build()`,
		`outcome = "t${1}"`,
		`outcome = "true"; def f() { }`,
		strings.Repeat("(", 200) + `outcome`,
	} {
		t.Run("refused/"+src[:min(len(src), 40)], func(t *testing.T) {
			// The script in use may not change to one outside the subset.
			expectCREST(t, setScript("GROOVY", src), 400, "")
		})
	}
	if got := login(map[string]any{"answer": "42"}); got != 200 {
		t.Errorf("after refused updates, login = %d", got)
	}
}
