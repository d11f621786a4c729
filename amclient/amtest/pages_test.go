package amtest_test

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest"
)

// web is a browser-like client of the pages: it keeps cookies, does not
// follow redirects (the tests look at them) and sends Origin on POST as
// browsers do.
type web struct {
	t    *testing.T
	srv  *amtest.Server
	http *http.Client
}

func newWeb(t *testing.T, srv *amtest.Server) *web {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &web{t: t, srv: srv, http: &http.Client{Transport: srv.Client().Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// origin is the server's origin, scheme://host:port.
func (w *web) origin() string {
	u, _ := url.Parse(w.srv.URL)
	return u.Scheme + "://" + u.Host
}

// abs resolves a path (or URL) against the server.
func (w *web) abs(p string) string {
	if strings.HasPrefix(p, "http") {
		return p
	}
	return w.origin() + p
}

func (w *web) send(req *http.Request) response {
	w.t.Helper()
	res, err := w.http.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (w *web) get(p string) response {
	w.t.Helper()
	req, err := http.NewRequest("GET", w.abs(p), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.send(req)
}

// post submits a form; headers are "Name: value" strings and replace the
// default Origin.
func (w *web) post(p string, form url.Values, headers ...string) response {
	w.t.Helper()
	req, err := http.NewRequest("POST", w.abs(p), strings.NewReader(form.Encode()))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", w.origin())
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return w.send(req)
}

// cookie is the value of the jar's cookie for the server's base path.
func (w *web) cookie(name string) string {
	u, _ := url.Parse(w.srv.URL + "/")
	for _, c := range w.http.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// setSSO puts an SSO token obtained over REST into the jar.
func (w *web) setSSO(tok string) {
	u, _ := url.Parse(w.srv.URL + "/")
	w.http.Jar.SetCookies(u, []*http.Cookie{{Name: "iPlanetDirectoryPro", Value: tok, Path: "/openam"}})
}

// field returns the value of the first input named name on the page.
func field(t *testing.T, r response, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`).FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("no field %s on the page: %s", name, r.body)
	}
	return html.UnescapeString(string(m[1]))
}

var scriptTag = regexp.MustCompile(`<script[^>]*>`)

// expectPage checks the status, the headers every page carries, and that
// the page has no executable script.
func expectPage(t *testing.T, r response, status int, contains ...string) string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d: %s", r.status, status, r.body)
	}
	h := r.header
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("X-Frame-Options = %q", h.Get("X-Frame-Options"))
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "style-src 'sha256-", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %s", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "script-src") {
		t.Errorf("Content-Security-Policy %q allows too much", csp)
	}
	if h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" {
		t.Errorf("headers = %v", h)
	}
	body := string(r.body)
	for _, tag := range scriptTag.FindAllString(body, -1) {
		if tag != `<script type="text/plain" id="page-data">` {
			t.Errorf("page has a script: %s", tag)
		}
	}
	for _, want := range contains {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q: %s", want, body)
		}
	}
	return body
}

// signIn submits the sign-in form of page r and returns the answer.
func (w *web) signIn(r response, user, password string, headers ...string) response {
	w.t.Helper()
	return w.post("/openam/ui/login", url.Values{"csrf": {field(w.t, r, "csrf")}, "realm": {field(w.t, r, "realm")},
		"goto": {field(w.t, r, "goto")}, "username": {user}, "password": {password}}, headers...)
}

func cookieOf(r response, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestPagesDeviceFlow(t *testing.T) {
	srv, c, clk, s, _ := deviceSetup(t)
	dc := expectStatus(t, s.things("POST", "get_user_code", "/", map[string]any{"scope": []string{"publish", "subscribe"}}), 200)
	code := dc["user_code"].(string)
	w := newWeb(t, srv)

	// No session: the sign-in page, which returns to the code.
	r := w.get(dc["verification_uri_complete"].(string))
	expectPage(t, r, 200, `action="/openam/ui/login"`, `name="password"`, code)
	if g := field(t, r, "goto"); g != "/openam/oauth2/device/user?user_code="+code {
		t.Errorf("goto = %q", g)
	}
	if ck := cookieOf(r, "amlocal-signin"); ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/openam" {
		t.Errorf("sign-in cookie = %v", ck)
	}

	// Wrong password, unknown user and a thing's own password get the same answer.
	wrong := expectPage(t, w.signIn(r, "bjensen", "wrong"), 200, "Sign-in failed: the user name or password is not correct.")
	unknown := expectPage(t, w.signIn(r, "nobody", "wrong"), 200)
	thingPw := expectPage(t, w.signIn(r, "user-authorized-thing", "5tr0ngG3n3r@ted"), 200)
	same := func(page, user string) string { return strings.ReplaceAll(page, `value="`+user+`"`, `value="X"`) }
	if same(unknown, "nobody") != same(wrong, "bjensen") || same(thingPw, "user-authorized-thing") != same(wrong, "bjensen") {
		t.Errorf("sign-in failures differ:\n%s\n%s\n%s", wrong, unknown, thingPw)
	}
	if w.cookie("iPlanetDirectoryPro") != "" {
		t.Fatal("a failed sign-in set the SSO cookie")
	}

	// Sign in: an SSO cookie for the pages, then back to the code.
	r = w.signIn(r, "bjensen", "Ch4ng31t")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/openam/oauth2/device/user?user_code="+code {
		t.Fatalf("sign-in: %d %v %s", r.status, r.header, r.body)
	}
	sso := cookieOf(r, "iPlanetDirectoryPro")
	if sso == nil || !sso.HttpOnly || sso.SameSite != http.SameSiteLaxMode || sso.Path != "/openam" || sso.Secure {
		t.Fatalf("SSO cookie = %v", sso)
	}
	if !valid(t, c.session("validate", sso.Value, nil)) {
		t.Fatal("the sign-in session is not valid")
	}

	// The consent screen: the thing, the client, the scopes, Allow and Deny.
	r = w.get(r.header.Get("Location"))
	body := expectPage(t, r, 200, "user-authorized-thing", "forgerock-iot-oauth2-client", "<code>publish</code>", "<code>subscribe</code>",
		`name="decision" value="allow"`, `name="decision" value="deny"`, `name="user_code" value="`+code+`"`, "Signed in as <strong>bjensen</strong>")
	if strings.Contains(body, sso.Value) || strings.Contains(body, url.QueryEscape(sso.Value)) {
		t.Error("the page carries the SSO token")
	}
	csrf := field(t, r, "csrf")

	// Allow, as the form posts it.
	r = w.post(dc["verification_uri"].(string), url.Values{"user_code": {code}, "decision": {"allow"}, "csrf": {csrf}})
	expectPage(t, r, 200, "Device connected", "var pageData = { done: true")
	if strings.Contains(string(r.body), "errorCode") {
		t.Errorf("allow page: %s", r.body)
	}
	clk.Advance(5 * time.Second)
	tok := expectStatus(t, s.things("POST", "get_user_token", "/", map[string]any{"device_code": dc["device_code"]}), 200)
	in := expectStatus(t, s.things("POST", "introspect_token", "/", map[string]any{"token": tok["access_token"]}), 200)
	if in["sub"] != "(usr!bjensen)" || in["scope"] != "publish subscribe" {
		t.Errorf("introspection = %v", in)
	}

	// The code is spent.
	expectPage(t, w.get(dc["verification_uri_complete"].(string)), 200, "This code has already been used", `errorCode: "invalid_user_code"`)
	r = w.post(dc["verification_uri"].(string), url.Values{"user_code": {code}, "decision": {"deny"}, "csrf": {csrf}})
	expectPage(t, r, 200, `errorCode: "invalid_user_code"`)
}

func TestPagesCodeEntryAndErrors(t *testing.T) {
	srv, c, clk, s, _ := deviceSetup(t)
	dc := expectStatus(t, s.things("POST", "get_user_code", "/", map[string]any{"scope": []string{"publish"}}), 200)
	uri, code := dc["verification_uri"].(string), dc["user_code"].(string)
	w := newWeb(t, srv)
	w.setSSO(c.userLogin("bjensen", "Ch4ng31t"))

	// With a session and no code: the code form; the code leads to consent.
	body := expectPage(t, w.get(uri), 200, "Enter the code that your device shows", `name="user_code"`, `method="get"`)
	if strings.Contains(body, "pageData") {
		t.Errorf("the code form carries pageData: %s", body)
	}
	expectPage(t, w.get(uri+"?user_code="+url.QueryEscape(" "+code+" ")), 200, `name="decision" value="allow"`)
	csrf := field(t, w.get(uri+"?user_code="+code), "csrf")

	for name, tc := range map[string]struct {
		path string
		want []string
	}{
		"unknown code": {uri + "?user_code=NOPE2345", []string{"That code is not valid", `errorCode: "invalid_user_code"`, `value="NOPE2345"`}},
		"escaped code": {uri + "?user_code=%3Cb%3E", []string{"&lt;b&gt;"}},
	} {
		body := expectPage(t, w.get(tc.path), 200, tc.want...)
		if strings.Contains(body, "<b>") {
			t.Errorf("%s: unescaped input: %s", name, body)
		}
	}

	// Forged decisions change nothing.
	other := c.userLogin("bjensen", "Ch4ng31t")
	for name, tc := range map[string]struct {
		form    url.Values
		headers []string
	}{
		"cross-site origin":   {url.Values{"user_code": {code}, "decision": {"allow"}, "csrf": {csrf}}, []string{"Origin: https://evil.example"}},
		"cross-site fetch":    {url.Values{"user_code": {code}, "decision": {"allow"}, "csrf": {csrf}}, []string{"Origin: null", "Sec-Fetch-Site: cross-site"}},
		"no csrf":             {url.Values{"user_code": {code}, "decision": {"allow"}}, nil},
		"other session csrf":  {url.Values{"user_code": {code}, "decision": {"allow"}, "csrf": {other}}, nil},
		"csrf of another key": {url.Values{"user_code": {code}, "decision": {"allow"}, "csrf": {csrf + "x"}}, nil},
	} {
		r := w.post(uri, tc.form, tc.headers...)
		if !strings.Contains(expectPage(t, r, 200), `errorCode: "invalid_csrf"`) {
			t.Errorf("%s: %s", name, r.body)
		}
	}
	expectDeviceError(t, s.things("POST", "get_user_token", "/", map[string]any{"device_code": dc["device_code"]}), 403, "authorization_pending")

	// A thing's session is not a person's: it cannot approve its own code.
	ws := newWeb(t, srv)
	ws.setSSO(s.token)
	r := ws.post(uri, url.Values{"user_code": {code}, "decision": {"allow"}, "csrf": {s.token}})
	expectPage(t, r, 200, `errorCode: "not_authenticated"`)
	expectPage(t, ws.get(uri), 200, `name="password"`)

	// Methods.
	req, _ := http.NewRequest("PUT", uri, nil)
	r = w.send(req)
	expectPage(t, r, http.StatusMethodNotAllowed)
	if r.header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}
	req, _ = http.NewRequest("HEAD", uri, nil)
	if r := w.send(req); r.status != 200 || len(r.body) != 0 || r.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("HEAD: %d %v", r.status, r.header)
	}

	// Expired.
	clk.Advance(301 * time.Second)
	expectPage(t, w.get(uri+"?user_code="+code), 200, "This code has expired", `errorCode: "expired_token"`, "Enter another code")
	r = w.post(uri, url.Values{"user_code": {code}, "decision": {"allow"}, "csrf": {csrf}})
	expectPage(t, r, 200, `errorCode: "expired_token"`)
}

func TestPagesSignInForgery(t *testing.T) {
	srv, _, _, s, _ := deviceSetup(t)
	dc := expectStatus(t, s.things("POST", "get_user_code", "/", map[string]any{"scope": []string{"publish"}}), 200)
	w := newWeb(t, srv)
	page := w.get(dc["verification_uri_complete"].(string))
	form := func() url.Values {
		return url.Values{"csrf": {field(t, page, "csrf")}, "realm": {"/"}, "goto": {field(t, page, "goto")},
			"username": {"bjensen"}, "password": {"Ch4ng31t"}}
	}
	const refused = "This sign-in form has expired or was sent from another site."
	for name, tc := range map[string]struct {
		web     *web
		form    func() url.Values
		headers []string
	}{
		"no csrf field":       {w, func() url.Values { f := form(); f.Del("csrf"); return f }, nil},
		"wrong csrf field":    {w, func() url.Values { f := form(); f.Set("csrf", strings.Repeat("A", 43)); return f }, nil},
		"no signin cookie":    {newWeb(t, srv), form, nil},
		"cross-site origin":   {w, form, []string{"Origin: https://evil.example"}},
		"null origin":         {w, form, []string{"Origin: null"}},
		"cross-site fetch":    {w, form, []string{"Sec-Fetch-Site: cross-site"}},
		"same-site subdomain": {w, form, []string{"Sec-Fetch-Site: same-site"}},
	} {
		r := tc.web.post("/openam/ui/login", tc.form(), tc.headers...)
		expectPage(t, r, http.StatusForbidden, refused)
		if cookieOf(r, "iPlanetDirectoryPro") != nil {
			t.Errorf("%s: signed in", name)
		}
	}
	// The same-origin form of a browser with Referrer-Policy same-origin.
	r := w.post("/openam/ui/login", form(), "Sec-Fetch-Site: same-origin")
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", r.status, r.body)
	}

	// No open redirects: goto stays on the server's pages.
	for _, next := range []string{"https://evil.example/", "//evil.example/openam/ui/identities", "/\\evil.example",
		"/openam/json/users", "/other/ui/identities", "javascript:alert(1)", "/openam/oauth2/access_token",
		"/openam/oauth2/../json/device/user", "/openam/ui/../json/users"} {
		f := form()
		f.Set("goto", next)
		r := w.post("/openam/ui/login", f)
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/openam/oauth2/device/user" {
			t.Errorf("goto %q: %d → %q", next, r.status, r.header.Get("Location"))
		}
	}
	f := form()
	f.Set("goto", "/openam/ui/identities?realm=%2F")
	if r := w.post("/openam/ui/login", f); r.header.Get("Location") != "/openam/ui/identities?realm=%2F" {
		t.Errorf("goto identities → %q", r.header.Get("Location"))
	}
	// Unknown realm.
	f.Set("realm", "/nope")
	expectPage(t, w.post("/openam/ui/login", f), http.StatusNotFound, "There is no active realm")
	expectPage(t, w.get("/openam/ui/login?realm=/nope"), http.StatusNotFound)
	expectPage(t, w.get("/openam/ui/login"), 200, `name="realm" value="/"`)
}

func TestPagesSignOut(t *testing.T) {
	srv, c, _, _, _ := deviceSetup(t)
	w := newWeb(t, srv)
	tok := c.userLogin("bjensen", "Ch4ng31t")
	w.setSSO(tok)
	page := w.get("/openam/oauth2/device/user")
	expectPage(t, page, 200, `action="/openam/ui/logout"`, "Sign out")
	csrf := field(t, page, "csrf")

	for name, form := range map[string]url.Values{
		"no csrf":    {"goto": {"/openam/oauth2/device/user"}},
		"wrong csrf": {"csrf": {"nope"}, "goto": {"/openam/oauth2/device/user"}},
	} {
		expectPage(t, w.post("/openam/ui/logout", form), http.StatusForbidden, "Sign out refused")
		if !valid(t, c.session("validate", tok, nil)) {
			t.Fatalf("%s ended the session", name)
		}
	}
	expectPage(t, w.post("/openam/ui/logout", url.Values{"csrf": {csrf}}, "Origin: https://evil.example"), http.StatusForbidden)
	expectPage(t, w.get("/openam/ui/logout"), http.StatusMethodNotAllowed)

	r := w.post("/openam/ui/logout", url.Values{"csrf": {csrf}, "goto": {"/openam/oauth2/device/user"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/openam/oauth2/device/user" {
		t.Fatalf("sign out: %d %v", r.status, r.header)
	}
	if ck := cookieOf(r, "iPlanetDirectoryPro"); ck == nil || ck.MaxAge >= 0 {
		t.Errorf("SSO cookie not cleared: %v", ck)
	}
	if valid(t, c.session("validate", tok, nil)) {
		t.Error("the session survived sign-out")
	}
	expectPage(t, w.get("/openam/oauth2/device/user"), 200, `name="password"`)
}

func TestPagesSubRealm(t *testing.T) {
	cfg := amtest.DefaultConfig()
	cfg.Realms["/sub"] = amtest.GuideRealm()
	srv, c := startWith(t, cfg)
	admin := c.adminLogin()
	th := newThing(t, "sub-thing")
	c.createThing(admin, "/sub", th, nil)
	for realm, user := range map[string]string{"/sub": "alice", "/": "bjensen"} {
		if r := c.putIdentity(admin, realm, user, map[string]any{"userPassword": "Ch4ng31t"}); r.status != 201 {
			t.Fatalf("create %s: %d %s", user, r.status, r.body)
		}
	}
	s := c.restrictedSession(th, c.mustPoP(th, "auth-tree", "/sub"))
	dc := expectStatus(t, s.things("POST", "get_user_code", "/sub", map[string]any{"scope": []string{"publish"}}), 200)
	uri := dc["verification_uri"].(string)
	if uri != srv.URL+"/oauth2/realms/root/realms/sub/device/user" {
		t.Fatalf("verification_uri = %s", uri)
	}
	w := newWeb(t, srv)
	// A session of the top-level realm does not count in /sub.
	w.setSSO(c.userLogin("bjensen", "Ch4ng31t"))
	r := w.get(dc["verification_uri_complete"].(string))
	expectPage(t, r, 200, `name="realm" value="/sub"`, "Realm: /sub")
	// bjensen is not a user of /sub.
	expectPage(t, w.signIn(r, "bjensen", "Ch4ng31t"), 200, "Sign-in failed")
	r = w.signIn(r, "alice", "Ch4ng31t")
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", r.status, r.body)
	}
	r = w.get(r.header.Get("Location"))
	expectPage(t, r, 200, "sub-thing", "Signed in as <strong>alice</strong> in /sub", `action="/openam/oauth2/realms/root/realms/sub/device/user"`)
	r = w.post(uri, url.Values{"user_code": {dc["user_code"].(string)}, "decision": {"allow"}, "csrf": {field(t, r, "csrf")}})
	expectPage(t, r, 200, "var pageData = { done: true, realm: \"/sub\" }")
	tok := expectStatus(t, s.things("POST", "get_user_token", "/sub", map[string]any{"device_code": dc["device_code"]}), 200)
	in := expectStatus(t, s.things("POST", "introspect_token", "/sub", map[string]any{"token": tok["access_token"]}), 200)
	if in["subname"] != "alice" {
		t.Errorf("introspection = %v", in)
	}

	// The realm query parameter form of the verification URI keeps the realm.
	dc = expectStatus(t, s.things("POST", "get_user_code", "/sub", map[string]any{"scope": []string{"publish"}}), 200)
	r = w.get(srv.URL + "/oauth2/device/user?realm=/sub&user_code=" + dc["user_code"].(string))
	expectPage(t, r, 200, `action="/openam/oauth2/device/user?realm=%2Fsub"`)
	expectPage(t, w.get(srv.URL+"/oauth2/device/user?realm=/sub"), 200, `name="realm" value="/sub"`, `name="user_code"`)
}

func TestIdentitiesPage(t *testing.T) {
	cfg := amtest.DefaultConfig()
	cfg.Realms["/sub"] = amtest.GuideRealm()
	srv, c := startWith(t, cfg)
	admin := c.adminLogin()
	th := newThing(t, "listed-thing")
	c.createThing(admin, "/", th, nil)
	c.createThing(admin, "/sub", newThing(t, "sub-thing"), map[string]any{"thingType": "gateway"})
	if r := c.putIdentity(admin, "/", "bjensen", map[string]any{"userPassword": "Ch4ng31t"}); r.status != 201 {
		t.Fatal(r.status)
	}

	// No session: sign in, back to the same page.
	w := newWeb(t, srv)
	r := w.get("/openam/ui/identities?realm=/")
	expectPage(t, r, 200, "Sign in as the administrator to see identities.")
	if g := field(t, r, "goto"); g != "/openam/ui/identities?realm=/" {
		t.Errorf("goto = %q", g)
	}
	// A person who is not the administrator is refused.
	r = w.signIn(r, "bjensen", "Ch4ng31t")
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", r.status, r.body)
	}
	body := expectPage(t, w.get(r.header.Get("Location")), http.StatusForbidden, "Only the administrator can see identities.")
	if strings.Contains(body, "listed-thing") {
		t.Error("identities shown to bjensen")
	}
	// A thing's session is not a person's.
	wt := newWeb(t, srv)
	wt.setSSO(c.mustPoP(th, "auth-tree", "/"))
	expectPage(t, wt.get("/openam/ui/identities"), 200, `name="password"`)

	// The administrator sees the realm's identities, types and key IDs.
	wa := newWeb(t, srv)
	r = wa.signIn(wa.get("/openam/ui/identities"), "amAdmin", "changeit")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/openam/ui/identities" {
		t.Fatalf("admin sign-in: %d %v", r.status, r.header)
	}
	body = expectPage(t, wa.get("/openam/ui/identities"), 200, "listed-thing", "bjensen", th.kid,
		`<span class="tag">device</span>`, `<span class="tag user">user</span>`, "2 identities in Top Level Realm (/)",
		`<option value="/" selected>`, `<option value="/sub">`)
	for _, secret := range []string{"pbkdf2", "userPassword", "Ch4ng31t", "5tr0ngG3n3r@ted", "sub-thing"} {
		if strings.Contains(body, secret) {
			t.Errorf("identities page shows %q", secret)
		}
	}
	expectPage(t, wa.get("/openam/ui/identities?realm=/sub"), 200, "sub-thing", `<span class="tag">gateway</span>`, "1 identity in /sub", `<option value="/sub" selected>`)
	expectPage(t, wa.get("/openam/ui/identities?realm=sub"), 200, "sub-thing")
	expectPage(t, wa.get("/openam/ui/identities?realm=/nope"), http.StatusNotFound, "There is no active realm &#34;/nope&#34;")

	// The REST admin token works as a cookie too.
	wr := newWeb(t, srv)
	wr.setSSO(admin)
	expectPage(t, wr.get("/openam/ui/identities"), 200, "listed-thing")

	// The rest of /ui.
	if r := wa.get("/openam/ui"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/openam/ui/identities" {
		t.Errorf("/ui: %d %v", r.status, r.header)
	}
	expectPage(t, wa.get("/openam/ui/nope"), http.StatusNotFound, "Page not found")
	expectPage(t, wa.post("/openam/ui/identities", nil), http.StatusMethodNotAllowed)
}

// TestPagesBasePathAndTLS checks cookies for a server at the root path over HTTPS.
func TestPagesBasePathAndTLS(t *testing.T) {
	srv := amtest.NewUnstartedServer()
	srv.BasePath = "/"
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c := newClient(t, srv)
	admin := c.adminLogin()
	if r := c.putIdentity(admin, "/", "bjensen", map[string]any{"userPassword": "Ch4ng31t"}); r.status != 201 {
		t.Fatal(r.status)
	}
	w := newWeb(t, srv)
	page := w.get(srv.URL + "/oauth2/device/user")
	expectPage(t, page, 200, `action="/ui/login"`)
	if ck := cookieOf(page, "amlocal-signin"); ck == nil || ck.Path != "/" || !ck.Secure {
		t.Errorf("sign-in cookie = %v", ck)
	}
	r := w.post(srv.URL+"/ui/login", url.Values{"csrf": {field(t, page, "csrf")}, "realm": {"/"}, "goto": {field(t, page, "goto")},
		"username": {"bjensen"}, "password": {"Ch4ng31t"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/oauth2/device/user" {
		t.Fatalf("sign-in: %d %v %s", r.status, r.header, r.body)
	}
	if ck := cookieOf(r, "iPlanetDirectoryPro"); ck == nil || ck.Path != "/" || !ck.Secure || !ck.HttpOnly {
		t.Errorf("SSO cookie = %v", ck)
	}
}
