// Package callback holds the callbacks of ForgeRock/Ping AM authentication
// trees and the handlers that answer them for things: user name and
// password collectors, and the hidden-value callbacks of AM's Authenticate
// Thing and Register Thing nodes, which things answer with JWTs signed by
// their key (JWT proof of possession, RFC 7800, and client assertions,
// RFC 7523).
//
// It is the AM wire vocabulary that the thing SDK, coapx, the gateway and
// the AM client share: besides the callbacks, the authentication [Step],
// the URLs of [AMInfo], the things-endpoint [Request] and its Op names. It
// lives at the top of the module, not under amclient, because things that
// talk only CoAP depend on it and not on the HTTP client. The package does
// no I/O and imports only the standard library and go-jose: not net/http,
// nor any other package of this module (docs/layout.md).
//
// # Callbacks and handlers
//
// AM answers every step of an authentication with a list of [Callback]s.
// A client passes each one to its [Handler]s in turn until one reports it
// handled the callback by filling in its input, then posts the list back:
//
//	for i := range callbacks {
//		for _, h := range handlers {
//			if ok, err := h.Handle(&callbacks[i]); err != nil {
//				return err
//			} else if ok {
//				break
//			}
//		}
//	}
//
// # Keys
//
// The signing handlers take any [crypto.Signer]: in-memory ECDSA, Ed25519
// and RSA keys as well as keys held by a hardware module or a TPM. The
// signing algorithm follows from the public key ([SigningAlgorithm]) and
// the default key ID is the key's [Thumbprint]. [SignRequest] signs the
// bodies of requests made with a session that AM restricted to the key.
//
// # Usage
//
//	h := callback.AuthenticateHandler{
//		Audience: "/",          // the realm path
//		ThingID:  "thing-42",
//		Key:      key,          // a crypto.Signer
//	}
//	// pass h to amclient.Client.Authenticate, or call h.Handle yourself
package callback

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Callback types that AM sends.
const (
	TypeNameCallback        = "NameCallback"
	TypePasswordCallback    = "PasswordCallback"
	TypeTextInputCallback   = "TextInputCallback"
	TypeHiddenValueCallback = "HiddenValueCallback"
)

// IDs of the HiddenValueCallbacks of AM's IoT nodes (the output entry "id").
const (
	// IDPoPAuthentication asks for a PoP authentication JWT; its value is
	// the challenge.
	IDPoPAuthentication = "jwt-pop-authentication"
	// IDClientAssertion asks for a client-assertion JWT; its value is empty.
	IDClientAssertion = "client_assertion"
	// IDPoPRegistration asks for a PoP registration JWT; its value is the
	// challenge.
	IDPoPRegistration = "jwt-pop-registration"
	// IDSoftwareStatement asks for a software statement; its value is empty.
	IDSoftwareStatement = "software_statement"
)

// Thing types that a registration JWT may carry in its thingType claim.
const (
	ThingTypeDevice  = "device"
	ThingTypeService = "service"
	ThingTypeGateway = "gateway"
)

// popLifetime is the lifetime of every JWT the handlers sign (exp - iat).
const popLifetime = 5 * time.Minute

// ErrNoKey is returned by the signing handlers and functions when they
// have no key to sign with.
var ErrNoKey = errors.New("callback: no signing key")

// Entry is one name/value pair of a callback's output or input.
type Entry struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// Callback is one AM authentication callback. Output carries what AM
// tells the client; Input carries the client's answer. A client posts the
// callback back to AM unchanged except for the input values.
type Callback struct {
	Type   string  `json:"type"`
	Output []Entry `json:"output,omitzero"`
	Input  []Entry `json:"input,omitzero"`
}

// ID returns the string value of the output entry named "id", which names
// the purpose of a HiddenValueCallback (for example [IDPoPAuthentication]),
// or "" if there is none.
func (c Callback) ID() string { return c.output("id") }

// Value returns the string value of the output entry named "value": the
// challenge of a PoP callback. It returns "" if there is none.
func (c Callback) Value() string { return c.output("value") }

func (c Callback) output(name string) string {
	for _, e := range c.Output {
		if e.Name == name {
			s, _ := e.Value.(string)
			return s
		}
	}
	return ""
}

