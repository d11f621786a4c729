// Package jwstest checks, in tests, the compact JWSs that package jwttool
// and the commands in cmd/ built on it print. It verifies signatures with
// the standard library alone: go-jose cannot parse the integer nonce
// header of jwttool.ThingsJWT, and a test should not trust the library
// that signed.
//
// # Usage
//
//	header, payload := jwstest.Split(t, out, &key.PublicKey)
//	if header != `{"alg":"ES256"}` {
//		t.Errorf("header = %s", header)
//	}
package jwstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
)

// Split verifies the compact JWS jws with pub and returns its decoded
// header and payload text. It stops the test unless jws has three
// base64url parts and a signature by pub with the algorithm its header
// names: ES256, ES384 or ES512 for a P-256, P-384 or P-521 key (r || s,
// each of the curve's size), PS256, PS384 or PS512, or EdDSA (Ed25519).
func Split(t testing.TB, jws string, pub crypto.PublicKey) (header, payload string) {
	t.Helper()
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWS", jws)
	}
	var dec [3][]byte
	for i, p := range parts {
		var err error
		if dec[i], err = base64.RawURLEncoding.DecodeString(p); err != nil {
			t.Fatalf("part %d of %q: %v", i, jws, err)
		}
	}
	var h struct{ Alg string }
	if err := json.Unmarshal(dec[0], &h); err != nil {
		t.Fatalf("header %s: %v", dec[0], err)
	}
	if !verify(h.Alg, pub, []byte(parts[0]+"."+parts[1]), dec[2]) {
		t.Fatalf("the %s signature does not verify", h.Alg)
	}
	return string(dec[0]), string(dec[1])
}

var hashes = map[string]crypto.Hash{
	"ES256": crypto.SHA256, "ES384": crypto.SHA384, "ES512": crypto.SHA512,
	"PS256": crypto.SHA256, "PS384": crypto.SHA384, "PS512": crypto.SHA512,
}

func verify(alg string, pub crypto.PublicKey, input, sig []byte) bool {
	var digest []byte
	if h, ok := hashes[alg]; ok {
		w := h.New()
		w.Write(input)
		digest = w.Sum(nil)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		bits := k.Curve.Params().BitSize
		size := (bits + 7) / 8
		if alg != map[int]string{256: "ES256", 384: "ES384", 521: "ES512"}[bits] || len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k, digest, r, s)
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "PS") && digest != nil &&
			rsa.VerifyPSS(k, hashes[alg], digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case ed25519.PublicKey:
		return alg == "EdDSA" && ed25519.Verify(k, input, sig)
	}
	return false
}
