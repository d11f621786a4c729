package main

import (
	"bytes"
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/thingway/thingway/coapx"
)

// --max-pending-handshakes, --handshake-timeout, --max-request-bytes
// (here from GATEWAY_MAX_REQUEST_BYTES), --max-auth-per-minute and
// --max-concurrent-auth (GATEWAY_MAX_CONCURRENT_AUTH) reach the gateway: a
// larger body gets 4.13 with the limit in Size1, a third authentication
// step in a minute 5.03 with Max-Age.
func TestLimitFlags(t *testing.T) {
	p := start(t, []string{"GATEWAY_MAX_REQUEST_BYTES=2000", "GATEWAY_MAX_CONCURRENT_AUTH=5"}, "--address", "127.0.0.1:0",
		"--max-pending-handshakes", "7", "--handshake-timeout", "3s", "--max-auth-per-minute", "2")
	line := p.Stderr.WaitMatch(servingAddr)[0]
	for _, attr := range []string{"max_pending_handshakes=7", "handshake_timeout=3s", "max_request_bytes=2000",
		"max_auth_per_minute=2", "max_concurrent_auth=5"} {
		if !strings.Contains(line, attr) {
			t.Errorf("no %s in the serving line %q", attr, line)
		}
	}
	cc := dialThing(t, address(p), coapx.Trust{InsecureAnyGateway: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cc.Post(ctx, coapx.PathAuthenticate, coapx.AppJSON, bytes.NewReader(bytes.Repeat([]byte{' '}, 3000)))
	if err != nil {
		t.Fatal(err)
	}
	if size1, err := resp.GetOptionUint32(message.Size1); resp.Code() != codes.RequestEntityTooLarge || err != nil || size1 != 2000 {
		t.Errorf("3000-byte body = %v, Size1 %d (%v); want 4.13 and 2000", resp.Code(), size1, err)
	}
	// Two authentication steps a minute, then 5.03 with Max-Age.
	for i := range 3 {
		resp, err := cc.Post(ctx, coapx.PathAuthenticate, coapx.AppJSON, bytes.NewReader([]byte(`{}`)))
		if err != nil {
			t.Fatal(err)
		}
		maxAge, _ := resp.GetOptionUint32(message.MaxAge)
		if want := codes.Valid; i < 2 && resp.Code() != want {
			t.Errorf("step %d = %v, want %v", i+1, resp.Code(), want)
		} else if i == 2 && (resp.Code() != codes.ServiceUnavailable || maxAge < 1) {
			t.Errorf("third step in a minute = %v, Max-Age %d; want 5.03 with Max-Age", resp.Code(), maxAge)
		}
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Exit(); code != 0 {
		t.Errorf("exit status %d\nstderr:\n%s", code, p.Stderr)
	}
}
