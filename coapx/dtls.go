package coapx

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	piondtls "github.com/pion/dtls/v3"
	dtlselliptic "github.com/pion/dtls/v3/pkg/crypto/elliptic"
)

// SelfSignedCertificate returns a DTLS certificate for key, named cn and
// valid for ten years. If key is nil, a P-256 key is generated: like
// iot-edge, DTLS then only protects the channel, and identity is proven by
// the signed JWTs a thing sends.
func SelfSignedCertificate(key crypto.Signer, cn string) (tls.Certificate, error) {
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return tls.Certificate{}, err
		}
		key = k
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{cn},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("coapx: certificate: %w", err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// ServerOptions are the DTLS settings of a gateway: its certificate, a
// client certificate required (any: iot-edge things present a throwaway
// self-signed one), the extended master secret required, and connection
// IDs, so that a thing survives a NAT rebinding (iot-edge things, which do
// not offer the extension, are unaffected).
func ServerOptions(cert tls.Certificate, extra ...piondtls.ServerOption) []piondtls.ServerOption {
	return append([]piondtls.ServerOption{
		piondtls.WithCertificates(cert),
		piondtls.WithClientAuth(piondtls.RequireAnyClientCert),
		piondtls.WithExtendedMasterSecret(piondtls.RequireExtendedMasterSecret),
		piondtls.WithConnectionIDGenerator(piondtls.RandomCIDGenerator(8)),
	}, extra...)
}

// Trust says how a thing trusts its gateway. Exactly one way must be
// chosen: trust is never skipped by default.
type Trust struct {
	// RootCAs verifies the gateway's certificate chain, for ServerName.
	RootCAs    *x509.CertPool
	ServerName string
	// PinnedSHA256 accepts exactly the gateway certificate whose DER has
	// this SHA-256 digest (a stable gateway identity, without a CA).
	PinnedSHA256 []byte
	// InsecureAnyGateway accepts any gateway certificate. The iot-edge
	// gateway regenerates its DTLS key at every start, so nothing else
	// works with it; use it only there.
	InsecureAnyGateway bool
}

// Verifier returns the check of a gateway's certificate chain that trust
// describes (nil for InsecureAnyGateway or no trust): against RootCAs for
// ServerName, or against the pinned digest.
func (t Trust) Verifier() func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	switch {
	case t.RootCAs != nil:
		roots, name := t.RootCAs, t.ServerName
		return func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("coapx: the gateway presented no certificate")
			}
			certs := make([]*x509.Certificate, len(raw))
			for i, der := range raw {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					return fmt.Errorf("coapx: the gateway's certificate: %w", err)
				}
				certs[i] = c
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return err
		}
	case t.PinnedSHA256 != nil:
		pin := t.PinnedSHA256
		return func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("coapx: the gateway presented no certificate")
			}
			sum := sha256.Sum256(raw[0])
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return errors.New("coapx: the gateway certificate does not match the pinned digest")
			}
			return nil
		}
	}
	return nil
}

// ErrNoTrust is returned by ClientOptions when Trust names no way to trust
// the gateway.
var ErrNoTrust = errors.New("coapx: no gateway trust configured (set RootCAs, PinnedSHA256 or InsecureAnyGateway)")

// ClientOptions are the DTLS settings of a thing: its certificate (the
// gateway requires one; pass SelfSignedCertificate(nil, ...) if the thing
// has no other), the extended master secret, and the gateway verification
// chosen in trust.
//
// A thing offers a DTLS connection ID (RFC 9146; it asks for the
// gateway's and uses it in its records, sending none of its own), so
// that its session goes on when a NAT gives it another address or port.
// pion/dtls v3.1.15 (the v3 that go-coap v3 pins) has one fault with it:
// a thing that refuses the gateway's certificate sends its bad_certificate
// alert (epoch 0) in a connection-ID record, which the gateway cannot
// decode ("invalid content type"); the gateway then answers decode_error,
// which reaches the thing before its own verification error in some dials
// (4 of 60 and 1 of 300 on loopback; with pion v3.1.16, 0 of 360, though
// it still sends the alert so: docs/benchmarks.md). thing.DialGateway
// reports the verification error itself whatever pion's handshake error
// says, so a thing still says why it refused a gateway; the gateway logs
// a failed handshake either way.
func ClientOptions(cert tls.Certificate, trust Trust) ([]piondtls.ClientOption, error) {
	opts := []piondtls.ClientOption{
		piondtls.WithCertificates(cert),
		piondtls.WithExtendedMasterSecret(piondtls.RequireExtendedMasterSecret),
		// pion's own curves, P-256 first: a server takes the first
		// curve offered that it has, and Go's P-256 ECDHE costs both
		// sides less CPU than its X25519 (gwbench: X25519 was a fifth of
		// the gateway's CPU per handshake).
		piondtls.WithEllipticCurves(dtlselliptic.P256, dtlselliptic.X25519, dtlselliptic.P384),
		piondtls.WithConnectionIDGenerator(piondtls.OnlySendCIDGenerator()),
	}
	n := 0
	if trust.RootCAs != nil {
		n++
	}
	if trust.PinnedSHA256 != nil {
		n++
	}
	if trust.InsecureAnyGateway {
		n++
	}
	if v := trust.Verifier(); v != nil {
		// The certificate is checked by Verifier rather than by pion, so
		// that a caller can wrap it and learn why a gateway was refused.
		opts = append(opts, piondtls.WithInsecureSkipVerify(true), piondtls.WithVerifyPeerCertificate(v))
	} else if trust.InsecureAnyGateway {
		opts = append(opts, piondtls.WithInsecureSkipVerify(true))
	}
	switch n {
	case 0:
		return nil, ErrNoTrust
	case 1:
		return opts, nil
	}
	return nil, errors.New("coapx: choose one way to trust the gateway")
}
