// Pop registers a thing dynamically with proof of possession alone (no
// certificate, no software statement) and asks for an access token with
// the scope publish. Use this method only for things that are already
// trusted: no third party vouches for them.
//
// The tree (-tree) must authenticate things with proof of possession and
// register unknown ones with the method "Proof of Possession". Start the
// local AM with that setting:
//
//	./run.sh am --config resources/am/pop.json
//	./run.sh example thing/dynamic-registration/pop -name dynamic-thing -url http://127.0.0.1:8080/openam -tree auth-reg-tree
//
// The thing's key is the entry named -name in the JWK set file -secrets
// (.secrets in the working directory if empty), created there on first
// use. It prints the same five lines as manual-registration. Unlike the
// other examples it does not log out, as the iot-edge original does not.
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
	flag.StringVar(&o.name, "name", "dynamic-pop-thing", "Thing name")
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
	key, err := (&secrets.Store{Path: o.secrets}).Signer(o.name)
	if err != nil {
		return err
	}

	fmt.Printf("Creating Thing %s... ", o.name)
	th, err := thing.New(ctx, thing.Config{
		Connector: conn,
		ID:        o.name,
		Audience:  o.audience,
		Key:       key,
		// An empty Registration registers with a JWT signed with the key
		// and nothing else.
		Registration: &thing.Registration{ThingType: "device"},
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
	return nil
}
