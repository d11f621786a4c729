// Package secrets is the key store of the example programs: a JSON Web Key
// Set file of private keys, one per thing, looked up by key ID (kid) = the
// thing's name.
//
// # File format
//
// The file is a JWK set, {"keys": [...]}, whose entries are private JWKs
// (with "d"), optionally with "x5c" (the thing's certificate chain, base64
// DER, leaf first). resources/example.secrets is one: it holds the keys
// "manual-thing" and "software-publisher".
//
// # Semantics
//
// A missing file is an empty set. With [Store.Create] set, asking
// [Store.Signer] for a name that is not in the set generates a P-256 key
// (alg ES256, use sig, kid = name), appends it and rewrites the whole file
// (two-space indented JSON, mode 0600); without it, that is a
// [*MissingKeyError] and the file is left as it is. A file that holds
// public keys only (a JWK set to register, such as
// resources/manual-thing.jwks) is refused either way. [Store.Certificates] returns the entry's x5c, or else a new
// certificate on every call (not stored): subject CN=name, valid from 24
// hours ago to 24 hours from now, issued by the example CA of
// resources/example-ca.key.pem and resources/example-ca.cert.pem, which
// the local AM trusts by default.
//
// Paths under resources/ are relative to the repository root, found by
// walking up from the working directory to the directory that holds
// go.mod, so the examples run from anywhere in the repository.
//
// # Usage
//
//	store := &secrets.Store{Path: *secretsFlag, Create: true} // "" means .secrets
//	key, err := store.Signer("dynamic-thing")
//	if err != nil {
//		return err
//	}
//	certs, err := store.Certificates("dynamic-thing")
//
// The keys in resources/ are public demo material: never use them, or this
// store, in production.
package secrets

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/internal/examplepki"
	"github.com/thingway/thingway/internal/pemkey"
)

// DefaultPath is the store's file when Store.Path is empty, relative to
// the working directory.
const DefaultPath = ".secrets"

// Files under the repository root that the examples use.
const (
	ExampleSecrets = "resources/example.secrets"
	exampleCAKey   = "resources/example-ca.key.pem"
	exampleCACert  = "resources/example-ca.cert.pem"
)

// PublisherKeyID is the kid, in resources/example.secrets, of the software
// publisher's key that signs software statements.
const PublisherKeyID = "software-publisher"

// certValidity is how far before and after now a generated certificate is valid.
const certValidity = 24 * time.Hour

// Store is a JWK set file of private keys. The zero value uses
// [DefaultPath]. A Store reads the file on every call and is not safe for
// concurrent use.
type Store struct {
	// Path is the JWK set file. If empty, DefaultPath (".secrets" in the
	// working directory).
	Path string

	// Create lets Signer generate a missing key and create or rewrite the
	// file to store it. If false, the store only reads.
	Create bool

	// Time returns the current time for generated certificates. If nil, time.Now.
	Time func() time.Time
}

// MissingKeyError is the error of a Store that may not create the key it
// was asked for.
type MissingKeyError struct {
	Name, Path string
	NoFile     bool // the file does not exist
}

func (e *MissingKeyError) Error() string {
	if e.NoFile {
		return fmt.Sprintf("secrets: %s does not exist", e.Path)
	}
	return fmt.Sprintf("secrets: no key %q in %s", e.Name, e.Path)
}

func (s *Store) path() string {
	if s.Path == "" {
		return DefaultPath
	}
	return s.Path
}

func (s *Store) now() time.Time {
	if s.Time != nil {
		return s.Time()
	}
	return time.Now()
}

// read returns the key set; a missing file is an empty set, and missing
// says so.
func (s *Store) read() (set jose.JSONWebKeySet, missing bool, err error) {
	b, err := os.ReadFile(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return set, true, nil
	}
	if err != nil {
		return set, false, fmt.Errorf("secrets: %w", err)
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return set, false, fmt.Errorf("secrets: %s is not a JWK set: %w", s.path(), err)
	}
	if len(set.Keys) > 0 && publicOnly(set) {
		return set, false, fmt.Errorf("secrets: %s holds public keys only (a JWK set to register); the store needs the thing's private key", s.path())
	}
	return set, false, nil
}

func publicOnly(set jose.JSONWebKeySet) bool {
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return false
		}
	}
	return true
}

// write replaces the file with set: written to a temporary file in the
// same directory, then renamed over it, so a failure leaves the old file.
func (s *Store) write(set jose.JSONWebKeySet) error {
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	path := s.path()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("secrets: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("secrets: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	return nil
}

// entry returns the key named name, or nil.
func entry(set jose.JSONWebKeySet, name string) *jose.JSONWebKey {
	if keys := set.Key(name); len(keys) > 0 {
		return &keys[0]
	}
	return nil
}

func signer(k *jose.JSONWebKey, name, path string) (crypto.Signer, error) {
	if k.IsPublic() {
		return nil, fmt.Errorf("secrets: key %q in %s is a public key; the store holds private keys", name, path)
	}
	sg, ok := k.Key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("secrets: key %q in %s cannot sign", name, path)
	}
	return sg, nil
}

