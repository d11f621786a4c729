package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/thing"
)

// cmd/gwbench measures the same operations concurrently, against the
// direct HTTP path, and adds the memory of idle things; see
// docs/benchmarks.md.

// benchGateway is a local AM with one thing ("bench-thing", key) and a
// gateway in front of it, on loopback.
type benchGateway struct {
	addr  string
	trust coapx.Trust
	key   *ecdsa.PrivateKey
}

func startBenchGateway(b *testing.B) *benchGateway {
	b.Helper()
	gwKey := benchKey(b)
	thingKey := benchKey(b)
	cfg := amtest.DefaultConfig()
	cfg.Realms["/"].Identities = map[string]map[string]any{
		"bench-gateway": benchIdentity(b, "gateway", gwKey),
		"bench-thing":   benchIdentity(b, "device", thingKey),
	}
	am := amtest.NewUnstartedServer()
	am.Config = cfg
	am.Start()
	b.Cleanup(am.Close)

	dtlsCert, err := coapx.SelfSignedCertificate(nil, "bench-gateway")
	if err != nil {
		b.Fatal(err)
	}
	s := &gateway.Server{
		AM:              &amclient.Client{URL: am.URL, Realm: "/", Tree: "auth-tree"},
		ID:              "bench-gateway",
		Key:             gwKey,
		DTLSCertificate: dtlsCert,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Authenticate(ctx); err != nil {
		b.Fatal(err)
	}
	l, err := s.Listen("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			b.Errorf("Shutdown: %v", err)
		}
		if err := <-errc; !errors.Is(err, gateway.ErrServerClosed) {
			b.Errorf("Serve = %v", err)
		}
	})
	pin := sha256.Sum256(dtlsCert.Certificate[0])
	return &benchGateway{addr: l.Addr().String(), trust: coapx.Trust{PinnedSHA256: pin[:]}, key: thingKey}
}

func benchKey(b *testing.B) *ecdsa.PrivateKey {
	b.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	return k
}

func benchIdentity(b *testing.B, thingType string, key *ecdsa.PrivateKey) map[string]any {
	b.Helper()
	kid, err := callback.Thumbprint(key.Public())
	if err != nil {
		b.Fatal(err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Use: "sig"}}})
	if err != nil {
		b.Fatal(err)
	}
	return map[string]any{"thingType": thingType, "thingKeys": string(set)}
}

func benchCert(b *testing.B) *tls.Certificate {
	b.Helper()
	c, err := coapx.SelfSignedCertificate(nil, "bench-thing")
	if err != nil {
		b.Fatal(err)
	}
	return &c
}

// BenchmarkProxiedAccessToken measures signed access-token requests of a
// proof-of-possession thing through the gateway, one at a time on one
// DTLS session: thing signs, gateway relays over HTTP, AM verifies and
// issues an ES256 token.
func BenchmarkProxiedAccessToken(b *testing.B) {
	g := startBenchGateway(b)
	ctx := context.Background()
	conn, err := thing.DialGateway(ctx, thing.GatewayConfig{Address: g.addr, Trust: g.trust, Certificate: benchCert(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	th, err := thing.New(ctx, thing.Config{Connector: conn, ID: "bench-thing", Key: g.key})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := th.AccessToken(ctx, "publish"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkHandshake measures new DTLS sessions with the gateway, one at
// a time: thing.DialGateway (ECDHE handshake with client and server
// certificates, then a CoAP ping) and Close.
func BenchmarkHandshake(b *testing.B) {
	g := startBenchGateway(b)
	cfg := thing.GatewayConfig{Address: g.addr, Trust: g.trust, Certificate: benchCert(b)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		conn, err := thing.DialGateway(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		conn.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}
