// Package program is what the example programs of examples/thing share, so
// that each main.go shows the SDK calls and little else: the flags every
// program has, the connection and key a thing starts from, the lines that
// show an access token, and the exit on error.
//
// # Flags
//
// [Flags.Register] adds the flags of every program:
//
//	-url URL        AM (http, https) or a gateway (coap, coaps); default http://127.0.0.1:8080/openam
//	-realm REALM    AM realm (default /)
//	-audience AUD   JWT audience (the default is the program's)
//	-debug          the SDK's debug log, and AM's token response, on stdout
//
// and the gateway's trust flags of [connect.Flags.Register].
// [ThingFlags.Register] adds -tree and -name for a program with one thing,
// with the program's defaults (the tree the evaluation guide runs it
// with), and [ThingFlags.RegisterSecrets] adds -secrets, the key store,
// and -create-secrets. A store named with -secrets is only read: a
// missing file or key is an error, unless -create-secrets is given; the
// program's own default store (.secrets in the working directory) is
// created as needed.
//
// # Output
//
// The programs write everything to stdout. [Main] ends a failed program
// with the line "Fatal error: <error>" and exit status 1;
// [Flags.PrintAccessToken] prints the token lines of the evaluation guide.
//
// # Usage
//
//	func main() {
//		var o program.ThingFlags
//		o.Register(flag.CommandLine, "dynamic-thing", "auth-reg-tree")
//		o.RegisterSecrets(flag.CommandLine, "", "Path to pre-created secret store")
//		flag.Parse()
//		program.Main(func(ctx context.Context) error { return run(ctx, o) })
//	}
//
//	func run(ctx context.Context, o program.ThingFlags) error {
//		s, err := o.Open(ctx)
//		if err != nil {
//			return err
//		}
//		defer s.Close()
//		th, err := thing.New(ctx, thing.Config{Connector: s.Connector, ID: o.Name, Key: s.Key, Logger: s.Logger})
//		...
//	}
package program

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/thingway/thingway/examples/internal/connect"
	"github.com/thingway/thingway/examples/internal/secrets"
	"github.com/thingway/thingway/thing"
)

// DefaultURL is the default of -url: the local AM (./run.sh am).
const DefaultURL = "http://127.0.0.1:8080/openam"

// Main runs run with a context that an interrupt (Ctrl-C) or SIGTERM
// cancels. If run fails, Main calls [Fatal].
func Main(run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		Fatal(err)
	}
}

// Main runs run as the package's Main does, with a failure explained for
// the flags given: an unknown tree named (trees are the trees run uses),
// a -url without AM's deployment path, and, for a refused login, where
// the reason is logged.
func (f *Flags) Main(run func(ctx context.Context) error, trees ...string) {
	Main(func(ctx context.Context) error { return f.explain(run(ctx), trees) })
}

// explain adds to an error of AM's what to do about it.
func (f *Flags) explain(err error, trees []string) error {
	var te *thing.Error
	if !errors.As(err, &te) || te.Op != "authentication" {
		return err
	}
	gateway := connect.ViaGateway(f.URL)
	switch {
	case te.Status == 400 && te.Message == "No Configuration found" && !gateway:
		if len(trees) == 1 {
			return fmt.Errorf("%w (AM has no tree %q in realm %s: give -tree with one it has, such as auth-tree)", err, trees[0], f.Realm)
		}
		return fmt.Errorf("%w (AM lacks one of the trees %s in realm %s)", err, strings.Join(trees, ", "), f.Realm)
	case te.Status == 404 && !gateway:
		if u, perr := url.Parse(f.URL); perr == nil && strings.Trim(u.Path, "/") == "" {
			u.Path = "/openam"
			return fmt.Errorf("%w (-url is AM's deployment URL with its path: did you mean %s?)", err, u)
		}
	case te.Status == 401 && local(f.URL):
		if gateway {
			return fmt.Errorf("%w (the gateway's log says why; with ./run.sh gateway, its local AM's lines are there too)", err)
		}
		return fmt.Errorf("%w (if this is the local AM, ./run.sh am, its log says why)", err)
	}
	return err
}

