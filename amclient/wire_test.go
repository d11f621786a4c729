package amclient_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/callback"
)

// recorded is one request as the fake AM saw it.
type recorded struct {
	method, uri, version, contentType, cookie string
	body                                      string
}

// fakeAM records requests and answers them with canned bodies keyed by
// "METHOD path?query" (path without the deployment path).
type fakeAM struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []recorded
	answers map[string]func(r recorded) (int, string)
}

func newFakeAM(t *testing.T) *fakeAM {
	f := &fakeAM{t: t, answers: map[string]func(recorded) (int, string){
		"GET /json/serverinfo/*?_fields=cookieName": func(recorded) (int, string) {
			return 200, `{"_id":"*","_rev":"1","cookieName":"thingwayCookie"}`
		},
	}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec := recorded{method: r.Method, uri: r.RequestURI, version: r.Header.Get("Accept-API-Version"),
			contentType: r.Header.Get("Content-Type"), cookie: r.Header.Get("Cookie"), body: string(b)}
		f.mu.Lock()
		f.reqs = append(f.reqs, rec)
		answer := f.answers[r.Method+" "+strings.TrimPrefix(r.RequestURI, "/am")]
		f.mu.Unlock()
		if answer == nil {
			w.WriteHeader(404)
			io.WriteString(w, `{"code":404,"reason":"Not Found","message":"Not Found"}`)
			return
		}
		status, body := answer(rec)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAM) answer(key string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[key] = func(recorded) (int, string) { return status, body }
}

func (f *fakeAM) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]recorded(nil), f.reqs...)
	f.reqs = nil
	return out
}

// last returns the only request made since the previous call (besides
// server information).
func (f *fakeAM) last() recorded {
	f.t.Helper()
	var out []recorded
	for _, r := range f.requests() {
		if !strings.Contains(r.uri, "/json/serverinfo/") {
			out = append(out, r)
		}
	}
	if len(out) != 1 {
		f.t.Fatalf("%d requests, want 1: %+v", len(out), out)
	}
	return out[0]
}

func jwsParts(t *testing.T, tok string) (header map[string]json.RawMessage, payload map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("body %q is not a compact JWS", tok)
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(hb, &header); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(pb, &payload); err != nil {
		t.Fatal(err)
	}
	return header, payload
}

