// Command gen generates Thingway's example PKI: a demo certificate authority,
// the EC keys of the example things and gateways, their certificates and JWK
// sets, and a README describing them.
//
// Run it from the repository root:
//
//	go run ./resources/gen [-out resources] [-amtest amclient/amtest/defaults] [-force]
//
// Every key is freshly generated. The output is public demo material and must
// never be used in production.
package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/thingway/thingway/internal/examplepki"
	"github.com/thingway/thingway/internal/pemkey"
)

const (
	defaultOut    = "resources"
	defaultAMTest = "amclient/amtest/defaults"

	caCommonName = "Thingway Example CA"
	caValidity   = 20 // years
	leafValidity = 10 // years
	backdate     = time.Hour

	// Key ids of the private keys in example.secrets.
	manualThingKid       = "manual-thing"
	softwarePublisherKid = "software-publisher"
)

// Output file names.
const (
	caKeyFile         = "example-ca.key.pem"
	caCertFile        = "example-ca.cert.pem"
	ecKey1File        = "eckey1.key.pem"
	manualThingJWKS   = "manual-thing.jwks"
	dynamicGWCertFile = "dynamic-gateway.cert.pem"
	thingymabotFile   = "thingymabot.cert.pem"
	publisherKeyFile  = "software-publisher.key.pem"
	publisherJWKS     = "software-publisher-public.jwks"
	secretsFile       = "example.secrets"
	gatewayKeyFile    = "gateway-dtls.key.pem"
	gatewayCertFile   = "gateway-dtls.cert.pem"
	readmeFile        = "README.md"
)

const (
	privateMode fs.FileMode = 0o600
	publicMode  fs.FileMode = 0o644
)

type config struct {
	out         string
	amtest      string
	force       bool
	gatewayOnly bool
}

// Gateway DTLS identity: the name things verify, and the addresses it is
// valid for on a development machine.
const gatewayName = "thingway-gateway"

// output is one file to write.
type output struct {
	path string
	data []byte
	mode fs.FileMode
}

// pki holds the generated material.
type pki struct {
	ca          *x509.Certificate
	caKey       *ecdsa.PrivateKey
	ecKey1      *ecdsa.PrivateKey
	dynamicGW   []byte // DER
	thingymabot []byte // DER
	publisher   *ecdsa.PrivateKey
	gatewayKey  *ecdsa.PrivateKey
	gatewayCert []byte // DER
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if cfg.gatewayOnly {
		return addGatewayDTLS(cfg, stdout, stderr)
	}
	if !cfg.force {
		if err := refuseOverwrite(cfg, stderr); err != nil {
			return err
		}
	}
	p, err := generate(time.Now().UTC().Truncate(time.Second))
	if err != nil {
		return err
	}
	outputs, err := p.outputs(cfg)
	if err != nil {
		return err
	}
	for _, o := range outputs {
		if err := writeOutput(o); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "wrote", o.path)
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fset := flag.NewFlagSet("gen", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.StringVar(&cfg.out, "out", defaultOut, "directory to write the example resources to")
	fset.StringVar(&cfg.amtest, "amtest", defaultAMTest, "directory of the local AM's embedded defaults, which receives copies of the CA certificate, the software publisher JWK set and manual-thing's public JWK set (empty: skip)")
	fset.BoolVar(&cfg.force, "force", false, "overwrite existing files")
	fset.BoolVar(&cfg.gatewayOnly, "gateway-dtls-only", false, "only issue the gateway's DTLS key and certificate from the example CA already in -out")
	if err := fset.Parse(args); err != nil {
		return config{}, err
	}
	if fset.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fset.Args())
	}
	if cfg.out == "" {
		return config{}, errors.New("-out must not be empty")
	}
	return cfg, nil
}

// paths lists every file a run writes, in write order.
func (cfg config) paths() []string {
	var ps []string
	for _, name := range []string{
		caKeyFile, caCertFile, ecKey1File, manualThingJWKS, dynamicGWCertFile,
		thingymabotFile, publisherKeyFile, publisherJWKS, secretsFile, gatewayKeyFile, gatewayCertFile, readmeFile,
	} {
		ps = append(ps, filepath.Join(cfg.out, name))
	}
	if cfg.amtest != "" {
		ps = append(ps, filepath.Join(cfg.amtest, caCertFile), filepath.Join(cfg.amtest, publisherJWKS), filepath.Join(cfg.amtest, manualThingJWKS))
	}
	return ps
}

