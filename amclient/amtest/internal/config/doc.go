// Package config is the local AM's configuration schema: the types a user
// of amtest sets in Go or in JSON ([Config], its realms, the IoT Service and
// OAuth2 Provider, trees and nodes, agents, scripts, certificates), which
// amtest re-exports as aliases. It owns
//
//   - the schema and its constants (node types, registration and
//     authentication methods, agent types, grant types, script languages)
//   - the JSON forms, which are AM's own REST and export shapes; the members
//     the local AM does not interpret are kept as given, through the one
//     generic codec of internal/members
//   - the defaults: AM's service defaults, the evaluation guide's realm
//     ([GuideRealm], [DefaultConfig]), an AM as freshly installed
//     ([EmptyConfig]), [LoadConfig] on top of the defaults, and the project's
//     example CA and software publisher keys, whose files amtest embeds and
//     hands over with [SetExampleFiles]
//   - validation ([Config.Validate], [ValidateNode], [ValidateTree],
//     [ValidatePublishers]) and the questions the server and its admin API
//     ask of a configuration: which tree uses a node ([NodeInUse]), which
//     node runs a script ([ScriptInUse]), a node's outcomes, the CAs of
//     certificate verification, a deep copy ([Clone])
//
// It is the room to edit to add a setting, a node type or a check of the
// configuration. It knows nothing of HTTP, the server or its pages: it
// imports no net/http or html/template and not amclient/amtest, only
// internal/members (the unknown-member codec), internal/script (to check a
// Scripted Decision node's script), internal/proof (to read a software
// publisher's JWK set), go-jose and the standard library.
package config
