package proof

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/internal/examplepki"
)

// FuzzCertificateChain feeds arbitrary chains to the certificate checks of
// POP_WITH_CERTIFICATE registration: the cnf.jwk parser (x5c text → DER →
// X.509) and VerifyThingCertificate, given either a JWK or up to three DER
// certificates. Nothing panics, and an accepted chain reaches a
// certificate that the CA signed, through certificates that are valid at
// the time of the check and intermediates that are X.509 v3 CAs with
// keyCertSign.
func FuzzCertificateChain(f *testing.F) {
	now := time.Now()
	ca, caKey, err := examplepki.NewCA("fuzz-ca", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			f.Fatal(err)
		}
		return k
	}
	mint := func(cn string, isCA bool, pub any, parent *x509.Certificate, key *ecdsa.PrivateKey) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
		if isCA {
			tmpl.BasicConstraintsValid, tmpl.IsCA, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
		if err != nil {
			f.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			f.Fatal(err)
		}
		return c
	}
	thingKey, interKey, otherKey := newKey(), newKey(), newKey()
	inter := mint("intermediate", true, interKey.Public(), ca, caKey)
	notCA := mint("not-a-ca", false, otherKey.Public(), ca, caKey)
	direct := mint("thing", false, thingKey.Public(), ca, caKey)
	viaInter := mint("thing", false, thingKey.Public(), inter, interKey)
	viaNotCA := mint("thing", false, thingKey.Public(), notCA, otherKey)
	for _, chain := range [][]*x509.Certificate{{direct}, {viaInter, inter}, {viaInter, inter, ca}, {viaNotCA, notCA}} {
		jwk, err := json.Marshal(jose.JSONWebKey{Key: thingKey.Public(), KeyID: "k", Use: "sig", Certificates: chain})
		if err != nil {
			f.Fatal(err)
		}
		ders := [3][]byte{}
		for i, c := range chain {
			ders[i] = c.Raw
		}
		f.Add(jwk, ders[0], ders[1], ders[2])
	}
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"AA","y":"AA","x5c":["AAAA","!!"]}`), []byte{0x30, 0x03, 0x02, 0x01, 0x01}, []byte(nil), []byte(nil))

	cas := []*x509.Certificate{ca}
	check := func(t *testing.T, chain []*x509.Certificate) {
		err := VerifyThingCertificate(chain, cas, now, time.Minute)
		CertNames(chain[0], "thing")
		if err != nil {
			return
		}
		for k, c := range chain {
			if c.NotBefore.After(now.Add(time.Minute)) || c.NotAfter.Before(now.Add(-time.Minute)) {
				t.Fatalf("accepted a chain whose certificate %d is not valid now", k)
			}
			if k > 0 && (c.Version != 3 || !c.BasicConstraintsValid || !c.IsCA) {
				t.Fatalf("accepted a chain whose intermediate %d is not a v3 CA", k)
			}
			if k > 0 && hasExtension(c, oidExtKeyUsage) && c.KeyUsage&x509.KeyUsageCertSign == 0 {
				t.Fatalf("accepted a chain whose intermediate %d lacks keyCertSign", k)
			}
			if checkCertSignature(c, ca.PublicKey) == nil {
				return
			}
			if k+1 < len(chain) && checkCertSignature(c, chain[k+1].PublicKey) != nil {
				t.Fatalf("accepted a chain whose certificate %d is not signed by the next", k)
			}
		}
		t.Fatalf("accepted a chain that no certificate of the CA's signs")
	}
	f.Fuzz(func(t *testing.T, jwk, der0, der1, der2 []byte) {
		if _, certs, err := ParseConfirmationKey(jwk); err == nil && len(certs) > 0 {
			check(t, certs)
		}
		var chain []*x509.Certificate
		for _, d := range [][]byte{der0, der1, der2} {
			c, err := x509.ParseCertificate(d)
			if err != nil {
				break
			}
			chain = append(chain, c)
		}
		if len(chain) > 0 {
			check(t, chain)
		}
	})
}
