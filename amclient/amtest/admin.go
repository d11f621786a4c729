package amtest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

// The admin REST API: the calls with which amster, frodo and the iot-edge
// functional-test harness configure AM (am-protocol.md §11). Every call
// needs the administrator's SSO token (cookie, or a header named after the
// cookie): none is 401, another user's is 403. Every change is made on a
// copy of the configuration, validated whole and only then put in force.

// requireAdmin checks that the caller is the administrator.
func (c *reqCtx) requireAdmin() error {
	x, _, err := c.caller()
	if err != nil {
		return err
	}
	if !x.Admin {
		return crest.Err(http.StatusForbidden, "Access Denied").WithLog("%s is not an administrator", x.UID)
	}
	return nil
}

// revOf is a resource revision: a hash of its JSON form, as AM's are.
func revOf(b []byte) string {
	h := fnv.New32a()
	h.Write(b)
	return strconv.FormatUint(uint64(h.Sum32()), 10)
}

// resourceJSON renders v (a JSON object) with _id, _rev and the members of
// meta.
func resourceJSON(id string, v any, meta map[string]any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	for k, m := range meta {
		out[k] = m
	}
	out["_id"] = id
	out["_rev"] = revOf(b)
	return out, nil
}

func writeResource(c *reqCtx, status int, id string, v any, meta map[string]any) error {
	out, err := resourceJSON(id, v, meta)
	if err != nil {
		return err
	}
	crest.WriteJSON(c.w, status, out)
	return nil
}

// objectBody reads a JSON object body.
func (c *reqCtx) objectBody() ([]byte, map[string]json.RawMessage, error) {
	b, err := c.readBody()
	if err != nil {
		return nil, nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, nil, crest.Err(http.StatusBadRequest, "The request could not be processed because the provided content is not valid JSON")
	}
	return b, m, nil
}

// preconditions applies If-None-Match: * (create only) and If-Match (update
// only: * or the current revision) to a PUT.
func preconditions(c *reqCtx, exists bool, rev, what string) error {
	if c.r.Header.Get("If-None-Match") == "*" && exists {
		return crest.Err(http.StatusPreconditionFailed, what+" already exists")
	}
	if m := c.r.Header.Get("If-Match"); m != "" {
		m = strings.Trim(m, `"`)
		if !exists || (m != "*" && m != rev) {
			return crest.Err(http.StatusPreconditionFailed, "Precondition Failed")
		}
	}
	return nil
}

// pathSegment unescapes one path segment; "" or a segment with a slash is not one.
func pathSegment(s string) (string, bool) {
	v, err := url.PathUnescape(s)
	if err != nil || v == "" || strings.Contains(v, "/") {
		return "", false
	}
	return v, true
}

func routeNotFound(c *reqCtx) error {
	return crest.Err(http.StatusNotFound, "Resource '"+c.rest+"' not found")
}

func methodNotAllowed() error { return crest.Err(http.StatusMethodNotAllowed, "Method Not Allowed") }

// action returns the _action of a POST, or a 501 for any other.
func action(c *reqCtx, allowed ...string) (string, error) {
	a := c.r.URL.Query().Get("_action")
	if !slices.Contains(allowed, a) {
		return "", crest.Err(http.StatusNotImplemented, "Action '"+a+"' not implemented for this resource")
	}
	return a, nil
}

// --- /json/global-config ---

const (
	pathAdvancedProperties = "servers/server-default/properties/advanced"
)

func (s *Server) handleGlobalConfig(c *reqCtx, p string) error {
	if err := c.requireAdmin(); err != nil {
		return err
	}
	switch {
	case p == "realms" || strings.HasPrefix(p, "realms/"):
		return s.handleRealms(c, strings.TrimPrefix(strings.TrimPrefix(p, "realms"), "/"))
	case p == pathAdvancedProperties:
		return s.handleServerProperties(c)
	case p == crest.PathSecretMappings || strings.HasPrefix(p, crest.PathSecretMappings+"/"):
		return s.handleSecretMapping(c, strings.TrimPrefix(strings.TrimPrefix(p, crest.PathSecretMappings), "/"))
	}
	return routeNotFound(c)
}

// --- advanced server properties ---

