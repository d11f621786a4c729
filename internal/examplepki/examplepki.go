// Package examplepki mints small, throw-away public key infrastructures: an
// ECDSA P-256 certificate authority, leaf certificates issued by it, and the
// RFC 7638 JWK thumbprints that Thingway uses as key ids.
//
// It backs the example-resource generator (resources/gen) and lets tests
// create fresh PKI at run time instead of relying on checked-in keys.
// Nothing minted here is meant for production use.
package examplepki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Organization is the subject organisation of every CA made by NewCA.
const Organization = "Thingway"

// serialLimit is the exclusive upper bound of certificate serial numbers,
// 2^159, which keeps serials within the 20 octets allowed by RFC 5280.
var serialLimit = new(big.Int).Lsh(big.NewInt(1), 159)

// Thumbprint returns the RFC 7638 SHA-256 JWK thumbprint of pub encoded with
// the padded base64url alphabet (base64.URLEncoding), which is the form used
// as a key id ("kid") by ForgeRock AM and the IoT SDK.
//
// pub is normally an *ecdsa.PublicKey, *rsa.PublicKey or ed25519.PublicKey.
// A private key (anything with a Public method, such as a crypto.Signer) is
// accepted too; its public half is thumbprinted.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	if pub == nil {
		return "", errors.New("examplepki: thumbprint of nil key")
	}
	if priv, ok := pub.(interface{ Public() crypto.PublicKey }); ok {
		pub = priv.Public()
	}
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("examplepki: thumbprint: %w", err)
	}
	return base64.URLEncoding.EncodeToString(sum), nil
}

// NewCA creates a fresh ECDSA P-256 key and a self-signed X.509 v3 CA
// certificate for it, with subject CN=cn,O=Thingway, key usage
// CertSign|CRLSign and validity [notBefore, notAfter], signed with
// ECDSA-SHA256.
func NewCA(cn string, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if err := checkValidity(cn, notBefore, notAfter); err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("examplepki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{Organization}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SignatureAlgorithm:    x509.ECDSAWithSHA256,
	}
	cert, _, err := create(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("examplepki: CA certificate: %w", err)
	}
	return cert, key, nil
}

// IssueCert issues an X.509 v3 leaf certificate for pub, subject CN=cn,
// signed ECDSA-SHA256 by the CA.
func IssueCert(ca *x509.Certificate, caKey crypto.Signer, pub crypto.PublicKey, cn string, notBefore, notAfter time.Time) (*x509.Certificate, []byte, error) {
	return issue(ca, caKey, pub, cn, nil, nil, nil, notBefore, notAfter)
}

// IssueServerCert issues a DTLS/TLS server certificate for pub: like
// IssueCert, plus the server-auth extended key usage and the given DNS
// names and IP addresses as subject alternative names.
func IssueServerCert(ca *x509.Certificate, caKey crypto.Signer, pub crypto.PublicKey, cn string, dnsNames []string, ips []net.IP, notBefore, notAfter time.Time) (*x509.Certificate, []byte, error) {
	return issue(ca, caKey, pub, cn, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, dnsNames, ips, notBefore, notAfter)
}

func issue(ca *x509.Certificate, caKey crypto.Signer, pub crypto.PublicKey, cn string, eku []x509.ExtKeyUsage, dnsNames []string, ips []net.IP, notBefore, notAfter time.Time) (*x509.Certificate, []byte, error) {
	if ca == nil || caKey == nil || pub == nil {
		return nil, nil, errors.New("examplepki: issue certificate: nil CA, CA key or public key")
	}
	if err := checkValidity(cn, notBefore, notAfter); err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           eku,
		DNSNames:              dnsNames,
		IPAddresses:           ips,
		BasicConstraintsValid: true,
		IsCA:                  false,
		SignatureAlgorithm:    x509.ECDSAWithSHA256,
	}
	cert, der, err := create(tmpl, ca, pub, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("examplepki: certificate for %q: %w", cn, err)
	}
	return cert, der, nil
}

func checkValidity(cn string, notBefore, notAfter time.Time) error {
	if cn == "" {
		return errors.New("examplepki: empty common name")
	}
	if !notAfter.After(notBefore) {
		return fmt.Errorf("examplepki: notAfter %s is not after notBefore %s", notAfter, notBefore)
	}
	return nil
}

// newSerial returns a uniformly random serial number in [1, 2^159).
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Sub(serialLimit, big.NewInt(1)))
	if err != nil {
		return nil, fmt.Errorf("examplepki: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, []byte, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse issued certificate: %w", err)
	}
	return cert, der, nil
}
