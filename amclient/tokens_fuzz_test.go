package amclient

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// wantSeconds is a JSON number of seconds as an int64: an integer as it
// is, any other number truncated toward zero and saturated beyond int64's
// range.
func wantSeconds(n json.Number) int64 {
	if n == "" {
		return 0
	}
	if i, err := n.Int64(); err == nil {
		return i
	}
	f, _ := n.Float64()
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

// FuzzTokenAnswers decodes arbitrary token responses, device
// authorizations and error bodies as the client reads AM's answers, and
// checks what they say: the fields as AM sent them, lifetimes and
// intervals as the number AM sent (truncated, saturated beyond int64's
// range, never changed in sign), the scopes as the space-separated list;
// an error's CREST fields, its message (or error_description), its
// detail unless null, and OAuthError as detail.error, else error.
func FuzzTokenAnswers(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"eyJ0eXAiOiJKV1Qi.e30.sig","refresh_token":"r","scope":"publish subscribe","token_type":"Bearer","expires_in":3599}`,
		// Regressions: these became -9223372036854775808, and -1e400 was
		// refused.
		`{"access_token":"a","expires_in":1e30}`,
		`{"access_token":"a","expires_in":-1e400}`,
		`{"access_token":"a","expires_in":-1e30}`,
		`{"access_token":"a","expires_in":9223372036854775808}`,
		`{"access_token":"a","expires_in":3599.9}`,
		`{"access_token":"a","expires_in":"3599"}`,
		`{"device_code":"d","user_code":"ABCD-EFGH","verification_uri":"http://am/device","expires_in":300,"interval":5}`,
		`{"device_code":"d","interval":1e19}`,
		`{"code":400,"reason":"Bad Request","message":"m","detail":{"error":"authorization_pending","error_description":"x"}}`,
		`{"code":401,"detail":null,"error":"invalid_client"}`,
		`{"error":"invalid_scope","error_description":"Unknown/invalid scope(s)"}`,
		`null`, ``, `[`,
	} {
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		var tr struct {
			AccessToken  string      `json:"access_token"`
			RefreshToken string      `json:"refresh_token"`
			Scope        string      `json:"scope"`
			TokenType    string      `json:"token_type"`
			ExpiresIn    json.Number `json:"expires_in"`
		}
		trErr := json.Unmarshal(body, &tr)
		var tok TokenResponse
		if err := json.Unmarshal(body, &tok); (err == nil) != (trErr == nil) {
			t.Fatalf("TokenResponse: %v; as plain JSON: %v", err, trErr)
		} else if err == nil {
			if tok.AccessToken != tr.AccessToken || tok.RefreshToken != tr.RefreshToken || tok.TokenType != tr.TokenType ||
				strings.Join(tok.Scopes(), " ") != strings.Join(strings.Fields(tr.Scope), " ") {
				t.Fatalf("token %+v from %q", tok, body)
			}
			if want := wantSeconds(tr.ExpiresIn); tok.ExpiresIn != want {
				t.Fatalf("ExpiresIn %d from expires_in %s, want %d", tok.ExpiresIn, tr.ExpiresIn, want)
			}
		}
		var da struct {
			DeviceCode      string      `json:"device_code"`
			UserCode        string      `json:"user_code"`
			VerificationURI string      `json:"verification_uri"`
			ExpiresIn       json.Number `json:"expires_in"`
			Interval        json.Number `json:"interval"`
		}
		daErr := json.Unmarshal(body, &da)
		var d DeviceAuthorization
		if err := json.Unmarshal(body, &d); (err == nil) != (daErr == nil) {
			t.Fatalf("DeviceAuthorization: %v; as plain JSON: %v", err, daErr)
		} else if err == nil {
			if d.DeviceCode != da.DeviceCode || d.UserCode != da.UserCode || d.VerificationURI != da.VerificationURI {
				t.Fatalf("device authorization %+v from %q", d, body)
			}
			if d.ExpiresIn != wantSeconds(da.ExpiresIn) || d.Interval != wantSeconds(da.Interval) {
				t.Fatalf("ExpiresIn %d, Interval %d from %s, %s", d.ExpiresIn, d.Interval, da.ExpiresIn, da.Interval)
			}
		}

		e := newError(status, body)
		if e.StatusCode != status || string(e.Body) != string(body) {
			t.Fatalf("error %+v", e)
		}
		var crest struct {
			Code        int             `json:"code"`
			Reason      string          `json:"reason"`
			Message     string          `json:"message"`
			Detail      json.RawMessage `json:"detail"`
			Error       string          `json:"error"`
			Description string          `json:"error_description"`
		}
		if json.Unmarshal(body, &crest) != nil {
			if e.Code != 0 || e.Reason != "" || e.Message != "" || e.Detail != nil {
				t.Fatalf("error %+v from a body that is no JSON object", e)
			}
			return
		}
		msg := crest.Message
		if msg == "" {
			msg = crest.Description
		}
		if e.Code != crest.Code || e.Reason != crest.Reason || e.Message != msg {
			t.Fatalf("error %+v from %q", e, body)
		}
		if (e.Detail == nil) != (len(crest.Detail) == 0 || string(crest.Detail) == "null") {
			t.Fatalf("detail %q from %q", e.Detail, body)
		}
		var de struct {
			Error string `json:"error"`
		}
		want := crest.Error
		if e.Detail != nil && json.Unmarshal(e.Detail, &de) == nil && de.Error != "" {
			want = de.Error
		}
		if got := e.OAuthError(); got != want {
			t.Fatalf("OAuthError %q from %q, want %q", got, body, want)
		}
	})
}
