// Command amlocal runs the Thingway local AM: an AM-compatible server for
// evaluation, demos and the CI of firmware teams. It serves the REST
// endpoints that things and the gateway use (authentication trees with the
// IoT nodes, sessions, the things endpoint, OAuth 2.0, identities) with the
// IoT evaluation guide's configuration, in memory or persisted to a data
// directory.
//
// # Usage
//
//	amlocal [--listen 127.0.0.1:8080] [--base-path /openam] [--data DIR]
//	        [--admin-password PW] [--ca-cert FILE] [--publisher-jwks FILE]
//	        [--config FILE | --fresh] [--import DIR] [--keystore-alias ALIAS=FILE]...
//	        [--log-level info] [--log-format text] [--tls-cert FILE --tls-key FILE]
//
// Every flag can also be set with an environment variable AMLOCAL_<NAME>,
// for example AMLOCAL_LISTEN or AMLOCAL_PUBLISHER_JWKS.
//
// The local AM also serves AM's admin REST API (realms, realm services,
// tree nodes, trees, agents, scripts, secret mappings), so that amster,
// frodo or a team's own tooling can configure it as they configure AM.
// --import DIR applies a directory of AM-shaped JSON through that same API
// at start (see amtest.Server.Import for the layout, which is iot-edge's
// tests/iotsdk/testdata/am); --fresh starts from a freshly installed AM
// instead of the evaluation guide's configuration. With --data, changes
// made through the admin API are kept in the data directory and win over
// --config at later starts.
//
// At start amlocal prints a summary (URL, admin user, data directory,
// trusted CAs, software publishers, realms and trees) to stdout and logs to
// stderr. SIGINT or SIGTERM stops it gracefully; it exits 0.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/thingway/thingway/internal/cliutil"
	"github.com/urfave/cli/v2"
)

func main() { cliutil.Main(newApp(os.Stdout, os.Stderr)) }

// Flag names; each also reads the environment variable AMLOCAL_<NAME>.
const (
	flagListen        = "listen"
	flagBasePath      = "base-path"
	flagData          = "data"
	flagAdminPassword = "admin-password"
	flagCACert        = "ca-cert"
	flagPublisherJWKS = "publisher-jwks"
	flagConfig        = "config"
	flagLogLevel      = "log-level"
	flagLogFormat     = "log-format"
	flagTLSCert       = "tls-cert"
	flagTLSKey        = "tls-key"
	flagImport        = "import"
	flagFresh         = "fresh"
	flagKeystoreAlias = "keystore-alias"
	flagUser          = "user"
	flagMaxJWTLife    = "max-jwt-lifetime"
	flagRequireJTI    = "require-assertion-jti"
	flagMonitoring    = "monitoring-password"
)

