// Package coapx is the contract between things and a Thingway gateway: the
// CoAP resources, content formats, payload shapes and status codes of the
// iot-edge v7.4 gateway protocol, which Thingway keeps so that things built
// with either SDK work with either gateway.
//
// # Resources
//
// Every request is CoAP over DTLS 1.2. The gateway serves eight paths:
//
//	/authenticate  POST  one authentication step            2.03 Valid
//	/aminfo        GET   AM URLs and versions to sign for    2.05 Content
//	/accesstoken   POST  get_access_token (and refresh)      2.04 Changed
//	/introspect    POST  introspect_token                    2.04 Changed
//	/attributes    POST  attribute read (names as Uri-Query) 2.04 Changed
//	/usercode      POST  get_user_code                       2.04 Changed
//	/usertoken     POST  get_user_token                      2.04 Changed
//	/session       POST  _action=validate|logout (Uri-Query) 2.04 Changed
//
// Requests of unrestricted sessions are JSON (content format 50) wrapped
// in [ThingsRequest] or [SessionRequest]; requests of restricted sessions
// are the compact JWS AM expects (content format 11650, [AppJOSE]), whose
// csrf claim carries the SSO token.
//
// AM's HTTP status maps onto CoAP codes with [CodeForStatus] and back with
// [StatusForCode]; AM's error body travels as the payload.
package coapx

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/internal/jws"
)

// Resource paths.
const (
	PathAuthenticate = "/authenticate"
	PathAMInfo       = "/aminfo"
	PathAccessToken  = "/accesstoken"
	PathIntrospect   = "/introspect"
	PathAttributes   = "/attributes"
	PathUserCode     = "/usercode"
	PathUserToken    = "/usertoken"
	PathSession      = "/session"
)

// Content formats. 11650 is the number iot-edge picked for
// application/jose (the CoAP registry had none); it is kept for
// compatibility whatever IANA assigns later.
const (
	AppJSON = message.MediaType(50)
	AppJOSE = message.MediaType(11650)
)

// Session actions, sent as the single Uri-Query option of /session.
const (
	QueryValidate = "_action=validate"
	QueryLogout   = "_action=logout"
)

// Route returns the resource path and Uri-Query of a thing operation
// (a callback.Op* value).
func Route(op string) (path, query string, err error) {
	switch op {
	case callback.OpAccessToken:
		return PathAccessToken, "", nil
	case callback.OpIntrospect:
		return PathIntrospect, "", nil
	case callback.OpAttributes:
		return PathAttributes, "", nil
	case callback.OpUserCode:
		return PathUserCode, "", nil
	case callback.OpUserToken:
		return PathUserToken, "", nil
	case callback.OpSessionValidate:
		return PathSession, QueryValidate, nil
	case callback.OpSessionLogout:
		return PathSession, QueryLogout, nil
	}
	return "", "", fmt.Errorf("coapx: unknown operation %q", op)
}

// ThingsRequest is the JSON body of an unrestricted things-endpoint
// request: the SSO token and AM's request body as a string (omitted when
// empty).
type ThingsRequest struct {
	Token   string `json:"token"`
	Payload string `json:"payload,omitempty"`
}

// SessionRequest is the JSON body of an unrestricted /session request.
type SessionRequest struct {
	TokenID string `json:"tokenId"`
}

// ErrNotJWS is returned by CSRF for a body that is not a compact JWS.
var ErrNotJWS = errors.New("coapx: unexpected serialisation")

// CSRF returns the csrf claim (the SSO token) of a signed request body,
// without verifying the signature: AM verifies it. A body whose header or
// claims name a member twice is refused (internal/jws).
func CSRF(body []byte) (string, error) {
	c, err := jws.Split(string(body))
	if errors.Is(err, jws.ErrNotCompact) {
		return "", ErrNotJWS
	}
	if err != nil {
		return "", fmt.Errorf("coapx: %w", err)
	}
	var claims struct {
		CSRF string `json:"csrf"`
	}
	if err := json.Unmarshal(c.Payload, &claims); err != nil {
		return "", fmt.Errorf("coapx: JWS payload: %w", err)
	}
	if claims.CSRF == "" {
		return "", errors.New("coapx: the JWS has no csrf claim")
	}
	return claims.CSRF, nil
}

// statusTable is iot-edge's HTTP↔CoAP table (RFC 7252 §10.1 style).
var statusTable = []struct {
	status int
	code   codes.Code
}{
	{201, codes.Created}, {204, codes.Deleted}, {304, codes.Valid}, {200, codes.Content},
	{400, codes.BadRequest}, {401, codes.Unauthorized}, {0, codes.BadOption}, {403, codes.Forbidden},
	{404, codes.NotFound}, {405, codes.MethodNotAllowed}, {406, codes.NotAcceptable},
	{412, codes.PreconditionFailed}, {413, codes.RequestEntityTooLarge}, {415, codes.UnsupportedMediaType},
	{500, codes.InternalServerError}, {501, codes.NotImplemented}, {502, codes.BadGateway},
	{503, codes.ServiceUnavailable}, {504, codes.GatewayTimeout}, {0, codes.ProxyingNotSupported},
}

// CodeForStatus maps an AM error status onto the CoAP code of the same
// meaning; a status the table does not know is 5.00.
func CodeForStatus(status int) codes.Code {
	for _, row := range statusTable {
		if row.status == status && status != 0 {
			return row.code
		}
	}
	return codes.InternalServerError
}

// StatusForCode maps a CoAP code back onto an HTTP status; 4.02 Bad Option
// and 5.05 Proxying Not Supported have no HTTP twin and map to 400 and
// 502. ok is false for codes outside the table.
func StatusForCode(c codes.Code) (status int, ok bool) {
	switch c {
	case codes.Changed:
		return 200, true
	case codes.BadOption:
		return 400, true
	case codes.ProxyingNotSupported:
		return 502, true
	}
	for _, row := range statusTable {
		if row.code == c && row.status != 0 {
			return row.status, true
		}
	}
	return 0, false
}

// IsSuccess reports whether c is a 2.xx code.
func IsSuccess(c codes.Code) bool { return c >= codes.Created && c <= codes.Continue }
