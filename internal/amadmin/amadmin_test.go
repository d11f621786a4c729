package amadmin_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/internal/amadmin"
)

func TestIdentities(t *testing.T) {
	srv := amtest.NewServer()
	t.Cleanup(srv.Close)
	admin := amadmin.Admin(t, srv.URL, srv.Client())
	if admin.Token == "" {
		t.Fatal("no admin token")
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	admin.Identity("some-thing", "device", key, map[string]any{"thingConfig": "cfg"})
	got := admin.ReadIdentity("some-thing")
	if b, _ := json.Marshal(got["thingType"]); !strings.Contains(string(b), "device") {
		t.Errorf("thingType = %s", b)
	}
	kid, _ := callback.Thumbprint(key.Public())
	if b, _ := json.Marshal(got["thingKeys"]); !strings.Contains(string(b), kid) {
		t.Errorf("thingKeys = %s, want kid %s", b, kid)
	}
}

func TestPKI(t *testing.T) {
	ca := amadmin.NewCA(t, "amadmin Test CA")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain := ca.Issue(key, "a-thing")
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if len(chain) != 1 || chain[0].Subject.CommonName != "a-thing" {
		t.Fatalf("chain = %v", chain)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatal(err)
	}

	p := amadmin.NewPublisher(t, "")
	p.SoftwareID = "sw"
	jws, err := jose.ParseSigned(p.Statement(key), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if kid := jws.Signatures[0].Header.KeyID; kid != p.KeyID || kid == "" {
		t.Errorf("kid = %q, want %q", kid, p.KeyID)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(p.JWKSet()), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWK set: %v", err)
	}
	payload, err := jws.Verify(set.Keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Iss        string
		SoftwareID string `json:"software_id"`
		JWKS       jose.JSONWebKeySet
	}
	json.Unmarshal(payload, &claims)
	kid, _ := callback.Thumbprint(key.Public())
	if claims.Iss != amadmin.StatementIssuer || claims.SoftwareID != "sw" || len(claims.JWKS.Keys) != 1 || claims.JWKS.Keys[0].KeyID != kid {
		t.Errorf("claims = %s", payload)
	}
}