// SetInput puts v into the callback's first input entry. AM's callbacks
// have exactly one input; if the callback has none, SetInput adds one
// named IDToken1.
func (c *Callback) SetInput(v string) {
	if len(c.Input) == 0 {
		c.Input = append(c.Input, Entry{Name: "IDToken1"})
	}
	c.Input[0].Value = v
}

// hiddenID returns the ID of a HiddenValueCallback, or "" for other types.
func (c *Callback) hiddenID() string {
	if c == nil || c.Type != TypeHiddenValueCallback {
		return ""
	}
	return c.ID()
}

func (c *Callback) needInput() error {
	if len(c.Input) == 0 {
		name := c.Type
		if id := c.ID(); id != "" {
			name = id
		}
		return fmt.Errorf("callback: %s callback has no input", name)
	}
	return nil
}

// challenge returns the non-empty string challenge of a PoP callback.
func (c *Callback) challenge() (string, error) {
	for _, e := range c.Output {
		if e.Name != "value" {
			continue
		}
		s, ok := e.Value.(string)
		if !ok || s == "" {
			return "", fmt.Errorf("callback: %s callback has no challenge", c.ID())
		}
		return s, nil
	}
	return "", fmt.Errorf("callback: %s callback has no challenge", c.ID())
}

// Handler answers callbacks. Handle fills in the input of cb and returns
// true if it recognises the callback, or returns false and leaves cb alone
// if it does not. An error means the callback was recognised but could not
// be answered.
type Handler interface {
	Handle(cb *Callback) (handled bool, err error)
}

// SigningHandler is a [Handler] whose answers are signed with a private key.
// When such a handler answered a callback, AM may restrict the session it
// issues to that key (a proof-of-possession session) and require every
// later request of the session to be signed with it; see [SignRequest].
// [AuthenticateHandler] and [RegisterHandler] implement it.
type SigningHandler interface {
	Handler
	// SigningKey returns the key the handler signs with.
	SigningKey() crypto.Signer
}

// NameHandler answers the NameCallback of a Username Collector node.
type NameHandler struct {
	// Name is the user name (the identity's ID).
	Name string
}

// Handle implements [Handler].
func (h NameHandler) Handle(cb *Callback) (bool, error) {
	return answerInput(cb, TypeNameCallback, h.Name)
}

// PasswordHandler answers the PasswordCallback of a Password Collector node.
type PasswordHandler struct {
	// Password is the identity's password.
	Password string
}

// Handle implements [Handler].
func (h PasswordHandler) Handle(cb *Callback) (bool, error) {
	return answerInput(cb, TypePasswordCallback, h.Password)
}

// answerInput puts value in the input of cb if cb is of type typ.
func answerInput(cb *Callback, typ, value string) (bool, error) {
	if cb == nil || cb.Type != typ {
		return false, nil
	}
	if err := cb.needInput(); err != nil {
		return true, err
	}
	cb.SetInput(value)
	return true, nil
}

// AuthenticateHandler answers the callbacks of AM's Authenticate Thing
// node: [IDPoPAuthentication] with a proof-of-possession JWT and
// [IDClientAssertion] with a client-assertion JWT, both signed with Key.
//
// The PoP JWT has the protected header {alg, typ: "JWT"} and the claims
// sub (ThingID), aud (Audience), iat, exp (iat + 5 minutes), nonce (AM's
// challenge) and cnf {kid: KeyID}. The client assertion has the header
// {alg, kid: KeyID, typ: "JWT"} and the claims sub and iss (ThingID), aud
// (AssertionAudience), iat, exp, a random jti and an empty cnf object. The claims
// returned by Claims are added at the top level of both and override
// claims of the same name.
type AuthenticateHandler struct {
	// Audience is the aud claim of the PoP JWT: the realm path of the
	// tree's realm ("/" for the top-level realm, "/a/b" for a sub-realm),
	// or one of the node's additional audience values. Required.
	Audience string

	// AssertionAudience is the aud claim of the client assertion: the
	// realm's OAuth 2.0 issuer (for example
	// https://am.example.com/am/oauth2/realms/root/realms/a), its token
	// endpoint, or one of the node's additional audience values.
	// If empty, Audience.
	AssertionAudience string

	// ThingID is the thing's identity ID (sub claim). Required.
	ThingID string

	// KeyID names Key among the thing's registered keys (cnf.kid, or the
	// kid header of a client assertion). If empty, Thumbprint(Key.Public()).
	KeyID string

	// Key signs the JWTs. Required. Any crypto.Signer whose public key
	// SigningAlgorithm accepts will do.
	Key crypto.Signer

	// Claims, if not nil, returns extra claims added to every JWT, such
	// as values a Scripted Decision node later reads.
	Claims func() map[string]any

	// Time returns the current time used for iat and exp. If nil, time.Now.
	Time func() time.Time
}