// refuseOverwrite fails, listing the files concerned, if any output exists.
func refuseOverwrite(cfg config, stderr io.Writer) error {
	var existing []string
	for _, p := range cfg.paths() {
		_, err := os.Lstat(p)
		switch {
		case err == nil:
			existing = append(existing, p)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("check %s: %w", p, err)
		}
	}
	if len(existing) == 0 {
		return nil
	}
	fmt.Fprintln(stderr, "gen: these files exist and would be overwritten:")
	for _, p := range existing {
		fmt.Fprintln(stderr, "  "+p)
	}
	return fmt.Errorf("refusing to overwrite %d existing file(s); rerun with -force", len(existing))
}

func generate(now time.Time) (*pki, error) {
	notBefore := now.Add(-backdate)
	ca, caKey, err := examplepki.NewCA(caCommonName, notBefore, notBefore.AddDate(caValidity, 0, 0))
	if err != nil {
		return nil, fmt.Errorf("example CA: %w", err)
	}
	ecKey1, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("eckey1: %w", err)
	}
	publisher, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("software publisher key: %w", err)
	}
	p := &pki{ca: ca, caKey: caKey, ecKey1: ecKey1, publisher: publisher}
	leafNotAfter := notBefore.AddDate(leafValidity, 0, 0)
	if _, p.dynamicGW, err = examplepki.IssueCert(ca, caKey, &ecKey1.PublicKey, "dynamic-gateway", notBefore, leafNotAfter); err != nil {
		return nil, err
	}
	if _, p.thingymabot, err = examplepki.IssueCert(ca, caKey, &ecKey1.PublicKey, "thingymabot", notBefore, leafNotAfter); err != nil {
		return nil, err
	}
	if p.gatewayKey, p.gatewayCert, err = gatewayDTLS(ca, caKey, notBefore); err != nil {
		return nil, err
	}
	return p, nil
}

// gatewayDTLS issues the gateway's DTLS key and certificate: named
// thingway-gateway (the name examples verify), also valid for localhost.
func gatewayDTLS(ca *x509.Certificate, caKey crypto.Signer, notBefore time.Time) (*ecdsa.PrivateKey, []byte, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("gateway DTLS key: %w", err)
	}
	_, der, err := examplepki.IssueServerCert(ca, caKey, &key.PublicKey, gatewayName,
		[]string{gatewayName, "localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		notBefore, notBefore.AddDate(leafValidity, 0, 0))
	return key, der, err
}

// addGatewayDTLS issues only the gateway's DTLS identity from the example
// CA already in cfg.out, leaving every other file as it is.
func addGatewayDTLS(cfg config, stdout, stderr io.Writer) error {
	keyPath, certPath := filepath.Join(cfg.out, gatewayKeyFile), filepath.Join(cfg.out, gatewayCertFile)
	if !cfg.force {
		for _, p := range []string{keyPath, certPath} {
			if _, err := os.Stat(p); err == nil {
				fmt.Fprintln(stderr, "would overwrite", p)
				return errors.New("refusing to overwrite existing files; use -force")
			}
		}
	}
	caKeyBytes, err := os.ReadFile(filepath.Join(cfg.out, caKeyFile))
	if err != nil {
		return fmt.Errorf("example CA key: %w", err)
	}
	caCertBytes, err := os.ReadFile(filepath.Join(cfg.out, caCertFile))
	if err != nil {
		return fmt.Errorf("example CA certificate: %w", err)
	}
	caKey, err := pemkey.ParsePrivateKey(caKeyBytes)
	if err != nil {
		return fmt.Errorf("example CA key: %w", err)
	}
	cas, err := pemkey.ParseCertificates(caCertBytes)
	if err != nil {
		return fmt.Errorf("example CA certificate: %w", err)
	}
	key, der, err := gatewayDTLS(cas[0], caKey, time.Now().UTC().Truncate(time.Second).Add(-backdate))
	if err != nil {
		return err
	}
	keyBytes, err := keyPEM(key)
	if err != nil {
		return err
	}
	for _, o := range []output{{keyPath, keyBytes, privateMode}, {certPath, certPEM(der), publicMode}} {
		if err := writeOutput(o); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "wrote", o.path)
	}
	return nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate P-256 key: %w", err)
	}
	return key, nil
}

