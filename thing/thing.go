package thing

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/internal/introspect"
)

// Config describes a thing: who it is, how it proves it, and how it
// reaches AM.
type Config struct {
	// Connector carries the thing's requests to AM. Required.
	Connector Connector

	// ID is the thing's identity in AM (the JWT subject). It may be empty
	// only when the thing registers with a software statement alone, in
	// which case AM names it and the thing learns its ID from [Thing.Attributes].
	ID string

	// Audience is the aud of the JWTs the thing signs: the realm path for
	// proof of possession (e.g. "/"), AM's OAuth 2.0 token endpoint URL for
	// a client assertion. If empty, the realm of the connector's AMInfo,
	// or "/".
	Audience string

	// Key is the thing's signing key: any crypto.Signer (ECDSA P-256/384/521,
	// Ed25519, RSA 2048/3072/4096, or a key held in an HSM or TPM). It
	// answers the Authenticate Thing node and, with Registration, the
	// Register Thing node; requests of a restricted session are signed
	// with it.
	Key crypto.Signer

	// KeyID names Key in the thing's identity. If empty, the key's RFC 7638
	// thumbprint in padded base64url, as AM's examples and iot-edge use.
	KeyID string

	// Claims, if set, returns extra claims for the authentication JWT
	// (verified claims that later tree nodes can inspect).
	Claims func() map[string]any

	// Registration, if set, lets the thing register itself when the tree
	// asks (dynamic registration).
	Registration *Registration

	// Handlers answer other callbacks, for example
	// [callback.NameHandler] and [callback.PasswordHandler]. They are
	// tried before the thing's own handlers.
	Handlers []callback.Handler

	// Logger receives debug lines (operations, outcomes, never tokens or
	// keys). If nil, the thing is silent.
	Logger *slog.Logger

	// Time returns the current time for the JWTs the thing signs. If nil, time.Now.
	Time func() time.Time
}

// Registration describes how a thing registers.
type Registration struct {
	// ThingType is device (the default), service or gateway.
	ThingType string
	// Certificates is the thing's certificate chain, leaf first, for the
	// "Proof of Possession & Certificate" method.
	Certificates []*x509.Certificate
	// SoftwareStatement is a software statement (a JWT signed by a software
	// publisher) for the methods that use one.
	SoftwareStatement string
	// Claims, if set, returns extra claims for the registration JWT (for
	// example thingProperties, mapped onto identity attributes by AM).
	Claims func() map[string]any
}

// Thing is an authenticated thing. Its methods are safe for concurrent
// use; signed requests are sent one at a time, as their nonces must reach
// AM in order.
type Thing struct {
	conn     Connector
	handlers []callback.Handler
	log      *slog.Logger
	local    *introspect.Checker // nil unless conn can fetch AM's keys

	mu  sync.Mutex // guards id and sess
	id  string
	ses *session
}

// session is an SSO session; key is set for a restricted (PoP) session.
type session struct {
	token string
	key   crypto.Signer
	mu    sync.Mutex // serialises signed requests
	nonce int64
}

