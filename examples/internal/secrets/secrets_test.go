package secrets_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/examples/internal/secrets"
	"github.com/thingway/thingway/internal/examplepki"
	"github.com/thingway/thingway/internal/pemkey"
)

func readSet(t *testing.T, path string) jose.JSONWebKeySet {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	return set
}

func TestSignerCreatesAndReuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store")
	s := &secrets.Store{Path: path, Create: true}
	k1, err := s.Signer("thing-1")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	again, err := s.Signer("thing-1")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Public().(*ecdsa.PublicKey).Equal(k1.Public()) {
		t.Error("a second Signer call gave a different key")
	}
	if _, err := s.Signer("thing-2"); err != nil {
		t.Fatal(err)
	}
	set := readSet(t, path)
	if len(set.Keys) != 2 || set.Keys[0].KeyID != "thing-1" || set.Keys[1].KeyID != "thing-2" {
		t.Fatalf("keys = %+v", set.Keys)
	}
	for _, k := range set.Keys {
		pk, ok := k.Key.(*ecdsa.PrivateKey)
		if !ok || pk.Curve != elliptic.P256() || k.Algorithm != "ES256" || k.Use != "sig" {
			t.Errorf("key %s = %T alg %s use %s", k.KeyID, k.Key, k.Algorithm, k.Use)
		}
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "{\n  \"keys\": [\n    {\n      \"use\": \"sig\",") {
		t.Errorf("file is not indented by two spaces:\n%s", b)
	}
}

func TestDefaultPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if _, err := (&secrets.Store{Create: true}).Signer("t"); err != nil {
		t.Fatal(err)
	}
	if set := readSet(t, filepath.Join(dir, secrets.DefaultPath)); len(set.Keys) != 1 {
		t.Errorf("keys = %+v", set.Keys)
	}
}

func TestBadStores(t *testing.T) {
	dir := t.TempDir()
	pub, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	public, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub.Public(), KeyID: "t"}}})
	for name, content := range map[string]string{
		"not json":   "{",
		"public key": string(public),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			os.WriteFile(p, []byte(content), 0o600)
			if _, err := (&secrets.Store{Path: p}).Signer("t"); err == nil {
				t.Error("no error")
			}
		})
	}
	if _, err := (&secrets.Store{Path: filepath.Join(dir, "x")}).Signer(""); err == nil {
		t.Error("empty name: no error")
	}
}

// Without Create a store only reads: a missing file or key is a
// MissingKeyError and nothing is written; a file of public keys only (what
// is registered, such as resources/manual-thing.jwks) is refused even with
// Create, and left as it was.
func TestStoreReadsOnly(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	_, err := (&secrets.Store{Path: missing}).Signer("t")
	var mk *secrets.MissingKeyError
	if !errors.As(err, &mk) || !mk.NoFile || mk.Name != "t" {
		t.Errorf("missing file: %v, want a MissingKeyError for the file", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("the missing file was created: %v", err)
	}

	other := filepath.Join(dir, "other")
	if _, err := (&secrets.Store{Path: other, Create: true}).Signer("a"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(other)
	if _, err := (&secrets.Store{Path: other}).Signer("b"); !errors.As(err, &mk) || mk.NoFile || err.Error() != `secrets: no key "b" in `+other {
		t.Errorf("missing key: %v", err)
	}
	if after, _ := os.ReadFile(other); string(after) != string(before) {
		t.Error("the store was rewritten without Create")
	}

	root, err := secrets.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	registered, err := os.ReadFile(filepath.Join(root, "resources/manual-thing.jwks"))
	if err != nil {
		t.Fatal(err)
	}
	public := filepath.Join(dir, "manual-thing.jwks")
	os.WriteFile(public, registered, 0o644)
	_, err = (&secrets.Store{Path: public, Create: true}).Signer("manual-thing")
	if err == nil || !strings.Contains(err.Error(), "holds public keys only") {
		t.Errorf("public JWK set: %v", err)
	}
	if after, _ := os.ReadFile(public); string(after) != string(registered) {
		t.Error("the public JWK set was rewritten")
	}
}

// exampleCA returns the certificate of resources/example-ca.cert.pem.
func exampleCA(t *testing.T) *x509.Certificate {
	t.Helper()
	root, err := secrets.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "resources/example-ca.cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cas, err := pemkey.ParseCertificates(b)
	if err != nil {
		t.Fatal(err)
	}
	return cas[0]
}

func TestCertificates(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "store")
	s := &secrets.Store{Path: path, Create: true, Time: func() time.Time { return now }}
	certs, err := s.Certificates("cert-thing")
	if err != nil {
		t.Fatal(err)
	}
	key, err := s.Signer("cert-thing") // created by Certificates
	if err != nil {
		t.Fatal(err)
	}
	c := certs[0]
	if len(certs) != 1 || c.Subject.CommonName != "cert-thing" ||
		!c.NotBefore.Equal(now.Add(-24*time.Hour)) || !c.NotAfter.Equal(now.Add(24*time.Hour)) {
		t.Errorf("certificate: CN %s, valid %s to %s", c.Subject.CommonName, c.NotBefore, c.NotAfter)
	}
	if !c.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Error("the certificate is not for the stored key")
	}
	if err := c.CheckSignatureFrom(exampleCA(t)); err != nil {
		t.Errorf("the certificate is not issued by the example CA: %v", err)
	}
	if set := readSet(t, path); len(set.Keys[0].Certificates) != 0 {
		t.Error("the generated certificate was stored")
	}

	// An entry with x5c gives its chain.
	stored, _, err := examplepki.IssueCert(c, key, key.Public(), "stored", now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	set := readSet(t, path)
	set.Keys[0].Certificates = append(set.Keys[0].Certificates, stored)
	b, _ := json.Marshal(set)
	os.WriteFile(path, b, 0o600)
	got, err := s.Certificates("cert-thing")
	if err != nil || len(got) != 1 || !got[0].Equal(stored) {
		t.Errorf("Certificates = %v, %v; want the stored x5c", got, err)
	}
}

func TestSoftwareStatement(t *testing.T) {
	thingKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ss, err := secrets.SoftwareStatement(thingKey, "https://soft-pub.example.com")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := secrets.RepoRoot()
	publisher, err := (&secrets.Store{Path: filepath.Join(root, secrets.ExampleSecrets)}).Signer(secrets.PublisherKeyID)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(ss, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	pubKID, _ := callback.Thumbprint(publisher.Public())
	if h := jws.Signatures[0].Header; h.KeyID != pubKID || h.Algorithm != "ES256" {
		t.Errorf("header kid %s alg %s, want %s ES256", h.KeyID, h.Algorithm, pubKID)
	}
	payload, err := jws.Verify(publisher.Public())
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Iss  string             `json:"iss"`
		JWKS jose.JSONWebKeySet `json:"jwks"`
		Iat  *int64             `json:"iat"`
		Exp  *int64             `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	thingKID, _ := callback.Thumbprint(thingKey.Public())
	if claims.Iss != "https://soft-pub.example.com" || claims.Iat != nil || claims.Exp != nil || len(claims.JWKS.Keys) != 1 {
		t.Fatalf("claims = %s", payload)
	}
	k := claims.JWKS.Keys[0]
	if k.KeyID != thingKID || k.Algorithm != "ES256" || k.Use != "sig" || !k.IsPublic() ||
		!k.Key.(*ecdsa.PublicKey).Equal(thingKey.Public()) {
		t.Errorf("jwks = %s", payload)
	}
}
