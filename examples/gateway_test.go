package examples_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/examples/internal/connect"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/internal/pemkey"
)

// The evaluation guide's "IoT Gateway examples": a gateway in front of the
// local AM, presenting the DTLS identity ./run.sh gateway presents
// (resources/gateway-dtls.*.pem, CN thingway-gateway, issued by the example
// CA), and the example programs connecting through it with the default
// trust flags.

// startGateway starts a gateway for a's AM with the guide's identity id,
// key resources/eckey1.key.pem and tree, registering itself when cert (a
// file of resources/) is set, and returns its coaps:// URL.
func startGateway(t *testing.T, a *am, id, tree, cert string) string {
	t.Helper()
	b, err := os.ReadFile("../resources/eckey1.key.pem")
	if err != nil {
		t.Fatal(err)
	}
	key, err := pemkey.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	if cert != "" {
		b, err := os.ReadFile(filepath.Join("../resources", cert))
		if err != nil {
			t.Fatal(err)
		}
		if certs, err = pemkey.ParseCertificates(b); err != nil {
			t.Fatal(err)
		}
	}
	dtlsCert, err := tls.LoadX509KeyPair("../resources/gateway-dtls.cert.pem", "../resources/gateway-dtls.key.pem")
	if err != nil {
		t.Fatal(err)
	}
	gw := &gateway.Server{
		AM:              &amclient.Client{URL: a.srv.URL, Realm: "/", Tree: tree},
		ID:              id,
		Audience:        "/",
		Key:             key,
		Certificates:    certs,
		DTLSCertificate: dtlsCert,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gw.Authenticate(ctx); err != nil {
		t.Fatalf("gateway %s: %v", id, err)
	}
	l, err := gw.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- gw.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, gateway.ErrServerClosed) {
			t.Errorf("gateway Serve: %v", err)
		}
	})
	return "coaps://" + l.Addr().String()
}

// registerManualGateway is the guide's "Register a gateway": manual-gateway,
// thingType gateway, with the key set of resources/manual-thing.jwks.
func (a *am) registerManualGateway() {
	a.t.Helper()
	jwks, err := os.ReadFile("../resources/manual-thing.jwks")
	if err != nil {
		a.t.Fatal(err)
	}
	a.admin.CreateIdentity("manual-gateway", map[string]any{"userPassword": "5tr0ngG3n3r@ted", "thingType": "gateway", "thingKeys": string(jwks)})
}

// Authenticate the gateway after manual registration, then connect a thing
// to it: manual-registration with -url coaps://... and the default trust.
func TestGatewayManualRegistration(t *testing.T) {
	program(t, "manual-registration")
	u, store := manualGateway(t)
	args := []string{"-name", "manual-thing", "-url", u, "-secrets", store}

	t.Run("default trust", func(t *testing.T) {
		out, code := run(t, "manual-registration", args...)
		if code != 0 {
			t.Errorf("exit status %d", code)
		}
		checkLines(t, out, fiveLines("manual-thing"))
	})
	t.Run("realm and tree ignored", func(t *testing.T) {
		out, code := run(t, "manual-registration", append(args, "-realm", "/nowhere", "-tree", "no-such-tree")...)
		if code != 0 {
			t.Errorf("exit status %d", code)
		}
		checkLines(t, out, fiveLines("manual-thing"))
	})
	t.Run("insecure", func(t *testing.T) {
		out, errOut, code := runErr(t, "manual-registration", append(args, "-insecure-gateway")...)
		if code != 0 {
			t.Errorf("exit status %d", code)
		}
		checkLines(t, out, fiveLines("manual-thing"))
		if want := connect.InsecureWarning + "\n"; errOut != want {
			t.Errorf("stderr = %q, want %q", errOut, want)
		}
	})
	t.Run("wrong CA", func(t *testing.T) {
		ca := otherCA(t)
		out, code := run(t, "manual-registration", append(args, "-gateway-ca", ca)...)
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		checkLines(t, out, []string{lit("Fatal error: cannot verify the gateway at " + u +
			": x509: certificate signed by unknown authority (-gateway-ca " + ca +
			", -gateway-name thingway-gateway; an iot-edge gateway needs -insecure-gateway)")})
	})
	t.Run("wrong name", func(t *testing.T) {
		out, code := run(t, "manual-registration", append(args, "-gateway-name", "gateway.example.com")...)
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		checkLines(t, out, wrongGatewayName(u))
	})
	t.Run("insecure with CA", func(t *testing.T) {
		out, code := run(t, "manual-registration", append(args, "-insecure-gateway", "-gateway-ca", "../resources/example-ca.cert.pem")...)
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		checkLines(t, out, []string{lit("Fatal error: -insecure-gateway and -gateway-ca exclude each other")})
	})
}

// otherCA writes a CA certificate that did not issue the gateway's and
// returns its file.
func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "other-ca.cert.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Authenticate the gateway with dynamic registration (dynamic-gateway on
// auth-reg-tree with resources/dynamic-gateway.cert.pem), then register
// things dynamically through it, with the AM configuration of each guide
// step: pop-cert, pop-sw-stmt and pop; and user-token with bjensen's
// consent.
func TestGatewayDynamicRegistration(t *testing.T) {
	for _, tc := range []struct {
		program string
		preset  string // file of resources/am; "" for the default configuration
		gateway string // dynamic-gateway registers itself; manual-gateway is registered by hand
	}{
		{"pop-cert", "", "dynamic-gateway"},
		// auth-reg-tree registers with a software statement here, which
		// the gateway has not: in the guide's AM it was registered before.
		{"pop-sw-stmt", "pop-sw-stmt.json", "manual-gateway"},
		{"pop", "pop.json", "dynamic-gateway"},
	} {
		t.Run(tc.program, func(t *testing.T) {
			program(t, tc.program)
			a := startAM(t, tc.preset, nil)
			cert := "dynamic-gateway.cert.pem"
			if tc.gateway == "manual-gateway" {
				a.registerManualGateway()
				cert = ""
			}
			u := startGateway(t, a, tc.gateway, "auth-reg-tree", cert)
			args := []string{"-name", "dynamic-thing", "-url", u, "-secrets", filepath.Join(t.TempDir(), ".secrets"), "-create-secrets"}
			out, code := run(t, tc.program, args...)
			if code != 0 {
				t.Errorf("exit status %d", code)
			}
			checkLines(t, out, fiveLines("dynamic-thing"))
			// The second run authenticates the thing registered by the first.
			out, _ = run(t, tc.program, args...)
			checkLines(t, out, fiveLines("dynamic-thing"))
		})
	}
	t.Run("user-token", func(t *testing.T) {
		program(t, "user-token")
		a := startAM(t, "", func(c *amtest.Config) {
			c.Realms["/"].OAuth2.Device.DevicePollInterval = 1 // a quick test
		})
		a.admin.CreateIdentity("bjensen", map[string]any{"userPassword": "Ch4ng31t"})
		u := startGateway(t, a, "dynamic-gateway", "auth-reg-tree", "dynamic-gateway.cert.pem")
		userToken(t, a, "-url", u)
	})
}
