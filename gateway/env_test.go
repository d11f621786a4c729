package gateway_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/internal/amadmin"
	"github.com/thingway/thingway/internal/proctest"
)

// env is a local AM, reachable over real HTTP on a loopback port that
// stays the same across stopAM/startAM, with a recorder of AM requests.
type env struct {
	t     *testing.T
	am    *amtest.Server
	url   string
	addr  string // host:port of AM
	admin *amadmin.Client
	ca    *amadmin.CA
	// amLogs holds the local AM's log.
	amLogs *logSink

	rec *recorder

	mu sync.Mutex
	hs *http.Server
}

// recorder records every AM request and can delay them.
type recorder struct {
	h     http.Handler
	delay atomic.Int64 // nanoseconds added before things requests
	// hold, when set, stops authenticate requests until it is closed,
	// each announced on held first.
	hold atomic.Pointer[chan struct{}]
	held chan struct{}

	mu   sync.Mutex
	reqs []amRequest
}

type amRequest struct {
	Method string
	URL    string // scheme://host + request URI, as AM compares it with aud
	Status int
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(c int) { w.status = c; w.ResponseWriter.WriteHeader(c) }

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if h := r.hold.Load(); h != nil && strings.HasSuffix(req.URL.Path, "/json/authenticate") {
		r.held <- struct{}{}
		select {
		case <-*h:
		case <-req.Context().Done():
			return
		}
	}
	if d := time.Duration(r.delay.Load()); d > 0 && strings.Contains(req.URL.Path, "/json/things/") {
		select {
		case <-time.After(d):
		case <-req.Context().Done():
			return
		}
	}
	sw := &statusWriter{ResponseWriter: w, status: 200}
	r.h.ServeHTTP(sw, req)
	r.mu.Lock()
	r.reqs = append(r.reqs, amRequest{Method: req.Method, URL: "http://" + req.Host + req.RequestURI, Status: sw.status})
	r.mu.Unlock()
}

func (r *recorder) requests() []amRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]amRequest(nil), r.reqs...)
}

func (r *recorder) count(sub string) int {
	n := 0
	for _, q := range r.requests() {
		if strings.Contains(q.URL, sub) {
			n++
		}
	}
	return n
}

func newEnv(t *testing.T, configure ...func(*amtest.Config)) *env {
	t.Helper()
	ca := amadmin.NewCA(t, "Gateway Test CA")
	cfg := amtest.DefaultConfig()
	cfg.CertVerificationCAs = amtest.Certificates{ca.Cert}
	cfg.Realms["/"].OAuth2.Device.DevicePollInterval = 1
	for _, f := range configure {
		f(cfg)
	}
	amLogs := newLogSink()
	am := &amtest.Server{Config: cfg, Logger: slog.New(amLogs)}
	if err := am.Init(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, am: am, amLogs: amLogs, addr: l.Addr().String(), ca: ca, rec: &recorder{h: am, held: make(chan struct{}, 16)}}
	e.url = "http://" + e.addr + "/openam"
	am.URL = e.url
	e.serve(l)
	t.Cleanup(func() { e.stopAM(); am.Close() })
	e.admin = amadmin.Admin(t, e.url, nil)
	return e
}

func (e *env) serve(l net.Listener) {
	hs := &http.Server{Handler: e.rec, ReadHeaderTimeout: 10 * time.Second}
	e.mu.Lock()
	e.hs = hs
	e.mu.Unlock()
	go hs.Serve(l) //nolint:errcheck // ends with Close
}

// stopAM closes AM's listener and connections: AM calls are refused.
func (e *env) stopAM() {
	e.mu.Lock()
	hs := e.hs
	e.hs = nil
	e.mu.Unlock()
	if hs != nil {
		hs.Close()
	}
}

