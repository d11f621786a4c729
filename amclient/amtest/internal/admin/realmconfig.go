package admin

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/members"
)

// /json/realm-config/...: the realm's services (services.go), tree nodes,
// trees and agents; with /json/scripts (scripts.go), am-protocol.md
// §11.3–§11.7. The realm is the request's (realm query parameter, realm
// path or DNS alias).

// RealmConfig answers a call on /json/realm-config/p in the request's
// realm.
func (e *Env) RealmConfig(p string) error {
	if err := e.Authorize(); err != nil {
		return err
	}
	const authTrees = "authentication/authenticationtrees/"
	switch {
	case strings.HasPrefix(p, "services/"):
		typ, ok := pathSegment(strings.TrimPrefix(p, "services/"))
		if !ok {
			return e.routeNotFound()
		}
		return e.services(typ)
	case p == authTrees+"nodes" || strings.HasPrefix(p, authTrees+"nodes/"):
		return e.nodes(strings.TrimPrefix(strings.TrimPrefix(p, authTrees+"nodes"), "/"))
	case p == authTrees+"trees" || strings.HasPrefix(p, authTrees+"trees/"):
		return e.trees(strings.TrimPrefix(strings.TrimPrefix(p, authTrees+"trees"), "/"))
	case p == "agents" || strings.HasPrefix(p, "agents/"):
		return e.agents(strings.TrimPrefix(strings.TrimPrefix(p, "agents"), "/"))
	}
	return e.routeNotFound()
}

// --- tree nodes ---

var nodeDisplayNames = map[string]string{
	config.NodeTypeIoTAuthentication: "Authenticate Thing",
	config.NodeTypeIoTRegistration:   "Register Thing",
	config.NodeTypeUsernameCollector: "Username Collector",
	config.NodeTypePasswordCollector: "Password Collector",
	config.NodeTypeDataStoreDecision: "Data Store Decision",
	config.NodeTypeScriptedDecision:  "Scripted Decision",
}

var outcomeNames = map[string]string{"success": "Success", "failure": "Failure", "register": "Requires Registration",
	"outcome": "Outcome", "true": "True", "false": "False"}

func nodeResource(id string, n *config.Node) (map[string]any, error) {
	var outcomes []map[string]string
	for _, o := range config.NodeOutcomes(n) {
		outcomes = append(outcomes, map[string]string{"id": o, "displayName": outcomeNames[o]})
	}
	return resourceJSON(id, n, map[string]any{
		"_type":     map[string]any{"_id": n.Type, "name": nodeDisplayNames[n.Type], "collection": true},
		"_outcomes": outcomes,
	})
}

// nodeResources are the realm's nodes of type typ.
func nodeResources(typ string) resource[config.Node] {
	return resource[config.Node]{
		in:       func(r *config.Realm) *map[string]*config.Node { return &r.Nodes },
		is:       func(n *config.Node) bool { return n.Type == typ },
		render:   nodeResource,
		what:     func(id string) string { return "Node " + id },
		notFound: func(id string) error { return crest.Err(http.StatusNotFound, "Node "+typ+"/"+id+" not found") },
		inUse: func(r *config.Realm, id string) error {
			if tree := config.NodeInUse(r, id); tree != "" {
				return crest.Err(http.StatusConflict, "Node "+id+" is in use by the tree "+tree)
			}
			return nil
		},
	}
}

func (e *Env) nodes(p string) error {
	typ, id, hasID := strings.Cut(p, "/")
	if hasID && id == "" {
		return e.routeNotFound()
	}
	k := nodeResources(typ)
	if typ == "" && id == "" {
		k.is = nil // a query of all nodes, of every type
	}
	return serveCollection(e, k, id, func(id string) error { return e.putNode(k, typ, id) })
}

