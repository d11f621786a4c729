package amtest

import (
	"io/fs"

	"github.com/thingway/thingway/amclient/amtest/internal/importdir"
)

// Import applies a directory of AM-shaped JSON to the server's
// configuration through the admin REST API, as amster, frodo and the
// iot-edge functional-test harness configure AM. The layout is iot-edge's
// tests/iotsdk/testdata/am, for the top-level realm, plus sub-realms:
//
//	services/<type>/*.json or services/<type>.json   realm services (iot, oauth-oidc)
//	scripts/<id>.json                                 scripts (base64 "script")
//	nodes/**/<NodeType>/<id>.json                     tree nodes, at any depth
//	trees/<name>.json                                 trees
//	agents/<AgentType>/<id>.json or agents/<id>.json  agents; a file directly in agents/
//	                                                  names its type in "_type", or is
//	                                                  recognised by its settings
//	secrets/mappings/<secretId>.json                  secret mappings ({"aliases": [...]})
//	realms/<name>/realm.json                          a sub-realm ({"aliases": [...], "active": true},
//	                                                  optional), and its configuration in
//	                                                  realms/<name>/ with this same layout
//
// Objects that exist are updated, so an import can be repeated. Files not
// ending in .json are ignored. The whole directory is first applied to a
// scratch copy of the configuration: if any call fails, Import returns its
// error and the server's configuration is unchanged.
func (s *Server) Import(fsys fs.FS) error {
	if err := s.Init(); err != nil {
		return err
	}
	scratch := &Server{BasePath: s.BasePath, Config: s.Configuration(), Time: s.Time}
	if err := scratch.Init(); err != nil {
		return err
	}
	defer scratch.Close()
	if err := scratch.importFS(fsys); err != nil {
		return err
	}
	return s.importFS(fsys)
}

// importFS applies fsys through the admin REST API, under an administrator
// session of its own.
func (s *Server) importFS(fsys fs.FS) error {
	cfg := s.config()
	tok, err := s.newSession(&session{UID: cfg.AdminUser, Realm: "/", Admin: true}, s.now())
	if err != nil {
		return err
	}
	defer s.endSession(tok)
	return importdir.Apply(fsys, importdir.Admin{Handler: s, Base: s.base, CookieName: cfg.CookieName, Token: tok})
}
