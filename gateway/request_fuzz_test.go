package gateway

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
)

// coapDatagram encodes a request as a thing sends it.
func coapDatagram(tb testing.TB, m message.Message) []byte {
	tb.Helper()
	if m.Type == 0 && m.MessageID == 0 {
		m.Type, m.MessageID = message.Confirmable, 0x1234
	}
	buf := make([]byte, 64<<10)
	n, err := coder.DefaultCoder.Encode(m, buf)
	if err != nil {
		tb.Fatal(err)
	}
	return buf[:n]
}

// coapOpts builds options in option-number order from id, value pairs
// (string or uint32 values).
func coapOpts(kv ...any) message.Options {
	var o message.Options
	for i := 0; i < len(kv); i += 2 {
		id := kv[i].(message.OptionID)
		switch v := kv[i+1].(type) {
		case string:
			o = append(o, message.Option{ID: id, Value: []byte(v)})
		case uint32:
			o = append(o, message.Option{ID: id, Value: uintOption(v)})
		}
	}
	return o
}

// thingRequests are requests of real things (the SDK's and iot-edge's
// shapes): JSON and JWS bodies, queries, Block1 and Block2 options, Size1.
// A body's "$TOKEN" and "$DIGEST" stand for a valid SSO token and
// auth_id_digest in FuzzHandlers.
func thingRequests(tb testing.TB) [][]byte {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	info := callback.NewAMInfo("http://am.fuzz/openam", "/")
	jws, err := callback.SignRequest(k, info.AccessTokenURL, info.ThingsVersion, 1, map[string]any{"csrf": "sso-token", "scope": []string{"publish"}})
	if err != nil {
		tb.Fatal(err)
	}
	validate, err := callback.SignRequest(k, info.SessionValidateURL, info.SessionsVersion, 2, map[string]any{"csrf": "sso-token"})
	if err != nil {
		tb.Fatal(err)
	}
	tok := []byte{0xca, 0xfe}
	post := func(path string, cf uint32, body string, extra ...any) []byte {
		kv := []any{message.URIPath, strings.TrimPrefix(path, "/"), message.ContentFormat, cf}
		return coapDatagram(tb, message.Message{Code: codes.POST, Token: tok, Options: append(coapOpts(kv...), coapOpts(extra...)...), Payload: []byte(body)})
	}
	block1 := func(num int64, more bool) uint32 {
		v, err := blockwise.EncodeBlockOption(blockwise.SZX1024, num, more)
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
	return [][]byte{
		post(coapx.PathAuthenticate, 50, `{}`),
		post(coapx.PathAuthenticate, 50, `{"auth_id_digest":"$DIGEST","callbacks":[{"type":"HiddenValueCallback","output":[{"name":"value","value":"challenge"},{"name":"id","value":"jwt-pop-authentication"}],"input":[{"name":"IDToken1","value":"a.b.c"}]}]}`),
		post(coapx.PathAuthenticate, 50, `{"authId":"eyJ0eXAiOiJKV1QifQ.e30.","callbacks":[]}`),
		post(coapx.PathAccessToken, 50, `{"token":"$TOKEN","payload":"{\"scope\":[\"publish\"]}"}`),
		post(coapx.PathAccessToken, 11650, jws),
		post(coapx.PathIntrospect, 50, `{"token":"$TOKEN","payload":"{\"token\":\"x\"}"}`),
		post(coapx.PathAttributes, 50, `{"token":"$TOKEN"}`, message.URIQuery, "thingConfig", message.URIQuery, "_id"),
		post(coapx.PathUserCode, 50, `{"token":"$TOKEN","payload":"{}"}`),
		post(coapx.PathUserToken, 50, `{"token":"$TOKEN","payload":"{\"device_code\":\"d\"}"}`),
		post(coapx.PathSession, 50, `{"tokenId":"$TOKEN"}`, message.URIQuery, coapx.QueryValidate),
		post(coapx.PathSession, 11650, validate, message.URIQuery, coapx.QueryValidate),
		post(coapx.PathSession, 50, `{"tokenId":"$TOKEN"}`, message.URIQuery, coapx.QueryLogout),
		post(coapx.PathAccessToken, 50, strings.Repeat("x", 1024), message.Block1, block1(0, true), message.Size1, uint32(3000)),
		post(coapx.PathAccessToken, 50, `{}`, message.Block1, block1(70, false)),
		post(coapx.PathAuthenticate, 50, `{}`, message.Block2, uint32(0x16)), // block 1 of a response
		coapDatagram(tb, message.Message{Code: codes.POST, Token: tok, Options: coapOpts(message.URIPath, "accesstoken", message.Block2, uint32(0x16))}),
		coapDatagram(tb, message.Message{Code: codes.GET, Token: tok, Options: coapOpts(message.URIPath, "aminfo")}),
		coapDatagram(tb, message.Message{Code: codes.POST, Token: tok, Type: message.NonConfirmable, MessageID: 7, Options: coapOpts(message.URIPath, "session", message.ContentFormat, uint32(0))}),
	}
}

// isRequestHeader reports whether a datagram's fixed header is that of a
// CoAP request (RFC 7252 §3): version 1, a token of at most 8 bytes that
// fits, a method code, a CON or NON type.
func isRequestHeader(b []byte) bool {
	if len(b) < 4 || b[0]>>6 != 1 {
		return false
	}
	tkl, typ := int(b[0]&0xf), b[0]>>4&3
	return tkl <= 8 && len(b) >= 4+tkl && b[1] >= 1 && b[1] < 32 && typ <= 1
}

// captureConn is a DTLS session whose writes are kept.
type captureConn struct {
	net.Conn
	writes [][]byte
}

func (c *captureConn) Write(b []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), b...))
	return len(b), nil
}
func (c *captureConn) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5683}
}

