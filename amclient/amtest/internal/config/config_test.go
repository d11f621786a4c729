package config

import (
	"os"
	"path/filepath"
	"testing"
)

// amtest embeds the example files; a test of this package alone reads
// them from amtest's defaults directory.
func TestMain(m *testing.M) {
	if err := SetExampleFilesFrom(filepath.Join("..", "..", "defaults")); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// The defaults are valid as they are, and a deep copy keeps them so,
// client secrets included.
func TestDefaultsValidate(t *testing.T) {
	for name, cfg := range map[string]*Config{"DefaultConfig": DefaultConfig(), "EmptyConfig": EmptyConfig()} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := ValidatePublishers(cfg); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if r := cfg.Realms["/"]; r != nil && r.OAuth2Clients != nil {
			r.OAuth2Clients["forgerock-iot-oauth2-client"].Secret = "s3cret"
		}
		c, err := Clone(cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s, cloned: %v", name, err)
		}
		if got, want := ClientSecrets(c), ClientSecrets(cfg); len(got) != len(want) || len(got) > 0 && got["/"]["forgerock-iot-oauth2-client"] != "s3cret" {
			t.Errorf("%s: secrets %v after Clone, want %v", name, got, want)
		}
	}
	if cas := DefaultConfig().VerificationCAs(); len(cas) != 1 || !cas[0].Equal(ExampleCA()) {
		t.Errorf("VerificationCAs of DefaultConfig = %d certificates, want the example CA", len(cas))
	}
}
