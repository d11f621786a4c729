// Package jwttool makes the JWTs and JWK sets that the command-line tools
// auth-jwt, things-jwt and pem-to-jwks print, for talking to AM by hand
// (curl) the way a thing would.
//
// # What each function makes
//
//   - [AuthJWT]: the JWT a thing puts into the hidden-value callback of AM's
//     Authenticate Thing node (proof of possession, cnf.kid) or, given
//     a certificate, of its Register Thing node (cnf.jwk with x5c, thingType).
//   - [ThingsJWT]: the compact JWS that carries the body of a request made
//     with a restricted (proof-of-possession) SSO token, for example
//     POST /json/things/*?_action=get_access_token.
//   - [PEMToJWKS]: the public JWK set of a key, for an identity's thingKeys.
//
// The JWS algorithm follows from the key as in [callback.SigningAlgorithm]:
// ES256/384/512 for ECDSA P-256/384/521, PS256/384/512 for 2048/3072/4096-bit
// RSA, EdDSA for Ed25519.
//
// # Usage
//
//	key, err := jwttool.ReadKey("resources/eckey1.key.pem")
//	if err != nil {
//		return err
//	}
//	jwt, err := jwttool.AuthJWT(jwttool.AuthJWTOptions{
//		Subject:   "manual-thing",
//		Audience:  "/",
//		Challenge: challenge, // the callback's value
//		Key:       key,
//		KeyID:     kid,
//	})
//
// The package is shared by the three commands in cmd/ and is not API.
package jwttool

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/internal/pemkey"
)

const (
	// IoTEdgeKeyID is the key ID iot-edge's tools use when none is given.
	// Ours default to the key's thumbprint instead, the key ID that the
	// SDK, the gateway and the README register; give this one explicitly
	// (--kid pop.cnf) for identities registered with iot-edge's tools.
	IoTEdgeKeyID = "pop.cnf"
	// DefaultAPIVersion is the api header ThingsJWT uses when none is
	// given: the Accept-API-Version of the things endpoint.
	DefaultAPIVersion = "protocol=2.0,resource=1.0"
	// Lifetime is the time between the iat and exp claims of AuthJWT.
	Lifetime = 5 * time.Minute
)

// keyID returns kid, or the thumbprint of pub if kid is empty.
func keyID(kid string, pub crypto.PublicKey) (string, error) {
	if kid != "" {
		return kid, nil
	}
	tp, err := callback.Thumbprint(pub)
	if err != nil {
		return "", fmt.Errorf("jwttool: key ID: %w", err)
	}
	return tp, nil
}

// ReadKey reads the private key of a PEM file, as [pemkey.ParsePrivateKey]
// does. Errors name the file.
func ReadKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := pemkey.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// ReadCertificates reads the certificates of a PEM file, leaf first, as
// [pemkey.ParseCertificates] does. Errors name the file.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := pemkey.ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// AuthJWTOptions configures [AuthJWT].
type AuthJWTOptions struct {
	// Subject is the sub claim: the thing's identity ID. Required.
	Subject string
	// Audience is the aud claim, a single string: usually the realm
	// path ("/"). Required.
	Audience string
	// Challenge is the nonce claim: the value of AM's callback. Required.
	Challenge string
	// Key signs the JWT. Required: an *ecdsa.PrivateKey, *rsa.PrivateKey
	// or ed25519.PrivateKey that callback.SigningAlgorithm accepts.
	Key crypto.Signer
	// KeyID is the key ID: cnf.kid, or the kid of cnf.jwk when
	// Certificates is set. If empty, the key's thumbprint
	// (callback.Thumbprint).
	KeyID string
	// Certificates, if not empty, makes a registration JWT: the chain,
	// leaf first, is sent as the x5c of cnf.jwk. The leaf must certify Key.
	Certificates []*x509.Certificate
	// ThingType is the thingType claim of a registration JWT:
	// callback.ThingTypeDevice, ThingTypeService or ThingTypeGateway.
	// It is checked but unused without Certificates. If empty, device.
	ThingType string
	// Time returns the current time, used for iat and exp. If nil, time.Now.
	Time func() time.Time
}

