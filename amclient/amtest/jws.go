package amtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/internal/jws"
)

const cryptoSHA256 = crypto.SHA256

// compactJWS is a parsed, not yet verified, compact JWS. The local AM
// parses JWS itself because signed requests carry an integer "nonce" in the
// protected header, which JOSE libraries that type "nonce" as a string
// refuse. Header and payload are both JSON objects that passed
// [strictjson.CheckObject].
type compactJWS struct {
	header  map[string]json.RawMessage
	alg     string
	payload []byte
	signed  string // the signing input
	sig     []byte
}

// thingAlgorithms are the algorithms things may sign with (AM accepted all
// seven the SDK derives from key types, plus RSASSA-PKCS1-v1_5).
var thingAlgorithms = map[string]bool{
	"ES256": true, "ES384": true, "ES512": true, "EdDSA": true,
	"PS256": true, "PS384": true, "PS512": true, "RS256": true, "RS384": true, "RS512": true,
}

var errNotJWS = errors.New("not a compact JWS")

func parseCompact(tok string) (*compactJWS, error) {
	// The module's one splitter: header and payload are each one JSON
	// object without duplicate member names ({"nonce":0,...,"nonce":1}
	// would mean one thing to this server and another to the next reader),
	// in canonical base64url.
	c, err := jws.Split(tok)
	if errors.Is(err, jws.ErrNotCompact) {
		return nil, errNotJWS
	}
	if err != nil {
		return nil, err
	}
	hb, pb, sig := c.Header, c.Payload, c.Signature
	j := &compactJWS{payload: pb, signed: c.SigningInput, sig: sig}
	if err := json.Unmarshal(hb, &j.header); err != nil || j.header == nil {
		return nil, errors.New("JWS header is not a JSON object")
	}
	if err := json.Unmarshal(j.header["alg"], &j.alg); err != nil || j.alg == "" {
		return nil, errors.New("JWS header has no alg")
	}
	if !thingAlgorithms[j.alg] {
		return nil, fmt.Errorf("JWS algorithm %q is not accepted", j.alg)
	}
	if _, ok := j.header["crit"]; ok {
		return nil, errors.New("JWS has critical header parameters")
	}
	return j, nil
}

func (j *compactJWS) headerString(name string) string {
	var s string
	json.Unmarshal(j.header[name], &s)
	return s
}

// verify checks the signature with a public key (or a JWK holding one).
func (j *compactJWS) verify(key any) error {
	if k, ok := key.(*jose.JSONWebKey); ok {
		if k == nil {
			return errors.New("no key")
		}
		key = k.Key
	}
	if k, ok := key.(jose.JSONWebKey); ok {
		key = k.Key
	}
	var h crypto.Hash
	switch j.alg[2:] {
	case "256":
		h = crypto.SHA256
	case "384":
		h = crypto.SHA384
	case "512":
		h = crypto.SHA512
	}
	digest := func() []byte {
		w := h.New()
		w.Write([]byte(j.signed))
		return w.Sum(nil)
	}
	switch pub := key.(type) {
	case *ecdsa.PublicKey:
		if !strings.HasPrefix(j.alg, "ES") {
			return fmt.Errorf("an EC key cannot verify %s", j.alg)
		}
		size := (pub.Curve.Params().BitSize + 7) / 8
		want := map[string]int{"ES256": 32, "ES384": 48, "ES512": 66}[j.alg]
		if size != want {
			return fmt.Errorf("%s needs a different curve than %s", j.alg, pub.Curve.Params().Name)
		}
		if len(j.sig) != 2*size {
			return errors.New("bad ECDSA signature length")
		}
		r := new(big.Int).SetBytes(j.sig[:size])
		s := new(big.Int).SetBytes(j.sig[size:])
		if !ecdsa.Verify(pub, digest(), r, s) {
			return errors.New("signature does not verify")
		}
	case *rsa.PublicKey:
		var err error
		switch {
		case strings.HasPrefix(j.alg, "PS"):
			err = rsa.VerifyPSS(pub, h, digest(), j.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		case strings.HasPrefix(j.alg, "RS"):
			err = rsa.VerifyPKCS1v15(pub, h, digest(), j.sig)
		default:
			return fmt.Errorf("an RSA key cannot verify %s", j.alg)
		}
		if err != nil {
			return errors.New("signature does not verify")
		}
	case ed25519.PublicKey:
		if j.alg != "EdDSA" {
			return fmt.Errorf("an Ed25519 key cannot verify %s", j.alg)
		}
		if !ed25519.Verify(pub, []byte(j.signed), j.sig) {
			return errors.New("signature does not verify")
		}
	default:
		return fmt.Errorf("unsupported key type %T", key)
	}
	return nil
}

// publicJWK returns the public part of k, or nil if k holds no usable public key.
func publicJWK(k *jose.JSONWebKey) *jose.JSONWebKey {
	if k == nil || k.Key == nil {
		return nil
	}
	p := k.Public()
	if !p.Valid() {
		return nil
	}
	switch p.Key.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
		return &p
	}
	return nil
}

