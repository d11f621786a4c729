package reliability_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/internal/amadmin"
	"github.com/thingway/thingway/internal/impair"
	"github.com/thingway/thingway/internal/proctest"
	"github.com/thingway/thingway/thing"
)

// stack is a local AM over real HTTP, a gateway in front of it over real
// DTLS, and an impairment relay in front of the gateway: things dial the
// relay.
type stack struct {
	t        testing.TB
	am       *amtest.Server
	amURL    string
	amCalls  *calls
	amAddr   string
	amServer *http.Server
	admin    *amadmin.Client
	ca       *amadmin.CA
	pub      *amadmin.Publisher // the software publisher
	gw       *gateway.Server
	gwAddr   string
	gwKey    crypto.Signer
	gwConfig func(*gateway.Server)
	gwServed chan error
}

// calls counts AM's requests by path (without the deployment prefix),
// and can hold them back or fail them.
type calls struct {
	h     http.Handler
	delay atomic.Int64 // nanoseconds added before a thing's request
	fail  atomic.Int32 // status answered instead of AM's, 0 for none

	mu sync.Mutex
	n  map[string]int
}

func (c *calls) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/openam")
	key := p
	for _, q := range []string{"_action", "authIndexValue"} {
		if v := r.URL.Query().Get(q); v != "" {
			key += "?" + q + "=" + v
		}
	}
	c.mu.Lock()
	c.n[key]++
	c.mu.Unlock()
	thingCall := strings.Contains(p, "/json/things/") || strings.Contains(p, "/oauth2/") || r.URL.Query().Get("authIndexValue") == "thing-tree"
	if d := time.Duration(c.delay.Load()); d > 0 && thingCall {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	if code := int(c.fail.Load()); code != 0 && thingCall {
		http.Error(w, `{"code":`+fmt.Sprint(code)+`,"reason":"Injected","message":"injected failure"}`, code)
		return
	}
	c.h.ServeHTTP(w, r)
}

// snapshot returns the counts so far.
func (c *calls) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// since returns the requests for key made since snapshot before.
func (c *calls) since(before map[string]int, key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key] - before[key]
}

// count returns the requests whose path (with its _action and
// authIndexValue parameters) ends with suffix.
func (c *calls) count(suffix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for p, k := range c.n {
		if strings.HasSuffix(p, suffix) {
			n += k
		}
	}
	return n
}

