// Package connect gives the example programs the [thing.Connector] that
// their -url flag names: AM itself for http(s) URLs, a Thingway (or
// iot-edge) gateway for coap(s) URLs, and the flags that say how a thing
// trusts the gateway's DTLS certificate.
//
// # Gateway trust
//
// [Flags] are [gatewaytrust.Flags]: -gateway-ca, -gateway-name and
// -insecure-gateway. They matter only for coap and coaps URLs. Through a
// gateway the realm and tree are the gateway's: -realm and -tree are
// ignored.
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
	"fmt"
	"io"
	"log/slog"
	"net/url"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/examples/internal/gatewaytrust"
	"github.com/thingway/thingway/thing"
)

// ExampleCA, DefaultGatewayName and InsecureWarning are
// [gatewaytrust]'s, named here for the programs that use this package.
const (
	ExampleCA          = gatewaytrust.ExampleCA
	DefaultGatewayName = gatewaytrust.DefaultGatewayName
	InsecureWarning    = gatewaytrust.InsecureWarning
)

// Flags say how a program trusts a gateway: see [gatewaytrust.Flags].
type Flags = gatewaytrust.Flags

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
		return gw.Dial(ctx, rawURL, logger)
	}
	return nil, fmt.Errorf("-url %q: unsupported scheme %q (want http, https, coap or coaps)", rawURL, u.Scheme)
}

// ViaGateway reports whether rawURL names a gateway (a coap or coaps URL).
func ViaGateway(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && (u.Scheme == "coap" || u.Scheme == "coaps")
}