// FuzzRequestOptions decodes arbitrary datagrams as the gateway's CoAP
// sessions do (go-coap's UDP coder into a pool.Message) and runs the
// gateway's own option handling on them: the request size check of
// processReceived (Block1, Size1, body), the Content-Format restoration of
// Block2 continuations (connState.fix), and the 4.13 answer to a datagram
// too large to read (oversizeDatagram). A decoded message re-encodes to
// the same message; the size is at least the body and the Block1 offset
// and over the limit exactly when larger than MaxRequestBytes, and the
// stripped request processReceived passes on is not over it; a
// continuation gets back exactly the Content-Format of its token's
// request, only while it is remembered, and no more than
// maxRememberedFormats are; the 4.13 answer goes to every datagram whose
// header is a request and to no other, with its token and message ID,
// Block1 SZX 1024 and Size1 the limit.
func FuzzRequestOptions(f *testing.F) {
	for _, d := range thingRequests(f) {
		f.Add(d)
	}
	f.Add([]byte{0x40, 0x02, 0x00, 0x01})
	f.Add([]byte{0x48, 0x02, 0x00, 0x01, 1, 2, 3})                      // token longer than the datagram
	f.Add([]byte{0x60, 0x45, 0x00, 0x01, 0xff, 'x'})                    // an ACK 2.05
	f.Add([]byte{0x44, 0x02, 0x00, 0x01, 1, 2, 3, 4, 0xd1, 0x0e, 0xff}) // Block1 with an extended option delta

	s := &Server{MaxRequestBytes: 4096, log: slog.New(slog.DiscardHandler)}
	now := time.Unix(1_800_000_000, 0)
	const ttl = time.Minute
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &captureConn{}
		s.oversizeDatagram(c, b)
		if isRequestHeader(b) != (len(c.writes) == 1) || len(c.writes) > 1 {
			t.Fatalf("%d answers to an oversize datagram (request header: %v)", len(c.writes), isRequestHeader(b))
		}
		if len(c.writes) == 1 {
			var resp message.Message
			resp.Options = make(message.Options, 0, 4)
			if _, err := coder.DefaultCoder.Decode(c.writes[0], &resp); err != nil {
				t.Fatalf("the 4.13 answer does not decode: %v", err)
			}
			tkl := int(b[0] & 0xf)
			if resp.Code != codes.RequestEntityTooLarge || !bytes.Equal(resp.Token, b[4:4+tkl]) {
				t.Fatalf("answer %v with token %x to a request with token %x", resp.Code, resp.Token, b[4:4+tkl])
			}
			if typ := message.Type(b[0] >> 4 & 3); typ == message.Confirmable && (resp.Type != message.Acknowledgement || resp.MessageID != int32(b[2])<<8|int32(b[3])) {
				t.Fatalf("a CON is answered %v with message ID %d", resp.Type, resp.MessageID)
			}
			b1, err1 := resp.Options.GetUint32(message.Block1)
			s1, err2 := resp.Options.GetUint32(message.Size1)
			if err1 != nil || b1 != uint32(blockwise.SZX1024) || err2 != nil || s1 != s.size1() {
				t.Fatalf("answer has Block1 %d (%v), Size1 %d (%v)", b1, err1, s1, err2)
			}
		}

		m := pool.NewMessage(context.Background())
		if _, err := m.UnmarshalWithDecoder(coder.DefaultCoder, b); err != nil {
			return
		}
		body, err := m.ReadBody()
		if err != nil {
			t.Fatal(err)
		}
		enc, err := m.MarshalWithEncoder(coder.DefaultCoder)
		if err != nil {
			t.Fatalf("a decoded message does not encode: %v", err)
		}
		again := pool.NewMessage(context.Background())
		if _, err := again.UnmarshalWithDecoder(coder.DefaultCoder, enc); err != nil {
			t.Fatalf("a re-encoded message does not decode: %v", err)
		}
		body2, _ := again.ReadBody()
		if again.Code() != m.Code() || again.Type() != m.Type() || again.MessageID() != m.MessageID() ||
			!bytes.Equal(again.Token(), m.Token()) || !bytes.Equal(body, body2) || !sameOptions(again.Options(), m.Options()) {
			t.Fatalf("re-encoded %v, decoded %v", again, m)
		}

		size, over := s.requestSize(m)
		if c := m.Code(); c < codes.GET || c >= 32 {
			if size != 0 || over {
				t.Fatalf("a %v that is not a request has size %d", c, size)
			}
			return
		}
		if over != (size > s.maxRequestBytes()) || size < int64(len(body)) {
			t.Fatalf("size %d (over: %v) of a request with a %d-byte body", size, over, len(body))
		}
		if v, err := m.GetOptionUint32(message.Block1); err == nil {
			if szx, num, _, err := blockwise.DecodeBlockOption(v); err == nil && size < num*szx.Size() {
				t.Fatalf("size %d below the offset of Block1 block %d", size, num)
			}
		}
		if over {
			// What processReceived passes on.
			stripped := pool.NewMessage(context.Background())
			if err := stripped.Clone(m); err != nil {
				t.Fatal(err)
			}
			stripped.Remove(message.Block1)
			stripped.Remove(message.Block2)
			stripped.Remove(message.Size1)
			stripped.SetBody(nil)
			if size, over := s.requestSize(stripped); over {
				t.Fatalf("the stripped request still has size %d", size)
			}
		}

		st := &connState{formats: map[string]rememberedFormat{}}
		cf, cfErr := m.ContentFormat()
		st.fix(m, now, ttl)
		if got, err := m.ContentFormat(); err != cfErr && (err == nil) != (cfErr == nil) || got != cf {
			t.Fatalf("fix changed the request's own Content-Format %v to %v", cf, got)
		}
		remembered := isBodyMethod(m.Code()) && len(m.Token()) > 0 && cfErr == nil
		// A Block2 continuation of the same token without Content-Format.
		cont := func(at time.Time) (message.MediaType, error) {
			c := pool.NewMessage(context.Background())
			c.SetCode(m.Code())
			c.SetToken(m.Token())
			c.SetOptionUint32(message.Block2, 0x16) // block 1, 1024 bytes
			st.fix(c, at, ttl)
			return c.ContentFormat()
		}
		got, err := cont(now.Add(ttl / 2))
		if remembered && (err != nil || got != cf) {
			t.Fatalf("continuation got Content-Format %v (%v), want %v", got, err, cf)
		}
		if !remembered && err == nil {
			t.Fatalf("continuation got Content-Format %v that its request did not have", got)
		}
		if _, err := cont(now.Add(ttl)); err == nil {
			t.Fatal("an expired Content-Format was restored")
		}
		for i := range 2 * maxRememberedFormats {
			o := pool.NewMessage(context.Background())
			o.SetCode(codes.POST)
			o.SetToken([]byte{byte(i), byte(i >> 8), 0xee})
			o.SetContentFormat(coapx.AppJSON)
			st.fix(o, now.Add(time.Duration(i)*time.Millisecond), ttl)
			if len(st.formats) > maxRememberedFormats {
				t.Fatalf("%d Content-Formats remembered", len(st.formats))
			}
		}
	})
}

