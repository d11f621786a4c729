package amtest_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/thingway/thingway/amclient/amtest"
)

const harnessUsersAPI = "resource=3.0, protocol=1.0"

// createUser is the functional-test harness's POST _action=create (§10.3).
func (c *client) createUser(admin, realm string, body map[string]any) response {
	c.t.Helper()
	b, _ := json.Marshal(body)
	return c.do("POST", c.srv.URL+"/json/users?realm="+realm+"&_action=create", b, "Content-Type: application/json",
		"Accept-API-Version: "+harnessUsersAPI, "iPlanetDirectoryPro: "+admin)
}

// TestIdentityPUT covers the guide's create-or-update PUT (§10.2).
func TestIdentityPUT(t *testing.T) {
	srv, c := startServer(t)
	admin := c.adminLogin()
	th := newThing(t, "manual-thing")
	attrs := map[string]any{"userPassword": "5tr0ngG3n3r@ted", "thingType": "device", "thingKeys": th.jwks(t)}

	r := c.putIdentity(admin, "/", th.id, attrs)
	created := expectStatus(t, r, 201)
	if loc := r.header.Get("Location"); loc != srv.URL+"/json/realms/root/users/manual-thing" {
		t.Errorf("Location = %q", loc)
	}
	for k, v := range map[string]any{"_id": "manual-thing", "username": "manual-thing", "realm": "/"} {
		if created[k] != v {
			t.Errorf("%s = %v, want %v", k, created[k], v)
		}
	}
	for _, k := range []string{"cn", "sn", "uid"} {
		if g := stringList(created, k); len(g) != 1 || g[0] != "manual-thing" {
			t.Errorf("%s = %v", k, created[k])
		}
	}
	if g := stringList(created, "inetUserStatus"); len(g) != 1 || g[0] != "Active" {
		t.Errorf("inetUserStatus = %v", created["inetUserStatus"])
	}
	if !strings.Contains(strings.Join(stringList(created, "objectClass"), ","), "fr-iot") {
		t.Errorf("objectClass = %v", created["objectClass"])
	}
	if _, has := created["userPassword"]; has {
		t.Errorf("the password is returned: %s", r.body)
	}
	if tk, _ := created["thingKeys"].([]any); len(tk) != 1 {
		t.Errorf("thingKeys = %v", created["thingKeys"])
	} else if set, ok := tk[0].(map[string]any); !ok || set["keys"] == nil {
		t.Errorf("thingKeys[0] = %v, want a JWK set object", tk[0])
	}
	rev := created["_rev"]

	r = c.putIdentity(admin, "/", th.id, map[string]any{"thingConfig": "host=localhost;port=80"})
	updated := expectStatus(t, r, 200)
	if g := stringList(updated, "thingConfig"); len(g) != 1 || g[0] != "host=localhost;port=80" {
		t.Errorf("thingConfig = %v", updated["thingConfig"])
	}
	if updated["_rev"] == rev {
		t.Errorf("_rev did not change: %v", rev)
	}
	if g := stringList(updated, "thingType"); len(g) != 1 || g[0] != "device" {
		t.Errorf("an update dropped thingType: %v", updated["thingType"])
	}

	expectCREST(t, c.putIdentity(admin, "/", th.id, attrs, "If-None-Match: *"), 412, "")
	expectStatus(t, c.putIdentity(admin, "/", "fresh-thing", attrs, "If-None-Match: *"), 201)
	expectCREST(t, c.putIdentity(admin, "/", "absent-thing", attrs, `If-Match: "5"`), 412, "")

	// Removing an attribute with null.
	r = c.putIdentity(admin, "/", th.id, map[string]any{"thingConfig": nil})
	if _, has := expectStatus(t, r, 200)["thingConfig"]; has {
		t.Errorf("thingConfig not removed: %s", r.body)
	}
	// The password set at creation works.
	r = c.do("POST", srv.URL+"/json/authenticate?realm=/", nil, "X-OpenAM-Username: manual-thing", "X-OpenAM-Password: 5tr0ngG3n3r@ted",
		"Accept-API-Version: resource=2.0, protocol=1.0")
	expectStatus(t, r, 200)
	// The key set at creation works.
	c.mustPoP(th, "auth-tree", "/")
}

