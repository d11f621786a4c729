package identities

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

var testNow = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// jwks returns a JWK set of one fresh P-256 public key kid, as JSON text
// in the form json.Marshal gives a decoded object (members sorted).
func jwks(t *testing.T, kid string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	var o any
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	return AttrValue(o)
}

func TestValidName(t *testing.T) {
	for _, id := range []string{"thing-1", "Alice", "a b", "ünïcödé", "a.b@c", strings.Repeat("x", 255)} {
		if !ValidName(id) {
			t.Errorf("ValidName(%q) = false", id)
		}
	}
	for _, id := range []string{"", " lead", "trail ", "a/b", `a\b`, "a,b", "a+b", `a"b`, "a<b", "a>b", "a;b", "a=b",
		"a*b", "a(b", "a)b", "a#b", "a\x00b", "a\tb", strings.Repeat("x", 256)} {
		if ValidName(id) {
			t.Errorf("ValidName(%q) = true", id)
		}
	}
}

// A body's attributes are stored as AM stores them, and the rendering at
// each API version fed back as a body gives the same attributes.
func TestJSONRoundTrip(t *testing.T) {
	keys := jwks(t, "k1")
	var keysObj any
	json.Unmarshal([]byte(keys), &keysObj)
	body := map[string]any{
		"thingType":   "device",
		"mail":        []any{"a@example.com", nil, "b@example.com"},
		"thingConfig": map[string]any{"port": 80.0, "host": "localhost"},
		"count":       42.0,
		"active":      true,
		"thingKeys":   keysObj,
		"gone":        nil,
		"empty":       []any{},
		// Ignored: read-only, computed or CREST's.
		"_id": "other", "_rev": "7", "username": "other", "realm": "/x", "dn": "x", "objectClass": []any{"top"},
	}
	x, err := FromJSON("/", "Thing-1", body, testNow, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"objectClass": objectClasses, "cn": {"Thing-1"}, "sn": {"Thing-1"}, "uid": {"Thing-1"}, "inetUserStatus": {"Active"},
		"thingType": {"device"}, "mail": {"a@example.com", "b@example.com"},
		"thingConfig": {`{"host":"localhost","port":80}`}, "count": {"42"}, "active": {"true"}, "thingKeys": {keys},
	}
	if !reflect.DeepEqual(x.Attrs, want) {
		t.Fatalf("attrs = %v\nwant %v", x.Attrs, want)
	}
	if x.ID != "Thing-1" || x.Realm != "/" || x.PasswordHash != "" || !x.Created.Equal(testNow) {
		t.Errorf("identity = %+v", x)
	}
	if k := x.ThingKey("k1"); k == nil || !k.IsPublic() {
		t.Errorf("ThingKey(k1) = %v", k)
	}
	if x.ThingKey("k2") != nil {
		t.Error("ThingKey(k2) found a key")
	}

	for _, tc := range []struct {
		major int
		id    any
	}{{0, "Thing-1"}, {1, []string{"Thing-1"}}, {3, []string{"Thing-1"}}, {4, "Thing-1"}, {5, "Thing-1"}} {
		x.Rev = 2
		out := x.JSON(tc.major)
		if !reflect.DeepEqual(out["_id"], tc.id) {
			t.Errorf("major %d: _id = %#v, want %#v", tc.major, out["_id"], tc.id)
		}
		for k, v := range map[string]any{
			"_rev": "-3", "realm": "/", "username": "Thing-1",
			"dn":              []string{"uid=Thing-1,ou=people,dc=openam,dc=forgerock,dc=org"},
			"universalid":     []string{"id=Thing-1,ou=user,dc=openam,dc=forgerock,dc=org"},
			"createTimestamp": []string{"20240506070809Z"},
			"thingKeys":       []any{keysObj},
			"mail":            []string{"a@example.com", "b@example.com"},
		} {
			if !reflect.DeepEqual(out[k], v) {
				t.Errorf("major %d: %s = %#v, want %#v", tc.major, k, out[k], v)
			}
		}
		// Through JSON text and back, as a client would send it.
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		var again map[string]any
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatal(err)
		}
		y, err := FromJSON("/", "Thing-1", again, testNow, "")
		if err != nil {
			t.Fatalf("major %d: %v", tc.major, err)
		}
		if !reflect.DeepEqual(y.Attrs, x.Attrs) {
			t.Errorf("major %d: round trip attrs = %v\nwant %v", tc.major, y.Attrs, x.Attrs)
		}
	}

	// _fields keeps the members named, and _id and _rev.
	out := x.Filtered(4, "thingType, cn,nope")
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range out {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(got, []string{"_id", "_rev", "cn", "thingType"}) {
		t.Errorf("Filtered members = %v", got)
	}
	if all := x.Filtered(4, ""); !reflect.DeepEqual(all, x.JSON(4)) {
		t.Error("Filtered without _fields is not JSON")
	}

	// A change: null removes, {"keys": null} removes thingKeys.
	if err := x.SetFromJSON(map[string]any{"mail": nil, "thingKeys": map[string]any{"keys": nil}}, ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := x.Attrs["mail"]; ok {
		t.Error("mail kept after null")
	}
	if _, ok := x.Attrs["thingKeys"]; ok {
		t.Error(`thingKeys kept after {"keys": null}`)
	}
}

func TestSetFromJSONRefused(t *testing.T) {
	for _, tc := range []struct {
		id   string
		body map[string]any
		want string
	}{
		{"bad,name", map[string]any{}, `invalid identity name "bad,name"`},
		{"t", map[string]any{"userPassword": ""}, "userPassword must be a non-empty string"},
		{"t", map[string]any{"userPassword": 5.0}, "userPassword must be a non-empty string"},
		{"t", map[string]any{"thingKeys": "garbage"}, "thingKeys is not a JSON Web Key set: "},
		{"t", map[string]any{"thingKeys": map[string]any{"kty": "EC"}}, `thingKeys is not a JSON Web Key set: not a JWK set: no "keys" array`},
	} {
		_, err := FromJSON("/", tc.id, tc.body, testNow, "")
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("FromJSON(%q, %v) = %v, want %q", tc.id, tc.body, err, tc.want)
		}
	}
}

func TestCloneSharesNothing(t *testing.T) {
	x := New("/", "t", testNow)
	c := x.CloneValue().(*Identity)
	c.Attrs["cn"][0] = "changed"
	c.Attrs["new"] = []string{"v"}
	if x.First("cn") != "t" || x.Attrs["new"] != nil {
		t.Errorf("the clone shares attributes: %v", x.Attrs)
	}
	if x.First("absent") != "" {
		t.Error("First of an absent attribute")
	}
}

func TestConstantTimeEqual(t *testing.T) {
	if !ConstantTimeEqual("abc", "abc") || ConstantTimeEqual("abc", "abd") || ConstantTimeEqual("abc", "ab") {
		t.Error("ConstantTimeEqual")
	}
}
