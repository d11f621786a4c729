// Package gateway is the Thingway IoT gateway: a CoAP server over DTLS 1.2
// that authenticates things with AM and relays their requests to AM, as the
// ForgeRock iot-edge v7.4 gateway does, so that things built with either
// SDK work with it unchanged.
//
// # Resources
//
// A [Server] serves the eight resources of package coapx:
//
//	/authenticate  one step of AM's authentication tree   2.03 Valid
//	/aminfo        AM URLs and versions to sign for        2.05 Content
//	/accesstoken   get_access_token (and refresh)          2.04 Changed
//	/introspect    introspect_token                        2.04 Changed
//	/attributes    attribute read (names as Uri-Query)     2.04 Changed
//	/usercode      get_user_code                           2.04 Changed
//	/usertoken     get_user_token                          2.04 Changed
//	/session       _action=validate|logout (Uri-Query)     2.04 Changed
//
// Any other path is 4.04. As in the original, the request method is not
// checked.
//
// AM's authId never reaches a thing: /authenticate answers carry an
// auth_id_digest (base64 of the SHA-256 of the authId) that the thing
// echoes and the gateway swaps back. Digests live in a bounded in-memory
// cache until AM's authId expires (5 minutes when it has no exp claim) or
// until AM has answered the step that used them.
//
// Things-endpoint requests arrive as JSON (content format 50, the
// {"token","payload"} wrapper, whose payload is forwarded as the body) or
// as a compact JWS (content format 11650, forwarded byte for byte with the
// token taken from its csrf claim). AM's error status maps onto the CoAP
// code of the same meaning and AM's body travels unchanged.
//
// # Status codes the gateway itself produces
//
//	4.00  missing content format, malformed JSON or JWS, bad /session query
//	4.01  /authenticate refused by AM (4xx), or an unknown auth_id_digest
//	4.13  a request body over [Server.MaxRequestBytes] (Size1 gives the
//	      limit), or a request datagram too large to read (Block1 then
//	      gives the block size to use)
//	4.15  a content format other than JSON (50) or JOSE (11650)
//	5.02  AM's answer was not what the gateway expected
//	5.03  AM cannot be reached (connection refused, reset, DNS); or the
//	      gateway is shutting down
//	5.04  AM did not answer within [Server.Timeout]
//
// Such answers carry a short text, never an error string; the details go to
// the log. The iot-edge SDK treats every /authenticate answer other than
// 2.03 as "unauthorized", so reporting AM outages as 5.03/5.04 there (rather
// than 4.01, as iot-edge did) does not change what old things do, but makes
// outages visible to new ones.
//
// /introspect falls back to checking a JWT access token locally, with AM's
// JWK set, only when AM cannot be reached or answers 5xx; AM's 4xx answers
// are relayed. /session answers 2.04 (valid, logged out), 4.01 (invalid)
// and 5.04 for AM errors, as iot-edge does.
//
// # Transport
//
// DTLS requires a client certificate (any: iot-edge things present a
// throwaway self-signed one) and the extended master secret, and offers
// connection IDs. A session idle for [Server.IdleTimeout] (default one
// hour, since iot-edge things never re-dial) is closed; at most
// [Server.MaxSessions] established sessions (default 10000) are kept,
// further handshakes are refused.
//
// A handshake takes a session slot only when it completes. Until then it
// counts against [Server.MaxPendingHandshakes] (default 1000) and is
// abandoned after [Server.HandshakeTimeout] (default 10 seconds), so that
// peers which send a ClientHello and nothing more cannot lock things
// out. Refused handshakes are logged at WARN with the peer's address, at
// most one line per 10 seconds (the line counts the refusals not logged).
//
// A thing that comes back from the address and port of a session it did
// not close (it restarted, behind a NAT that kept its port) gets a new
// session at once: once it has answered the DTLS cookie exchange, the old
// session is closed and its slot freed (RFC 6347 §4.2.8), so a forged
// ClientHello cannot end a session. Records carrying the gateway's
// connection ID reach their session from any address. Both need the
// listener of [Server.Listen].
//
// A request body is limited to [Server.MaxRequestBytes] (default 64 KiB):
// an upload is refused with 4.13 as soon as its Size1 option or a Block1
// block passes the limit, before more is buffered or AM is called, and a
// session has at most 16 Block1 uploads in progress. Block-wise transfers
// are kept longer than an AM call takes, and the Content-Format that
// iot-edge things leave out of their Block2 continuations is restored, so
// that a large response is produced once and delivered whole.
//
// # The gateway's own identity
//
// Before serving, the gateway authenticates itself with AM as the thing
// [Server.ID] (thing type gateway), registering itself through the tree
// when the tree asks and [Server.Certificates] is set. Its session is
// renewed on a timer ([Server.SessionRenewal]) and logged out by
// [Server.Shutdown]. Things use their own sessions; the gateway's session
// proves only that the gateway is known to AM.
//
// # Usage
//
//	am := &amclient.Client{URL: "http://am.localtest.me:8080/openam", Realm: "/", Tree: "auth-tree"}
//	gw := &gateway.Server{AM: am, ID: "manual-gateway", Key: key, Logger: logger}
//	go func() {
//		if err := gw.ListenAndServe(":5683"); !errors.Is(err, gateway.ErrServerClosed) {
//			log.Fatal(err)
//		}
//	}()
//	...
//	err := gw.Shutdown(ctx)
package gateway
