package amtest

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/oauth2"
	"github.com/thingway/thingway/amclient/amtest/internal/pages"
)

// The device authorization grant's HTTP side: the things endpoint's
// get_user_code and get_user_token, and the verification pages where a
// person approves or denies a device. The grant's records and rules are
// the OAuth 2.0 room's (amclient/amtest/internal/oauth2).

const (
	kindDevice   = oauth2.KindDevice
	kindUserCode = oauth2.KindUserCode
)

// deviceCode is an RFC 8628 device authorization started by a thing.
type deviceCode = oauth2.DeviceCode

// thingUserCode serves get_user_code: a device authorization for the
// thing's client, which a person approves at verification_uri.
func (s *Server) thingUserCode(c *reqCtx, thing *identity, payload []byte) error {
	var req struct {
		Scope []string `json:"scope"`
	}
	if err := c.decodeJSON(payload, &req); err != nil {
		return err
	}
	resp, err := s.oauth(c).StartDevice(thing, req.Scope)
	return thingAnswer(c, resp, err)
}

// thingUserToken serves get_user_token: one poll of the device code.
func (s *Server) thingUserToken(c *reqCtx, thing *identity, payload []byte) error {
	var req struct {
		DeviceCode string `json:"device_code"`
	}
	if err := c.decodeJSON(payload, &req); err != nil {
		return err
	}
	resp, err := s.oauth(c).PollDevice(thing, req.DeviceCode)
	return thingAnswer(c, resp, err)
}

// handleDeviceUser serves the verification URI. GET, with or without
// user_code, leads a person through the pages: sign-in (without a session in
// the realm), code entry, then the consent screen. A POST with the user's
// SSO cookie, user_code, decision (allow or deny) and csrf (the SSO token,
// or the value the consent form carries) records the decision; as in AM,
// its answer is a page carrying pageData with "done" or "errorCode".
func (s *Server) handleDeviceUser(c *reqCtx) error {
	switch c.r.Method {
	case http.MethodGet, http.MethodHead:
		return s.deviceUserPage(c)
	case http.MethodPost:
		return s.deviceUserDecision(c)
	}
	return s.methodNotAllowed(c, "GET, HEAD, POST")
}

// verifyURL is the verification page's path, with the realm query
// parameter when the request used one.
func verifyURL(c *reqCtx, userCode string) string {
	q := url.Values{}
	if r := c.r.URL.Query().Get("realm"); r != "" {
		q.Set("realm", r)
	}
	if userCode != "" {
		q.Set("user_code", userCode)
	}
	if len(q) == 0 {
		return c.r.URL.EscapedPath()
	}
	return c.r.URL.EscapedPath() + "?" + q.Encode()
}

// deviceUserPage serves GET on the verification URI.
func (s *Server) deviceUserPage(c *reqCtx) error {
	code := strings.TrimSpace(c.r.URL.Query().Get("user_code"))
	user, tok, ok := s.pageSession(c, c.realm)
	if !ok {
		return s.signinPage(c, http.StatusOK, c.realm, c.r.URL.RequestURI(), "Sign in to connect your device.", "", "")
	}
	codeForm := func(alert, errCode string) error {
		v := &pages.View{Kind: "code", Title: "Connect a device", VerifyAction: c.r.URL.EscapedPath(),
			RealmParam: c.r.URL.Query().Get("realm"), UserCode: code, Alert: alert}
		if errCode != "" {
			v.PageData = &pages.Data{ErrorCode: errCode, Realm: c.realm}
		}
		return s.renderPage(c, http.StatusOK, v, user, tok)
	}
	if code == "" {
		return codeForm("", "")
	}
	_, d, err := s.oauth(c).PendingUserCode(code)
	switch {
	case errors.Is(err, oauth2.ErrUnknownUserCode):
		return codeForm("That code is not valid. Check the code that your device shows and try again.", "invalid_user_code")
	case errors.Is(err, oauth2.ErrExpiredUserCode):
		return s.renderPage(c, http.StatusOK, &pages.View{Kind: "message", Title: "Code expired", Heading: "This code has expired",
			Lines: []string{"Start again on your device to get a new code."}, Again: verifyURL(c, ""), AgainText: "Enter another code",
			PageData: &pages.Data{ErrorCode: "expired_token", Realm: c.realm}}, user, tok)
	case err != nil:
		return s.renderPage(c, http.StatusOK, &pages.View{Kind: "message", Title: "Code already used", Heading: "This code has already been used",
			Lines: []string{"Each code can be used once. Start again on your device to get a new code."}, Again: verifyURL(c, ""),
			AgainText: "Enter another code", PageData: &pages.Data{ErrorCode: "invalid_user_code", Realm: c.realm}}, user, tok)
	}
	return s.renderPage(c, http.StatusOK, &pages.View{Kind: "consent", Title: "Allow this device?", Thing: d.Thing, Client: d.ClientID,
		Scopes: d.Scopes, UserCode: d.UserCode, Expires: expiresIn(d.Expires.Sub(c.now)), CSRF: s.csrfFor(tok),
		ConsentAction: verifyURL(c, "")}, user, tok)
}

