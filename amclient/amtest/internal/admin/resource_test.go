package admin

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"testing"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
)

const (
	treesPath = "realm-config/authentication/authenticationtrees/trees"
	nodesPath = "realm-config/authentication/authenticationtrees/nodes"
)

// ids are the _ids of a query answer's results, in order.
func ids(t *testing.T, m map[string]any) []string {
	t.Helper()
	res, _ := m["result"].([]any)
	if m["resultCount"] != float64(len(res)) {
		t.Fatalf("resultCount %v for %d results", m["resultCount"], len(res))
	}
	var out []string
	for _, r := range res {
		out = append(out, r.(map[string]any)["_id"].(string))
	}
	return out
}

// rev is the revision of v's JSON form, as the answers give it.
func rev(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return revOf(b)
}

// TestTreeResource runs the generic resource handler's four calls on
// trees: query, read, create and update by PUT with their preconditions,
// delete; and checks that a revision follows the object's content.
func TestTreeResource(t *testing.T) {
	f := newFake(t)
	got := ids(t, f.must(f.call("GET", treesPath+"?_queryFilter=true", ""), 200))
	if !slices.Equal(got, []string{"auth-reg-tree", "auth-tree", "ldapService", "reg-tree"}) {
		t.Fatalf("query: %v", got)
	}
	f.refused(400, "Query request must specify _queryFilter", func() answer { return f.call("GET", treesPath, "") })
	f.refused(501, "Query not supported: _id eq 'x'", func() answer { return f.call("GET", treesPath+"?_queryFilter=_id+eq+'x'", "") })

	tree := f.must(f.call("GET", treesPath+"/auth-tree", ""), 200)
	if tree["_id"] != "auth-tree" || tree["_rev"] != rev(t, f.cfg.Realms["/"].Trees["auth-tree"]) {
		t.Fatalf("read: %v", tree)
	}
	f.refused(404, "Tree nope not found", func() answer { return f.call("GET", treesPath+"/nope", "") })
	f.refused(405, "Method Not Allowed", func() answer { return f.call("POST", treesPath+"/auth-tree", "{}") })
	f.refused(404, "Resource '"+treesPath+"/a%2Fb' not found", func() answer { return f.call("GET", treesPath+"/a%2Fb", "") })

	// A copy under another name: the body's _id must be the URL's.
	body := mustJSON(t, tree)
	f.refused(400, "The _id in the body is not the tree's name copy", func() answer { return f.call("PUT", treesPath+"/copy", body) })
	origRev := tree["_rev"]
	delete(tree, "_id")
	delete(tree, "_rev")
	body = mustJSON(t, tree)
	created := f.must(f.call("PUT", treesPath+"/copy", body, "If-None-Match: *"), 201)
	// The revision is the content's: the copy's is the original's.
	if created["_id"] != "copy" || created["_rev"] != origRev || created["_rev"] != rev(t, f.cfg.Realms["/"].Trees["copy"]) {
		t.Fatalf("create: %v, want _rev %v", created, origRev)
	}
	f.refused(412, "Tree copy already exists", func() answer { return f.call("PUT", treesPath+"/copy", body, "If-None-Match: *") })
	f.refused(412, "Precondition Failed", func() answer { return f.call("PUT", treesPath+"/nope", body, "If-Match: *") })
	f.refused(412, "Precondition Failed", func() answer { return f.call("PUT", treesPath+"/copy", body, `If-Match: "1"`) })

	// An update that changes the tree changes its revision; one that does
	// not keeps it.
	same := f.must(f.call("PUT", treesPath+"/copy", body, `If-Match: "`+created["_rev"].(string)+`"`), 200)
	if same["_rev"] != created["_rev"] {
		t.Fatalf("unchanged tree, new revision: %v then %v", created["_rev"], same["_rev"])
	}
	tree["description"] = "kept as given"
	updated := f.must(f.call("PUT", treesPath+"/copy", mustJSON(t, tree)), 200)
	if updated["_rev"] == created["_rev"] || updated["description"] != "kept as given" {
		t.Fatalf("update: %v", updated)
	}
	if got := f.must(f.call("GET", treesPath+"/copy", ""), 200); got["_rev"] != updated["_rev"] {
		t.Fatalf("read after update: %v", got)
	}

	// A tree is checked on write: an unknown entry node is refused.
	tree["entryNodeId"] = "00000000-0000-0000-0000-00000000dead"
	bad := mustJSON(t, tree)
	a := f.call("PUT", treesPath+"/bad", bad)
	if a.status != 400 || f.cfg.Realms["/"].Trees["bad"] != nil {
		t.Fatalf("invalid tree: %d %s", a.status, a.raw)
	}

	gone := f.must(f.call("DELETE", treesPath+"/copy", ""), 200)
	if gone["_id"] != "copy" || gone["_rev"] != updated["_rev"] {
		t.Fatalf("delete: %v", gone)
	}
	f.refused(404, "Tree copy not found", func() answer { return f.call("DELETE", treesPath+"/copy", "") })
	f.refused(404, "Tree copy not found", func() answer { return f.call("GET", treesPath+"/copy", "") })
}

