package oauth2

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// The store kinds of the device grant: a device code's record keyed by
// the SHA-256 of the device code ([tokens.Hash]), and a user code's,
// keyed by its canonical form, whose value is that key.
const (
	KindDevice   = "device"
	KindUserCode = "usercode"
)

// DeviceCode is an RFC 8628 device authorization started by a thing.
type DeviceCode struct {
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
}

const (
	devicePending  = "pending"
	deviceApproved = "approved"
	deviceDenied   = "denied"
	deviceUsed     = "used"
)

// KeepUntil is when the store deletes the records of d: an hour past its
// expiry, so that a late poll is told expired_token rather than
// invalid_grant.
func (d *DeviceCode) KeepUntil() time.Time { return d.Expires.Add(time.Hour) }

// userCodeAlphabet avoids characters people confuse (0/O, 1/I): upper case
// only, 32 characters, so that 8 of them carry 40 bits and the code can
// be compared without regard to case (RFC 8628 §6.1).
const userCodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

func newUserCode() string { return userCode(tokens.RandomBytes(8)) }

// userCode maps random bytes to user code characters, one each (256 is a
// multiple of 32: none is likelier than another).
func userCode(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = userCodeAlphabet[int(c)%len(userCodeAlphabet)]
	}
	return string(out)
}

// CanonicalUserCode is the form user codes are looked up by: as RFC 8628
// §6.1 advises, case and the separators people type ("ABCD-EFGH",
// "abcd efgh") do not matter.
func CanonicalUserCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ', '\t':
			return -1
		}
		return unicode.ToUpper(r)
	}, code)
}

// PutDevice stores a new device authorization under h (the SHA-256 of its
// device code) and its user code.
func PutDevice(db store.Store, h string, d *DeviceCode) error {
	return db.Update(func(tx store.Tx) error {
		exp := d.KeepUntil()
		hh := h
		if err := tx.Put(KindDevice, h, d, exp); err != nil {
			return err
		}
		return tx.Put(KindUserCode, CanonicalUserCode(d.UserCode), &hh, exp)
	})
}

// errDeviceGone: the device authorization no longer exists (expired and
// swept, or its realm deleted).
var errDeviceGone = errors.New("amtest: device code gone")

// changeDevice reads and changes a device authorization in one
// transaction: f returns an error to change nothing, which changeDevice
// returns as it is, as it does errDeviceGone.
func (e *Env) changeDevice(h string, f func(d *DeviceCode) error) error {
	var ferr error
	err := e.DB.Update(func(tx store.Tx) error {
		ferr = nil
		var d DeviceCode
		found, err := tx.Get(KindDevice, h, &d)
		if err != nil {
			return err
		}
		if !found {
			return errDeviceGone
		}
		if ferr = f(&d); ferr != nil {
			return ferr
		}
		return tx.Put(KindDevice, h, &d, d.KeepUntil())
	})
	switch {
	case ferr != nil && errors.Is(err, ferr):
		return ferr // f's answer, not a failure of the store
	case errors.Is(err, errDeviceGone):
		return errDeviceGone
	}
	return err
}

// Polls are the last polls of device codes, in memory only: a poll sooner
// than a code's interval after the one before is told slow_down. The zero
// value is ready to use.
type Polls struct {
	mu   sync.Mutex
	last map[string]time.Time // the SHA-256 of a device code → its last poll
}

// poll records a poll of the device code h at now and reports whether it
// came sooner than interval after the one before.
func (p *Polls) poll(h string, now time.Time, interval time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = map[string]time.Time{}
	}
	last := p.last[h]
	p.last[h] = now
	return !last.IsZero() && now.Sub(last) < interval
}

// Sweep forgets the polls an hour old, which no longer matter.
func (p *Polls) Sweep(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for h, t := range p.last {
		if now.Sub(t) >= time.Hour {
			delete(p.last, h)
		}
	}
}

// StartDevice answers the things endpoint's get_user_code: a device
// authorization for the thing's client, which a person approves at
// verification_uri.
func (e *Env) StartDevice(th *identities.Identity, scope []string) (map[string]any, error) {
	c, err := e.client(e.thingClient(th))
	if err != nil {
		return nil, err
	}
	if !c.allows(config.GrantDeviceCode) {
		return nil, crest.OAuthErr(http.StatusBadRequest, "unauthorized_client", "Client is not authorised to use the device code grant")
	}
	scopes, err := validateScopes(scope, c.Settings)
	if err != nil {
		return nil, err
	}
	p := c.Provider.Device
	life := time.Duration(p.DeviceCodeLifetime) * time.Second
	if life <= 0 {
		life = 300 * time.Second
	}
	interval := p.DevicePollInterval
	if interval <= 0 {
		interval = 5
	}
	code := tokens.RandomID(32)
	d := &DeviceCode{Realm: e.Realm, Issuer: e.Issuer, ClientID: c.ID, Thing: th.ID, Scopes: scopes,
		UserCode: newUserCode(), Expires: e.Now.Add(life), Interval: interval, Status: devicePending}
	if err := PutDevice(e.DB, tokens.Hash(code), d); err != nil {
		return nil, err
	}
	uri := e.Issuer + "/device/user"
	return map[string]any{
		"device_code": code, "user_code": d.UserCode, "verification_uri": uri,
		"verification_uri_complete": uri + "?user_code=" + d.UserCode,
		"expires_in":                int64(life / time.Second), "interval": interval,
	}, nil
}