// deviceUserDecision serves POST on the verification URI: the consent
// decision, as the functional-test harness and the consent form post it.
func (s *Server) deviceUserDecision(c *reqCtx) error {
	var user *session
	var tok string
	render := func(heading, msg, errCode string, again bool) error {
		v := &pages.View{Kind: "message", Title: heading, Heading: heading, Lines: []string{msg},
			PageData: &pages.Data{ErrorCode: errCode, Realm: c.realm}}
		if errCode != "" {
			v.Alert, v.Lines = v.Lines[0], nil
		}
		if again {
			v.Again, v.AgainText = verifyURL(c, ""), "Enter a code"
		}
		return s.renderPage(c, http.StatusOK, v, user, tok)
	}
	if !s.parsePageForm(c) {
		return render("Request not understood", "The form could not be read.", "invalid_request", true)
	}
	f := c.r.PostForm
	var ok bool
	if user, tok, ok = s.pageSession(c, c.realm); !ok {
		user, tok = nil, ""
		return render("Sign in first", "Your session has ended or you are not signed in. Sign in, then enter the code again.", "not_authenticated", true)
	}
	if !sameOrigin(c.r) || !s.validCSRF(f.Get("csrf"), tok) {
		s.log.LogAttrs(c.r.Context(), slog.LevelInfo, "consent refused", slog.String("reason", "csrf"), slog.String("realm", c.realm))
		return render("Request not verified", "The request could not be verified. Go back to the code page and try again.", "invalid_csrf", true)
	}
	decision := f.Get("decision")
	if decision != "allow" && decision != "deny" {
		return render("Choose Allow or Deny", "Choose Allow or Deny.", "invalid_decision", true)
	}
	e := s.oauth(c)
	dh, d, err := e.PendingUserCode(strings.TrimSpace(f.Get("user_code")))
	switch {
	case errors.Is(err, oauth2.ErrUnknownUserCode):
		return render("Code not valid", "That code is not valid.", "invalid_user_code", true)
	case errors.Is(err, oauth2.ErrExpiredUserCode):
		return render("Code expired", "That code has expired. Start again on your device to get a new code.", "expired_token", true)
	case err != nil:
		return render("Code already used", "That code has already been used.", "invalid_user_code", true)
	}
	v := &pages.View{Kind: "message", Title: "Access denied", Heading: "Access denied",
		Lines:    []string{"The device " + d.Thing + " was denied access. You can close this page."},
		PageData: &pages.Data{Realm: c.realm}}
	if decision == "allow" {
		v.Title, v.Heading = "Device connected", "Device connected"
		v.Alert, v.AlertOK = "The device "+d.Thing+" is now authorized.", true
		v.Lines = []string{"You can close this page."}
	}
	// The first decision on a code wins.
	if err := e.Decide(dh, decision == "allow", user.UID); errors.Is(err, oauth2.ErrUsedUserCode) {
		return render("Code already used", "That code has already been used.", "invalid_user_code", true)
	} else if err != nil {
		return err
	}
	s.log.LogAttrs(c.r.Context(), slog.LevelInfo, "device decision", slog.String("realm", c.realm), slog.String("user", user.UID),
		slog.String("thing", d.Thing), slog.String("decision", decision))
	return s.renderPage(c, http.StatusOK, v, user, tok)
}
