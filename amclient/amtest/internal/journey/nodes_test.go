package journey

import (
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/proof"
	"github.com/thingway/thingway/amclient/amtest/internal/script"
)

// authTree is a tree of one Authenticate Thing node; its register outcome
// leads to failure.
func authTree(f *fake, cfg *config.IoTAuthenticationNode) {
	f.tree("auth", "a", map[string]*config.Node{"a": {Type: config.NodeTypeIoTAuthentication, Authentication: cfg}},
		map[string]map[string]string{"a": {"success": success, "failure": failure, "register": failure}})
}

// popClaims are a PoP authentication JWT's claims for the challenge nonce.
func popClaims(sub, kid, nonce string) map[string]any {
	return map[string]any{"sub": sub, "aud": "/", "nonce": nonce, "cnf": map[string]any{"kid": kid},
		"iat": testNow.Unix(), "exp": testNow.Add(5 * time.Minute).Unix(), "answer": "42"}
}

// The Authenticate Thing node challenges with a nonce, verifies the
// signed answer with the thing's key and leaves the claims in the node
// states; a session it makes carries the key.
func TestAuthenticateThingPoP(t *testing.T) {
	f := newFake(t)
	k := newThingKey(t, "k1")
	f.ids["thing-1"] = &identities.Identity{ID: "thing-1", Attrs: map[string][]string{"thingKeys": {k.jwks(t)}}}
	authTree(f, &config.IoTAuthenticationNode{JWTAuthenticationMethod: config.AuthProofOfPossession, IssueRestrictedToken: true})
	e := f.env()

	for _, tc := range []struct {
		name    string
		claims  func(nonce string) map[string]any
		outcome string
		reason  string
	}{
		{"verified", func(n string) map[string]any { return popClaims("thing-1", "k1", n) }, success, ""},
		{"wrong nonce", func(string) map[string]any { return popClaims("thing-1", "k1", "other") }, failure, "nonce does not match the challenge"},
		{"unknown thing", func(n string) map[string]any { return popClaims("thing-2", "k1", n) }, failure, `no identity \"thing-2\"`},
		{"unknown key", func(n string) map[string]any { return popClaims("thing-1", "k2", n) }, failure, `identity \"thing-1\" has no key \"k2\"`},
		{"expired", func(n string) map[string]any {
			c := popClaims("thing-1", "k1", n)
			c["iat"], c["exp"] = testNow.Add(-10*time.Minute).Unix(), testNow.Add(-5*time.Minute).Unix()
			return c
		}, failure, "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.log.Reset()
			st := &State{Realm: "/", Tree: "auth"}
			cbs, _, err := e.Run(st, nil)
			if err != nil || len(cbs) != 1 || cbs[0].Type != "HiddenValueCallback" || outputValue(cbs[0], "id") != cbPoPAuthentication {
				t.Fatalf("challenge = %+v, %v", cbs, err)
			}
			nonce := outputValue(cbs[0], "value")
			if len(nonce) < 16 {
				t.Fatalf("nonce %q", nonce)
			}
			cbs, outcome, err := e.Run(st, answer(cbs, k.sign(t, tc.claims(nonce), false)))
			if err != nil || cbs != nil || outcome != tc.outcome {
				t.Fatalf("Run = %v, %q, %v; want %s", cbs, outcome, err, tc.outcome)
			}
			if tc.reason != "" {
				if !strings.Contains(f.log.String(), `msg="node outcome" node="Authenticate Thing"`) || !strings.Contains(f.log.String(), tc.reason) {
					t.Errorf("log = %s; want reason %q", f.log.String(), tc.reason)
				}
				return
			}
			l, err := e.Login(st)
			if err != nil || l.UID != "thing-1" || l.Admin || !l.Restricted || l.Key == nil || l.Key.KeyID != "k1" || !l.Key.IsPublic() {
				t.Errorf("Login = %+v, %v", l, err)
			}
			for _, m := range []map[string]any{st.sharedState, st.transientState} {
				if c, _ := m[script.VerifiedClaimsKey].(map[string]any); c["answer"] != "42" {
					t.Errorf("node state claims = %v", m[script.VerifiedClaimsKey])
				}
			}
		})
	}
}

