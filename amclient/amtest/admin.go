package amtest

import (
	"net/http"

	"github.com/thingway/thingway/amclient/amtest/internal/admin"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// The admin REST API: the calls with which amster, frodo and the iot-edge
// functional-test harness configure AM (am-protocol.md §11) are
// internal/admin's. The server routes /json/global-config,
// /json/realm-config and /json/scripts to it with an admin.Env per
// request: the caller's rights (every call needs the administrator's SSO
// token, in the cookie or a header named after the cookie: none is 401,
// another user's is 403), the request's body, realm and configuration,
// and changeConfig, which puts a change in force and keeps it in the data
// directory.

// adminEnv is the admin API's view of the request c.
func (s *Server) adminEnv(c *reqCtx) *admin.Env {
	return &admin.Env{W: c.w, R: c.r, Rest: c.rest, Base: c.base, Realm: c.realm, Config: c.cfg,
		Authorize: c.requireAdmin, Body: c.readBody, Change: s.changeConfig, PurgeRealm: s.purgeRealm,
		RandomID: tokens.RandomID, NewUUID: tokens.NewUUID}
}

func (s *Server) handleGlobalConfig(c *reqCtx, p string) error { return s.adminEnv(c).GlobalConfig(p) }
func (s *Server) handleRealmConfig(c *reqCtx, p string) error  { return s.adminEnv(c).RealmConfig(p) }
func (s *Server) handleScripts(c *reqCtx, id string) error     { return s.adminEnv(c).Scripts(id) }

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