func invalidDeviceCode() *crest.Error {
	return crest.OAuthErr(http.StatusBadRequest, "invalid_grant", "The provided device code is invalid")
}

// pollAnswer is the answer to a poll of d by thing in realm at now
// (tooSoon: within the interval after the poll before): nil when d is
// approved, to be exchanged for tokens.
func (d *DeviceCode) pollAnswer(realm, thing string, now time.Time, tooSoon bool) error {
	if d.Realm != realm || !strings.EqualFold(d.Thing, thing) || d.Status == deviceUsed {
		return invalidDeviceCode()
	}
	if !now.Before(d.Expires) {
		return crest.OAuthErr(http.StatusForbidden, "expired_token", "The device code has expired")
	}
	switch d.Status {
	case devicePending:
		if tooSoon {
			return crest.OAuthErr(http.StatusForbidden, "slow_down", "The polling interval has not elapsed since the last request")
		}
		return crest.OAuthErr(http.StatusForbidden, "authorization_pending", "The user has not yet completed authorization")
	case deviceDenied:
		return crest.OAuthErr(http.StatusForbidden, "authorization_declined", "The user has declined authorization")
	}
	return nil
}

// PollDevice answers the things endpoint's get_user_token: one poll of
// the device code by the thing that started it. An approved code is
// exchanged for tokens of the approving user once.
func (e *Env) PollDevice(th *identities.Identity, deviceCode string) (map[string]any, error) {
	if deviceCode == "" {
		return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_request", "Missing parameter: device_code")
	}
	h := tokens.Hash(deviceCode)
	var d DeviceCode
	if !e.Get(KindDevice, h, &d) {
		return nil, invalidDeviceCode()
	}
	tooSoon := e.Polls.poll(h, e.Now, time.Duration(d.Interval)*time.Second)
	if err := d.pollAnswer(e.Realm, th.ID, e.Now, tooSoon); err != nil {
		return nil, err
	}
	c, err := e.client(d.ClientID)
	if err != nil {
		return nil, err
	}
	// Only one poll uses an approved code: the check and the change are
	// one transaction.
	if err := e.changeDevice(h, func(cur *DeviceCode) error {
		if cur.Status != deviceApproved {
			return invalidDeviceCode()
		}
		cur.Status = deviceUsed
		return nil
	}); err != nil {
		if errors.Is(err, errDeviceGone) {
			return nil, invalidDeviceCode()
		}
		return nil, err
	}
	return e.issue(c, e.newGrant(c, d.Issuer, d.Subject, th.ID, d.Scopes), d.Scopes, true, true)
}

// What a person's user code can be refused for, on the verification
// pages.
var (
	// ErrUnknownUserCode: no such code in the realm.
	ErrUnknownUserCode = errors.New("amtest: user code not valid")
	// ErrExpiredUserCode: the code has expired.
	ErrExpiredUserCode = errors.New("amtest: user code expired")
	// ErrUsedUserCode: the code has been decided on (approved, denied or
	// exchanged), or is gone.
	ErrUsedUserCode = errors.New("amtest: user code already used")
)

// PendingUserCode finds the device authorization of a user code that a
// person typed, waiting for a decision: it returns its key for
// [Env.Decide], or why there is none to decide on.
func (e *Env) PendingUserCode(code string) (string, *DeviceCode, error) {
	var h string
	var d DeviceCode
	var ok bool
	e.DB.View(func(tx store.Tx) error {
		found, err := tx.Get(KindUserCode, CanonicalUserCode(code), &h)
		if err != nil || !found {
			return err
		}
		ok, err = tx.Get(KindDevice, h, &d)
		return err
	})
	switch {
	case !ok || d.Realm != e.Realm:
		return "", nil, ErrUnknownUserCode
	case !e.Now.Before(d.Expires):
		return "", nil, ErrExpiredUserCode
	case d.Status != devicePending:
		return "", nil, ErrUsedUserCode
	}
	return h, &d, nil
}

// Decide records a person's decision (subject, their identity's ID) on
// the pending device authorization h: the first decision on a code wins,
// a later one is ErrUsedUserCode.
func (e *Env) Decide(h string, allow bool, subject string) error {
	status := deviceDenied
	if allow {
		status = deviceApproved
	}
	// Decisions on one code are checked and made in one transaction.
	err := e.changeDevice(h, func(cur *DeviceCode) error {
		if cur.Status != devicePending {
			return ErrUsedUserCode
		}
		cur.Status, cur.Subject = status, subject
		return nil
	})
	if errors.Is(err, errDeviceGone) {
		return ErrUsedUserCode
	}
	return err
}
