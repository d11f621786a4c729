package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/examples/internal/secrets"
	"github.com/thingway/thingway/internal/amadmin"
)

// The example programs are built once, into binDir.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// program returns the path of the built example program name (the last
// element of its directory: manual-registration, pop-cert, ...).
func program(t *testing.T, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the example programs; skipped with -short")
	}
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "thingway-examples-"); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "./thing/...")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./thing/...: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// Expected output: each entry is a regular expression for one whole line.
var (
	token    = `[A-Za-z0-9_.-]+`
	anyToken = func(prefix string) string { return regexp.QuoteMeta(prefix) + token }
)

func lit(s string) string { return regexp.QuoteMeta(s) }

func fiveLines(name string) []string {
	return []string{
		lit("Creating Thing " + name + "... Done"),
		lit("Requesting access token... Done"),
		anyToken("Access token: "),
		lit("Expires in: 3599"),
		lit("Scope(s): [publish]"),
	}
}

// checkLines fails unless out has exactly one line per pattern, each
// matching it in full.
func checkLines(t *testing.T, out string, want []string) {
	t.Helper()
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) != len(want) {
		t.Errorf("got %d lines, want %d:\n%s", len(got), len(want), out)
	}
	for i := 0; i < len(got) && i < len(want); i++ {
		if !regexp.MustCompile("^(?:" + want[i] + ")$").MatchString(got[i]) {
			t.Errorf("line %d = %q, want a match for %q", i+1, got[i], want[i])
		}
	}
}

// am is a local AM with the evaluation guide's manual identities.
type am struct {
	t     *testing.T
	srv   *amtest.Server
	admin *amadmin.Client
}

// startAM starts a local AM with the configuration file preset (a file of
// resources/am, "" for the default configuration); change, if not nil,
// adjusts the configuration first.
func startAM(t *testing.T, preset string, change func(*amtest.Config)) *am {
	t.Helper()
	cfg := amtest.DefaultConfig()
	if preset != "" {
		var err error
		if cfg, err = amtest.LoadConfig(filepath.Join(presetDir, preset)); err != nil {
			t.Fatal(err)
		}
	}
	if change != nil {
		change(cfg)
	}
	srv := amtest.NewUnstartedServer()
	srv.Config = cfg
	srv.Start()
	t.Cleanup(srv.Close)
	a := &am{t: t, srv: srv, admin: amadmin.Admin(t, srv.URL, srv.Client())}
	return a
}

// registerManualThing registers manual-thing with the public key of the
// entry manual-thing of the secrets file, as resources/manual-thing.jwks
// holds it: kid = the key's thumbprint, alg ES256, use sig.
func (a *am) registerManualThing(secretsFile string) {
	a.t.Helper()
	key, err := (&secrets.Store{Path: secretsFile}).Signer("manual-thing")
	if err != nil {
		a.t.Fatal(err)
	}
	a.admin.CreateIdentity("manual-thing", map[string]any{"userPassword": "5tr0ngG3n3r@ted", "thingType": "device",
		"thingKeys": amadmin.KeySet(a.t, key, "ES256")})
}

// consent approves a user code as bjensen: the form the consent page
// posts, with bjensen's SSO token as cookie and csrf.
func (a *am) consent(verificationURI, userCode string) {
	a.t.Helper()
	user := a.admin.Login("bjensen", "Ch4ng31t")
	form := url.Values{"user_code": {userCode}, "decision": {"allow"}, "csrf": {user}}
	code, b := a.admin.DoURL("POST", verificationURI, []byte(form.Encode()), "Content-Type: application/x-www-form-urlencoded",
		"Cookie: iPlanetDirectoryPro="+user)
	if code != 200 || !strings.Contains(string(b), "done: true") {
		a.t.Errorf("consent: %d %s", code, b)
	}
}

