package amclient_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
)

// readKey reads a PKCS#8 PEM private key.
func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return s, nil
}

// A thing with a certificate from the example CA registers itself, gets a
// restricted session and asks for an access token.
func Example() {
	srv := amtest.NewServer() // trusts the example CA
	defer srv.Close()

	key, err := readKey("../resources/eckey1.key.pem")
	if err != nil {
		fmt.Println(err)
		return
	}
	pemCerts, err := os.ReadFile("../resources/thingymabot.cert.pem")
	if err != nil {
		fmt.Println(err)
		return
	}
	certs, err := amtest.ParseCertificates(pemCerts)
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx := context.Background()
	c := &amclient.Client{URL: srv.URL, Realm: "/", HTTPClient: srv.Client()}
	s, err := c.Authenticate(ctx, "auth-reg-tree",
		callback.AuthenticateHandler{Audience: "/", ThingID: "thingymabot", Key: key},
		callback.RegisterHandler{Audience: "/", ThingID: "thingymabot", Key: key, Certificates: certs})
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, err := c.AccessToken(ctx, s, "publish")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Key != nil, tok.Scope, tok.TokenType, tok.ExpiresIn)
	// Output: true publish Bearer 3599
}
