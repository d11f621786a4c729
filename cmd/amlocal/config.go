package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest"

	"github.com/thingway/thingway/internal/cliutil"
)

// options are amlocal's settings, from flags or environment variables.
type options struct {
	Listen   string
	BasePath string
	DataDir  string

	AdminPassword string
	// AdminPasswordIsSet is true when --admin-password was given (on the
	// command line or in the environment); then it overrides --config.
	AdminPasswordIsSet bool

	CACertFile        string
	PublisherJWKSFile string
	ConfigFile        string

	LogLevel  string
	LogFormat string

	TLSCertFile string
	TLSKeyFile  string

	// ImportDir is applied through the admin REST API at start.
	ImportDir string
	// Fresh starts from amtest.EmptyConfig instead of the guide's.
	Fresh bool
	// KeystoreAliases are ALIAS=FILE pairs of PEM CA certificates.
	KeystoreAliases []string
	// MaxJWTLifetime is amtest.Server.MaxJWTLifetime; 0 means no ceiling.
	MaxJWTLifetime time.Duration
	// RequireJTI is amtest.Server.RequireAssertionJTI.
	RequireJTI bool
	// MonitoringPassword is amtest.Server.MonitoringPassword.
	MonitoringPassword string
	// Users are NAME=PASSWORD pairs of people created in the top-level
	// realm at start (for example the user who approves device codes).
	Users []string
}

// defaultPublisherID is the evaluation guide's software publisher agent.
const defaultPublisherID = "iot-software-publisher"

// newLogger returns the daemon's logger on w.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lvl = slog.LevelDebug
	case "info":
		lvl = slog.LevelInfo
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		return nil, fmt.Errorf("--%s %q: want debug, info, warn or error", flagLogLevel, level)
	}
	return cliutil.NewLogger(w, lvl, format, flagLogFormat)
}

