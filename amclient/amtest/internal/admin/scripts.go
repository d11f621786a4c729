package admin

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

// /json/scripts: the realm's scripts, created, read, updated and deleted
// on the generic resource handler (resource.go). The realm is the
// request's.

// scriptResources are the realm's scripts.
var scriptResources = resource[config.Script]{
	in:       func(r *config.Realm) *map[string]*config.Script { return &r.Scripts },
	what:     func(id string) string { return "Script " + id },
	notFound: func(id string) error { return crest.Err(http.StatusNotFound, "Script "+id+" not found") },
	inUse: func(r *config.Realm, id string) error {
		if node, tree := config.ScriptInUse(r, id); node != "" {
			return crest.Err(http.StatusConflict, "Script "+id+" is in use by the node "+node+" of the tree "+tree)
		}
		return nil
	},
}

// Scripts answers a call on /json/scripts or /json/scripts/id in the
// request's realm.
func (e *Env) Scripts(id string) error {
	if err := e.Authorize(); err != nil {
		return err
	}
	k := scriptResources
	if id == "" {
		switch e.R.Method {
		case http.MethodGet:
			return listResources(e, k)
		case http.MethodPost:
			if _, err := e.action("create"); err != nil {
				return err
			}
			return e.putScript("", true)
		}
		return methodNotAllowed()
	}
	id, ok := pathSegment(id)
	if !ok {
		return e.routeNotFound()
	}
	return serveResource(e, k, id, func() error { return e.putScript(id, false) })
}

// putScript creates a script (POST _action=create, id from the body or
// generated) or creates or updates one by PUT.
func (e *Env) putScript(id string, create bool) error {
	raw, body, err := e.objectBody()
	if err != nil {
		return err
	}
	var bid string
	if v, ok := body["_id"]; ok && json.Unmarshal(v, &bid) != nil {
		return crest.Err(http.StatusBadRequest, "_id is not a string")
	}
	switch {
	case id == "" && bid == "":
		id = e.NewUUID()
	case id == "":
		if _, ok := pathSegment(bid); !ok {
			return crest.Err(http.StatusBadRequest, "Invalid script _id "+bid)
		}
		id = bid
	case bid != "" && bid != id:
		return crest.Err(http.StatusBadRequest, "The _id in the body is not the script's ID "+id)
	}
	return putResource(e, scriptResources, id, func(old *config.Script) error {
		if create && old != nil {
			return crest.Err(http.StatusConflict, "Script "+id+" already exists")
		}
		return nil
	}, func(r *config.Realm, old *config.Script) (*config.Script, error) {
		sc := &config.Script{}
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
		case sc.Language != config.ScriptGroovy && sc.Language != config.ScriptJavaScript:
			return nil, crest.Err(http.StatusBadRequest, "Invalid script language "+sc.Language+" ("+config.ScriptGroovy+" or "+config.ScriptJavaScript+")")
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