// outputs renders every file of cfg.paths, in the same order.
func (p *pki) outputs(cfg config) ([]output, error) {
	caKeyPEM, err := keyPEM(p.caKey)
	if err != nil {
		return nil, err
	}
	ecKey1PEM, err := keyPEM(p.ecKey1)
	if err != nil {
		return nil, err
	}
	publisherPEM, err := keyPEM(p.publisher)
	if err != nil {
		return nil, err
	}
	ecKey1Kid, err := examplepki.Thumbprint(&p.ecKey1.PublicKey)
	if err != nil {
		return nil, err
	}
	publisherKid, err := examplepki.Thumbprint(&p.publisher.PublicKey)
	if err != nil {
		return nil, err
	}
	manualJWKS, err := publicJWKS(p.ecKey1, ecKey1Kid)
	if err != nil {
		return nil, err
	}
	publisherJWKSData, err := publicJWKS(p.publisher, publisherKid)
	if err != nil {
		return nil, err
	}
	secrets, err := privateJWKS(map[string]*ecdsa.PrivateKey{
		manualThingKid:       p.ecKey1,
		softwarePublisherKid: p.publisher,
	}, manualThingKid, softwarePublisherKid)
	if err != nil {
		return nil, err
	}
	gatewayKeyPEM, err := keyPEM(p.gatewayKey)
	if err != nil {
		return nil, err
	}
	readme, err := p.readme(cfg, ecKey1Kid, publisherKid)
	if err != nil {
		return nil, err
	}
	caCertPEM := certPEM(p.ca.Raw)

	in := func(name string, data []byte, mode fs.FileMode) output {
		return output{path: filepath.Join(cfg.out, name), data: data, mode: mode}
	}
	outs := []output{
		in(caKeyFile, caKeyPEM, privateMode),
		in(caCertFile, caCertPEM, publicMode),
		in(ecKey1File, ecKey1PEM, privateMode),
		in(manualThingJWKS, manualJWKS, publicMode),
		in(dynamicGWCertFile, certPEM(p.dynamicGW), publicMode),
		in(thingymabotFile, certPEM(p.thingymabot), publicMode),
		in(publisherKeyFile, publisherPEM, privateMode),
		in(publisherJWKS, publisherJWKSData, publicMode),
		in(secretsFile, secrets, privateMode),
		in(gatewayKeyFile, gatewayKeyPEM, privateMode),
		in(gatewayCertFile, certPEM(p.gatewayCert), publicMode),
		in(readmeFile, readme, publicMode),
	}
	if cfg.amtest != "" {
		outs = append(outs,
			output{path: filepath.Join(cfg.amtest, caCertFile), data: caCertPEM, mode: publicMode},
			output{path: filepath.Join(cfg.amtest, publisherJWKS), data: publisherJWKSData, mode: publicMode},
			output{path: filepath.Join(cfg.amtest, manualThingJWKS), data: manualJWKS, mode: publicMode},
		)
	}
	return outs, nil
}

func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal PKCS#8 key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func jwk(key any, kid string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}
}

// publicJWKS renders the compact public JWK set of key, ending in a newline.
func publicJWKS(key *ecdsa.PrivateKey, kid string) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk(&key.PublicKey, kid)}}
	data, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("marshal public JWK set %s: %w", kid, err)
	}
	return append(data, '\n'), nil
}

// privateJWKS renders the indented private JWK set of keys, in kid order.
func privateJWKS(keys map[string]*ecdsa.PrivateKey, kids ...string) ([]byte, error) {
	var set jose.JSONWebKeySet
	for _, kid := range kids {
		set.Keys = append(set.Keys, jwk(keys[kid], kid))
	}
	data, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal private JWK set: %w", err)
	}
	return append(data, '\n'), nil
}

// coordinates returns the base64url (unpadded, as in a JWK) x and y of pub.
func coordinates(pub *ecdsa.PublicKey) (x, y string, err error) {
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return "", "", fmt.Errorf("encode public key: %w", err)
	}
	n := (len(raw) - 1) / 2
	return base64.RawURLEncoding.EncodeToString(raw[1 : 1+n]), base64.RawURLEncoding.EncodeToString(raw[1+n:]), nil
}

func (cfg config) command() string {
	cmd := "go run ./resources/gen -force"
	if cfg.out != defaultOut {
		cmd += " -out " + cfg.out
	}
	if cfg.amtest != defaultAMTest {
		cmd += " -amtest '" + cfg.amtest + "'"
	}
	return cmd
}

