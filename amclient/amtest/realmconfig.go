package amtest

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/members"
)

// /json/realm-config/... and /json/scripts: the realm's services, tree
// nodes, trees, agents and scripts (am-protocol.md §11.3–§11.7). The realm
// is the request's (realm query parameter, realm path or DNS alias).

func (s *Server) handleRealmConfig(c *reqCtx, p string) error {
	if err := c.requireAdmin(); err != nil {
		return err
	}
	const trees = "authentication/authenticationtrees/"
	switch {
	case strings.HasPrefix(p, "services/"):
		typ, ok := pathSegment(strings.TrimPrefix(p, "services/"))
		if !ok {
			return routeNotFound(c)
		}
		return s.handleService(c, typ)
	case p == trees+"nodes" || strings.HasPrefix(p, trees+"nodes/"):
		return s.handleNodes(c, strings.TrimPrefix(strings.TrimPrefix(p, trees+"nodes"), "/"))
	case p == trees+"trees" || strings.HasPrefix(p, trees+"trees/"):
		return s.handleTrees(c, strings.TrimPrefix(strings.TrimPrefix(p, trees+"trees"), "/"))
	case p == "agents" || strings.HasPrefix(p, "agents/"):
		return s.handleAgents(c, strings.TrimPrefix(strings.TrimPrefix(p, "agents"), "/"))
	}
	return routeNotFound(c)
}

// inRealm runs f on the request's realm in a configuration change; the
// realm may have been deleted since the request started.
func (s *Server) inRealm(c *reqCtx, f func(cfg *Config, r *Realm) error) (*Realm, error) {
	cfg, err := s.changeConfig(func(cfg *Config) error {
		r := cfg.Realms[c.realm]
		if r == nil {
			return realmNotFound(c.realm)
		}
		return f(cfg, r)
	})
	if err != nil {
		return nil, err
	}
	return cfg.Realms[c.realm], nil
}

// --- tree nodes ---

var nodeDisplayNames = map[string]string{
	NodeTypeIoTAuthentication: "Authenticate Thing",
	NodeTypeIoTRegistration:   "Register Thing",
	NodeTypeUsernameCollector: "Username Collector",
	NodeTypePasswordCollector: "Password Collector",
	NodeTypeDataStoreDecision: "Data Store Decision",
	NodeTypeScriptedDecision:  "Scripted Decision",
}

var outcomeNames = map[string]string{"success": "Success", "failure": "Failure", "register": "Requires Registration",
	"outcome": "Outcome", "true": "True", "false": "False"}

