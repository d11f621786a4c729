package coapx_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"testing"
	"time"

	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/internal/examplepki"
)

// FuzzGatewayCertificates gives a thing's gateway checks
// (Trust.Verifier) arbitrary certificate chains, as a gateway presents
// them in its DTLS handshake: up to three DER certificates. With RootCAs,
// a chain is accepted only when its first certificate parses, chains to
// the root through the others, is valid for ServerName and for server
// authentication; with PinnedSHA256, exactly when the first certificate's
// DER has the pinned digest. An empty chain is refused by both.
func FuzzGatewayCertificates(f *testing.F) {
	now := time.Now()
	ca, caKey, err := examplepki.NewCA("Fuzz Gateway CA", now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			f.Fatal(err)
		}
		return k
	}
	const name = "gateway.example.com"
	leaf, _, err := examplepki.IssueServerCert(ca, caKey, key().Public(), "gateway", []string{name}, nil, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	other, _, err := examplepki.IssueServerCert(ca, caKey, key().Public(), "other", []string{"other.example.com"}, nil, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	client, _, err := examplepki.IssueCert(ca, caKey, key().Public(), name, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	selfSigned, err := coapx.SelfSignedCertificate(nil, name)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(leaf.Raw, []byte(nil), []byte(nil))
	f.Add(leaf.Raw, ca.Raw, []byte(nil))
	f.Add(other.Raw, ca.Raw, []byte(nil))
	f.Add(client.Raw, []byte(nil), []byte(nil))
	f.Add(selfSigned.Certificate[0], leaf.Raw, ca.Raw)
	f.Add(leaf.Raw[:len(leaf.Raw)-1], []byte{0x30, 0x00}, []byte(nil))
	f.Add([]byte(nil), []byte(nil), []byte(nil))

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	pin := sha256.Sum256(leaf.Raw)
	byCA := coapx.Trust{RootCAs: roots, ServerName: name}.Verifier()
	pinned := coapx.Trust{PinnedSHA256: pin[:]}.Verifier()
	f.Fuzz(func(t *testing.T, c0, c1, c2 []byte) {
		var raw [][]byte
		for _, c := range [][]byte{c0, c1, c2} {
			if len(c) > 0 {
				raw = append(raw, c)
			}
		}
		err := byCA(raw, nil)
		if err == nil {
			if len(raw) == 0 {
				t.Fatal("an empty chain is accepted")
			}
			first, perr := x509.ParseCertificate(raw[0])
			if perr != nil {
				t.Fatalf("accepted a chain whose first certificate does not parse: %v", perr)
			}
			inter := x509.NewCertPool()
			for _, der := range raw[1:] {
				c, perr := x509.ParseCertificate(der)
				if perr != nil {
					t.Fatalf("accepted a chain with a certificate that does not parse: %v", perr)
				}
				inter.AddCert(c)
			}
			if _, verr := first.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); verr != nil {
				t.Fatalf("accepted a chain that does not verify: %v", verr)
			}
		}
		match := false
		if len(raw) > 0 {
			sum := sha256.Sum256(raw[0])
			match = bytes.Equal(sum[:], pin[:])
		}
		if err := pinned(raw, nil); (err == nil) != match {
			t.Fatalf("pinned check: %v for a first certificate matching the pin: %v", err, match)
		}
	})
}
