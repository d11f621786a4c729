// Sw-stmt registers a thing with a software statement alone, so that AM
// gives it a unique ID, reads that ID from the thing's attributes, then
// authenticates the thing with a client assertion and asks for an access
// token with the scope publish. The flow mimics OAuth 2.0 dynamic client
// registration (RFC 7591) and JWT bearer client authentication (RFC 7523).
//
// It needs two trees: -reg-tree registers with the method "Software
// Statement" (and a default attribute thingType=device), -auth-tree
// authenticates with "Client Assertion" and issues unrestricted sessions.
// Start the local AM with that setting:
//
//	./run.sh am --config resources/am/sw-stmt.json
//	./run.sh example thing/dynamic-registration/sw-stmt -url http://127.0.0.1:8080/openam \
//		-audience http://127.0.0.1:8080/openam/oauth2/access_token -reg-tree reg-tree -auth-tree auth-tree
//
// The thing gets a new P-256 key on every run; it is never stored. The
// software statement names -iss as its issuer, carries the key's public
// half and is signed with the key software-publisher of
// resources/example.secrets. -audience is the aud of the client assertion:
// AM's OAuth 2.0 token endpoint. It prints:
//
//	Register thing using Software Statement... Done
//	Requesting attributes... Done
//	Attributes:  {map[_id:<uuid> thingConfig:[] thingKeys:[<JWK set>]]}
//	Authenticate thing using Client Assertion... Done
//	Requesting access token... Done
//	Access token: <token>
//	Expires in: 3599
//	Scope(s): [publish]
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/thingway/thingway/examples/internal/connect"
	"github.com/thingway/thingway/examples/internal/program"
	"github.com/thingway/thingway/examples/internal/secrets"
	"github.com/thingway/thingway/thing"
)

type options struct {
	program.Flags
	regTree, authTree, iss string
}

func main() {
	var o options
	o.Register(flag.CommandLine, "http://127.0.0.1:8080/openam/oauth2/access_token")
	flag.StringVar(&o.regTree, "reg-tree", "reg-tree", "Registration tree")
	flag.StringVar(&o.authTree, "auth-tree", "auth-tree", "Authentication tree")
	flag.StringVar(&o.iss, "iss", "https://soft-pub.example.com", "The software publisher issuer.")
	flag.Parse()
	o.Main(func(ctx context.Context) error { return run(ctx, o) }, o.regTree, o.authTree)
}

func run(ctx context.Context, o options) error {
	logger := o.Logger()
	regConn, err := o.Connect(ctx, o.regTree, logger)
	if err != nil {
		return err
	}
	defer regConn.Close()
	// Through a gateway both trees are the gateway's: one connection.
	authConn := regConn
	if !connect.ViaGateway(o.URL) {
		if authConn, err = o.Connect(ctx, o.authTree, logger); err != nil {
			return err
		}
		defer authConn.Close()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	statement, err := secrets.SoftwareStatement(key, o.iss)
	if err != nil {
		return err
	}

	// The statement alone registers the thing: no ID, no key, so the
	// session is not bound to a key and AM names the thing.
	fmt.Printf("Register thing using Software Statement... ")
	registered, err := thing.New(ctx, thing.Config{
		Connector:    regConn,
		Registration: &thing.Registration{SoftwareStatement: statement},
		Logger:       logger,
	})
	if err != nil {
		return err
	}
	fmt.Println("Done")

	fmt.Printf("Requesting attributes... ")
	attrs, err := registered.Attributes(ctx)
	if err != nil {
		return err
	}
	if err := registered.Logout(ctx); err != nil {
		return err
	}
	fmt.Println("Done")
	var all map[string]any
	if err := json.Unmarshal(attrs.Raw, &all); err != nil {
		return err
	}
	fmt.Printf("Attributes:  {%v}\n", all)
	if attrs.ID == "" {
		return errors.New("AM's attributes have no _id")
	}

	fmt.Printf("Authenticate thing using Client Assertion... ")
	th, err := thing.New(ctx, thing.Config{
		Connector: authConn,
		ID:        attrs.ID,
		Audience:  o.Audience, // a client assertion's aud is the token endpoint
		Key:       key,
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
	o.PrintAccessToken(tok)

	return th.Logout(ctx)
}
