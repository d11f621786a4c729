// Package pemkey reads private keys and certificates from PEM files, the
// form in which the command-line tools and examples take them.
//
// # Private keys
//
// [ParsePrivateKey] accepts the three unencrypted encodings that OpenSSL
// and Go write: PKCS#8 ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") and
// PKCS#1 ("RSA PRIVATE KEY"). Other blocks, such as the "EC PARAMETERS"
// block that "openssl ecparam -genkey" puts before the key, are skipped.
//
// # Certificates
//
// [ParseCertificates] returns every "CERTIFICATE" block in file order,
// which for a chain file is leaf first.
//
// # Usage
//
//	key, err := pemkey.ParsePrivateKey(keyPEM)
//	if err != nil {
//		return err
//	}
//	chain, err := pemkey.ParseCertificates(certPEM)
package pemkey

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

var (
	// ErrNoPrivateKey is returned by ParsePrivateKey when the input holds
	// no private key block.
	ErrNoPrivateKey = errors.New("pemkey: no private key found in PEM")
	// ErrNoCertificate is returned by ParseCertificates when the input
	// holds no certificate block.
	ErrNoCertificate = errors.New("pemkey: no certificate found in PEM")
)

// PEM block types.
const (
	typePKCS8       = "PRIVATE KEY"
	typeSEC1        = "EC PRIVATE KEY"
	typePKCS1       = "RSA PRIVATE KEY"
	typeEncrypted   = "ENCRYPTED PRIVATE KEY"
	typeCertificate = "CERTIFICATE"
)

// ParsePrivateKey returns the first private key in pemBytes: a PKCS#8
// "PRIVATE KEY" (ECDSA, RSA or Ed25519), a SEC 1 "EC PRIVATE KEY" or a
// PKCS#1 "RSA PRIVATE KEY" block. Blocks of other types are skipped.
// The key is an *ecdsa.PrivateKey, an *rsa.PrivateKey or an
// ed25519.PrivateKey. Encrypted keys are refused with an error that says
// so. If there is no private key block, the error is [ErrNoPrivateKey].
func ParsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	for rest := pemBytes; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, ErrNoPrivateKey
		}
		switch blk.Type {
		case typePKCS8, typeSEC1, typePKCS1:
		case typeEncrypted:
			return nil, errors.New("pemkey: encrypted private keys are not supported (decrypt it first, e.g. with openssl pkey)")
		default:
			continue
		}
		if _, ok := blk.Headers["DEK-Info"]; ok {
			return nil, fmt.Errorf("pemkey: encrypted %s blocks are not supported (decrypt it first, e.g. with openssl pkey)", blk.Type)
		}
		return parseKeyBlock(blk)
	}
}

func parseKeyBlock(blk *pem.Block) (crypto.Signer, error) {
	var (
		key any
		err error
	)
	switch blk.Type {
	case typePKCS8:
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case typeSEC1:
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	case typePKCS1:
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("pemkey: %s block: %w", blk.Type, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("pemkey: %s block holds a %T, which cannot sign", blk.Type, key)
	}
	return s, nil
}

// ParseCertificates returns the certificates of every "CERTIFICATE" block
// in pemBytes, in file order (for a chain file, leaf first). Blocks of
// other types are skipped. If there is no certificate block, the error is
// [ErrNoCertificate].
func ParseCertificates(pemBytes []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := pemBytes; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != typeCertificate {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pemkey: certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, ErrNoCertificate
	}
	return certs, nil
}
