// Package connect gives the example programs the [thing.Connector] that
// their -url flag names: AM itself for http(s) URLs, a Thingway (or
// iot-edge) gateway for coap(s) URLs, and the flags that say how a thing
// trusts the gateway's DTLS certificate.
//
// # Gateway trust
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
// They matter only for coap and coaps URLs. Both schemes mean CoAP over
// DTLS; an empty host (coap://:5683) is the local host. Through a gateway
// the realm and tree are the gateway's: -realm and -tree are ignored.
//
// # Usage
//
//	var gw connect.Flags
//	gw.Register(flag.CommandLine)
//	flag.Parse()
//	conn, err := connect.New(ctx, "coap://:5683", "/", "auth-tree", gw, logger)
//	if err != nil {
//		return err
//	}
//	defer conn.Close()
//	th, err := thing.New(ctx, thing.Config{Connector: conn, ID: "manual-thing", Key: key})
package connect

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"

	"github.com/thingway/thingway/amclient"
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
// and a note to its usage that -realm and -tree are ignored over CoAP.
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
		fmt.Fprint(out, "\nWith a coap:// or coaps:// -url (a gateway, CoAP over DTLS; coap://:5683 is the local host),\nthe gateway's realm and tree apply: -realm and -tree are ignored.\n")
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

// Connection is a [thing.Connector] that the program closes when done.
type Connection interface {
	thing.Connector
	io.Closer
}

// direct is AM over HTTP(S): nothing to close.
type direct struct{ *amclient.Client }

func (direct) Close() error { return nil }

// New returns a connection for rawURL. For http and https, an
// *amclient.Client that runs tree in realm (AM's deployment URL, e.g.
// http://127.0.0.1:8080/openam). For coap and coaps (a gateway's address,
// e.g. coap://:5683), a [thing.Gateway] dialled with the trust gw
// describes; realm and tree are the gateway's and are ignored. logger
// receives the connection's debug lines; nil keeps it silent.
func New(ctx context.Context, rawURL, realm, tree string, gw Flags, logger *slog.Logger) (Connection, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("-url %q has no host", rawURL)
		}
		return direct{&amclient.Client{URL: rawURL, Realm: realm, Tree: tree, Logger: logger}}, nil
	case "coap", "coaps":
		trust, trusted, err := gw.trust()
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
	return nil, fmt.Errorf("-url %q: unsupported scheme %q (want http, https, coap or coaps)", rawURL, u.Scheme)
}

// ViaGateway reports whether rawURL names a gateway (a coap or coaps URL).
func ViaGateway(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && (u.Scheme == "coap" || u.Scheme == "coaps")
}
