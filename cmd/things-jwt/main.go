// Command things-jwt signs the body of a request made with a restricted
// (proof-of-possession) AM session, for walking through AM's things
// endpoint with curl.
//
// It prints the compact JWS with no trailing newline; send it as the body
// with Content-Type: application/jose.
//
// # Usage
//
//	things-jwt -k resources/eckey1.key.pem -n 1 \
//		-u "$AM/json/things/*?_action=get_access_token" \
//		--custom '{"csrf":"'"$TOKEN"'","scope":["publish"]}'
//
// The JWS header is {alg, api, aud, nonce}: alg derived from the key, api
// the request's Accept-API-Version (--version), aud the exact request URL
// (--url) and nonce a JSON integer (--nonce; by default the current Unix
// time, which grows between calls). The payload is the --custom JSON object
// as given: add the session token as "csrf" yourself.
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
		Name:      "things-jwt",
		Usage:     "sign the body of a request made with a restricted AM session",
		UsageText: "things-jwt -u URL -k KEY.pem [-n NONCE] [--version API] [--custom JSON]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Aliases: []string{"u"}, Usage: "exact request URL, query included: the aud header (required)"},
			&cli.StringFlag{Name: "key", Aliases: []string{"k"}, Usage: "PEM file of the private key the session is bound to (required)"},
			&cli.Int64Flag{Name: "nonce", Aliases: []string{"n"}, Value: -1, Usage: "the nonce header; -1 for the current Unix time"},
			// The api header, not the program's version: cliutil.Run
			// hides urfave/cli's --version.
			&cli.StringFlag{Name: "version", Value: jwttool.DefaultAPIVersion, Usage: "the api header: the request's Accept-API-Version"},
			&cli.StringFlag{Name: "custom", Value: "{}", Usage: "claims: a JSON object, such as {\"csrf\":\"TOKEN\",\"scope\":[\"publish\"]}"},
		},
		Action: func(c *cli.Context) error {
			if err := cliutil.CheckArgs(c, "url", "key"); err != nil {
				return err
			}
			key, err := jwttool.ReadKey(c.String("key"))
			if err != nil {
				return fmt.Errorf("--key: %w", err)
			}
			jws, err := jwttool.ThingsJWT(jwttool.ThingsJWTOptions{
				URL:        c.String("url"),
				Key:        key,
				Nonce:      c.Int64("nonce"),
				APIVersion: c.String("version"),
				Claims:     []byte(c.String("custom")),
			})
			if err != nil {
				return err
			}
			_, err = io.WriteString(c.App.Writer, jws)
			return err
		},
	}, args, stdout, stderr)
}
