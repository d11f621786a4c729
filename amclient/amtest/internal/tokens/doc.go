// Package tokens is the local AM's OAuth 2.0 tokens: the grant and token
// records and their store kinds; minting an access token, and a refresh
// token when the policy allows one, for a grant, either server-side (a
// random string, stored under its SHA-256) or client-side (a JWT signed
// ES256 or HS256, encrypted A128CBC-HS256 when asked, nothing stored);
// looking a token up (live, neither it nor its grant revoked); and
// revoking a token or its whole grant.
//
// It owns what a token is and how it is kept, not who may have one: grant
// types, scopes, clients and their error answers are the OAuth 2.0 rules
// of amclient/amtest/internal/oauth2, which passes in the client's and
// provider's lifetimes and switches ([Policy]) and the server's keys
// ([Keys]); the endpoints are amclient/amtest's. It may import
// amclient/amtest/internal/store; it must not import amclient/amtest nor
// net/http.
package tokens
