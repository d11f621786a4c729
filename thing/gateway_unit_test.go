package thing_test

import (
	"testing"

	"github.com/thingway/thingway/thing"
)

func TestGatewayAddress(t *testing.T) {
	for in, want := range map[string]string{
		"coap://:5683":         ":5683",
		"coaps://gw.example":   "gw.example:5684",
		"coap://gw.example":    "gw.example:5683",
		"coaps://[::1]:6000/x": "[::1]:6000",
		"127.0.0.1:5683":       "127.0.0.1:5683",
	} {
		if got, err := thing.GatewayAddress(in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "http://gw:80", "gw.example", "coap+tcp://gw:1"} {
		if got, err := thing.GatewayAddress(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}
