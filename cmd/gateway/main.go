// Command gateway runs the Thingway IoT gateway: a CoAP server over DTLS
// that authenticates things with AM and relays their requests to AM. It
// takes the flags of the ForgeRock iot-edge v7.4 gateway, so the
// evaluation guide's commands work unchanged, and prints the same lines.
//
// # Usage
//
//	gateway --url URL --name NAME --key FILE --tree TREE [--realm REALM]
//	        [--audience AUD] [--kid KID] [--cert FILE] [--address :5683]
//	        [--timeout 5s] [-d] [--dtls-cert FILE --dtls-key FILE]
//	        [--log-format text|json] [--max-sessions N] [--idle-timeout 1h]
//	        [--max-pending-handshakes N] [--handshake-timeout 10s]
//	        [--max-request-bytes N] [--max-auth-per-minute N] [--max-concurrent-auth N]
//	        [--metrics-address HOST:PORT [--pprof]] [--thing-tree TREE]
//	        [--am-ca FILE] [--am-client-cert FILE --am-client-key FILE]
//	        [--session-file FILE --session-key FILE] [--park-after 5m]
//
// Every flag can also be set with an environment variable GATEWAY_<NAME>,
// for example GATEWAY_URL or GATEWAY_DTLS_CERT.
//
// With --url, the gateway connects to that AM; --name, --key and --tree
// are then required. The tree serves both the gateway's own login and
// every thing behind it (things cannot choose a realm or tree). With
// --cert, the gateway registers itself (thing type gateway) when the tree
// asks.
//
// Without --url, the gateway starts the local AM (package amtest, the
// evaluation guide's configuration, in memory) in the same process on
// --local-am (127.0.0.1:8080 by default, where ./run.sh am listens, so
// that the same curl commands create things' identities in it; the start
// fails if the port is taken), registers its own identity there, and uses
// the defaults --name thingway-gateway, --realm /, --tree auth-tree and a
// newly generated key (unless --key is given). The local AM's URL is
// printed.
//
// At start the gateway prints the options block of iot-edge (with the
// effective key ID), then "IoT Gateway server started." once it has
// authenticated and listens. On SIGINT or SIGTERM it prints "IoT Gateway
// server shutting down.", stops gracefully (logging its AM session out)
// and exits 0. Logs go to stderr. A start-up failure prints one
// timestamped line on stderr and exits 1.
//
// With --session-file and --session-key, the stop saves every DTLS
// session's state to the session file (encrypted and authenticated with
// the key, mode 0600) and the next start loads it, so that things go on
// without a new handshake: restart or upgrade the gateway on the same
// --address. A missing, stale, foreign or damaged file is ignored with a
// log line. DTLS sessions idle for --park-after are parked: their state
// kept in a few KiB, their connection released, resumed by the thing's
// next record.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"gopkg.in/yaml.v3"

	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/internal/cliutil"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := newApp(os.Stdout, os.Stderr)
	err := app.RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fatal(os.Stderr, app, os.Args[1:], err)
		os.Exit(1)
	}
}

// fatal writes a start-up error as one line: "gateway: <error>", or with
// --log-format json a JSON log record. A duration given without a unit
// says so.
func fatal(w io.Writer, app *cli.App, args []string, err error) {
	msg := strings.TrimPrefix(durationHint(app, err.Error()), "gateway: ")
	format := os.Getenv("GATEWAY_LOG_FORMAT")
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, flagLogFormat+"="); ok {
			format = v
		} else if a == flagLogFormat && i+1 < len(args) {
			format = args[i+1]
		}
	}
	if strings.EqualFold(format, "json") {
		slog.New(slog.NewJSONHandler(w, nil)).LogAttrs(context.Background(), slog.LevelError, "gateway failed to start", slog.String("error", msg))
		return
	}
	fmt.Fprintf(w, "gateway: %s\n", msg)
}

var undefinedFlag = regexp.MustCompile(`flag provided but not defined: -+([\w-]+)`)

// withSuggestion adds the nearest flag to an unknown one's error.
func withSuggestion(app *cli.App, err error) error {
	m := undefinedFlag.FindStringSubmatch(err.Error())
	if m == nil || cli.SuggestFlag == nil {
		return err
	}
	if s := cli.SuggestFlag(app.Flags, m[1], false); s != "" && editDistance(strings.TrimLeft(s, "-"), m[1]) <= max(2, len(m[1])/4) {
		return fmt.Errorf("%w (did you mean %s? see --help)", err, s)
	}
	return fmt.Errorf("%w (see --help)", err)
}

// editDistance is the Levenshtein distance of a and b: a suggestion
// further off than a typo is no help.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

var invalidValue = regexp.MustCompile(`invalid value "([^"]*)" for flag -([\w-]+)`)

