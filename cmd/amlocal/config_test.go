package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thingway/thingway/amclient/amtest"
)

const (
	exampleConfig = "../../resources/amlocal-config.json"
	publisherJWKS = "../../resources/software-publisher-public.jwks"
	manualJWKS    = "../../resources/manual-thing.jwks"
)

func writeFile(t *testing.T, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildConfig(t *testing.T) {
	twoCAs := writeFile(t, "cas.pem", append(readFile(t, "../../resources/example-ca.cert.pem"),
		readFile(t, "../../resources/thingymabot.cert.pem")...))
	pwConfig := writeFile(t, "pw.json", []byte(`{"adminPassword": "from-config"}`))

	tests := []struct {
		name    string
		o       options
		wantErr string
		check   func(t *testing.T, cfg *amtest.Config)
	}{
		{name: "defaults", check: func(t *testing.T, cfg *amtest.Config) {
			if cfg.AdminUser != "amAdmin" || cfg.AdminPassword != "changeit" {
				t.Errorf("admin = %s/%s", cfg.AdminUser, cfg.AdminPassword)
			}
			if len(cfg.CertVerificationCAs) != 1 || !cfg.CertVerificationCAs[0].Equal(amtest.ExampleCA()) {
				t.Errorf("CAs = %v, want the example CA", cfg.CertVerificationCAs)
			}
		}},
		{name: "admin password flag", o: options{AdminPassword: "s3cret", AdminPasswordIsSet: true},
			check: func(t *testing.T, cfg *amtest.Config) {
				if cfg.AdminPassword != "s3cret" {
					t.Errorf("admin password = %q", cfg.AdminPassword)
				}
			}},
		{name: "admin password from config kept when the flag is not set", o: options{ConfigFile: pwConfig, AdminPassword: "changeit"},
			check: func(t *testing.T, cfg *amtest.Config) {
				if cfg.AdminPassword != "from-config" {
					t.Errorf("admin password = %q", cfg.AdminPassword)
				}
			}},
		{name: "admin password flag beats config", o: options{ConfigFile: pwConfig, AdminPassword: "flag", AdminPasswordIsSet: true},
			check: func(t *testing.T, cfg *amtest.Config) {
				if cfg.AdminPassword != "flag" {
					t.Errorf("admin password = %q", cfg.AdminPassword)
				}
			}},
		{name: "empty admin password", o: options{AdminPasswordIsSet: true}, wantErr: "--admin-password must not be empty"},
		{name: "two CAs", o: options{CACertFile: twoCAs}, check: func(t *testing.T, cfg *amtest.Config) {
			if len(cfg.CertVerificationCAs) != 2 || cfg.CertVerificationCAs[1].Subject.CommonName != "thingymabot" {
				t.Errorf("CAs = %d", len(cfg.CertVerificationCAs))
			}
		}},
		{name: "publisher keys replaced in every realm", o: options{ConfigFile: exampleConfig, PublisherJWKSFile: manualJWKS},
			check: func(t *testing.T, cfg *amtest.Config) {
				want := strings.TrimSpace(string(readFile(t, manualJWKS)))
				for _, p := range []string{"/", "/edge"} {
					if got := cfg.Realms[p].SoftwarePublishers[defaultPublisherID].JWKSet; got != want {
						t.Errorf("realm %s JWKSet = %s, want %s", p, got, want)
					}
				}
			}},
		{name: "example config needs the publisher keys", o: options{ConfigFile: exampleConfig},
			wantErr: "realm /edge, software publisher iot-software-publisher: jwkSet is not a JWK set with keys (set jwkSet in the configuration or give --publisher-jwks)"},
		{name: "fresh", o: options{Fresh: true}, check: func(t *testing.T, cfg *amtest.Config) {
			r := cfg.Realms["/"]
			if len(cfg.Realms) != 1 || r.IoT != nil || r.OAuth2 != nil || len(r.Trees) != 1 || r.Trees["ldapService"] == nil {
				t.Errorf("fresh realm / = %+v", r)
			}
		}},
		{name: "fresh with config", o: options{Fresh: true, ConfigFile: pwConfig}, wantErr: "--fresh and --config cannot be used together"},
		{name: "keystore aliases", o: options{KeystoreAliases: []string{"es256test=" + twoCAs, "other=../../resources/example-ca.cert.pem"}},
			check: func(t *testing.T, cfg *amtest.Config) {
				if len(cfg.KeystoreAliases["es256test"]) != 2 || len(cfg.KeystoreAliases["other"]) != 1 {
					t.Errorf("keystore aliases = %v", cfg.KeystoreAliases)
				}
			}},
		{name: "keystore alias without file", o: options{KeystoreAliases: []string{"es256test"}}, wantErr: "want ALIAS=FILE"},
		{name: "keystore alias of a missing file", o: options{KeystoreAliases: []string{"a=/nonexistent.pem"}}, wantErr: "--keystore-alias a"},
		{name: "import of a missing directory", o: options{ImportDir: "/nonexistent"}, wantErr: "--import /nonexistent: not a directory"},
		{name: "publisher keys without publisher", o: options{ConfigFile: writeFile(t, "nopub.json", []byte(`{"realms": {"/": {}}}`)), PublisherJWKSFile: manualJWKS},
			wantErr: "no realm has the software publisher iot-software-publisher"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := buildConfig(tt.o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
}

// TestExampleConfig checks the configuration file the README shows: it
// loads, and its tree in realm /edge starts with the Authenticate Thing
// node's PoP challenge.
func TestExampleConfig(t *testing.T) {
	cfg, err := buildConfig(options{ConfigFile: exampleConfig, PublisherJWKSFile: publisherJWKS})
	if err != nil {
		t.Fatal(err)
	}
	if got := realmPaths(cfg); len(got) != 2 || got[1] != "/edge" {
		t.Fatalf("realms = %v", got)
	}
	srv := &amtest.Server{Config: cfg}
	if err := srv.Init(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	req := httptest.NewRequest("POST", "/openam/json/realms/root/realms/edge/authenticate?authIndexType=service&authIndexValue=edge-auth-reg", nil)
	req.Header.Set("Accept-API-Version", "resource=2.0, protocol=1.0")
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("authenticate: %d %s", w.Code, w.Body)
	}
	var got struct {
		AuthID    string `json:"authId"`
		Callbacks []struct {
			Type string `json:"type"`
		} `json:"callbacks"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.AuthID == "" || len(got.Callbacks) == 0 {
		t.Fatalf("authenticate: %v %s", err, w.Body)
	}
}

func TestSummary(t *testing.T) {
	cfg, err := buildConfig(options{ConfigFile: exampleConfig, PublisherJWKSFile: publisherJWKS, AdminPassword: "n0t-pr1nted", AdminPasswordIsSet: true})
	if err != nil {
		t.Fatal(err)
	}
	s := newSummary("http://127.0.0.1:8080/openam", cfg, options{DataDir: "/var/lib/amlocal"})
	s.Store = &amtest.StoreInfo{File: "/var/lib/amlocal/state.db", Size: 2_150_000, Identities: 1204, Sessions: 3}
	var b bytes.Buffer
	s.print(&b)
	want := `Thingway local AM is running
  URL         http://127.0.0.1:8080/openam
  admin       amAdmin (password set by --admin-password or --config)
  data        /var/lib/amlocal (state.db, 2.1 MB: 1204 identities, 3 sessions)
  CA          CN=Thingway Example CA,O=Thingway (am.services.iot.cert.verification)
  publisher   iot-software-publisher, issuer https://soft-pub.example.com (realms /, /edge)
  realm /     trees auth-reg-tree, auth-tree, ldapService, reg-tree
  realm /edge trees edge-auth-reg
Press Ctrl-C to stop.
`
	if b.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", b.String(), want)
	}
	for _, a := range s.attrs() {
		if strings.Contains(a.Value.String(), "n0t-pr1nted") {
			t.Errorf("log attribute %s holds the password", a.Key)
		}
	}
}

func TestEnvVars(t *testing.T) {
	for flag, want := range map[string]string{flagListen: "AMLOCAL_LISTEN", flagPublisherJWKS: "AMLOCAL_PUBLISHER_JWKS", flagTLSKey: "AMLOCAL_TLS_KEY"} {
		if got := envVars(flag); len(got) != 1 || got[0] != want {
			t.Errorf("envVars(%q) = %v, want %s", flag, got, want)
		}
	}
}
