// Package oauth2 is the local AM's OAuth 2.0 rules: what its OAuth2
// Provider answers, without the HTTP around it. It owns
//
//   - clients: finding a realm's active client, authenticating it by its
//     secret ([Env.AuthenticateClient]), the client of a thing
//   - scopes: AM's default scope validator (requested, else the client's
//     default scopes; AM's messages with the scopes as a Java set) and the
//     refresh rule (the same or fewer scopes)
//   - issuing: a new grant, the token policy that the provider and client
//     decide (client-side or server-side tokens, lifetimes, whether a
//     refresh token comes too), the RFC 6749 token response, and the grant
//     types of the token endpoint and of the things endpoint's
//     get_access_token ([Env.Token], [Env.ThingToken])
//   - introspection's RFC 7662 answer and revocation (RFC 7009)
//   - the device authorization grant (RFC 8628): the device-code records
//     ([DeviceCode], their store kinds), user codes and their canonical
//     form, and the state machine: authorization_pending, slow_down (the
//     last polls, [Polls]), expired_token, authorization_declined, a
//     decision taken once ([Env.Decide]) and an approved code exchanged
//     for tokens once ([Env.PollDevice])
//   - discovery: the OpenID configuration document and the JWK set
//
// The tokens themselves (their records, minting, lookup and revocation in
// the store) are internal/tokens'; the HTTP endpoints (reading forms and
// JSON, client credentials from the Authorization header, routing, the
// answer's headers) and the verification pages are amclient/amtest's,
// which makes an [Env] per request: the realm and its configuration, the
// clock, the keys, the store and the request's write transaction. Errors
// are internal/crest's, which carry AM's OAuth 2.0 error bodies and their
// status codes as plain numbers.
//
// It is the room to edit to change a grant, a scope rule or an answer of
// the OAuth2 Provider. It must not import amclient/amtest (nor
// internal/pages, the verification pages' view), and imports no net/http
// of its own: only internal/config, internal/tokens, internal/store,
// internal/crest, go-jose and the standard library.
package oauth2
