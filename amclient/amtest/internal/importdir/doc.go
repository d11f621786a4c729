// Package importdir applies a directory of AM-shaped JSON to the local AM
// through its own admin REST API, as amster, frodo and iot-edge's
// functional-test harness configure a real AM. The layout is iot-edge's
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
// It owns reading the directory, the order of the calls (a node before the
// trees that use it, a realm before its objects), and the calls themselves
// (AM's paths, query parameters and API versions). It knows the server only
// as an [http.Handler] and an administrator's session ([Admin]): what a
// call does is the admin API's business (internal/admin); amclient/amtest's
// Import applies a directory to a scratch copy first so that a failed
// import changes nothing. It must not import amclient/amtest.
package importdir