// New authenticates the thing (registering it if the tree asks and
// Registration is set) and returns it.
func New(ctx context.Context, cfg Config) (*Thing, error) {
	if cfg.Connector == nil {
		return nil, errors.New("thing: Config.Connector is required")
	}
	t := &Thing{conn: cfg.Connector, id: cfg.ID, log: cfg.Logger}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if src, ok := cfg.Connector.(tokenKeySource); ok {
		t.local = &introspect.Checker{
			Fetch: func(ctx context.Context) (introspect.Keys, error) {
				iss, set, err := src.TokenKeys(ctx)
				return introspect.Keys{Issuer: iss, Set: set}, err
			},
			Time: cfg.Time,
		}
	}
	handlers, err := cfg.handlers(ctx)
	if err != nil {
		return nil, err
	}
	t.handlers = handlers
	if _, err := t.authenticate(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

func (cfg *Config) handlers(ctx context.Context) ([]callback.Handler, error) {
	hs := append([]callback.Handler(nil), cfg.Handlers...)
	reg := cfg.Registration
	if cfg.Key == nil {
		if reg != nil && reg.SoftwareStatement != "" && len(reg.Certificates) == 0 {
			return append(hs, callback.SoftwareStatementHandler{Statement: reg.SoftwareStatement}), nil
		}
		if len(hs) == 0 {
			return nil, ErrNoKey
		}
		return hs, nil
	}
	if cfg.ID == "" {
		return nil, errors.New("thing: Config.ID is required with a key")
	}
	kid := cfg.KeyID
	if kid == "" {
		var err error
		if kid, err = callback.Thumbprint(cfg.Key.Public()); err != nil {
			return nil, fmt.Errorf("thing: key ID: %w", err)
		}
	}
	aud := cfg.Audience
	if aud == "" {
		aud = "/"
		if info, err := cfg.Connector.AMInfo(ctx); err == nil && info.Realm != "" {
			aud = info.Realm
		}
	}
	hs = append(hs, &callback.AuthenticateHandler{Audience: aud, ThingID: cfg.ID, KeyID: kid, Key: cfg.Key,
		Claims: cfg.Claims, Time: cfg.Time})
	if reg != nil {
		regAud := aud
		if strings.Contains(aud, "://") {
			regAud = "/" // a client-assertion audience is a URL; registration JWTs name the realm
			if info, err := cfg.Connector.AMInfo(ctx); err == nil && info.Realm != "" {
				regAud = info.Realm
			}
		}
		hs = append(hs, &callback.RegisterHandler{Audience: regAud, ThingID: cfg.ID, ThingType: reg.ThingType,
			KeyID: kid, Key: cfg.Key, Certificates: reg.Certificates, Claims: reg.Claims, Time: cfg.Time})
		if reg.SoftwareStatement != "" {
			hs = append(hs, callback.SoftwareStatementHandler{Statement: reg.SoftwareStatement})
		}
	}
	return hs, nil
}

// maxAuthSteps bounds one authentication's round trips.
const maxAuthSteps = 32

// maxAuthRestarts bounds how often one authentication starts its flow
// again after a lost step, and maxResends how often a signed request is
// signed again after it went unanswered.
const (
	maxAuthRestarts = 4
	maxResends      = 4
)

// flowLost reports whether an authentication step failed because its
// answer was lost or the gateway no longer knows the flow (its digests
// live with the DTLS session), rather than because AM refused it.
func flowLost(err error) bool {
	if errors.Is(err, errNoAnswer) {
		return true
	}
	var ge *gatewayError
	return errors.As(err, &ge) && ge.code == codes.Unauthorized && string(ge.body) == msgUnknownDigest
}

// msgUnknownDigest is a Thingway gateway's answer to a step whose flow it
// does not hold.
const msgUnknownDigest = "unknown or expired auth_id_digest"

// authenticate runs the tree and installs the new session. The session is
// restricted when, in the last round, a callback was answered by a handler
// that signs: its key signs later requests.
func (t *Thing) authenticate(ctx context.Context) (*session, error) {
	var (
		step     callback.Step
		key      crypto.Signer // key of the last round's signing handler
		restarts int
	)
	for range maxAuthSteps {
		res, err := t.conn.AuthStep(ctx, step)
		if err != nil && step.AuthIDDigest != "" && restarts < maxAuthRestarts && ctx.Err() == nil && flowLost(err) {
			// A step's answer was lost (or its flow forgotten with the
			// session): the step is single-use, so the flow starts again.
			restarts++
			t.log.LogAttrs(ctx, slog.LevelDebug, "authentication step lost, starting the flow again",
				slog.Int("restart", restarts), slog.String("error", err.Error()))
			step, key = callback.Step{}, nil
			continue
		}
		if err != nil {
			err = asError(err)
			var te *Error
			if errors.As(err, &te) {
				te.Op = "authentication"
				return nil, te
			}
			return nil, fmt.Errorf("thing: authentication: %w", err)
		}
		if res.TokenID != "" {
			s := &session{token: res.TokenID, key: key}
			t.mu.Lock()
			t.ses = s
			t.mu.Unlock()
			t.log.LogAttrs(ctx, slog.LevelDebug, "thing authenticated", slog.Bool("restricted", key != nil))
			return s, nil
		}
		if len(res.Callbacks) == 0 {
			return nil, errors.New("thing: authentication: AM answered neither callbacks nor a token")
		}
		key = nil
		for i := range res.Callbacks {
			h, err := answer(&res.Callbacks[i], t.handlers)
			if err != nil {
				return nil, err
			}
			if sh, ok := h.(callback.SigningHandler); ok && key == nil {
				key = sh.SigningKey()
			}
		}
		step = callback.Step{AuthID: res.AuthID, AuthIDDigest: res.AuthIDDigest, Callbacks: res.Callbacks}
	}
	return nil, fmt.Errorf("thing: authentication did not finish after %d steps", maxAuthSteps)
}

// answer lets the first handler that recognises cb answer it and returns
// that handler. A callback nobody recognises is sent back as it is; AM
// decides.
func answer(cb *callback.Callback, handlers []callback.Handler) (callback.Handler, error) {
	for _, h := range handlers {
		ok, err := h.Handle(cb)
		if err != nil {
			return nil, fmt.Errorf("thing: answering %s %s: %w", cb.Type, cb.ID(), err)
		}
		if ok {
			return h, nil
		}
	}
	return nil, nil
}

// current returns the session.
func (t *Thing) current() *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ses
}

// ID returns the thing's ID: the configured one, or, for a thing AM named
// at registration, the one learnt from its attributes.
func (t *Thing) ID() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.id
}

