package amtest

import (
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"
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

// userCodeAlphabet avoids characters people confuse (0/O, 1/l/I).
const userCodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"

func newUserCode() string {
	b := randomBytes(8)
	for i := range b {
		b[i] = userCodeAlphabet[int(b[i])%len(userCodeAlphabet)]
	}
	return string(b)
}

func (s *Server) putDevice(h string, d *deviceCode) error {
	if err := s.j.put(kindDevice, h, d); err != nil {
		return err
	}
	s.st.mu.Lock()
	c := *d
	if old := s.st.devices[h]; old != nil {
		c.lastPoll = old.lastPoll
	}
	s.st.devices[h] = &c
	s.st.userCodes[d.UserCode] = h
	s.st.mu.Unlock()
	return nil
}

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
		return oauthErr(http.StatusBadRequest, "unauthorized_client", "Client is not authorised to use the device code grant")
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
	writeJSON(c.w, http.StatusOK, map[string]any{
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
		return oauthErr(http.StatusBadRequest, "invalid_request", "Missing parameter: device_code")
	}
	h := hashToken(req.DeviceCode)
	s.st.mu.Lock()
	dp := s.st.devices[h]
	var d deviceCode
	var slow bool
	if dp != nil {
		slow = !dp.lastPoll.IsZero() && c.now.Sub(dp.lastPoll) < time.Duration(dp.Interval)*time.Second
		dp.lastPoll = c.now
		d = *dp
	}
	s.st.mu.Unlock()
	if dp == nil || d.Realm != c.realm || !strings.EqualFold(d.Thing, thing.ID) || d.Status == deviceUsed {
		return oauthErr(http.StatusBadRequest, "invalid_grant", "The provided device code is invalid")
	}
	if !c.now.Before(d.Expires) {
		return oauthErr(http.StatusForbidden, "expired_token", "The device code has expired")
	}
	switch d.Status {
	case devicePending:
		if slow {
			return oauthErr(http.StatusForbidden, "slow_down", "The polling interval has not elapsed since the last request")
		}
		return oauthErr(http.StatusForbidden, "authorization_pending", "The user has not yet completed authorization")
	case deviceDenied:
		return oauthErr(http.StatusForbidden, "authorization_declined", "The user has declined authorization")
	}
	oc, err := s.oauthFor(c, d.ClientID)
	if err != nil {
		return err
	}
	d.Status = deviceUsed
	if err := s.putDevice(h, &d); err != nil {
		return err
	}
	g := &grant{ID: randomID(20), Realm: c.realm, Issuer: d.Issuer, ClientID: d.ClientID, Subject: d.Subject,
		Thing: thing.ID, Scopes: d.Scopes, AuthTime: c.now,
		Expires: c.now.Add(lifetime(oc.client.AccessTokenLifetime, oc.provider.Core.AccessTokenLifetime))}
	if err := s.putGrant(g); err != nil {
		return err
	}
	resp, err := s.issue(c, oc, g, d.Scopes, true)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, resp)
	return nil
}

// consentPage is the answer to a consent decision. As in AM, the page
// carries a pageData object: "done" on success, "errorCode" on failure.
var consentPage = template.Must(template.New("consent").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Device authorization</title></head>
<body><main><h1>Device authorization</h1><p>{{.Message}}</p></main>
<script>var pageData = { {{if .ErrorCode}}errorCode: "{{.ErrorCode}}"{{else}}done: true{{end}}, realm: "{{.Realm}}" };</script>
</body></html>
`))

type consentResult struct {
	Message, ErrorCode, Realm string
}

// handleDeviceUser serves the verification URI. A POST with the user's SSO
// cookie, user_code, decision (allow or deny) and csrf (the SSO token)
// records the decision.
func (s *Server) handleDeviceUser(c *reqCtx) error {
	h := c.w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	render := func(status int, r consentResult) error {
		r.Realm = c.realm
		h.Set("Content-Type", "text/html; charset=utf-8")
		c.w.WriteHeader(status)
		return consentPage.Execute(c.w, r)
	}
	if c.r.Method != http.MethodPost {
		return render(http.StatusNotImplemented, consentResult{Message: "The sign-in and consent pages of the local AM are not available yet; post the decision with an SSO session.", ErrorCode: "not_implemented"})
	}
	c.r.Body = http.MaxBytesReader(c.w, c.r.Body, s.maxBody())
	if err := c.r.ParseForm(); err != nil {
		return render(http.StatusBadRequest, consentResult{Message: "The form could not be read.", ErrorCode: "invalid_request"})
	}
	f := c.r.PostForm
	tok := c.ssoToken()
	user, ok := s.liveSession(tok, c.now)
	if !ok || user.Realm != c.realm {
		return render(http.StatusOK, consentResult{Message: "Sign in first.", ErrorCode: "not_authenticated"})
	}
	if !constantTimeEqual(f.Get("csrf"), tok) {
		return render(http.StatusOK, consentResult{Message: "The request could not be verified.", ErrorCode: "invalid_csrf"})
	}
	decision := f.Get("decision")
	if decision != "allow" && decision != "deny" {
		return render(http.StatusOK, consentResult{Message: "Choose Allow or Deny.", ErrorCode: "invalid_decision"})
	}
	s.st.mu.Lock()
	dh, found := s.st.userCodes[strings.TrimSpace(f.Get("user_code"))]
	var d deviceCode
	if found && s.st.devices[dh] != nil {
		d = *s.st.devices[dh]
	} else {
		found = false
	}
	s.st.mu.Unlock()
	switch {
	case !found || d.Realm != c.realm:
		return render(http.StatusOK, consentResult{Message: "That code is not valid.", ErrorCode: "invalid_user_code"})
	case !c.now.Before(d.Expires):
		return render(http.StatusOK, consentResult{Message: "That code has expired.", ErrorCode: "expired_token"})
	case d.Status != devicePending:
		return render(http.StatusOK, consentResult{Message: "That code has already been used.", ErrorCode: "invalid_user_code"})
	}
	d.Status, d.Subject = deviceDenied, user.UID
	msg := "The device was denied access."
	if decision == "allow" {
		d.Status, msg = deviceApproved, "The device is now authorized. You can close this page."
	}
	if err := s.putDevice(dh, &d); err != nil {
		return err
	}
	return render(http.StatusOK, consentResult{Message: msg})
}
