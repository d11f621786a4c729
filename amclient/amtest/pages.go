package amtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The local AM's web pages: the device verification pages at
// /oauth2[/realms/root/realms/...]/device/user (device.go) and these, under
// the base path:
//
//	/ui/login       sign-in form (GET) and its submission (POST)
//	/ui/logout      sign-out (POST)
//	/ui/identities  read-only list of a realm's identities, administrator only
//
// The pages need no JavaScript and load nothing: one inline style sheet,
// allowed by its hash. Every page is sent with X-Frame-Options DENY and a
// Content-Security-Policy with frame-ancestors 'none'. Every POST is checked
// against cross-site request forgery: the sign-in form with a double-submit
// cookie and the Origin header, the forms of a signed-in user with a value
// derived from the SSO token (or the SSO token itself, as AM's own consent
// form and the functional-test harness send it).

// pageCSS is the pages' only style sheet; the CSP allows it by hash.
const pageCSS = `:root{--fg:#1c2128;--muted:#57606a;--line:#d0d7de;--bg:#f3f5f7;--card:#fff;--accent:#0a5bb5;--accent-hover:#084a94;--danger:#b42318;--danger-bg:#fef3f2;--ok:#1a7f37;--ok-bg:#eefbf1}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:center;justify-content:space-between;padding:.75rem 1rem;background:var(--card);border-bottom:1px solid var(--line)}
.brand{font-weight:700;letter-spacing:.01em}
.who{display:flex;flex-wrap:wrap;gap:.25rem .75rem;align-items:center;color:var(--muted);font-size:.9rem}
.who form{margin:0}
main{max-width:30rem;margin:2rem auto;padding:0 1rem}
main.wide{max-width:80rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.5rem}
h1{font-size:1.5rem;line-height:1.25;margin:0 0 .5rem}
h2{font-size:1rem;margin:1.25rem 0 .5rem}
p{margin:.5rem 0}
.muted{color:var(--muted);font-size:.9rem}
label{display:block;font-weight:600;margin:1rem 0 .3rem}
input[type=text],input[type=password],select{display:block;width:100%;padding:.65rem .75rem;font:inherit;color:inherit;background:#fff;border:1px solid #8c959f;border-radius:8px}
input.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:1.25rem;letter-spacing:.15em}
input:focus,select:focus,button:focus{outline:3px solid #8cb8f0;outline-offset:1px}
button{font:inherit;font-weight:600;padding:.7rem 1.1rem;border-radius:8px;border:1px solid transparent;cursor:pointer}
.primary{background:var(--accent);color:#fff}
.primary:hover{background:var(--accent-hover)}
.secondary{background:#fff;color:var(--fg);border-color:#8c959f}
.secondary:hover{background:#f3f5f7}
.full{width:100%;margin-top:1.25rem}
.actions{display:flex;gap:.75rem;margin-top:1.5rem}
.actions button{flex:1}
button.link{background:none;border:0;padding:0;color:var(--accent);font-weight:400;text-decoration:underline}
a{color:var(--accent)}
.alert{padding:.75rem 1rem;border-radius:8px;border:1px solid;margin:1rem 0}
.alert.error{background:var(--danger-bg);border-color:#f3b8b3;color:var(--danger)}
.alert.ok{background:var(--ok-bg);border-color:#a6dcb4;color:var(--ok)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem;margin:1rem 0;padding:.75rem 1rem;background:var(--bg);border-radius:8px}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;font-weight:600;overflow-wrap:anywhere}
ul.scopes{margin:.25rem 0 0;padding-left:1.25rem}
ul.scopes li{margin:.2rem 0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
form.inline{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:1rem 0}
form.inline label{margin:0;flex-basis:100%}
form.inline select{width:auto;flex:0 1 20rem;min-width:0}
form.inline select,form.inline button{height:2.75rem;padding-top:0;padding-bottom:0}
.table{background:var(--card);border:1px solid var(--line);border-radius:12px;overflow:hidden}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:.6rem .9rem;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#f6f8fa;font-size:.85rem;color:var(--muted)}
tr:last-child td{border-bottom:0}
td code{overflow-wrap:anywhere}
.kid{display:block}
.tag{display:inline-block;padding:0 .5rem;border-radius:999px;background:#ddf4ff;color:#0a3069;font-size:.85rem}
.tag.user{background:#fff8c5;color:#4d2d00}
@media (max-width:40rem){main{margin:1rem auto}.card{padding:1.25rem}dl.facts{grid-template-columns:1fr;gap:0}dl.facts dd{margin-bottom:.5rem}form.inline select{flex:1 1 10rem}thead{display:none}table,tbody,tr,td{display:block}tr{border-bottom:1px solid var(--line);padding:.5rem 0}td{border:0;padding:.2rem .9rem}td::before{content:attr(data-label);display:block;font-size:.8rem;color:var(--muted)}}`

