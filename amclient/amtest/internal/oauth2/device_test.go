package oauth2

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
)

// User codes are compared without regard to case or the separators
// people type (RFC 8628 §6.1).
func TestCanonicalUserCode(t *testing.T) {
	for in, want := range map[string]string{
		"ABCDEFGH":    "ABCDEFGH",
		"abcd-efgh":   "ABCDEFGH",
		" AbCd\tefGH": "ABCDEFGH",
		"wxyz 2345":   "WXYZ2345",
		"":            "",
	} {
		if got := CanonicalUserCode(in); got != want {
			t.Errorf("CanonicalUserCode(%q) = %q, want %q", in, got, want)
		}
	}
}

// A user code is 8 characters of an alphabet without the ones people
// confuse, each as likely as any other.
func TestUserCode(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	count := map[rune]int{}
	for _, r := range userCode(all) {
		count[r]++
	}
	if len(count) != 32 {
		t.Errorf("%d characters, want 32", len(count))
	}
	for r, n := range count {
		if n != 8 || strings.ContainsRune("01IO", r) || CanonicalUserCode(string(r)) != string(r) {
			t.Errorf("character %q: %d times of 256", r, n)
		}
	}
	if c := newUserCode(); len(c) != 8 || strings.Trim(c, userCodeAlphabet) != "" {
		t.Errorf("user code %q", c)
	}
}

// The last polls: a poll within the interval after the one before is too
// soon; polls an hour old are forgotten.
func TestPolls(t *testing.T) {
	var p Polls
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if p.poll("h", t0, 5*time.Second) {
		t.Error("the first poll was too soon")
	}
	if !p.poll("h", t0.Add(4*time.Second), 5*time.Second) {
		t.Error("a poll 4 s after the one before was not too soon")
	}
	if p.poll("h", t0.Add(9*time.Second), 5*time.Second) || p.poll("other", t0.Add(9*time.Second), 5*time.Second) {
		t.Error("a poll 5 s after the one before, or of another code, was too soon")
	}
	p.Sweep(t0.Add(9*time.Second + time.Hour - 1))
	if len(p.last) != 2 {
		t.Errorf("swept polls younger than an hour: %v", p.last)
	}
	p.Sweep(t0.Add(9*time.Second + time.Hour))
	if len(p.last) != 0 {
		t.Errorf("kept polls an hour old: %v", p.last)
	}
}

// startDevice starts a device authorization for thing and returns its
// device code and user code.
func (f *fixture) startDevice(thing string) (string, string) {
	f.t.Helper()
	resp, err := f.env().StartDevice(&identities.Identity{ID: thing}, []string{"publish", "subscribe"})
	if err != nil {
		f.t.Fatal(err)
	}
	uc := resp["user_code"].(string)
	if keys(resp) != "device_code expires_in interval user_code verification_uri verification_uri_complete" ||
		resp["verification_uri"] != issuer+"/device/user" || resp["verification_uri_complete"] != issuer+"/device/user?user_code="+uc ||
		resp["expires_in"] != int64(300) || resp["interval"] != int64(5) || len(uc) != 8 {
		f.t.Fatalf("device authorization = %v", resp)
	}
	return resp["device_code"].(string), uc
}

// decide finds the user code as a person types it and decides.
func (f *fixture) decide(userCode string, allow bool) error {
	f.t.Helper()
	typed := strings.ToLower(userCode[:4]) + "-" + strings.ToLower(userCode[4:])
	h, d, err := f.env().PendingUserCode(typed)
	if err != nil {
		return err
	}
	if d.Thing != "thing" || d.ClientID != "thing-client" || d.UserCode != userCode {
		f.t.Errorf("pending device authorization = %+v", d)
	}
	return f.env().Decide(h, allow, "bjensen")
}

