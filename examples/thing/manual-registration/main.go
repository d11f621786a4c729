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
	flag.StringVar(&o.name, "name", "manual-thing", "Thing name")
	flag.StringVar(&o.secrets, "secrets", secrets.ExampleSecrets, "Path to pre-created JWK set file")
	flag.BoolVar(&o.debug, "debug", false, "Enable debug output")
	o.gw.Register(flag.CommandLine)
	flag.Parse()
	if !isSet("secrets") {
		// The default names the repository's file, wherever the program runs.
		p, err := secrets.ResourcePath(o.secrets)
		if err != nil {
			fatal(err)
		}
		o.secrets = p
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fatal(err)
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
		Key:       key, // the key ID defaults to the key's thumbprint
		Logger:    logger,
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

// isSet reports whether the flag name was given on the command line.
func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func fatal(err error) {
	fmt.Printf("Fatal error: %s\n", err)
	os.Exit(1)
}
