// Pop-cert registers a thing dynamically with proof of possession and a
// CA-signed certificate, asks for an access token with the scope publish,
// and logs out.
//
// The tree (-tree) must authenticate things with proof of possession and
// register unknown ones with the method "Proof of Possession &
// Certificate", as auth-reg-tree of the local AM (./run.sh am) does by
// default:
//
//	./run.sh example thing/dynamic-registration/pop-cert -name dynamic-thing -url http://127.0.0.1:8080/openam -tree auth-reg-tree
//
// The thing's key is the entry named -name in the JWK set file -secrets
// (.secrets in the working directory if empty), created there on first use.
// Its certificate is the entry's x5c, or else a new one for CN=<name>,
// issued by the example CA (resources/example-ca.*.pem) that the local AM
// trusts. It prints the same five lines as manual-registration.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/thingway/thingway/examples/internal/connect"
	"github.com/thingway/thingway/examples/internal/secrets"
	"github.com/thingway/thingway/thing"
)

type options struct {
	url, realm, audience, tree, name, secrets string
	debug                                     bool
	gw                                        connect.Flags
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080/openam", "URL of AM or Gateway")
	flag.StringVar(&o.realm, "realm", "/", "AM Realm")
	flag.StringVar(&o.audience, "audience", "/", "JWT audience")
	flag.StringVar(&o.tree, "tree", "iot-tree", "Authentication tree")
	flag.StringVar(&o.name, "name", "dynamic-pop-cert-thing", "Thing name")
	flag.StringVar(&o.secrets, "secrets", "", "Path to pre-created secret store")
	flag.BoolVar(&o.debug, "debug", false, "Enable debug output")
	o.gw.Register(flag.CommandLine)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Printf("Fatal error: %s\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	var logger *slog.Logger
	if o.debug {
		logger = slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	conn, err := connect.New(ctx, o.url, o.realm, o.tree, o.gw, logger)
	if err != nil {
		return err
	}
	defer conn.Close()
	store := &secrets.Store{Path: o.secrets}
	key, err := store.Signer(o.name)
	if err != nil {
		return err
	}
	certs, err := store.Certificates(o.name)
	if err != nil {
		return err
	}

	fmt.Printf("Creating Thing %s... ", o.name)
	th, err := thing.New(ctx, thing.Config{
		Connector: conn,
		ID:        o.name,
		Audience:  o.audience,
		Key:       key,
		// Registers the thing when the tree asks: a registration JWT
		// carrying the certificate, signed with the key.
		Registration: &thing.Registration{ThingType: "device", Certificates: certs},
		Logger:       logger,
	})
	if err != nil {
		return err
	}
	fmt.Println("Done")

	fmt.Printf("Requesting access token... ")
	tok, err := th.AccessToken(ctx, "publish")
	if err != nil {
		return err
	}
	if o.debug {
		fmt.Printf("RequestAccessToken response: %s\n", tok.Raw)
	}
	fmt.Println("Done")
	fmt.Println("Access token:", tok.AccessToken)
	fmt.Println("Expires in:", tok.ExpiresIn)
	fmt.Println("Scope(s):", tok.Scope)

	return th.Logout(ctx)
}
