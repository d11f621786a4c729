package connect

import (
	"bytes"
	"context"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestTrust(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flags   Flags
		err     string // substring of the error; "" for none
		desc    string // substring of the description of the trust
		warning bool
	}{
		{name: "default", desc: "resources/example-ca.cert.pem, -gateway-name thingway-gateway"},
		{name: "name", flags: Flags{Name: "gw.example.com"}, desc: "-gateway-name gw.example.com"},
		{name: "CA file", flags: Flags{CA: "../../../resources/example-ca.cert.pem"}, desc: "-gateway-ca ../../../resources/example-ca.cert.pem,"},
		{name: "insecure", flags: Flags{Insecure: true}, desc: "-insecure-gateway", warning: true},
		{name: "insecure and CA", flags: Flags{Insecure: true, CA: "x.pem"}, err: "-insecure-gateway and -gateway-ca exclude each other"},
		{name: "missing CA", flags: Flags{CA: "no-such.pem"}, err: "-gateway-ca: open no-such.pem"},
		{name: "not PEM", flags: Flags{CA: "connect.go"}, err: "-gateway-ca: no PEM certificate in connect.go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			tc.flags.Stderr = &stderr
			trust, desc, err := tc.flags.trust()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(desc, tc.desc) {
				t.Errorf("description %q, want %q in it", desc, tc.desc)
			}
			if trust.InsecureAnyGateway != tc.flags.Insecure || (trust.RootCAs == nil) != tc.flags.Insecure {
				t.Errorf("trust = %+v", trust)
			}
			want := ""
			if tc.warning {
				want = InsecureWarning + "\n"
			}
			if stderr.String() != want {
				t.Errorf("stderr = %q, want %q", stderr.String(), want)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	var f Flags
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.Register(fs)
	if err := fs.Parse([]string{"-gateway-ca", "ca.pem", "-insecure-gateway"}); err != nil {
		t.Fatal(err)
	}
	if f != (Flags{CA: "ca.pem", Name: DefaultGatewayName, Insecure: true}) {
		t.Errorf("flags = %+v", f)
	}
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	fs.Usage()
	if !strings.HasSuffix(usage.String(), "-realm and -tree are ignored.\n") {
		t.Errorf("usage:\n%s", &usage)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct{ url, err string }{
		{"http://127.0.0.1:8080/openam", ""},
		{"http:///openam", `-url "http:///openam" has no host`},
		{"udp://:5683", `unsupported scheme "udp"`},
	} {
		c, err := New(context.Background(), tc.url, "/", "auth-tree", Flags{}, nil)
		if tc.err == "" && (err != nil || c == nil) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("New(%q) = %v, %v; want error %q", tc.url, c, err, tc.err)
		}
	}
	for url, want := range map[string]bool{"coap://:5683": true, "coaps://gw:5684": true, "http://am": false, "%": false} {
		if ViaGateway(url) != want {
			t.Errorf("ViaGateway(%q) = %v", url, !want)
		}
	}
}
