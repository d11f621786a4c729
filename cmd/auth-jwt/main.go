// Command auth-jwt signs the JWT that answers the callback of AM's
// Authenticate Thing node (proof of possession) or, given a certificate, of
// its Register Thing node, for walking through AM's REST calls with curl.
//
// It prints the compact JWS with no trailing newline, so that its output
// can be pasted into a request body with $(...).
//
// # Usage
//
//	auth-jwt -s manual-thing -a / -c "$CHALLENGE" -k resources/eckey1.key.pem --kid "$KID"
//	auth-jwt -s thingymabot -a / -c "$CHALLENGE" -k resources/eckey1.key.pem \
//		--kid "$KID" --certificate resources/thingymabot.cert.pem
//
// The JWT header holds only alg, derived from the key. The claims are sub,
// aud, iat, exp (iat + 5 minutes), nonce (the challenge) and cnf {kid};
// with --certificate, cnf {jwk} with the public key, kid, use "sig" and
// x5c, plus thingType (--type). The kid is --kid, by default the key's
// RFC 7638 thumbprint (padded base64url), the key ID that pem-to-jwks, the
// SDK and the README register; iot-edge's tool used pop.cnf, which
// --kid pop.cnf gives.
//
// Errors are reported on one line on stderr, with exit status 1.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/thingway/thingway/internal/cliutil"
	"github.com/thingway/thingway/internal/jwttool"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run runs the command with args (args[0] is the program name) and returns
// the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	return cliutil.Run(&cli.App{
		Name:      "auth-jwt",
		Usage:     "sign a JWT for AM's Authenticate Thing or Register Thing callback",
		UsageText: "auth-jwt -s ID -a AUDIENCE -c CHALLENGE -k KEY.pem [--kid KID] [--certificate CERT.pem [--type TYPE]]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "subject", Aliases: []string{"s"}, Usage: "thing ID, the sub claim (required)"},
			&cli.StringFlag{Name: "audience", Aliases: []string{"a"}, Usage: "the aud claim, usually the realm path such as / (required)"},
			&cli.StringFlag{Name: "challenge", Aliases: []string{"c"}, Usage: "the callback's challenge, the nonce claim (required)"},
			&cli.StringFlag{Name: "key", Aliases: []string{"k"}, Usage: "PEM file of the private key (required)"},
			&cli.StringFlag{Name: "kid", Usage: "key ID (default: the key's RFC 7638 thumbprint, as the SDK registers it; iot-edge's tools use pop.cnf)"},
			&cli.StringFlag{Name: "certificate", Usage: "PEM file of the key's certificate (chain, leaf first): makes a registration JWT"},
			&cli.StringFlag{Name: "type", Value: "device", Usage: "thing type of a registration JWT: device, service or gateway"},
		},
		Action: func(c *cli.Context) error {
			if err := cliutil.CheckArgs(c, "subject", "audience", "challenge", "key"); err != nil {
				return err
			}
			switch t := c.String("type"); t {
			case "device", "service", "gateway":
			default:
				return fmt.Errorf("--type %q is not device, service or gateway", t)
			}
			key, err := jwttool.ReadKey(c.String("key"))
			if err != nil {
				return fmt.Errorf("--key: %w", err)
			}
			opts := jwttool.AuthJWTOptions{
				Subject:   c.String("subject"),
				Audience:  c.String("audience"),
				Challenge: c.String("challenge"),
				Key:       key,
				KeyID:     c.String("kid"),
				ThingType: c.String("type"),
			}
			if path := c.String("certificate"); path != "" {
				if opts.Certificates, err = jwttool.ReadCertificates(path); err != nil {
					return fmt.Errorf("--certificate: %w", err)
				}
			}
			jwt, err := jwttool.AuthJWT(opts)
			if err != nil {
				return err
			}
			_, err = io.WriteString(c.App.Writer, jwt)
			return err
		},
	}, args, stdout, stderr)
}
