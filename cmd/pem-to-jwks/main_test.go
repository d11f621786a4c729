package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thingway/thingway/callback"
)

// runCmd runs the command with args and returns its exit status and output.
func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(append([]string{"pem-to-jwks"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

var b64 = base64.RawURLEncoding.EncodeToString

func TestRun(t *testing.T) {
	dir := t.TempDir()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := ec.PublicKey.Bytes()
	x, y := b64(pub[1:33]), b64(pub[33:])
	tp, err := callback.Thumbprint(ec)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, ed, _ := ed25519.GenerateKey(rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ec)

	ecFile := writeFile(t, dir, "ec.pem", pkcs8(t, ec))
	sec1File := writeFile(t, dir, "sec1.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	rsaFile := writeFile(t, dir, "rsa.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}))
	edFile := writeFile(t, dir, "ed.pem", pkcs8(t, ed))

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"EC, thumbprint by default", []string{"--in", ecFile},
			`{"keys":[{"use":"sig","kty":"EC","kid":"` + tp + `","crv":"P-256","x":"` + x + `","y":"` + y + `"}]}`},
		{"EC, iot-edge's kid", []string{"--in", ecFile, "--kid", "pop.cnf"},
			`{"keys":[{"use":"sig","kty":"EC","kid":"pop.cnf","crv":"P-256","x":"` + x + `","y":"` + y + `"}]}`},
		{"EC SEC 1, kid", []string{"--in", sec1File, "--kid", "my-key"},
			`{"keys":[{"use":"sig","kty":"EC","kid":"my-key","crv":"P-256","x":"` + x + `","y":"` + y + `"}]}`},
		{"EC thumbprint", []string{"--in", ecFile, "--thumbprint-kid"},
			`{"keys":[{"use":"sig","kty":"EC","kid":"` + tp + `","crv":"P-256","x":"` + x + `","y":"` + y + `"}]}`},
		{"RSA", []string{"--in", rsaFile, "--kid", "pop.cnf"},
			`{"keys":[{"use":"sig","kty":"RSA","kid":"pop.cnf","n":"` + b64(rk.N.Bytes()) + `","e":"AQAB"}]}`},
		{"Ed25519", []string{"--in", edFile, "--kid", "pop.cnf"},
			`{"keys":[{"use":"sig","kty":"OKP","kid":"pop.cnf","crv":"Ed25519","x":"` + b64(edPub) + `"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(tt.args...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if out != tt.want+"\n" {
				t.Errorf("stdout = %q\nwant     %q", out, tt.want+"\n")
			}
		})
	}

	t.Run("out file", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "thing.jwks")
		code, stdout, errOut := runCmd("--in", ecFile, "--out", out, "--thumbprint-kid")
		if code != 0 || stdout != "" || errOut != "" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, errOut)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"keys":[{"use":"sig","kty":"EC","kid":"` + tp + `","crv":"P-256","x":"` + x + `","y":"` + y + `"}]}`; string(b) != want {
			t.Errorf("file = %q\nwant   %q", b, want)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		// 0644 before the umask.
		if m := fi.Mode().Perm(); m&^0o644 != 0 || m&0o600 != 0o600 {
			t.Errorf("mode = %v, want 0644 less the umask", m)
		}
	})
}

// pem-to-jwks --thumbprint-kid gives manual-thing.jwks without alg.
func TestRunResources(t *testing.T) {
	res := filepath.Join("..", "..", "resources")
	code, out, errOut := runCmd("--in", filepath.Join(res, "eckey1.key.pem"), "--thumbprint-kid")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	b, err := os.ReadFile(filepath.Join(res, "manual-thing.jwks"))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(strings.TrimSpace(string(b)), `"alg":"ES256",`, "", 1) + "\n"; out != want {
		t.Errorf("stdout = %q\nwant     %q", out, want)
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecFile := writeFile(t, dir, "ec.pem", pkcs8(t, ec))
	badFile := writeFile(t, dir, "bad.pem", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	textFile := writeFile(t, dir, "text.pem", []byte("hello\n"))
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "pem-to-jwks: missing required flag --in"},
		{"empty in", []string{"--in", ""}, "pem-to-jwks: empty value for --in"},
		{"key file missing", []string{"--in", missing}, "pem-to-jwks: --in: open " + missing + ": no such file or directory"},
		{"not PEM", []string{"--in", textFile}, "pem-to-jwks: --in: " + textFile + ": pemkey: no private key found in PEM"},
		{"bad key", []string{"--in", badFile}, "pem-to-jwks: --in: " + badFile + ": pemkey: PRIVATE KEY block: asn1: "},
		{"kid and thumbprint", []string{"--in", ecFile, "--kid", "k", "--thumbprint-kid"}, "pem-to-jwks: --kid and --thumbprint-kid cannot be used together"},
		{"out in missing directory", []string{"--in", ecFile, "--out", filepath.Join(missing, "x.jwks")}, "pem-to-jwks: --out: open " + filepath.Join(missing, "x.jwks") + ": no such file or directory"},
		{"unknown flag", []string{"-i", ecFile}, "pem-to-jwks: flag provided but not defined: -i (see --help)"},
		{"argument", []string{"--in", ecFile, "out.jwks"}, `pem-to-jwks: unexpected argument "out.jwks" (see --help)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(tt.args...)
			// One line, which for a key the standard library cannot
			// parse ends with its message.
			if code != 1 || out != "" || !strings.HasPrefix(errOut, tt.want) || strings.Index(errOut, "\n") != len(errOut)-1 {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and stderr %q", code, out, errOut, tt.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	code, out, errOut := runCmd("-h")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, f := range []string{"--in value", "--out value", "--kid value", "default: the key's RFC 7638 thumbprint", "--thumbprint-kid"} {
		if !strings.Contains(out, f) {
			t.Errorf("help lacks %q:\n%s", f, out)
		}
	}
}