// sameOptions reports whether two option lists hold the same options in
// the same order.
func sameOptions(a, b message.Options) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// amCall is one HTTP exchange of the gateway with AM.
type amCall struct {
	method, path, contentType, cookie string
	body                              []byte
	status                            int
	answer                            []byte
}

// amRecorder serves the gateway's AM calls in process with a local AM and
// records them.
type amRecorder struct {
	h     http.Handler
	mu    sync.Mutex
	calls []amCall
}

func (r *amRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
	}
	// The request as AM's HTTP server sees it.
	in := req.Clone(req.Context())
	in.Body = io.NopCloser(bytes.NewReader(body))
	in.Host, in.RequestURI, in.RemoteAddr = req.URL.Host, req.URL.RequestURI(), "192.0.2.2:40000"
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, in)
	res := w.Result()
	res.Request = req
	c := amCall{method: req.Method, path: req.URL.Path, contentType: req.Header.Get("Content-Type"), body: body,
		status: res.StatusCode, answer: w.Body.Bytes()}
	if ck, err := req.Cookie("iPlanetDirectoryPro"); err == nil {
		c.cookie = ck.Value
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	return res, nil
}

// take returns and forgets the calls recorded, except the server
// information the client reads once.
func (r *amRecorder) take() []amCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []amCall
	for _, c := range r.calls {
		if !strings.Contains(c.path, "/serverinfo/") {
			out = append(out, c)
		}
	}
	r.calls = nil
	return out
}