// durationHint rewrites urfave/cli's "invalid value" of a duration flag
// given a bare number into what to write instead.
func durationHint(app *cli.App, msg string) string {
	m := invalidValue.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	for _, f := range app.Flags {
		if af, ok := f.(*altsrc.DurationFlag); ok {
			f = af.DurationFlag
		}
		if df, ok := f.(*cli.DurationFlag); ok && df.Name == m[2] {
			if _, err := strconv.ParseFloat(m[1], 64); err == nil {
				return fmt.Sprintf("--%s %s: a duration needs a unit, such as %ss or %sm", m[2], m[1], m[1], m[1])
			}
		}
	}
	return msg
}

// Flag names; each also reads the environment variable GATEWAY_<NAME>.
const (
	flagURL         = "url"
	flagRealm       = "realm"
	flagAudience    = "audience"
	flagTree        = "tree"
	flagName        = "name"
	flagAddress     = "address"
	flagKey         = "key"
	flagKID         = "kid"
	flagCert        = "cert"
	flagTimeout     = "timeout"
	flagDebug       = "debug"
	flagDTLSCert    = "dtls-cert"
	flagDTLSKey     = "dtls-key"
	flagLogFormat   = "log-format"
	flagMaxSessions = "max-sessions"
	flagIdleTimeout = "idle-timeout"
	flagLocalAM     = "local-am"
	flagMetrics     = "metrics-address"
	flagConfig      = "config"
	flagThingTree   = "thing-tree"
	flagAMCA        = "am-ca"
	flagAMCert      = "am-client-cert"
	flagAMKey       = "am-client-key"

	flagMaxPendingHandshakes = "max-pending-handshakes"
	flagHandshakeTimeout     = "handshake-timeout"
	flagMaxRequestBytes      = "max-request-bytes"
	flagMaxAuthPerMinute     = "max-auth-per-minute"
	flagMaxConcurrentAuth    = "max-concurrent-auth"
	flagSessionFile          = "session-file"
	flagSessionKey           = "session-key"
	flagParkAfter            = "park-after"
	flagPprof                = "pprof"
)

// Defaults without --url (the embedded local AM). The local AM listens
// where ./run.sh am does, so that the README's curl commands (creating a
// thing's identity, approving a user code) reach it unchanged.
const (
	localName      = "thingway-gateway"
	localRealm     = "/"
	localTree      = "auth-tree"
	defaultLocalAM = "127.0.0.1:8080"
)