// The device grant's state machine, at a clock the test moves: pending,
// slow_down within the interval, approved once, exchanged for the user's
// tokens once.
func TestDeviceGrantAllow(t *testing.T) {
	f := newFixture(t)
	code, uc := f.startDevice("thing")
	poll := func(thing string) (map[string]any, error) {
		return f.env().PollDevice(&identities.Identity{ID: thing}, code)
	}
	_, err := poll("thing")
	wantErr(t, err, 403, "authorization_pending", "The user has not yet completed authorization")
	f.now = f.now.Add(2 * time.Second)
	_, err = poll("thing")
	wantErr(t, err, 403, "slow_down", "The polling interval has not elapsed since the last request")
	f.now = f.now.Add(5 * time.Second)
	_, err = poll("thing")
	wantErr(t, err, 403, "authorization_pending", "The user has not yet completed authorization")

	if err := f.decide(uc, true); err != nil {
		t.Fatal(err)
	}
	// The first decision wins.
	if err := f.decide(uc, false); !errors.Is(err, ErrUsedUserCode) {
		t.Errorf("a second decision: %v", err)
	}
	// Another thing cannot use the code.
	f.now = f.now.Add(5 * time.Second)
	_, err = poll("other")
	wantErr(t, err, 400, "invalid_grant", "The provided device code is invalid")

	f.now = f.now.Add(5 * time.Second)
	tok, err := poll("THING")
	if err != nil || tok["scope"] != "publish subscribe" || tok["refresh_token"] == nil {
		t.Fatalf("user token = %v, %v", tok, err)
	}
	in := f.env().Introspect(f.client("thing-client"), tok["access_token"].(string))
	if in["sub"] != "(usr!bjensen)" || in["scope"] != "publish subscribe" {
		t.Errorf("introspection = %v", in)
	}
	// A device code is good for one token.
	f.now = f.now.Add(5 * time.Second)
	_, err = poll("thing")
	wantErr(t, err, 400, "invalid_grant", "The provided device code is invalid")
	_, err = f.env().PollDevice(&identities.Identity{ID: "thing"}, "not-a-code")
	wantErr(t, err, 400, "invalid_grant", "The provided device code is invalid")
	_, err = f.env().PollDevice(&identities.Identity{ID: "thing"}, "")
	wantErr(t, err, 400, "invalid_request", "Missing parameter: device_code")
}

func TestDeviceGrantRefusals(t *testing.T) {
	t.Run("deny", func(t *testing.T) {
		f := newFixture(t)
		code, uc := f.startDevice("thing")
		if err := f.decide(uc, false); err != nil {
			t.Fatal(err)
		}
		_, err := f.env().PollDevice(&identities.Identity{ID: "thing"}, code)
		wantErr(t, err, 403, "authorization_declined", "The user has declined authorization")
	})
	t.Run("expired", func(t *testing.T) {
		f := newFixture(t)
		code, uc := f.startDevice("thing")
		f.now = f.now.Add(300 * time.Second)
		_, err := f.env().PollDevice(&identities.Identity{ID: "thing"}, code)
		wantErr(t, err, 403, "expired_token", "The device code has expired")
		if err := f.decide(uc, true); !errors.Is(err, ErrExpiredUserCode) {
			t.Errorf("deciding on an expired code: %v", err)
		}
		// Its records are kept an hour past its expiry: a late poll is
		// still told expired_token.
		f.now = f.now.Add(59 * time.Minute)
		_, err = f.env().PollDevice(&identities.Identity{ID: "thing"}, code)
		wantErr(t, err, 403, "expired_token", "The device code has expired")
		if d := (&DeviceCode{Expires: f.now}); !d.KeepUntil().Equal(f.now.Add(time.Hour)) {
			t.Errorf("KeepUntil = %v", d.KeepUntil())
		}
	})
	t.Run("another realm", func(t *testing.T) {
		f := newFixture(t)
		code, uc := f.startDevice("thing")
		e := f.env()
		e.Realm = "/other"
		if _, _, err := e.PendingUserCode(uc); !errors.Is(err, ErrUnknownUserCode) {
			t.Errorf("another realm's user code: %v", err)
		}
		_, err := e.PollDevice(&identities.Identity{ID: "thing"}, code)
		wantErr(t, err, 400, "invalid_grant", "The provided device code is invalid")
		if _, _, err := f.env().PendingUserCode("NOPE2345"); !errors.Is(err, ErrUnknownUserCode) {
			t.Errorf("an unknown user code: %v", err)
		}
	})
	t.Run("gone", func(t *testing.T) {
		f := newFixture(t)
		if err := f.env().Decide("no-such-code", true, "bjensen"); !errors.Is(err, ErrUsedUserCode) {
			t.Errorf("deciding on a code that is gone: %v", err)
		}
	})
	t.Run("client", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.env().StartDevice(&identities.Identity{ID: "thing"}, []string{"delete"})
		wantErr(t, err, 400, "invalid_scope", "Unknown/invalid scope(s): [delete]")
		f.rc.OAuth2Clients["thing-client"].GrantTypes = []string{config.GrantJWTBearer}
		_, err = f.env().StartDevice(&identities.Identity{ID: "thing"}, []string{"publish"})
		wantErr(t, err, 400, "unauthorized_client", "Client is not authorised to use the device code grant")
	})
}
