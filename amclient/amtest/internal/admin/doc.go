// Package admin is the local AM's admin REST API: the CREST calls with
// which amster, frodo and iot-edge's functional-test harness configure AM
// (am-protocol.md §11), as HTTP handlers. It owns
//
//   - the endpoints under /json/global-config ([Env.GlobalConfig]): the
//     realms (create, query, read, update, delete; a realm's _id, body and
//     the rules on its name, aliases and sub-realms), the advanced server
//     properties and the default keystore's secret mappings (the
//     certificate-verification mapping's keystore aliases)
//   - the endpoints under /json/realm-config ([Env.RealmConfig]): the
//     realm's services (iot, oauth-oidc; an update keeps the members not
//     given; the agents the IoT Service creates), tree nodes, trees and
//     agents (an update keeps the settings and client secret not given),
//     each checked on write; and /json/scripts ([Env.Scripts])
//   - the one generic resource handler of a kind of realm configuration
//     object (query, read, delete, create or update by PUT with
//     If-None-Match and If-Match), the resource body with its _id, _rev
//     (a hash of its JSON form) and _type, the query answer
//   - how a change is made ([Apply]): on a copy of the configuration,
//     which must be valid as a whole before it may replace the one in
//     force, so that a refused call changes nothing
//
// What it needs of the server comes in an [Env], which amclient/amtest
// makes per request: the response writer and request, the realm and the
// configuration the request runs with, the caller's rights (a check it
// runs first), the body within the size limit, a way to put a change in
// force ([Env.Change]: under the server's lock, [Apply], then kept in the
// data directory and swapped in), the removal of a deleted realm's state
// (identities, sessions, tokens) and random values. amclient/amtest keeps
// the routing to it, the sessions behind the rights check, the
// configuration in force and its persistence; the configuration schema,
// its validation and JSON are internal/config's, the CREST wire shapes
// (errors, JSON answers, queries, realm _ids) internal/crest's.
//
// It is the room to edit to change an admin endpoint or what it answers.
// It must not import amclient/amtest, nor the web pages (internal/pages,
// html/template): only internal/config, internal/crest, internal/members
// (the update of an agent that keeps what is not given), net/http and the
// rest of the standard library.
package admin