// stackConfig describes a stack.
type stackConfig struct {
	// realm changes the local AM's top-level realm (trees, nodes).
	realm func(r *amtest.Realm)
	// gateway changes the gateway before it starts.
	gateway func(s *gateway.Server)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// debugLog is a debug logger to stderr when RELIABILITY_DEBUG is set.
func debugLog(name string) *slog.Logger {
	if os.Getenv("RELIABILITY_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("part", name)
}

func newStack(t testing.TB, sc stackConfig) *stack {
	t.Helper()
	s := &stack{t: t}
	s.ca = amadmin.NewCA(t, "Reliability Test CA")
	s.pub = amadmin.NewPublisher(t, "publisher")
	cfg := amtest.DefaultConfig()
	cfg.CertVerificationCAs = amtest.Certificates{s.ca.Cert}
	realm := cfg.Realms["/"]
	realm.OAuth2.Device.DevicePollInterval = 1
	set := s.pub.JWKSet()
	for _, p := range realm.SoftwarePublishers {
		p.JWKSet = set
	}
	// The things' tree: a copy of auth-reg-tree, changed by sc.realm.
	realm.Trees["thing-tree"] = realm.Trees["auth-reg-tree"]
	if sc.realm != nil {
		sc.realm(realm)
	}
	s.am = &amtest.Server{Config: cfg, Logger: debugLog("am")}
	if err := s.am.Init(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.amURL = "http://" + l.Addr().String() + "/openam"
	s.am.URL = s.amURL
	s.amAddr = l.Addr().String()
	s.amCalls = &calls{h: s.am, n: map[string]int{}}
	s.serveAM(l)
	t.Cleanup(func() { s.amServer.Close(); s.am.Close() })
	s.admin = amadmin.Admin(t, s.amURL, nil)
	if _, err := s.am.EnsureUser("/", "bjensen", "Ch4ng31t"); err != nil {
		t.Fatal(err)
	}

	key := newKey(t)
	s.admin.Identity("reliability-gateway", "gateway", key, nil)
	s.gwKey = key
	s.gwConfig = sc.gateway
	s.startGateway("127.0.0.1:0")
	return s
}

// startGateway starts a gateway listening on addr, stopped at cleanup.
func (s *stack) startGateway(addr string) {
	t := s.t
	t.Helper()
	gw := &gateway.Server{
		AM:        &amclient.Client{URL: s.amURL, Realm: "/", Tree: "auth-tree"},
		ID:        "reliability-gateway",
		Key:       s.gwKey,
		ThingTree: "thing-tree",
		Logger:    debugLog("gateway"),
	}
	if s.gwConfig != nil {
		s.gwConfig(gw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gw.Authenticate(ctx); err != nil {
		t.Fatal(err)
	}
	var gl *gateway.DTLSListener
	var err error
	// A restarted gateway binds the port its predecessor just released.
	if !proctest.Eventually(10*time.Second, func() bool { gl, err = gw.Listen("udp4", addr); return err == nil }) {
		t.Fatal(err)
	}
	s.gw, s.gwAddr = gw, gl.Addr().String()
	served := make(chan error, 1)
	s.gwServed = served
	go func() { served <- gw.Serve(gl) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
		if err := <-served; !errors.Is(err, gateway.ErrServerClosed) {
			t.Errorf("gateway Serve: %v", err)
		}
	})
}

// killGateway stops the gateway at once and starts a new one on its port,
// as SIGKILL and a restart would: relay, partitioned meanwhile, lets no
// closing alert reach the thing, and the old gateway's AM session is not
// logged out.
func (s *stack) killGateway(relay *impair.Relay) {
	s.t.Helper()
	cut := impair.Impairment{Drop: 1}
	relay.SetImpairment(cut, cut)
	s.gw.Close()
	s.startGateway(s.gwAddr)
	relay.SetImpairment(impair.Impairment{}, impair.Impairment{})
}

// serveAM serves AM on l.
func (s *stack) serveAM(l net.Listener) {
	s.amServer = &http.Server{Handler: s.amCalls, ReadHeaderTimeout: 10 * time.Second}
	go s.amServer.Serve(l) //nolint:errcheck // ends with Close
}

// consent approves a user code as the person user.
func (s *stack) consent(verificationURI, userCode, user, password string) error {
	tok := s.admin.Login(user, password)
	form := url.Values{"user_code": {userCode}, "decision": {"allow"}, "csrf": {tok}}
	req, _ := http.NewRequest("POST", verificationURI, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", "iPlanetDirectoryPro="+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(string(b), "done: true") {
		return fmt.Errorf("consent: %d %s", res.StatusCode, b)
	}
	return nil
}

// link starts a relay in front of the gateway that drops each datagram
// with probability loss, each way, seeded with seed.
func (s *stack) link(loss float64, seed uint64) *impair.Relay {
	imp := impair.Impairment{Drop: loss}
	return s.impairedLink(imp, imp, seed)
}

// impairedLink starts a relay in front of the gateway.
func (s *stack) impairedLink(up, down impair.Impairment, seed uint64) *impair.Relay {
	s.t.Helper()
	r, err := impair.Listen("udp4", "127.0.0.1:0", impair.Config{Upstream: s.gwAddr, Up: up, Down: down, Seed: seed,
		Logger: debugLog("relay")})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { r.Close() })
	return r
}

// dial connects a thing to the gateway through relay r.
func dial(ctx context.Context, r *impair.Relay, opts ...func(*thing.GatewayConfig)) (*thing.Gateway, error) {
	cfg := thing.GatewayConfig{Address: r.Addr().String(), Trust: coapx.Trust{InsecureAnyGateway: true},
		Logger: debugLog("thing")}
	for _, o := range opts {
		o(&cfg)
	}
	return thing.DialGateway(ctx, cfg)
}