// exampleSecrets returns a copy of resources/example.secrets in a
// temporary directory, for programs that may add keys to it.
func exampleSecrets(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", secrets.ExampleSecrets))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "example.secrets")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs an example program and returns its standard output and exit
// status; standard error must stay empty.
func run(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	stdout, stderr, code := runErr(t, name, args...)
	if stderr != "" {
		t.Errorf("%s wrote to stderr:\n%s", name, stderr)
	}
	return stdout, code
}

// runErr runs an example program and returns its standard output, standard
// error and exit status.
func runErr(t *testing.T, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, program(t, name), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

func TestManualRegistration(t *testing.T) {
	program(t, "manual-registration")
	a := startAM(t, "", nil)
	store := exampleSecrets(t)
	a.registerManualThing(store)
	args := []string{"-name", "manual-thing", "-url", a.srv.URL, "-tree", "auth-tree", "-secrets", store}

	t.Run("ok", func(t *testing.T) {
		out, code := run(t, "manual-registration", args...)
		if code != 0 {
			t.Errorf("exit status %d", code)
		}
		checkLines(t, out, fiveLines("manual-thing"))
	})
	t.Run("debug", func(t *testing.T) {
		out, code := run(t, "manual-registration", append(args, "-debug")...)
		if code != 0 {
			t.Errorf("exit status %d:\n%s", code, out)
		}
		// Debug lines come between the program's lines, so look for
		// these in order.
		rest := out
		for _, want := range []string{
			`Creating Thing manual-thing\.\.\. time=\S+ level=DEBUG msg="am request"`,
			`\nDone\nRequesting access token\.\.\. `,
			`\nRequestAccessToken response: \{"access_token":"` + token + `".*"scope":"publish".*\}\nDone\n`,
			`Access token: ` + token + `\nExpires in: 3599\nScope\(s\): \[publish\]\n`,
			`level=DEBUG msg="am request" method=POST path=/openam/json/sessions query="_action=logout" status=200`,
		} {
			loc := regexp.MustCompile(want).FindStringIndex(rest)
			if loc == nil {
				t.Fatalf("no match for %q in the rest of the output:\n%s", want, rest)
			}
			rest = rest[loc[1]:]
		}
	})
	t.Run("unknown thing", func(t *testing.T) {
		out, code := run(t, "manual-registration", "-name", "unknown-thing", "-url", a.srv.URL, "-tree", "auth-tree", "-secrets", store, "-create-secrets")
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		checkLines(t, out, []string{lit("Creating Thing unknown-thing... Fatal error: thing: AM refused the authentication: 401 Unauthorized: Login failure (if this is the local AM, ./run.sh am, its log says why)")})
	})
	// Errors say what to do.
	t.Run("unknown tree", func(t *testing.T) {
		out, code := run(t, "manual-registration", "-name", "manual-thing", "-url", a.srv.URL, "-secrets", store, "-tree", "iot-tree")
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		checkLines(t, out, []string{lit(`Creating Thing manual-thing... Fatal error: thing: AM refused the authentication: 400 Bad Request: No Configuration found (AM has no tree "iot-tree" in realm /: give -tree with one it has, such as auth-tree)`)})
	})
	t.Run("no deployment path", func(t *testing.T) {
		root := strings.TrimSuffix(a.srv.URL, "/openam")
		out, code := run(t, "manual-registration", "-name", "manual-thing", "-url", root, "-secrets", store, "-tree", "auth-tree")
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		checkLines(t, out, []string{lit("Creating Thing manual-thing... Fatal error: thing: AM refused the authentication: 404 Not Found: Not Found (-url is AM's deployment URL with its path: did you mean " + a.srv.URL + "?)")})
	})
	t.Run("no gateway", func(t *testing.T) {
		u := "coap://" + closedUDPPort(t)
		out, code := run(t, "manual-registration", "-name", "manual-thing", "-url", u, "-secrets", store)
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		checkLines(t, out, []string{lit("Fatal error: thing: the gateway at "+strings.TrimPrefix(u, "coap://")+" does not answer: ") + ".+"})
	})
}

// closedUDPPort returns a loopback address where nothing listens.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

func TestDynamicRegistration(t *testing.T) {
	for _, tc := range []struct {
		program string
		preset  string // file of resources/am; "" for the default configuration
	}{
		{"pop-cert", ""},
		{"pop-sw-stmt", "pop-sw-stmt.json"},
		{"pop", "pop.json"},
	} {
		t.Run(tc.program, func(t *testing.T) {
			program(t, tc.program)
			a := startAM(t, tc.preset, nil)
			store := filepath.Join(t.TempDir(), ".secrets") // a new store: the key is created
			args := []string{"-name", "dynamic-thing", "-url", a.srv.URL, "-tree", "auth-reg-tree", "-secrets", store}
			// A store named with -secrets is only read, unless -create-secrets.
			out, code := run(t, tc.program, args...)
			if code != 1 {
				t.Errorf("exit status %d without -create-secrets, want 1", code)
			}
			checkLines(t, out, []string{lit("Fatal error: secrets: " + store + " does not exist (give -create-secrets to generate the key \"dynamic-thing\" there, or -secrets FILE with a JWK set that holds it)")})
			if _, err := os.Stat(store); !os.IsNotExist(err) {
				t.Errorf("the store was created without -create-secrets: %v", err)
			}
			out, code = run(t, tc.program, append(args, "-create-secrets")...)
			if code != 0 {
				t.Errorf("exit status %d", code)
			}
			checkLines(t, out, fiveLines("dynamic-thing"))
			checkStore(t, store, "dynamic-thing")

			// A second run finds the key in the store and the identity in AM.
			out, _ = run(t, tc.program, args...)
			checkLines(t, out, fiveLines("dynamic-thing"))
		})
	}
}

// checkStore checks that the store file holds exactly the key name, as
// a private ES256 signing key, is indented by two spaces and private to
// its owner.
func checkStore(t *testing.T, path, name string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("store = %s (%v)", b, err)
	}
	k := set.Keys[0]
	if k.KeyID != name || k.Algorithm != "ES256" || k.Use != "sig" || k.IsPublic() {
		t.Errorf("stored key = %s", b)
	}
	if !bytes.HasPrefix(b, []byte("{\n  \"keys\": [\n    {\n")) {
		t.Errorf("store is not indented by two spaces:\n%s", b)
	}
}

func TestSoftwareStatement(t *testing.T) {
	program(t, "sw-stmt")
	a := startAM(t, "sw-stmt.json", nil)
	out, code := run(t, "sw-stmt", "-url", a.srv.URL, "-audience", a.srv.URL+"/oauth2/access_token",
		"-reg-tree", "reg-tree", "-auth-tree", "auth-tree")
	if code != 0 {
		t.Errorf("exit status %d", code)
	}
	checkLines(t, out, []string{
		lit("Register thing using Software Statement... Done"),
		lit("Requesting attributes... Done"),
		lit("Attributes:  {map[_id:") + `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}` +
			lit(` thingConfig:[] thingKeys:[{"keys":[{`) + `"use":"sig","kty":"EC","kid":"[A-Za-z0-9_-]{43}=","crv":"P-256","alg":"ES256","x":"[A-Za-z0-9_-]+","y":"[A-Za-z0-9_-]+"` + lit("}]}]]}"),
		lit("Authenticate thing using Client Assertion... Done"),
		lit("Requesting access token... Done"),
		anyToken("Access token: "),
		lit("Expires in: 3599"),
		lit("Scope(s): [publish]"),
	})
}

func TestUserToken(t *testing.T) {
	program(t, "user-token")
	a := startAM(t, "", func(c *amtest.Config) {
		c.Realms["/"].OAuth2.Device.DevicePollInterval = 1 // a quick test
	})
	a.admin.CreateIdentity("bjensen", map[string]any{"userPassword": "Ch4ng31t"})
	userToken(t, a, "-url", a.srv.URL, "-tree", "auth-reg-tree")
}

// userToken runs user-token with args, approves its user code as bjensen
// once it shows the URL, and checks every line of its output.
func userToken(t *testing.T, a *am, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args = append([]string{"-name", "user-authorized-thing", "-secrets", filepath.Join(t.TempDir(), ".secrets"), "-create-secrets"}, args...)
	cmd := exec.CommandContext(ctx, program(t, "user-token"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Consent as bjensen once the program shows the URL, as a person
	// would; keep every line for the comparison below.
	var out strings.Builder
	var userCode struct {
		UserCode        string `json:"user_code"`
		VerificationURI string `json:"verification_uri"`
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if s, ok := strings.CutPrefix(line, " User code response: "); ok {
			if err := json.Unmarshal([]byte(s), &userCode); err != nil {
				t.Errorf("user code response %q: %v", s, err)
			}
		}
		if strings.HasPrefix(line, "\t") && userCode.UserCode != "" {
			a.consent(userCode.VerificationURI, userCode.UserCode)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("user-token: %v\n%s", err, out.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("user-token wrote to stderr:\n%s", &stderr)
	}

	uri := lit(a.srv.URL + "/oauth2/device/user")
	code := `[A-Za-z0-9]{8}`
	tokenResponse := func(scope string, refresh bool) []string {
		lines := []string{
			lit(" Access token response: {"),
			`     "access_token": "` + token + `",`,
			lit(`     "expires_in": 3599,`),
		}
		if refresh {
			lines = append(lines, `     "refresh_token": "`+token+`",`)
		}
		return append(lines, lit(`     "scope": "`+scope+`",`), lit(`     "token_type": "Bearer"`), lit(" }"))
	}
	introspection := func(scope string) []string {
		return []string{
			lit(" Introspection response: {"),
			lit(`     "active": true,`),
			`     "auditTrackingId": "[^"]+",`,
			`     "authGrantId": "[^"]+",`,
			lit(`     "auth_level": 0,`),
			lit(`     "client_id": "forgerock-iot-oauth2-client",`),
			`     "exp": \d+,`,
			lit(`     "iss": "` + a.srv.URL + `/oauth2",`),
			lit(`     "realm": "/",`),
			lit(`     "scope": "` + scope + `",`),
			lit(`     "sub": "(usr!bjensen)",`),
			lit(`     "subname": "bjensen",`),
			lit(`     "token_type": "Bearer",`),
			lit(`     "user_id": "bjensen",`),
			lit(`     "username": "bjensen"`),
			lit(" }"),
		}
	}
	var want []string
	want = append(want,
		lit("Creating Thing user-authorized-thing... Done"),
		"",
		lit("Requesting user code... Done"),
		lit(` User code response: {"device_code":"`)+token+lit(`","user_code":"`)+code+
			lit(`","verification_uri":"`)+uri+lit(`","verification_uri_complete":"`)+uri+lit(`?user_code=`)+code+
			lit(`","expires_in":300,"interval":1}`),
		lit("Requesting user access token... To authorise the request, go to "),
		"",
		"\t"+uri+lit("?user_code=")+code,
		"",
		"Done",
	)
	want = append(want, tokenResponse("publish subscribe", true)...)
	want = append(want, "", lit("Introspecting access token to get more information... Done"))
	want = append(want, introspection("publish subscribe")...)
	want = append(want, "", lit("Refreshing access token with reduced scope... Done"))
	want = append(want, tokenResponse("publish", true)...)
	want = append(want, "", lit("Introspecting access token to get more information... Done"))
	want = append(want, introspection("publish")...)
	checkLines(t, out.String(), want)
}

// The guide's unknown-flag and help behaviour comes from the flag package.
func TestFlags(t *testing.T) {
	out, err := exec.Command(program(t, "manual-registration"), "-h").CombinedOutput()
	if err != nil {
		t.Errorf("-h: %v", err)
	}
	for _, want := range []string{
		"Usage of ", "-url string\n    \tURL of AM or Gateway (default \"http://127.0.0.1:8080/openam\")",
		"-secrets string\n    \tPath to pre-created JWK set file (default \"resources/example.secrets\")",
		"-tree string\n    \tAuthentication tree (default \"auth-tree\")",
		"-create-secrets\n    \tGenerate the thing's key in the -secrets file if it is missing there (creating the file)",
		"-gateway-ca FILE\n    \tPEM FILE of the CA certificates that verify a coap(s) gateway's DTLS certificate (default resources/example-ca.cert.pem, ",
		"-gateway-name NAME\n    \tthe NAME a coap(s) gateway's DTLS certificate must be issued for (default \"thingway-gateway\")",
		"-insecure-gateway\n    \taccept any coap(s) gateway certificate, unverified",
		"\nWith a coap:// or coaps:// -url (a gateway, CoAP over DTLS; coap://:5683 is the local host),\nthe gateway's realm and tree apply: -realm and -tree are ignored.\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("-h output lacks %q:\n%s", want, out)
		}
	}
	cmd := exec.Command(program(t, "sw-stmt"), "-nope")
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 2 {
		t.Errorf("unknown flag: %v, want exit status 2", err)
	}
}
