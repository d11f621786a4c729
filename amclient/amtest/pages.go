package amtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
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

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/pages"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
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

// renderPage writes a page. A signed-in user gets the sign-out form.
func (s *Server) renderPage(c *reqCtx, status int, v *pages.View, user *session, tok string) error {
	if v.Realm == "" {
		v.Realm = c.realm
	}
	if v.RealmLabel == "" {
		v.RealmLabel = pages.RealmLabel(v.Realm)
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
	pages.SetHeaders(c.w.Header())
	c.w.WriteHeader(status)
	if c.r.Method == http.MethodHead {
		return nil
	}
	return pages.Render(c.w, v)
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
	return identities.ConstantTimeEqual(got, s.csrfFor(tok)) || identities.ConstantTimeEqual(got, tok)
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
		if id == nil || id.First("thingType") != "" {
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
	v := tokens.RandomID(32)
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
	v := &pages.View{Kind: "signin", Title: "Sign in", Realm: realm, Purpose: purpose, Username: username, Alert: alert,
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
	return s.renderPage(c, http.StatusNotFound, &pages.View{Kind: "message", Title: "Not found", Heading: "Page not found",
		Lines: []string{"There is no page at this address."}}, nil, "")
}

func (s *Server) methodNotAllowed(c *reqCtx, allow string) error {
	c.w.Header().Set("Allow", allow)
	return s.renderPage(c, http.StatusMethodNotAllowed, &pages.View{Kind: "message", Title: "Method not allowed",
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
var dummyPasswordHash = sync.OnceValue(func() string { return identities.HashPassword("thingway dummy password") })

// handleLoginPage serves /ui/login: GET shows the form (realm and goto from
// the query), POST checks the password and starts an SSO session.
func (s *Server) handleLoginPage(c *reqCtx) error {
	switch c.r.Method {
	case http.MethodGet, http.MethodHead:
		q := c.r.URL.Query()
		realm, ok := lookupRealm(c.cfg, q.Get("realm"))
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
	realm, ok := lookupRealm(c.cfg, f.Get("realm"))
	if !ok {
		return s.unknownRealmPage(c, f.Get("realm"))
	}
	next := s.safeGoto(f.Get("goto"), s.defaultGoto(realm))
	purpose := "Sign in with your user name and password."
	user := strings.TrimSpace(f.Get("username"))
	ck, err := c.r.Cookie(signinCookie)
	if err != nil || !sameOrigin(c.r) || !identities.ConstantTimeEqual(ck.Value, f.Get("csrf")) {
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
	if realm == "/" && strings.EqualFold(id, c.cfg.AdminUser) {
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
	if cfg := s.config(); realm == "/" && strings.EqualFold(user, cfg.AdminUser) {
		return cfg.AdminUser, s.checkPassword(realm, user, password)
	}
	x := s.getIdentity(realm, user)
	if x == nil || x.PasswordHash == "" {
		identities.CheckPasswordHash(dummyPasswordHash(), password)
		return "", false
	}
	if !x.CheckPassword(password) || x.First("thingType") != "" {
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
		return s.renderPage(c, http.StatusBadRequest, &pages.View{Kind: "message", Title: "Sign out", Heading: "Sign out failed",
			Lines: []string{"The form could not be read."}}, nil, "")
	}
	next := s.safeGoto(c.r.PostForm.Get("goto"), s.defaultGoto("/"))
	tok := c.ssoToken()
	if _, live := s.liveSession(tok, c.now); live {
		if !sameOrigin(c.r) || !s.validCSRF(c.r.PostForm.Get("csrf"), tok) {
			return s.renderPage(c, http.StatusForbidden, &pages.View{Kind: "message", Title: "Sign out", Heading: "Sign out refused",
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
	return s.renderPage(c, http.StatusNotFound, &pages.View{Kind: "message", Title: "Unknown realm", Heading: "Unknown realm",
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
		return s.renderPage(c, http.StatusForbidden, &pages.View{Kind: "message", Title: "Identities", Heading: "Administrators only",
			Alert: "Only the administrator can see identities.", Lines: []string{"Sign out, then sign in as " + c.cfg.AdminUser + "."}}, x, tok)
	}
	v := &pages.View{Kind: "identities", Title: "Identities", Wide: true, IdentitiesAction: s.base + "/ui/identities"}
	want := c.r.URL.Query().Get("realm")
	realm, found := "/", true
	if want != "" {
		realm, found = lookupRealm(c.cfg, want)
	}
	paths := make([]string, 0, len(c.cfg.Realms))
	for p, r := range c.cfg.Realms {
		if config.RealmActive(r) {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		v.Realms = append(v.Realms, pages.RealmOption{Path: p, Label: pages.RealmLabel(p), Selected: found && p == realm})
	}
	status := http.StatusOK
	if !found {
		status = http.StatusNotFound
		v.Alert = fmt.Sprintf("There is no active realm %q. Choose a realm.", want)
	} else {
		v.Listed, v.RealmLabel = true, pages.RealmLabel(realm)
		for _, id := range s.listIdentities(realm) {
			v.Identities = append(v.Identities, identityRowOf(id))
		}
	}
	return s.renderPage(c, status, v, x, tok)
}

// identityRowOf is what the identities page shows of an identity: never
// its password or other attributes.
func identityRowOf(x *identity) pages.IdentityRow {
	row := pages.IdentityRow{ID: x.ID, ThingType: x.First("thingType"), Status: x.First("inetUserStatus"),
		Created: x.Created.UTC().Format("2006-01-02 15:04 UTC")}
	if row.Status == "" {
		row.Status = "Active"
	}
	for _, k := range x.ThingKeys() {
		kid := k.KeyID
		if kid == "" {
			kid = "(no kid)"
		}
		row.Keys = append(row.Keys, kid)
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
