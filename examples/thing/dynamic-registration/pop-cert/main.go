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
// (.secrets in the working directory if not given, where it is created on
// first use; a file named with -secrets is only read, unless
// -create-secrets).
// Its certificate is the entry's x5c, or else a new one for CN=<name>,
// issued by the example CA (resources/example-ca.*.pem) that the local AM
// trusts. It prints the same five lines as manual-registration.
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
	o.Register(flag.CommandLine, "dynamic-pop-cert-thing", "auth-reg-tree")
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
	certs, err := o.Certificates()
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
		// carrying the certificate, signed with the key.
		Registration: &thing.Registration{ThingType: "device", Certificates: certs},
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