func TestWireRestricted(t *testing.T) {
	f := newFakeAM(t)
	base := f.srv.URL + "/am"
	c := &amclient.Client{URL: base + "/", Realm: "/a"}
	key := newKey(t, jose.ES256)
	s := &amclient.Session{Token: "AQIC5w.*AAJTSQACMDE.*", Key: key}
	ctx := context.Background()
	tokenBody := `{"access_token":"at","refresh_token":"rt","scope":"publish subscribe","token_type":"Bearer","expires_in":3599}`

	type step struct {
		name    string
		key     string // fake AM answer key
		answer  string
		call    func() error
		method  string
		url     string // without base
		api     string
		payload map[string]any
	}
	steps := []step{
		{name: "access token", key: "POST /json/things/*?_action=get_access_token&realm=/a", answer: tokenBody,
			call: func() error {
				tok, err := c.AccessToken(ctx, s, "publish", "subscribe")
				if err == nil && (tok.AccessToken != "at" || tok.ExpiresIn != 3599 || string(tok.Raw) != tokenBody || len(tok.Scopes()) != 2) {
					t.Errorf("token %+v", tok)
				}
				return err
			},
			method: "POST", url: "/json/things/*?_action=get_access_token&realm=/a", api: "protocol=2.0,resource=1.0",
			payload: map[string]any{"csrf": s.Token, "scope": []any{"publish", "subscribe"}}},
		{name: "access token without scopes", key: "POST /json/things/*?_action=get_access_token&realm=/a", answer: tokenBody,
			call:   func() error { _, err := c.AccessToken(ctx, s); return err },
			method: "POST", url: "/json/things/*?_action=get_access_token&realm=/a", api: "protocol=2.0,resource=1.0",
			payload: map[string]any{"csrf": s.Token}},
		{name: "refresh", key: "POST /json/things/*?_action=get_access_token&realm=/a", answer: tokenBody,
			call:   func() error { _, err := c.RefreshAccessToken(ctx, s, "rt"); return err },
			method: "POST", url: "/json/things/*?_action=get_access_token&realm=/a", api: "protocol=2.0,resource=1.0",
			payload: map[string]any{"csrf": s.Token, "refresh_token": "rt"}},
		{name: "attributes", key: "GET /json/things/*?realm=/a&_fields=thingConfig,thingType", answer: `{"_id":"t","thingConfig":["c"]}`,
			call:   func() error { _, err := c.Attributes(ctx, s, "thingConfig", "thingType"); return err },
			method: "GET", url: "/json/things/*?realm=/a&_fields=thingConfig,thingType", api: "protocol=2.0,resource=1.0",
			payload: map[string]any{"csrf": s.Token}},
		{name: "all attributes", key: "GET /json/things/*?realm=/a", answer: `{"_id":"t"}`,
			call:   func() error { _, err := c.Attributes(ctx, s); return err },
			method: "GET", url: "/json/things/*?realm=/a", api: "protocol=2.0,resource=1.0",
			payload: map[string]any{"csrf": s.Token}},
		{name: "introspect", key: "POST /json/things/*?_action=introspect_token&realm=/a", answer: `{"active":false}`,
			call:   func() error { _, err := c.IntrospectToken(ctx, s, "at"); return err },
			method: "POST", url: "/json/things/*?_action=introspect_token&realm=/a", api: "protocol=2.0,resource=1.0",
			payload: map[string]any{"csrf": s.Token, "token": "at"}},
		{name: "user code", key: "POST /json/things/*?_action=get_user_code&realm=/a",
			answer: `{"device_code":"dc","user_code":"Y6GPhHpt","verification_uri":"http://am/oauth2/device/user","verification_uri_complete":"http://am/oauth2/device/user?user_code=Y6GPhHpt","expires_in":300,"interval":5}`,
			call: func() error {
				d, err := c.UserCode(ctx, s, "publish")
				if err == nil && (d.DeviceCode != "dc" || d.UserCode != "Y6GPhHpt" || d.ExpiresIn != 300 || d.Interval != 5 || d.VerificationURIComplete == "" || len(d.Raw) == 0) {
					t.Errorf("device authorization %+v", d)
				}
				return err
			},
			method: "POST", url: "/json/things/*?_action=get_user_code&realm=/a", api: "protocol=2.0,resource=1.0",
			payload: map[string]any{"csrf": s.Token, "scope": []any{"publish"}}},
		{name: "user token", key: "POST /json/things/*?_action=get_user_token&realm=/a", answer: tokenBody,
			call:   func() error { _, err := c.UserToken(ctx, s, "dc"); return err },
			method: "POST", url: "/json/things/*?_action=get_user_token&realm=/a", api: "protocol=2.0,resource=1.0",
			payload: map[string]any{"csrf": s.Token, "device_code": "dc"}},
		{name: "validate", key: "POST /json/sessions?_action=validate", answer: `{"valid":true}`,
			call: func() error {
				ok, err := c.ValidateSession(ctx, s)
				if err == nil && !ok {
					t.Error("valid session reported invalid")
				}
				return err
			},
			method: "POST", url: "/json/sessions?_action=validate", api: "resource=4.0",
			payload: map[string]any{"csrf": s.Token}},
		{name: "logout", key: "POST /json/sessions?_action=logout", answer: `{"result":"Successfully logged out"}`,
			call:   func() error { return c.Logout(ctx, s) },
			method: "POST", url: "/json/sessions?_action=logout", api: "resource=4.0",
			payload: map[string]any{"csrf": s.Token}},
	}
	for i, st := range steps {
		f.answer(st.key, 200, st.answer)
		if err := st.call(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		r := f.last()
		if r.method != st.method || r.uri != "/am"+st.url || r.version != st.api || r.contentType != "application/jose" ||
			r.cookie != "thingwayCookie="+s.Token {
			t.Errorf("%s: request %+v", st.name, r)
		}
		h, p := jwsParts(t, r.body)
		if len(h) != 4 || string(h["alg"]) != `"ES256"` || string(h["aud"]) != mustJSON(base+st.url) ||
			string(h["api"]) != mustJSON(st.api) || string(h["nonce"]) != mustJSON(i) {
			t.Errorf("%s: header %s", st.name, mapJSON(h))
		}
		if mustJSON(p) != mustJSON(st.payload) {
			t.Errorf("%s: payload %s, want %s", st.name, mustJSON(p), mustJSON(st.payload))
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func mapJSON(m map[string]json.RawMessage) string { return mustJSON(m) }

func TestWireUnrestricted(t *testing.T) {
	f := newFakeAM(t)
	c := &amclient.Client{URL: f.srv.URL + "/am"}
	s := &amclient.Session{Token: "tok"}
	ctx := context.Background()
	f.answer("POST /json/things/*?_action=get_access_token", 200, `{"access_token":"at","expires_in":3599.0}`)
	tok, err := c.AccessToken(ctx, s)
	if err != nil || tok.ExpiresIn != 3599 {
		t.Fatalf("AccessToken = %+v, %v", tok, err)
	}
	r := f.last()
	if r.body != `{}` || r.contentType != "application/json" || r.cookie != "thingwayCookie=tok" || r.version != "protocol=2.0,resource=1.0" {
		t.Errorf("access token request %+v", r)
	}
	f.answer("POST /json/things/*?_action=get_access_token", 200, `{"access_token":"at"}`)
	if _, err := c.AccessToken(ctx, s, "publish"); err != nil {
		t.Fatal(err)
	}
	if r := f.last(); r.body != `{"scope":["publish"]}` {
		t.Errorf("body %s", r.body)
	}
	f.answer("GET /json/things/*", 200, `{"_id":"t"}`)
	if _, err := c.Attributes(ctx, s); err != nil {
		t.Fatal(err)
	}
	if r := f.last(); r.body != "" || r.uri != "/am/json/things/*" {
		t.Errorf("attributes request %+v", r)
	}
	f.answer("POST /json/sessions?_action=validate", 200, `{"valid":false}`)
	if ok, err := c.ValidateSession(ctx, s); ok || err != nil {
		t.Errorf("ValidateSession = %v, %v", ok, err)
	}
	if r := f.last(); r.body != "" || r.version != "resource=4.0" {
		t.Errorf("validate request %+v", r)
	}
	f.answer("POST /json/sessions?_action=validate", 401, `{"code":401,"reason":"Unauthorized","message":"Access Denied"}`)
	if ok, err := c.ValidateSession(ctx, s); ok || err != nil {
		t.Errorf("ValidateSession on 401 = %v, %v", ok, err)
	}
	f.answer("POST /json/sessions?_action=validate", 500, `{"code":500,"reason":"Internal Server Error","message":"boom"}`)
	if _, err := c.ValidateSession(ctx, s); asError(t, err, 500).Message != "boom" {
		t.Errorf("ValidateSession on 500: %v", err)
	}
	// The cookie name was asked for once.
	f.requests()
	for range 3 {
		c.Attributes(ctx, s)
	}
	for _, r := range f.requests() {
		if strings.Contains(r.uri, "serverinfo") {
			t.Errorf("server information asked for again: %+v", r)
		}
	}
}

func TestWireAuthenticate(t *testing.T) {
	f := newFakeAM(t)
	c := &amclient.Client{URL: f.srv.URL + "/am", Realm: "/a"}
	const path = "POST /json/authenticate?authIndexType=service&authIndexValue=auth-tree&realm=%2Fa"
	step := 0
	f.answers[path] = func(r recorded) (int, string) {
		step++
		switch step {
		case 1:
			if r.body != "{}" || r.version != "protocol=1.0,resource=2.1" || r.cookie != "" {
				t.Errorf("first request %+v", r)
			}
			return 200, `{"authId":"a1","callbacks":[{"type":"NameCallback","output":[{"name":"prompt","value":"User Name"}],"input":[{"name":"IDToken1","value":""}]},{"type":"PasswordCallback","output":[{"name":"prompt","value":"Password"}],"input":[{"name":"IDToken2","value":""}]}],"stage":"x"}`
		case 2:
			want := `{"authId":"a1","callbacks":[{"type":"NameCallback","output":[{"name":"prompt","value":"User Name"}],"input":[{"name":"IDToken1","value":"bob"}]},{"type":"PasswordCallback","output":[{"name":"prompt","value":"Password"}],"input":[{"name":"IDToken2","value":"pw"}]}]}`
			if r.body != want {
				t.Errorf("second request\n got %s\nwant %s", r.body, want)
			}
			return 200, `{"tokenId":"tok","successUrl":"/am/console","realm":"/a"}`
		}
		return 401, `{"code":401,"reason":"Unauthorized","message":"Login failure"}`
	}
	s, err := c.Authenticate(context.Background(), "auth-tree", callback.NameHandler{Name: "bob"}, callback.PasswordHandler{Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Token != "tok" || s.Realm != "/a" || s.SuccessURL != "/am/console" || s.Key != nil {
		t.Errorf("session %+v", s)
	}
	// A third request fails: a non-200 is an *Error.
	_, err = c.AuthenticateStep(context.Background(), "auth-tree", amclient.AuthPayload{})
	if e := asError(t, err, 401); e.Message != "Login failure" || e.Error() != "amclient: AM answered 401 Unauthorized: Login failure" {
		t.Errorf("error %q", e.Error())
	}
	// A tree that never ends is cut off.
	f.answers[path] = func(recorded) (int, string) {
		return 200, `{"authId":"a","callbacks":[{"type":"NameCallback","output":[],"input":[{"name":"IDToken1","value":""}]}]}`
	}
	if _, err := c.Authenticate(context.Background(), "auth-tree", callback.NameHandler{Name: "bob"}); err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Errorf("endless tree: %v", err)
	}
	// An answer with neither callbacks nor a token.
	f.answer(path, 200, `{"authId":"a"}`)
	if _, err := c.Authenticate(context.Background(), "auth-tree"); err == nil {
		t.Error("empty answer accepted")
	}
}

func TestWireOpenIDConfiguration(t *testing.T) {
	f := newFakeAM(t)
	c := &amclient.Client{URL: f.srv.URL + "/am", Realm: "/a/b"}
	f.answer("GET /oauth2/.well-known/openid-configuration?realm=/a/b", 200, `{"jwks_uri":"`+f.srv.URL+`/am/oauth2/realms/root/realms/a/realms/b/connect/jwk_uri"}`)
	f.answer("GET /oauth2/realms/root/realms/a/realms/b/connect/jwk_uri", 200, `{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"wjC9kMzwIeXNn6lsjdqplcq9aCWpAOZ0af1_yruCcJ4","y":"ihIziCymBnU8W8m5zx69DsQr0sWDiXsDMq04lBmfEHw"}]}`)
	set, err := c.JWKS(context.Background())
	if err != nil || len(set.Key("k")) != 1 {
		t.Fatalf("JWKS = %v, %v", set, err)
	}
	for _, r := range f.requests() {
		if r.version != "" || r.cookie != "" || r.method != "GET" {
			t.Errorf("request %+v", r)
		}
	}
	f.answer("GET /oauth2/.well-known/openid-configuration?realm=/a/b", 200, `{}`)
	if _, err := c.JWKS(context.Background()); err == nil {
		t.Error("JWKS without jwks_uri succeeded")
	}
}

func TestErrorBodies(t *testing.T) {
	f := newFakeAM(t)
	c := &amclient.Client{URL: f.srv.URL + "/am"}
	s := &amclient.Session{Token: "tok"}
	ctx := context.Background()
	const key = "POST /json/things/*?_action=get_user_token"
	for name, tc := range map[string]struct {
		status             int
		body               string
		oauth, msg, errStr string
	}{
		"pending": {403, `{"code":403,"reason":"Forbidden","message":"The user has not yet completed authorization","detail":{"error":"authorization_pending","error_description":"The user has not yet completed authorization"}}`,
			"authorization_pending", "The user has not yet completed authorization",
			"amclient: AM answered 403 Forbidden: authorization_pending: The user has not yet completed authorization"},
		"oauth body": {400, `{"error":"invalid_scope","error_description":"Unknown/invalid scope(s): [delete]"}`,
			"invalid_scope", "Unknown/invalid scope(s): [delete]",
			"amclient: AM answered 400 Bad Request: invalid_scope: Unknown/invalid scope(s): [delete]"},
		"not JSON": {502, `<html>Bad Gateway</html>`, "", "", "amclient: AM answered 502 Bad Gateway"},
		"empty":    {503, ``, "", "", "amclient: AM answered 503 Service Unavailable"},
	} {
		t.Run(name, func(t *testing.T) {
			f.answer(key, tc.status, tc.body)
			_, err := c.UserToken(ctx, s, "dc")
			e := asError(t, err, tc.status)
			if e.OAuthError() != tc.oauth || e.Message != tc.msg || e.Error() != tc.errStr || string(e.Body) != tc.body {
				t.Errorf("error %+v: %q", e, e.Error())
			}
		})
	}
	f.answer(key, 200, `not json`)
	if _, err := c.UserToken(ctx, s, "dc"); err == nil || errors.As(err, new(*amclient.Error)) {
		t.Errorf("a 200 that is not JSON: %v", err)
	}
	// Server information that fails stops every session call.
	f2 := newFakeAM(t)
	f2.answer("GET /json/serverinfo/*?_fields=cookieName", 500, `{"code":500,"reason":"Internal Server Error","message":"x"}`)
	c2 := &amclient.Client{URL: f2.srv.URL + "/am"}
	if _, err := c2.Attributes(ctx, s); asError(t, err, 500) == nil {
		t.Error("no error")
	}
	if _, err := c2.Attributes(ctx, nil); err == nil {
		t.Error("nil session accepted")
	}
}