func newApp(stdout, stderr io.Writer) *cli.App {
	flags := []cli.Flag{
		&cli.StringFlag{Name: flagURL, Usage: "AM `URL` (deployment URL, e.g. http://am.localtest.me:8080/openam); without it, the local AM runs in-process", EnvVars: envVars(flagURL)},
		&cli.StringFlag{Name: flagRealm, Usage: "AM `REALM` (/, /a/b; empty for DNS-alias realms) [default without --url: /]", EnvVars: envVars(flagRealm)},
		&cli.StringFlag{Name: flagAudience, Usage: "`AUD` of the gateway's authentication JWT [default: the realm, or /]", EnvVars: envVars(flagAudience)},
		&cli.StringFlag{Name: flagTree, Usage: "authentication `TREE` for the gateway and every thing (required with --url) [default without --url: auth-tree]", EnvVars: envVars(flagTree)},
		&cli.StringFlag{Name: flagName, Usage: "the gateway's identity `NAME` in AM (required with --url) [default without --url: thingway-gateway]", EnvVars: envVars(flagName)},
		&cli.StringFlag{Name: flagAddress, Value: gateway.DefaultAddress, Usage: "UDP `HOST:PORT` for CoAP over DTLS", EnvVars: envVars(flagAddress)},
		&cli.StringFlag{Name: flagKey, Usage: "PEM `FILE` of the gateway's signing key: PKCS#8, SEC 1 or PKCS#1 (required with --url) [default without --url: a new key]", EnvVars: envVars(flagKey)},
		&cli.StringFlag{Name: flagKID, Usage: "the signing key's `ID` [default: its JWK thumbprint]", EnvVars: envVars(flagKID)},
		&cli.StringFlag{Name: flagCert, Usage: "PEM `FILE` of the gateway's certificate chain, for dynamic registration", EnvVars: envVars(flagCert)},
		&cli.DurationFlag{Name: flagTimeout, Value: gateway.DefaultTimeout, Usage: "timeout of each AM call", EnvVars: envVars(flagTimeout)},
		&cli.BoolFlag{Name: flagDebug, Aliases: []string{"d"}, Usage: "log at debug level (one line per request)", EnvVars: envVars(flagDebug)},
		&cli.StringFlag{Name: flagDTLSCert, Usage: "PEM `FILE` of a stable DTLS certificate (chain); without it, a new self-signed one each start", EnvVars: envVars(flagDTLSCert)},
		&cli.StringFlag{Name: flagDTLSKey, Usage: "PEM `FILE` of the --dtls-cert key", EnvVars: envVars(flagDTLSKey)},
		&cli.StringFlag{Name: flagLogFormat, Value: "text", Usage: "log `FORMAT` on stderr: text or json", EnvVars: envVars(flagLogFormat)},
		&cli.IntFlag{Name: flagMaxSessions, Value: gateway.DefaultMaxSessions, Usage: "most DTLS sessions held at once", EnvVars: envVars(flagMaxSessions)},
		&cli.DurationFlag{Name: flagIdleTimeout, Value: gateway.DefaultIdleTimeout, Usage: "close DTLS sessions idle this long", EnvVars: envVars(flagIdleTimeout)},
		&cli.IntFlag{Name: flagMaxPendingHandshakes, Value: gateway.DefaultMaxPendingHandshakes, Usage: "most DTLS handshakes in progress at once", EnvVars: envVars(flagMaxPendingHandshakes)},
		&cli.DurationFlag{Name: flagHandshakeTimeout, Value: gateway.DefaultHandshakeTimeout, Usage: "abandon DTLS handshakes not finished in this time", EnvVars: envVars(flagHandshakeTimeout)},
		&cli.IntFlag{Name: flagMaxRequestBytes, Value: gateway.DefaultMaxRequestBytes, Usage: "largest request body accepted, in `BYTES` (larger ones get 4.13)", EnvVars: envVars(flagMaxRequestBytes)},
		&cli.IntFlag{Name: flagMaxAuthPerMinute, Value: gateway.DefaultMaxAuthPerMinute, Usage: "authentication steps one DTLS session may send a minute (more get 5.03 with Max-Age; -1: no cap)", EnvVars: envVars(flagMaxAuthPerMinute)},
		&cli.IntFlag{Name: flagMaxConcurrentAuth, Value: gateway.DefaultMaxConcurrentAuth, Usage: "authentication steps forwarded to AM at once, for all things (more get 5.03 with Max-Age; -1: no cap)", EnvVars: envVars(flagMaxConcurrentAuth)},
		&cli.StringFlag{Name: flagThingTree, Usage: "authentication `TREE` things authenticate and register with [default: --tree, the gateway's own]", EnvVars: envVars(flagThingTree)},
		&cli.StringFlag{Name: flagAMCA, Usage: "PEM `FILE` of the CA certificates that verify AM's HTTPS certificate, instead of the system's", EnvVars: envVars(flagAMCA)},
		&cli.StringFlag{Name: flagAMCert, Usage: "PEM `FILE` of the gateway's client certificate for mutual TLS with AM", EnvVars: envVars(flagAMCert)},
		&cli.StringFlag{Name: flagAMKey, Usage: "PEM `FILE` of the --am-client-cert key", EnvVars: envVars(flagAMKey)},
		&cli.StringFlag{Name: flagSessionFile, Usage: "`FILE` the DTLS sessions are saved to at stop and restored from at start, so that things go on without a new handshake (needs --session-key)", EnvVars: envVars(flagSessionFile)},
		&cli.StringFlag{Name: flagSessionKey, Usage: "`FILE` of at least 32 secret bytes that seal --session-file (e.g. head -c 32 /dev/urandom > FILE; keep it 0600)", EnvVars: envVars(flagSessionKey)},
		&cli.DurationFlag{Name: flagParkAfter, Value: gateway.DefaultParkAfter, Usage: "park DTLS sessions idle this long: state kept, connection released, resumed by the thing's next record (0: never)", EnvVars: envVars(flagParkAfter)},
		&cli.StringFlag{Name: flagMetrics, Usage: "`HOST:PORT` to serve /metrics (Prometheus), /livez and /readyz on, over HTTP [default: off]", EnvVars: envVars(flagMetrics)},
		&cli.BoolFlag{Name: flagPprof, Usage: "serve Go's profiles (/debug/pprof/) on --metrics-address too: for measuring the gateway, not for an open port", EnvVars: envVars(flagPprof)},
		&cli.StringFlag{Name: flagLocalAM, Value: defaultLocalAM, Usage: "`HOST:PORT` of the in-process local AM (only without --url; 127.0.0.1:0 for any free port)", EnvVars: envVars(flagLocalAM)},
	}
	return &cli.App{
		Name:  "gateway",
		Usage: "run the Thingway IoT gateway (CoAP over DTLS to AM)",
		Description: "Authenticates things with AM and relays their requests, speaking the iot-edge v7.4 gateway protocol.\n" +
			"Without --url it starts the local AM in-process and registers itself there.\n" +
			"Every flag can also be set with the environment variable shown beside it.",
		HideHelpCommand: true,
		Version:         cliutil.Version(),
		// A usage error is one line, not the whole help.
		OnUsageError: func(c *cli.Context, err error, _ bool) error { return withSuggestion(c.App, err) },
		Writer:       stdout,
		ErrWriter:    stderr,
		Flags:        append(fromFile(flags), configFlag),
		Before: func(c *cli.Context) error {
			path := c.String(flagConfig)
			if path == "" {
				return nil
			}
			if err := checkConfig(path, flags); err != nil {
				return err
			}
			return altsrc.InitInputSourceWithContext(c.App.Flags, altsrc.NewYamlSourceFromFlagFunc(flagConfig))(c)
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unexpected argument %q (gateway takes only flags; see --help)", c.Args().First())
			}
			o := options{
				URL:          c.String(flagURL),
				Realm:        c.String(flagRealm),
				RealmSet:     c.IsSet(flagRealm),
				Audience:     c.String(flagAudience),
				Tree:         c.String(flagTree),
				Name:         c.String(flagName),
				Address:      c.String(flagAddress),
				KeyFile:      c.String(flagKey),
				KeyID:        c.String(flagKID),
				CertFile:     c.String(flagCert),
				Timeout:      c.Duration(flagTimeout),
				Debug:        c.Bool(flagDebug),
				DTLSCertFile: c.String(flagDTLSCert),
				DTLSKeyFile:  c.String(flagDTLSKey),
				LogFormat:    c.String(flagLogFormat),
				MaxSessions:  c.Int(flagMaxSessions),
				IdleTimeout:  c.Duration(flagIdleTimeout),
				LocalAM:      c.String(flagLocalAM),
				Metrics:      c.String(flagMetrics),
				Pprof:        c.Bool(flagPprof),
				ThingTree:    c.String(flagThingTree),
				AMCA:         c.String(flagAMCA),
				AMCert:       c.String(flagAMCert),
				AMKey:        c.String(flagAMKey),

				MaxPendingHandshakes: c.Int(flagMaxPendingHandshakes),
				HandshakeTimeout:     c.Duration(flagHandshakeTimeout),
				MaxRequestBytes:      c.Int(flagMaxRequestBytes),
				MaxAuthPerMinute:     c.Int(flagMaxAuthPerMinute),
				MaxConcurrentAuth:    c.Int(flagMaxConcurrentAuth),
				SessionFile:          c.String(flagSessionFile),
				SessionKeyFile:       c.String(flagSessionKey),
				ParkAfter:            c.Duration(flagParkAfter),
			}
			return run(c.Context, o, stdout, stderr)
		},
	}
}