// Handle implements [Handler].
func (h AuthenticateHandler) Handle(cb *Callback) (bool, error) {
	id := cb.hiddenID()
	if id != IDPoPAuthentication && id != IDClientAssertion {
		return false, nil
	}
	if err := cb.needInput(); err != nil {
		return true, err
	}
	kid, err := checkSigner(h.Key, h.KeyID)
	if err != nil {
		return true, err
	}
	if h.ThingID == "" {
		return true, errors.New("callback: no thing ID")
	}
	iat := now(h.Time)
	var (
		claims  map[string]any
		headers = map[jose.HeaderKey]any{jose.HeaderType: "JWT"}
	)
	if id == IDPoPAuthentication {
		if h.Audience == "" {
			return true, errors.New("callback: no audience")
		}
		challenge, err := cb.challenge()
		if err != nil {
			return true, err
		}
		claims = baseClaims(h.ThingID, h.Audience, iat)
		claims["nonce"] = challenge
		claims["cnf"] = map[string]any{"kid": kid}
	} else {
		aud := h.AssertionAudience
		if aud == "" {
			aud = h.Audience
		}
		if aud == "" {
			return true, errors.New("callback: no audience")
		}
		claims = baseClaims(h.ThingID, aud, iat)
		claims["iss"] = h.ThingID
		claims["cnf"] = map[string]any{}
		// A unique jti (RFC 7523 §3), so that AM can refuse a replayed
		// assertion; iot-edge sends none.
		var jti [16]byte
		if _, err := rand.Read(jti[:]); err != nil {
			return true, err
		}
		claims["jti"] = base64.RawURLEncoding.EncodeToString(jti[:])
		headers["kid"] = kid
	}
	return true, answerJWT(cb, h.Key, headers, claims, h.Claims)
}

// SigningKey implements [SigningHandler].
func (h AuthenticateHandler) SigningKey() crypto.Signer { return h.Key }

// RegisterHandler answers the [IDPoPRegistration] callback of AM's
// Register Thing node with a registration JWT signed with Key.
//
// The JWT has the protected header {alg, typ: "JWT"} and the claims sub
// (ThingID), aud (Audience), iat, exp (iat + 5 minutes), nonce (AM's
// challenge), thingType and cnf {jwk, kid}, where jwk is Key's public key
// with kid, use "sig", alg and, when Certificates is not empty, x5c. The
// claims returned by Claims are added at the top level and override
// claims of the same name.
//
// Combine it with a [SoftwareStatementHandler] for the registration
// methods that also ask for a software statement.
type RegisterHandler struct {
	// Audience is the aud claim: the realm path of the tree's realm, or an
	// additional audience of a preceding Authenticate Thing node. Required.
	Audience string

	// ThingID is the thing's identity ID (sub claim). Required.
	ThingID string

	// ThingType is the thingType claim: ThingTypeDevice, ThingTypeService
	// or ThingTypeGateway. If empty, ThingTypeDevice.
	ThingType string

	// KeyID is the key's ID (cnf.kid and the kid of cnf.jwk).
	// If empty, Thumbprint(Key.Public()).
	KeyID string

	// Key signs the JWT; its public key is registered. Required.
	Key crypto.Signer

	// Certificates is the thing's certificate chain, leaf first, sent as
	// the x5c of cnf.jwk (needed by the "Proof of Possession &
	// Certificate" method). The leaf must certify Key. If nil, no x5c.
	Certificates []*x509.Certificate

	// Claims, if not nil, returns extra claims, for example
	// "thingProperties" for a claim-to-attribute mapping.
	Claims func() map[string]any

	// Time returns the current time used for iat and exp. If nil, time.Now.
	Time func() time.Time
}

