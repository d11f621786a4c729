package amtest

import (
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

// verifyThingCertificate checks a thing's x5c chain (leaf first) against the
// certificate-verification CAs. Like AM, it trusts the CA's key and ignores
// the CA certificate's own validity, and it accepts SHA-1 signatures (the
// guide's dynamic-gateway certificate uses ecdsa-with-SHA1). The leaf and any
// intermediates must be within their validity period.
func verifyThingCertificate(chain []*x509.Certificate, cas []*x509.Certificate, now time.Time, skew time.Duration) error {
	if len(cas) == 0 {
		return errors.New("no CA is mapped to am.services.iot.cert.verification")
	}
	for i, cert := range chain {
		if now.Add(skew).Before(cert.NotBefore) || now.Add(-skew).After(cert.NotAfter) {
			return fmt.Errorf("certificate %d (%s) is not valid at %s", i, cert.Subject, now.UTC().Format(time.RFC3339))
		}
		for _, ca := range cas {
			if checkCertSignature(cert, ca.PublicKey) == nil {
				return nil
			}
		}
		if i+1 == len(chain) {
			break
		}
		issuer := chain[i+1]
		if issuer.Version >= 3 && (!issuer.BasicConstraintsValid || !issuer.IsCA) {
			return fmt.Errorf("certificate %d (%s) is not a CA", i+1, issuer.Subject)
		}
		if err := checkCertSignature(cert, issuer.PublicKey); err != nil {
			return fmt.Errorf("certificate %d is not signed by certificate %d: %w", i, i+1, err)
		}
	}
	return errors.New("the certificate is not signed by a trusted CA")
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

// certNames reports whether name is the certificate subject's CN or UID.
func certNames(cert *x509.Certificate, name string) bool {
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
