package amtest

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/pages"
)

const kindDevice = "device"

// deviceCode is an RFC 8628 device authorization started by a thing.
type deviceCode struct {
	Realm    string    `json:"realm"`
	Issuer   string    `json:"iss"`
	ClientID string    `json:"client"`
	Thing    string    `json:"thing"`
	Scopes   []string  `json:"scopes"`
	UserCode string    `json:"userCode"`
	Expires  time.Time `json:"expires"`
	Interval int64     `json:"interval"`
	// Status is pending, approved, denied or used.
	Status  string `json:"status"`
	Subject string `json:"subject,omitempty"` // the approving user

	lastPoll time.Time
}

const (
	devicePending  = "pending"
	deviceApproved = "approved"
	deviceDenied   = "denied"
	deviceUsed     = "used"
)

// userCodeAlphabet avoids characters people confuse (0/O, 1/I): upper case
// only, 32 characters, so that 8 of them carry 40 bits and the code can
// be compared without regard to case (RFC 8628 §6.1).
const userCodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

func newUserCode() string {
	b := randomBytes(8)
	for i := range b {
		b[i] = userCodeAlphabet[int(b[i])%len(userCodeAlphabet)]
	}
	return string(b)
}

// canonicalUserCode is the form user codes are looked up by: as RFC 8628
// §6.1 advises, case and the separators people type ("ABCD-EFGH",
// "abcd efgh") do not matter.
func canonicalUserCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ', '\t':
			return -1
		}
		return unicode.ToUpper(r)
	}, code)
}

// putDevice stores a new device authorization and its user code.
func (s *Server) putDevice(h string, d *deviceCode) error {
	return storeErr(s.db.Update(func(tx storeTx) error {
		exp := expiryOf(kindDevice, d)
		hh := h
		if err := tx.Put(kindDevice, h, d, exp); err != nil {
			return err
		}
		return tx.Put(kindUserCode, canonicalUserCode(d.UserCode), &hh, exp)
	}))
}

// changeDevice reads and changes a device authorization in one
// transaction: f returns an error to change nothing. It returns what was
// stored.
func (s *Server) changeDevice(h string, f func(d *deviceCode) error) (*deviceCode, error) {
	var out *deviceCode
	var ferr error
	err := s.db.Update(func(tx storeTx) error {
		out, ferr = nil, nil
		var d deviceCode
		found, err := tx.Get(kindDevice, h, &d)
		if err != nil {
			return err
		}
		if !found {
			return errDeviceGone
		}
		if ferr = f(&d); ferr != nil {
			return ferr
		}
		out = &d
		return tx.Put(kindDevice, h, &d, expiryOf(kindDevice, &d))
	})
	if err != nil && (err == ferr || errors.Is(err, errDeviceGone)) {
		return nil, err // f's answer, not a failure of the store
	}
	return out, storeErr(err)
}

// errDeviceGone: the device authorization no longer exists (expired and
// swept, or its realm deleted).
var errDeviceGone = errors.New("amtest: device code gone")

// errDecided: another decision on the code came first.
var errDecided = errors.New("amtest: device code decided")

// thingUserCode serves get_user_code: a device authorization for the
// thing's client, which a person approves at verification_uri.
func (s *Server) thingUserCode(c *reqCtx, thing *identity, payload []byte) error {
	var req struct {
		Scope []string `json:"scope"`
	}
	if err := c.decodeJSON(payload, &req); err != nil {
		return err
	}
	oc, err := s.oauthFor(c, thingClient(c, thing))
	if err != nil {
		return err
	}
	if !slices.Contains(oc.client.GrantTypes, GrantDeviceCode) {
		return crest.OAuthErr(http.StatusBadRequest, "unauthorized_client", "Client is not authorised to use the device code grant")
	}
	scopes, err := validateScopes(req.Scope, oc.client)
	if err != nil {
		return err
	}
	p := oc.provider.Device
	life := time.Duration(p.DeviceCodeLifetime) * time.Second
	if life <= 0 {
		life = 300 * time.Second
	}
	interval := p.DevicePollInterval
	if interval <= 0 {
		interval = 5
	}
	code := randomID(32)
	d := &deviceCode{Realm: c.realm, Issuer: c.issuer(), ClientID: oc.clientID, Thing: thing.ID, Scopes: scopes,
		UserCode: newUserCode(), Expires: c.now.Add(life), Interval: interval, Status: devicePending}
	if err := s.putDevice(hashToken(code), d); err != nil {
		return err
	}
	uri := c.issuer() + "/device/user"
	crest.WriteJSON(c.w, http.StatusOK, map[string]any{
		"device_code": code, "user_code": d.UserCode, "verification_uri": uri,
		"verification_uri_complete": uri + "?user_code=" + d.UserCode,
		"expires_in":                int64(life / time.Second), "interval": interval,
	})
	return nil
}