// TestIdentityHarnessCalls covers the functional-test harness's calls (§10.3, §10.4).
func TestIdentityHarnessCalls(t *testing.T) {
	srv, c := startServer(t)
	admin := c.adminLogin()
	th := newThing(t, "Zx8PqL2mVb7cRt4N")
	var set any
	json.Unmarshal([]byte(th.jwks(t)), &set)
	body := map[string]any{"username": th.id, "userPassword": "5tr0ngG3n3r@ted", "thingType": "device", "thingKeys": set,
		"thingConfig": "host=localhost;port=80"}

	r := c.createUser(admin, "/", body)
	got := expectStatus(t, r, 201)
	if ids := stringList(got, "_id"); len(ids) != 1 || ids[0] != th.id {
		t.Errorf("_id = %v, want [%q] for resource 3.0", got["_id"], th.id)
	}
	expectCREST(t, c.createUser(admin, "/", body), 409, "")
	expectCREST(t, c.createUser(admin, "/", map[string]any{"username": "AMADMIN", "userPassword": "x"}), 409, "")
	expectCREST(t, c.createUser(admin, "/", map[string]any{"userPassword": "x"}), 400, "username")
	// A human, as the harness sends it: thingKeys {"keys": null}, no thingType.
	expectStatus(t, c.createUser(admin, "/", map[string]any{"username": "human-user", "userPassword": "x", "thingKeys": map[string]any{"keys": nil}}), 201)
	if _, x := c.identityKeys(admin, "/", "human-user"); x["thingKeys"] != nil {
		t.Errorf("human thingKeys = %v", x["thingKeys"])
	}

	// The thingKeys object authenticates.
	c.mustPoP(th, "auth-tree", "/")

	u := srv.URL + "/json/users/" + th.id + "?realm=/"
	r = c.do("GET", u, nil, "Accept-API-Version: "+harnessUsersAPI, "iPlanetDirectoryPro: "+admin)
	if g := expectStatus(t, r, 200); g["username"] != th.id {
		t.Errorf("read = %s", r.body)
	}
	r = c.do("GET", srv.URL+"/json/realms/root/users/"+th.id, nil, "Accept-API-Version: resource=4.0, protocol=2.1", "iPlanetDirectoryPro: "+admin)
	if g := expectStatus(t, r, 200); g["_id"] != th.id {
		t.Errorf("_id = %v, want a string for resource 4.0", g["_id"])
	}
	r = c.do("GET", srv.URL+"/json/realms/root/users/"+th.id+"?_fields=thingConfig", nil, "Accept-API-Version: resource=4.0", "iPlanetDirectoryPro: "+admin)
	if g := expectStatus(t, r, 200); keys(g) != "_id,_rev,thingConfig" {
		t.Errorf("_fields read = %s", r.body)
	}
	expectCREST(t, c.do("GET", srv.URL+"/json/realms/root/users/nobody", nil, "Accept-API-Version: resource=4.0", "iPlanetDirectoryPro: "+admin), 404, "")

	r = c.do("GET", srv.URL+"/json/realms/root/users?_queryFilter=true", nil, "Accept-API-Version: resource=4.0", "iPlanetDirectoryPro: "+admin)
	list := expectStatus(t, r, 200)
	var names []string
	for _, e := range list["result"].([]any) {
		names = append(names, e.(map[string]any)["username"].(string))
	}
	if strings.Join(names, ",") != "Zx8PqL2mVb7cRt4N,human-user" || list["resultCount"] != float64(2) {
		t.Errorf("query = %v (count %v)", names, list["resultCount"])
	}
	r = c.do("GET", srv.URL+"/json/realms/root/users?_queryId=human*", nil, "Accept-API-Version: resource=4.0", "iPlanetDirectoryPro: "+admin)
	if l := expectStatus(t, r, 200); l["resultCount"] != float64(1) {
		t.Errorf("_queryId = %s", r.body)
	}
	expectCREST(t, c.do("GET", srv.URL+"/json/realms/root/users", nil, "Accept-API-Version: resource=4.0", "iPlanetDirectoryPro: "+admin), 400, "_queryFilter")

	del := srv.URL + "/json/realms/root/users/human-user"
	expectStatus(t, c.do("DELETE", del, nil, "Accept-API-Version: resource=4.0", "iPlanetDirectoryPro: "+admin), 200)
	expectCREST(t, c.do("GET", del, nil, "Accept-API-Version: resource=4.0", "iPlanetDirectoryPro: "+admin), 404, "")
	expectCREST(t, c.do("DELETE", del, nil, "Accept-API-Version: resource=4.0", "iPlanetDirectoryPro: "+admin), 404, "")
	// The deleted user cannot log in.
	r = c.do("POST", srv.URL+"/json/authenticate?realm=/", nil, "X-OpenAM-Username: human-user", "X-OpenAM-Password: x")
	loginFailed(t, r)
}

