package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

// /json/global-config: the realms (realms.go), the advanced server
// properties and the default keystore's secret mappings
// (am-protocol.md §11.1, §11.2).

const (
	pathAdvancedProperties = "servers/server-default/properties/advanced"
)

// GlobalConfig answers a call on /json/global-config/p.
func (e *Env) GlobalConfig(p string) error {
	if err := e.Authorize(); err != nil {
		return err
	}
	switch {
	case p == "realms" || strings.HasPrefix(p, "realms/"):
		return e.realms(strings.TrimPrefix(strings.TrimPrefix(p, "realms"), "/"))
	case p == pathAdvancedProperties:
		return e.serverProperties()
	case p == crest.PathSecretMappings || strings.HasPrefix(p, crest.PathSecretMappings+"/"):
		return e.secretMapping(strings.TrimPrefix(strings.TrimPrefix(p, crest.PathSecretMappings), "/"))
	}
	return e.routeNotFound()
}

// --- advanced server properties ---

func (e *Env) serverProperties() error {
	switch e.R.Method {
	case http.MethodGet:
		crest.WriteJSON(e.W, http.StatusOK, serverProperties(e.Config))
		return nil
	case http.MethodPut:
		_, body, err := e.objectBody()
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
		cfg, err := e.Change(func(cfg *config.Config) error {
			cfg.ServerProperties = props
			return nil
		})
		if err != nil {
			return err
		}
		crest.WriteJSON(e.W, http.StatusOK, serverProperties(cfg))
		return nil
	}
	return methodNotAllowed()
}

func serverProperties(cfg *config.Config) map[string]any {
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

func (e *Env) secretMapping(id string) error {
	if id == "" {
		if e.R.Method != http.MethodGet {
			return methodNotAllowed()
		}
		return e.answerQuery(config.SortedKeys(e.Config.SecretMappings), func(k string) (map[string]any, error) {
			return mappingResource(k, e.Config.SecretMappings[k]), nil
		})
	}
	id, ok := pathSegment(id)
	if !ok {
		return e.routeNotFound()
	}
	notFound := crest.Err(http.StatusNotFound, "Secret mapping "+id+" not found")
	switch e.R.Method {
	case http.MethodGet:
		aliases, ok := e.Config.SecretMappings[id]
		if !ok {
			return notFound
		}
		crest.WriteJSON(e.W, http.StatusOK, mappingResource(id, aliases))
		return nil
	case http.MethodDelete:
		var aliases []string
		_, err := e.Change(func(cfg *config.Config) error {
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
		crest.WriteJSON(e.W, http.StatusOK, mappingResource(id, aliases))
		return nil
	case http.MethodPut:
	default:
		return methodNotAllowed()
	}
	raw, _, err := e.objectBody()
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
	if id == config.CertVerificationSecretID {
		ks := config.Keystore(e.Config)
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
	_, err = e.Change(func(cfg *config.Config) error {
		if cfg.SecretMappings == nil {
			cfg.SecretMappings = map[string][]string{}
		}
		_, existed = cfg.SecretMappings[id]
		if err := e.preconditions(existed, "", "Secret mapping "+id); err != nil {
			return err
		}
		cfg.SecretMappings[id] = body.Aliases
		if id == config.CertVerificationSecretID {
			// The mapping is now exactly these aliases.
			cfg.CertVerificationCAs = nil
		}
		return nil
	})
	if err != nil {
		return err
	}
	crest.WriteJSON(e.W, putStatus(!existed), mappingResource(id, body.Aliases))
	return nil
}