// thingUserToken serves get_user_token: one poll of the device code.
func (s *Server) thingUserToken(c *reqCtx, thing *identity, payload []byte) error {
	var req struct {
		DeviceCode string `json:"device_code"`
	}
	if err := c.decodeJSON(payload, &req); err != nil {
		return err
	}
	if req.DeviceCode == "" {
		return crest.OAuthErr(http.StatusBadRequest, "invalid_request", "Missing parameter: device_code")
	}
	h := hashToken(req.DeviceCode)
	var d deviceCode
	found := s.get(kindDevice, h, &d)
	var slow bool
	if found {
		s.st.mu.Lock()
		last := s.st.lastPoll[h]
		slow = !last.IsZero() && c.now.Sub(last) < time.Duration(d.Interval)*time.Second
		s.st.lastPoll[h] = c.now
		s.st.mu.Unlock()
	}
	if !found || d.Realm != c.realm || !strings.EqualFold(d.Thing, thing.ID) || d.Status == deviceUsed {
		return crest.OAuthErr(http.StatusBadRequest, "invalid_grant", "The provided device code is invalid")
	}
	if !c.now.Before(d.Expires) {
		return crest.OAuthErr(http.StatusForbidden, "expired_token", "The device code has expired")
	}
	switch d.Status {
	case devicePending:
		if slow {
			return crest.OAuthErr(http.StatusForbidden, "slow_down", "The polling interval has not elapsed since the last request")
		}
		return crest.OAuthErr(http.StatusForbidden, "authorization_pending", "The user has not yet completed authorization")
	case deviceDenied:
		return crest.OAuthErr(http.StatusForbidden, "authorization_declined", "The user has declined authorization")
	}
	oc, err := s.oauthFor(c, d.ClientID)
	if err != nil {
		return err
	}
	// Only one poll uses an approved code: the check and the change are
	// one transaction.
	if _, err := s.changeDevice(h, func(cur *deviceCode) error {
		if cur.Status != deviceApproved {
			return crest.OAuthErr(http.StatusBadRequest, "invalid_grant", "The provided device code is invalid")
		}
		cur.Status = deviceUsed
		return nil
	}); err != nil {
		if errors.Is(err, errDeviceGone) {
			return crest.OAuthErr(http.StatusBadRequest, "invalid_grant", "The provided device code is invalid")
		}
		return err
	}
	g := &grant{ID: randomID(20), Realm: c.realm, Issuer: d.Issuer, ClientID: d.ClientID, Subject: d.Subject,
		Thing: thing.ID, Scopes: d.Scopes, AuthTime: c.now,
		Expires: c.now.Add(lifetime(oc.client.AccessTokenLifetime, oc.provider.Core.AccessTokenLifetime))}
	resp, err := s.issue(c, oc, g, d.Scopes, true, true)
	if err != nil {
		return err
	}
	crest.WriteJSON(c.w, http.StatusOK, resp)
	return nil
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

// lookupUserCode finds the device authorization of a user code.
func (s *Server) lookupUserCode(code string) (string, deviceCode, bool) {
	var h string
	var d deviceCode
	var ok bool
	s.db.View(func(tx storeTx) error {
		found, err := tx.Get(kindUserCode, canonicalUserCode(code), &h)
		if err != nil || !found {
			return err
		}
		ok, err = tx.Get(kindDevice, h, &d)
		return err
	})
	if !ok {
		return "", deviceCode{}, false
	}
	return h, d, true
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
	_, d, found := s.lookupUserCode(code)
	switch {
	case !found || d.Realm != c.realm:
		return codeForm("That code is not valid. Check the code that your device shows and try again.", "invalid_user_code")
	case !c.now.Before(d.Expires):
		return s.renderPage(c, http.StatusOK, &pages.View{Kind: "message", Title: "Code expired", Heading: "This code has expired",
			Lines: []string{"Start again on your device to get a new code."}, Again: verifyURL(c, ""), AgainText: "Enter another code",
			PageData: &pages.Data{ErrorCode: "expired_token", Realm: c.realm}}, user, tok)
	case d.Status != devicePending:
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
	dh, d, found := s.lookupUserCode(strings.TrimSpace(f.Get("user_code")))
	switch {
	case !found || d.Realm != c.realm:
		return render("Code not valid", "That code is not valid.", "invalid_user_code", true)
	case !c.now.Before(d.Expires):
		return render("Code expired", "That code has expired. Start again on your device to get a new code.", "expired_token", true)
	case d.Status != devicePending:
		return render("Code already used", "That code has already been used.", "invalid_user_code", true)
	}
	d.Status, d.Subject = deviceDenied, user.UID
	v := &pages.View{Kind: "message", Title: "Access denied", Heading: "Access denied",
		Lines:    []string{"The device " + d.Thing + " was denied access. You can close this page."},
		PageData: &pages.Data{Realm: c.realm}}
	if decision == "allow" {
		d.Status = deviceApproved
		v.Title, v.Heading = "Device connected", "Device connected"
		v.Alert, v.AlertOK = "The device "+d.Thing+" is now authorized.", true
		v.Lines = []string{"You can close this page."}
	}
	// Decisions on one code are checked and made in one transaction: the
	// first one wins.
	status, subject := d.Status, d.Subject
	if _, err := s.changeDevice(dh, func(cur *deviceCode) error {
		if cur.Status != devicePending {
			return errDecided
		}
		cur.Status, cur.Subject = status, subject
		return nil
	}); errors.Is(err, errDecided) || errors.Is(err, errDeviceGone) {
		return render("Code already used", "That code has already been used.", "invalid_user_code", true)
	} else if err != nil {
		return err
	}
	s.log.LogAttrs(c.r.Context(), slog.LevelInfo, "device decision", slog.String("realm", c.realm), slog.String("user", user.UID),
		slog.String("thing", d.Thing), slog.String("decision", decision))
	return s.renderPage(c, http.StatusOK, v, user, tok)
}
