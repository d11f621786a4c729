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
//     collectors, the data store decision, the Scripted Decision node (see
//     below), and zero-page login with the X-OpenAM-Username and
//     X-OpenAM-Password headers
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
//   - the admin REST API with which amster, frodo and the iot-edge test
//     harness configure AM (see below)
//   - web pages for people: the device verification pages at
//     /oauth2/device/user (sign in, enter the code, Allow or Deny) and a
//     read-only identities page for the administrator at /ui/identities
//
// Realms are selected as AM selects them: the realm query parameter (a path,
// an alias or a bare name), a realm path in the URL
// (/json/realms/root/realms/a/...), or a DNS alias matching the Host header.
//
// # Admin REST API
//
// The administrator (its SSO token in the cookie or in a header named after
// the cookie; none is 401, another user's 403) configures the server at run
// time with AM's calls, status codes and JSON:
//
//   - /json/global-config/realms: create (?_action=create, 201 with the
//     realm's _id, its path in base64 as AM makes it), query
//     (?_queryFilter=true), read, update (PUT) and delete; a realm with
//     sub-realms is not deleted (409), and deleting a realm deletes its
//     identities, sessions and tokens
//   - /json/global-config/servers/server-default/properties/advanced: the
//     advanced server properties (fqdnMap entries), kept and returned
//   - /json/global-config/secrets/stores/KeyStoreSecretStore/default-keystore/mappings/{id}:
//     secret mappings; am.services.iot.cert.verification maps keystore
//     aliases of Config.KeystoreAliases to the CAs that certificate
//     registration trusts (an alias the local AM does not know is a 400)
//   - /json/realm-config/services/{iot,oauth-oidc}: create (409 when the
//     service exists), read, update (the members given; others are kept as
//     they are, unknown ones included) and delete. Creating the IoT Service
//     with createOAuthClient and createOAuthJwtIssuer creates its OAuth 2.0
//     client and trusted JWT issuer, as AM does
//   - /json/realm-config/authentication/authenticationtrees/nodes/{type}/{id}
//     and .../trees/{name}: PUT (201 created, 200 updated; 412 with
//     If-None-Match: * when it exists), GET, DELETE (409 for a node a tree
//     uses) and queries
//   - /json/realm-config/agents/{OAuth2Client,SoftwarePublisher,TrustedJwtIssuer}/{id}:
//     the same; an update keeps the settings (and the client secret) not given
//   - /json/scripts: create (?_action=create), read, update and delete (409
//     for a script a tree's node runs)
//
// A change is made on a copy of the configuration, which is validated as a
// whole before it replaces the one in force: a refused call changes
// nothing, and a request in progress keeps the configuration it started
// with. With [Server.DataDir], changes survive restarts. [Server.Import]
// applies a directory of such JSON through the same calls.
//
// # Scripted Decision node
//
// The local AM runs no Groovy or JavaScript engine. A Scripted Decision
// node's script must be within [ScriptSubset]: it reads the claims that the
// Authenticate Thing node verified (in both shared and transient state
// under [VerifiedClaimsKey]), compares them with literals and sets outcome
// to "true" or "false", for example
//
//	outcome = "true"
//	def claims = transientState.get("org.forgerock.am.iot.jwt.pop.verified_claims")
//	if (claims == null || claims.get("life_universe_everything") != "42") {
//	    outcome = "false"
//	}
//
// Creating a node whose script is outside the subset is refused with 400;
// == compares a string and a number as Groovy does in Groovy scripts and as
// JavaScript does in JavaScript ones. A script that fails at run time (a
// claim read from null) fails the login, as in AM.
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
// # Trust checks
//
// Certificate registration (POP_WITH_CERTIFICATE) runs exactly these
// checks on the x5c chain of cnf.jwk, leaf first; any failure takes the
// Register Thing node's failure outcome (401 "Login failure"), and the
// log says which check failed:
//
//   - x5c is present and holds at most 10 certificates, each base64 DER
//   - the leaf's public key is the cnf.jwk key, the key that signed the
//     registration JWT
//   - with Verify Certificate Subject, the JWT's sub is the leaf's subject
//     CN or UID
//   - from the leaf on, each certificate is signed by the next one, until
//     one is signed by the key of a CA mapped to
//     am.services.iot.cert.verification; a chain that ends before that is
//     refused
//   - every certificate up to that one is within its NotBefore and
//     NotAfter at the server's clock ([Server.Time]), with
//     [Server.ClockSkew] either side, and has no critical extension the
//     server does not process
//   - every intermediate (a certificate after the leaf that signed the one
//     before it) is proven a CA: X.509 v3 (v1 and v2 intermediates are
//     refused, as RFC 5280 §6.1.4(k) permits), basicConstraints with
//     cA=true, keyCertSign when it has a keyUsage extension, no more
//     intermediates below it (self-issued ones not counted) than its
//     pathLenConstraint, and no name constraints, which the server does not
//     enforce
//
// As AM does and crypto/x509 would not, SHA-1 signatures are accepted, a
// leaf may be X.509 v1, and the trusted CA is trusted by its key: its own
// certificate (validity, version, extensions) is not checked. Not checked
// at all: issuer and subject name chaining (trust follows signatures), the
// leaf's key usages, certificate policies and revocation.
//
// Every JWS the server parses (signed requests, PoP authentication and
// registration JWTs, client assertions, software statements and its own
// authIds) must have a header and a payload that are each one JSON object
// in valid UTF-8 in which no object, at any depth, names a member twice;
// names are compared after unescaping and under Unicode simple case
// folding. Such a JWS fails as any invalid one does at that step: the
// node's failure outcome, 401 "Login failure" for an authId, 401 "Access
// Denied" for a signed request (400 "Invalid signed request" when the
// session is unrestricted and holds no key).
//
// Time claims are checked at the server's clock with [Server.ClockSkew]
// (60 seconds) of leeway: exp has passed, nbf or iat is still ahead, or exp
// is before iat, and the JWT is refused. PoP authentication and
// registration JWTs must carry iat and exp, client assertions exp; software
// statements and the payloads of signed requests, which iot-edge sends
// without time claims, are checked for those they carry (a refused signed
// request consumes no nonce). PoP authentication and registration JWTs and
// client assertions may live at most [Server.MaxJWTLifetime] (10 minutes;
// iot-edge v7.4 and this module's SDK sign for 5): exp − iat, or for a
// client assertion without iat exp − now.
//
// A client assertion's jti is accepted once per thing until the assertion
// expires; with [Server.DataDir] the record is on disk before the login
// succeeds, so a restart does not reopen it. With
// [Server.RequireAssertionJTI] an assertion without jti fails; by default
// it is accepted, as AM 7.4 accepts those of iot-edge v7.4 and of this
// module's SDK, which send none.
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
