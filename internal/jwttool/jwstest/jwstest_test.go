package jwstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"testing"
)

// sign returns the JWS signature of input by key with alg, as RFC 7518
// lays it out.
func sign(t *testing.T, alg string, key crypto.Signer, input []byte) []byte {
	t.Helper()
	if alg == "EdDSA" {
		return ed25519.Sign(key.(ed25519.PrivateKey), input)
	}
	h := hashes[alg]
	w := h.New()
	w.Write(input)
	digest := w.Sum(nil)
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest)
		if err != nil {
			t.Fatal(err)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		sig := make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
		return sig
	case *rsa.PrivateKey:
		sig, err := rsa.SignPSS(rand.Reader, k, h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	t.Fatalf("no %s key", alg)
	return nil
}

func TestVerify(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	input := []byte("eyJhbGciOiJFUzI1NiJ9.e30")

	for _, tt := range []struct {
		alg string
		key crypto.Signer
	}{
		{"ES256", p256}, {"ES384", p384}, {"ES512", p521}, {"PS256", rk}, {"PS512", rk}, {"EdDSA", ed},
	} {
		t.Run(tt.alg, func(t *testing.T) {
			sig := sign(t, tt.alg, tt.key, input)
			if !verify(tt.alg, tt.key.Public(), input, sig) {
				t.Error("a good signature does not verify")
			}
			if verify(tt.alg, tt.key.Public(), append(input, 'x'), sig) {
				t.Error("a signature verifies for other input")
			}
			if verify(tt.alg, other.Public(), input, sig) {
				t.Error("a signature verifies with another key")
			}
		})
	}

	sig := sign(t, "ES256", p256, input)
	for name, ok := range map[string]bool{
		"ES384 header for a P-256 key": verify("ES384", p256.Public(), input, sign(t, "ES384", p256, input)),
		"none":                         verify("none", p256.Public(), input, nil),
		"leading zero":                 verify("ES256", p256.Public(), input, append([]byte{0}, sig...)),
		"PS256 header for an EC key":   verify("PS256", p256.Public(), input, sig),
		"ES256 header for an RSA key":  verify("ES256", rk.Public(), input, sign(t, "PS256", rk, input)),
	} {
		if ok {
			t.Errorf("%s: verifies", name)
		}
	}
}

func TestSplit(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enc := base64.RawURLEncoding.EncodeToString
	h, p := enc([]byte(`{"alg":"ES256","nonce":1}`)), enc([]byte(`{"sub":"t"}`))
	jws := h + "." + p + "." + enc(sign(t, "ES256", key, []byte(h+"."+p)))
	header, payload := Split(t, jws, key.Public())
	if header != `{"alg":"ES256","nonce":1}` || payload != `{"sub":"t"}` {
		t.Errorf("Split = %s, %s", header, payload)
	}
}