// send makes one request with the session, signing it for a restricted
// session, and returns AM's answer.
func (t *Thing) send(ctx context.Context, s *session, op string, payload map[string]any, fields []string) ([]byte, error) {
	req := callback.Request{Op: op, Token: s.token, Fields: fields}
	if s.key == nil {
		if payload != nil {
			b, err := json.Marshal(payload)
			if err != nil {
				return nil, err
			}
			req.Body = b
		}
		b, err := t.conn.Send(ctx, req)
		return b, asError(err)
	}
	info, err := t.conn.AMInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("thing: AM information: %w", asError(err))
	}
	aud, api := info.ThingsVersion, ""
	switch op {
	case callback.OpAccessToken:
		aud = info.AccessTokenURL
	case callback.OpIntrospect:
		aud = info.IntrospectURL
	case callback.OpAttributes:
		aud = info.AttributesURLFor(fields)
	case callback.OpUserCode:
		aud = info.UserCodeURL
	case callback.OpUserToken:
		aud = info.UserTokenURL
	case callback.OpSessionValidate:
		aud, api = info.SessionValidateURL, info.SessionsVersion
	case callback.OpSessionLogout:
		aud, api = info.SessionLogoutURL, info.SessionsVersion
	}
	if api == "" {
		api = info.ThingsVersion
	}
	claims := map[string]any{"csrf": s.token}
	for k, v := range payload {
		claims[k] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for resend := 0; ; resend++ {
		jws, err := callback.SignRequest(s.key, aud, api, s.nonce, claims)
		if err != nil {
			return nil, fmt.Errorf("thing: signing the request: %w", err)
		}
		s.nonce++
		req.Body, req.Signed = []byte(jws), true
		// One signed request at a time (s.mu): the next nonce is used only
		// once this one was answered or its session closed, so that AM
		// never sees a nonce after a higher one.
		b, err := t.conn.Send(ctx, req)
		if err != nil && errors.Is(err, errNoAnswer) && resend < maxResends && ctx.Err() == nil {
			t.log.LogAttrs(ctx, slog.LevelDebug, "signed request unanswered, signing it again with a new nonce",
				slog.String("op", op), slog.Int("resend", resend+1))
			continue
		}
		if err != nil && resend > 0 && !errors.Is(err, errNoAnswer) && ctx.Err() == nil {
			// AM may have acted on a copy whose answer was lost (a user
			// code's token is issued once): say so rather than leave a
			// refusal unexplained.
			return b, fmt.Errorf("thing: %s: sent again with a new nonce after %d unanswered; an earlier copy may have reached AM: %w", op, resend, asError(err))
		}
		return b, asError(err)
	}
}

// do runs op with the session; when AM says the session is not valid (401)
// and validating it confirms that, the thing authenticates again (once)
// and retries.
func (t *Thing) do(ctx context.Context, op string, payload map[string]any, fields []string) ([]byte, error) {
	s := t.current()
	if s == nil {
		var err error
		if s, err = t.authenticate(ctx); err != nil {
			return nil, err
		}
	}
	b, err := t.send(ctx, s, op, payload, fields)
	if err == nil || !isUnauthorized(err) {
		return b, err
	}
	valid, verr := t.valid(ctx, s)
	if verr != nil || valid {
		return nil, err
	}
	t.log.LogAttrs(ctx, slog.LevelDebug, "session expired, authenticating again", slog.String("op", op))
	if s, err = t.authenticate(ctx); err != nil {
		return nil, err
	}
	return t.send(ctx, s, op, payload, fields)
}

func (t *Thing) valid(ctx context.Context, s *session) (bool, error) {
	b, err := t.send(ctx, s, callback.OpSessionValidate, nil, nil)
	if isUnauthorized(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var v struct {
		Valid bool `json:"valid"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return false, fmt.Errorf("thing: session validation answer: %w", err)
	}
	return v.Valid, nil
}

// SessionValid reports whether the thing's session is still valid.
// AM 7.4 cannot validate restricted sessions (OPENAM-19492) and answers as
// if they were not valid.
func (t *Thing) SessionValid(ctx context.Context) (bool, error) {
	s := t.current()
	if s == nil {
		return false, nil
	}
	return t.valid(ctx, s)
}

// Logout ends the thing's session. The next request authenticates again.
func (t *Thing) Logout(ctx context.Context) error {
	s := t.current()
	if s == nil {
		return nil
	}
	if _, err := t.send(ctx, s, callback.OpSessionLogout, nil, nil); err != nil {
		return err
	}
	t.mu.Lock()
	if t.ses == s {
		t.ses = nil
	}
	t.mu.Unlock()
	return nil
}