// audience is a JWT aud claim: one string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = l
	return nil
}

func (a audience) containsAny(vals ...string) bool {
	for _, x := range a {
		for _, v := range vals {
			if x == v {
				return true
			}
		}
	}
	return false
}

// numericDate is a JWT NumericDate (seconds, possibly fractional).
type numericDate struct {
	set bool
	t   time.Time
}

func (n *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return errors.New("a time claim is not a NumericDate")
	}
	sec, frac := math.Modf(f)
	n.set, n.t = true, time.Unix(int64(sec), int64(frac*1e9))
	return nil
}

// cnfClaim is the RFC 7800 confirmation claim. The JWK is kept raw: it is
// parsed by parseConfirmationKey, which reads x5c only where it matters.
type cnfClaim struct {
	KID string          `json:"kid,omitempty"`
	JWK json.RawMessage `json:"jwk,omitempty"`
}

// thingClaims are the claims of the JWTs things present to the IoT nodes.
type thingClaims struct {
	Sub, Iss, Nonce, Jti, ThingType string
	Aud                             audience
	Iat, Exp, Nbf                   numericDate
	Cnf                             *cnfClaim
	// all holds every claim, custom ones included, as decoded JSON.
	all map[string]any
}

// decodeClaims reads the claims by their exact names (encoding/json would
// also match "SUB" or "Nonce" to the standard fields).
func decodeClaims(payload []byte) (*thingClaims, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil || raw == nil {
		return nil, errors.New("JWT claims are not a JSON object")
	}
	c := &thingClaims{}
	for name, dst := range map[string]any{"sub": &c.Sub, "iss": &c.Iss, "nonce": &c.Nonce, "jti": &c.Jti,
		"thingType": &c.ThingType, "aud": &c.Aud, "iat": &c.Iat, "exp": &c.Exp, "nbf": &c.Nbf, "cnf": &c.Cnf} {
		v, ok := raw[name]
		if !ok || string(v) == "null" {
			continue
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return nil, fmt.Errorf("JWT claim %s: %v", name, err)
		}
	}
	if err := json.Unmarshal(payload, &c.all); err != nil {
		return nil, errors.New("JWT claims are not a JSON object")
	}
	return c, nil
}

// parseConfirmationKey parses a public JWK. Certificates (x5c, standard
// base64 DER, leaf first; URL-safe base64 is tolerated) are returned apart,
// without requiring them to match the key: the caller checks that where
// the registration method relies on the certificate.
func parseConfirmationKey(raw json.RawMessage) (*jose.JSONWebKey, []*x509.Certificate, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, nil, errors.New("the JWK is not a JSON object")
	}
	var certs []*x509.Certificate
	if x5c, ok := m["x5c"]; ok {
		var texts []string
		if err := json.Unmarshal(x5c, &texts); err != nil {
			return nil, nil, errors.New("x5c is not an array of strings")
		}
		for i, t := range texts {
			der, err := base64.StdEncoding.DecodeString(t)
			if err != nil {
				der, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(t, "="))
			}
			if err != nil {
				return nil, nil, fmt.Errorf("x5c[%d] is not base64", i)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, nil, fmt.Errorf("x5c[%d]: %v", i, err)
			}
			certs = append(certs, cert)
		}
	}
	for _, k := range []string{"x5c", "x5t", "x5t#S256", "x5u"} {
		delete(m, k)
	}
	b, _ := json.Marshal(m)
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(b); err != nil {
		return nil, nil, fmt.Errorf("the JWK: %v", err)
	}
	if !k.IsPublic() {
		return nil, nil, errors.New("the JWK holds private key material")
	}
	pub := publicJWK(&k)
	if pub == nil {
		return nil, nil, errors.New("the JWK is not a usable signing key")
	}
	return pub, certs, nil
}