// A client assertion's jti is accepted once per thing until it expires.
func TestClientAssertionReplay(t *testing.T) {
	f := newFake(t)
	k := newThingKey(t, "k1")
	f.ids["thing-1"] = &identities.Identity{ID: "thing-1", Attrs: map[string][]string{"thingKeys": {k.jwks(t)}}}
	authTree(f, &config.IoTAuthenticationNode{JWTAuthenticationMethod: config.AuthClientAssertion})
	e := f.env()
	assertion := k.sign(t, map[string]any{"sub": "thing-1", "iss": "thing-1", "aud": e.Issuer + "/access_token",
		"jti": "j-1", "exp": testNow.Add(5 * time.Minute).Unix()}, true)
	login := func() string {
		st := &State{Realm: "/", Tree: "auth"}
		cbs, _, err := e.Run(st, nil)
		if err != nil || len(cbs) != 1 || outputValue(cbs[0], "id") != cbClientAssertion {
			t.Fatalf("challenge = %+v, %v", cbs, err)
		}
		_, outcome, err := e.Run(st, answer(cbs, assertion))
		if err != nil {
			t.Fatal(err)
		}
		return outcome
	}
	if got := login(); got != success {
		t.Fatalf("first use = %s", got)
	}
	if got := login(); got != failure || !strings.Contains(f.log.String(), `client assertion jti \"j-1\" was already used`) {
		t.Fatalf("second use = %s, log %s", got, f.log.String())
	}
	// Past exp and skew the record has expired.
	cl := &proof.Claims{Jti: "j-1", Exp: proof.NumericDate{Time: testNow.Add(5 * time.Minute)}}
	first, err := FirstUse(f.db.Update, "/", "THING-1", cl, time.Minute, testNow.Add(6*time.Minute+time.Second))
	if err != nil || !first {
		t.Errorf("FirstUse after expiry = %v, %v", first, err)
	}
	// The record is per thing.
	if first, err := FirstUse(f.db.Update, "/", "thing-2", cl, time.Minute, testNow); err != nil || !first {
		t.Errorf("FirstUse of another thing = %v, %v", first, err)
	}
}

// regTree is a tree of one Register Thing node.
func regTree(f *fake, cfg *config.IoTRegistrationNode) {
	f.tree("reg", "r", map[string]*config.Node{"r": {Type: config.NodeTypeIoTRegistration, Registration: cfg}},
		map[string]map[string]string{"r": {"success": success, "failure": failure}})
}

// register runs the Register Thing node with a registration JWT of key k
// for sub, and returns the outcome.
func register(t *testing.T, f *fake, k *thingKey, sub string, extra map[string]any) (string, *State) {
	t.Helper()
	e := f.env()
	st := &State{Realm: "/", Tree: "reg"}
	cbs, _, err := e.Run(st, nil)
	if err != nil || len(cbs) != 1 || outputValue(cbs[0], "id") != cbPoPRegistration {
		t.Fatalf("challenge = %+v, %v", cbs, err)
	}
	claims := map[string]any{"sub": sub, "aud": "/", "nonce": outputValue(cbs[0], "value"), "thingType": "device",
		"cnf": map[string]any{"jwk": k.public()}, "iat": testNow.Unix(), "exp": testNow.Add(5 * time.Minute).Unix()}
	for n, v := range extra {
		claims[n] = v
	}
	_, outcome, err := e.Run(st, answer(cbs, k.sign(t, claims, false)))
	if err != nil {
		t.Fatal(err)
	}
	return outcome, st
}

func kids(t *testing.T, x *identities.Identity) []string {
	t.Helper()
	var out []string
	for _, k := range x.ThingKeys() {
		out = append(out, k.KeyID)
	}
	return out
}

