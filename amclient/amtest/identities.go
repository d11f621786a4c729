package amtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
)

// The identity endpoint's HTTP side: /json/users and
// /json/realms/root/.../users/{id} read the request (the caller's session
// and rights, the body, the preconditions, the query's parameters) and
// answer; the identity record, AM's JSON of it, passwords and the query
// are amclient/amtest/internal/identities'.

// identity is an entry of a realm's identity store.
type identity = identities.Identity

// handleUsers serves the identity endpoint: /json/users and
// /json/realms/root/.../users/{id}.
func (s *Server) handleUsers(c *reqCtx, sub string) error {
	caller, tok, err := c.caller()
	if err != nil {
		return err
	}
	if caller.Restricted {
		// A restricted session signs every request, here as on things.
		if _, err := c.requestPayload(caller, tok); err != nil {
			return err
		}
	}
	id, err := url.PathUnescape(sub)
	if err != nil || strings.Contains(id, "/") {
		return errNotFound
	}
	self := id != "" && caller.Realm == c.realm && strings.EqualFold(caller.UID, id)
	if !caller.Admin && !(self && c.r.Method == http.MethodGet) {
		return errForbidden.WithLog("%s is not an administrator", caller.UID)
	}
	major := c.ver.Major()
	switch {
	case id == "" && c.r.Method == http.MethodPost && c.r.URL.Query().Get("_action") == "create":
		body, err := s.readObject(c)
		if err != nil {
			return err
		}
		name, _ := body["username"].(string)
		if name == "" {
			name, _ = body["_id"].(string)
		}
		if name == "" {
			return crest.Err(http.StatusBadRequest, "username is required")
		}
		return s.createIdentity(c, name, body, major)
	case id == "" && c.r.Method == http.MethodGet:
		return s.queryIdentities(c, major)
	case id == "":
		return crest.Err(http.StatusMethodNotAllowed, "Method Not Allowed")
	case c.r.Method == http.MethodGet:
		x := s.getIdentity(c.realm, id)
		if x == nil {
			return errNotFound
		}
		crest.WriteJSON(c.w, http.StatusOK, x.Filtered(major, c.r.URL.Query().Get("_fields")))
		return nil
	case c.r.Method == http.MethodPut:
		body, err := s.readObject(c)
		if err != nil {
			return err
		}
		pwHash := identities.PasswordHashOf(body)
		ifMatch, ifNoneMatch := c.r.Header.Get("If-Match"), c.r.Header.Get("If-None-Match")
		var created bool
		// The existence checks and the write are one transaction.
		x, err := s.changeIdentity(c.realm, id, func(cur *identity) (*identity, error) {
			created = cur == nil
			if cur == nil {
				if ifMatch != "" && ifMatch != "*" {
					return nil, crest.Err(http.StatusPreconditionFailed, "Precondition Failed")
				}
				return s.newIdentityFor(c, id, body, pwHash)
			}
			if ifNoneMatch == "*" {
				return nil, crest.Err(http.StatusPreconditionFailed, "Resource already exists")
			}
			if err := cur.SetFromJSON(body, pwHash); err != nil {
				return nil, crest.Err(http.StatusBadRequest, err.Error())
			}
			cur.Rev++
			return cur, nil
		})
		if err != nil {
			return err
		}
		if created {
			return s.createdIdentity(c, x, major)
		}
		crest.WriteJSON(c.w, http.StatusOK, x.JSON(major))
		return nil
	case c.r.Method == http.MethodDelete:
		x, err := s.deleteIdentity(c.realm, id)
		if err != nil {
			return err
		}
		if x == nil {
			return errNotFound
		}
		crest.WriteJSON(c.w, http.StatusOK, x.JSON(major))
		return nil
	}
	return crest.Err(http.StatusMethodNotAllowed, "Method Not Allowed")
}

