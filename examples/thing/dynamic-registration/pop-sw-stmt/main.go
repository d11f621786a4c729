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
// (.secrets in the working directory if not given, where it is created on
// first use; a file named with -secrets is only read, unless
// -create-secrets). The software statement names -iss as its issuer, carries the
// thing's public key and is signed with the key software-publisher of
// resources/example.secrets, whose public half the local AM's software
// publisher agent iot-software-publisher holds. It prints the same five
// lines as manual-registration.
package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/thingway/thingway/examples/internal/program"
	"github.com/thingway/thingway/examples/internal/secrets"
	"github.com/thingway/thingway/thing"
)

type options struct {
	program.ThingFlags
	iss string
}

func main() {
	var o options
	o.Register(flag.CommandLine, "dynamic-pop-sw-stmt-thing", "auth-reg-tree")
	o.RegisterSecrets(flag.CommandLine, "", "Path to pre-created JWK set file")
	flag.StringVar(&o.iss, "iss", "https://soft-pub.example.com", "The software publisher issuer.")
	flag.Parse()
	o.Main(func(ctx context.Context) error { return run(ctx, o) }, o.Tree)
}

func run(ctx context.Context, o options) error {
	s, err := o.Open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	statement, err := secrets.SoftwareStatement(s.Key, o.iss)
	if err != nil {
		return err
	}

	fmt.Printf("Creating Thing %s... ", o.Name)
	th, err := thing.New(ctx, thing.Config{
		Connector: s.Connector,
		ID:        o.Name,
		Audience:  o.Audience,
		Key:       s.Key,
		// Registers the thing when the tree asks: a registration JWT
		// signed with the key, and the publisher's statement vouching for it.
		Registration: &thing.Registration{ThingType: "device", SoftwareStatement: statement},
		Logger:       s.Logger,
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
	o.PrintAccessToken(tok)

	return th.Logout(ctx)
}