// startAM serves AM again on the same address, with the same state.
func (e *env) startAM() {
	e.t.Helper()
	var l net.Listener
	var err error
	// The port was just released; retry until it can be bound again.
	if !proctest.Eventually(10*time.Second, func() bool { l, err = net.Listen("tcp", e.addr); return err == nil }) {
		e.t.Fatalf("listen again on %s: %v", e.addr, err)
	}
	e.serve(l)
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var gatewayN atomic.Int64

// gw is a running gateway.
type gw struct {
	s    *gateway.Server
	l    *gateway.DTLSListener
	addr string
	logs *logSink
	errc chan error
}

// gateway starts a gateway (identity created in AM, manual registration,
// tree auth-tree) after configure's changes, and stops it at cleanup,
// checking that Serve returns ErrServerClosed.
func (e *env) gateway(configure ...func(*gateway.Server)) *gw {
	e.t.Helper()
	key := newKey(e.t)
	id := fmt.Sprintf("test-gateway-%d", gatewayN.Add(1))
	logs := newLogSink()
	s := &gateway.Server{
		AM:     &amclient.Client{URL: e.url, Realm: "/", Tree: "auth-tree"},
		ID:     id,
		Key:    key,
		Logger: slog.New(logs),
	}
	for _, f := range configure {
		f(s)
	}
	if s.ID == id && s.Key == key && s.Certificates == nil {
		e.admin.Identity(id, "gateway", key, nil)
	}
	return startGateway(e.t, s, logs)
}

func startGateway(t *testing.T, s *gateway.Server, logs *logSink) *gw {
	t.Helper()
	return startGatewayAt(t, s, logs, "127.0.0.1:0")
}

// startGatewayAt is startGateway listening on address.
func startGatewayAt(t *testing.T, s *gateway.Server, logs *logSink, address string) *gw {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Authenticate(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := s.Listen("udp4", address)
	if err != nil {
		t.Fatal(err)
	}
	select { // the start-up fetch of AM's keys makes AM calls of its own
	case <-s.ForTest().KeysFetched():
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway's start-up fetch of AM's keys did not end")
	}
	g := &gw{s: s, l: l, addr: l.Addr().String(), logs: logs, errc: make(chan error, 1)}
	go func() { g.errc <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-g.errc:
			if !errors.Is(err, gateway.ErrServerClosed) {
				t.Errorf("Serve = %v, want ErrServerClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return g
}

// logSink keeps log records for inspection.
type logSink struct {
	store *logStore
	attrs []slog.Attr
}

type logStore struct {
	mu   sync.Mutex
	recs []logRecord
}

func newLogSink() *logSink { return &logSink{store: &logStore{}} }

type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

func (h *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (h *logSink) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { rec.Attrs[a.Key] = a.Value.String(); return true })
	h.store.mu.Lock()
	h.store.recs = append(h.store.recs, rec)
	h.store.mu.Unlock()
	return nil
}
func (h *logSink) WithAttrs(as []slog.Attr) slog.Handler {
	return &logSink{store: h.store, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}
func (h *logSink) WithGroup(string) slog.Handler { return h }

func (h *logSink) records() []logRecord {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	return append([]logRecord(nil), h.store.recs...)
}

// count counts the records with message msg.
func (h *logSink) count(msg string) int {
	n := 0
	for _, r := range h.records() {
		if r.Msg == msg {
			n++
		}
	}
	return n
}

// contains says whether a record with message msg has attribute key = value.
func (h *logSink) contains(msg, key, value string) bool {
	for _, r := range h.records() {
		if r.Msg == msg && r.Attrs[key] == value {
			return true
		}
	}
	return false
}

// requests counts the request log lines for path.
func (h *logSink) requests(path string) int {
	n := 0
	for _, r := range h.records() {
		if r.Msg == "coap request" && r.Attrs["path"] == path {
			n++
		}
	}
	return n
}

// clientOptions are a thing's DTLS settings: a throwaway self-signed
// certificate, no gateway verification (as iot-edge things).
func clientOptions(t *testing.T) []piondtls.ClientOption {
	t.Helper()
	cert, err := coapx.SelfSignedCertificate(nil, "test-thing")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := coapx.ClientOptions(cert, coapx.Trust{InsecureAnyGateway: true})
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// dial opens a go-coap v3 DTLS client to the gateway.
func dial(t *testing.T, addr string) *udpclient.Conn {
	t.Helper()
	cc, err := dtls.Dial(addr, dtls.NewDTLSClientOptions(clientOptions(t)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func queries(qs []string) []message.Option {
	var opts []message.Option
	for _, q := range qs {
		opts = append(opts, message.Option{ID: message.URIQuery, Value: []byte(q)})
	}
	return opts
}

// post sends a POST and returns the answer.
func post(t *testing.T, cc *udpclient.Conn, path string, cf message.MediaType, body []byte, qs ...string) (codes.Code, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := cc.Post(ctx, path, cf, bytes.NewReader(body), queries(qs)...)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	b, err := resp.ReadBody()
	if err != nil {
		t.Fatal(err)
	}
	return resp.Code(), b
}

func get(t *testing.T, cc *udpclient.Conn, path string) (codes.Code, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := cc.Get(ctx, path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	b, _ := resp.ReadBody()
	return resp.Code(), b
}

// authenticate runs the PoP authentication of thing id through the
// gateway and returns the SSO token, checking the auth_id_digest scheme.
func authenticate(t *testing.T, cc *udpclient.Conn, handlers ...callback.Handler) string {
	t.Helper()
	tok, _ := authenticateSized(t, cc, handlers...)
	return tok
}

// authenticateSized is authenticate that also returns the size of the
// largest request body sent.
func authenticateSized(t *testing.T, cc *udpclient.Conn, handlers ...callback.Handler) (token string, largest int) {
	t.Helper()
	step := callback.Step{}
	for range 6 {
		b, _ := json.Marshal(step)
		largest = max(largest, len(b))
		code, body := post(t, cc, coapx.PathAuthenticate, coapx.AppJSON, b)
		if code != codes.Valid {
			t.Fatalf("/authenticate = %v %s, want 2.03", code, body)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatal(err)
		}
		if _, ok := raw["authId"]; ok {
			t.Fatal("the authId reached the thing")
		}
		var res callback.Step
		json.Unmarshal(body, &res)
		if res.TokenID != "" {
			return res.TokenID, largest
		}
		if len(res.AuthIDDigest) != 44 {
			t.Fatalf("auth_id_digest = %q, want 44 characters", res.AuthIDDigest)
		}
		for i := range res.Callbacks {
			for _, h := range handlers {
				if ok, err := h.Handle(&res.Callbacks[i]); err != nil {
					t.Fatal(err)
				} else if ok {
					break
				}
			}
		}
		step = callback.Step{AuthIDDigest: res.AuthIDDigest, Callbacks: res.Callbacks}
	}
	t.Fatal("authentication did not finish")
	return "", 0
}

// pop signs things and session requests of a restricted session.
type pop struct {
	key   crypto.Signer
	token string
	nonce int64
}

func (p *pop) sign(t *testing.T, aud, api string, claims map[string]any) []byte {
	t.Helper()
	c := map[string]any{"csrf": p.token}
	for k, v := range claims {
		c[k] = v
	}
	jws, err := callback.SignRequest(p.key, aud, api, p.nonce, c)
	if err != nil {
		t.Fatal(err)
	}
	p.nonce++
	return []byte(jws)
}

func aminfo(t *testing.T, cc *udpclient.Conn) callback.AMInfo {
	t.Helper()
	code, body := get(t, cc, coapx.PathAMInfo)
	if code != codes.Content {
		t.Fatalf("/aminfo = %v %s", code, body)
	}
	var info callback.AMInfo
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// rawConn is a thing that speaks CoAP datagrams itself, like the iot-edge
// client: no retransmission, piggybacked answers only.
type rawConn struct {
	t   *testing.T
	c   *piondtls.Conn
	mid uint16
}

func dialRaw(t *testing.T, addr string, opts ...piondtls.ClientOption) *rawConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	if opts == nil {
		opts = clientOptions(t)
	}
	c, err := piondtls.DialWithOptions("udp4", ua, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	return &rawConn{t: t, c: c, mid: 1}
}

// exchange sends m (as a CON with the next message ID) and returns the
// answer with the same message ID.
func (r *rawConn) exchange(m message.Message) message.Message {
	r.t.Helper()
	m.MessageID = int32(r.mid)
	r.mid++
	if m.Type == 0 {
		m.Type = message.Confirmable
	}
	buf := make([]byte, 2048)
	n, err := coder.DefaultCoder.Encode(m, buf)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.c.Write(buf[:n]); err != nil {
		r.t.Fatal(err)
	}
	r.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		in := make([]byte, 65536)
		n, err := r.c.Read(in)
		if err != nil {
			r.t.Fatalf("read: %v", err)
		}
		resp := message.Message{Options: make(message.Options, 0, 16)}
		if _, err := coder.DefaultCoder.Decode(in[:n], &resp); err != nil {
			r.t.Fatal(err)
		}
		if resp.MessageID == m.MessageID {
			return resp
		}
	}
}

// opts builds options in ascending option-ID order.
func opts(kv ...any) message.Options {
	var o message.Options
	for i := 0; i < len(kv); i += 2 {
		id := kv[i].(message.OptionID)
		switch v := kv[i+1].(type) {
		case string:
			o = append(o, message.Option{ID: id, Value: []byte(v)})
		case uint32:
			o = append(o, message.Option{ID: id, Value: uintBytes(v)})
		}
	}
	return o
}

func uintBytes(v uint32) []byte {
	var b []byte
	for v > 0 {
		b = append([]byte{byte(v)}, b...)
		v >>= 8
	}
	return b
}

func optUint(m message.Message, id message.OptionID) (uint32, bool) {
	v, err := m.Options.GetUint32(id)
	return v, err == nil
}

func slog_(h slog.Handler) *slog.Logger { return slog.New(h) }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jsonString renders an attribute value (a string or an array of them).
func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func netResolve(addr string) (*net.UDPAddr, error) { return net.ResolveUDPAddr("udp4", addr) }

// clock is a Server.Time that a test moves on: real time plus an offset.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// waitFor waits until cond holds, checking it every few milliseconds,
// and fails the test if it does not hold within d.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	if !proctest.Eventually(d, cond) {
		t.Fatal("condition not met in time")
	}
}
