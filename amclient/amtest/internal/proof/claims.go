package proof

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Audience is a JWT aud claim: one string or an array of strings.
type Audience []string

func (a *Audience) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*a = Audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = l
	return nil
}

// ContainsAny reports whether the audience holds one of vals.
func (a Audience) ContainsAny(vals ...string) bool {
	for _, x := range a {
		for _, v := range vals {
			if x == v {
				return true
			}
		}
	}
	return false
}

// NumericDate is a JWT NumericDate (seconds, possibly fractional). Set
// says whether the claim was present.
type NumericDate struct {
	Set  bool
	Time time.Time
}

func (n *NumericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return errors.New("a time claim is not a NumericDate")
	}
	sec, frac := math.Modf(f)
	n.Set, n.Time = true, time.Unix(int64(sec), int64(frac*1e9))
	return nil
}

// Confirmation is the RFC 7800 confirmation claim. The JWK is kept raw: it
// is parsed by [ParseConfirmationKey], which reads x5c only where it
// matters.
type Confirmation struct {
	KID string          `json:"kid,omitempty"`
	JWK json.RawMessage `json:"jwk,omitempty"`
}

// Claims are the claims of the JWTs things present to the IoT nodes.
type Claims struct {
	Sub, Iss, Nonce, Jti, ThingType string
	Aud                             Audience
	Iat, Exp, Nbf                   NumericDate
	Cnf                             *Confirmation
	// all holds every claim, custom ones included, as decoded JSON.
	all map[string]any
}

// All returns every claim, custom ones included, as decoded JSON (nil for
// claims from [TimeClaims]).
func (c *Claims) All() map[string]any { return c.all }

// DecodeClaims reads the claims by their exact names (encoding/json would
// also match "SUB" or "Nonce" to the standard fields).
func DecodeClaims(payload []byte) (*Claims, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil || raw == nil {
		return nil, errors.New("JWT claims are not a JSON object")
	}
	c := &Claims{}
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

// ParseConfirmationKey parses a public JWK. Certificates (x5c, standard
// base64 DER, leaf first; URL-safe base64 is tolerated) are returned apart,
// without requiring them to match the key: the caller checks that where
// the registration method relies on the certificate.
func ParseConfirmationKey(raw json.RawMessage) (*jose.JSONWebKey, []*x509.Certificate, error) {
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
	pub := PublicJWK(&k)
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
		if k, _, err := ParseConfirmationKey(raw); err == nil {
			out = append(out, *k)
		}
	}
	return out, nil
}

// ParseJWKSet checks that text is a JSON Web Key set (an object with a
// keys array) and returns its usable keys.
func ParseJWKSet(text string) (jose.JSONWebKeySet, error) {
	keys, err := parseKeysLenient(text)
	return jose.JSONWebKeySet{Keys: keys}, err
}

// CheckTimes validates exp (required if requireExp), iat and nbf at now with skew.
func CheckTimes(c *Claims, now time.Time, skew time.Duration, requireExp, requireIat bool) error {
	if requireExp && !c.Exp.Set {
		return errors.New("exp is missing")
	}
	if requireIat && !c.Iat.Set {
		return errors.New("iat is missing")
	}
	if c.Exp.Set && !now.Before(c.Exp.Time.Add(skew)) {
		return errors.New("the JWT has expired")
	}
	if c.Iat.Set && c.Iat.Time.After(now.Add(skew)) {
		return errors.New("the JWT is issued in the future")
	}
	if c.Nbf.Set && c.Nbf.Time.After(now.Add(skew)) {
		return errors.New("the JWT is not valid yet")
	}
	if c.Exp.Set && c.Iat.Set && c.Exp.Time.Before(c.Iat.Time) {
		return errors.New("the JWT expires before it was issued")
	}
	return nil
}

// CheckLifetime refuses a JWT that lives longer than max: exp − iat, or,
// without iat, exp − now less the skew the device's clock may be ahead.
// max ≤ 0 means no ceiling.
func CheckLifetime(c *Claims, now time.Time, max, skew time.Duration) error {
	if max <= 0 || !c.Exp.Set {
		return nil
	}
	if c.Iat.Set {
		if life := c.Exp.Time.Sub(c.Iat.Time); life > max {
			return fmt.Errorf("the JWT lives %s (exp − iat), longer than the %s allowed", life, max)
		}
		return nil
	}
	if left := c.Exp.Time.Sub(now); left > max+skew {
		return fmt.Errorf("the JWT has no iat and expires in %s, later than the %s allowed", left.Truncate(time.Second), max)
	}
	return nil
}

// TimeClaims reads only the time claims (exp, nbf, iat) of a JSON object,
// by their exact names: a signed request's payload is a request body, whose
// other members are not JWT claims.
func TimeClaims(payload []byte) (*Claims, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil || raw == nil {
		return nil, errors.New("the payload is not a JSON object")
	}
	c := &Claims{}
	for name, dst := range map[string]*NumericDate{"iat": &c.Iat, "exp": &c.Exp, "nbf": &c.Nbf} {
		if v, ok := raw[name]; ok && string(v) != "null" {
			if err := json.Unmarshal(v, dst); err != nil {
				return nil, fmt.Errorf("claim %s: %v", name, err)
			}
		}
	}
	return c, nil
}
