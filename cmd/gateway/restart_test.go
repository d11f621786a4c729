package main

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/internal/pemkey"
	"github.com/thingway/thingway/thing"
)

// A graceful restart with --session-file: the gateway saves its DTLS
// sessions on SIGTERM, and the next process on the same address answers
// the same thing's next request without a handshake.
func TestGracefulRestart(t *testing.T) {
	am := newSwitchableAM(t)
	am.start(t)
	dir := t.TempDir()
	keyFile, file := filepath.Join(dir, "session.key"), filepath.Join(dir, "sessions")
	secret := make([]byte, 32)
	rand.Read(secret)
	if err := os.WriteFile(keyFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	args := func(addr string) []string {
		return []string{"--url", am.url(), "--name", "manual-gateway", "--realm", "/", "--tree", "auth-tree", "--key", eckey1,
			"--address", addr, "--metrics-address", "127.0.0.1:0", "--session-file", file, "--session-key", keyFile}
	}
	p := start(t, nil, args("127.0.0.1:0")...)
	p.Stdout.Wait("IoT Gateway server started.\n")
	addr := address(p)
	p.Stderr.Wait(`msg="no session file: things handshake anew"`)

	b, err := os.ReadFile(eckey1)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pemkey.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := thing.DialGateway(ctx, thing.GatewayConfig{Address: addr, Trust: coapx.Trust{InsecureAnyGateway: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	th, err := thing.New(ctx, thing.Config{Connector: conn, ID: amtest.GuideThingID, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := th.AccessToken(ctx, "publish"); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Exit(); code != 0 {
		t.Fatalf("exit status %d\n%s", code, p.Stderr)
	}
	if !strings.Contains(p.Stderr.String(), `msg="DTLS sessions saved" file=`+file+` sessions=1 `) {
		t.Errorf("no line of one session saved:\n%s", p.Stderr)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("session file mode %v, want 0600", fi.Mode().Perm())
	}

	p2 := start(t, nil, args(addr)...)
	metrics := "http://" + p2.Stderr.WaitMatch(metricsLine)[1]
	p2.Stdout.Wait("IoT Gateway server started.\n")
	if got := address(p2); got != addr {
		t.Fatalf("the second gateway serves on %s, want %s", got, addr)
	}
	p2.Stderr.Wait(`msg="DTLS sessions restored from the session file"`)
	if _, err := th.AccessToken(ctx, "publish"); err != nil {
		t.Fatalf("access token after the restart: %v", err)
	}
	_, expo := httpGet(t, metrics+"/metrics")
	if h, r := metricValue(expo, "thingway_gateway_dtls_handshakes_total"), metricValue(expo, "thingway_gateway_dtls_resumptions_total", `from="file"`); h != 0 || r != 1 {
		t.Errorf("after the restart: %v handshakes, %v resumptions from the file; want 0, 1", h, r)
	}
	p2.Signal(syscall.SIGTERM)
	if code := p2.Exit(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// --session-file needs --session-key, of 32 bytes at least.
func TestSessionFileFlags(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, []byte("too short"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--session-file", filepath.Join(dir, "s")}, "--session-file and --session-key go together"},
		{[]string{"--session-file", filepath.Join(dir, "s"), "--session-key", short}, "9 bytes; want at least 32 secret bytes"},
		{[]string{"--park-after", "-1s"}, "--park-after must not be negative"},
	} {
		p := start(t, nil, append([]string{"--address", "127.0.0.1:0"}, c.args...)...)
		if code := p.Exit(); code != 1 || !strings.Contains(p.Stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", c.args, code, p.Stderr, c.want)
		}
	}
}
