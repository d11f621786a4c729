package pemkey_test

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/internal/examplepki"
	"github.com/thingway/thingway/internal/pemkey"
)

func pemBlock(typ string, der []byte, headers map[string]string) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Headers: headers, Bytes: der})
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der, nil)
}

func TestParsePrivateKey(t *testing.T) {
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	sec1, err := x509.MarshalECPrivateKey(ec384)
	if err != nil {
		t.Fatal(err)
	}
	// What "openssl ecparam -name secp384r1 -genkey" writes.
	ecParams := pemBlock("EC PARAMETERS", []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}, nil)
	ca, caKey, err := examplepki.NewCA("test CA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		in   []byte
		want crypto.PublicKey
	}{
		{"PKCS#8 ECDSA", pkcs8(t, ec256), ec256.Public()},
		{"PKCS#8 RSA", pkcs8(t, rsaKey), rsaKey.Public()},
		{"PKCS#8 Ed25519", pkcs8(t, edKey), edKey.Public()},
		{"SEC 1", pemBlock("EC PRIVATE KEY", sec1, nil), ec384.Public()},
		{"SEC 1 after EC PARAMETERS", append(ecParams, pemBlock("EC PRIVATE KEY", sec1, nil)...), ec384.Public()},
		{"PKCS#1", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey), nil), rsaKey.Public()},
		{"after a certificate and text", append(append([]byte("a comment\n"), pemBlock("CERTIFICATE", ca.Raw, nil)...), pkcs8(t, ec256)...), ec256.Public()},
		{"first of two keys", append(pkcs8(t, ec256), pkcs8(t, caKey)...), ec256.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := pemkey.ParsePrivateKey(tt.in)
			if err != nil {
				t.Fatalf("ParsePrivateKey: %v", err)
			}
			pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
			if !ok || !pub.Equal(tt.want) {
				t.Errorf("public key = %T %v, want %v", key.Public(), key.Public(), tt.want)
			}
		})
	}
}

func TestParsePrivateKeyErrors(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	ca, _, err := examplepki.NewCA("test CA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sec1, _ := x509.MarshalECPrivateKey(ec)

	tests := []struct {
		name    string
		in      []byte
		wantErr string
		is      error
	}{
		{"empty", nil, "pemkey: no private key found in PEM", pemkey.ErrNoPrivateKey},
		{"not PEM", []byte("hello\n"), "pemkey: no private key found in PEM", pemkey.ErrNoPrivateKey},
		{"DER", sec1, "pemkey: no private key found in PEM", pemkey.ErrNoPrivateKey},
		{"certificate only", pemBlock("CERTIFICATE", ca.Raw, nil), "pemkey: no private key found in PEM", pemkey.ErrNoPrivateKey},
		{"public key only", pemBlock("PUBLIC KEY", mustPKIX(t, ec.Public()), nil), "pemkey: no private key found in PEM", pemkey.ErrNoPrivateKey},
		{"garbage PKCS#8", pemBlock("PRIVATE KEY", []byte("garbage"), nil), "pemkey: PRIVATE KEY block: ", nil},
		{"garbage SEC 1", pemBlock("EC PRIVATE KEY", []byte("garbage"), nil), "pemkey: EC PRIVATE KEY block: ", nil},
		{"garbage PKCS#1", pemBlock("RSA PRIVATE KEY", []byte("garbage"), nil), "pemkey: RSA PRIVATE KEY block: ", nil},
		{"SEC 1 in a PKCS#8 block", pemBlock("PRIVATE KEY", sec1, nil), "pemkey: PRIVATE KEY block: ", nil},
		{"X25519", pkcs8(t, x25519), "pemkey: PRIVATE KEY block holds a *ecdh.PrivateKey, which cannot sign", nil},
		{"encrypted PKCS#8", pemBlock("ENCRYPTED PRIVATE KEY", []byte{1}, nil), "pemkey: encrypted private keys are not supported", nil},
		{"legacy encrypted", pemBlock("EC PRIVATE KEY", []byte{1}, map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}), "pemkey: encrypted EC PRIVATE KEY blocks are not supported", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := pemkey.ParsePrivateKey(tt.in)
			if err == nil {
				t.Fatalf("ParsePrivateKey = %T, want an error", key)
			}
			if !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want prefix %q", err, tt.wantErr)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

func mustPKIX(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestParseCertificates(t *testing.T) {
	now := time.Now()
	ca, caKey, err := examplepki.NewCA("test CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf, _, err := examplepki.IssueCert(ca, caKey, leafKey.Public(), "thing-1", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	chain := append(pemBlock("CERTIFICATE", leaf.Raw, nil), pemBlock("CERTIFICATE", ca.Raw, nil)...)

	t.Run("chain", func(t *testing.T) {
		got, err := pemkey.ParseCertificates(chain)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || !got[0].Equal(leaf) || !got[1].Equal(ca) {
			t.Errorf("got %d certificates, want leaf then CA", len(got))
		}
	})
	t.Run("with a key and text", func(t *testing.T) {
		in := append(append(pkcs8(t, leafKey), []byte("subject=CN = thing-1\n")...), chain...)
		got, err := pemkey.ParseCertificates(in)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Subject.CommonName != "thing-1" {
			t.Errorf("got %d certificates", len(got))
		}
	})
	t.Run("none", func(t *testing.T) {
		_, err := pemkey.ParseCertificates(pkcs8(t, leafKey))
		if !errors.Is(err, pemkey.ErrNoCertificate) || err.Error() != "pemkey: no certificate found in PEM" {
			t.Errorf("error = %v, want ErrNoCertificate", err)
		}
	})
	t.Run("bad second certificate", func(t *testing.T) {
		in := append(pemBlock("CERTIFICATE", leaf.Raw, nil), pemBlock("CERTIFICATE", []byte("garbage"), nil)...)
		_, err := pemkey.ParseCertificates(in)
		if err == nil || !strings.HasPrefix(err.Error(), "pemkey: certificate 2: ") {
			t.Errorf("error = %v, want one naming certificate 2", err)
		}
	})
}

func FuzzParsePrivateKey(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	f.Add(pemBlock("PRIVATE KEY", der, nil))
	sec1, _ := x509.MarshalECPrivateKey(ec)
	f.Add(pemBlock("EC PRIVATE KEY", sec1, nil))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		key, err := pemkey.ParsePrivateKey(in)
		if (key == nil) == (err == nil) {
			t.Fatalf("key %v and error %v", key, err)
		}
		if key != nil && key.Public() == nil {
			t.Fatal("key without a public key")
		}
	})
}

func FuzzParseCertificates(f *testing.F) {
	ca, _, _ := examplepki.NewCA("fuzz CA", time.Now(), time.Now().Add(time.Hour))
	f.Add(pemBlock("CERTIFICATE", ca.Raw, nil))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		certs, err := pemkey.ParseCertificates(in)
		if (len(certs) == 0) == (err == nil) {
			t.Fatalf("%d certificates and error %v", len(certs), err)
		}
	})
}