func (s *Server) handleServerProperties(c *reqCtx) error {
	switch c.r.Method {
	case http.MethodGet:
		crest.WriteJSON(c.w, http.StatusOK, serverProperties(c.cfg))
		return nil
	case http.MethodPut:
		_, body, err := c.objectBody()
		if err != nil {
			return err
		}
		props := map[string]string{}
		for k, v := range body {
			if k == "_id" || k == "_rev" {
				continue
			}
			var val any
			if err := json.Unmarshal(v, &val); err != nil {
				return crest.Err(http.StatusBadRequest, "Invalid value for "+k)
			}
			switch t := val.(type) {
			case nil:
			case string:
				props[k] = t
			case bool, float64:
				props[k] = strings.TrimSpace(string(v))
			default:
				return crest.Err(http.StatusBadRequest, "Invalid value for "+k+": a server property is a string")
			}
		}
		cfg, err := s.changeConfig(func(cfg *Config) error {
			cfg.ServerProperties = props
			return nil
		})
		if err != nil {
			return err
		}
		crest.WriteJSON(c.w, http.StatusOK, serverProperties(cfg))
		return nil
	}
	return methodNotAllowed()
}

func serverProperties(cfg *Config) map[string]any {
	out := map[string]any{}
	for k, v := range cfg.ServerProperties {
		out[k] = v
	}
	return out
}

// --- secret mappings of the default keystore ---

var mappingType = map[string]any{"_id": "mappings", "name": "Mappings", "collection": true}

func mappingResource(id string, aliases []string) map[string]any {
	out, _ := resourceJSON(id, map[string]any{"secretId": id, "aliases": config.NonNil(aliases)}, map[string]any{"_type": mappingType})
	return out
}

func (s *Server) handleSecretMapping(c *reqCtx, id string) error {
	if id == "" {
		if c.r.Method != http.MethodGet {
			return methodNotAllowed()
		}
		return answerQuery(c, config.SortedKeys(c.cfg.SecretMappings), func(k string) (map[string]any, error) {
			return mappingResource(k, c.cfg.SecretMappings[k]), nil
		})
	}
	id, ok := pathSegment(id)
	if !ok {
		return routeNotFound(c)
	}
	notFound := crest.Err(http.StatusNotFound, "Secret mapping "+id+" not found")
	switch c.r.Method {
	case http.MethodGet:
		aliases, ok := c.cfg.SecretMappings[id]
		if !ok {
			return notFound
		}
		crest.WriteJSON(c.w, http.StatusOK, mappingResource(id, aliases))
		return nil
	case http.MethodDelete:
		var aliases []string
		_, err := s.changeConfig(func(cfg *Config) error {
			var ok bool
			if aliases, ok = cfg.SecretMappings[id]; !ok {
				return notFound
			}
			delete(cfg.SecretMappings, id)
			return nil
		})
		if err != nil {
			return err
		}
		crest.WriteJSON(c.w, http.StatusOK, mappingResource(id, aliases))
		return nil
	case http.MethodPut:
	default:
		return methodNotAllowed()
	}
	raw, _, err := c.objectBody()
	if err != nil {
		return err
	}
	var body struct {
		SecretID *string  `json:"secretId"`
		Aliases  []string `json:"aliases"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return crest.Err(http.StatusBadRequest, "Invalid secret mapping: aliases is a list of keystore aliases")
	}
	if body.SecretID != nil && *body.SecretID != id {
		return crest.Err(http.StatusBadRequest, "The secretId in the body is not the mapping's")
	}
	if len(body.Aliases) == 0 {
		return crest.Err(http.StatusBadRequest, "A secret mapping needs at least one alias")
	}
	if id == CertVerificationSecretID {
		ks := config.Keystore(c.cfg)
		for _, a := range body.Aliases {
			if _, ok := ks[a]; !ok {
				known := config.SortedKeys(ks)
				return crest.Err(http.StatusBadRequest, fmt.Sprintf("The keystore has no alias %q. The local AM cannot read AM's keystore: "+
					"give it the CA certificate that %q holds in your AM under that alias (Config.KeystoreAliases; "+
					"amlocal: --keystore-alias %s=CA.pem, or keystoreAliases in --config). Known aliases: %s",
					a, a, a, strings.Join(known, ", ")))
			}
		}
	}
	existed := false
	_, err = s.changeConfig(func(cfg *Config) error {
		if cfg.SecretMappings == nil {
			cfg.SecretMappings = map[string][]string{}
		}
		_, existed = cfg.SecretMappings[id]
		if err := preconditions(c, existed, "", "Secret mapping "+id); err != nil {
			return err
		}
		cfg.SecretMappings[id] = body.Aliases
		if id == CertVerificationSecretID {
			// The mapping is now exactly these aliases.
			cfg.CertVerificationCAs = nil
		}
		return nil
	})
	if err != nil {
		return err
	}
	crest.WriteJSON(c.w, putStatus(!existed), mappingResource(id, body.Aliases))
	return nil
}

// sortResults orders query results by _id.
func sortResults(out []map[string]any) {
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]["_id"]) < fmt.Sprint(out[j]["_id"]) })
}