// TestIdentityThingKeysForms checks that thingKeys sent as a JSON string
// (the guide) and as an object (the harness) both authenticate (§10.3).
func TestIdentityThingKeysForms(t *testing.T) {
	_, c := startServer(t)
	admin := c.adminLogin()
	tests := []struct {
		name   string
		create func(th *thing) response
	}{
		{"PUT with a string", func(th *thing) response {
			return c.putIdentity(admin, "/", th.id, map[string]any{"thingKeys": th.jwks(t), "thingType": "device"})
		}},
		{"PUT with an object", func(th *thing) response {
			var set any
			json.Unmarshal([]byte(th.jwks(t)), &set)
			return c.putIdentity(admin, "/", th.id, map[string]any{"thingKeys": set, "thingType": "device"})
		}},
		{"POST with a string", func(th *thing) response {
			return c.createUser(admin, "/", map[string]any{"username": th.id, "thingKeys": th.jwks(t)})
		}},
		{"a set with an unusable key besides the thing's", func(th *thing) response {
			var set map[string]any
			json.Unmarshal([]byte(th.jwks(t)), &set)
			set["keys"] = append([]any{map[string]any{"kty": "EC", "crv": "P-256", "x": "AA", "kid": "broken"}}, set["keys"].([]any)...)
			return c.putIdentity(admin, "/", th.id, map[string]any{"thingKeys": set, "thingType": "device"})
		}},
		{"POST with an object", func(th *thing) response {
			var set any
			json.Unmarshal([]byte(th.jwks(t)), &set)
			return c.createUser(admin, "/", map[string]any{"username": th.id, "thingKeys": set})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newThing(t, uniqueID("form"))
			expectStatus(t, tt.create(th), 201)
			c.mustPoP(th, "auth-tree", "/")
			// The set is stored as sent; the thing's key is its last one.
			kids, _ := c.identityKeys(admin, "/", th.id)
			if len(kids) == 0 || kids[len(kids)-1] != th.kid {
				t.Errorf("kids = %v", kids)
			}
		})
	}
}

