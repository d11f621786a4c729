package amtest_test

// Registration's effect on the identity: Create Identity off, key
// rotation, attributes, the thing type, and the names a thing may not take.

import (
	"strings"
	"testing"

	"github.com/thingway/thingway/amclient/amtest"
)

// TestRegisterCreateIdentity covers Create Identity off (§5.6).
func TestRegisterCreateIdentity(t *testing.T) {
	cfg := amtest.DefaultConfig()
	reg := regNode(amtest.RegPoPWithoutTrust)
	reg.CreateIdentity = false
	addTree(cfg, "/", "reg-nocreate", nil, reg)
	_, c := startWith(t, cfg)
	admin := c.adminLogin()
	u := c.authURL("reg-nocreate", "/")

	unknown := newThing(t, uniqueID("new"))
	loginFailed(t, c.login(u, answers{"jwt-pop-registration": c.regAnswer(unknown, "/", nil)}).r)
	if r := c.getIdentity(admin, "/", unknown.id); r.status != 404 {
		t.Errorf("identity created with Create Identity off: %d %s", r.status, r.body)
	}

	// An existing identity without keys gets its key registered.
	known := newThing(t, uniqueID("known"))
	if r := c.putIdentity(admin, "/", known.id, map[string]any{"userPassword": "5tr0ngG3n3r@ted", "thingType": "device"}); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if res := c.login(u, answers{"jwt-pop-registration": c.regAnswer(known, "/", nil)}); res.token == "" {
		t.Fatalf("registration of an existing identity: %d %s", res.r.status, res.r.body)
	}
	c.mustPoP(known, "auth-tree", "/")
}

// TestRegisterKeyRotation covers Rotate Confirmation Key (§5.6).
func TestRegisterKeyRotation(t *testing.T) {
	for _, rotate := range []bool{true, false} {
		name := "rotation off"
		if rotate {
			name = "rotation on"
		}
		t.Run(name, func(t *testing.T) {
			cfg := amtest.DefaultConfig()
			reg := regNode(amtest.RegPoPWithoutTrust)
			reg.AllowKeyRotation = rotate
			addTree(cfg, "/", "reg-pop", nil, reg)
			_, c := startWith(t, cfg)
			admin := c.adminLogin()
			first := newThing(t, "rotating-thing")
			c.createThing(admin, "/", first, nil)
			second := newThing(t, "rotating-thing")
			u := c.authURL("reg-pop", "/")
			for i := 0; i < 2; i++ { // registering the same key twice adds it once
				if res := c.login(u, answers{"jwt-pop-registration": c.regAnswer(second, "/", nil)}); res.token == "" {
					t.Fatalf("registration of the second key: %d %s", res.r.status, res.r.body)
				}
			}
			kids, _ := c.identityKeys(admin, "/", first.id)
			want := []string{second.kid}
			if rotate {
				want = []string{first.kid, second.kid}
			}
			if strings.Join(kids, ",") != strings.Join(want, ",") {
				t.Errorf("kids = %v, want %v", kids, want)
			}
			c.mustPoP(second, "auth-tree", "/")
			tok, r := c.authenticatePoP(first, "auth-tree", "/", "/")
			if rotate && tok == "" {
				t.Errorf("first key after rotation: %d %s", r.status, r.body)
			}
			if !rotate {
				loginFailed(t, r)
			}
		})
	}
}