// TestNodeResource checks what nodes add to the generic handler: a
// query of one type, the _type and _outcomes of their resources, a type
// per ID, and no deletion of a node a tree uses.
func TestNodeResource(t *testing.T) {
	f := newFake(t)
	ldap := f.cfg.Realms["/"].Trees["ldapService"]
	user := ""
	for id, n := range ldap.Nodes {
		if n.NodeType == config.NodeTypeUsernameCollector {
			user = id
		}
	}
	typ := config.NodeTypeUsernameCollector
	if got := ids(t, f.must(f.call("GET", nodesPath+"/"+typ+"?_queryFilter=true", ""), 200)); !slices.Equal(got, []string{user}) {
		t.Fatalf("query of %s: %v", typ, got)
	}
	if got := ids(t, f.must(f.call("GET", nodesPath+"?_queryFilter=true", ""), 200)); len(got) != len(f.cfg.Realms["/"].Nodes) {
		t.Fatalf("query of all nodes: %v", got)
	}
	n := f.must(f.call("GET", nodesPath+"/"+typ+"/"+user, ""), 200)
	if mustJSON(t, n["_type"]) != `{"_id":"`+typ+`","collection":true,"name":"Username Collector"}` ||
		mustJSON(t, n["_outcomes"]) != `[{"displayName":"Outcome","id":"outcome"}]` {
		t.Fatalf("node: %v", n)
	}
	f.refused(404, "Node "+config.NodeTypePasswordCollector+"/"+user+" not found", func() answer {
		return f.call("GET", nodesPath+"/"+config.NodeTypePasswordCollector+"/"+user, "")
	})
	f.refused(409, "Node "+user+" is in use by the tree ldapService", func() answer {
		return f.call("DELETE", nodesPath+"/"+typ+"/"+user, "")
	})
	f.refused(409, "The node ID "+user+" is used by a node of type "+typ, func() answer {
		return f.call("PUT", nodesPath+"/"+config.NodeTypePasswordCollector+"/"+user, "{}")
	})
	f.refused(400, "The _type in the body is not the node type "+typ, func() answer {
		return f.call("PUT", nodesPath+"/"+typ+"/new", `{"_type":{"_id":"`+config.NodeTypePasswordCollector+`"}}`)
	})
	f.must(f.call("PUT", nodesPath+"/"+typ+"/new", `{"_id":"new"}`), 201)
	f.must(f.call("DELETE", nodesPath+"/"+typ+"/new", ""), 200)
	if f.cfg.Realms["/"].Nodes["new"] != nil {
		t.Fatal("node not deleted")
	}
}

