// Package proof checks what a thing presents as proof to the local AM's
// Register Thing and Authenticate Thing nodes and to its things endpoint:
// it parses and verifies the compact JWSs things sign (PoP authentication
// and registration JWTs, client assertions, software statements, signed
// requests), decodes and checks their JWT claims (time claims, lifetime,
// audience), parses the confirmation key (cnf.jwk) and its x5c
// certificates, and verifies a thing's certificate chain against the
// certificate-verification CAs.
//
// It is the room to edit to change how a proof-of-possession JWS or a
// thing's certificate chain is checked. It knows nothing of HTTP, trees or
// the server: it imports no net/http, not amclient/amtest, and nothing of
// the module but internal/jws (the module's one compact-JWS splitter).
package proof