// envVars returns the environment variable of a flag: GATEWAY_ and the flag
// name in upper case with dashes as underscores.
func envVars(flag string) []string { return cliutil.EnvVars("GATEWAY_", flag) }

// shutdownTimeout bounds the graceful stop on SIGINT/SIGTERM.
const shutdownTimeout = 10 * time.Second

// configFlag is --config: a YAML file with the flags' names as keys.
var configFlag = &cli.StringFlag{Name: flagConfig, Usage: "YAML `FILE` of settings, its keys the flags' names (url: ..., idle-timeout: 1h); flags and environment variables override it", EnvVars: envVars(flagConfig)}

// fromFile makes flags readable from --config too.
func fromFile(flags []cli.Flag) []cli.Flag {
	out := make([]cli.Flag, len(flags))
	for i, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			out[i] = altsrc.NewStringFlag(f)
		case *cli.IntFlag:
			out[i] = altsrc.NewIntFlag(f)
		case *cli.BoolFlag:
			out[i] = altsrc.NewBoolFlag(f)
		case *cli.DurationFlag:
			out[i] = altsrc.NewDurationFlag(f)
		default:
			out[i] = f
		}
	}
	return out
}

// checkConfig refuses a config file that is not a YAML mapping of known
// flag names, naming the line of the first unknown key.
func checkConfig(path string, flags []cli.Flag) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--%s: %w", flagConfig, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("--%s %s: %w", flagConfig, path, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return fmt.Errorf("--%s %s:%d: want a mapping of flag names to values", flagConfig, path, m.Line)
	}
	known := map[string]bool{}
	for _, f := range flags {
		for _, n := range f.Names() {
			known[n] = true
		}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if known[k.Value] {
			continue
		}
		hint := ""
		if sug := cli.SuggestFlag(flags, k.Value, true); sug != "" && editDistance(strings.TrimLeft(sug, "-"), k.Value) <= max(2, len(k.Value)/4) {
			hint = fmt.Sprintf(" (did you mean %s?)", strings.TrimLeft(sug, "-"))
		}
		return fmt.Errorf("%s:%d: unknown key %q%s", path, k.Line, k.Value, hint)
	}
	return nil
}