// authClaims are the claims of AuthJWT, in the order they are written.
type authClaims struct {
	Sub       string  `json:"sub"`
	Aud       string  `json:"aud"`
	IAT       int64   `json:"iat"`
	Exp       int64   `json:"exp"`
	Nonce     string  `json:"nonce"`
	Cnf       authCnf `json:"cnf"`
	ThingType string  `json:"thingType,omitempty"`
}

type authCnf struct {
	KID string           `json:"kid,omitempty"`
	JWK *jose.JSONWebKey `json:"jwk,omitempty"`
}

// AuthJWT returns a compact JWS for the callbacks of AM's Authenticate
// Thing and Register Thing nodes, as iot-edge's auth-jwt tool makes it.
//
// The protected header holds only alg (no typ, no kid). The claims are, in
// this order: sub, aud (a string), iat, exp (iat + [Lifetime]), nonce, and
//
//   - without Certificates: cnf {"kid": KeyID}, an authentication JWT;
//   - with Certificates: cnf {"jwk": {use "sig", kty, kid KeyID, the public
//     key's members, x5c}} (no cnf.kid) and thingType, a registration JWT.
func AuthJWT(opts AuthJWTOptions) (string, error) {
	switch {
	case opts.Subject == "":
		return "", errors.New("jwttool: the subject is empty")
	case opts.Audience == "":
		return "", errors.New("jwttool: the audience is empty")
	case opts.Challenge == "":
		return "", errors.New("jwttool: the challenge is empty")
	}
	thingType := opts.ThingType
	switch thingType {
	case "":
		thingType = callback.ThingTypeDevice
	case callback.ThingTypeDevice, callback.ThingTypeService, callback.ThingTypeGateway:
	default:
		return "", fmt.Errorf("jwttool: thing type %q is not device, service or gateway", thingType)
	}
	if opts.Key == nil {
		return "", errors.New("jwttool: no key")
	}
	alg, err := algorithm(opts.Key)
	if err != nil {
		return "", err
	}
	kid, err := keyID(opts.KeyID, opts.Key.Public())
	if err != nil {
		return "", err
	}
	now := time.Now
	if opts.Time != nil {
		now = opts.Time
	}
	iat := now().Unix()
	claims := authClaims{
		Sub:   opts.Subject,
		Aud:   opts.Audience,
		IAT:   iat,
		Exp:   iat + int64(Lifetime/time.Second),
		Nonce: opts.Challenge,
		Cnf:   authCnf{KID: kid},
	}
	if len(opts.Certificates) > 0 {
		leaf := opts.Certificates[0]
		if pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(opts.Key.Public()) {
			return "", fmt.Errorf("jwttool: the certificate %q does not certify the key", leaf.Subject.String())
		}
		claims.Cnf = authCnf{JWK: &jose.JSONWebKey{
			Key:          opts.Key.Public(),
			KeyID:        kid,
			Use:          "sig",
			Certificates: opts.Certificates,
		}}
		claims.ThingType = thingType
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("jwttool: claims: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: opts.Key}, nil)
	if err != nil {
		return "", fmt.Errorf("jwttool: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("jwttool: sign: %w", err)
	}
	return obj.CompactSerialize()
}

// algorithm returns the JWS algorithm for key, which must be an in-memory
// key go-jose can sign with (all that pemkey returns).
func algorithm(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch key.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
	case nil:
		return "", errors.New("jwttool: no key")
	default:
		return "", fmt.Errorf("jwttool: unsupported key type %T", key)
	}
	alg, err := callback.SigningAlgorithm(key)
	if err != nil {
		return "", fmt.Errorf("jwttool: %w", err)
	}
	return alg, nil
}

// ThingsJWTOptions configures [ThingsJWT].
type ThingsJWTOptions struct {
	// URL is the aud header: the exact URL of the request, query
	// included. Required.
	URL string
	// Key signs the JWS: the key the session is bound to. Required, as for
	// AuthJWTOptions.Key.
	Key crypto.Signer
	// Nonce is the nonce header, a JSON integer that must be larger than
	// the session's previous one. If negative, the current Unix time.
	Nonce int64
	// APIVersion is the api header: the request's Accept-API-Version.
	// If empty, DefaultAPIVersion.
	APIVersion string
	// Claims is the payload: a JSON object, for example
	// {"csrf":"<tokenId>","scope":["publish"]}. It is used as is, compacted,
	// with its members in their order; nothing is added. If empty, {}.
	Claims []byte
	// Time returns the current time, used when Nonce is negative.
	// If nil, time.Now.
	Time func() time.Time
}

// ThingsJWT returns the compact JWS that carries the body of a request made
// with a restricted AM session, as iot-edge's things-jwt tool makes it: the
// protected header is {alg, api, aud, nonce} and the payload is Claims.
// It signs with [callback.SignRequest].
func ThingsJWT(opts ThingsJWTOptions) (string, error) {
	if opts.URL == "" {
		return "", errors.New("jwttool: the URL is empty")
	}
	if _, err := algorithm(opts.Key); err != nil {
		return "", err
	}
	claims := opts.Claims
	if len(bytes.TrimSpace(claims)) == 0 {
		claims = []byte("{}")
	}
	var body bytes.Buffer
	if err := json.Compact(&body, claims); err != nil {
		return "", fmt.Errorf("jwttool: the claims are not valid JSON: %w", err)
	}
	if body.Bytes()[0] != '{' {
		return "", fmt.Errorf("jwttool: the claims must be a JSON object, not %s", jsonKind(body.Bytes()[0]))
	}
	api := opts.APIVersion
	if api == "" {
		api = DefaultAPIVersion
	}
	nonce := opts.Nonce
	if nonce < 0 {
		now := time.Now
		if opts.Time != nil {
			now = opts.Time
		}
		nonce = now().Unix()
	}
	jws, err := callback.SignRequest(opts.Key, opts.URL, api, nonce, json.RawMessage(body.Bytes()))
	if err != nil {
		return "", fmt.Errorf("jwttool: %w", err)
	}
	return jws, nil
}

// jsonKind names the kind of JSON value that starts with c.
func jsonKind(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// PEMToJWKSOptions configures [PEMToJWKS].
type PEMToJWKSOptions struct {
	// Key is the key whose public half is written. Required.
	Key crypto.Signer
	// KeyID is the kid of the JWK. If empty, the key's padded RFC 7638
	// thumbprint (callback.Thumbprint), the kid AM and the SDK use.
	KeyID string
	// ThumbprintKeyID, if true, uses the thumbprint even if KeyID is set.
	ThumbprintKeyID bool
}

// PEMToJWKS returns the public JWK set of a key, as iot-edge's pem-to-jwks
// tool makes it: {"keys":[jwk]} where jwk's members are, in this order,
// use ("sig"), kty, kid, then crv, x, y for EC; n, e for RSA; crv, x for
// Ed25519. There is no alg and no trailing newline.
func PEMToJWKS(opts PEMToJWKSOptions) ([]byte, error) {
	if opts.Key == nil {
		return nil, errors.New("jwttool: no key")
	}
	pub := opts.Key.Public()
	kid := opts.KeyID
	if opts.ThumbprintKeyID {
		kid = ""
	}
	kid, err := keyID(kid, pub)
	if err != nil {
		return nil, err
	}
	jwks := struct {
		Keys []jose.JSONWebKey `json:"keys"`
	}{[]jose.JSONWebKey{{Key: pub, KeyID: kid, Use: "sig"}}}
	b, err := json.Marshal(jwks)
	if err != nil {
		return nil, fmt.Errorf("jwttool: %w", err)
	}
	return b, nil
}
