// Pop-sw-stmt registers a thing dynamically with proof of possession and a
// software statement, asks for an access token with the scope publish, and
// logs out.
//
// The tree (-tree) must authenticate things with proof of possession and
// register unknown ones with the method "Proof of Possession & Software
// Statement". Start the local AM with that setting:
//
//	./run.sh am --config resources/am/pop-sw-stmt.json
//	./run.sh example thing/dynamic-registration/pop-sw-stmt -name dynamic-thing -url http://127.0.0.1:8080/openam -tree auth-reg-tree
//
// The thing's key is the entry named -name in the JWK set file -secrets
// (.secrets in the working directory if empty), created there on first
// use. The software statement names -iss as its issuer, carries the
// thing's public key and is signed with the key software-publisher of
// resources/example.secrets, whose public half the local AM's software
// publisher agent iot-software-publisher holds. It prints the same five
// lines as manual-registration.
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
	url, realm, audience, tree, name, secrets, iss string
	debug                                          bool
	gw                                             connect.Flags
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080/openam", "URL of AM or Gateway")
	flag.StringVar(&o.realm, "realm", "/", "AM Realm")
	flag.StringVar(&o.audience, "audience", "/", "JWT audience")
	flag.StringVar(&o.tree, "tree", "iot-tree", "Authentication tree")
	flag.StringVar(&o.name, "name", "dynamic-pop-sw-stmt-thing", "Thing name")
	flag.StringVar(&o.secrets, "secrets", "", "Path to pre-created JWK set file")
	flag.StringVar(&o.iss, "iss", "https://soft-pub.example.com", "The software publisher issuer.")
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
	statement, err := secrets.SoftwareStatement(key, o.iss)
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
		// signed with the key, and the publisher's statement vouching for it.
		Registration: &thing.Registration{ThingType: "device", SoftwareStatement: statement},
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
