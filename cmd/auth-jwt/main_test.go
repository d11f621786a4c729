package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/internal/examplepki"
	"github.com/thingway/thingway/internal/jwttool/jwstest"
	"github.com/thingway/thingway/internal/pemkey"
)

// runCmd runs the command with args and returns its exit status and output.
func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(append([]string{"auth-jwt"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writePEM(t *testing.T, dir, name string, blocks ...*pem.Block) string {
	t.Helper()
	var b []byte
	for _, blk := range blocks {
		b = append(b, pem.EncodeToMemory(blk)...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fixture is a P-256 key, a certificate for it with CN thingymabot and
// one for another key, all in PEM files.
type fixture struct {
	key                            *ecdsa.PrivateKey
	cert                           *x509.Certificate
	keyFile, certFile, foreignFile string
	badFile, missingFile, sec1File string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	ca, caKey, err := examplepki.NewCA("test CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := examplepki.IssueCert(ca, caKey, key.Public(), "thingymabot", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, err := examplepki.IssueCert(ca, caKey, other.Public(), "thingymabot", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(key)
	sec1, _ := x509.MarshalECPrivateKey(key)
	return fixture{
		key:         key,
		cert:        cert,
		keyFile:     writePEM(t, dir, "key.pem", &pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		sec1File:    writePEM(t, dir, "sec1.pem", &pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}, &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		certFile:    writePEM(t, dir, "cert.pem", &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		foreignFile: writePEM(t, dir, "foreign.pem", &pem.Block{Type: "CERTIFICATE", Bytes: foreign.Raw}),
		badFile:     writePEM(t, dir, "bad.pem", &pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}),
		missingFile: filepath.Join(dir, "missing.pem"),
	}
}

// iat returns the iat claim and checks that exp is 5 minutes later and
// iat is now.
func iat(t *testing.T, payload string) int64 {
	t.Helper()
	var c struct{ IAT, Exp int64 }
	if err := json.Unmarshal([]byte(payload), &c); err != nil {
		t.Fatal(err)
	}
	if now := time.Now().Unix(); c.IAT < now-60 || c.IAT > now+1 || c.Exp != c.IAT+300 {
		t.Errorf("iat %d, exp %d: want now and now + 300", c.IAT, c.Exp)
	}
	return c.IAT
}

func TestRun(t *testing.T) {
	f := newFixture(t)
	b, _ := f.key.PublicKey.Bytes()
	x, y := base64.RawURLEncoding.EncodeToString(b[1:33]), base64.RawURLEncoding.EncodeToString(b[33:])
	x5c := base64.StdEncoding.EncodeToString(f.cert.Raw)
	tp, err := callback.Thumbprint(f.key.Public())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		// want is the claims, with %d for iat and exp.
		want string
	}{
		{
			name: "authentication",
			args: []string{"-s", "manual-thing", "-a", "/", "-c", "Vg7McIhuLQ", "-k", f.keyFile},
			want: `{"sub":"manual-thing","aud":"/","iat":%d,"exp":%d,"nonce":"Vg7McIhuLQ","cnf":{"kid":"` + tp + `"}}`,
		},
		{
			name: "authentication, iot-edge's kid",
			args: []string{"-s", "manual-thing", "-a", "/", "-c", "Vg7McIhuLQ", "-k", f.keyFile, "--kid", "pop.cnf"},
			want: `{"sub":"manual-thing","aud":"/","iat":%d,"exp":%d,"nonce":"Vg7McIhuLQ","cnf":{"kid":"pop.cnf"}}`,
		},
		{
			name: "authentication, long flags, SEC 1 key",
			args: []string{"--subject", "manual-thing", "--audience", "/a", "--challenge", "n", "--key", f.sec1File, "--kid", "my-kid"},
			want: `{"sub":"manual-thing","aud":"/a","iat":%d,"exp":%d,"nonce":"n","cnf":{"kid":"my-kid"}}`,
		},
		{
			name: "registration",
			args: []string{"-s", "thingymabot", "-a", "/", "-c", "n", "-k", f.keyFile, "--kid", "k1", "--certificate", f.certFile},
			want: `{"sub":"thingymabot","aud":"/","iat":%d,"exp":%d,"nonce":"n","cnf":{"jwk":{"use":"sig","kty":"EC","kid":"k1","crv":"P-256","x":"` + x + `","y":"` + y + `","x5c":["` + x5c + `"]}},"thingType":"device"}`,
		},
		{
			name: "registration as gateway",
			args: []string{"-s", "thingymabot", "-a", "/", "-c", "n", "-k", f.keyFile, "--certificate", f.certFile, "--type", "gateway"},
			want: `{"sub":"thingymabot","aud":"/","iat":%d,"exp":%d,"nonce":"n","cnf":{"jwk":{"use":"sig","kty":"EC","kid":"` + tp + `","crv":"P-256","x":"` + x + `","y":"` + y + `","x5c":["` + x5c + `"]}},"thingType":"gateway"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(tt.args...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if strings.TrimSpace(out) != out {
				t.Errorf("output %q has a trailing newline or space", out)
			}
			h, p := jwstest.Split(t, out, &f.key.PublicKey)
			if h != `{"alg":"ES256"}` {
				t.Errorf("header = %s", h)
			}
			i := iat(t, p)
			if want := fmt.Sprintf(tt.want, i, i+300); p != want {
				t.Errorf("claims = %s\nwant     %s", p, want)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "auth-jwt: missing required flags --subject, --audience, --challenge, --key"},
		{"no key", []string{"-s", "t", "-a", "/", "-c", "n"}, "auth-jwt: missing required flag --key"},
		{"no subject and challenge", []string{"-a", "/", "--key", f.keyFile}, "auth-jwt: missing required flags --subject, --challenge"},
		{"empty subject", []string{"-s", "", "-a", "/", "-c", "n", "-k", f.keyFile}, "auth-jwt: empty value for --subject"},
		{"key file missing", []string{"-s", "t", "-a", "/", "-c", "n", "-k", f.missingFile}, "auth-jwt: --key: open " + f.missingFile + ": no such file or directory"},
		{"bad key file", []string{"-s", "t", "-a", "/", "-c", "n", "-k", f.badFile}, "auth-jwt: --key: " + f.badFile + ": pemkey: no private key found in PEM"},
		{"certificate as key", []string{"-s", "t", "-a", "/", "-c", "n", "-k", f.certFile}, "auth-jwt: --key: " + f.certFile + ": pemkey: no private key found in PEM"},
		{"bad certificate file", []string{"-s", "t", "-a", "/", "-c", "n", "-k", f.keyFile, "--certificate", f.keyFile}, "auth-jwt: --certificate: " + f.keyFile + ": pemkey: no certificate found in PEM"},
		{"certificate for another key", []string{"-s", "t", "-a", "/", "-c", "n", "-k", f.keyFile, "--certificate", f.foreignFile}, `auth-jwt: jwttool: the certificate "CN=thingymabot" does not certify the key`},
		{"bad type", []string{"-s", "t", "-a", "/", "-c", "n", "-k", f.keyFile, "--type", "sensor"}, `auth-jwt: --type "sensor" is not device, service or gateway`},
		{"unknown flag", []string{"-s", "t", "-x"}, "auth-jwt: flag provided but not defined: -x (see --help)"},
		{"flag without value", []string{"-s"}, "auth-jwt: flag needs an argument: -s (see --help)"},
		{"argument", []string{"-s", "t", "-a", "/", "-c", "n", "-k", f.keyFile, "extra"}, `auth-jwt: unexpected argument "extra" (see --help)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(tt.args...)
			if code != 1 || out != "" || errOut != tt.want+"\n" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and stderr %q", code, out, errOut, tt.want)
			}
		})
	}
}

// --version prints the build's version.
func TestVersion(t *testing.T) {
	if code, out, errOut := runCmd("--version"); code != 0 || !strings.HasPrefix(out, "auth-jwt version ") || errOut != "" {
		t.Errorf("--version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestHelp(t *testing.T) {
	code, out, errOut := runCmd("--help")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, f := range []string{"--subject value, -s value", "--audience value, -a value", "--challenge value, -c value",
		"--key value, -k value", `--kid value`, "default: the key's RFC 7638 thumbprint", "--certificate value", `(default: "device")`} {
		if !strings.Contains(out, f) {
			t.Errorf("help lacks %q:\n%s", f, out)
		}
	}
}

// The walkthrough's registration call with the example resources.
func TestRunResources(t *testing.T) {
	res := filepath.Join("..", "..", "resources")
	b, err := os.ReadFile(filepath.Join(res, "eckey1.key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := pemkey.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := callback.Thumbprint(key)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd("-s", "thingymabot", "-a", "/", "-c", "challenge", "-k", filepath.Join(res, "eckey1.key.pem"),
		"--kid", kid, "--certificate", filepath.Join(res, "thingymabot.cert.pem"))
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	_, p := jwstest.Split(t, out, key.Public().(*ecdsa.PublicKey))
	var c struct {
		Cnf struct {
			JWK struct {
				KID string
				X5C []string
			}
		}
		ThingType string
	}
	if err := json.Unmarshal([]byte(p), &c); err != nil {
		t.Fatal(err)
	}
	if c.Cnf.JWK.KID != kid || len(c.Cnf.JWK.X5C) != 1 || c.ThingType != "device" {
		t.Errorf("claims = %s", p)
	}
}
