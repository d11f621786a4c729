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

	"github.com/thingway/thingway/examples/internal/program"
	"github.com/thingway/thingway/thing"
)

func main() {
	var o program.ThingFlags
	o.Register(flag.CommandLine, "dynamic-thing", "auth-reg-tree")
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
		Connector:    s.Connector,
		ID:           o.Name,
		Audience:     o.Audience,
		Key:          s.Key,
		Registration: &thing.Registration{ThingType: "device", Certificates: certs},
		Logger:       s.Logger,
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
