// Package amtest is an AM-compatible server for IoT things: a local stand-in
// for ForgeRock/Ping Access Management 7.4 with its IoT Service, in the way
// [net/http/httptest] stands in for an HTTP server.
//
// The gateway, the examples and every test of this module run against it,
// and a firmware team can run it in its own CI (see cmd/amlocal for the
// standalone server). It speaks AM's wire protocol: the same URLs, headers,
// status codes and CREST error bodies, so that an SDK that works against it
// works against AM.
//
// # What it serves
//
//   - GET /json/serverinfo/* (the SSO cookie name)
//   - POST /json/authenticate: authentication trees with the Authenticate
//     Thing node (proof of possession and client assertion), the Register
//     Thing node (all four registration methods), username and password
//     collectors and the data store decision, and zero-page login with the
//     X-OpenAM-Username and X-OpenAM-Password headers
//   - restricted (proof-of-possession) SSO sessions: every request signed
//     with the thing's key, for this exact URL, API version and a strictly
//     increasing nonce
//   - /json/things/*: attributes, get_access_token (with refresh),
//     introspect_token, get_user_code and get_user_token (the OAuth 2.0
//     device authorization grant)
//   - POST /json/sessions?_action=validate|logout
//   - the identity endpoint /json/users and /json/realms/root/.../users/{id}
//   - /oauth2: OpenID configuration, JWK set, access_token, introspect and
//     token/revoke; access tokens client-side signed (ES256 or HS256),
//     client-side encrypted, or opaque, per realm
//   - web pages for people: the device verification pages at
//     /oauth2/device/user (sign in, enter the code, Allow or Deny) and a
//     read-only identities page for the administrator at /ui/identities
//
// Realms are selected as AM selects them: the realm query parameter (a path,
// an alias or a bare name), a realm path in the URL
// (/json/realms/root/realms/a/...), or a DNS alias matching the Host header.
//
// # Configuration
//
// The zero [Server] runs [DefaultConfig]: the AM that the IoT evaluation
// guide sets up (realm "/", trees auth-tree, reg-tree and auth-reg-tree, the
// client forgerock-iot-oauth2-client with scopes publish and subscribe, the
// project's example CA for certificate registration, the software publisher
// iot-software-publisher, administrator amAdmin/changeit). A [Config] holds
// AM's own JSON shapes for services, trees, nodes and agents, so that an
// exported journey can be loaded with [LoadConfig].
//
// # Usage
//
//	srv := amtest.NewServer()
//	defer srv.Close()
//	// srv.URL is the deployment URL, e.g. http://127.0.0.1:41234/openam
//
// Set the exported fields of a server from [NewUnstartedServer] (Config,
// Time, DataDir, lifetimes) before calling [Server.Start].
//
// # Where AM's behaviour is not documented
//
// Some answers of AM are not documented; the server then picks one and
// keeps to it: every proof-of-possession violation is 401 "Access Denied";
// a restricted session cannot validate itself (401), as in AM 7.4
// (OPENAM-19492); thing tokens have the subject "(usr!<id>)"; a Register
// Thing node without Rotate Confirmation Key replaces the thing's key, with
// it adds one; a thing name matching nameValidationRegex is refused.
package amtest
