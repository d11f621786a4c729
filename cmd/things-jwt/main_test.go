package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/internal/jwttool/jwstest"
)

// runCmd runs the command with args and returns its exit status and output.
func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(append([]string{"things-jwt"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// keyFiles writes a P-256 key as PKCS#8 and a file without a key.
func keyFiles(t *testing.T) (key *ecdsa.PrivateKey, keyFile, badFile string) {
	t.Helper()
	dir := t.TempDir()
	key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile = filepath.Join(dir, "key.pem")
	badFile = filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(badFile, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return key, keyFile, badFile
}

func TestRun(t *testing.T) {
	key, keyFile, _ := keyFiles(t)
	// & is written \u0026 in JSON strings, as go-jose and encoding/json do.
	const u = "http://127.0.0.1:8080/openam/json/things/*?_action=get_access_token&realm=/"
	const uJSON = `http://127.0.0.1:8080/openam/json/things/*?_action=get_access_token\u0026realm=/`
	tests := []struct {
		name       string
		args       []string
		wantHeader string
		wantClaims string
	}{
		{
			name:       "walkthrough",
			args:       []string{"-u", u, "-k", keyFile, "-n", "1", "--custom", `{"csrf":"AQIC5w.*AAJTSQACMDE.*","scope":["publish"]}`},
			wantHeader: `{"alg":"ES256","api":"protocol=2.0,resource=1.0","aud":"` + uJSON + `","nonce":1}`,
			wantClaims: `{"csrf":"AQIC5w.*AAJTSQACMDE.*","scope":["publish"]}`,
		},
		{
			name:       "long flags, version, claims kept in order",
			args:       []string{"--url", "http://x/json/sessions?_action=validate", "--key", keyFile, "--nonce", "0", "--version", "resource=4.0", "--custom", "{\n  \"z\": 1,\n  \"csrf\": \"t\"\n}"},
			wantHeader: `{"alg":"ES256","api":"resource=4.0","aud":"http://x/json/sessions?_action=validate","nonce":0}`,
			wantClaims: `{"z":1,"csrf":"t"}`,
		},
		{
			name:       "default claims",
			args:       []string{"-u", "u", "-k", keyFile, "-n", "42"},
			wantHeader: `{"alg":"ES256","api":"protocol=2.0,resource=1.0","aud":"u","nonce":42}`,
			wantClaims: `{}`,
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
			h, p := jwstest.Split(t, out, &key.PublicKey)
			if h != tt.wantHeader {
				t.Errorf("header = %s\nwant     %s", h, tt.wantHeader)
			}
			if p != tt.wantClaims {
				t.Errorf("claims = %s\nwant     %s", p, tt.wantClaims)
			}
		})
	}
}

// Without -n, the nonce is the current Unix time, a JSON integer.
func TestRunDefaultNonce(t *testing.T) {
	key, keyFile, _ := keyFiles(t)
	for _, args := range [][]string{{"-u", "u", "-k", keyFile}, {"-u", "u", "-k", keyFile, "-n", "-1"}} {
		before := time.Now().Unix()
		code, out, errOut := runCmd(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
		}
		h, _ := jwstest.Split(t, out, &key.PublicKey)
		var hdr map[string]json.RawMessage
		if err := json.Unmarshal([]byte(h), &hdr); err != nil {
			t.Fatal(err)
		}
		var nonce int64
		if err := json.Unmarshal(hdr["nonce"], &nonce); err != nil {
			t.Fatalf("nonce %s is not an integer", hdr["nonce"])
		}
		if nonce < before || nonce > time.Now().Unix() {
			t.Errorf("%v: nonce %d, want the current Unix time", args, nonce)
		}
	}
}

func TestRunErrors(t *testing.T) {
	_, keyFile, badFile := keyFiles(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "things-jwt: missing required flags --url, --key"},
		{"no key", []string{"-u", "u", "--custom", "{}"}, "things-jwt: missing required flag --key"},
		{"no URL", []string{"-k", keyFile}, "things-jwt: missing required flag --url"},
		{"empty URL", []string{"-u", "", "-k", keyFile}, "things-jwt: empty value for --url"},
		{"key file missing", []string{"-u", "u", "-k", missing}, "things-jwt: --key: open " + missing + ": no such file or directory"},
		{"bad key file", []string{"-u", "u", "-k", badFile}, "things-jwt: --key: " + badFile + ": pemkey: no private key found in PEM"},
		{"array claims", []string{"-u", "u", "-k", keyFile, "--custom", `["publish"]`}, "things-jwt: jwttool: the claims must be a JSON object, not an array"},
		{"string claims", []string{"-u", "u", "-k", keyFile, "--custom", `"x"`}, "things-jwt: jwttool: the claims must be a JSON object, not a string"},
		{"null claims", []string{"-u", "u", "-k", keyFile, "--custom", `null`}, "things-jwt: jwttool: the claims must be a JSON object, not null"},
		{"invalid claims", []string{"-u", "u", "-k", keyFile, "--custom", `{csrf}`}, "things-jwt: jwttool: the claims are not valid JSON: invalid character 'c' looking for beginning of object key string"},
		{"nonce not a number", []string{"-u", "u", "-k", keyFile, "-n", "one"}, `things-jwt: invalid value "one" for flag -n: parse error (see --help)`},
		{"unknown flag", []string{"--realm", "/"}, "things-jwt: flag provided but not defined: -realm (see --help)"},
		{"argument", []string{"-u", "u", "-k", keyFile, "{}"}, `things-jwt: unexpected argument "{}" (see --help)`},
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

// --version is the api header: it takes a value and prints no version;
// --print-version prints the build's version.
func TestHelp(t *testing.T) {
	code, out, errOut := runCmd("--help")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, f := range []string{"--url value, -u value", "--key value, -k value", "--nonce value, -n value", "(default: -1)",
		"--version value", `(default: "protocol=2.0,resource=1.0")`, "--custom value", `(default: "{}")`} {
		if !strings.Contains(out, f) {
			t.Errorf("help lacks %q:\n%s", f, out)
		}
	}
	if !strings.Contains(out, "--print-version") {
		t.Errorf("help lacks --print-version:\n%s", out)
	}
	if code, out, _ := runCmd("--print-version"); code != 0 || !strings.HasPrefix(out, "things-jwt version ") {
		t.Errorf("--print-version: exit %d, stdout %q", code, out)
	}
	if code, out, errOut := runCmd("--version"); code != 1 || out != "" || errOut != "things-jwt: flag needs an argument: -version (see --help)\n" {
		t.Errorf("--version alone: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
