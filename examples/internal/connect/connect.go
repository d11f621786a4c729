// Package connect gives the example programs the [thing.Connector] that
// their -url flag names: AM itself for http(s) URLs, a Thingway gateway for
// coap(s) URLs.
//
// # Usage
//
//	conn, err := connect.New("http://127.0.0.1:8080/openam", "/", "auth-tree", logger)
//	if err != nil {
//		return err
//	}
//	th, err := thing.New(ctx, thing.Config{Connector: conn, ID: "manual-thing", Key: key})
package connect

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/thing"
)

// ErrCoAPUnavailable is returned for coap and coaps URLs until the gateway
// transport lands.
var ErrCoAPUnavailable = errors.New("coap transport not available yet (gateway issue)")

// New returns a connector for rawURL. For http and https, an
// *amclient.Client that runs tree in realm (AM's deployment URL, e.g.
// http://127.0.0.1:8080/openam). For coap and coaps (a gateway's address,
// e.g. coap://:5683), where the gateway's realm and tree apply,
// [ErrCoAPUnavailable] for now. logger receives the client's debug lines;
// nil keeps it silent.
func New(rawURL, realm, tree string, logger *slog.Logger) (thing.Connector, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("-url %q has no host", rawURL)
		}
		return &amclient.Client{URL: rawURL, Realm: realm, Tree: tree, Logger: logger}, nil
	case "coap", "coaps":
		return nil, ErrCoAPUnavailable
	}
	return nil, fmt.Errorf("-url %q: unsupported scheme %q (want http, https, coap or coaps)", rawURL, u.Scheme)
}
