// Package thing is the device SDK: it lets a thing (a device, a service or
// a gateway) authenticate to ForgeRock/Ping AM, register itself, and get
// and manage OAuth 2.0 tokens, directly over HTTP(S) or through a Thingway
// gateway over CoAP(S).
//
// # Connecting
//
// A thing reaches AM through a [Connector]. For HTTP(S), use an
// *amclient.Client (package amclient), naming AM's deployment URL, the
// realm and the authentication tree:
//
//	conn := &amclient.Client{URL: "http://127.0.0.1:8080/openam", Realm: "/", Tree: "auth-tree"}
//
// A gateway connection serves the same interface over CoAP; through a
// gateway the realm and tree are the gateway's. This package does not link
// net/http, so a device that only talks CoAP stays small.
//
// # Authenticating and registering
//
// [New] authenticates at once. A thing with an identity in AM proves
// possession of the key registered there:
//
//	th, err := thing.New(ctx, thing.Config{Connector: conn, ID: "manual-thing", Key: key})
//
// With [Config.Registration], a thing AM does not know registers itself
// when the tree asks (Register Thing node): with a CA-signed certificate,
// a software statement, or neither (proof of possession only). A software
// statement alone registers a thing AM names; it reads its ID with
// [Thing.Attributes] and then authenticates with a client assertion
// (Audience set to AM's token endpoint). Name and password callbacks are
// answered by handlers from package callback in [Config.Handlers].
//
// # Requests
//
// [Thing.AccessToken], [Thing.RefreshAccessToken], [Thing.IntrospectAccessToken],
// [Thing.Attributes], [Thing.UserCode] and [Thing.UserToken] (the OAuth 2.0
// device grant, polled until a person decides), [Thing.SessionValid] and
// [Thing.Logout]. When the session is restricted (proof of possession),
// every request is signed with the thing's key for its exact URL, with an
// increasing nonce. When AM says the session has ended, the thing
// authenticates again, once, and retries.
//
// AM's refusals are [*Error] values carrying the HTTP status, AM's body and
// the OAuth error code.
package thing
