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
// (.secrets in the working directory if not given, where it is created on
// first use; a file named with -secrets is only read, unless
// -create-secrets). It prints the same five lines as manual-registration. Unlike the
// other examples it does not log out, as the iot-edge original does not.
package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/thingway/thingway/examples/internal/program"
	"github.com/thingway/thingway/thing"
)

func main() {
	var o program.ThingFlags
	o.Register(flag.CommandLine, "dynamic-pop-thing", "auth-reg-tree")
	o.RegisterSecrets(flag.CommandLine, "", "Path to pre-created secret store")
	flag.Parse()
	o.Main(func(ctx context.Context) error { return run(ctx, o) }, o.Tree)
}

func run(ctx context.Context, o program.ThingFlags) error {
	s, err := o.Open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()

	fmt.Printf("Creating Thing %s... ", o.Name)
	th, err := thing.New(ctx, thing.Config{
		Connector: s.Connector,
		ID:        o.Name,
		Audience:  o.Audience,
		Key:       s.Key,
		// An empty Registration registers with a JWT signed with the key
		// and nothing else.
		Registration: &thing.Registration{ThingType: "device"},
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
	return nil
}
