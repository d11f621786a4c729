package program_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thingway/thingway/examples/internal/program"
	"github.com/thingway/thingway/examples/internal/secrets"
	"github.com/thingway/thingway/thing"
)

// With -debug, AM's response comes before the lines of the guide.
func ExampleFlags_PrintAccessToken() {
	o := program.Flags{Debug: true}
	fmt.Printf("Requesting access token... ")
	o.PrintAccessToken(&thing.AccessToken{
		AccessToken: "eyJ0eXAiOiJKV1Qi",
		Scope:       []string{"publish"},
		ExpiresIn:   3599,
		Raw:         json.RawMessage(`{"access_token":"eyJ0eXAiOiJKV1Qi","scope":"publish","expires_in":3599}`),
	})
	// Output:
	// Requesting access token... RequestAccessToken response: {"access_token":"eyJ0eXAiOiJKV1Qi","scope":"publish","expires_in":3599}
	// Done
	// Access token: eyJ0eXAiOiJKV1Qi
	// Expires in: 3599
	// Scope(s): [publish]
}

func TestInRepository(t *testing.T) {
	root, err := secrets.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"default", nil, filepath.Join(root, "resources", "example.secrets")},
		{"given", []string{"-secrets", "my.secrets"}, "my.secrets"},
		{"given as the default", []string{"-secrets", secrets.ExampleSecrets}, secrets.ExampleSecrets},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			path := fs.String("secrets", secrets.ExampleSecrets, "")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if err := program.InRepository(fs, "secrets"); err != nil {
				t.Fatal(err)
			}
			if *path != tc.want {
				t.Errorf("-secrets = %q, want %q", *path, tc.want)
			}
		})
	}
	if err := program.InRepository(flag.NewFlagSet("test", flag.ContinueOnError), "secrets"); err == nil {
		t.Error("no error for a flag that is not defined")
	}
}

func TestRegister(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var o program.ThingFlags
	o.Register(fs, "my-thing", "auth-tree")
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	want := program.ThingFlags{
		Flags: program.Flags{URL: program.DefaultURL, Realm: "/", Audience: "/", Gateway: o.Gateway},
		Tree:  "auth-tree",
		Name:  "my-thing",
	}
	if o != want {
		t.Errorf("defaults = %+v, want %+v", o, want)
	}
	if o.Gateway.Name != "thingway-gateway" {
		t.Errorf("-gateway-name = %q, want thingway-gateway", o.Gateway.Name)
	}
}

func TestOpen(t *testing.T) {
	store := filepath.Join(t.TempDir(), ".secrets")
	o := program.ThingFlags{Flags: program.Flags{URL: "http://127.0.0.1:1/openam"}, Name: "t1", Secrets: store, CreateSecrets: true}

	s, err := o.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Connector == nil || s.Key == nil || s.Logger != nil {
		t.Errorf("Open = %+v, want a connector, a key and no logger", s)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	again, err := (&secrets.Store{Path: store}).Signer("t1")
	if err != nil || !again.Public().(*ecdsa.PublicKey).Equal(s.Key.Public()) {
		t.Errorf("the store does not hold the key Open returned (%v)", err)
	}

	o.Debug = true
	if s, err = o.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Logger == nil {
		t.Error("with -debug, Open gives no logger")
	}
	s.Close()

	// The connection comes first: a bad -url leaves the store alone.
	o = program.ThingFlags{Flags: program.Flags{URL: "ftp://x"}, Name: "t1", Secrets: filepath.Join(t.TempDir(), ".secrets")}
	if _, err := o.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "unsupported scheme") {
		t.Errorf("Open with -url ftp://x: %v", err)
	}
	if _, err := os.Stat(o.Secrets); !os.IsNotExist(err) {
		t.Errorf("Open with a bad -url wrote the store: %v", err)
	}
}
