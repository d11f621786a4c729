package amtest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/internal/examplepki"
	"github.com/thingway/thingway/internal/pemkey"
)

// The embedded defaults are copies of resources/ (resources/gen writes
// both): a regenerated PKI that skipped them would leave the local AM
// trusting old keys.
func TestDefaultsMatchResources(t *testing.T) {
	for _, name := range []string{"example-ca.cert.pem", "software-publisher-public.jwks", "manual-thing.jwks"} {
		embedded, err := os.ReadFile(filepath.Join("defaults", name))
		if err != nil {
			t.Fatal(err)
		}
		res, err := os.ReadFile(filepath.Join("..", "..", "resources", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(embedded, res) {
			t.Errorf("defaults/%s differs from resources/%s: run go run ./resources/gen -force, or copy it", name, name)
		}
	}
}

// The guide's identities log in with the example key, as the README's
// manually registered manual-thing does.
func TestGuideIdentities(t *testing.T) {
	cfg := amtest.DefaultConfig()
	cfg.Realms["/"].Identities = amtest.GuideIdentities()
	_, c := startWith(t, cfg)
	b, err := os.ReadFile("../../resources/eckey1.key.pem")
	if err != nil {
		t.Fatal(err)
	}
	key, err := pemkey.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := examplepki.Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{amtest.GuideThingID, amtest.GuideGatewayID} {
		c.mustPoP(&thing{id: id, key: key, kid: kid, alg: jose.ES256}, "auth-tree", "/")
	}
	admin := c.adminLogin()
	r := c.do("GET", c.srv.URL+"/json/realms/root/users/"+amtest.GuideGatewayID, nil, "Accept-API-Version: resource=4.0, protocol=2.1", "Cookie: iPlanetDirectoryPro="+admin)
	if !bytes.Contains(r.body, []byte(`"thingType":["gateway"]`)) {
		t.Errorf("%s: %s", amtest.GuideGatewayID, r.body)
	}
}
