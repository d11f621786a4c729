package thing

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
)

// answerConnector is a gateway that answers every request with the same
// CoAP code and payload (code 0: AM's success body).
type answerConnector struct {
	code codes.Code
	body []byte
}

func (c *answerConnector) AuthStep(context.Context, callback.Step) (callback.Step, error) {
	return callback.Step{TokenID: "sso-token"}, nil
}

func (c *answerConnector) AMInfo(context.Context) (callback.AMInfo, error) {
	return callback.NewAMInfo("http://am.example.com/openam", "/"), nil
}

func (c *answerConnector) Send(_ context.Context, req callback.Request) ([]byte, error) {
	if c.code != 0 {
		return nil, newGatewayError(c.code, c.body)
	}
	return c.body, nil
}

// lifetime is a JSON number of seconds as an int64: truncated toward zero,
// and saturated beyond int64's range.
func lifetime(n json.Number) int64 {
	if i, err := n.Int64(); err == nil {
		return i
	}
	f, err := n.Float64()
	switch {
	case err != nil && !math.IsInf(f, 0):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

// FuzzAnswers gives a thing arbitrary answers from its gateway, a payload
// with a success code or with any CoAP code, and reads them with every
// operation. A success body is a token response exactly when it is a JSON
// object with an access_token, and then its fields, scopes and lifetime
// are AM's (a lifetime beyond int64's range saturates, never changes
// sign); an introspection, attributes, device authorization or session
// answer is read as its JSON says. A refusal is an *Error with the status
// of the code (500 for a code the table does not know), the body as it
// came, and the OAuth error and message AM's CREST or OAuth 2.0 body
// names.
func FuzzAnswers(f *testing.F) {
	for _, b := range []string{
		`{"access_token":"eyJ0eXAiOiJKV1Qi.e30.sig","refresh_token":"r","scope":"publish subscribe","token_type":"Bearer","expires_in":3599}`,
		// Regressions: these lifetimes became -9223372036854775808.
		`{"access_token":"a","expires_in":1e30}`,
		`{"access_token":"a","expires_in":9223372036854775807}`,
		`{"access_token":"a","expires_in":-1e30}`,
		`{"access_token":"a","expires_in":"3600"}`,
		`{"active":true,"scope":"publish","client_id":"forgerock-iot-oauth2-client","exp":1800000000}`,
		`{"_id":"thing-42","thingConfig":["{\"a\":1}"],"thingType":["device"],"n":[1]}`,
		`{"device_code":"d","user_code":"ABCD-EFGH","verification_uri":"http://am/device","expires_in":300,"interval":5}`,
		`{"valid":true,"uid":"thing-42"}`,
		`{"code":403,"reason":"Forbidden","message":"m","detail":{"error":"authorization_pending"}}`,
		`{"error":"invalid_scope","error_description":"Unknown/invalid scope(s)"}`,
		`null`, ``, `[`, `"text"`,
	} {
		f.Add(uint8(0), []byte(b))
		f.Add(uint8(codes.BadRequest), []byte(b))
	}
	f.Add(uint8(codes.Unauthorized), []byte(`{"code":401,"reason":"Unauthorized","message":"Access Denied"}`))
	f.Add(uint8(codes.GatewayTimeout), []byte("AM did not answer in time"))
	f.Add(uint8(0xff), []byte(nil))

	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	f.Fuzz(func(t *testing.T, code uint8, body []byte) {
		c := codes.Code(code)
		if coapx.IsSuccess(c) {
			c = 0 // the gateway's success: the body is AM's
		}
		conn := &answerConnector{code: c, body: body}
		th, err := New(ctx, Config{Connector: conn, Handlers: []callback.Handler{callback.NameHandler{Name: "n"}}})
		if err != nil {
			t.Fatal(err)
		}
		if c != 0 {
			checkRefusals(t, th, c, body, cancelled)
			return
		}

		var tok struct {
			AccessToken  string      `json:"access_token"`
			RefreshToken string      `json:"refresh_token"`
			TokenType    string      `json:"token_type"`
			Scope        string      `json:"scope"`
			ExpiresIn    json.Number `json:"expires_in"`
		}
		isToken := json.Unmarshal(body, &tok) == nil && tok.AccessToken != ""
		at, err := th.AccessToken(ctx, "publish")
		if (err == nil) != isToken {
			t.Fatalf("AccessToken: %v for %q", err, body)
		}
		if err == nil {
			if at.AccessToken != tok.AccessToken || at.RefreshToken != tok.RefreshToken || at.TokenType != tok.TokenType ||
				!reflect.DeepEqual(at.Scope, strings.Fields(tok.Scope)) || string(at.Raw) != string(body) {
				t.Fatalf("token %+v from %q", at, body)
			}
			if want := lifetime(tok.ExpiresIn); at.ExpiresIn != want {
				t.Fatalf("ExpiresIn %d from expires_in %s, want %d", at.ExpiresIn, tok.ExpiresIn, want)
			}
		}

		var m map[string]any
		isJSON := json.Unmarshal(body, &m) == nil
		in, err := th.IntrospectAccessToken(ctx, "tok")
		if (err == nil) != isJSON {
			t.Fatalf("IntrospectAccessToken: %v for %q", err, body)
		}
		if err == nil && (in.Active != (m["active"] == true) || in.Local) {
			t.Fatalf("introspection %+v from %q", in, body)
		}

		var raw map[string]json.RawMessage
		isObject := json.Unmarshal(body, &raw) == nil
		a, err := th.Attributes(ctx, "thingConfig")
		if (err == nil) != isObject {
			t.Fatalf("Attributes: %v for %q", err, body)
		}
		if err == nil {
			for k, v := range raw {
				var vals []string
				if k != "_id" && json.Unmarshal(v, &vals) == nil && !reflect.DeepEqual(a.Values[k], vals) {
					t.Fatalf("attribute %s = %q from %s", k, a.Values[k], v)
				}
			}
			var id string
			if v, ok := raw["_id"]; ok && json.Unmarshal(v, &id) == nil && a.ID != id {
				t.Fatalf("_id %q from %s", a.ID, raw["_id"])
			}
		}

		var da DeviceAuthorization
		isDA := json.Unmarshal(body, &da) == nil && da.DeviceCode != ""
		got, err := th.UserCode(ctx)
		if (err == nil) != isDA {
			t.Fatalf("UserCode: %v for %q", err, body)
		}
		if err == nil && (got.DeviceCode != da.DeviceCode || got.Interval != da.Interval || got.ExpiresIn != da.ExpiresIn) {
			t.Fatalf("device authorization %+v from %q", got, body)
		}

		var v struct {
			Valid bool `json:"valid"`
		}
		vErr := json.Unmarshal(body, &v)
		valid, err := th.SessionValid(ctx)
		if (err == nil) != (vErr == nil) || valid != v.Valid {
			t.Fatalf("SessionValid = %v, %v for %q", valid, err, body)
		}
	})
}

// checkRefusals checks that every operation reports the gateway's
// refusal c with body as an *Error.
func checkRefusals(t *testing.T, th *Thing, c codes.Code, body []byte, cancelled context.Context) {
	t.Helper()
	status, ok := coapx.StatusForCode(c)
	if !ok {
		status = 500
	}
	var b struct {
		Message string `json:"message"`
		Detail  struct {
			Error string `json:"error"`
		} `json:"detail"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	wantOAuth, wantMsg := "", ""
	if json.Unmarshal(body, &b) == nil {
		wantOAuth, wantMsg = b.Detail.Error, b.Message
		if wantOAuth == "" {
			wantOAuth = b.Error
		}
		if wantMsg == "" {
			wantMsg = b.Description
		}
	}
	ctx := context.Background()
	ops := map[string]func() error{
		"AccessToken": func() error { _, err := th.AccessToken(ctx); return err },
		"Introspect":  func() error { _, err := th.IntrospectAccessToken(ctx, "x"); return err },
		"Attributes":  func() error { _, err := th.Attributes(ctx); return err },
		"UserCode":    func() error { _, err := th.UserCode(ctx); return err },
		"UserToken": func() error {
			// Pending and slow_down wait for the next poll: the context
			// has ended.
			_, err := th.UserToken(cancelled, &DeviceAuthorization{DeviceCode: "d", Interval: 1})
			if errors.Is(err, context.Canceled) && (wantOAuth == "authorization_pending" || wantOAuth == "slow_down") {
				return nil
			}
			return err
		},
		"Logout": func() error { return th.Logout(ctx) },
	}
	for name, op := range ops {
		err := op()
		if name == "UserToken" && err == nil {
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %v is not an *Error", name, err)
		}
		if e.Status != status || string(e.Body) != string(body) || e.OAuthError != wantOAuth || e.Message != wantMsg {
			t.Fatalf("%s: %+v; want status %d, OAuth error %q, message %q", name, e, status, wantOAuth, wantMsg)
		}
		if msg := e.Error(); !strings.HasPrefix(msg, "thing: AM refused the ") {
			t.Fatalf("%s: error text %q", name, msg)
		}
	}
	valid, err := th.SessionValid(ctx)
	if status == 401 && (valid || err != nil) {
		t.Fatalf("SessionValid = %v, %v after a 4.01", valid, err)
	}
	var e *Error
	if status != 401 && (valid || !errors.As(err, &e) || e.Status != status) {
		t.Fatalf("SessionValid = %v, %v after %v", valid, err, c)
	}
}