// putNode creates or updates the node typ/id.
func (e *Env) putNode(k resource[config.Node], typ, id string) error {
	_, body, err := e.objectBody()
	if err != nil {
		return err
	}
	if err := checkBodyID(body, id, "node's ID"); err != nil {
		return err
	}
	if v, ok := body["_type"]; ok {
		var bt config.TypeRef
		if json.Unmarshal(v, &bt) != nil || bt.ID != typ {
			return crest.Err(http.StatusBadRequest, "The _type in the body is not the node type "+typ)
		}
	}
	body["_type"], _ = json.Marshal(config.TypeRef{ID: typ})
	b, _ := json.Marshal(body)
	n := &config.Node{}
	if err := json.Unmarshal(b, n); err != nil {
		return crest.Err(http.StatusBadRequest, "Invalid "+typ+" configuration: "+err.Error())
	}
	return putResource(e, k, id, func(old *config.Node) error {
		if old != nil && old.Type != typ {
			return crest.Err(http.StatusConflict, "The node ID "+id+" is used by a node of type "+old.Type)
		}
		return nil
	}, func(r *config.Realm, _ *config.Node) (*config.Node, error) {
		// A node is checked on its own too: a Scripted Decision node that
		// no tree uses yet must still name a script in the subset.
		if err := config.ValidateNode(r, id, n, true); err != nil {
			return nil, crest.Err(http.StatusBadRequest, "Invalid "+typ+" "+id+": "+err.Error())
		}
		return n, nil
	})
}

// --- trees ---

// treeResources are the realm's trees.
var treeResources = resource[config.Tree]{
	in:       func(r *config.Realm) *map[string]*config.Tree { return &r.Trees },
	what:     func(name string) string { return "Tree " + name },
	notFound: func(name string) error { return crest.Err(http.StatusNotFound, "Tree "+name+" not found") },
}

func (e *Env) trees(name string) error {
	return serveCollection(e, treeResources, name, func(name string) error { return e.putTree(treeResources, name) })
}

// serveCollection answers the calls on a collection of k: a query of them
// all (name ""), and GET, DELETE and PUT (put) on the one named.
func serveCollection[T any](e *Env, k resource[T], name string, put func(name string) error) error {
	if name == "" {
		if e.R.Method != http.MethodGet {
			return methodNotAllowed()
		}
		return listResources(e, k)
	}
	name, ok := pathSegment(name)
	if !ok {
		return e.routeNotFound()
	}
	return serveResource(e, k, name, func() error { return put(name) })
}

// putTree creates or updates the tree name.
func (e *Env) putTree(k resource[config.Tree], name string) error {
	raw, body, err := e.objectBody()
	if err != nil {
		return err
	}
	if err := checkBodyID(body, name, "tree's name"); err != nil {
		return err
	}
	t := &config.Tree{}
	if err := json.Unmarshal(raw, t); err != nil {
		return crest.Err(http.StatusBadRequest, "Invalid tree: "+err.Error())
	}
	return putResource(e, k, name, nil, func(r *config.Realm, _ *config.Tree) (*config.Tree, error) {
		if err := config.ValidateTree(r, t); err != nil {
			return nil, crest.Err(http.StatusBadRequest, "Invalid tree "+name+": "+err.Error())
		}
		return t, nil
	})
}

// --- agents ---

var agentTypes = map[string]map[string]any{
	config.AgentOAuth2Client:      {"_id": config.AgentOAuth2Client, "name": "OAuth2 Clients", "collection": true},
	config.AgentSoftwarePublisher: {"_id": config.AgentSoftwarePublisher, "name": "OAuth2 Software Publisher", "collection": true},
	config.AgentTrustedJWTIssuer:  {"_id": config.AgentTrustedJWTIssuer, "name": "Trusted JWT Issuer", "collection": true},
}

