// Package journey is the local AM's authentication trees (journeys)
// without the HTTP around them. It owns
//
//   - the callbacks: their JSON shape ([Callback]), the IoT nodes' callback
//     IDs, and matching an answer to the callback sent
//   - the journey in progress ([State]): the node it is at, the callbacks
//     it waits on, the PoP challenge, what its nodes collected and
//     verified, AM's shared and transient node states
//   - the tree walk ([Env.Run]): from a node to the next by its outcome,
//     until a node needs input or the tree ends in success or failure
//   - the nodes: the Username and Password Collectors, the Data Store
//     Decision, the Scripted Decision (its script run by internal/script
//     on the verified claims), Authenticate Thing (proof of possession or
//     client assertion, and the client assertions' jti replay records,
//     [FirstUse]) and Register Thing (its four registration methods:
//     software statements, certificate registration, confirmation-key
//     rotation, identity creation and attributes)
//   - who a journey that ended in success logged in ([Env.Login]), and
//     zero-page login ([Env.ZeroPage])
//
// What a node needs of the server comes in an [Env], which amclient/amtest
// makes per request: the realm and its configuration, the clock, skew and
// JWT lifetime limits, the log, the identity store (lookup, password check,
// a change in one transaction, on internal/identities' record) and a store
// transaction for the jti records. The HTTP side is amclient/amtest's:
// POST /json/authenticate's request and answer, the tree selection, the
// authId (a JWT signed with the server's key) under which the server
// keeps a [State] between requests, and the SSO session a [Login]
// becomes. What a thing presents
// (JWSs, claims, certificate chains) is checked by internal/proof.
//
// It is the room to edit to change how a tree is walked or what a node
// does. It must not import amclient/amtest, nor the client's wire
// vocabulary (callback), which it restates from AM's documented answers,
// nor the web pages (internal/pages, html/template): only internal/config,
// internal/script, internal/proof, internal/crest (its errors),
// internal/identities (the identity record, the name rule, a claim as an
// attribute value, the compare of secrets), internal/store and
// internal/tokens (records, hashes and random values), go-jose and the
// standard library.
package journey