// responseRecorder is a mux.ResponseWriter that keeps what the handler
// answered.
type responseRecorder struct {
	msg   *pool.Message
	conn  mux.Conn
	calls int
	body  []byte
}

func (w *responseRecorder) SetResponse(code codes.Code, cf message.MediaType, d io.ReadSeeker, opts ...message.Option) error {
	w.calls++
	w.msg.SetCode(code)
	w.msg.SetContentFormat(cf)
	w.body = nil
	if d != nil {
		w.body, _ = io.ReadAll(d)
	}
	for _, o := range opts {
		w.msg.AddOptionBytes(o.ID, o.Value)
	}
	return nil
}
func (w *responseRecorder) Conn() mux.Conn             { return w.conn }
func (w *responseRecorder) SetMessage(m *pool.Message) { w.msg = m }
func (w *responseRecorder) Message() *pool.Message     { return w.msg }

// peerMuxConn is the DTLS session a request came on: its address and
// the gateway's state of it (onNewConn).
type peerMuxConn struct {
	mux.Conn
	ctx context.Context
}

func (peerMuxConn) RemoteAddr() net.Addr       { return &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5683} }
func (c peerMuxConn) Context() context.Context { return c.ctx }

// gatewayTexts are the short answers the gateway makes itself.
var gatewayTexts = map[string]bool{
	msgMissingCF: true, msgUnsupportedCF: true, msgBadJSON: true, msgBadJWS: true, msgNoCSRF: true,
	msgBadAuthPayload: true, msgUnknownDigest: true, msgNoAuthAnswer: true, msgBadQuery: true, msgTimeout: true,
	msgUnavailable: true, msgBadAnswer: true, msgTooLarge: true, msgValidateFailed: true, msgLogoutFailed: true,
	msgBusy: true,
}