// pageCSP is the pages' Content-Security-Policy: nothing but the inline
// style sheet, never framed, forms posted to this origin only.
var pageCSP = func() string {
	h := sha256.Sum256([]byte(pageCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(h[:]) +
		"'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
}()

var pageTemplates = template.Must(template.New("page").Parse(`{{define "page"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Thingway local AM</title>
<style>` + pageCSS + `</style></head>
<body><header><span class="brand">Thingway local AM</span>{{if .User}}
<div class="who"><span>Signed in as <strong>{{.User}}</strong>{{if ne .Realm "/"}} in {{.Realm}}{{end}}</span>
<form method="post" action="{{.LogoutAction}}"><input type="hidden" name="csrf" value="{{.LogoutCSRF}}"><input type="hidden" name="goto" value="{{.Here}}"><button type="submit" class="link">Sign out</button></form></div>{{end}}
</header>
<main{{if .Wide}} class="wide"{{end}}>
{{- if eq .Kind "signin"}}{{template "signin" .}}
{{- else if eq .Kind "code"}}{{template "code" .}}
{{- else if eq .Kind "consent"}}{{template "consent" .}}
{{- else if eq .Kind "identities"}}{{template "identities" .}}
{{- else}}{{template "message" .}}{{end}}
</main>
{{- with .PageData}}
<script type="text/plain" id="page-data">var pageData = { {{if .ErrorCode}}errorCode: "{{.ErrorCode}}"{{else}}done: true{{end}}, realm: "{{.Realm}}" };</script>
{{- end}}
</body></html>
{{end}}

{{define "alert"}}{{if .Alert}}<div class="alert {{if .AlertOK}}ok{{else}}error{{end}}" role="alert">{{.Alert}}</div>{{end}}{{end}}

{{define "signin"}}<div class="card">
<h1>Sign in</h1>
<p>{{.Purpose}}</p>
{{template "alert" .}}
<form method="post" action="{{.LoginAction}}">
<input type="hidden" name="csrf" value="{{.SigninCSRF}}">
<input type="hidden" name="realm" value="{{.Realm}}">
<input type="hidden" name="goto" value="{{.Goto}}">
<label for="username">User name</label>
<input type="text" id="username" name="username" value="{{.Username}}" autocomplete="username" autocapitalize="none" spellcheck="false" required{{if not .Username}} autofocus{{end}}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required{{if .Username}} autofocus{{end}}>
<button type="submit" class="primary full">Sign in</button>
</form>
<p class="muted">Realm: {{.RealmLabel}}{{if .UserCode}} · Device code: <code>{{.UserCode}}</code>{{end}}</p>
</div>{{end}}

{{define "code"}}<div class="card">
<h1>Connect a device</h1>
<p>Enter the code that your device shows.</p>
{{template "alert" .}}
<form method="get" action="{{.VerifyAction}}">
{{if .RealmParam}}<input type="hidden" name="realm" value="{{.RealmParam}}">{{end}}
<label for="user_code">Code</label>
<input type="text" id="user_code" name="user_code" class="code" value="{{.UserCode}}" autocomplete="off" autocapitalize="none" spellcheck="false" maxlength="64" required autofocus>
<button type="submit" class="primary full">Continue</button>
</form>
</div>{{end}}

{{define "consent"}}<div class="card">
<h1>Allow this device?</h1>
<p>The device <strong>{{.Thing}}</strong> asks to act on your behalf.</p>
<dl class="facts">
<dt>Device</dt><dd id="consent-thing">{{.Thing}}</dd>
<dt>Application</dt><dd id="consent-client">{{.Client}}</dd>
<dt>Realm</dt><dd>{{.RealmLabel}}</dd>
<dt>Code</dt><dd><code>{{.UserCode}}</code></dd>
</dl>
<h2>It asks for</h2>
<ul class="scopes" id="consent-scopes">{{range .Scopes}}<li><code>{{.}}</code></li>{{else}}<li>no scopes</li>{{end}}</ul>
<p class="muted">This request expires {{.Expires}}. Only allow it if you started it on your device.</p>
<form method="post" action="{{.ConsentAction}}">
<input type="hidden" name="user_code" value="{{.UserCode}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<div class="actions">
<button type="submit" name="decision" value="deny" class="secondary" id="deny">Deny</button>
<button type="submit" name="decision" value="allow" class="primary" id="allow">Allow</button>
</div>
</form>
</div>{{end}}

{{define "message"}}<div class="card">
<h1 id="message-title">{{.Heading}}</h1>
{{template "alert" .}}
{{range .Lines}}<p>{{.}}</p>{{end}}
{{if .Again}}<p><a href="{{.Again}}">{{.AgainText}}</a></p>{{end}}
</div>{{end}}

{{define "identities"}}
<h1>Identities</h1>
<form method="get" action="{{.IdentitiesAction}}" class="inline">
<label for="realm">Realm</label>
<select id="realm" name="realm">{{range .Realms}}<option value="{{.Path}}"{{if .Selected}} selected{{end}}>{{.Label}}</option>{{end}}</select>
<button type="submit" class="secondary">Show</button>
</form>
{{template "alert" .}}
{{if .Listed}}<p class="muted" id="identity-count">{{len .Identities}} {{if eq (len .Identities) 1}}identity{{else}}identities{{end}} in {{.RealmLabel}}. Read only: manage identities with the identity REST endpoint.</p>
{{if .Identities}}<div class="table"><table>
<thead><tr><th scope="col">ID</th><th scope="col">Type</th><th scope="col">Key IDs (thingKeys)</th><th scope="col">Status</th><th scope="col">Created</th></tr></thead>
<tbody>{{range .Identities}}<tr>
<td data-label="ID"><strong>{{.ID}}</strong></td>
<td data-label="Type">{{if .ThingType}}<span class="tag">{{.ThingType}}</span>{{else}}<span class="tag user">user</span>{{end}}</td>
<td data-label="Key IDs">{{range .Keys}}<span class="kid"><code>{{.}}</code></span>{{else}}<span class="muted">none</span>{{end}}</td>
<td data-label="Status">{{.Status}}</td>
<td data-label="Created">{{.Created}}</td>
</tr>{{end}}</tbody></table></div>{{end}}{{end}}
{{end}}
`))

// pageView is what a page template renders; Kind picks the page.
type pageView struct {
	Kind, Title string
	Wide        bool
	Realm       string // realm path
	RealmLabel  string
	// The signed-in user and the sign-out form.
	User, LogoutAction, LogoutCSRF, Here string
	Alert                                string
	AlertOK                              bool
	PageData                             *pageData

	// signin
	Purpose, LoginAction, SigninCSRF, Goto, Username string
	// code and consent
	VerifyAction, RealmParam, UserCode string
	Thing, Client, Expires, CSRF       string
	ConsentAction                      string
	Scopes                             []string
	// message
	Heading          string
	Lines            []string
	Again, AgainText string
	// identities
	IdentitiesAction string
	Realms           []realmOption
	Listed           bool
	Identities       []identityRow
}

// pageData is the object AM embeds in its consent answer; the functional
// tests read "done:" or errorCode: "<code>" from it (am-protocol.md §9.7).
type pageData struct {
	ErrorCode, Realm string
}

type realmOption struct {
	Path, Label string
	Selected    bool
}

type identityRow struct {
	ID, ThingType, Status, Created string
	Keys                           []string
}

func realmLabel(realm string) string {
	if realm == "/" {
		return "Top Level Realm (/)"
	}
	return realm
}

// setPageHeaders sets the headers every page carries: no framing, no
// scripts, no caching, no referrer to other sites (verification URLs carry
// the user code; same-origin keeps the Origin header of form posts).
func setPageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
}

// renderPage writes a page. A signed-in user gets the sign-out form.
func (s *Server) renderPage(c *reqCtx, status int, v *pageView, user *session, tok string) error {
	if v.Realm == "" {
		v.Realm = c.realm
	}
	if v.RealmLabel == "" {
		v.RealmLabel = realmLabel(v.Realm)
	}
	if user != nil && tok != "" {
		v.User = user.UID
		v.Realm = user.Realm
		v.LogoutAction = s.base + "/ui/logout"
		v.LogoutCSRF = s.csrfFor(tok)
	}
	if v.Here == "" {
		v.Here = c.r.URL.RequestURI()
	}
	setPageHeaders(c.w.Header())
	c.w.WriteHeader(status)
	if c.r.Method == http.MethodHead {
		return nil
	}
	return pageTemplates.ExecuteTemplate(c.w, "page", v)
}

// csrfFor is the anti-forgery value the pages put in the forms of a
// signed-in user: an HMAC of the SSO token, so that the page does not carry
// the token itself. The consent POST also accepts the SSO token, as AM does.
func (s *Server) csrfFor(tok string) string {
	m := hmac.New(sha256.New, s.keys.AuthIDKey)
	m.Write([]byte("thingway page csrf\x00"))
	m.Write([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validCSRF reports whether a form's csrf value belongs to the SSO token.
func (s *Server) validCSRF(got, tok string) bool {
	if got == "" || tok == "" {
		return false
	}
	return constantTimeEqual(got, s.csrfFor(tok)) || constantTimeEqual(got, tok)
}

// sameOrigin rejects requests a browser says come from another site:
// Sec-Fetch-Site other than same-origin (or none: typed by the user), or an
// Origin header naming another host. Clients that send neither (curl, the
// functional-test harness) pass.
func sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" && site != "none" {
		return false
	}
	switch o := r.Header.Get("Origin"); o {
	case "":
		return true
	case "null":
		// Sent for some same-origin requests too; only Sec-Fetch-Site can tell.
		return site == "same-origin"
	default:
		u, err := url.Parse(o)
		return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
	}
}

// pageSession returns the SSO session of the request if it is a person's
// session in realm: the administrator or an identity without a thingType,
// signed in with a password. Things' sessions do not count.
func (s *Server) pageSession(c *reqCtx, realm string) (*session, string, bool) {
	tok := c.ssoToken()
	x, ok := s.liveSession(tok, c.now)
	if !ok || x.Realm != realm || x.Restricted || x.Key != nil {
		return nil, "", false
	}
	if !x.Admin {
		id := s.getIdentity(realm, x.UID)
		if id == nil || id.first("thingType") != "" {
			return nil, "", false
		}
	}
	return x, tok, true
}

const signinCookie = "amlocal-signin"

// signinToken returns the double-submit value of the sign-in form, from the
// browser's cookie or a new one.
func (s *Server) signinToken(c *reqCtx) string {
	if ck, err := c.r.Cookie(signinCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	v := randomID(32)
	http.SetCookie(c.w, &http.Cookie{Name: signinCookie, Value: v, Path: s.cookiePath(), HttpOnly: true,
		Secure: c.r.TLS != nil, SameSite: http.SameSiteStrictMode})
	return v
}

func (s *Server) cookiePath() string {
	if s.base == "" {
		return "/"
	}
	return s.base
}

// setSSOCookie sets (or, with tok "", clears) the SSO cookie for the pages.
func (s *Server) setSSOCookie(c *reqCtx, tok string) {
	ck := &http.Cookie{Name: c.cfg.CookieName, Value: tok, Path: s.cookiePath(), HttpOnly: true,
		Secure: c.r.TLS != nil, SameSite: http.SameSiteLaxMode}
	if tok == "" {
		ck.MaxAge = -1
	}
	http.SetCookie(c.w, ck)
}

// signinPage renders the sign-in form for realm; after signing in the
// browser goes to next.
func (s *Server) signinPage(c *reqCtx, status int, realm, next, purpose, username, alert string) error {
	v := &pageView{Kind: "signin", Title: "Sign in", Realm: realm, Purpose: purpose, Username: username, Alert: alert,
		LoginAction: s.base + "/ui/login", SigninCSRF: s.signinToken(c), Goto: next}
	if u, err := url.Parse(next); err == nil {
		v.UserCode = u.Query().Get("user_code")
	}
	return s.renderPage(c, status, v, nil, "")
}

// safeGoto accepts a same-server path under the base path for the pages to
// return to, and falls back to def otherwise (no open redirects).
func (s *Server) safeGoto(next, def string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return def
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || path.Clean(u.Path) != u.Path {
		return def
	}
	p := strings.TrimPrefix(u.Path, s.base)
	if s.base != "" && !strings.HasPrefix(u.Path, s.base+"/") {
		return def
	}
	if !(strings.HasPrefix(p, "/ui/") || strings.HasPrefix(p, "/oauth2/") && strings.HasSuffix(p, "/device/user")) {
		return def
	}
	return u.RequestURI()
}

// serveUI routes /ui/*.
func (s *Server) serveUI(c *reqCtx, p string) error {
	c.realm = "/"
	switch p {
	case "", "/":
		http.Redirect(c.w, c.r, s.base+"/ui/identities", http.StatusSeeOther)
		return nil
	case "/login":
		return s.handleLoginPage(c)
	case "/logout":
		return s.handleLogoutPage(c)
	case "/identities":
		return s.handleIdentitiesPage(c)
	}
	return s.renderPage(c, http.StatusNotFound, &pageView{Kind: "message", Title: "Not found", Heading: "Page not found",
		Lines: []string{"There is no page at this address."}}, nil, "")
}

func (s *Server) methodNotAllowed(c *reqCtx, allow string) error {
	c.w.Header().Set("Allow", allow)
	return s.renderPage(c, http.StatusMethodNotAllowed, &pageView{Kind: "message", Title: "Method not allowed",
		Heading: "Method not allowed", Lines: []string{"This page does not accept " + c.r.Method + " requests."}}, nil, "")
}

// parsePageForm reads a URL-encoded form body within the size limit.
func (s *Server) parsePageForm(c *reqCtx) bool {
	c.r.Body = http.MaxBytesReader(c.w, c.r.Body, s.maxBody())
	return c.r.ParseForm() == nil
}

// dummyPasswordHash makes a failed sign-in of an unknown user cost what a
// wrong password costs. It is computed on the first such sign-in, not at
// init: a PBKDF2 of 20,000 rounds is no cost for every program that links
// amtest to pay.
var dummyPasswordHash = sync.OnceValue(func() string { return hashPassword("thingway dummy password") })

// handleLoginPage serves /ui/login: GET shows the form (realm and goto from
// the query), POST checks the password and starts an SSO session.
func (s *Server) handleLoginPage(c *reqCtx) error {
	switch c.r.Method {
	case http.MethodGet, http.MethodHead:
		q := c.r.URL.Query()
		realm, ok := c.cfg.lookupRealm(q.Get("realm"))
		if q.Get("realm") == "" {
			realm, ok = "/", true
		}
		if !ok {
			return s.unknownRealmPage(c, q.Get("realm"))
		}
		return s.signinPage(c, http.StatusOK, realm, s.safeGoto(q.Get("goto"), s.defaultGoto(realm)), "Sign in with your user name and password.", "", "")
	case http.MethodPost:
	default:
		return s.methodNotAllowed(c, "GET, HEAD, POST")
	}
	if !s.parsePageForm(c) {
		return s.signinPage(c, http.StatusBadRequest, "/", s.defaultGoto("/"), "Sign in with your user name and password.", "", "The form could not be read. Please try again.")
	}
	f := c.r.PostForm
	realm, ok := c.cfg.lookupRealm(f.Get("realm"))
	if !ok {
		return s.unknownRealmPage(c, f.Get("realm"))
	}
	next := s.safeGoto(f.Get("goto"), s.defaultGoto(realm))
	purpose := "Sign in with your user name and password."
	user := strings.TrimSpace(f.Get("username"))
	ck, err := c.r.Cookie(signinCookie)
	if err != nil || !sameOrigin(c.r) || !constantTimeEqual(ck.Value, f.Get("csrf")) {
		s.log.LogAttrs(c.r.Context(), slog.LevelInfo, "sign-in refused", slog.String("reason", "csrf"), slog.String("realm", realm))
		return s.signinPage(c, http.StatusForbidden, realm, next, purpose, user,
			"This sign-in form has expired or was sent from another site. Please sign in again.")
	}
	keys := map[string]int{signinUserKey(realm, user): signinUserLimit, signinClientKey(c.r.RemoteAddr): signinClientLimit}
	if until := s.signins.locked(c.now, keys); !until.IsZero() {
		s.log.LogAttrs(c.r.Context(), slog.LevelInfo, "sign-in refused", slog.String("reason", "too many failures"), slog.String("realm", realm),
			slog.String("client", c.r.RemoteAddr), slog.Time("until", until))
		mins := int(math.Ceil(until.Sub(c.now).Minutes()))
		c.w.Header().Set("Retry-After", strconv.Itoa(int(until.Sub(c.now).Seconds())+1))
		return s.signinPage(c, http.StatusTooManyRequests, realm, next, purpose, user,
			fmt.Sprintf("Too many failed sign-ins. Please try again in %d minutes.", mins))
	}
	id, ok := s.passwordLogin(realm, user, f.Get("password"))
	if !ok {
		s.signins.fail(c.now, keys)
		s.log.LogAttrs(c.r.Context(), slog.LevelInfo, "sign-in failed", slog.String("realm", realm))
		return s.signinPage(c, http.StatusOK, realm, next, purpose, user,
			"Sign-in failed: the user name or password is not correct.")
	}
	s.signins.succeed(signinUserKey(realm, user))
	// A new sign-in ends the session the browser had.
	if old := c.ssoToken(); old != "" {
		if _, err := s.endSession(old); err != nil {
			return err
		}
	}
	x := &session{UID: id, Realm: realm}
	if realm == "/" && equalFoldASCII(id, c.cfg.AdminUser) {
		x.Admin, x.UID = true, c.cfg.AdminUser
	}
	tok, err := s.newSession(x, c.now)
	if err != nil {
		return err
	}
	s.setSSOCookie(c, tok)
	http.Redirect(c.w, c.r, next, http.StatusSeeOther)
	return nil
}

// passwordLogin checks a person's password: the administrator's, or an
// identity's without a thingType (things do not sign in to the pages). It
// returns the identity's ID as stored.
func (s *Server) passwordLogin(realm, user, password string) (string, bool) {
	if user == "" || password == "" {
		return "", false
	}
	if cfg := s.config(); realm == "/" && equalFoldASCII(user, cfg.AdminUser) {
		return cfg.AdminUser, s.checkPassword(realm, user, password)
	}
	x := s.getIdentity(realm, user)
	if x == nil || x.PasswordHash == "" {
		checkPasswordHash(dummyPasswordHash(), password)
		return "", false
	}
	if !s.checkPassword(realm, user, password) || x.first("thingType") != "" {
		return "", false
	}
	return x.ID, true
}

// defaultGoto is where a sign-in without a destination leads: the realm's
// device verification page.
func (s *Server) defaultGoto(realm string) string {
	if realm == "/" {
		return s.base + "/oauth2/device/user"
	}
	return s.base + "/oauth2" + realmJSONPath(realm) + "/device/user"
}

// handleLogoutPage serves POST /ui/logout: it ends the SSO session of the
// browser and returns to goto.
func (s *Server) handleLogoutPage(c *reqCtx) error {
	if c.r.Method != http.MethodPost {
		return s.methodNotAllowed(c, "POST")
	}
	if !s.parsePageForm(c) {
		return s.renderPage(c, http.StatusBadRequest, &pageView{Kind: "message", Title: "Sign out", Heading: "Sign out failed",
			Lines: []string{"The form could not be read."}}, nil, "")
	}
	next := s.safeGoto(c.r.PostForm.Get("goto"), s.defaultGoto("/"))
	tok := c.ssoToken()
	if _, live := s.liveSession(tok, c.now); live {
		if !sameOrigin(c.r) || !s.validCSRF(c.r.PostForm.Get("csrf"), tok) {
			return s.renderPage(c, http.StatusForbidden, &pageView{Kind: "message", Title: "Sign out", Heading: "Sign out refused",
				Lines: []string{"The request could not be verified. Use the Sign out button of a page of this server."}}, nil, "")
		}
		if _, err := s.endSession(tok); err != nil {
			return err
		}
	}
	s.setSSOCookie(c, "")
	http.Redirect(c.w, c.r, next, http.StatusSeeOther)
	return nil
}

func (s *Server) unknownRealmPage(c *reqCtx, realm string) error {
	return s.renderPage(c, http.StatusNotFound, &pageView{Kind: "message", Title: "Unknown realm", Heading: "Unknown realm",
		Lines: []string{fmt.Sprintf("There is no active realm %q.", realm)}}, nil, "")
}

// handleIdentitiesPage serves GET /ui/identities?realm=R: the identities of
// realm R (default /), their thingType and key IDs. Administrator only.
func (s *Server) handleIdentitiesPage(c *reqCtx) error {
	if c.r.Method != http.MethodGet && c.r.Method != http.MethodHead {
		return s.methodNotAllowed(c, "GET, HEAD")
	}
	here := c.r.URL.RequestURI()
	x, tok, ok := s.pageSession(c, "/")
	if !ok {
		return s.signinPage(c, http.StatusOK, "/", here, "Sign in as the administrator to see identities.", "", "")
	}
	if !x.Admin {
		s.log.LogAttrs(c.r.Context(), slog.LevelInfo, "identities page refused", slog.String("user", x.UID))
		return s.renderPage(c, http.StatusForbidden, &pageView{Kind: "message", Title: "Identities", Heading: "Administrators only",
			Alert: "Only the administrator can see identities.", Lines: []string{"Sign out, then sign in as " + c.cfg.AdminUser + "."}}, x, tok)
	}
	v := &pageView{Kind: "identities", Title: "Identities", Wide: true, IdentitiesAction: s.base + "/ui/identities"}
	want := c.r.URL.Query().Get("realm")
	realm, found := "/", true
	if want != "" {
		realm, found = c.cfg.lookupRealm(want)
	}
	paths := make([]string, 0, len(c.cfg.Realms))
	for p, r := range c.cfg.Realms {
		if r.active() {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		v.Realms = append(v.Realms, realmOption{Path: p, Label: realmLabel(p), Selected: found && p == realm})
	}
	status := http.StatusOK
	if !found {
		status = http.StatusNotFound
		v.Alert = fmt.Sprintf("There is no active realm %q. Choose a realm.", want)
	} else {
		v.Listed, v.RealmLabel = true, realmLabel(realm)
		for _, id := range s.listIdentities(realm) {
			v.Identities = append(v.Identities, identityRowOf(id))
		}
	}
	return s.renderPage(c, status, v, x, tok)
}

// identityRowOf is what the identities page shows of an identity: never
// its password or other attributes.
func identityRowOf(x *identity) identityRow {
	row := identityRow{ID: x.ID, ThingType: x.first("thingType"), Status: x.first("inetUserStatus"),
		Created: x.Created.UTC().Format("2006-01-02 15:04 UTC")}
	if row.Status == "" {
		row.Status = "Active"
	}
	for _, text := range x.Attrs["thingKeys"] {
		set, err := parseJWKSet(text)
		if err != nil {
			continue
		}
		for _, k := range set.Keys {
			kid := k.KeyID
			if kid == "" {
				kid = "(no kid)"
			}
			row.Keys = append(row.Keys, kid)
		}
	}
	return row
}

// expiresIn says when a device code expires, for people.
func expiresIn(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "in less than a minute"
	case d < 2*time.Minute:
		return "in about a minute"
	}
	return fmt.Sprintf("in about %d minutes", int((d+30*time.Second)/time.Minute))
}
