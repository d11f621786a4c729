package admin

import (
	"encoding/base64"
	"slices"
	"testing"

	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

const realmsPath = "global-config/realms"

// TestRealmIDRoundTrip checks that a created realm's _id (its path in
// base64) names it in every base64 form clients send, with its name,
// parent and revision; and the Location of a created realm.
func TestRealmIDRoundTrip(t *testing.T) {
	f := newFake(t)
	a := f.call("POST", realmsPath+"?_action=create", `{"name":"a","parentPath":"/","active":true,"aliases":["x"]}`)
	m := f.must(a, 201)
	id := base64.StdEncoding.EncodeToString([]byte("/a"))
	if m["_id"] != id || m["name"] != "a" || m["parentPath"] != "/" || m["active"] != true {
		t.Fatalf("create: %v", m)
	}
	if loc := a.header.Get("Location"); loc != testBase+"/json/global-config/realms/"+id {
		t.Fatalf("Location %q", loc)
	}
	// A realm's earlier state is purged before it is created.
	if !slices.Equal(f.purged, []string{"/a"}) {
		t.Fatalf("purged %v", f.purged)
	}
	b := f.must(f.call("POST", realmsPath+"?_action=create", `{"name":"b","parentPath":"/a/","active":false,"aliases":[]}`), 201)
	if b["_id"] != crest.RealmID("/a/b") || b["name"] != "b" || b["parentPath"] != "/a" || b["active"] != false {
		t.Fatalf("create a sub-realm: %v", b)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		got := f.must(f.call("GET", realmsPath+"/"+enc.EncodeToString([]byte("/a/b")), ""), 200)
		if got["_id"] != b["_id"] || got["_rev"] != b["_rev"] {
			t.Fatalf("read by %v: %v", enc, got)
		}
	}
	if got := ids(t, f.must(f.call("GET", realmsPath+"?_queryFilter=true", ""), 200)); !slices.Equal(got,
		[]string{crest.RealmID("/"), crest.RealmID("/a"), crest.RealmID("/a/b")}) {
		t.Fatalf("query: %v", got)
	}
	f.refused(404, "Realm cannot be read: nope", func() answer { return f.call("GET", realmsPath+"/nope", "") })
	f.refused(404, "Realm cannot be read: /c", func() answer { return f.call("GET", realmsPath+"/"+crest.RealmID("/c"), "") })
	f.refused(409, "Unable to create Realm: the realm /a already exists", func() answer {
		return f.call("POST", realmsPath+"?_action=create", `{"name":"A","parentPath":"/","active":true,"aliases":[]}`)
	})
	f.refused(400, "Realm names cannot contain: "+realmNameChars, func() answer {
		return f.call("POST", realmsPath+"?_action=create", `{"name":"a b","parentPath":"/","active":true,"aliases":[]}`)
	})

	// An update changes the revision; the body's _id and name must be the
	// realm's.
	u := f.must(f.call("PUT", realmsPath+"/"+id, `{"_id":"`+id+`","name":"a","parentPath":"/","active":false,"aliases":[]}`), 200)
	if u["active"] != false || u["_rev"] == m["_rev"] {
		t.Fatalf("update: %v after %v", u, m)
	}
	f.refused(400, "The _id in the body is not the realm's", func() answer {
		return f.call("PUT", realmsPath+"/"+id, `{"_id":"`+crest.RealmID("/")+`","active":true}`)
	})
	f.refused(400, "Realm name specified in URL does not match realm name specified in JSON", func() answer {
		return f.call("PUT", realmsPath+"/"+id, `{"name":"z","parentPath":"/","active":true}`)
	})
	f.refused(400, "The top-level realm cannot be made inactive", func() answer {
		return f.call("PUT", realmsPath+"/"+crest.RealmID("/"), `{"name":"/","active":false}`)
	})

	// A realm with sub-realms stays; a deleted one's state is purged.
	f.refused(409, "Cannot delete realm /a: it has the sub-realm /a/b; delete sub-realms first", func() answer {
		return f.call("DELETE", realmsPath+"/"+id, "")
	})
	f.refused(401, "Unauthorized-Cannot delete root suffix", func() answer {
		return f.call("DELETE", realmsPath+"/"+crest.RealmID("/"), "")
	})
	gone := f.must(f.call("DELETE", realmsPath+"/"+crest.RealmID("/a/b"), ""), 200)
	if gone["_id"] != b["_id"] || gone["_rev"] != b["_rev"] || f.cfg.Realms["/a/b"] != nil {
		t.Fatalf("delete: %v", gone)
	}
	if !slices.Equal(f.purged, []string{"/a", "/a/b", "/a/b"}) {
		t.Fatalf("purged %v", f.purged)
	}
}

// TestRealmConfigOfDeletedRealm checks that a change in a realm deleted
// since the request started is a 404, and changes nothing.
func TestRealmConfigOfDeletedRealm(t *testing.T) {
	f := newFake(t)
	f.realm = "/gone"
	f.refused(404, "Realm cannot be read: /gone", func() answer {
		return f.call("PUT", "realm-config/authentication/authenticationtrees/trees/t", `{"entryNodeId":"x","nodes":{}}`)
	})
}