// defaultAdminPassword is the evaluation guide's amAdmin password.
const defaultAdminPassword = "changeit"

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:  "amlocal",
		Usage: "run the Thingway local AM (an AM-compatible server for IoT things and the gateway)",
		Description: "Serves the AM REST endpoints that things and the Thingway gateway use, configured as the\n" +
			"IoT evaluation guide configures AM: realm /, the trees auth-tree, reg-tree and auth-reg-tree,\n" +
			"the example CA for certificate verification and the software publisher iot-software-publisher.\n" +
			"Every flag can also be set with the environment variable shown beside it.",
		HideHelpCommand: true,
		Version:         cliutil.Version(),
		Writer:          stdout,
		ErrWriter:       stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagListen, Value: "127.0.0.1:8080", Usage: "`HOST:PORT` to listen on", EnvVars: envVars(flagListen)},
			&cli.StringFlag{Name: flagBasePath, Value: "/openam", Usage: "deployment `PATH` of AM (\"/\" for none)", EnvVars: envVars(flagBasePath)},
			&cli.StringFlag{Name: flagData, Usage: "keep state (identities, sessions, tokens, keys) in `DIR`; without it, state is in memory only", EnvVars: envVars(flagData)},
			&cli.StringFlag{Name: flagAdminPassword, Value: defaultAdminPassword, Usage: "`PASSWORD` of the administrator amAdmin (overrides --config)", EnvVars: envVars(flagAdminPassword)},
			&cli.StringFlag{Name: flagCACert, Usage: "PEM `FILE` of CA certificates mapped to am.services.iot.cert.verification (replaces the example CA)", EnvVars: envVars(flagCACert)},
			&cli.StringFlag{Name: flagPublisherJWKS, Usage: "public JWK set `FILE` of the software publisher iot-software-publisher (replaces the example key in every realm)", EnvVars: envVars(flagPublisherJWKS)},
			&cli.StringFlag{Name: flagConfig, Usage: "AM configuration `FILE` (JSON: realms with services, trees, nodes, agents), applied over the defaults", EnvVars: envVars(flagConfig)},
			&cli.BoolFlag{Name: flagFresh, Usage: "start as a freshly installed AM (top-level realm without IoT configuration) instead of the evaluation guide's; configure it with --import or the admin REST API", EnvVars: envVars(flagFresh)},
			&cli.StringFlag{Name: flagImport, Usage: "apply the AM-shaped JSON in `DIR` (services, scripts, nodes, trees, agents, realms/<name>/...; iot-edge's testdata/am layout) through the admin REST API at start", EnvVars: envVars(flagImport)},
			&cli.StringSliceFlag{Name: flagKeystoreAlias, Usage: "`ALIAS=FILE`: the CA certificates (PEM) that keystore alias ALIAS holds, for secret mappings such as am.services.iot.cert.verification; repeatable", EnvVars: envVars(flagKeystoreAlias)},
			&cli.StringSliceFlag{Name: flagUser, Usage: "`NAME=PASSWORD`: create this person in the top-level realm at start unless an identity of that name exists (e.g. bjensen, who approves device codes); repeatable", EnvVars: envVars(flagUser)},
			&cli.DurationFlag{Name: flagMaxJWTLife, Value: 10 * time.Minute, Usage: "longest lifetime (exp - iat) of a thing's proof-of-possession, registration or client-assertion JWT; longer ones fail the node (0: no ceiling)", EnvVars: envVars(flagMaxJWTLife)},
			&cli.StringFlag{Name: flagMonitoring, Usage: "password of the user prometheus for AM's Prometheus endpoint /json/metrics/prometheus (off without it); never printed", EnvVars: envVars(flagMonitoring)},
			&cli.BoolFlag{Name: flagRequireJTI, Usage: "refuse client assertions without a jti (iot-edge things send none; the Thingway SDK does)", EnvVars: envVars(flagRequireJTI)},
			&cli.StringFlag{Name: flagLogLevel, Value: "info", Usage: "log `LEVEL`: debug (one line per request), info, warn or error", EnvVars: envVars(flagLogLevel)},
			&cli.StringFlag{Name: flagLogFormat, Value: "text", Usage: "log `FORMAT` on stderr: text or json", EnvVars: envVars(flagLogFormat)},
			&cli.StringFlag{Name: flagTLSCert, Usage: "serve HTTPS with this PEM certificate `FILE` (needs --tls-key)", EnvVars: envVars(flagTLSCert)},
			&cli.StringFlag{Name: flagTLSKey, Usage: "PEM private key `FILE` for --tls-cert", EnvVars: envVars(flagTLSKey)},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unexpected argument %q (amlocal takes only flags; see --help)", c.Args().First())
			}
			o := options{
				Listen:             c.String(flagListen),
				BasePath:           c.String(flagBasePath),
				DataDir:            c.String(flagData),
				AdminPassword:      c.String(flagAdminPassword),
				AdminPasswordIsSet: c.IsSet(flagAdminPassword),
				CACertFile:         c.String(flagCACert),
				PublisherJWKSFile:  c.String(flagPublisherJWKS),
				ConfigFile:         c.String(flagConfig),
				LogLevel:           c.String(flagLogLevel),
				LogFormat:          c.String(flagLogFormat),
				TLSCertFile:        c.String(flagTLSCert),
				TLSKeyFile:         c.String(flagTLSKey),
				ImportDir:          c.String(flagImport),
				Fresh:              c.Bool(flagFresh),
				KeystoreAliases:    c.StringSlice(flagKeystoreAlias),
				Users:              c.StringSlice(flagUser),
				MaxJWTLifetime:     c.Duration(flagMaxJWTLife),
				RequireJTI:         c.Bool(flagRequireJTI),
				MonitoringPassword: c.String(flagMonitoring),
			}
			return run(c.Context, o, stdout, stderr)
		},
	}
}

// envVars returns the environment variable of a flag: AMLOCAL_ and the flag
// name in upper case with dashes as underscores.
func envVars(flag string) []string { return cliutil.EnvVars("AMLOCAL_", flag) }