// TestIdentityAccess covers who may use the identity endpoint.
func TestIdentityAccess(t *testing.T) {
	cfg := amtest.DefaultConfig()
	cfg.Realms["/sub"] = amtest.GuideRealm()
	srv, c := startWith(t, cfg)
	admin := c.adminLogin()
	th := newThing(t, "plain-thing")
	c.createThing(admin, "/", th, nil)
	other := newThing(t, "other-thing")
	c.createThing(admin, "/", other, nil)
	if r := c.putIdentity(admin, "/", "carol", map[string]any{"userPassword": "pa55word"}); r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	user := c.userLogin("carol", "pa55word")
	v4 := "Accept-API-Version: resource=4.0, protocol=2.1"

	tests := []struct {
		name   string
		method string
		path   string
		body   string
		token  string
		status int
	}{
		{"no token", "GET", "/json/realms/root/users/plain-thing", "", "", 401},
		{"made-up token", "GET", "/json/realms/root/users/plain-thing", "", "made-up", 401},
		{"user reads another identity", "GET", "/json/realms/root/users/plain-thing", "", user, 403},
		{"user reads itself", "GET", "/json/realms/root/users/carol", "", user, 200},
		{"user updates itself", "PUT", "/json/realms/root/users/carol", `{"mail":"c@example.com"}`, user, 403},
		{"user creates", "PUT", "/json/realms/root/users/new-one", `{"userPassword":"x"}`, user, 403},
		{"user creates with POST", "POST", "/json/users?_action=create", `{"username":"new-two"}`, user, 403},
		{"user deletes", "DELETE", "/json/realms/root/users/plain-thing", "", user, 403},
		{"user lists", "GET", "/json/realms/root/users?_queryFilter=true", "", user, 403},
		{"admin of the top-level realm in a sub-realm", "GET", "/json/realms/root/realms/sub/users?_queryFilter=true", "", admin, 200},
		{"unknown sub-realm", "GET", "/json/realms/root/realms/nope/users/plain-thing", "", admin, 404},
		{"unknown realm query", "GET", "/json/users/plain-thing?realm=/nope", "", admin, 400},
		{"identity of another realm", "GET", "/json/realms/root/realms/sub/users/plain-thing", "", admin, 404},
		{"PATCH", "PATCH", "/json/realms/root/users/plain-thing", "{}", admin, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := []string{"Content-Type: application/json", v4}
			if tt.token != "" {
				h = append(h, "iPlanetDirectoryPro: "+tt.token)
			}
			r := c.do(tt.method, srv.URL+tt.path, []byte(tt.body), h...)
			if tt.status == 200 {
				expectStatus(t, r, 200)
				return
			}
			expectCREST(t, r, tt.status, "")
		})
	}
	// Nothing was changed by the refused calls.
	if r := c.getIdentity(admin, "/", "new-one"); r.status != 404 {
		t.Errorf("new-one: %d", r.status)
	}
	if r := c.getIdentity(admin, "/", "plain-thing"); r.status != 200 {
		t.Errorf("plain-thing: %d", r.status)
	}
	// A thing's restricted session cannot read other identities, signed or not.
	tok := c.mustPoP(th, "auth-tree", "/")
	expectCREST(t, c.do("GET", srv.URL+"/json/realms/root/users/other-thing", nil, v4, "iPlanetDirectoryPro: "+tok), 401, "")
	expectCREST(t, c.signedRequest(th, "GET", srv.URL+"/json/realms/root/users/other-thing", "resource=4.0, protocol=2.1", tok, 0, nil), 403, "")
}

// TestIdentitySubRealm creates identities in a sub-realm by path and by query.
func TestIdentitySubRealm(t *testing.T) {
	cfg := amtest.DefaultConfig()
	cfg.Realms["/sub"] = amtest.GuideRealm()
	srv, c := startWith(t, cfg)
	admin := c.adminLogin()
	a := newThing(t, "sub-a")
	c.createThing(admin, "/sub", a, nil)
	b := newThing(t, "sub-b")
	expectStatus(t, c.createUser(admin, "/sub", map[string]any{"username": b.id, "thingKeys": b.jwks(t)}), 201)
	for _, th := range []*thing{a, b} {
		c.mustPoP(th, "auth-tree", "/sub")
		if tok, r := c.authenticatePoP(th, "auth-tree", "/", "/"); tok != "" {
			t.Errorf("%s authenticated in the top-level realm: %s", th.id, r.body)
		}
	}
	r := c.do("GET", srv.URL+"/json/realms/root/realms/sub/users/sub-b", nil, "Accept-API-Version: resource=4.0", "iPlanetDirectoryPro: "+admin)
	if got := expectStatus(t, r, 200); got["realm"] != "/sub" {
		t.Errorf("realm = %v", got["realm"])
	}
}

// TestIdentityBadInput covers refused bodies; none of them creates anything.
func TestIdentityBadInput(t *testing.T) {
	srv, c := startServer(t)
	admin := c.adminLogin()
	tests := []struct {
		name, id, body string
		msg            string
	}{
		{"malformed JSON", "bad-json", `{"thingType": "device"`, "not valid JSON"},
		{"not an object", "bad-array", `["thingType"]`, "not valid JSON"},
		{"empty body", "bad-empty", ``, "not valid JSON"},
		{"thingKeys not a JWK set", "bad-keys", `{"thingKeys": "not json"}`, "thingKeys"},
		{"thingKeys without keys", "bad-keys-object", `{"thingKeys": {"kty": "EC"}}`, "thingKeys"},
		{"password not a string", "bad-password", `{"userPassword": 42}`, "userPassword"},
		{"name with a comma", "bad,name", `{"thingType": "device"}`, "invalid identity name"},
		{"name with a star", "bad*name", `{"thingType": "device"}`, "invalid identity name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do("PUT", srv.URL+"/json/realms/root/users/"+tt.id, []byte(tt.body), "Content-Type: application/json",
				"Accept-API-Version: resource=4.0, protocol=2.1", "iPlanetDirectoryPro: "+admin)
			expectCREST(t, r, 400, tt.msg)
			if r := c.getIdentity(admin, "/", tt.id); r.status != 404 {
				t.Errorf("identity %q exists after a refused create: %d", tt.id, r.status)
			}
		})
	}
	t.Run("refused update changes nothing", func(t *testing.T) {
		th := newThing(t, "stable-thing")
		c.createThing(admin, "/", th, map[string]any{"thingConfig": "v1"})
		r := c.putIdentity(admin, "/", th.id, map[string]any{"thingConfig": "v2", "thingKeys": "garbage"})
		expectCREST(t, r, 400, "thingKeys")
		_, x := c.identityKeys(admin, "/", th.id)
		if g := stringList(x, "thingConfig"); len(g) != 1 || g[0] != "v1" {
			t.Errorf("thingConfig = %v after a refused update", x["thingConfig"])
		}
		c.mustPoP(th, "auth-tree", "/")
	})
}