// parseKeysLenient parses a JWK set key by key, skipping keys it cannot use
// (symmetric keys, unknown curves), so that one odd key does not disable
// the others.
func parseKeysLenient(text string) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal([]byte(text), &set); err != nil {
		return nil, err
	}
	if set.Keys == nil {
		return nil, errors.New(`not a JWK set: no "keys" array`)
	}
	var out []jose.JSONWebKey
	for _, raw := range *set.Keys {
		if k, _, err := parseConfirmationKey(raw); err == nil {
			out = append(out, *k)
		}
	}
	return out, nil
}

// checkTimes validates exp (required if requireExp), iat and nbf at now with skew.
func checkTimes(c *thingClaims, now time.Time, skew time.Duration, requireExp, requireIat bool) error {
	if requireExp && !c.Exp.set {
		return errors.New("exp is missing")
	}
	if requireIat && !c.Iat.set {
		return errors.New("iat is missing")
	}
	if c.Exp.set && !now.Before(c.Exp.t.Add(skew)) {
		return errors.New("the JWT has expired")
	}
	if c.Iat.set && c.Iat.t.After(now.Add(skew)) {
		return errors.New("the JWT is issued in the future")
	}
	if c.Nbf.set && c.Nbf.t.After(now.Add(skew)) {
		return errors.New("the JWT is not valid yet")
	}
	if c.Exp.set && c.Iat.set && c.Exp.t.Before(c.Iat.t) {
		return errors.New("the JWT expires before it was issued")
	}
	return nil
}

// checkLifetime refuses a JWT that lives longer than max: exp − iat, or,
// without iat, exp − now less the skew the device's clock may be ahead.
// max ≤ 0 means no ceiling.
func checkLifetime(c *thingClaims, now time.Time, max, skew time.Duration) error {
	if max <= 0 || !c.Exp.set {
		return nil
	}
	if c.Iat.set {
		if life := c.Exp.t.Sub(c.Iat.t); life > max {
			return fmt.Errorf("the JWT lives %s (exp − iat), longer than the %s allowed", life, max)
		}
		return nil
	}
	if left := c.Exp.t.Sub(now); left > max+skew {
		return fmt.Errorf("the JWT has no iat and expires in %s, later than the %s allowed", left.Truncate(time.Second), max)
	}
	return nil
}

// timeClaims reads only the time claims (exp, nbf, iat) of a JSON object,
// by their exact names: a signed request's payload is a request body, whose
// other members are not JWT claims.
func timeClaims(payload []byte) (*thingClaims, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil || raw == nil {
		return nil, errors.New("the payload is not a JSON object")
	}
	c := &thingClaims{}
	for name, dst := range map[string]*numericDate{"iat": &c.Iat, "exp": &c.Exp, "nbf": &c.Nbf} {
		if v, ok := raw[name]; ok && string(v) != "null" {
			if err := json.Unmarshal(v, dst); err != nil {
				return nil, fmt.Errorf("claim %s: %v", name, err)
			}
		}
	}
	return c, nil
}

// checkCompactJSON checks that a compact JWS's header and payload are JSON
// objects without duplicate member names, for tokens parsed with go-jose
// (which, like encoding/json, keeps the last of two members).
func checkCompactJSON(tok string) error {
	_, err := jws.Split(tok)
	if errors.Is(err, jws.ErrNotCompact) {
		return errNotJWS
	}
	return err
}

// parseJWKSet checks that text is a JSON Web Key set (an object with a
// keys array) and returns its usable keys.
func parseJWKSet(text string) (jose.JSONWebKeySet, error) {
	keys, err := parseKeysLenient(text)
	return jose.JSONWebKeySet{Keys: keys}, err
}
