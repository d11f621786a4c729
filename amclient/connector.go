package amclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/thingway/thingway/callback"
)

// The methods below let a *Client serve as the connector of a thing that
// talks to AM directly over HTTP(S) (package thing's Connector): the same
// three operations a gateway offers over CoAP.

// AuthStep sends one authentication step to the tree named by Tree.
func (c *Client) AuthStep(ctx context.Context, step callback.Step) (callback.Step, error) {
	res, err := c.AuthenticateStep(ctx, c.Tree, AuthPayload{AuthID: step.AuthID, Callbacks: step.Callbacks})
	if err != nil {
		return callback.Step{}, err
	}
	if res.TokenID == "" && res.AuthID == "" {
		return callback.Step{}, errors.New("amclient: AM's authentication answer has neither an authId nor a tokenId")
	}
	return callback.Step{AuthID: res.AuthID, Callbacks: res.Callbacks, TokenID: res.TokenID}, nil
}

// AMInfo returns the URLs the client itself calls for URL and Realm.
func (c *Client) AMInfo(ctx context.Context) (callback.AMInfo, error) {
	return callback.NewAMInfo(c.base(), queryValue(c.Realm)), nil
}

// Send makes one things-endpoint or session request with a body the
// caller prepared (JSON, or a JWS it signed for the AMInfo URL), and
// returns AM's answer. A validate answers {"valid": ...}; any status other
// than 200 is an [*Error].
func (c *Client) Send(ctx context.Context, req callback.Request) ([]byte, error) {
	info, _ := c.AMInfo(ctx)
	r := request{method: http.MethodPost, token: req.Token, body: req.Body, version: callback.ThingsVersion}
	switch req.Op {
	case callback.OpAccessToken:
		r.url = info.AccessTokenURL
	case callback.OpIntrospect:
		r.url = info.IntrospectURL
	case callback.OpUserCode:
		r.url = info.UserCodeURL
	case callback.OpUserToken:
		r.url = info.UserTokenURL
	case callback.OpAttributes:
		r.method, r.url = http.MethodGet, c.attributesURL(req.Fields)
	case callback.OpSessionValidate:
		r.url, r.version = info.SessionValidateURL, callback.SessionsVersion
	case callback.OpSessionLogout:
		r.url, r.version = info.SessionLogoutURL, callback.SessionsVersion
	default:
		return nil, fmt.Errorf("amclient: unknown operation %q", req.Op)
	}
	if req.Signed {
		r.contentType = "application/jose"
	}
	if _, err := c.CookieName(ctx); err != nil {
		return nil, err
	}
	res, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if res.status != http.StatusOK {
		return nil, newError(res.status, res.body)
	}
	return res.body, nil
}

// HTTPStatus returns StatusCode; connectors' errors share this method so
// that a thing can tell an expired session (401) from other failures.
func (e *Error) HTTPStatus() int { return e.StatusCode }

// ResponseBody returns AM's body.
func (e *Error) ResponseBody() []byte { return e.Body }
