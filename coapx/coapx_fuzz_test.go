package coapx_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/internal/jws"
)

// FuzzCSRF feeds arbitrary request bodies to CSRF, the gateway's reading
// of the SSO token in a signed request. A token it finds is the non-empty
// csrf member of the payload of a JWS that internal/jws accepts, whatever
// white space surrounds the body; a body that is not three dot-separated
// parts is ErrNotJWS. And the other way round: whatever token a thing
// puts into a request it signs (callback.SignRequest, as the SDK does),
// CSRF reads back exactly that token.
func FuzzCSRF(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	info := callback.NewAMInfo("http://am.example.com/openam", "/")
	for _, claims := range []map[string]any{
		{"csrf": "AQIC5wM2LY4SfcxZ6Yn9WQsSkDqCEUpUVQBxU6E3S8r4Qz8.*AAJTSQACMDEAAlNLABM1ODk5NTg2NzY4MDMwMzcyNzEzAAJTMQAA*", "scope": []string{"publish"}},
		{"csrf": "tok", "token": "eyJ0eXAiOiJKV1QifQ.e30.sig"},
		{"csrf": ""},
		{"token": "no csrf"},
	} {
		s, err := callback.SignRequest(key, info.AccessTokenURL, info.ThingsVersion, 7, claims)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(s), "")
		f.Add([]byte(" "+s+"\n"), "tok")
	}
	b64 := base64.RawURLEncoding.EncodeToString
	f.Add([]byte(b64([]byte(`{"alg":"ES256"}`))+"."+b64([]byte(`{"csrf":"a","csrf":"b"}`))+".c2ln"), "a")
	f.Add([]byte(b64([]byte(`{"alg":"ES256"}`))+"."+b64([]byte(`{"CSRF":"a"}`))+".c2ln"), "\u00e9\x00")
	f.Add([]byte("a.b.c"), "")
	f.Add([]byte("a.b.c.d"), "")
	f.Add([]byte(`{"token":"x"}`), "")

	f.Fuzz(func(t *testing.T, body []byte, token string) {
		tok, err := coapx.CSRF(body)
		if err == nil {
			c, jerr := jws.Split(string(body))
			if jerr != nil {
				t.Fatalf("token %q from a JWS that internal/jws refuses: %v", tok, jerr)
			}
			var claims struct {
				CSRF *string `json:"csrf"`
			}
			if json.Unmarshal(c.Payload, &claims) != nil || claims.CSRF == nil || *claims.CSRF != tok || tok == "" {
				t.Fatalf("token %q from the payload %s", tok, c.Payload)
			}
		} else if tok != "" {
			t.Fatalf("token %q with error %v", tok, err)
		}
		// ErrNotJWS: not three dot-separated parts of the base64url
		// alphabet (internal/jws refuses anything else in a compact JWS).
		trimmed := strings.TrimSpace(string(body))
		compact := strings.Count(trimmed, ".") == 2 &&
			!strings.ContainsFunc(trimmed, func(r rune) bool {
				return !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", r)
			})
		if errors.Is(err, coapx.ErrNotJWS) != !compact {
			t.Fatalf("ErrNotJWS is %v for %q", errors.Is(err, coapx.ErrNotJWS), body)
		}
		for _, ws := range []string{" ", "\r\n", "\t "} {
			again, err2 := coapx.CSRF([]byte(ws + string(body) + ws))
			if again != tok || (err == nil) != (err2 == nil) {
				t.Fatalf("with white space around it: %q, %v; without: %q, %v", again, err2, tok, err)
			}
		}

		// What a thing signs.
		if token == "" || !utf8.ValidString(token) {
			return
		}
		s, err := callback.SignRequest(key, info.AccessTokenURL, info.ThingsVersion, 1, map[string]any{"csrf": token, "x": string(body)})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := coapx.CSRF([]byte(s)); err != nil || got != token {
			t.Fatalf("CSRF of a signed request with csrf %q: %q, %v", token, got, err)
		}
	})
}

