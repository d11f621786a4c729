package amclient

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/thingway/thingway/callback"
)

// maxAuthSteps bounds the round trips of one authentication, so that a
// misbehaving tree cannot keep a client looping.
const maxAuthSteps = 32

// ErrUnhandledCallback is wrapped by the error [Client.Authenticate]
// returns when none of its handlers answers a callback.
var ErrUnhandledCallback = errors.New("amclient: no handler for callback")

// AuthPayload is the body of /json/authenticate requests and answers.
// A client posts AM's previous answer back with the callbacks' inputs
// filled in; AM answers with new callbacks, or with TokenID on success.
type AuthPayload struct {
	// AuthID identifies the authentication in progress.
	AuthID string `json:"authId,omitempty"`
	// Callbacks are AM's questions and, in requests, their answers.
	Callbacks []callback.Callback `json:"callbacks,omitempty"`
	// TokenID is the SSO token; set only in AM's final answer.
	TokenID string `json:"tokenId,omitempty"`
	// SuccessURL is AM's success URL; set only in the final answer.
	SuccessURL string `json:"successUrl,omitempty"`
	// Realm is the realm path of the new session; set only in the final answer.
	Realm string `json:"realm,omitempty"`
}

// AuthenticateStep makes one round trip of an authentication with the
// tree named tree: POST /json/authenticate?authIndexType=service&
// authIndexValue=tree[&realm=Realm]. Start with a zero AuthPayload (sent
// as {}), then post back each answer with its callbacks answered, until an
// answer has a TokenID. Any status other than 200 is an [*Error] (AM
// answers 401 when the tree fails).
func (c *Client) AuthenticateStep(ctx context.Context, tree string, req AuthPayload) (AuthPayload, error) {
	var out AuthPayload
	body, err := json.Marshal(req)
	if err != nil {
		return out, fmt.Errorf("amclient: authentication request: %w", err)
	}
	q := url.Values{"authIndexType": {"service"}, "authIndexValue": {tree}}
	if c.Realm != "" {
		q.Set("realm", c.Realm)
	}
	_, err = c.call(ctx, request{method: http.MethodPost, url: c.base() + "/json/authenticate?" + q.Encode(),
		version: authenticateVersion, body: body}, &out)
	return out, err
}

// Authenticate runs the tree named tree to completion, answering every
// callback with the first of handlers that handles it, and returns the new
// session. If a [callback.SigningHandler] answered a callback, the session's
// Key is set to its key, so that later requests are signed as AM requires
// of restricted sessions.
//
// A callback that no handler answers ends the authentication with an error
// wrapping [ErrUnhandledCallback]; a handler's error ends it too. AM's
// refusal is an [*Error] (normally 401).
func (c *Client) Authenticate(ctx context.Context, tree string, handlers ...callback.Handler) (*Session, error) {
	var (
		req AuthPayload
		key crypto.Signer
	)
	for range maxAuthSteps {
		res, err := c.AuthenticateStep(ctx, tree, req)
		if err != nil {
			return nil, err
		}
		if res.TokenID != "" {
			c.logger().LogAttrs(ctx, slog.LevelDebug, "authenticated", slog.String("tree", tree), slog.String("realm", res.Realm))
			return &Session{Token: res.TokenID, Realm: res.Realm, SuccessURL: res.SuccessURL, Key: key}, nil
		}
		if len(res.Callbacks) == 0 {
			return nil, errors.New("amclient: AM's authentication answer has neither callbacks nor a tokenId")
		}
		for i := range res.Callbacks {
			k, err := handle(&res.Callbacks[i], handlers)
			if err != nil {
				return nil, err
			}
			if key == nil {
				key = k
			}
		}
		req = AuthPayload{AuthID: res.AuthID, Callbacks: res.Callbacks}
	}
	return nil, fmt.Errorf("amclient: authentication with tree %q did not finish after %d steps", tree, maxAuthSteps)
}

// handle answers cb with the first handler that handles it and returns the
// handler's signing key, if it has one.
func handle(cb *callback.Callback, handlers []callback.Handler) (crypto.Signer, error) {
	for _, h := range handlers {
		if h == nil {
			continue
		}
		ok, err := h.Handle(cb)
		if err != nil {
			return nil, fmt.Errorf("amclient: answering %s: %w", describe(cb), err)
		}
		if !ok {
			continue
		}
		if sh, ok := h.(callback.SigningHandler); ok {
			return sh.SigningKey(), nil
		}
		return nil, nil
	}
	return nil, fmt.Errorf("%w %s", ErrUnhandledCallback, describe(cb))
}

func describe(cb *callback.Callback) string {
	if id := cb.ID(); id != "" {
		return fmt.Sprintf("%s %q", cb.Type, id)
	}
	return cb.Type
}

// Session is an AM SSO session.
//
// A Session may be made from a token obtained elsewhere:
// &Session{Token: tok, Key: key}. Do not copy a Session after first use.
type Session struct {
	// Token is the SSO token (AM's tokenId). It is a credential: do not log it.
	Token string

	// Realm is the realm path of the session, as AM reported it.
	Realm string

	// SuccessURL is AM's success URL of the authentication.
	SuccessURL string

	// Key, if not nil, signs every request made with the session (see
	// [callback.SignRequest]); AM requires that of sessions it restricted
	// to the key. If nil, requests are plain JSON.
	Key crypto.Signer

	// nonce is the request nonce of the next signed request. It starts at
	// 0 and is shared by every signed request of the session.
	nonce atomic.Int64

	// turn serialises signed requests: AM refuses a nonce that is not above
	// every nonce it has seen, so requests must arrive in nonce order.
	turnOnce sync.Once
	turn     chan struct{}
}

// acquire waits for the session's turn to send a signed request.
func (s *Session) acquire(ctx context.Context) error {
	s.turnOnce.Do(func() { s.turn = make(chan struct{}, 1) })
	select {
	case s.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Session) release() { <-s.turn }

// nextNonce returns the nonce for the next signed request and advances it.
func (s *Session) nextNonce() int64 { return s.nonce.Add(1) - 1 }