// TestScripts checks a script's creation with a generated ID, its rules
// and the refusal to delete a script that a node runs.
func TestScripts(t *testing.T) {
	f := newFake(t)
	src := base64.StdEncoding.EncodeToString([]byte(`outcome = "true"`))
	s := `{"name":"s","language":"GROOVY","context":"AUTHENTICATION_TREE_DECISION_NODE","script":"` + src + `"}`
	m := f.must(f.call("POST", "scripts?_action=create", s), 201)
	if m["_id"] != testUUID || m["name"] != "s" {
		t.Fatalf("create: %v", m)
	}
	f.refused(501, "Action 'nope' not implemented for this resource", func() answer { return f.call("POST", "scripts?_action=nope", s) })
	f.refused(409, "Script "+testUUID+" already exists", func() answer { return f.call("POST", "scripts?_action=create", `{"_id":"`+testUUID+`","name":"t"}`) })
	f.refused(409, "A script named s already exists", func() answer { return f.call("PUT", "scripts/other", s) })
	f.refused(400, "Invalid script language COBOL (GROOVY or JAVASCRIPT)", func() answer {
		return f.call("PUT", "scripts/other", `{"name":"o","language":"COBOL","context":"x"}`)
	})
	node := `{"script":"` + testUUID + `","outcomes":["true","false"],"outputs":["*"],"inputs":["*"]}`
	f.must(f.call("PUT", nodesPath+"/"+config.NodeTypeScriptedDecision+"/sd", node), 201)
	tree := `{"entryNodeId":"sd","nodes":{"sd":{"nodeType":"` + config.NodeTypeScriptedDecision +
		`","connections":{"true":"` + config.SuccessNodeID + `","false":"` + config.FailureNodeID + `"}}}}`
	f.must(f.call("PUT", treesPath+"/scripted", tree), 201)
	f.refused(409, "Script "+testUUID+" is in use by the node sd of the tree scripted", func() answer {
		return f.call("DELETE", "scripts/"+testUUID, "")
	})
}

// TestAgents checks that an agent's update keeps the settings and the
// client secret it does not give.
func TestAgents(t *testing.T) {
	f := newFake(t)
	const p = "realm-config/agents/OAuth2Client/c"
	m := f.must(f.call("PUT", p, `{"coreOAuth2ClientConfig":{"userpassword":"s3cret","scopes":["a"]}}`), 201)
	if mustJSON(t, m["_type"]) != `{"_id":"OAuth2Client","collection":true,"name":"OAuth2 Clients"}` {
		t.Fatalf("create: %v", m)
	}
	f.must(f.call("PUT", p, `{"coreOAuth2ClientConfig":{"scopes":["b"]}}`), 200)
	c := f.cfg.Realms["/"].OAuth2Clients["c"]
	if c.Secret != "s3cret" || !slices.Equal(c.Scopes, []string{"b"}) {
		t.Fatalf("update: secret %q, scopes %v", c.Secret, c.Scopes)
	}
	f.refused(400, "Agent type Nope is not supported by the local AM (OAuth2Client, SoftwarePublisher, TrustedJwtIssuer)", func() answer {
		return f.call("PUT", "realm-config/agents/Nope/x", "{}")
	})
	f.refused(404, "Resource 'realm-config/agents/Nope/x' not found", func() answer { return f.call("GET", "realm-config/agents/Nope/x", "") })
}

// TestServices checks a service's delete and create, and the agents the
// IoT Service creates.
func TestServices(t *testing.T) {
	f := newFake(t)
	const p = "realm-config/services/iot"
	gone := f.call("DELETE", p, "")
	if gone.status != 200 || string(gone.raw) != `{"_id":"","_rev":"0","success":true}` {
		t.Fatalf("delete: %d %s", gone.status, gone.raw)
	}
	f.refused(404, "Service iot is not configured in realm /", func() answer { return f.call("GET", p, "") })
	f.refused(404, "Service iot is not configured in realm /", func() answer { return f.call("PUT", p, "{}") })
	m := f.must(f.call("POST", p+"?_action=create", `{"createOAuthClient":true,"oauthClientName":"c1","createOAuthJwtIssuer":true,"oauthJwtIssuerName":"i1"}`), 201)
	if m["_id"] != "" || mustJSON(t, m["_type"]) != `{"_id":"iot","collection":false,"name":"IoT Service"}` {
		t.Fatalf("create: %v", m)
	}
	r := f.cfg.Realms["/"]
	if c := r.OAuth2Clients["c1"]; c == nil || c.Secret != "rrrrrrrrrrrrrrrrrrrrrrrr" || r.TrustedJWTIssuers["i1"] == nil {
		t.Fatalf("the IoT Service's agents: %v %v", c, r.TrustedJWTIssuers)
	}
	f.refused(409, "Service already exists", func() answer { return f.call("POST", p+"?_action=create", "{}") })
	f.refused(412, "Service Already Exists", func() answer { return f.call("PUT", p, "{}", "If-None-Match: *") })
	f.refused(404, "Service x is not supported by the local AM (iot, oauth-oidc)", func() answer {
		return f.call("GET", "realm-config/services/x", "")
	})
}