// FuzzRequestBodies decodes arbitrary JSON as the gateway reads the
// bodies of unrestricted requests (ThingsRequest, SessionRequest) and
// checks that what decodes re-encodes to the same values; and that the
// bodies a thing encodes decode, at the gateway, to exactly the token and
// payload it put in.
func FuzzRequestBodies(f *testing.F) {
	f.Add([]byte(`{"token":"AQIC5w...*","payload":"{\"scope\":[\"publish\"]}"}`), "AQIC5w", `{"device_code":"x"}`)
	f.Add([]byte(`{"tokenId":"AQIC5w...*"}`), "t", "")
	f.Add([]byte(`{"token":"a","Token":"b","payload":null}`), "\u2028", "\x7f")
	f.Add([]byte(`{"token":"\ud800","payload":"\u0000"}`), "", "<>&")
	f.Fuzz(func(t *testing.T, b []byte, token, payload string) {
		var tr coapx.ThingsRequest
		if json.Unmarshal(b, &tr) == nil {
			enc, err := json.Marshal(tr)
			if err != nil {
				t.Fatal(err)
			}
			var again coapx.ThingsRequest
			if err := json.Unmarshal(enc, &again); err != nil || again != tr {
				t.Fatalf("ThingsRequest %+v re-encodes to %s, decoding to %+v (%v)", tr, enc, again, err)
			}
		}
		var sr coapx.SessionRequest
		if json.Unmarshal(b, &sr) == nil {
			enc, _ := json.Marshal(sr)
			var again coapx.SessionRequest
			if err := json.Unmarshal(enc, &again); err != nil || again != sr {
				t.Fatalf("SessionRequest %+v re-encodes to %s, decoding to %+v (%v)", sr, enc, again, err)
			}
		}
		if !utf8.ValidString(token) || !utf8.ValidString(payload) {
			return // a thing's tokens and JSON payloads are UTF-8
		}
		enc, err := json.Marshal(coapx.ThingsRequest{Token: token, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		var got coapx.ThingsRequest
		if err := json.Unmarshal(enc, &got); err != nil || got.Token != token || got.Payload != payload {
			t.Fatalf("a thing's %q, %q arrives as %+v (%v)", token, payload, got, err)
		}
		enc, _ = json.Marshal(coapx.SessionRequest{TokenID: token})
		if err := json.Unmarshal(enc, &sr); err != nil || sr.TokenID != token {
			t.Fatalf("a thing's session token %q arrives as %q (%v)", token, sr.TokenID, err)
		}
	})
}

// FuzzStatusCodes maps arbitrary HTTP statuses and CoAP codes (a thing
// reads the code of every gateway answer) through the contract's table:
// a status the table knows comes back from its code, any other is 5.00;
// a code StatusForCode maps back to itself (2.04, 4.02 and 5.05 to
// the code of their status); IsSuccess holds for the 2.xx codes of RFC 7252 and 7959 and
// for no code outside class 2.
func FuzzStatusCodes(f *testing.F) {
	for _, s := range []int{200, 201, 204, 304, 400, 401, 403, 404, 405, 406, 409, 412, 413, 415, 429, 500, 501, 502, 503, 504, 0, -1, 1 << 40} {
		f.Add(s, uint8(0))
	}
	for _, c := range []codes.Code{codes.Changed, codes.Content, codes.Valid, codes.BadOption, codes.ProxyingNotSupported, codes.GET, codes.Empty, codes.Continue, 255} {
		f.Add(0, uint8(c))
	}
	known := map[int]bool{201: true, 204: true, 304: true, 200: true, 400: true, 401: true, 403: true, 404: true, 405: true,
		406: true, 412: true, 413: true, 415: true, 500: true, 501: true, 502: true, 503: true, 504: true}
	f.Fuzz(func(t *testing.T, status int, code uint8) {
		c := coapx.CodeForStatus(status)
		back, ok := coapx.StatusForCode(c)
		if !ok {
			t.Fatalf("CodeForStatus(%d) = %v, which StatusForCode does not know", status, c)
		}
		if known[status] != (back == status) || !known[status] && c != codes.InternalServerError {
			t.Fatalf("status %d → %v → %d", status, c, back)
		}
		cc := codes.Code(code)
		if s, ok := coapx.StatusForCode(cc); ok {
			want := cc
			switch cc {
			case codes.Changed:
				want = codes.Content
			case codes.BadOption:
				want = codes.BadRequest
			case codes.ProxyingNotSupported:
				want = codes.BadGateway
			}
			if got := coapx.CodeForStatus(s); got != want {
				t.Fatalf("code %v → %d → %v", cc, s, got)
			}
		} else if s != 0 {
			t.Fatalf("unknown code %v gives status %d", cc, s)
		}
		defined2xx := cc == codes.Created || cc == codes.Deleted || cc == codes.Valid || cc == codes.Changed ||
			cc == codes.Content || cc == codes.Continue
		if s := coapx.IsSuccess(cc); s && code>>5 != 2 || defined2xx && !s {
			t.Fatalf("IsSuccess(%v) = %v", cc, s)
		}
	})
}