func (s *Server) readObject(c *reqCtx) (map[string]any, error) {
	b, err := c.readBody()
	if err != nil {
		return nil, err
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil || body == nil {
		return nil, crest.ErrInvalidJSON
	}
	return body, nil
}

func (s *Server) createIdentity(c *reqCtx, id string, body map[string]any, major int) error {
	pwHash := identities.PasswordHashOf(body)
	x, err := s.changeIdentity(c.realm, id, func(cur *identity) (*identity, error) {
		if cur != nil {
			return nil, crest.Err(http.StatusConflict, "Unable to save user: the resource already exists").WithLog("identity %q exists", id)
		}
		return s.newIdentityFor(c, id, body, pwHash)
	})
	if err != nil {
		return err
	}
	return s.createdIdentity(c, x, major)
}

// newIdentityFor builds the identity a create request asks for, or AM's
// refusal: 409 for the administrator's name, 400 for a bad body.
func (s *Server) newIdentityFor(c *reqCtx, id string, body map[string]any, pwHash string) (*identity, error) {
	if c.realm == "/" && strings.EqualFold(id, c.cfg.AdminUser) {
		return nil, crest.Err(http.StatusConflict, "Unable to save user: the resource already exists").WithLog("identity %q exists", id)
	}
	x, err := identities.FromJSON(c.realm, id, body, c.now, pwHash)
	if err != nil {
		return nil, crest.Err(http.StatusBadRequest, err.Error())
	}
	return x, nil
}

// createdIdentity answers a create: 201 with the identity and its Location.
func (s *Server) createdIdentity(c *reqCtx, x *identity, major int) error {
	c.w.Header().Set("Location", c.base+"/json"+realmJSONPath(c.realm)+"/users/"+url.PathEscape(x.ID))
	crest.WriteJSON(c.w, http.StatusCreated, x.JSON(major))
	return nil
}

// queryIdentities answers a query of the realm's identities (see
// [identities.ParseQuery]). With a data directory the page is read in a
// read transaction, which holds no lock that writes (authentications,
// signed requests) wait on.
func (s *Server) queryIdentities(c *reqCtx, major int) error {
	q, err := identities.ParseQuery(c.realm, c.r.URL.Query())
	if err != nil {
		return err
	}
	var page identities.Page
	err = s.db.View(func(tx storeTx) error {
		var err error
		page, err = q.Run(tx, major)
		return err
	})
	if err != nil {
		return storeErr(err)
	}
	var cookie any
	if page.Cookie != "" {
		cookie = page.Cookie
	}
	crest.WriteJSON(c.w, http.StatusOK, map[string]any{"result": page.Result, "resultCount": len(page.Result),
		"pagedResultsCookie": cookie, "totalPagedResultsPolicy": page.Policy, "totalPagedResults": page.Total, "remainingPagedResults": page.Remaining})
	return nil
}

// EnsureUser creates a person's identity (a user with a password and no
// thingType, such as the one who approves a device) in realm, unless an
// identity of that name exists; an existing one is left unchanged. It
// reports whether it created the user.
func (s *Server) EnsureUser(realm, id, password string) (bool, error) {
	if err := s.Init(); err != nil {
		return false, err
	}
	if password == "" {
		return false, errors.New("amtest: a user needs a password")
	}
	if realm == "" {
		realm = "/"
	}
	if _, ok := s.config().Realms[realm]; !ok {
		return false, fmt.Errorf("amtest: no realm %q", realm)
	}
	if realm == "/" && strings.EqualFold(id, s.config().AdminUser) {
		return false, fmt.Errorf("amtest: %q is the administrator", id)
	}
	pwHash := identities.PasswordHashOf(map[string]any{"userPassword": password})
	_, err := s.changeIdentity(realm, id, func(cur *identity) (*identity, error) {
		if cur != nil {
			return nil, errNoChange
		}
		return identities.FromJSON(realm, id, map[string]any{"userPassword": password}, s.now(), pwHash)
	})
	if errors.Is(err, errNoChange) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("amtest: %w", err)
	}
	return true, nil
}
