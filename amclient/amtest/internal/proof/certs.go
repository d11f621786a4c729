package proof

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	_ "crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"
)

// maxChain is the most certificates an x5c chain may hold.
const maxChain = 10

var (
	oidExtKeyUsage        = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtNameConstraints = asn1.ObjectIdentifier{2, 5, 29, 30}
)

// VerifyThingCertificate checks a thing's x5c chain (leaf first) against the
// certificate-verification CAs: the chain must reach a certificate signed by
// one of their keys, through intermediates that are proven CAs. Like AM, it
// trusts the CA's key and ignores the CA certificate itself (its validity,
// version and extensions), and it accepts SHA-1 signatures (the guide's
// dynamic-gateway certificate uses ecdsa-with-SHA1), which crypto/x509's
// Verify would refuse. Every certificate up to the one the CA signed must
// be within its validity period at now (with skew either side) and carry
// no critical extension the server does not process; each intermediate
// must pass checkIntermediate. The caller checks that the leaf certifies
// the confirmation key.
func VerifyThingCertificate(chain []*x509.Certificate, cas []*x509.Certificate, now time.Time, skew time.Duration) error {
	if len(cas) == 0 {
		return errors.New("no CA is mapped to am.services.iot.cert.verification")
	}
	if len(chain) == 0 {
		return errors.New("no certificate")
	}
	if len(chain) > maxChain {
		return fmt.Errorf("the chain has %d certificates, more than %d", len(chain), maxChain)
	}
	for i, cert := range chain {
		if now.Add(skew).Before(cert.NotBefore) || now.Add(-skew).After(cert.NotAfter) {
			return fmt.Errorf("certificate %d (%s) is not valid at %s (valid %s to %s)", i, cert.Subject,
				now.UTC().Format(time.RFC3339), cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
		}
		if len(cert.UnhandledCriticalExtensions) > 0 {
			return fmt.Errorf("certificate %d (%s) has a critical extension the server does not process (%v)", i, cert.Subject, cert.UnhandledCriticalExtensions)
		}
		if i > 0 {
			if err := checkIntermediate(chain, i); err != nil {
				return err
			}
		}
		for _, ca := range cas {
			if checkCertSignature(cert, ca.PublicKey) == nil {
				return nil
			}
		}
		if i+1 == len(chain) {
			break
		}
		if err := checkCertSignature(cert, chain[i+1].PublicKey); err != nil {
			return fmt.Errorf("certificate %d is not signed by certificate %d: %w", i, i+1, err)
		}
	}
	return errors.New("the certificate is not signed by a trusted CA")
}

// checkIntermediate checks that chain[i], which signed chain[i-1], is a CA
// (RFC 5280 §6.1.4): an X.509 v3 certificate (v1 and v2 intermediates are
// refused, as §6.1.4(k) permits) with basicConstraints cA=true, keyUsage
// keyCertSign when it has a keyUsage extension, a pathLenConstraint that
// the intermediates below it do not exceed, and no name constraints, which
// the server does not enforce.
func checkIntermediate(chain []*x509.Certificate, i int) error {
	cert := chain[i]
	switch {
	case cert.Version < 3:
		return fmt.Errorf("certificate %d (%s) is an X.509 v%d certificate, which cannot be proven a CA", i, cert.Subject, cert.Version)
	case !cert.BasicConstraintsValid || !cert.IsCA:
		return fmt.Errorf("certificate %d (%s) is not a CA: no basicConstraints with cA=true", i, cert.Subject)
	case hasExtension(cert, oidExtKeyUsage) && cert.KeyUsage&x509.KeyUsageCertSign == 0:
		return fmt.Errorf("certificate %d (%s) is not a CA: its keyUsage lacks keyCertSign", i, cert.Subject)
	case hasExtension(cert, oidExtNameConstraints):
		return fmt.Errorf("certificate %d (%s) has name constraints, which the server does not enforce", i, cert.Subject)
	}
	if cert.MaxPathLen > 0 || cert.MaxPathLenZero {
		below := 0 // intermediates between it and the leaf, self-issued ones excepted
		for _, c := range chain[1:i] {
			if !bytes.Equal(c.RawSubject, c.RawIssuer) {
				below++
			}
		}
		if below > cert.MaxPathLen {
			return fmt.Errorf("certificate %d (%s) allows %d intermediates below it (pathLenConstraint), the chain has %d", i, cert.Subject, cert.MaxPathLen, below)
		}
	}
	return nil
}

func hasExtension(cert *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	for _, e := range cert.Extensions {
		if e.Id.Equal(oid) {
			return true
		}
	}
	return false
}

// checkCertSignature verifies cert's signature with pub, SHA-1 included.
func checkCertSignature(cert *x509.Certificate, pub any) error {
	var h crypto.Hash
	switch cert.SignatureAlgorithm {
	case x509.ECDSAWithSHA1, x509.SHA1WithRSA:
		h = crypto.SHA1
	case x509.ECDSAWithSHA256, x509.SHA256WithRSA, x509.SHA256WithRSAPSS:
		h = crypto.SHA256
	case x509.ECDSAWithSHA384, x509.SHA384WithRSA, x509.SHA384WithRSAPSS:
		h = crypto.SHA384
	case x509.ECDSAWithSHA512, x509.SHA512WithRSA, x509.SHA512WithRSAPSS:
		h = crypto.SHA512
	case x509.PureEd25519:
		k, ok := pub.(ed25519.PublicKey)
		if !ok || !ed25519.Verify(k, cert.RawTBSCertificate, cert.Signature) {
			return errors.New("bad signature")
		}
		return nil
	default:
		return fmt.Errorf("unsupported signature algorithm %s", cert.SignatureAlgorithm)
	}
	w := h.New()
	w.Write(cert.RawTBSCertificate)
	digest := w.Sum(nil)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, cert.Signature) {
			return errors.New("bad signature")
		}
	case *rsa.PublicKey:
		var err error
		switch cert.SignatureAlgorithm {
		case x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS:
			err = rsa.VerifyPSS(k, h, digest, cert.Signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		default:
			err = rsa.VerifyPKCS1v15(k, h, digest, cert.Signature)
		}
		if err != nil {
			return errors.New("bad signature")
		}
	default:
		return fmt.Errorf("the issuer key type %T does not match", pub)
	}
	return nil
}

var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// CertNames reports whether name is the certificate subject's CN or UID.
func CertNames(cert *x509.Certificate, name string) bool {
	if cert.Subject.CommonName == name {
		return true
	}
	for _, atv := range cert.Subject.Names {
		if atv.Type.Equal(oidUID) {
			if s, ok := atv.Value.(string); ok && s == name {
				return true
			}
		}
	}
	return false
}