// TestIdentityRestrictedSession checks that the PoP restriction holds on the
// identity endpoint too: a thing reads its own identity only with a signed request.
func TestIdentityRestrictedSession(t *testing.T) {
	srv, c := startServer(t)
	admin := c.adminLogin()
	th := newThing(t, "self-reader")
	c.createThing(admin, "/", th, nil)
	tok := c.mustPoP(th, "auth-tree", "/")
	u := srv.URL + "/json/realms/root/users/self-reader"
	const api = "resource=4.0, protocol=2.1"
	expectCREST(t, c.do("GET", u, nil, "Accept-API-Version: "+api, "Cookie: iPlanetDirectoryPro="+tok), 401, "")
	r := c.signedRequest(th, "GET", u, api, tok, 0, nil)
	if got := expectStatus(t, r, 200); got["_id"] != th.id {
		t.Errorf("signed self read = %s", r.body)
	}
	expectCREST(t, c.signedRequest(th, "GET", u, api, tok, 0, nil), 401, "")
}

// A thingKeys set is stored as AM stores it (an opaque attribute); a key
// that cannot be used is skipped, and the usable keys still authenticate.
func TestIdentityUnusableKeySkipped(t *testing.T) {
	srv, c := startServer(t)
	admin := c.adminLogin()
	th := newThing(t, "odd-keys")
	good := th.publicJWK()
	set := map[string]any{"keys": []any{
		map[string]any{"kty": "EC", "crv": "P-256", "x": "AA", "kid": "broken"},
		map[string]any{"kty": "oct", "k": "c2VjcmV0", "kid": "symmetric"},
		good,
	}}
	body, _ := json.Marshal(map[string]any{"thingType": "device", "thingKeys": set})
	r := c.do("PUT", srv.URL+"/json/realms/root/users/odd-keys", body, "Content-Type: application/json",
		"Accept-API-Version: resource=4.0, protocol=2.1", "iPlanetDirectoryPro: "+admin)
	if r.status != 201 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	if tok, r := c.authenticatePoP(th, "auth-tree", "/", "/"); tok == "" {
		t.Fatalf("PoP with the usable key: %d %s", r.status, r.body)
	}
}

func TestEnsureUser(t *testing.T) {
	srv, c := startServer(t)
	if created, err := srv.EnsureUser("/", "bjensen", "Ch4ng31t"); err != nil || !created {
		t.Fatalf("EnsureUser = %v, %v", created, err)
	}
	if created, err := srv.EnsureUser("/", "BJensen", "other"); err != nil || created {
		t.Fatalf("second EnsureUser = %v, %v; want it to leave the user alone", created, err)
	}
	r := c.do("POST", srv.URL+"/json/authenticate", nil, "X-OpenAM-Username: bjensen", "X-OpenAM-Password: Ch4ng31t",
		"Accept-API-Version: resource=2.0, protocol=1.0")
	expectStatus(t, r, 200)
	for _, bad := range [][3]string{{"/", "amAdmin", "x"}, {"/nope", "u", "x"}, {"/", "u", ""}, {"/", "bad,name", "x"}} {
		if _, err := srv.EnsureUser(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("EnsureUser%v accepted", bad)
		}
	}
}
