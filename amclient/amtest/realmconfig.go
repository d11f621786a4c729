package amtest

import (
	"encoding/json"
	"net/http"
	"strings"

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

// --- services ---

var serviceTypes = map[string]map[string]any{
	"iot":        {"_id": "iot", "name": "IoT Service", "collection": false},
	"oauth-oidc": {"_id": "oauth-oidc", "name": "OAuth2 Provider", "collection": false},
}

// service returns the realm's service of type typ, or nil.
func service(r *Realm, typ string) any {
	switch typ {
	case "iot":
		if r.IoT != nil {
			return r.IoT
		}
	case "oauth-oidc":
		if r.OAuth2 != nil {
			return r.OAuth2
		}
	}
	return nil
}

func serviceResource(c *reqCtx, status int, typ string, v any) error {
	return writeResource(c, status, "", v, map[string]any{"_type": serviceTypes[typ]})
}

func (s *Server) handleService(c *reqCtx, typ string) error {
	if serviceTypes[typ] == nil {
		return crestErr(http.StatusNotFound, "Service "+typ+" is not supported by the local AM (iot, oauth-oidc)")
	}
	notFound := crestErr(http.StatusNotFound, "Service "+typ+" is not configured in realm "+c.realm)
	switch c.r.Method {
	case http.MethodGet:
		v := service(c.rc, typ)
		if v == nil {
			return notFound
		}
		return serviceResource(c, http.StatusOK, typ, v)
	case http.MethodDelete:
		var gone any
		_, err := s.inRealm(c, func(_ *Config, r *Realm) error {
			if gone = service(r, typ); gone == nil {
				return notFound
			}
			if typ == "iot" {
				r.IoT = nil
			} else {
				r.OAuth2 = nil
			}
			return nil
		})
		if err != nil {
			return err
		}
		writeJSON(c.w, http.StatusOK, map[string]any{"_id": "", "_rev": "0", "success": true})
		return nil
	case http.MethodPost:
		if _, err := action(c, "create"); err != nil {
			return err
		}
		return s.putService(c, typ, true)
	case http.MethodPut:
		return s.putService(c, typ, false)
	}
	return methodNotAllowed()
}

// putService creates (create: POST _action=create, or PUT with
// If-None-Match: *) or updates a service. An update changes the members
// given and keeps the others, as AM does.
func (s *Server) putService(c *reqCtx, typ string, create bool) error {
	body, _, err := c.objectBody()
	if err != nil {
		return err
	}
	if c.r.Header.Get("If-None-Match") == "*" {
		create = true
	}
	created := false
	r, err := s.inRealm(c, func(cfg *Config, r *Realm) error {
		existing := service(r, typ)
		switch {
		case create && existing != nil && c.r.Method == http.MethodPut:
			return crestErr(http.StatusPreconditionFailed, "Service Already Exists")
		case create && existing != nil:
			return crestErr(http.StatusConflict, "Service already exists")
		case !create && existing == nil:
			return crestErr(http.StatusNotFound, "Service "+typ+" is not configured in realm "+c.realm)
		}
		created = existing == nil
		bad := func(err error) error {
			return crestErr(http.StatusBadRequest, "Invalid "+typ+" configuration: "+err.Error())
		}
		switch typ {
		case "iot":
			svc := DefaultIoTService()
			svc.CreateOAuthClient, svc.CreateOAuthJWTIssuer = false, false
			if !created {
				svc = r.IoT
			}
			if err := json.Unmarshal(body, svc); err != nil {
				return bad(err)
			}
			r.IoT = svc
			createIoTAgents(r)
		case "oauth-oidc":
			p := DefaultOAuth2Provider()
			if !created {
				p = r.OAuth2
			}
			if err := json.Unmarshal(body, p); err != nil {
				return bad(err)
			}
			r.OAuth2 = p
		}
		return nil
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return serviceResource(c, status, typ, service(r, typ))
}

// createIoTAgents makes the agents the IoT Service creates when asked: its
// OAuth 2.0 client (JWT bearer, device code and refresh token grants, no
// scopes, a generated secret) and its trusted JWT issuer.
func createIoTAgents(r *Realm) {
	svc := r.IoT
	if svc.CreateOAuthClient && svc.OAuthClientName != "" && r.OAuth2Clients[svc.OAuthClientName] == nil {
		if r.OAuth2Clients == nil {
			r.OAuth2Clients = map[string]*OAuth2Client{}
		}
		r.OAuth2Clients[svc.OAuthClientName] = &OAuth2Client{Secret: randomID(24),
			GrantTypes: []string{GrantJWTBearer, GrantDeviceCode, GrantRefreshToken}}
	}
	if svc.CreateOAuthJWTIssuer && svc.OAuthJWTIssuerName != "" && r.TrustedJWTIssuers[svc.OAuthJWTIssuerName] == nil {
		if r.TrustedJWTIssuers == nil {
			r.TrustedJWTIssuers = map[string]*TrustedJWTIssuer{}
		}
		r.TrustedJWTIssuers[svc.OAuthJWTIssuerName] = &TrustedJWTIssuer{Issuer: "forgerock-iot-service",
			ConsentedScopesClaim: "scope", ResourceOwnerIdentityClaim: "sub", AllowedSubjects: []string{},
			extra: members.Extra{"jwksCacheTimeout": json.RawMessage("3600000"), "jwkStoreCacheMissCacheTime": json.RawMessage("60000"),
				"jwkSet": json.RawMessage("null"), "jwksUri": json.RawMessage("null")}}
	}
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
	for _, o := range n.outcomes() {
		outcomes = append(outcomes, map[string]string{"id": o, "displayName": outcomeNames[o]})
	}
	return resourceJSON(id, n, map[string]any{
		"_type":     map[string]any{"_id": n.Type, "name": nodeDisplayNames[n.Type], "collection": true},
		"_outcomes": outcomes,
	})
}

func (s *Server) handleNodes(c *reqCtx, p string) error {
	typ, id, hasID := strings.Cut(p, "/")
	if hasID && id == "" {
		return routeNotFound(c)
	}
	if id == "" {
		// Query: all nodes, or the nodes of one type.
		if c.r.Method != http.MethodGet {
			return methodNotAllowed()
		}
		if err := checkQuery(c); err != nil {
			return err
		}
		var out []map[string]any
		for _, nid := range sortedKeys(c.rc.Nodes) {
			n := c.rc.Nodes[nid]
			if typ != "" && n.Type != typ {
				continue
			}
			m, err := nodeResource(nid, n)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		writeQuery(c, out)
		return nil
	}
	var ok bool
	if id, ok = pathSegment(id); !ok {
		return routeNotFound(c)
	}
	notFound := crestErr(http.StatusNotFound, "Node "+typ+"/"+id+" not found")
	switch c.r.Method {
	case http.MethodGet:
		n := c.rc.Nodes[id]
		if n == nil || n.Type != typ {
			return notFound
		}
		m, err := nodeResource(id, n)
		if err != nil {
			return err
		}
		writeJSON(c.w, http.StatusOK, m)
		return nil
	case http.MethodDelete:
		var gone *Node
		_, err := s.inRealm(c, func(_ *Config, r *Realm) error {
			if gone = r.Nodes[id]; gone == nil || gone.Type != typ {
				return notFound
			}
			if tree := r.nodeInUse(id); tree != "" {
				return crestErr(http.StatusConflict, "Node "+id+" is in use by the tree "+tree)
			}
			delete(r.Nodes, id)
			return nil
		})
		if err != nil {
			return err
		}
		m, err := nodeResource(id, gone)
		if err != nil {
			return err
		}
		writeJSON(c.w, http.StatusOK, m)
		return nil
	case http.MethodPut:
	default:
		return methodNotAllowed()
	}
	_, body, err := c.objectBody()
	if err != nil {
		return err
	}
	if err := checkBodyID(body, id, "node's ID"); err != nil {
		return err
	}
	if v, ok := body["_type"]; ok {
		var bt nodeType
		if json.Unmarshal(v, &bt) != nil || bt.ID != typ {
			return crestErr(http.StatusBadRequest, "The _type in the body is not the node type "+typ)
		}
	}
	body["_type"], _ = json.Marshal(nodeType{ID: typ})
	b, _ := json.Marshal(body)
	n := &Node{}
	if err := json.Unmarshal(b, n); err != nil {
		return crestErr(http.StatusBadRequest, "Invalid "+typ+" configuration: "+err.Error())
	}
	created := false
	r, err := s.inRealm(c, func(_ *Config, r *Realm) error {
		old := r.Nodes[id]
		if old != nil && old.Type != typ {
			return crestErr(http.StatusConflict, "The node ID "+id+" is used by a node of type "+old.Type)
		}
		rev := ""
		if old != nil {
			ob, _ := json.Marshal(old)
			rev = revOf(ob)
		}
		if err := preconditions(c, old != nil, rev, "Node "+id); err != nil {
			return err
		}
		created = old == nil
		// A node is checked on its own too: a Scripted Decision node that
		// no tree uses yet must still name a script in the subset.
		if err := r.validateNode(id, n, true); err != nil {
			return crestErr(http.StatusBadRequest, "Invalid "+typ+" "+id+": "+err.Error())
		}
		if r.Nodes == nil {
			r.Nodes = map[string]*Node{}
		}
		r.Nodes[id] = n
		return nil
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	m, err := nodeResource(id, r.Nodes[id])
	if err != nil {
		return err
	}
	writeJSON(c.w, status, m)
	return nil
}

// --- trees ---

func (s *Server) handleTrees(c *reqCtx, name string) error {
	if name == "" {
		if c.r.Method != http.MethodGet {
			return methodNotAllowed()
		}
		if err := checkQuery(c); err != nil {
			return err
		}
		var out []map[string]any
		for _, n := range sortedKeys(c.rc.Trees) {
			m, err := resourceJSON(n, c.rc.Trees[n], nil)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		writeQuery(c, out)
		return nil
	}
	name, ok := pathSegment(name)
	if !ok {
		return routeNotFound(c)
	}
	notFound := crestErr(http.StatusNotFound, "Tree "+name+" not found")
	switch c.r.Method {
	case http.MethodGet:
		t := c.rc.Trees[name]
		if t == nil {
			return notFound
		}
		return writeResource(c, http.StatusOK, name, t, nil)
	case http.MethodDelete:
		var gone *Tree
		_, err := s.inRealm(c, func(_ *Config, r *Realm) error {
			if gone = r.Trees[name]; gone == nil {
				return notFound
			}
			delete(r.Trees, name)
			return nil
		})
		if err != nil {
			return err
		}
		return writeResource(c, http.StatusOK, name, gone, nil)
	case http.MethodPut:
	default:
		return methodNotAllowed()
	}
	raw, body, err := c.objectBody()
	if err != nil {
		return err
	}
	if err := checkBodyID(body, name, "tree's name"); err != nil {
		return err
	}
	t := &Tree{}
	if err := json.Unmarshal(raw, t); err != nil {
		return crestErr(http.StatusBadRequest, "Invalid tree: "+err.Error())
	}
	created := false
	r, err := s.inRealm(c, func(_ *Config, r *Realm) error {
		old := r.Trees[name]
		rev := ""
		if old != nil {
			ob, _ := json.Marshal(old)
			rev = revOf(ob)
		}
		if err := preconditions(c, old != nil, rev, "Tree "+name); err != nil {
			return err
		}
		if err := validateTree(r, t); err != nil {
			return crestErr(http.StatusBadRequest, "Invalid tree "+name+": "+err.Error())
		}
		created = old == nil
		if r.Trees == nil {
			r.Trees = map[string]*Tree{}
		}
		r.Trees[name] = t
		return nil
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeResource(c, status, name, r.Trees[name], nil)
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

func agentIDs(r *Realm, typ string) []string {
	switch typ {
	case AgentOAuth2Client:
		return sortedKeys(r.OAuth2Clients)
	case AgentSoftwarePublisher:
		return sortedKeys(r.SoftwarePublishers)
	case AgentTrustedJWTIssuer:
		return sortedKeys(r.TrustedJWTIssuers)
	}
	return nil
}

func deleteAgent(r *Realm, typ, id string) {
	switch typ {
	case AgentOAuth2Client:
		delete(r.OAuth2Clients, id)
	case AgentSoftwarePublisher:
		delete(r.SoftwarePublishers, id)
	case AgentTrustedJWTIssuer:
		delete(r.TrustedJWTIssuers, id)
	}
}

func (s *Server) handleAgents(c *reqCtx, p string) error {
	typ, id, _ := strings.Cut(p, "/")
	if agentTypes[typ] == nil {
		if c.r.Method == http.MethodPut && typ != "" {
			return crestErr(http.StatusBadRequest, "Agent type "+typ+" is not supported by the local AM ("+
				AgentOAuth2Client+", "+AgentSoftwarePublisher+", "+AgentTrustedJWTIssuer+")")
		}
		return routeNotFound(c)
	}
	meta := map[string]any{"_type": agentTypes[typ]}
	if id == "" {
		if c.r.Method != http.MethodGet {
			return methodNotAllowed()
		}
		if err := checkQuery(c); err != nil {
			return err
		}
		var out []map[string]any
		for _, aid := range agentIDs(c.rc, typ) {
			m, err := resourceJSON(aid, agent(c.rc, typ, aid), meta)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		writeQuery(c, out)
		return nil
	}
	id, ok := pathSegment(id)
	if !ok {
		return routeNotFound(c)
	}
	notFound := crestErr(http.StatusNotFound, "Agent "+typ+"/"+id+" not found")
	switch c.r.Method {
	case http.MethodGet:
		a := agent(c.rc, typ, id)
		if a == nil {
			return notFound
		}
		return writeResource(c, http.StatusOK, id, a, meta)
	case http.MethodDelete:
		var gone any
		_, err := s.inRealm(c, func(_ *Config, r *Realm) error {
			if gone = agent(r, typ, id); gone == nil {
				return notFound
			}
			deleteAgent(r, typ, id)
			return nil
		})
		if err != nil {
			return err
		}
		return writeResource(c, http.StatusOK, id, gone, meta)
	case http.MethodPut:
	default:
		return methodNotAllowed()
	}
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
		if err := r.putAgent(typ, id, merged); err != nil {
			return crestErr(http.StatusBadRequest, "Invalid "+typ+" "+id+": "+err.Error())
		}
		if cl := r.OAuth2Clients[id]; typ == AgentOAuth2Client && cl.Secret == "" {
			cl.Secret = secret
		}
		return nil
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeResource(c, status, id, agent(r, typ, id), meta)
}

// --- scripts ---

func (s *Server) handleScripts(c *reqCtx, id string) error {
	if err := c.requireAdmin(); err != nil {
		return err
	}
	if id == "" {
		switch c.r.Method {
		case http.MethodGet:
			if err := checkQuery(c); err != nil {
				return err
			}
			var out []map[string]any
			for _, sid := range sortedKeys(c.rc.Scripts) {
				m, err := resourceJSON(sid, c.rc.Scripts[sid], nil)
				if err != nil {
					return err
				}
				out = append(out, m)
			}
			writeQuery(c, out)
			return nil
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
	notFound := crestErr(http.StatusNotFound, "Script "+id+" not found")
	switch c.r.Method {
	case http.MethodGet:
		sc := c.rc.Scripts[id]
		if sc == nil {
			return notFound
		}
		return writeResource(c, http.StatusOK, id, sc, nil)
	case http.MethodPut:
		return s.putScript(c, id, false)
	case http.MethodDelete:
		var gone *Script
		_, err := s.inRealm(c, func(_ *Config, r *Realm) error {
			if gone = r.Scripts[id]; gone == nil {
				return notFound
			}
			if node, tree := r.scriptInUse(id); node != "" {
				return crestErr(http.StatusConflict, "Script "+id+" is in use by the node "+node+" of the tree "+tree)
			}
			delete(r.Scripts, id)
			return nil
		})
		if err != nil {
			return err
		}
		return writeResource(c, http.StatusOK, id, gone, nil)
	}
	return methodNotAllowed()
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
		return crestErr(http.StatusBadRequest, "_id is not a string")
	}
	switch {
	case id == "" && bid == "":
		id = newUUID()
	case id == "":
		if _, ok := pathSegment(bid); !ok {
			return crestErr(http.StatusBadRequest, "Invalid script _id "+bid)
		}
		id = bid
	case bid != "" && bid != id:
		return crestErr(http.StatusBadRequest, "The _id in the body is not the script's ID "+id)
	}
	created := false
	r, err := s.inRealm(c, func(_ *Config, r *Realm) error {
		old := r.Scripts[id]
		if create && old != nil {
			return crestErr(http.StatusConflict, "Script "+id+" already exists")
		}
		rev := ""
		if old != nil {
			ob, _ := json.Marshal(old)
			rev = revOf(ob)
		}
		if err := preconditions(c, old != nil, rev, "Script "+id); err != nil {
			return err
		}
		created = old == nil
		sc := &Script{}
		if old != nil {
			cp := *old
			sc = &cp
		}
		if err := json.Unmarshal(raw, sc); err != nil {
			return crestErr(http.StatusBadRequest, "Invalid script: "+err.Error())
		}
		switch {
		case strings.TrimSpace(sc.Name) == "":
			return crestErr(http.StatusBadRequest, "A script needs a name")
		case sc.Language != ScriptGroovy && sc.Language != ScriptJavaScript:
			return crestErr(http.StatusBadRequest, "Invalid script language "+sc.Language+" ("+ScriptGroovy+" or "+ScriptJavaScript+")")
		case sc.Context == "":
			return crestErr(http.StatusBadRequest, "A script needs a context")
		}
		for oid, other := range r.Scripts {
			if oid != id && other != nil && other.Name == sc.Name {
				return crestErr(http.StatusConflict, "A script named "+sc.Name+" already exists")
			}
		}
		if r.Scripts == nil {
			r.Scripts = map[string]*Script{}
		}
		r.Scripts[id] = sc
		return nil
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeResource(c, status, id, r.Scripts[id], nil)
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
		return crestErr(http.StatusBadRequest, "The _id in the body is not the "+what+" "+want)
	}
	return nil
}
