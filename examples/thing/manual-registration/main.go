// Manual-registration authenticates a thing whose identity an administrator
// created in AM by hand, asks for an access token with the scope publish,
// and logs out.
//
// The thing's private key is the entry named -name in the JWK set file
// -secrets (resources/example.secrets holds manual-thing's key); the key ID
// it presents is the key's JWK thumbprint, as in the identity's thingKeys.
// Against the local AM (./run.sh am), after registering manual-thing as the
// repository README shows:
//
//	./run.sh example thing/manual-registration -name manual-thing -url http://127.0.0.1:8080/openam -tree auth-tree
//
// It prints:
//
//	Creating Thing manual-thing... Done
//	Requesting access token... Done
//	Access token: <token>
//	Expires in: 3599
//	Scope(s): [publish]
//
// Through a gateway (./run.sh gateway), as in the guide's "Connect a thing
// to the gateway":
//
//	./run.sh example thing/manual-registration -name manual-thing -url coap://:5683
//
// The gateway's realm and tree then apply, and its DTLS certificate is
// verified with -gateway-ca and -gateway-name (by default the example CA
// and thingway-gateway, what ./run.sh gateway presents); -insecure-gateway
// accepts any, for an iot-edge gateway.
//
// On failure it prints "Fatal error: <error>" and exits with status 1.
// -debug writes the SDK's debug log and AM's token response to stdout.
package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/thingway/thingway/examples/internal/program"
	"github.com/thingway/thingway/examples/internal/secrets"
	"github.com/thingway/thingway/thing"
)

func main() {
	var o program.ThingFlags
	o.Register(flag.CommandLine, "manual-thing", "auth-tree")
	o.RegisterSecrets(flag.CommandLine, secrets.ExampleSecrets, "Path to pre-created JWK set file")
	flag.Parse()
	// The default names the repository's file, wherever the program runs.
	if err := program.InRepository(flag.CommandLine, "secrets"); err != nil {
		program.Fatal(err)
	}
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
		Key:       s.Key, // the key ID defaults to the key's thumbprint
		Logger:    s.Logger,
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