func (p *pki) readme(cfg config, ecKey1Kid, publisherKid string) ([]byte, error) {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	const layout = "2006-01-02 15:04:05 MST"

	w("# Thingway example PKI\n\n")
	w("> **Warning:** every key in this directory is public demo material, committed to\n")
	w("> a public repository. Never use these keys or certificates in production, and\n")
	w("> never trust the example CA outside of tests and local demos.\n\n")
	w("Generated by `resources/gen` on %s.\n", p.ca.NotBefore.Add(backdate).Format(layout))
	w("Regenerate all files (new keys, new certificates) from the repository root with:\n\n")
	w("```sh\n%s\n```\n\n", cfg.command())
	if cfg.amtest != "" {
		w("This also refreshes the copies of `%s`, `%s` and `%s`\n", caCertFile, publisherJWKS, manualThingJWKS)
		w("embedded as the local AM's defaults in `%s/`.\n", filepath.ToSlash(cfg.amtest))
	}
	w("Key ids and certificates change on every run, so update anything that hard-codes them.\n\n")

	w("| File | Contents | Used for |\n|---|---|---|\n")
	w("| `%s` | PKCS#8 EC P-256 private key of the example CA | issuing further example certificates |\n", caKeyFile)
	w("| `%s` | self-signed X.509 v3 CA certificate, `%s`, valid until %s | trust anchor for the example thing certificates |\n",
		caCertFile, p.ca.Subject, p.ca.NotAfter.Format(layout))
	w("| `%s` | PKCS#8 EC P-256 private key (kid `%s`) | key of `manual-thing`, `manual-gateway`, `dynamic-gateway` and `thingymabot` |\n", ecKey1File, ecKey1Kid)
	w("| `%s` | public JWK set of `%s` | registering the manually registered `manual-thing` / `manual-gateway` |\n", manualThingJWKS, ecKey1File)
	w("| `%s` | X.509 v3 certificate for the `%s` key, `CN=dynamic-gateway`, issued by the example CA | dynamic registration of `dynamic-gateway` |\n", dynamicGWCertFile, ecKey1File)
	w("| `%s` | PKCS#8 EC P-256 private key | the gateway's DTLS identity (stable across restarts) |\n", gatewayKeyFile)
	w("| `%s` | X.509 v3 server certificate, `CN=%s`, SANs `%s`, `localhost`, `127.0.0.1`, `::1`, issued by the example CA | what things verify when they connect to the gateway (`./run.sh gateway` uses it) |\n", gatewayCertFile, gatewayName, gatewayName)
	w("| `%s` | X.509 v3 certificate for the `%s` key, `CN=thingymabot`, issued by the example CA | dynamic registration of `thingymabot` |\n", thingymabotFile, ecKey1File)
	w("| `%s` | PKCS#8 EC P-256 private key of the software publisher (kid `%s`) | signing software statements |\n", publisherKeyFile, publisherKid)
	w("| `%s` | public JWK set of `%s` | verifying software statements |\n", publisherJWKS, publisherKeyFile)
	w("| `%s` | private JWK set: kid `%s` (= `%s`) and kid `%s` (= `%s`) | examples and tools that sign as a thing or as the publisher |\n",
		secretsFile, manualThingKid, ecKey1File, softwarePublisherKid, publisherKeyFile)
	w("| `%s` | this file | |\n\n", readmeFile)

	w("## Key ids\n\n")
	w("A key id is the RFC 7638 SHA-256 JWK thumbprint of the public key, encoded\n")
	w("as base64url *with* `=` padding. All keys are ES256 signing keys on P-256.\n\n")
	for _, k := range []struct {
		name, kid string
		pub       *ecdsa.PublicKey
	}{
		{ecKey1File, ecKey1Kid, &p.ecKey1.PublicKey},
		{publisherKeyFile, publisherKid, &p.publisher.PublicKey},
	} {
		x, y, err := coordinates(k.pub)
		if err != nil {
			return nil, fmt.Errorf("README coordinates of %s: %w", k.name, err)
		}
		w("### `%s`\n\n- kid: `%s`\n- x: `%s`\n- y: `%s`\n\n", k.name, k.kid, x, y)
	}
	return []byte(strings.TrimRight(b.String(), "\n") + "\n"), nil
}

func writeOutput(o output) error {
	if err := os.MkdirAll(filepath.Dir(o.path), 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", o.path, err)
	}
	if err := os.WriteFile(o.path, o.data, o.mode); err != nil {
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	return nil
}
