package admin

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

// /json/global-config/realms: the admin API's realms (am-protocol.md §11.2),
// created, read, updated and deleted on a copy of the configuration.

// realmResource is a realm as the realms endpoint shows it.
func realmResource(path string, r *config.Realm) map[string]any {
	m := map[string]any{"_id": crest.RealmID(path), "name": "/", "parentPath": nil, "active": config.RealmActive(r),
		"aliases": config.NonNil(r.Aliases)}
	if path != "/" {
		i := strings.LastIndex(path, "/")
		m["name"] = path[i+1:]
		m["parentPath"] = "/"
		if i > 0 {
			m["parentPath"] = path[:i]
		}
	}
	b, _ := json.Marshal(m)
	m["_rev"] = revOf(b)
	return m
}

// realmNameChars are the characters AM refuses in realm names and aliases.
const realmNameChars = `$&+,/:;=?@ #%<>"\`

func badRealmChars(s string) bool { return strings.ContainsAny(s, realmNameChars) }

func realmNotFound(path string) error {
	return crest.Err(http.StatusNotFound, "Realm cannot be read: "+path)
}

// realmBody is the realms endpoint's body.
type realmBody struct {
	Name       *string          `json:"name"`
	ParentPath *string          `json:"parentPath"`
	Active     *json.RawMessage `json:"active"`
	Aliases    *json.RawMessage `json:"aliases"`
	ID         *string          `json:"_id"`
}

func (b *realmBody) active() (bool, error) {
	var v bool
	if b.Active == nil || json.Unmarshal(*b.Active, &v) != nil {
		return false, crest.Err(http.StatusBadRequest, "Wrong parameter type provided in active. Expected boolean")
	}
	return v, nil
}

func (b *realmBody) aliases() ([]string, error) {
	var v []string
	if b.Aliases == nil || string(*b.Aliases) == "null" {
		return nil, crest.Err(http.StatusBadRequest, "No aliases parameter provided")
	}
	if err := json.Unmarshal(*b.Aliases, &v); err != nil {
		return nil, crest.Err(http.StatusBadRequest, "Wrong parameter type provided in aliases. Expected list")
	}
	for _, a := range v {
		if strings.TrimSpace(a) == "" {
			return nil, crest.Err(http.StatusBadRequest, "No aliases parameter provided")
		}
		if badRealmChars(a) {
			return nil, crest.Err(http.StatusBadRequest, "Realm alias cannot contain: "+realmNameChars)
		}
	}
	return v, nil
}

func (e *Env) realms(id string) error {
	if id == "" {
		switch e.R.Method {
		case http.MethodPost:
			if _, err := e.action("create"); err != nil {
				return err
			}
			return e.createRealm()
		case http.MethodGet:
			return e.answerQuery(config.SortedKeys(e.Config.Realms), func(p string) (map[string]any, error) {
				return realmResource(p, e.Config.Realms[p]), nil
			})
		}
		return methodNotAllowed()
	}
	path, ok := crest.RealmPathOf(id)
	if !ok {
		return crest.Err(http.StatusNotFound, "Realm cannot be read: "+id)
	}
	switch e.R.Method {
	case http.MethodGet:
		r := e.Config.Realms[path]
		if r == nil {
			return realmNotFound(path)
		}
		crest.WriteJSON(e.W, http.StatusOK, realmResource(path, r))
		return nil
	case http.MethodPut:
		return e.updateRealm(path)
	case http.MethodDelete:
		return e.deleteRealm(path)
	}
	return methodNotAllowed()
}

func (e *Env) createRealm() error {
	raw, _, err := e.objectBody()
	if err != nil {
		return err
	}
	var body realmBody
	if err := json.Unmarshal(raw, &body); err != nil {
		return crest.Err(http.StatusBadRequest, "Invalid realm: "+err.Error())
	}
	if body.Name == nil || strings.TrimSpace(*body.Name) == "" {
		return crest.Err(http.StatusBadRequest, "No name parameter provided")
	}
	if badRealmChars(*body.Name) {
		return crest.Err(http.StatusBadRequest, "Realm names cannot contain: "+realmNameChars)
	}
	if body.ParentPath == nil || strings.TrimSpace(*body.ParentPath) == "" {
		return crest.Err(http.StatusBadRequest, "No parentPath parameter provided")
	}
	active, err := body.active()
	if err != nil {
		return err
	}
	aliases, err := body.aliases()
	if err != nil {
		return err
	}
	parent := crest.NormRealmPath(*body.ParentPath)
	path := crest.NormRealmPath(parent + "/" + *body.Name)
	cfg, err := e.Change(func(cfg *config.Config) error {
		if cfg.Realms[parent] == nil {
			return realmNotFound(parent)
		}
		for p := range cfg.Realms {
			if strings.EqualFold(p, path) {
				return crest.Err(http.StatusConflict, "Unable to create Realm: the realm "+p+" already exists")
			}
		}
		// State left behind by an earlier realm of this path (a crash
		// between its deletion and the removal of its state) must not
		// resurface. Nothing can add state to a realm that does not exist.
		if err := e.PurgeRealm(path); err != nil {
			return err
		}
		r := &config.Realm{Aliases: aliases}
		if !active {
			r.Active = &active
		}
		cfg.Realms[path] = r
		return nil
	})
	if err != nil {
		return err
	}
	e.W.Header().Set("Location", e.Base+"/json/global-config/realms/"+crest.RealmID(path))
	crest.WriteJSON(e.W, http.StatusCreated, realmResource(path, cfg.Realms[path]))
	return nil
}

func (e *Env) updateRealm(path string) error {
	raw, _, err := e.objectBody()
	if err != nil {
		return err
	}
	var body realmBody
	if err := json.Unmarshal(raw, &body); err != nil {
		return crest.Err(http.StatusBadRequest, "Invalid attribute values")
	}
	if body.ID != nil && *body.ID != crest.RealmID(path) {
		return crest.Err(http.StatusBadRequest, "The _id in the body is not the realm's")
	}
	active, err := body.active()
	if err != nil {
		return crest.Err(http.StatusBadRequest, "Invalid attribute values")
	}
	if body.Name != nil || body.ParentPath != nil {
		name, parent := "", ""
		if body.Name != nil {
			name = *body.Name
		}
		if body.ParentPath != nil {
			parent = *body.ParentPath
		}
		if want := crest.NormRealmPath(parent + "/" + name); want != path && !(path == "/" && name == "/") {
			return crest.Err(http.StatusBadRequest, "Realm name specified in URL does not match realm name specified in JSON")
		}
	}
	var aliases []string
	if body.Aliases != nil {
		if aliases, err = body.aliases(); err != nil {
			return err
		}
	}
	cfg, err := e.Change(func(cfg *config.Config) error {
		r := cfg.Realms[path]
		if r == nil {
			return realmNotFound(path)
		}
		if body.Aliases != nil {
			r.Aliases = aliases
		}
		r.Active = nil
		if !active {
			if path == "/" {
				return crest.Err(http.StatusBadRequest, "The top-level realm cannot be made inactive")
			}
			r.Active = &active
		}
		return nil
	})
	if err != nil {
		return err
	}
	crest.WriteJSON(e.W, http.StatusOK, realmResource(path, cfg.Realms[path]))
	return nil
}

func (e *Env) deleteRealm(path string) error {
	var gone map[string]any
	_, err := e.Change(func(cfg *config.Config) error {
		r := cfg.Realms[path]
		if r == nil {
			return realmNotFound(path)
		}
		if path == "/" {
			return crest.Err(http.StatusUnauthorized, "Unauthorized-Cannot delete root suffix")
		}
		for p := range cfg.Realms {
			if strings.HasPrefix(p, path+"/") {
				return crest.Err(http.StatusConflict, "Cannot delete realm "+path+": it has the sub-realm "+p+"; delete sub-realms first")
			}
		}
		gone = realmResource(path, r)
		delete(cfg.Realms, path)
		return nil
	})
	if err != nil {
		return err
	}
	if err := e.PurgeRealm(path); err != nil {
		return err
	}
	crest.WriteJSON(e.W, http.StatusOK, gone)
	return nil
}
