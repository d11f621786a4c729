package pages

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"io"
	"net/http"
	"sync"
)

// css is the pages' only style sheet; the CSP allows it by hash.
const css = `:root{--fg:#1c2128;--muted:#57606a;--line:#d0d7de;--bg:#f3f5f7;--card:#fff;--accent:#0a5bb5;--accent-hover:#084a94;--danger:#b42318;--danger-bg:#fef3f2;--ok:#1a7f37;--ok-bg:#eefbf1}
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

// csp is the pages' Content-Security-Policy: nothing but the inline
// style sheet, never framed, forms posted to this origin only.
var csp = func() string {
	h := sha256.Sum256([]byte(css))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(h[:]) +
		"'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
}()

// templates are parsed on the first page, not at init: a program that
// links the local AM and serves no page does not pay for them.
var templates = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("page").Parse(`{{define "page"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Thingway local AM</title>
<style>` + css + `</style></head>
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
})

// View is what a page template renders; Kind picks the page.
type View struct {
	Kind, Title string
	Wide        bool
	Realm       string // realm path
	RealmLabel  string
	// The signed-in user and the sign-out form.
	User, LogoutAction, LogoutCSRF, Here string
	Alert                                string
	AlertOK                              bool
	PageData                             *Data

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
	Realms           []RealmOption
	Listed           bool
	Identities       []IdentityRow
}

// Data is the object AM embeds in its consent answer; the functional
// tests read "done:" or errorCode: "<code>" from it (am-protocol.md §9.7).
type Data struct {
	ErrorCode, Realm string
}

// RealmOption is a realm of the identities page's realm selector.
type RealmOption struct {
	Path, Label string
	Selected    bool
}

// IdentityRow is an identity of the identities page.
type IdentityRow struct {
	ID, ThingType, Status, Created string
	Keys                           []string
}

// RealmLabel is how the pages name a realm.
func RealmLabel(realm string) string {
	if realm == "/" {
		return "Top Level Realm (/)"
	}
	return realm
}

// SetHeaders sets the headers every page carries: no framing, no
// scripts, no caching, no referrer to other sites (verification URLs carry
// the user code; same-origin keeps the Origin header of form posts).
func SetHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", csp)
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
}

// Render writes the page v describes (its Kind picks the page).
func Render(w io.Writer, v *View) error {
	return templates().ExecuteTemplate(w, "page", v)
}
