package callback

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha256" // SHA-256 for ES256, PS256 and thumbprints
	_ "crypto/sha512" // SHA-384 and SHA-512 for ES384/512, PS384/512
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/go-jose/go-jose/v4"
)

// publicKey returns key's public key, or an error for a nil key (including
// a typed nil pointer whose Public method panics).
func publicKey(key crypto.Signer) (pub crypto.PublicKey, err error) {
	if key == nil {
		return nil, ErrNoKey
	}
	defer func() {
		if recover() != nil {
			pub, err = nil, ErrNoKey
		}
	}()
	pub = key.Public()
	if pub == nil {
		return nil, ErrNoKey
	}
	return pub, nil
}

// SigningAlgorithm returns the JWS algorithm the handlers and [SignRequest]
// use for key, derived from its public key as the iot-edge SDK does:
// ECDSA P-256, P-384 and P-521 give ES256, ES384 and ES512; Ed25519 gives
// EdDSA; RSA with a 2048-, 3072- or 4096-bit modulus gives PS256, PS384
// and PS512 (RSASSA-PSS, salt length equal to the hash length). Other keys
// are refused.
func SigningAlgorithm(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	pub, err := publicKey(key)
	if err != nil {
		return "", err
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
		return "", fmt.Errorf("callback: unsupported ECDSA curve %s", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return jose.EdDSA, nil
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return jose.PS256, nil
		case 3072:
			return jose.PS384, nil
		case 4096:
			return jose.PS512, nil
		}
		return "", fmt.Errorf("callback: unsupported RSA key size %d bits (want 2048, 3072 or 4096)", k.N.BitLen())
	}
	return "", fmt.Errorf("callback: unsupported key type %T", pub)
}

// Thumbprint returns the RFC 7638 SHA-256 JWK thumbprint of pub in
// base64url encoding with padding (44 characters ending in "="), the key
// ID format of the iot-edge SDK and gateway that AM compares exactly. A
// private key (anything with a Public method) is thumbprinted by its
// public half.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	if pub == nil {
		return "", errors.New("callback: thumbprint of nil key")
	}
	if k, ok := pub.(interface{ Public() crypto.PublicKey }); ok {
		pub = k.Public()
	}
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("callback: thumbprint: %w", err)
	}
	return base64.URLEncoding.EncodeToString(sum), nil
}

// SignRequest returns the compact JWS that carries the body of a request
// made with a proof-of-possession (restricted) AM session. Its protected
// header is {alg, aud, api, nonce}: aud is the exact request URL, query
// included; api is the request's Accept-API-Version value; nonce is the
// session's request counter as a JSON integer. There is no kid and no typ.
// The payload is payload marshalled as JSON (nil gives {}); it must
// already hold the session token as "csrf".
func SignRequest(key crypto.Signer, aud, api string, nonce int64, payload any) (string, error) {
	var body []byte
	if payload == nil {
		body = []byte("{}")
	} else {
		var err error
		if body, err = json.Marshal(payload); err != nil {
			return "", fmt.Errorf("callback: request payload: %w", err)
		}
	}
	return sign(key, map[jose.HeaderKey]any{"aud": aud, "api": api, "nonce": nonce}, body)
}

// signJWT signs claims as a compact JWS with the given extra headers.
func signJWT(key crypto.Signer, headers map[jose.HeaderKey]any, claims map[string]any) (string, error) {
	body, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("callback: claims: %w", err)
	}
	return sign(key, headers, body)
}

func sign(key crypto.Signer, headers map[jose.HeaderKey]any, payload []byte) (string, error) {
	alg, err := SigningAlgorithm(key)
	if err != nil {
		return "", err
	}
	var sk any
	switch k := key.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
		sk = k
	default:
		sk = &opaqueSigner{key: key, pub: key.Public(), alg: alg}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: sk}, &jose.SignerOptions{ExtraHeaders: headers})
	if err != nil {
		return "", fmt.Errorf("callback: signer: %w", err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("callback: sign: %w", err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("callback: sign: %w", err)
	}
	return out, nil
}

// opaqueSigner adapts any crypto.Signer (an HSM, a TPM, a remote signer)
// to go-jose: it hashes the signing input itself, asks the key for a
// signature and converts ECDSA's ASN.1 signatures to the fixed-size r||s
// form JWS uses.
type opaqueSigner struct {
	key crypto.Signer
	pub crypto.PublicKey
	alg jose.SignatureAlgorithm
}

var _ jose.OpaqueSigner = (*opaqueSigner)(nil)

// Public implements jose.OpaqueSigner. The key carries no kid, so go-jose
// adds no kid header of its own.
func (o *opaqueSigner) Public() *jose.JSONWebKey {
	return &jose.JSONWebKey{Key: o.pub, Algorithm: string(o.alg), Use: "sig"}
}

// Algs implements jose.OpaqueSigner.
func (o *opaqueSigner) Algs() []jose.SignatureAlgorithm { return []jose.SignatureAlgorithm{o.alg} }

// SignPayload implements jose.OpaqueSigner.
func (o *opaqueSigner) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != o.alg {
		return nil, jose.ErrUnsupportedAlgorithm
	}
	if alg == jose.EdDSA {
		return o.key.Sign(rand.Reader, payload, crypto.Hash(0))
	}
	var h crypto.Hash
	switch alg {
	case jose.ES256, jose.PS256:
		h = crypto.SHA256
	case jose.ES384, jose.PS384:
		h = crypto.SHA384
	case jose.ES512, jose.PS512:
		h = crypto.SHA512
	default:
		return nil, jose.ErrUnsupportedAlgorithm
	}
	w := h.New()
	w.Write(payload)
	digest := w.Sum(nil)
	switch alg {
	case jose.PS256, jose.PS384, jose.PS512:
		return o.key.Sign(rand.Reader, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
	}
	der, err := o.key.Sign(rand.Reader, digest, h)
	if err != nil {
		return nil, err
	}
	pub, ok := o.pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("callback: %s needs an ECDSA key, not %T", alg, o.pub)
	}
	return ecdsaRawSignature(der, (pub.Curve.Params().BitSize+7)/8)
}

// ecdsaRawSignature converts an ASN.1 DER ECDSA signature to r||s, each
// left-padded to size bytes (RFC 7518 §3.4).
func ecdsaRawSignature(der []byte, size int) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) != 0 || sig.R == nil || sig.S == nil || sig.R.Sign() <= 0 || sig.S.Sign() <= 0 {
		return nil, errors.New("callback: the key returned a malformed ECDSA signature")
	}
	if sig.R.BitLen() > size*8 || sig.S.BitLen() > size*8 {
		return nil, errors.New("callback: the key returned an ECDSA signature too large for its curve")
	}
	out := make([]byte, 2*size)
	sig.R.FillBytes(out[:size])
	sig.S.FillBytes(out[size:])
	return out, nil
}