func nodeResource(id string, n *Node) (map[string]any, error) {
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
func nodeResources(typ string) resource[Node] {
	return resource[Node]{
		in:       func(r *Realm) *map[string]*Node { return &r.Nodes },
		is:       func(n *Node) bool { return n.Type == typ },
		render:   nodeResource,
		what:     func(id string) string { return "Node " + id },
		notFound: func(id string) error { return crest.Err(http.StatusNotFound, "Node "+typ+"/"+id+" not found") },
		inUse: func(r *Realm, id string) error {
			if tree := config.NodeInUse(r, id); tree != "" {
				return crest.Err(http.StatusConflict, "Node "+id+" is in use by the tree "+tree)
			}
			return nil
		},
	}
}

func (s *Server) handleNodes(c *reqCtx, p string) error {
	typ, id, hasID := strings.Cut(p, "/")
	if hasID && id == "" {
		return routeNotFound(c)
	}
	k := nodeResources(typ)
	if id == "" {
		// Query: all nodes, or the nodes of one type.
		if c.r.Method != http.MethodGet {
			return methodNotAllowed()
		}
		if typ == "" {
			k.is = nil
		}
		return listResources(c, k)
	}
	var ok bool
	if id, ok = pathSegment(id); !ok {
		return routeNotFound(c)
	}
	return serveResource(s, c, k, id, func() error { return s.putNode(c, k, typ, id) })
}

// putNode creates or updates the node typ/id.
func (s *Server) putNode(c *reqCtx, k resource[Node], typ, id string) error {
	_, body, err := c.objectBody()
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
	n := &Node{}
	if err := json.Unmarshal(b, n); err != nil {
		return crest.Err(http.StatusBadRequest, "Invalid "+typ+" configuration: "+err.Error())
	}
	return putResource(s, c, k, id, func(old *Node) error {
		if old != nil && old.Type != typ {
			return crest.Err(http.StatusConflict, "The node ID "+id+" is used by a node of type "+old.Type)
		}
		return nil
	}, func(r *Realm, _ *Node) (*Node, error) {
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
var treeResources = resource[Tree]{
	in:       func(r *Realm) *map[string]*Tree { return &r.Trees },
	what:     func(name string) string { return "Tree " + name },
	notFound: func(name string) error { return crest.Err(http.StatusNotFound, "Tree "+name+" not found") },
}

func (s *Server) handleTrees(c *reqCtx, name string) error {
	k := treeResources
	if name == "" {
		if c.r.Method != http.MethodGet {
			return methodNotAllowed()
		}
		return listResources(c, k)
	}
	name, ok := pathSegment(name)
	if !ok {
		return routeNotFound(c)
	}
	return serveResource(s, c, k, name, func() error { return s.putTree(c, k, name) })
}

// putTree creates or updates the tree name.
func (s *Server) putTree(c *reqCtx, k resource[Tree], name string) error {
	raw, body, err := c.objectBody()
	if err != nil {
		return err
	}
	if err := checkBodyID(body, name, "tree's name"); err != nil {
		return err
	}
	t := &Tree{}
	if err := json.Unmarshal(raw, t); err != nil {
		return crest.Err(http.StatusBadRequest, "Invalid tree: "+err.Error())
	}
	return putResource(s, c, k, name, nil, func(r *Realm, _ *Tree) (*Tree, error) {
		if err := config.ValidateTree(r, t); err != nil {
			return nil, crest.Err(http.StatusBadRequest, "Invalid tree "+name+": "+err.Error())
		}
		return t, nil
	})
}

// --- agents ---

var agentTypes = map[string]map[string]any{
	AgentOAuth2Client:      {"_id": AgentOAuth2Client, "name": "OAuth2 Clients", "collection": true},
	AgentSoftwarePublisher: {"_id": AgentSoftwarePublisher, "name": "OAuth2 Software Publisher", "collection": true},
	AgentTrustedJWTIssuer:  {"_id": AgentTrustedJWTIssuer, "name": "Trusted JWT Issuer", "collection": true},
}

// agent returns the realm's agent, or nil.
func agent(r *Realm, typ, id string) any {
	switch typ {
	case AgentOAuth2Client:
		if a := r.OAuth2Clients[id]; a != nil {
			return a
		}
	case AgentSoftwarePublisher:
		if a := r.SoftwarePublishers[id]; a != nil {
			return a
		}
	case AgentTrustedJWTIssuer:
		if a := r.TrustedJWTIssuers[id]; a != nil {
			return a
		}
	}
	return nil
}

func (s *Server) handleAgents(c *reqCtx, p string) error {
	typ, id, _ := strings.Cut(p, "/")
	if agentTypes[typ] == nil {
		if c.r.Method == http.MethodPut && typ != "" {
			return crest.Err(http.StatusBadRequest, "Agent type "+typ+" is not supported by the local AM ("+
				AgentOAuth2Client+", "+AgentSoftwarePublisher+", "+AgentTrustedJWTIssuer+")")
		}
		return routeNotFound(c)
	}
	switch typ {
	case AgentOAuth2Client:
		return serveAgent(s, c, agentResource(typ, func(r *Realm) *map[string]*OAuth2Client { return &r.OAuth2Clients }), typ, id)
	case AgentSoftwarePublisher:
		return serveAgent(s, c, agentResource(typ, func(r *Realm) *map[string]*SoftwarePublisher { return &r.SoftwarePublishers }), typ, id)
	default:
		return serveAgent(s, c, agentResource(typ, func(r *Realm) *map[string]*TrustedJWTIssuer { return &r.TrustedJWTIssuers }), typ, id)
	}
}

// agentResource is the resource of the realm's agents of type typ, whose
// map in returns.
func agentResource[T any](typ string, in func(r *Realm) *map[string]*T) resource[T] {
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
func serveAgent[T any](s *Server, c *reqCtx, k resource[T], typ, id string) error {
	if id == "" {
		if c.r.Method != http.MethodGet {
			return methodNotAllowed()
		}
		return listResources(c, k)
	}
	id, ok := pathSegment(id)
	if !ok {
		return routeNotFound(c)
	}
	return serveResource(s, c, k, id, func() error { return s.putAgent(c, typ, id) })
}

// putAgent creates or updates an agent: an update changes the settings
// given and keeps the others.
func (s *Server) putAgent(c *reqCtx, typ, id string) error {
	meta := map[string]any{"_type": agentTypes[typ]}
	raw, body, err := c.objectBody()
	if err != nil {
		return err
	}
	if err := checkBodyID(body, id, "agent's ID"); err != nil {
		return err
	}
	created := false
	r, err := s.inRealm(c, func(_ *Config, r *Realm) error {
		old := agent(r, typ, id)
		rev := ""
		if old != nil {
			ob, _ := json.Marshal(old)
			rev = revOf(ob)
		}
		if err := preconditions(c, old != nil, rev, "Agent "+typ+"/"+id); err != nil {
			return err
		}
		created = old == nil
		merged := raw
		var secret string
		var err error
		if cl, ok := old.(*OAuth2Client); ok {
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
		if cl := r.OAuth2Clients[id]; typ == AgentOAuth2Client && cl.Secret == "" {
			cl.Secret = secret
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeResource(c, putStatus(created), id, agent(r, typ, id), meta)
}

// --- scripts ---

// scriptResources are the realm's scripts.
var scriptResources = resource[Script]{
	in:       func(r *Realm) *map[string]*Script { return &r.Scripts },
	what:     func(id string) string { return "Script " + id },
	notFound: func(id string) error { return crest.Err(http.StatusNotFound, "Script "+id+" not found") },
	inUse: func(r *Realm, id string) error {
		if node, tree := config.ScriptInUse(r, id); node != "" {
			return crest.Err(http.StatusConflict, "Script "+id+" is in use by the node "+node+" of the tree "+tree)
		}
		return nil
	},
}

func (s *Server) handleScripts(c *reqCtx, id string) error {
	if err := c.requireAdmin(); err != nil {
		return err
	}
	k := scriptResources
	if id == "" {
		switch c.r.Method {
		case http.MethodGet:
			return listResources(c, k)
		case http.MethodPost:
			if _, err := action(c, "create"); err != nil {
				return err
			}
			return s.putScript(c, "", true)
		}
		return methodNotAllowed()
	}
	id, ok := pathSegment(id)
	if !ok {
		return routeNotFound(c)
	}
	return serveResource(s, c, k, id, func() error { return s.putScript(c, id, false) })
}

// putScript creates a script (POST _action=create, id from the body or
// generated) or creates or updates one by PUT.
func (s *Server) putScript(c *reqCtx, id string, create bool) error {
	raw, body, err := c.objectBody()
	if err != nil {
		return err
	}
	var bid string
	if v, ok := body["_id"]; ok && json.Unmarshal(v, &bid) != nil {
		return crest.Err(http.StatusBadRequest, "_id is not a string")
	}
	switch {
	case id == "" && bid == "":
		id = newUUID()
	case id == "":
		if _, ok := pathSegment(bid); !ok {
			return crest.Err(http.StatusBadRequest, "Invalid script _id "+bid)
		}
		id = bid
	case bid != "" && bid != id:
		return crest.Err(http.StatusBadRequest, "The _id in the body is not the script's ID "+id)
	}
	return putResource(s, c, scriptResources, id, func(old *Script) error {
		if create && old != nil {
			return crest.Err(http.StatusConflict, "Script "+id+" already exists")
		}
		return nil
	}, func(r *Realm, old *Script) (*Script, error) {
		sc := &Script{}
		if old != nil {
			cp := *old
			sc = &cp
		}
		if err := json.Unmarshal(raw, sc); err != nil {
			return nil, crest.Err(http.StatusBadRequest, "Invalid script: "+err.Error())
		}
		switch {
		case strings.TrimSpace(sc.Name) == "":
			return nil, crest.Err(http.StatusBadRequest, "A script needs a name")
		case sc.Language != ScriptGroovy && sc.Language != ScriptJavaScript:
			return nil, crest.Err(http.StatusBadRequest, "Invalid script language "+sc.Language+" ("+ScriptGroovy+" or "+ScriptJavaScript+")")
		case sc.Context == "":
			return nil, crest.Err(http.StatusBadRequest, "A script needs a context")
		}
		for oid, other := range r.Scripts {
			if oid != id && other != nil && other.Name == sc.Name {
				return nil, crest.Err(http.StatusConflict, "A script named "+sc.Name+" already exists")
			}
		}
		return sc, nil
	})
}

// checkBodyID refuses a body whose _id is not the ID the URL names (what:
// "node's ID", "tree's name", ...); a body without _id is fine.
func checkBodyID(body map[string]json.RawMessage, want, what string) error {
	v, ok := body["_id"]
	if !ok {
		return nil
	}
	var got string
	if json.Unmarshal(v, &got) != nil || got != want {
		return crest.Err(http.StatusBadRequest, "The _id in the body is not the "+what+" "+want)
	}
	return nil
}
