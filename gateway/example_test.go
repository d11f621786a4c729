package gateway_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/thing"
)

// identity is an AM identity holding key's public part, as the evaluation
// guide registers things by hand.
func identity(thingType string, key crypto.Signer) map[string]any {
	kid, _ := callback.Thumbprint(key.Public())
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Use: "sig"}}})
	return map[string]any{"thingType": thingType, "thingKeys": string(set)}
}

// A gateway in front of the local AM, and a thing that gets an access
// token through it.
func Example() {
	gwKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	thingKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cfg := amtest.DefaultConfig()
	cfg.Realms["/"].Identities = map[string]map[string]any{
		"manual-gateway": identity("gateway", gwKey),
		"manual-thing":   identity("device", thingKey),
	}
	am := amtest.NewUnstartedServer()
	am.Config = cfg
	am.Start()
	defer am.Close()

	gw := &gateway.Server{
		AM:  &amclient.Client{URL: am.URL, Realm: "/", Tree: "auth-tree"},
		ID:  "manual-gateway",
		Key: gwKey,
	}
	l, err := gw.Listen("udp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- gw.Serve(l) }()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := thing.DialGateway(ctx, thing.GatewayConfig{
		Address: "coaps://" + l.Addr().String(),
		Trust:   coapx.Trust{InsecureAnyGateway: true}, // the example gateway's certificate is self-signed
	})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	th, err := thing.New(ctx, thing.Config{Connector: conn, ID: "manual-thing", Key: thingKey})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := th.AccessToken(ctx, "publish")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("scope:", tok.Scope)

	if err := gw.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(errors.Is(<-done, gateway.ErrServerClosed))
	// Output:
	// scope: [publish]
	// true
}
