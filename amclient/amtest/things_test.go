package amtest_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/thingway/thingway/amclient/amtest"
)

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

// TestThingAttributes covers attribute reads (§7.2, AttributesWithNoFilter,
// AttributesWithFilter, AttributesWithNonRestrictedToken).
func TestThingAttributes(t *testing.T) {
	cfg := amtest.DefaultConfig()
	cfg.Realms["/"].IoT.AttributeAllowlist = []string{"thingConfig", "thingType", "thingProperties"}
	_, c := startWith(t, cfg)
	admin := c.adminLogin()
	th := newThing(t, "attr-thing")
	c.createThing(admin, "/", th, map[string]any{"thingConfig": "host=localhost;port=80", "description": "not readable",
		"mail": []string{"a@example.com", "b@example.com"}})
	tok := c.mustPoP(th, "auth-tree", "/")
	s := c.restrictedSession(th, tok)
	if r := c.putIdentity(admin, "/", "human", map[string]any{"userPassword": "hifalutin", "thingType": "device", "thingConfig": "human-config"}); r.status != 201 {
		t.Fatalf("create human: %d %s", r.status, r.body)
	}
	human := c.login(c.authURL("ldapService", "/"), answers{"NameCallback": constant("human"), "PasswordCallback": constant("hifalutin")})
	if human.token == "" {
		t.Fatalf("human login: %d %s", human.r.status, human.r.body)
	}

	tests := []struct {
		name   string
		fields string
		want   map[string][]string // attribute → values; missing key means absent
	}{
		{"no filter", "", map[string][]string{"thingConfig": {"host=localhost;port=80"}, "thingType": {"device"}, "thingProperties": {}}},
		{"one field", "thingConfig", map[string][]string{"thingConfig": {"host=localhost;port=80"}}},
		{"two fields", "thingConfig,thingType", map[string][]string{"thingConfig": {"host=localhost;port=80"}, "thingType": {"device"}}},
		{"a readable field the identity lacks", "thingProperties", map[string][]string{}},
		{"fields outside the allowlist", "description,thingKeys,userPassword,mail", map[string][]string{}},
		{"allowlisted and not allowlisted", "thingType,description", map[string][]string{"thingType": {"device"}}},
	}
	for _, tt := range tests {
		for _, mode := range []string{"signed", "json"} {
			t.Run(tt.name+" "+mode, func(t *testing.T) {
				u := c.thingsURL("", "/")
				if tt.fields != "" {
					u += "&_fields=" + tt.fields
				}
				var r response
				id := th.id
				if mode == "signed" {
					r = s.do("GET", u, thingsAPI, nil)
				} else {
					// An unrestricted session reads its own attributes with JSON.
					r = c.thingsJSON("GET", u, human.token, nil)
					id = "human"
				}
				got := expectStatus(t, r, 200)
				if got["_id"] != id {
					t.Errorf("_id = %v", got["_id"])
				}
				delete(got, "_id")
				want := map[string]any{}
				for k := range tt.want {
					want[k] = true
				}
				if keys(got) != keys(want) {
					t.Fatalf("attributes %s, want exactly %q: %s", keys(got), keys(want), r.body)
				}
				if mode != "signed" {
					return
				}
				for k, v := range tt.want {
					if g := stringList(got, k); g == nil || strings.Join(g, "|") != strings.Join(v, "|") {
						t.Errorf("%s = %v, want %q", k, got[k], v)
					}
				}
			})
		}
	}

	t.Run("default allowlist", func(t *testing.T) {
		_, c := startServer(t)
		admin := c.adminLogin()
		th := newThing(t, "guide-thing")
		c.createThing(admin, "/", th, nil)
		got := expectStatus(t, c.restrictedSession(th, c.mustPoP(th, "auth-tree", "/")).things("GET", "", "/", nil), 200)
		if keys(got) != "_id,thingConfig,thingKeys" {
			t.Errorf("attributes = %v", got)
		}
		// thingKeys is read back as the stored JWK set text.
		if k := stringList(got, "thingKeys"); len(k) != 1 || !strings.HasPrefix(k[0], `{"keys":[`) || !strings.Contains(k[0], th.kid) {
			t.Errorf("thingKeys = %v", got["thingKeys"])
		}
	})
}

