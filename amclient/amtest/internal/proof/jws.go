package proof

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/internal/jws"
)

// JWS is a parsed, not yet verified, compact JWS. The local AM parses JWS
// itself because signed requests carry an integer "nonce" in the protected
// header, which JOSE libraries that type "nonce" as a string refuse.
// Header and payload are both JSON objects that passed
// [strictjson.CheckObject].
type JWS struct {
	Header  map[string]json.RawMessage
	Alg     string
	Payload []byte
	signed  string // the signing input
	sig     []byte
}

// thingAlgorithms are the algorithms things may sign with (AM accepted all
// seven the SDK derives from key types, plus RSASSA-PKCS1-v1_5).
var thingAlgorithms = map[string]bool{
	"ES256": true, "ES384": true, "ES512": true, "EdDSA": true,
	"PS256": true, "PS384": true, "PS512": true, "RS256": true, "RS384": true, "RS512": true,
}

// ErrNotJWS is the error of a token that is not a compact JWS at all.
var ErrNotJWS = errors.New("not a compact JWS")

// Parse parses a compact JWS signed with one of the algorithms things may
// sign with, without verifying it.
func Parse(tok string) (*JWS, error) {
	// The module's one splitter: header and payload are each one JSON
	// object without duplicate member names ({"nonce":0,...,"nonce":1}
	// would mean one thing to this server and another to the next reader),
	// in canonical base64url.
	c, err := jws.Split(tok)
	if errors.Is(err, jws.ErrNotCompact) {
		return nil, ErrNotJWS
	}
	if err != nil {
		return nil, err
	}
	hb, pb, sig := c.Header, c.Payload, c.Signature
	j := &JWS{Payload: pb, signed: c.SigningInput, sig: sig}
	if err := json.Unmarshal(hb, &j.Header); err != nil || j.Header == nil {
		return nil, errors.New("JWS header is not a JSON object")
	}
	if err := json.Unmarshal(j.Header["alg"], &j.Alg); err != nil || j.Alg == "" {
		return nil, errors.New("JWS header has no alg")
	}
	if !thingAlgorithms[j.Alg] {
		return nil, fmt.Errorf("JWS algorithm %q is not accepted", j.Alg)
	}
	if _, ok := j.Header["crit"]; ok {
		return nil, errors.New("JWS has critical header parameters")
	}
	return j, nil
}

// HeaderString returns the header parameter name if it is a string, or "".
func (j *JWS) HeaderString(name string) string {
	var s string
	json.Unmarshal(j.Header[name], &s)
	return s
}

// Verify checks the signature with a public key (or a JWK holding one).
func (j *JWS) Verify(key any) error {
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
	switch j.Alg[2:] {
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
		if !strings.HasPrefix(j.Alg, "ES") {
			return fmt.Errorf("an EC key cannot verify %s", j.Alg)
		}
		size := (pub.Curve.Params().BitSize + 7) / 8
		want := map[string]int{"ES256": 32, "ES384": 48, "ES512": 66}[j.Alg]
		if size != want {
			return fmt.Errorf("%s needs a different curve than %s", j.Alg, pub.Curve.Params().Name)
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
		case strings.HasPrefix(j.Alg, "PS"):
			err = rsa.VerifyPSS(pub, h, digest(), j.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		case strings.HasPrefix(j.Alg, "RS"):
			err = rsa.VerifyPKCS1v15(pub, h, digest(), j.sig)
		default:
			return fmt.Errorf("an RSA key cannot verify %s", j.Alg)
		}
		if err != nil {
			return errors.New("signature does not verify")
		}
	case ed25519.PublicKey:
		if j.Alg != "EdDSA" {
			return fmt.Errorf("an Ed25519 key cannot verify %s", j.Alg)
		}
		if !ed25519.Verify(pub, []byte(j.signed), j.sig) {
			return errors.New("signature does not verify")
		}
	default:
		return fmt.Errorf("unsupported key type %T", key)
	}
	return nil
}

// PublicJWK returns the public part of k, or nil if k holds no usable public key.
func PublicJWK(k *jose.JSONWebKey) *jose.JSONWebKey {
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

// CheckCompactJSON checks that a compact JWS's header and payload are JSON
// objects without duplicate member names, for tokens parsed with go-jose
// (which, like encoding/json, keeps the last of two members).
func CheckCompactJSON(tok string) error {
	_, err := jws.Split(tok)
	if errors.Is(err, jws.ErrNotCompact) {
		return ErrNotJWS
	}
	return err
}
