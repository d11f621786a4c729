package connect

import (
	"context"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct{ url, err string }{
		{"http://127.0.0.1:8080/openam", ""},
		{"http:///openam", `-url "http:///openam" has no host`},
		{"udp://:5683", `unsupported scheme "udp"`},
	} {
		c, err := New(context.Background(), tc.url, "/", "auth-tree", Flags{}, nil)
		if tc.err == "" && (err != nil || c == nil) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("New(%q) = %v, %v; want error %q", tc.url, c, err, tc.err)
		}
	}
	for url, want := range map[string]bool{"coap://:5683": true, "coaps://gw:5684": true, "http://am": false, "%": false} {
		if ViaGateway(url) != want {
			t.Errorf("ViaGateway(%q) = %v", url, !want)
		}
	}
}