// TestThingsSessionChecks covers the session rules of the things endpoint (§7.1).
func TestThingsSessionChecks(t *testing.T) {
	cfg := amtest.DefaultConfig()
	cfg.Realms["/sub"] = amtest.GuideRealm()
	noIoT := amtest.GuideRealm()
	noIoT.IoT = nil
	cfg.Realms["/bare"] = noIoT
	srv, c := startWith(t, cfg)
	admin := c.adminLogin()
	th := newThing(t, "session-thing")
	c.createThing(admin, "/", th, nil)
	bare := newThing(t, "bare-thing")
	c.createThing(admin, "/bare", bare, nil)

	t.Run("logged-out session", func(t *testing.T) {
		tok := c.mustPoP(th, "auth-tree", "/")
		s := c.restrictedSession(th, tok)
		r := s.do("POST", srv.URL+"/json/sessions?_action=logout", "resource=4.0", nil)
		expectStatus(t, r, 200)
		expectCREST(t, s.things("GET", "", "/", nil), 401, "")
		expectCREST(t, s.things("POST", "get_access_token", "/", map[string]any{"scope": []string{"publish"}}), 401, "")
		expectCREST(t, c.thingsJSON("GET", c.thingsURL("", "/"), tok, nil), 401, "")
	})
	t.Run("no token", func(t *testing.T) {
		expectCREST(t, c.do("GET", c.thingsURL("", "/"), nil, "Accept-API-Version: "+thingsAPI), 401, "")
	})
	t.Run("made-up token", func(t *testing.T) {
		expectCREST(t, c.thingsJSON("GET", c.thingsURL("", "/"), "AQIC5wM2LY4Sfcx.*AAJTSQACMDE.*", nil), 401, "")
	})
	t.Run("token header instead of cookie", func(t *testing.T) {
		h := newThing(t, "header-thing")
		c.createThing(admin, "/", h, nil)
		cfgTok := c.mustPoP(h, "auth-tree", "/")
		body := signPayload(t, h, c.thingsURL("", "/"), thingsAPI, 0, map[string]any{"csrf": cfgTok})
		r := c.do("GET", c.thingsURL("", "/"), []byte(body), "Content-Type: application/jose", "Accept-API-Version: "+thingsAPI, "iPlanetDirectoryPro: "+cfgTok)
		expectStatus(t, r, 200)
	})
	t.Run("session of another realm", func(t *testing.T) {
		s := c.restrictedSession(th, c.mustPoP(th, "auth-tree", "/"))
		expectCREST(t, s.things("GET", "", "/sub", nil), 401, "")
		// The refused request did not use up the nonce.
		s.nonce--
		expectStatus(t, s.things("GET", "", "/", nil), 200)
	})
	t.Run("administrator session has no thing", func(t *testing.T) {
		expectCREST(t, c.thingsJSON("GET", c.thingsURL("", "/"), admin, nil), 401, "")
	})
	t.Run("realm without the IoT Service", func(t *testing.T) {
		s := c.restrictedSession(bare, c.mustPoP(bare, "auth-tree", "/bare"))
		expectCREST(t, s.things("GET", "", "/bare", nil), 404, "IoT Service")
	})
	t.Run("deleted identity", func(t *testing.T) {
		gone := newThing(t, "gone-thing")
		c.createThing(admin, "/", gone, nil)
		s := c.restrictedSession(gone, c.mustPoP(gone, "auth-tree", "/"))
		expectStatus(t, c.do("DELETE", srv.URL+"/json/realms/root/users/gone-thing", nil, "Accept-API-Version: resource=4.0", "iPlanetDirectoryPro: "+admin), 200)
		expectCREST(t, s.things("GET", "", "/", nil), 401, "")
	})
	t.Run("unknown action", func(t *testing.T) {
		s := c.restrictedSession(th, c.mustPoP(th, "auth-tree", "/"))
		expectCREST(t, s.things("POST", "explode", "/", nil), 501, "explode")
	})
	t.Run("wrong method", func(t *testing.T) {
		s := c.restrictedSession(th, c.mustPoP(th, "auth-tree", "/"))
		expectCREST(t, s.do("PUT", c.thingsURL("", "/"), thingsAPI, nil), 405, "")
		expectCREST(t, s.do("POST", c.thingsURL("", "/"), thingsAPI, nil), 405, "")
	})
}
