// Package gatewaytrust is how the example programs trust and dial a
// Thingway (or iot-edge) gateway: the flags that say which DTLS
// certificate a thing accepts, and the dial of a coap(s) URL with them. It
// links no HTTP client, so a program that talks only to a gateway
// (examples/thing/coap-only) carries none.
//
// # Flags
//
// [Flags.Register] adds three flags to a program:
//
//	-gateway-ca FILE      CA certificates (PEM) that verify the gateway; default
//	                      resources/example-ca.cert.pem of the repository, the
//	                      example CA that issued ./run.sh gateway's certificate
//	-gateway-name NAME    the name the gateway's certificate must carry
//	                      (default thingway-gateway)
//	-insecure-gateway     accept any gateway certificate (an iot-edge gateway
//	                      makes a new DTLS key at every start); prints a warning
//
// Both coap and coaps URLs mean CoAP over DTLS; an empty host
// (coap://:5683) is the local host. In a program that also has -realm (and
// talks to AM directly for http(s) URLs), the usage notes that a gateway's
// realm and tree apply instead.
//
// # Usage
//
//	var gw gatewaytrust.Flags
//	gw.Register(flag.CommandLine)
//	flag.Parse()
//	g, err := gw.Dial(ctx, "coap://:5683", logger)
//	if err != nil {
//		return err
//	}
//	defer g.Close()
//	th, err := thing.New(ctx, thing.Config{Connector: g, ID: "manual-thing", Key: key})
package gatewaytrust

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/examples/internal/secrets"
	"github.com/thingway/thingway/thing"
)

// ExampleCA is the default of -gateway-ca, relative to the repository
// root: the CA that issued resources/gateway-dtls.cert.pem, the DTLS
// certificate ./run.sh gateway presents.
const ExampleCA = "resources/example-ca.cert.pem"

// DefaultGatewayName is the default of -gateway-name: the name in
// resources/gateway-dtls.cert.pem.
const DefaultGatewayName = "thingway-gateway"

// InsecureWarning is the line written to stderr when -insecure-gateway is
// used.
const InsecureWarning = "Warning: -insecure-gateway: the gateway's DTLS certificate is not verified; any gateway is accepted."

// Flags say how a program trusts a gateway. The zero value trusts the
// example CA for the name thingway-gateway.
type Flags struct {
	// CA is a PEM file of CA certificates that verify the gateway's
	// certificate. If empty, ExampleCA under the repository root.
	CA string
	// Name is the name the gateway's certificate must carry. If empty,
	// DefaultGatewayName.
	Name string
	// Insecure accepts any gateway certificate. CA must then be empty.
	Insecure bool

	// Stderr receives InsecureWarning. If nil, os.Stderr.
	Stderr io.Writer
}

// Register adds -gateway-ca, -gateway-name and -insecure-gateway to fs,
// and, if fs has a -realm flag when the usage is shown, a note that -realm
// and -tree are ignored over CoAP.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.CA, "gateway-ca", "",
		"PEM `FILE` of the CA certificates that verify a coap(s) gateway's DTLS certificate (default "+ExampleCA+", the example CA that issued ./run.sh gateway's certificate)")
	fs.StringVar(&f.Name, "gateway-name", DefaultGatewayName,
		"the `NAME` a coap(s) gateway's DTLS certificate must be issued for")
	fs.BoolVar(&f.Insecure, "insecure-gateway", false,
		"accept any coap(s) gateway certificate, unverified (an iot-edge gateway makes a new DTLS key at every start)")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage of %s:\n", fs.Name())
		fs.PrintDefaults()
		if fs.Lookup("realm") != nil {
			fmt.Fprint(out, "\nWith a coap:// or coaps:// -url (a gateway, CoAP over DTLS; coap://:5683 is the local host),\nthe gateway's realm and tree apply: -realm and -tree are ignored.\n")
		}
	}
}

// trust returns the DTLS trust that f describes, and the flags that set
// it, for error messages.
func (f Flags) trust() (coapx.Trust, string, error) {
	if f.Insecure {
		if f.CA != "" {
			return coapx.Trust{}, "", errors.New("-insecure-gateway and -gateway-ca exclude each other")
		}
		w := f.Stderr
		if w == nil {
			w = os.Stderr
		}
		fmt.Fprintln(w, InsecureWarning)
		return coapx.Trust{InsecureAnyGateway: true}, "-insecure-gateway", nil
	}
	path := f.CA
	if path == "" {
		p, err := secrets.ResourcePath(ExampleCA)
		if err != nil {
			return coapx.Trust{}, "", fmt.Errorf("-gateway-ca: %w", err)
		}
		path = p
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return coapx.Trust{}, "", fmt.Errorf("-gateway-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return coapx.Trust{}, "", fmt.Errorf("-gateway-ca: no PEM certificate in %s", path)
	}
	name := f.Name
	if name == "" {
		name = DefaultGatewayName
	}
	return coapx.Trust{RootCAs: pool, ServerName: name}, fmt.Sprintf("-gateway-ca %s, -gateway-name %s", path, name), nil
}

// untrusted returns the certificate verification failure in err, if any.
func untrusted(err error) error {
	var (
		ua x509.UnknownAuthorityError
		hn x509.HostnameError
		ci x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &ua):
		return ua
	case errors.As(err, &hn):
		return hn
	case errors.As(err, &ci):
		return ci
	}
	return nil
}

// Dial dials the gateway at rawURL (a coap or coaps URL, or host:port)
// with the trust f describes. A certificate that fails the check is
// reported with what it was checked against. logger receives the
// connection's debug lines; nil keeps it silent.
func (f Flags) Dial(ctx context.Context, rawURL string, logger *slog.Logger) (*thing.Gateway, error) {
	trust, trusted, err := f.trust()
	if err != nil {
		return nil, err
	}
	g, err := thing.DialGateway(ctx, thing.GatewayConfig{Address: rawURL, Trust: trust, Logger: logger})
	if verr := untrusted(err); verr != nil {
		// Say what the certificate was checked against, not the
		// transport layers it failed in.
		return nil, fmt.Errorf("cannot verify the gateway at %s: %w (%s; an iot-edge gateway needs -insecure-gateway)", rawURL, verr, trusted)
	}
	if err != nil {
		return nil, err
	}
	return g, nil
}