// Register Thing (without trust) creates the thing with its key, its
// thingType and mapped claims, and binds the session to the key; Create
// Identity off refuses an unknown thing.
func TestRegisterThing(t *testing.T) {
	f := newFake(t)
	regTree(f, &config.IoTRegistrationNode{JWTRegistrationMethod: config.RegPoPWithoutTrust, CreateIdentity: true,
		ClaimToAttributeMapping: map[string]string{"serial": "serialNumber"}, DefaultAttributeValues: map[string]string{"thingConfig": "{}"}})
	k1 := newThingKey(t, "k1")
	outcome, st := register(t, f, k1, "thing-1", map[string]any{"serial": 7})
	if outcome != success {
		t.Fatalf("outcome = %s, log %s", outcome, f.log.String())
	}
	x := f.ids["thing-1"]
	if got := kids(t, x); len(got) != 1 || got[0] != "k1" {
		t.Errorf("kids = %v", got)
	}
	for attr, want := range map[string]string{"thingType": "device", "serialNumber": "7", "thingConfig": "{}", "uid": "thing-1"} {
		if got := x.Attrs[attr]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %v, want %s", attr, got, want)
		}
	}
	if l, err := f.env().Login(st); err != nil || l.UID != "thing-1" || !l.Restricted || l.Key == nil || l.Key.KeyID != "k1" {
		t.Errorf("Login = %+v, %v", l, err)
	}

	for _, tc := range []struct {
		name, sub string
		extra     map[string]any
		reason    string
	}{
		{"administrator's name", "AMADMIN", nil, `a thing may not take the administrator's name \"AMADMIN\"`},
		{"invalid name", "a/b", nil, `invalid thing name \"a/b\"`},
		{"thingType", "thing-2", map[string]any{"thingType": "toaster"}, `thingType \"toaster\" is not one of [device service gateway]`},
	} {
		f.log.Reset()
		if outcome, _ := register(t, f, newThingKey(t, "k"), tc.sub, tc.extra); outcome != failure || !strings.Contains(f.log.String(), tc.reason) {
			t.Errorf("%s: outcome %s, log %s; want %q", tc.name, outcome, f.log.String(), tc.reason)
		}
	}

	g := newFake(t)
	regTree(g, &config.IoTRegistrationNode{JWTRegistrationMethod: config.RegPoPWithoutTrust})
	if outcome, _ := register(t, g, k1, "thing-1", nil); outcome != failure ||
		!strings.Contains(g.log.String(), `identity \"thing-1\" does not exist and Create Identity is off`) || len(g.ids) != 0 {
		t.Errorf("without Create Identity: outcome %s, ids %v, log %s", outcome, g.ids, g.log.String())
	}
}

// Registering another key replaces the thing's key, or with Allow Key
// Rotation adds it; a key of the same kid is replaced either way. Stored
// attributes are kept unless Allow Attribute Overwrite.
func TestRegisterChange(t *testing.T) {
	key := func(kid string) jose.JSONWebKey { return newThingKey(t, kid).public() }
	existing := func() *identities.Identity {
		x := &identities.Identity{ID: "t", Attrs: map[string][]string{"thingType": {"service"}}}
		if err := registerChange(&config.IoTRegistrationNode{CreateIdentity: true}, x, true, "", []jose.JSONWebKey{key("k1")}, nil); err != nil {
			t.Fatal(err)
		}
		return x
	}
	for _, tc := range []struct {
		name      string
		cfg       config.IoTRegistrationNode
		kid       string
		wantKids  string
		wantThing string
	}{
		{"replace", config.IoTRegistrationNode{}, "k2", "k2", "service"},
		{"rotate", config.IoTRegistrationNode{AllowKeyRotation: true}, "k2", "k1,k2", "service"},
		{"same kid", config.IoTRegistrationNode{AllowKeyRotation: true}, "k1", "k1", "service"},
		{"overwrite", config.IoTRegistrationNode{AllowAttributeOverwrite: true}, "k2", "k2", "device"},
	} {
		x := existing()
		if err := registerChange(&tc.cfg, x, false, "device", []jose.JSONWebKey{key(tc.kid)}, nil); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(kids(t, x), ","); got != tc.wantKids {
			t.Errorf("%s: kids %s, want %s", tc.name, got, tc.wantKids)
		}
		if got := x.Attrs["thingType"][0]; got != tc.wantThing {
			t.Errorf("%s: thingType %s, want %s", tc.name, got, tc.wantThing)
		}
	}
}
