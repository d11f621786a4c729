// Coap-only authenticates a thing through a gateway, over CoAP and DTLS
// only, asks for an access token with the scope publish, and logs out:
// manual-registration's steps for a device that never speaks HTTP. Its
// binary links no HTTP client or server (docs/layout.md holds it to that),
// which keeps it small; docs/benchmarks.md has its size.
//
// The thing's private key is the entry named -name in the JWK set file
// -secrets (resources/example.secrets holds manual-thing's key). With a
// gateway in front of the local AM (./run.sh gateway) and manual-thing
// registered as the repository README shows:
//
//	./run.sh example thing/coap-only -url coap://:5683
//
// It prints:
//
//	Creating Thing manual-thing... Done
//	Requesting access token... Done
//	Access token: <token>
//	Expires in: 3599
//	Scope(s): [publish]
//
// The gateway's realm and tree apply. Its DTLS certificate is verified
// with -gateway-ca and -gateway-name (by default the example CA and
// thingway-gateway, what ./run.sh gateway presents); -insecure-gateway
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

	"github.com/thingway/thingway/examples/internal/gatewaytrust"
	"github.com/thingway/thingway/examples/internal/secrets"
	"github.com/thingway/thingway/thing"
)

type options struct {
	url, name, audience, secrets string
	debug                        bool
	gateway                      gatewaytrust.Flags
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "coap://:5683", "CoAP `URL` of the gateway (coap or coaps: both mean CoAP over DTLS)")
	flag.StringVar(&o.name, "name", "manual-thing", "Thing name")
	flag.StringVar(&o.audience, "audience", "/", "JWT audience")
	flag.StringVar(&o.secrets, "secrets", secrets.ExampleSecrets, "Path to pre-created JWK set file")
	flag.BoolVar(&o.debug, "debug", false, "Enable debug output")
	o.gateway.Register(flag.CommandLine)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, given(flag.CommandLine, "secrets"))
	stop()
	if err != nil {
		fmt.Printf("Fatal error: %s\n", err)
		os.Exit(1)
	}
}

// given says whether the flag name was on the command line.
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func run(ctx context.Context, o options, secretsGiven bool) error {
	var logger *slog.Logger
	if o.debug {
		logger = slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	path := o.secrets
	if !secretsGiven {
		// The default names the repository's file, wherever the program runs.
		p, err := secrets.ResourcePath(path)
		if err != nil {
			return err
		}
		path = p
	}
	key, err := (&secrets.Store{Path: path}).Signer(o.name)
	if err != nil {
		return err
	}
	g, err := o.gateway.Dial(ctx, o.url, logger)
	if err != nil {
		return err
	}
	defer g.Close()

	fmt.Printf("Creating Thing %s... ", o.name)
	th, err := thing.New(ctx, thing.Config{
		Connector: g,
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
