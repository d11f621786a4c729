package amtest

import (
	"encoding/json"
	"net/http"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

// resource is one kind of realm configuration object that the admin REST
// API lists, reads, deletes and writes as a CREST resource (trees, nodes,
// scripts). listResources, serveResource (getResource, deleteResource)
// and putResource are the one implementation of those four calls; a kind
// says only where its objects are and what is particular to it.
type resource[T any] struct {
	// in returns the realm's objects of the kind, by ID.
	in func(r *Realm) *map[string]*T
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
	inUse func(r *Realm, id string) error
}

func (k resource[T]) lookup(r *Realm, id string) *T {
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

func (k resource[T]) write(c *reqCtx, status int, id string, v *T) error {
	m, err := k.body(id, v)
	if err != nil {
		return err
	}
	crest.WriteJSON(c.w, status, m)
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

// listResources answers a query of the realm's objects of the kind, in
// the order of their IDs.
func listResources[T any](c *reqCtx, k resource[T]) error {
	all := *k.in(c.rc)
	return answerQuery(c, config.SortedKeys(all), func(id string) (map[string]any, error) {
		if k.lookup(c.rc, id) == nil {
			return nil, nil
		}
		return k.body(id, all[id])
	})
}

// answerQuery answers a query of an admin collection (only _queryFilter
// true is understood), its objects in the order of ids: body returns an
// object's resource, or nil to leave it out.
func answerQuery(c *reqCtx, ids []string, body func(id string) (map[string]any, error)) error {
	if err := crest.CheckQuery(c.r.URL.Query()); err != nil {
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
	crest.WriteQuery(c.w, out)
	return nil
}

// serveResource answers the calls on one object: GET and DELETE, and PUT
// by put.
func serveResource[T any](s *Server, c *reqCtx, k resource[T], id string, put func() error) error {
	switch c.r.Method {
	case http.MethodGet:
		return getResource(c, k, id)
	case http.MethodDelete:
		return deleteResource(s, c, k, id)
	case http.MethodPut:
		return put()
	}
	return methodNotAllowed()
}

// getResource answers a read of one object.
func getResource[T any](c *reqCtx, k resource[T], id string) error {
	v := k.lookup(c.rc, id)
	if v == nil {
		return k.notFound(id)
	}
	return k.write(c, http.StatusOK, id, v)
}

// deleteResource deletes one object and answers with what it was.
func deleteResource[T any](s *Server, c *reqCtx, k resource[T], id string) error {
	var gone *T
	_, err := s.inRealm(c, func(_ *Config, r *Realm) error {
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
	return k.write(c, http.StatusOK, id, gone)
}

// putResource creates or updates one object, 201 or 200. In the
// configuration change, first is called with the object the ID holds now
// (nil if none, of whatever kind) before the request's preconditions are
// checked, and build after, to make and check the new object.
func putResource[T any](s *Server, c *reqCtx, k resource[T], id string, first func(old *T) error, build func(r *Realm, old *T) (*T, error)) error {
	created := false
	r, err := s.inRealm(c, func(_ *Config, r *Realm) error {
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
		if err := preconditions(c, old != nil, rev, k.what(id)); err != nil {
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
	return k.write(c, putStatus(created), id, (*k.in(r))[id])
}