// TestRegisterAttributes covers Default Attribute Values, Claim to Attribute
// Mapping and Overwrite Attributes (§5.6, RegisterDeviceWithAttributes).
func TestRegisterAttributes(t *testing.T) {
	const props = `{"ipAddress":"10.0.0.7","serial":"SN-42","tags":["a","b"]}`
	newCfg := func(overwrite bool) *amtest.Config {
		cfg := amtest.DefaultConfig()
		cfg.Realms["/"].IoT.AttributeAllowlist = []string{"thingConfig", "thingType", "thingProperties"}
		reg := regNode(amtest.RegPoPWithoutTrust)
		reg.DefaultAttributeValues = map[string]string{"thingConfig": "host=default;port=1"}
		reg.ClaimToAttributeMapping = map[string]string{"thingProperties": "thingProperties"}
		reg.AllowAttributeOverwrite = overwrite
		addTree(cfg, "/", "reg-attrs", nil, reg)
		return cfg
	}

	t.Run("new identity", func(t *testing.T) {
		_, c := startWith(t, newCfg(false))
		th := newThing(t, uniqueID("attrs"))
		res := c.login(c.authURL("reg-attrs", "/"), answers{"jwt-pop-registration": c.regAnswer(th, "/",
			map[string]any{"thingProperties": props, "thingConfig": "from-a-claim-that-is-not-mapped"})})
		if res.token == "" {
			t.Fatalf("%d %s", res.r.status, res.r.body)
		}
		got := expectStatus(t, c.restrictedSession(th, res.token).things("GET", "", "/", nil), 200)
		want := map[string][]string{"thingProperties": {props}, "thingConfig": {"host=default;port=1"}, "thingType": {"device"}}
		for k, v := range want {
			if g := stringList(got, k); strings.Join(g, "|") != strings.Join(v, "|") {
				t.Errorf("%s = %q, want %q", k, g, v)
			}
		}
	})

	for _, overwrite := range []bool{false, true} {
		t.Run("existing identity, overwrite "+map[bool]string{true: "on", false: "off"}[overwrite], func(t *testing.T) {
			_, c := startWith(t, newCfg(overwrite))
			admin := c.adminLogin()
			th := newThing(t, uniqueID("attrs"))
			c.createThing(admin, "/", th, map[string]any{"thingProperties": "old", "thingConfig": "mine"})
			res := c.login(c.authURL("reg-attrs", "/"), answers{"jwt-pop-registration": c.regAnswer(th, "/",
				map[string]any{"thingProperties": props, "thingType": "service"})})
			if res.token == "" {
				t.Fatalf("%d %s", res.r.status, res.r.body)
			}
			got := expectStatus(t, c.restrictedSession(th, res.token).things("GET", "", "/", nil), 200)
			want := map[string]string{"thingProperties": "old", "thingType": "device", "thingConfig": "mine"}
			if overwrite {
				want["thingProperties"], want["thingType"] = props, "service"
			}
			for k, v := range want {
				if g := stringList(got, k); len(g) != 1 || g[0] != v {
					t.Errorf("%s = %q, want [%q]", k, g, v)
				}
			}
		})
	}
}

// TestRegisterThingType covers thingType service and gateway (RegisterServiceCert).
func TestRegisterThingType(t *testing.T) {
	cfg, ca := configWithCA(t)
	cfg.Realms["/"].IoT.AttributeAllowlist = []string{"thingConfig", "thingType"}
	_, c := startWith(t, cfg)
	admin := c.adminLogin()
	for _, typ := range []string{"service", "gateway", "Service"} {
		t.Run(typ, func(t *testing.T) {
			th := ca.issue(t, newThing(t, uniqueID("typed")))
			res := c.login(c.authURL("auth-reg-tree", "/"), answers{
				"jwt-pop-authentication": c.popAnswer(th, "/"),
				"jwt-pop-registration":   c.regAnswer(th, "/", map[string]any{"thingType": typ}),
			})
			if res.token == "" {
				t.Fatalf("%d %s", res.r.status, res.r.body)
			}
			got := expectStatus(t, c.restrictedSession(th, res.token).things("GET", "", "/", nil), 200)
			if tp := stringList(got, "thingType"); len(tp) != 1 || !strings.EqualFold(tp[0], typ) {
				t.Errorf("thingType = %v", got["thingType"])
			}
			if _, x := c.identityKeys(admin, "/", th.id); !strings.EqualFold(stringList(x, "thingType")[0], typ) {
				t.Errorf("identity thingType = %v", x["thingType"])
			}
		})
	}
}

// TestRegisterNames covers names a registration may not take: the
// administrator's and names matching nameValidationRegex.
func TestRegisterNames(t *testing.T) {
	cfg := amtest.DefaultConfig()
	addTree(cfg, "/", "reg-pop", nil, regNode(amtest.RegPoPWithoutTrust))
	strict := regNode(amtest.RegPoPWithoutTrust)
	strict.NameValidationRegex = `.*[\*\(\)&!].*`
	addTree(cfg, "/", "reg-strict", nil, strict)
	srv, c := startWith(t, cfg)
	tests := []struct {
		name, tree, id string
		ok             bool
	}{
		{"administrator", "reg-pop", "amAdmin", false},
		{"administrator, other case", "reg-pop", "AMADMIN", false},
		{"name matching nameValidationRegex", "reg-strict", "bad*name", false},
		{"name not matching nameValidationRegex", "reg-strict", "good-name", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newThing(t, tt.id)
			res := c.login(c.authURL(tt.tree, "/"), answers{"jwt-pop-registration": c.regAnswer(th, "/", nil)})
			if tt.ok {
				if res.token == "" {
					t.Fatalf("%d %s", res.r.status, res.r.body)
				}
				return
			}
			loginFailed(t, res.r)
		})
	}
	// Whatever happened above, a thing never holds an administrator session.
	th := newThing(t, "amAdmin")
	res := c.login(c.authURL("reg-pop", "/"), answers{"jwt-pop-registration": c.regAnswer(th, "/", nil)})
	if res.token != "" {
		r := c.do("GET", srv.URL+"/json/realms/root/users?_queryFilter=true", nil, "Accept-API-Version: resource=4.0", "iPlanetDirectoryPro: "+res.token)
		if r.status == 200 {
			t.Errorf("a thing registered as amAdmin lists identities")
		}
	}
}
