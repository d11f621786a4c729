package gatewaytrust

import (
	"bytes"
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
		{name: "not PEM", flags: Flags{CA: "gatewaytrust.go"}, err: "-gateway-ca: no PEM certificate in gatewaytrust.go"},
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
	fs.String("realm", "/", "AM realm") // the usage's note is for programs that have one
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

	// Without -realm, no note about it.
	fs = flag.NewFlagSet("coap-only", flag.ContinueOnError)
	f.Register(fs)
	usage.Reset()
	fs.SetOutput(&usage)
	fs.Usage()
	if strings.Contains(usage.String(), "-realm") {
		t.Errorf("usage without -realm mentions it:\n%s", &usage)
	}
}