// FuzzHandlers decodes arbitrary datagrams into requests and serves them
// with the gateway's middleware and resource handlers, the AM calls going
// in process to a local AM (amtest). A body's "$TOKEN" and "$DIGEST" are
// replaced by an SSO token of AM's administrator and the digest of a
// fresh authentication, so that requests get past AM's first checks.
//
// Each request is answered once. What the gateway answers itself is a
// 4.xx (5.xx only for AM failures) with one of its short texts, never an
// echo of the request or an error text; a request over MaxRequestBytes
// reaches no handler. What AM answers is relayed as the table says:
// 2.04 and AM's body for a things request, AM's status as its CoAP code
// and AM's body unchanged for a refusal; for a session, 2.04 or 4.01, or
// 5.04 when AM fails. AM receives the thing's body as it was sent (the
// payload of the JSON wrapper, or the JWS with application/jose) and the
// token the thing named. An authentication answer never carries an authId
// AM issued, only its digest.
func FuzzHandlers(f *testing.F) {
	for _, d := range thingRequests(f) {
		f.Add(d)
	}
	// AM's clock moves on by hours now and then, so that the sessions and
	// tokens of past inputs expire and are swept: a long run holds a
	// bounded state.
	var amSkew atomic.Int64
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	// The gateway's own identity, so that it authenticates as it does
	// before it serves (it answers 5.03 until then).
	kid, _ := callback.Thumbprint(key.Public())
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Use: "sig"}}})
	cfg := amtest.DefaultConfig()
	cfg.Realms["/"].Identities = map[string]map[string]any{"fuzz-gateway": {"thingType": "gateway", "thingKeys": string(set)}}
	am := &amtest.Server{Config: cfg, Time: func() time.Time { return time.Now().Add(time.Duration(amSkew.Load())) }}
	if err := am.Init(); err != nil {
		f.Fatal(err)
	}
	am.URL = "http://am.fuzz/openam"
	rec := &amRecorder{h: am}
	hc := &http.Client{Transport: rec}
	s := &Server{
		AM:              &amclient.Client{URL: am.URL, Realm: "/", Tree: "auth-tree", HTTPClient: hc},
		ID:              "fuzz-gateway",
		Key:             key,
		MaxRequestBytes: 4096,
		Timeout:         10 * time.Second,
	}
	if err := s.init(); err != nil {
		f.Fatal(err)
	}
	if err := s.Authenticate(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	login := func(user, password string) (string, error) {
		c := &amclient.Client{URL: am.URL, Realm: "/", Tree: "ldapService", HTTPClient: hc}
		var res amclient.AuthPayload
		var err error
		for range 4 {
			if res, err = c.AuthenticateStep(context.Background(), c.Tree, res); err != nil || res.TokenID != "" {
				break
			}
			for i := range res.Callbacks {
				for _, h := range []callback.Handler{callback.NameHandler{Name: user}, callback.PasswordHandler{Password: password}} {
					if ok, _ := h.Handle(&res.Callbacks[i]); ok {
						break
					}
				}
			}
		}
		if err == nil && res.TokenID == "" {
			err = errors.New("no token")
		}
		return res.TokenID, err
	}
	adminToken, err := login("amAdmin", "changeit")
	if err != nil {
		f.Fatalf("administrator login: %v", err)
	}
	// A thing that logs in with a password: its session is not
	// restricted, so that JSON requests reach AM's things endpoint.
	req, _ := http.NewRequest(http.MethodPut, am.URL+"/json/realms/root/users/fuzz-thing",
		strings.NewReader(`{"userPassword":"fuzz-password","thingType":"device"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-API-Version", "resource=4.0, protocol=2.1")
	req.AddCookie(&http.Cookie{Name: "iPlanetDirectoryPro", Value: adminToken})
	if res, err := hc.Do(req); err != nil || res.StatusCode != http.StatusCreated {
		f.Fatalf("creating the thing: %v %v", res, err)
	}
	handlers := map[string]mux.HandlerFunc{
		coapx.PathAuthenticate: s.serveAuthenticate,
		coapx.PathAMInfo:       s.serveAMInfo,
		coapx.PathAccessToken:  s.things(callback.OpAccessToken),
		coapx.PathAttributes:   s.things(callback.OpAttributes),
		coapx.PathUserCode:     s.things(callback.OpUserCode),
		coapx.PathUserToken:    s.things(callback.OpUserToken),
		coapx.PathSession:      s.serveSession,
	}
	rec.take()

	var execs atomic.Int64
	f.Fuzz(func(t *testing.T, b []byte) {
		if execs.Add(1)%512 == 0 {
			amSkew.Add(int64(3 * time.Hour))
		}
		m := pool.NewMessage(context.Background())
		if _, err := m.UnmarshalWithDecoder(coder.DefaultCoder, b); err != nil {
			return
		}
		path, err := m.Path()
		if err != nil {
			return
		}
		h := handlers[path]
		if h == nil {
			return
		}
		body, err := m.ReadBody()
		if err != nil {
			t.Fatal(err)
		}
		// Each request comes on a new DTLS session.
		st := &connState{formats: map[string]rememberedFormat{}}
		flows := st.digests(s)
		var digest, authID string
		if bytes.Contains(body, []byte("$DIGEST")) {
			// A fresh authentication's digest, as /authenticate hands out.
			step, err := s.AM.AuthenticateStep(context.Background(), s.AM.Tree, amclient.AuthPayload{})
			if err != nil || step.AuthID == "" {
				t.Fatalf("authentication start: %v", err)
			}
			authID, digest = step.AuthID, flows.put(step.AuthID)
			body = bytes.ReplaceAll(body, []byte("$DIGEST"), []byte(digest))
		}
		if bytes.Contains(body, []byte("$TOKEN")) {
			// A fresh session of the thing, logged out afterwards.
			tok, err := login("fuzz-thing", "fuzz-password")
			if err != nil {
				t.Fatalf("thing login: %v", err)
			}
			defer s.AM.Send(context.Background(), callback.Request{Op: callback.OpSessionLogout, Token: tok})
			body = bytes.ReplaceAll(body, []byte("$TOKEN"), []byte(tok))
		}
		if m.Body() != nil {
			m.SetBody(bytes.NewReader(body))
		}
		rec.take()
		defer func() {
			if digest != "" {
				// The authentication ends, so that AM holds no state for it.
				if _, ok := flows.get(digest); ok {
					flows.forget(digest)
					s.AM.AuthenticateStep(context.Background(), s.AM.Tree, amclient.AuthPayload{AuthID: authID})
				}
			}
			rec.take()
		}()
		// processReceived: a request over MaxRequestBytes loses its body
		// and block options and is marked.
		_, tooLarge := s.requestSize(m)
		if tooLarge {
			m.Remove(message.Block1)
			m.Remove(message.Block2)
			m.Remove(message.Size1)
			m.SetBody(nil)
			m.SetContext(context.WithValue(m.Context(), tooLargeKey{}, true))
		}
		conn := peerMuxConn{ctx: context.WithValue(context.Background(), connStateKey{}, st)}
		w := &responseRecorder{msg: pool.NewMessage(context.Background()), conn: conn}
		s.middleware(h).ServeCOAP(w, &mux.Message{Message: m})
		if w.calls != 1 {
			t.Fatalf("%s answered %d times", path, w.calls)
		}
		code := w.msg.Code()
		cf, _ := w.msg.ContentFormat()
		calls := rec.take()
		if tooLarge {
			size1, err := w.msg.GetOptionUint32(message.Size1)
			if code != codes.RequestEntityTooLarge || err != nil || size1 != s.size1() || len(calls) > 0 {
				t.Fatalf("a request over the limit: %v, Size1 %d (%v), %d AM calls", code, size1, err, len(calls))
			}
			return
		}
		if path == coapx.PathAMInfo {
			if code != codes.Content || !bytes.Equal(w.body, s.aminfo) {
				t.Fatalf("/aminfo: %v %s", code, w.body)
			}
			return
		}
		own := len(calls) == 0
		if own {
			if !gatewayTexts[string(w.body)] || cf != message.TextPlain || code < codes.BadRequest || code == codes.InternalServerError {
				t.Fatalf("%s: own answer %v %q", path, code, w.body)
			}
			if code >= codes.InternalServerError {
				t.Fatalf("%s: %v without an AM call", path, code)
			}
			return
		}
		last := calls[len(calls)-1]
		if path == coapx.PathAuthenticate {
			checkAuthAnswer(t, code, w.body, calls)
			return
		}
		checkAMRequest(t, path, m, body, last)
		if path == coapx.PathSession {
			switch {
			case last.status == http.StatusOK && (code == codes.Changed || code == codes.Unauthorized):
			case last.status == http.StatusUnauthorized && code == codes.Unauthorized && len(w.body) == 0:
			case last.status != http.StatusOK && code == codes.GatewayTimeout && gatewayTexts[string(w.body)]:
			default:
				t.Fatalf("/session: AM %d, gateway %v %q", last.status, code, w.body)
			}
			return
		}
		want := codes.Changed
		if last.status != http.StatusOK {
			if want = coapx.CodeForStatus(last.status); coapx.IsSuccess(want) {
				want = codes.Changed
			}
		}
		if code != want || !bytes.Equal(w.body, last.answer) {
			t.Fatalf("%s: AM answered %d %q; gateway %v %q", path, last.status, last.answer, code, w.body)
		}
	})
}

// checkAMRequest checks that AM got the thing's request as it was sent.
func checkAMRequest(t *testing.T, path string, m *pool.Message, body []byte, c amCall) {
	t.Helper()
	cf, _ := m.ContentFormat()
	if cf == coapx.AppJOSE {
		tok, _ := coapx.CSRF(body)
		if c.contentType != "application/jose" || !bytes.Equal(c.body, body) || c.cookie != tok {
			t.Fatalf("%s: AM got %s %q with token %q for the JWS %q", path, c.contentType, c.body, c.cookie, body)
		}
		return
	}
	var token, payload string
	if path == coapx.PathSession {
		var sr coapx.SessionRequest
		json.Unmarshal(body, &sr)
		token = sr.TokenID
	} else {
		var tr coapx.ThingsRequest
		json.Unmarshal(body, &tr)
		token, payload = tr.Token, tr.Payload
	}
	if c.cookie != token && validCookieValue(token) {
		t.Fatalf("%s: AM got token %q, the thing sent %q", path, c.cookie, token)
	}
	if path != coapx.PathSession && c.method == http.MethodPost && string(c.body) != payload {
		t.Fatalf("%s: AM got body %q, the thing sent %q", path, c.body, payload)
	}
}

// validCookieValue reports whether net/http sends v as a cookie value
// unchanged (RFC 6265 cookie-octets).
func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == ';' || c == '\\' || c == ' ' || c == ',' {
			return false
		}
	}
	return true
}

// checkAuthAnswer checks an /authenticate answer against AM's.
func checkAuthAnswer(t *testing.T, code codes.Code, body []byte, calls []amCall) {
	t.Helper()
	last := calls[len(calls)-1]
	for _, c := range calls {
		var v struct {
			AuthID string `json:"authId"`
		}
		if json.Unmarshal(c.answer, &v) == nil && v.AuthID != "" && bytes.Contains(body, []byte(v.AuthID)) {
			t.Fatalf("AM's authId reached the thing: %s", body)
		}
	}
	switch {
	case last.status == http.StatusOK:
		var raw map[string]json.RawMessage
		var step callback.Step
		if code != codes.Valid || json.Unmarshal(body, &raw) != nil || json.Unmarshal(body, &step) != nil {
			t.Fatalf("/authenticate: AM 200, gateway %v %q", code, body)
		}
		if _, ok := raw["authId"]; ok {
			t.Fatalf("/authenticate answer with an authId: %s", body)
		}
		if (step.TokenID == "") == (step.AuthIDDigest == "") || step.AuthIDDigest != "" && len(step.AuthIDDigest) != 44 {
			t.Fatalf("/authenticate answer %s", body)
		}
	case last.status < 500:
		if code != codes.Unauthorized || !bytes.Equal(body, last.answer) {
			t.Fatalf("/authenticate: AM %d %q, gateway %v %q", last.status, last.answer, code, body)
		}
	default:
		if code != coapx.CodeForStatus(last.status) {
			t.Fatalf("/authenticate: AM %d, gateway %v", last.status, code)
		}
	}
}