// local says whether rawURL names this machine.
func local(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "" || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// Fatal prints "Fatal error: <err>" on stdout, after what the line in
// progress holds ("Creating Thing manual-thing... "), and exits with
// status 1.
func Fatal(err error) {
	fmt.Printf("Fatal error: %s\n", err)
	os.Exit(1)
}

// InRepository makes the value of the flag name of fs, a path relative to
// the repository root such as [secrets.ExampleSecrets], absolute, unless
// the flag was given on the command line: its default then names the
// repository's file wherever the program runs. Call it after fs.Parse.
func InRepository(fs *flag.FlagSet, name string) error {
	f := fs.Lookup(name)
	if f == nil {
		return fmt.Errorf("program: no flag -%s", name)
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	if set {
		return nil
	}
	p, err := secrets.ResourcePath(f.Value.String())
	if err != nil {
		return err
	}
	return f.Value.Set(p)
}

// Flags are the flags every example program has.
type Flags struct {
	// URL is -url: AM's deployment URL, or a gateway's coap(s) address.
	URL string
	// Realm is -realm, the AM realm; a gateway uses its own.
	Realm string
	// Audience is -audience, the aud of the thing's JWTs.
	Audience string
	// Debug is -debug: the SDK's debug log and AM's token response on stdout.
	Debug bool
	// Gateway is the trust of a coap(s) -url: -gateway-ca, -gateway-name
	// and -insecure-gateway.
	Gateway connect.Flags
}

// Register adds -url, -realm, -audience with the default audience, -debug
// and the gateway flags to fs.
func (f *Flags) Register(fs *flag.FlagSet, audience string) {
	fs.StringVar(&f.URL, "url", DefaultURL, "URL of AM or Gateway")
	fs.StringVar(&f.Realm, "realm", "/", "AM Realm")
	fs.StringVar(&f.Audience, "audience", audience, "JWT audience")
	fs.BoolVar(&f.Debug, "debug", false, "Enable debug output")
	f.Gateway.Register(fs)
}

// Logger returns the logger of the connection and the thing: with -debug,
// debug lines as text on stdout; otherwise nil, which keeps them silent.
// Each call returns a new logger: call it once.
func (f *Flags) Logger() *slog.Logger {
	if !f.Debug {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Connect returns the connection that -url names, running tree in -realm
// when it is AM (a gateway uses its own realm and tree). logger receives
// its debug lines.
func (f *Flags) Connect(ctx context.Context, tree string, logger *slog.Logger) (connect.Connection, error) {
	return connect.New(ctx, f.URL, f.Realm, tree, f.Gateway, logger)
}

// PrintAccessToken ends the line "Requesting access token... " that the
// program printed before it asked for tok: with -debug, AM's response
// first, then "Done", and the token, its lifetime in seconds and its
// scopes, one a line.
func (f *Flags) PrintAccessToken(tok *thing.AccessToken) {
	if f.Debug {
		fmt.Printf("RequestAccessToken response: %s\n", tok.Raw)
	}
	fmt.Println("Done")
	fmt.Println("Access token:", tok.AccessToken)
	fmt.Println("Expires in:", tok.ExpiresIn)
	fmt.Println("Scope(s):", tok.Scope)
}

// ThingFlags are the flags of a program with one thing, whose key the
// example key store holds.
type ThingFlags struct {
	Flags
	// Tree is -tree, the authentication tree; a gateway uses its own.
	Tree string
	// Name is -name, the thing's ID and the name of its key in Secrets.
	Name string
	// Secrets is -secrets, the JWK set file of the thing's key (.secrets
	// in the working directory if empty).
	Secrets string
	// CreateSecrets is -create-secrets: a key missing from Secrets is
	// generated and stored there.
	CreateSecrets bool

	fs *flag.FlagSet // where -secrets is registered
}

// Register adds the flags of [Flags.Register] with the audience "/", -tree
// with the default tree and -name with the default name to fs.
func (f *ThingFlags) Register(fs *flag.FlagSet, name, tree string) {
	f.Flags.Register(fs, "/")
	fs.StringVar(&f.Tree, "tree", tree, "Authentication tree")
	fs.StringVar(&f.Name, "name", name, "Thing name")
}

// RegisterSecrets adds -secrets, with the default path def and usage,
// and -create-secrets to fs.
func (f *ThingFlags) RegisterSecrets(fs *flag.FlagSet, def, usage string) {
	f.fs = fs
	fs.StringVar(&f.Secrets, "secrets", def, usage)
	fs.BoolVar(&f.CreateSecrets, "create-secrets", false, "Generate the thing's key in the -secrets file if it is missing there (creating the file)")
}

// Setup is what [ThingFlags.Open] prepares for thing.New.
type Setup struct {
	// Connector is the connection that -url names.
	Connector connect.Connection
	// Key is the thing's private key.
	Key crypto.Signer
	// Logger is the SDK's logger, nil unless -debug.
	Logger *slog.Logger
}

// Close closes the connection.
func (s *Setup) Close() error { return s.Connector.Close() }

// Open connects to -url with -tree, then reads the thing's key: the entry
// -name of the key store, which it creates there if missing.
func (f *ThingFlags) Open(ctx context.Context) (*Setup, error) {
	logger := f.Logger()
	conn, err := f.Connect(ctx, f.Tree, logger)
	if err != nil {
		return nil, err
	}
	key, err := f.store().Signer(f.Name)
	if err != nil {
		conn.Close()
		return nil, f.secretsHint(err)
	}
	return &Setup{Connector: conn, Key: key, Logger: logger}, nil
}

// Certificates returns the thing's certificate chain: the x5c of its entry
// in the key store, or else a new certificate for its key issued by the
// example CA, which the local AM trusts.
func (f *ThingFlags) Certificates() ([]*x509.Certificate, error) {
	certs, err := f.store().Certificates(f.Name)
	return certs, f.secretsHint(err)
}

// store is the key store: it may create keys with -create-secrets, or
// when it is the program's own default file.
func (f *ThingFlags) store() *secrets.Store {
	return &secrets.Store{Path: f.Secrets, Create: f.CreateSecrets || (f.Secrets == "" && !f.secretsGiven())}
}

// secretsGiven says whether -secrets was on the command line.
func (f *ThingFlags) secretsGiven() bool {
	given := false
	if f.fs != nil {
		f.fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == "secrets" })
	}
	return given
}

// secretsHint adds to a missing key what to do about it.
func (f *ThingFlags) secretsHint(err error) error {
	var mk *secrets.MissingKeyError
	if errors.As(err, &mk) {
		return fmt.Errorf("%w (give -create-secrets to generate the key %q there, or -secrets FILE with a JWK set that holds it)", err, mk.Name)
	}
	return err
}
