package examplepki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// rfc7638Key is the example RSA key of RFC 7638 section 3.1.
const rfc7638Key = `{
  "kty": "RSA",
  "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
  "e": "AQAB",
  "alg": "RS256",
  "kid": "2011-04-29"
}`

func TestThumbprintRFC7638(t *testing.T) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON([]byte(rfc7638Key)); err != nil {
		t.Fatalf("parse RFC 7638 key: %v", err)
	}
	got, err := Thumbprint(jwk.Key)
	if err != nil {
		t.Fatalf("Thumbprint: %v", err)
	}
	const want = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs="
	if got != want {
		t.Errorf("Thumbprint = %q, want %q", got, want)
	}
}

// TestThumbprintEC checks an EC thumbprint against the RFC 7638 definition
// computed by hand, and that a private key yields its public key's thumbprint.
func TestThumbprintEC(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := key.PublicKey.Bytes() // 0x04 || X || Y, 32 bytes each
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	canonical := `{"crv":"P-256","kty":"EC","x":"` + b64(raw[1:33]) + `","y":"` + b64(raw[33:]) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	want := base64.URLEncoding.EncodeToString(sum[:])

	got, err := Thumbprint(&key.PublicKey)
	if err != nil {
		t.Fatalf("Thumbprint(public): %v", err)
	}
	if got != want {
		t.Errorf("Thumbprint(public) = %q, want %q", got, want)
	}
	if len(got) != 44 || got[43] != '=' {
		t.Errorf("Thumbprint %q is not padded base64url of 32 bytes", got)
	}
	gotPriv, err := Thumbprint(key)
	if err != nil {
		t.Fatalf("Thumbprint(private): %v", err)
	}
	if gotPriv != want {
		t.Errorf("Thumbprint(private) = %q, want %q", gotPriv, want)
	}
}

func TestThumbprintErrors(t *testing.T) {
	if _, err := Thumbprint(nil); err == nil {
		t.Error("Thumbprint(nil) succeeded")
	}
	if _, err := Thumbprint("not a key"); err == nil {
		t.Error("Thumbprint(string) succeeded")
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Thumbprint(pub); err != nil {
		t.Errorf("Thumbprint(ed25519): %v", err)
	}
}

func TestChainVerifies(t *testing.T) {
	now := time.Now()
	ca, caKey, err := NewCA("Test CA", now.Add(-time.Hour), now.AddDate(20, 0, 0))
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	if ca.Subject.CommonName != "Test CA" {
		t.Errorf("CA CN = %q", ca.Subject.CommonName)
	}
	if len(ca.Subject.Organization) != 1 || ca.Subject.Organization[0] != Organization {
		t.Errorf("CA O = %q", ca.Subject.Organization)
	}
	if !ca.IsCA || !ca.BasicConstraintsValid {
		t.Error("CA certificate is not a CA")
	}
	if ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA KeyUsage = %v", ca.KeyUsage)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}

	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, der, err := IssueCert(ca, caKey, &leafKey.PublicKey, "thingymabot", now.Add(-time.Hour), now.AddDate(10, 0, 0))
	if err != nil {
		t.Fatalf("IssueCert: %v", err)
	}
	if leaf.Subject.CommonName != "thingymabot" {
		t.Errorf("leaf CN = %q, want thingymabot", leaf.Subject.CommonName)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("leaf KeyUsage = %v", leaf.KeyUsage)
	}
	if leaf.SignatureAlgorithm != x509.ECDSAWithSHA256 || leaf.Version != 3 {
		t.Errorf("leaf signature %v, version %d", leaf.SignatureAlgorithm, leaf.Version)
	}
	limit := new(big.Int).Lsh(big.NewInt(1), 159)
	if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.Cmp(limit) >= 0 {
		t.Errorf("leaf serial %v out of range", leaf.SerialNumber)
	}
	if !leafKey.PublicKey.Equal(leaf.PublicKey) {
		t.Error("leaf certifies the wrong public key")
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil || !parsed.Equal(leaf) {
		t.Errorf("DER does not match returned certificate (err %v)", err)
	}

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:     roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(chains) != 1 || len(chains[0]) != 2 || !chains[0][1].Equal(ca) {
		t.Errorf("unexpected chains %v", chains)
	}

	// A certificate from another CA must not verify against this one.
	other, otherKey, err := NewCA("Other CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	stranger, _, err := IssueCert(other, otherKey, &leafKey.PublicKey, "stranger", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stranger.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
		t.Error("certificate of another CA verified")
	}
}

func TestIssueCertErrors(t *testing.T) {
	now := time.Now()
	ca, caKey, err := NewCA("Test CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, wrongKey, err := NewCA("Wrong CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pub := &caKey.PublicKey
	cases := map[string]func() error{
		"mismatched CA key": func() error {
			_, _, err := IssueCert(ca, wrongKey, pub, "x", now, now.Add(time.Hour))
			return err
		},
		"empty CN": func() error {
			_, _, err := IssueCert(ca, caKey, pub, "", now, now.Add(time.Hour))
			return err
		},
		"inverted validity": func() error {
			_, _, err := IssueCert(ca, caKey, pub, "x", now, now.Add(-time.Hour))
			return err
		},
		"nil CA": func() error {
			_, _, err := IssueCert(nil, caKey, pub, "x", now, now.Add(time.Hour))
			return err
		},
		"NewCA inverted validity": func() error {
			_, _, err := NewCA("x", now, now)
			return err
		},
	}
	for name, f := range cases {
		if f() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
