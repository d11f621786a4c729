package admin

import (
	"encoding/json"
	"hash/fnv"
	"net/http"
	"strconv"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

// The CREST resources of the admin API: the resource body with _id and
// _rev, and the one generic handler of a kind of realm configuration
// object (list, read, delete, put).

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

func (e *Env) writeResource(status int, id string, v any, meta map[string]any) error {
	out, err := resourceJSON(id, v, meta)
	if err != nil {
		return err
	}
	crest.WriteJSON(e.W, status, out)
	return nil
}

// putStatus is the status of a PUT's answer: 201 if it created the
// resource, else 200.
func putStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// answerQuery answers a query of an admin collection (only _queryFilter
// true is understood), its objects in the order of ids: body returns an
// object's resource, or nil to leave it out.
func (e *Env) answerQuery(ids []string, body func(id string) (map[string]any, error)) error {
	if err := crest.CheckQuery(e.R.URL.Query()); err != nil {
		return err
	}
	var out []map[string]any
	for _, id := range ids {
		m, err := body(id)
		if err != nil {
			return err
		}
		if m != nil {
			out = append(out, m)
		}
	}
	crest.WriteQuery(e.W, out)
	return nil
}

// resource is one kind of realm configuration object that the admin REST
// API lists, reads, deletes and writes as a CREST resource (trees, nodes,
// scripts, agents). listResources, serveResource (getResource,
// deleteResource) and putResource are the one implementation of those four
// calls; a kind says only where its objects are and what is particular to
// it.
type resource[T any] struct {
	// in returns the realm's objects of the kind, by ID.
	in func(r *config.Realm) *map[string]*T
	// is, if set, tells whether an object is of the kind (a node of the
	// URL's type); others are as absent.
	is func(v *T) bool
	// render returns an object's resource body; nil: [resourceJSON].
	render func(id string, v *T) (map[string]any, error)
	// what names an object in messages ("Tree auth-tree").
	what func(id string) string
	// notFound is the answer for an ID that has no object of the kind.
	notFound func(id string) error
	// inUse, if set, refuses to delete an object that others use.
	inUse func(r *config.Realm, id string) error
}

func (k resource[T]) lookup(r *config.Realm, id string) *T {
	v := (*k.in(r))[id]
	if v == nil || k.is != nil && !k.is(v) {
		return nil
	}
	return v
}

func (k resource[T]) body(id string, v *T) (map[string]any, error) {
	if k.render != nil {
		return k.render(id, v)
	}
	return resourceJSON(id, v, nil)
}

func (k resource[T]) write(e *Env, status int, id string, v *T) error {
	m, err := k.body(id, v)
	if err != nil {
		return err
	}
	crest.WriteJSON(e.W, status, m)
	return nil
}

// listResources answers a query of the realm's objects of the kind, in
// the order of their IDs.
func listResources[T any](e *Env, k resource[T]) error {
	rc := e.realm()
	all := *k.in(rc)
	return e.answerQuery(config.SortedKeys(all), func(id string) (map[string]any, error) {
		if k.lookup(rc, id) == nil {
			return nil, nil
		}
		return k.body(id, all[id])
	})
}

// serveResource answers the calls on one object: GET and DELETE, and PUT
// by put.
func serveResource[T any](e *Env, k resource[T], id string, put func() error) error {
	switch e.R.Method {
	case http.MethodGet:
		return getResource(e, k, id)
	case http.MethodDelete:
		return deleteResource(e, k, id)
	case http.MethodPut:
		return put()
	}
	return methodNotAllowed()
}

// getResource answers a read of one object.
func getResource[T any](e *Env, k resource[T], id string) error {
	v := k.lookup(e.realm(), id)
	if v == nil {
		return k.notFound(id)
	}
	return k.write(e, http.StatusOK, id, v)
}

// deleteResource deletes one object and answers with what it was.
func deleteResource[T any](e *Env, k resource[T], id string) error {
	var gone *T
	_, err := e.inRealm(func(_ *config.Config, r *config.Realm) error {
		if gone = k.lookup(r, id); gone == nil {
			return k.notFound(id)
		}
		if k.inUse != nil {
			if err := k.inUse(r, id); err != nil {
				return err
			}
		}
		delete(*k.in(r), id)
		return nil
	})
	if err != nil {
		return err
	}
	return k.write(e, http.StatusOK, id, gone)
}

// putResource creates or updates one object, 201 or 200. In the
// configuration change, first is called with the object the ID holds now
// (nil if none, of whatever kind) before the request's preconditions are
// checked, and build after, to make and check the new object.
func putResource[T any](e *Env, k resource[T], id string, first func(old *T) error, build func(r *config.Realm, old *T) (*T, error)) error {
	created := false
	r, err := e.inRealm(func(_ *config.Config, r *config.Realm) error {
		old := (*k.in(r))[id]
		if first != nil {
			if err := first(old); err != nil {
				return err
			}
		}
		rev := ""
		if old != nil {
			ob, _ := json.Marshal(old)
			rev = revOf(ob)
		}
		if err := e.preconditions(old != nil, rev, k.what(id)); err != nil {
			return err
		}
		created = old == nil
		v, err := build(r, old)
		if err != nil {
			return err
		}
		m := k.in(r)
		if *m == nil {
			*m = map[string]*T{}
		}
		(*m)[id] = v
		return nil
	})
	if err != nil {
		return err
	}
	return k.write(e, putStatus(created), id, (*k.in(r))[id])
}
