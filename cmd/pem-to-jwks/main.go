// Command pem-to-jwks writes the public JWK set of a private key in a PEM
// file: the thingKeys value of an identity registered by hand.
//
// # Usage
//
//	pem-to-jwks --in resources/eckey1.key.pem
//	pem-to-jwks --in resources/eckey1.key.pem --kid my-key --out thing.jwks
//
// The set holds one key with the members, in this order, use ("sig"),
// kty, kid, then crv, x, y (EC), n, e (RSA) or crv, x (Ed25519); no alg.
// The kid is --kid, by default the key's RFC 7638 thumbprint in padded
// base64url, the kid AM and the Thingway SDK use (--thumbprint-kid says
// so explicitly; iot-edge's tool used pop.cnf, which --kid pop.cnf gives). On stdout the set is followed by a newline; a file
// written with --out (mode 0644) has none.
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
		Name:      "pem-to-jwks",
		Usage:     "write the public JWK set of a private key PEM file",
		UsageText: "pem-to-jwks --in KEY.pem [--out FILE] [--kid KID | --thumbprint-kid]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "in", Usage: "PEM file of the private key (required)"},
			&cli.StringFlag{Name: "out", Usage: "output file (default: stdout)"},
			&cli.StringFlag{Name: "kid", Usage: "key ID (default: the key's RFC 7638 thumbprint, as the SDK registers it; iot-edge's tools use pop.cnf)"},
			&cli.BoolFlag{Name: "thumbprint-kid", Usage: "use the key's RFC 7638 thumbprint (padded base64url) as key ID, the default"},
		},
		Action: func(c *cli.Context) error {
			if err := cliutil.CheckArgs(c, "in"); err != nil {
				return err
			}
			if c.IsSet("kid") && c.Bool("thumbprint-kid") {
				return fmt.Errorf("--kid and --thumbprint-kid cannot be used together")
			}
			key, err := jwttool.ReadKey(c.String("in"))
			if err != nil {
				return fmt.Errorf("--in: %w", err)
			}
			jwks, err := jwttool.PEMToJWKS(jwttool.PEMToJWKSOptions{
				Key:             key,
				KeyID:           c.String("kid"),
				ThumbprintKeyID: c.Bool("thumbprint-kid"),
			})
			if err != nil {
				return err
			}
			if out := c.String("out"); out != "" {
				if err := os.WriteFile(out, jwks, 0o644); err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				return nil
			}
			_, err = fmt.Fprintf(c.App.Writer, "%s\n", jwks)
			return err
		},
	}, args, stdout, stderr)
}