// buildConfig returns the AM configuration the options describe: the
// evaluation guide's (or --config's), with the CA certificates, the
// publisher's JWK set and the admin password replaced as asked.
func buildConfig(o options) (*amtest.Config, error) {
	cfg := amtest.DefaultConfig()
	if o.Fresh {
		if o.ConfigFile != "" {
			return nil, fmt.Errorf("--%s and --%s cannot be used together (--%s DIR can configure a fresh AM)", flagFresh, flagConfig, flagImport)
		}
		cfg = amtest.EmptyConfig()
	}
	if o.ConfigFile != "" {
		var err error
		if cfg, err = amtest.LoadConfig(o.ConfigFile); err != nil {
			return nil, fmt.Errorf("--%s: %w", flagConfig, err)
		}
	}
	if o.AdminPasswordIsSet {
		if o.AdminPassword == "" {
			return nil, fmt.Errorf("--%s must not be empty", flagAdminPassword)
		}
		cfg.AdminPassword = o.AdminPassword
	}
	if o.CACertFile != "" {
		cas, err := loadCAs(o.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flagCACert, err)
		}
		cfg.CertVerificationCAs = cas
		delete(cfg.SecretMappings, amtest.CertVerificationSecretID)
	}
	for _, kv := range o.KeystoreAliases {
		alias, file, ok := strings.Cut(kv, "=")
		if !ok || alias == "" || file == "" {
			return nil, fmt.Errorf("--%s %q: want ALIAS=FILE", flagKeystoreAlias, kv)
		}
		certs, err := loadCAs(file)
		if err != nil {
			return nil, fmt.Errorf("--%s %s: %w", flagKeystoreAlias, alias, err)
		}
		if cfg.KeystoreAliases == nil {
			cfg.KeystoreAliases = map[string]amtest.Certificates{}
		}
		cfg.KeystoreAliases[alias] = certs
	}
	if o.ImportDir != "" {
		if st, err := os.Stat(o.ImportDir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("--%s %s: not a directory", flagImport, o.ImportDir)
		}
	}
	if o.PublisherJWKSFile != "" {
		set, err := loadPublicJWKS(o.PublisherJWKSFile)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flagPublisherJWKS, err)
		}
		n := 0
		for _, r := range cfg.Realms {
			if p := r.SoftwarePublishers[defaultPublisherID]; p != nil {
				p.PublicKeyLocation = "jwks"
				p.JWKSet = set
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("--%s: no realm has the software publisher %s to give the keys to", flagPublisherJWKS, defaultPublisherID)
		}
	}
	if err := checkPublisherKeys(cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

// checkPublisherKeys refuses software publishers whose keys cannot be read:
// the local AM would only find out when a thing presents a statement.
func checkPublisherKeys(cfg *amtest.Config) error {
	for _, path := range realmPaths(cfg) {
		r := cfg.Realms[path]
		ids := make([]string, 0, len(r.SoftwarePublishers))
		for id := range r.SoftwarePublishers {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			p := r.SoftwarePublishers[id]
			if p.PublicKeyLocation != "" && p.PublicKeyLocation != "jwks" {
				return fmt.Errorf("realm %s, software publisher %s: publicKeyLocation %q is not supported (use \"jwks\")", path, id, p.PublicKeyLocation)
			}
			var set jose.JSONWebKeySet
			if err := json.Unmarshal([]byte(p.JWKSet), &set); err != nil || len(set.Keys) == 0 {
				hint := ""
				if id == defaultPublisherID {
					hint = fmt.Sprintf(" (set jwkSet in the configuration or give --%s)", flagPublisherJWKS)
				}
				return fmt.Errorf("realm %s, software publisher %s: jwkSet is not a JWK set with keys%s", path, id, hint)
			}
		}
	}
	return nil
}

// loadCAs reads a PEM file of one or more certificates.
func loadCAs(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := amtest.ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// loadPublicJWKS reads a JWK set of public keys and returns it as JSON
// text, as AM holds a publisher's keys. It refuses private keys: the local
// AM only needs to verify, and a private key in its configuration would
// let anyone who reads it sign software statements.
func loadPublicJWKS(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return "", fmt.Errorf("%s is not a JWK set: %w", path, err)
	}
	if len(set.Keys) == 0 {
		return "", fmt.Errorf(`%s has no keys (want a JWK set: {"keys": [...]})`, path)
	}
	for i, k := range set.Keys {
		if !k.Valid() {
			return "", fmt.Errorf("%s: key %d (kid %q) is not a valid key", path, i, k.KeyID)
		}
		if !k.IsPublic() {
			return "", fmt.Errorf("%s: key %d (kid %q) is a private or symmetric key; give the public JWK set", path, i, k.KeyID)
		}
	}
	return strings.TrimSpace(string(b)), nil
}

// loadTLS loads the HTTPS key pair; both files or neither must be given.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, fmt.Errorf("--%s and --%s must be given together", flagTLSCert, flagTLSKey)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--%s/--%s: %w", flagTLSCert, flagTLSKey, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// publisher is a software publisher agent and the realms that have it.
type publisher struct {
	ID, Issuer string
	Realms     []string
}

// publishers lists the configured software publishers, sorted, with the
// realms they are configured in.
func publishers(cfg *amtest.Config) []publisher {
	byKey := map[[2]string]*publisher{}
	for _, p := range realmPaths(cfg) {
		for id, sp := range cfg.Realms[p].SoftwarePublishers {
			k := [2]string{id, sp.Issuer}
			if byKey[k] == nil {
				byKey[k] = &publisher{ID: id, Issuer: sp.Issuer}
			}
			byKey[k].Realms = append(byKey[k].Realms, p)
		}
	}
	out := make([]publisher, 0, len(byKey))
	for _, p := range byKey {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Issuer < out[j].Issuer
	})
	return out
}

// realmPaths returns the configured realm paths, sorted.
func realmPaths(cfg *amtest.Config) []string {
	paths := make([]string, 0, len(cfg.Realms))
	for p := range cfg.Realms {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// treeNames returns a realm's tree names, sorted.
func treeNames(r *amtest.Realm) []string {
	names := make([]string, 0, len(r.Trees))
	for n := range r.Trees {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