// Signer returns the private key named name, generating and storing a new
// P-256 key if the store has none.
func (s *Store) Signer(name string) (crypto.Signer, error) {
	if name == "" {
		return nil, errors.New("secrets: empty key name")
	}
	set, missing, err := s.read()
	if err != nil {
		return nil, err
	}
	if k := entry(set, name); k != nil {
		return signer(k, name, s.path())
	}
	if !s.Create {
		return nil, &MissingKeyError{Name: name, Path: s.path(), NoFile: missing}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	set.Keys = append(set.Keys, jose.JSONWebKey{Key: key, KeyID: name, Algorithm: string(jose.ES256), Use: "sig"})
	if err := s.write(set); err != nil {
		return nil, err
	}
	return key, nil
}

// Certificates returns the certificate chain of the key named name: the
// stored x5c if the entry has one, otherwise a new certificate issued by
// the example CA for the key (which Signer creates if it is missing).
func (s *Store) Certificates(name string) ([]*x509.Certificate, error) {
	set, _, err := s.read()
	if err != nil {
		return nil, err
	}
	if k := entry(set, name); k != nil && len(k.Certificates) > 0 {
		return k.Certificates, nil
	}
	key, err := s.Signer(name)
	if err != nil {
		return nil, err
	}
	ca, caKey, err := exampleCA()
	if err != nil {
		return nil, err
	}
	now := s.now()
	cert, _, err := examplepki.IssueCert(ca, caKey, key.Public(), name, now.Add(-certValidity), now.Add(certValidity))
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return []*x509.Certificate{cert}, nil
}

// exampleCA reads the example CA's certificate and key.
func exampleCA() (*x509.Certificate, crypto.Signer, error) {
	keyPEM, err := readResource(exampleCAKey)
	if err != nil {
		return nil, nil, err
	}
	certPEM, err := readResource(exampleCACert)
	if err != nil {
		return nil, nil, err
	}
	key, err := pemkey.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("secrets: %s: %w", exampleCAKey, err)
	}
	certs, err := pemkey.ParseCertificates(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("secrets: %s: %w", exampleCACert, err)
	}
	return certs[0], key, nil
}

// RepoRoot returns the repository root: the nearest directory, from the
// working directory up, that holds go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("secrets: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("secrets: no go.mod in the working directory or above it; run the examples inside the Thingway repository")
		}
		dir = parent
	}
}

// ResourcePath returns the absolute path of rel (such as
// "resources/example.secrets") under the repository root.
func ResourcePath(rel string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, filepath.FromSlash(rel)), nil
}

// readResource reads rel under the repository root.
func readResource(rel string) ([]byte, error) {
	p, err := ResourcePath(rel)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return b, nil
}

// SoftwareStatement returns a software statement for the thing whose key
// is thingKey: a JWT signed (ES256) by the software publisher key
// (PublisherKeyID) of resources/example.secrets, with header kid = that
// key's thumbprint and the claims iss = issuer and jwks = {"keys": [the
// thing's public JWK, kid = its thumbprint, alg ES256, use sig]}. It has
// no iat or exp, like the iot-edge examples' statements.
func SoftwareStatement(thingKey crypto.Signer, issuer string) (string, error) {
	p, err := ResourcePath(ExampleSecrets)
	if err != nil {
		return "", err
	}
	publisher, err := (&Store{Path: p}).existing(PublisherKeyID)
	if err != nil {
		return "", err
	}
	pubKID, err := callback.Thumbprint(publisher.Public())
	if err != nil {
		return "", fmt.Errorf("secrets: %w", err)
	}
	thingKID, err := callback.Thumbprint(thingKey.Public())
	if err != nil {
		return "", fmt.Errorf("secrets: %w", err)
	}
	jwk := jose.JSONWebKey{Key: thingKey.Public(), KeyID: thingKID, Algorithm: string(jose.ES256), Use: "sig"}
	claims, err := json.Marshal(map[string]any{
		"iss":  issuer,
		"jwks": jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}},
	})
	if err != nil {
		return "", fmt.Errorf("secrets: %w", err)
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: publisher, KeyID: pubKID}}, nil)
	if err != nil {
		return "", fmt.Errorf("secrets: software statement signer: %w", err)
	}
	jws, err := sg.Sign(claims)
	if err != nil {
		return "", fmt.Errorf("secrets: signing the software statement: %w", err)
	}
	return jws.CompactSerialize()
}

// existing returns the private key named name without creating one.
func (s *Store) existing(name string) (crypto.Signer, error) {
	set, missing, err := s.read()
	if err != nil {
		return nil, err
	}
	k := entry(set, name)
	if k == nil {
		return nil, &MissingKeyError{Name: name, Path: s.path(), NoFile: missing}
	}
	return signer(k, name, s.path())
}
