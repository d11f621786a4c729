package admin

import (
	"testing"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

// TestServerProperties checks the advanced server properties: kept as
// strings, read back.
func TestServerProperties(t *testing.T) {
	f := newFake(t)
	const p = "global-config/servers/server-default/properties/advanced"
	got := f.must(f.call("PUT", p, `{"_id":"x","com.example.fqdnMap[a]":"a","n":7,"b":true,"gone":null}`), 200)
	if mustJSON(t, got) != `{"b":"true","com.example.fqdnMap[a]":"a","n":"7"}` {
		t.Fatalf("PUT: %v", got)
	}
	if got := f.must(f.call("GET", p, ""), 200); got["n"] != "7" {
		t.Fatalf("GET: %v", got)
	}
	f.refused(400, "Invalid value for l: a server property is a string", func() answer { return f.call("PUT", p, `{"l":[1]}`) })
	f.refused(405, "Method Not Allowed", func() answer { return f.call("DELETE", p, "") })
}

// TestSecretMappings checks the default keystore's secret mappings: a
// mapping to an alias the keystore does not have is refused, and the
// certificate-verification mapping replaces the CAs configured directly.
func TestSecretMappings(t *testing.T) {
	f := newFake(t)
	p := "global-config/" + crest.PathSecretMappings + "/" + config.CertVerificationSecretID
	f.refused(400, `The keystore has no alias "nope". The local AM cannot read AM's keystore: give it the CA certificate that "nope" holds in your AM under that alias (Config.KeystoreAliases; amlocal: --keystore-alias nope=CA.pem, or keystoreAliases in --config). Known aliases: `+config.ExampleCAAlias,
		func() answer { return f.call("PUT", p, `{"aliases":["nope"]}`) })
	f.refused(400, "A secret mapping needs at least one alias", func() answer { return f.call("PUT", p, `{"aliases":[]}`) })
	status := 201
	if _, ok := f.cfg.SecretMappings[config.CertVerificationSecretID]; ok {
		status = 200
	}
	m := f.must(f.call("PUT", p, `{"secretId":"`+config.CertVerificationSecretID+`","aliases":["`+config.ExampleCAAlias+`"]}`), status)
	if m["_id"] != config.CertVerificationSecretID || mustJSON(t, m["aliases"]) != `["`+config.ExampleCAAlias+`"]` ||
		mustJSON(t, m["_type"]) != `{"_id":"mappings","collection":true,"name":"Mappings"}` {
		t.Fatalf("PUT: %v", m)
	}
	if f.cfg.CertVerificationCAs != nil {
		t.Fatal("the CAs configured directly are still in force")
	}
	q := f.must(f.call("GET", "global-config/"+crest.PathSecretMappings+"?_queryFilter=true", ""), 200)
	if got := ids(t, q); len(got) != 1 || got[0] != config.CertVerificationSecretID {
		t.Fatalf("query: %v", got)
	}
	if got := f.must(f.call("DELETE", p, ""), 200); got["_rev"] != m["_rev"] {
		t.Fatalf("DELETE: %v", got)
	}
	f.refused(404, "Secret mapping "+config.CertVerificationSecretID+" not found", func() answer { return f.call("GET", p, "") })
}