// Handle implements [Handler].
func (h RegisterHandler) Handle(cb *Callback) (bool, error) {
	if cb.hiddenID() != IDPoPRegistration {
		return false, nil
	}
	if err := cb.needInput(); err != nil {
		return true, err
	}
	kid, err := checkSigner(h.Key, h.KeyID)
	if err != nil {
		return true, err
	}
	if h.ThingID == "" {
		return true, errors.New("callback: no thing ID")
	}
	if h.Audience == "" {
		return true, errors.New("callback: no audience")
	}
	challenge, err := cb.challenge()
	if err != nil {
		return true, err
	}
	alg, err := SigningAlgorithm(h.Key)
	if err != nil {
		return true, err
	}
	pub := h.Key.Public()
	if len(h.Certificates) > 0 {
		leaf := h.Certificates[0]
		if leaf == nil {
			return true, errors.New("callback: nil certificate")
		}
		eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !eq.Equal(leaf.PublicKey) {
			return true, errors.New("callback: the leaf certificate does not certify the signing key")
		}
	}
	jwk := jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig", Algorithm: string(alg), Certificates: h.Certificates}
	jwkJSON, err := jwk.MarshalJSON()
	if err != nil {
		return true, fmt.Errorf("callback: public key: %w", err)
	}
	thingType := h.ThingType
	if thingType == "" {
		thingType = ThingTypeDevice
	}
	claims := baseClaims(h.ThingID, h.Audience, now(h.Time))
	claims["nonce"] = challenge
	claims["thingType"] = thingType
	claims["cnf"] = map[string]any{"jwk": json.RawMessage(jwkJSON), "kid": kid}
	return true, answerJWT(cb, h.Key, map[jose.HeaderKey]any{jose.HeaderType: "JWT"}, claims, h.Claims)
}

// SigningKey implements [SigningHandler].
func (h RegisterHandler) SigningKey() crypto.Signer { return h.Key }

// SoftwareStatementHandler answers the [IDSoftwareStatement] callback of
// AM's Register Thing node with a software statement.
type SoftwareStatementHandler struct {
	// Statement is the software statement: a compact JWS signed by a
	// software publisher that AM knows, sent verbatim. Required.
	Statement string
}

// Handle implements [Handler].
func (h SoftwareStatementHandler) Handle(cb *Callback) (bool, error) {
	if cb.hiddenID() != IDSoftwareStatement {
		return false, nil
	}
	if err := cb.needInput(); err != nil {
		return true, err
	}
	if h.Statement == "" {
		return true, errors.New("callback: no software statement")
	}
	cb.SetInput(h.Statement)
	return true, nil
}

func now(f func() time.Time) time.Time {
	if f != nil {
		return f()
	}
	return time.Now()
}

func baseClaims(sub, aud string, t time.Time) map[string]any {
	iat := t.Unix()
	return map[string]any{
		"sub": sub,
		"aud": aud,
		"iat": iat,
		"exp": iat + int64(popLifetime/time.Second),
	}
}

// answerJWT adds extra's claims (nil: none) to claims, signs them with
// key under headers and puts the JWT in cb's input.
func answerJWT(cb *Callback, key crypto.Signer, headers map[jose.HeaderKey]any, claims map[string]any, extra func() map[string]any) error {
	mergeClaims(claims, extra)
	tok, err := signJWT(key, headers, claims)
	if err != nil {
		return err
	}
	cb.SetInput(tok)
	return nil
}

func mergeClaims(claims map[string]any, extra func() map[string]any) {
	if extra == nil {
		return
	}
	for k, v := range extra() {
		claims[k] = v
	}
}

// checkSigner checks key and returns the key ID to use.
func checkSigner(key crypto.Signer, kid string) (string, error) {
	pub, err := publicKey(key)
	if err != nil {
		return "", err
	}
	if kid != "" {
		return kid, nil
	}
	return Thumbprint(pub)
}
