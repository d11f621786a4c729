// User-token registers a thing dynamically (proof of possession and a
// certificate, as pop-cert), then asks a person to let it act for them
// with the OAuth 2.0 device authorization grant (RFC 8628): it requests a
// user code for the scopes publish and subscribe, prints the URL where the
// person approves, and polls for the user's access token. It then
// introspects the token, refreshes it with the scope publish only,
// introspects the new token and logs out.
//
//	./run.sh example thing/user-token -name user-authorized-thing -url http://127.0.0.1:8080/openam -tree auth-reg-tree
//
// The person (bjensen in the evaluation guide) opens the printed URL, signs
// in and allows the request (or the decision is posted with curl; the
// repository README shows how). Through a gateway, -url coap://:5683.
//
// The key and certificate come from the JWK set file -secrets (.secrets in
// the working directory if empty), as in pop-cert. Ctrl-C stops the wait.
package main

import (
	"context"
	"encoding/json"
	"errors"
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
	flag.StringVar(&o.name, "name", "dynamic-thing", "Thing name")
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
		Connector:    conn,
		ID:           o.name,
		Audience:     o.audience,
		Key:          key,
		Registration: &thing.Registration{ThingType: "device", Certificates: certs},
		Logger:       logger,
	})
	if err != nil {
		return err
	}
	fmt.Println("Done")

	fmt.Printf("\nRequesting user code... ")
	da, err := th.UserCode(ctx, "publish", "subscribe")
	if err != nil {
		return err
	}
	compact, err := json.Marshal(da)
	if err != nil {
		return err
	}
	fmt.Println("Done\n", "User code response:", string(compact))

	fmt.Printf("Requesting user access token... To authorise the request, go to \n\n\t%s\n\n", da.VerificationURIComplete)
	tok, err := th.UserToken(ctx, da)
	if err != nil {
		return err
	}
	fmt.Println("Done\n", "Access token response:", indented(tok.Raw))

	if err := introspect(ctx, th, tok.AccessToken); err != nil {
		return err
	}

	if tok.RefreshToken == "" {
		return errors.New("AM's access token response has no refresh token")
	}
	fmt.Printf("\nRefreshing access token with reduced scope... ")
	tok, err = th.RefreshAccessToken(ctx, tok.RefreshToken, "publish")
	if err != nil {
		return err
	}
	fmt.Println("Done\n", "Access token response:", indented(tok.Raw))

	if err := introspect(ctx, th, tok.AccessToken); err != nil {
		return err
	}
	return th.Logout(ctx)
}

func introspect(ctx context.Context, th *thing.Thing, token string) error {
	fmt.Printf("\nIntrospecting access token to get more information... ")
	in, err := th.IntrospectAccessToken(ctx, token)
	if err != nil {
		return err
	}
	if !in.Active {
		return errors.New("introspection indicates that the token is inactive")
	}
	b, err := json.Marshal(in.Claims)
	if err != nil {
		return err
	}
	fmt.Println("Done\n", "Introspection response:", indented(b))
	return nil
}

// indented re-encodes a JSON object with its keys sorted, each line after
// the first prefixed by one space and indented by four.
func indented(raw []byte) string {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return string(raw)
	}
	b, err := json.MarshalIndent(m, " ", "    ")
	if err != nil {
		return string(raw)
	}
	return string(b)
}