// agent returns the realm's agent, or nil.
func agent(r *config.Realm, typ, id string) any {
	switch typ {
	case config.AgentOAuth2Client:
		if a := r.OAuth2Clients[id]; a != nil {
			return a
		}
	case config.AgentSoftwarePublisher:
		if a := r.SoftwarePublishers[id]; a != nil {
			return a
		}
	case config.AgentTrustedJWTIssuer:
		if a := r.TrustedJWTIssuers[id]; a != nil {
			return a
		}
	}
	return nil
}

func (e *Env) agents(p string) error {
	typ, id, _ := strings.Cut(p, "/")
	if agentTypes[typ] == nil {
		if e.R.Method == http.MethodPut && typ != "" {
			return crest.Err(http.StatusBadRequest, "Agent type "+typ+" is not supported by the local AM ("+
				config.AgentOAuth2Client+", "+config.AgentSoftwarePublisher+", "+config.AgentTrustedJWTIssuer+")")
		}
		return e.routeNotFound()
	}
	switch typ {
	case config.AgentOAuth2Client:
		return serveAgent(e, agentResource(typ, func(r *config.Realm) *map[string]*config.OAuth2Client { return &r.OAuth2Clients }), typ, id)
	case config.AgentSoftwarePublisher:
		return serveAgent(e, agentResource(typ, func(r *config.Realm) *map[string]*config.SoftwarePublisher { return &r.SoftwarePublishers }), typ, id)
	default:
		return serveAgent(e, agentResource(typ, func(r *config.Realm) *map[string]*config.TrustedJWTIssuer { return &r.TrustedJWTIssuers }), typ, id)
	}
}

// agentResource is the resource of the realm's agents of type typ, whose
// map in returns.
func agentResource[T any](typ string, in func(r *config.Realm) *map[string]*T) resource[T] {
	meta := map[string]any{"_type": agentTypes[typ]}
	return resource[T]{
		in:       in,
		render:   func(id string, v *T) (map[string]any, error) { return resourceJSON(id, v, meta) },
		what:     func(id string) string { return "Agent " + typ + "/" + id },
		notFound: func(id string) error { return crest.Err(http.StatusNotFound, "Agent "+typ+"/"+id+" not found") },
	}
}

// serveAgent answers the calls on the agents of one type: a query of them
// all, and GET, DELETE and PUT on one.
func serveAgent[T any](e *Env, k resource[T], typ, id string) error {
	return serveCollection(e, k, id, func(id string) error { return e.putAgent(typ, id) })
}

// putAgent creates or updates an agent: an update changes the settings
// given and keeps the others.
func (e *Env) putAgent(typ, id string) error {
	meta := map[string]any{"_type": agentTypes[typ]}
	raw, body, err := e.objectBody()
	if err != nil {
		return err
	}
	if err := checkBodyID(body, id, "agent's ID"); err != nil {
		return err
	}
	created := false
	r, err := e.inRealm(func(_ *config.Config, r *config.Realm) error {
		old := agent(r, typ, id)
		rev := ""
		if old != nil {
			ob, _ := json.Marshal(old)
			rev = revOf(ob)
		}
		if err := e.preconditions(old != nil, rev, "Agent "+typ+"/"+id); err != nil {
			return err
		}
		created = old == nil
		merged := raw
		var secret string
		var err error
		if cl, ok := old.(*config.OAuth2Client); ok {
			// An update changes the settings given and keeps the others,
			// the secret included unless a new one is given.
			if merged, err = members.Overlay(cl, body); err != nil {
				return err
			}
			secret = cl.Secret
		} else if old != nil {
			if merged, err = members.Overlay(old, body); err != nil {
				return err
			}
		}
		if err := config.PutAgent(r, typ, id, merged); err != nil {
			return crest.Err(http.StatusBadRequest, "Invalid "+typ+" "+id+": "+err.Error())
		}
		if cl := r.OAuth2Clients[id]; typ == config.AgentOAuth2Client && cl.Secret == "" {
			cl.Secret = secret
		}
		return nil
	})
	if err != nil {
		return err
	}
	return e.writeResource(putStatus(created), id, agent(r, typ, id), meta)
}
