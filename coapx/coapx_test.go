package coapx_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
)

func TestStatusTable(t *testing.T) {
	for _, tt := range []struct {
		status int
		code   codes.Code
	}{
		{400, codes.BadRequest}, {401, codes.Unauthorized}, {403, codes.Forbidden}, {404, codes.NotFound},
		{405, codes.MethodNotAllowed}, {406, codes.NotAcceptable}, {412, codes.PreconditionFailed},
		{413, codes.RequestEntityTooLarge}, {415, codes.UnsupportedMediaType}, {500, codes.InternalServerError},
		{501, codes.NotImplemented}, {502, codes.BadGateway}, {503, codes.ServiceUnavailable}, {504, codes.GatewayTimeout},
		{409, codes.InternalServerError}, {429, codes.InternalServerError}, {302, codes.InternalServerError},
	} {
		if got := coapx.CodeForStatus(tt.status); got != tt.code {
			t.Errorf("CodeForStatus(%d) = %v, want %v", tt.status, got, tt.code)
		}
		if tt.code != codes.InternalServerError || tt.status == 500 {
			if st, ok := coapx.StatusForCode(tt.code); !ok || st != tt.status {
				t.Errorf("StatusForCode(%v) = %d, %v, want %d", tt.code, st, ok, tt.status)
			}
		}
	}
	if st, ok := coapx.StatusForCode(codes.Changed); !ok || st != 200 {
		t.Errorf("2.04 = %d %v", st, ok)
	}
	if _, ok := coapx.StatusForCode(codes.Code(0x9d)); ok {
		t.Error("an unknown code maps to a status")
	}
}

func TestCSRF(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"csrf": "AQIC5w.*AAJ*", "scope": []string{"publish"}})
	jws := enc([]byte(`{"alg":"ES256","nonce":3}`)) + "." + enc(claims) + ".c2ln"
	if got, err := coapx.CSRF([]byte(jws)); err != nil || got != "AQIC5w.*AAJ*" {
		t.Fatalf("CSRF = %q, %v", got, err)
	}
	for name, body := range map[string]string{
		"two parts":     "a.b",
		"bad base64":    "a.!!!.c",
		"not JSON":      "a." + enc([]byte("nope")) + ".c",
		"no csrf":       "a." + enc([]byte(`{"scope":[]}`)) + ".c",
		"csrf not text": "a." + enc([]byte(`{"csrf":5}`)) + ".c",
	} {
		if _, err := coapx.CSRF([]byte(body)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := coapx.CSRF([]byte("a.b")); !errors.Is(err, coapx.ErrNotJWS) {
		t.Errorf("two parts: %v", err)
	}
}

// /aminfo's JSON has iot-edge's PascalCase member names in its order, and
// the byte length the protocol notes give for the guide's URL.
func TestAMInfoJSON(t *testing.T) {
	b, err := json.Marshal(callback.NewAMInfo("http://am.localtest.me:8080/openam", "/"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Realm":"/","AccessTokenURL":"http://am.localtest.me:8080/openam/json/things/*?_action=get_access_token\u0026realm=/","IntrospectURL":"http://am.localtest.me:8080/openam/json/things/*?_action=introspect_token\u0026realm=/","AttributesURL":"http://am.localtest.me:8080/openam/json/things/*?realm=/","ThingsVersion":"protocol=2.0,resource=1.0","UserCodeURL":"http://am.localtest.me:8080/openam/json/things/*?_action=get_user_code\u0026realm=/","UserTokenURL":"http://am.localtest.me:8080/openam/json/things/*?_action=get_user_token\u0026realm=/","SessionsVersion":"resource=4.0","SessionValidateURL":"http://am.localtest.me:8080/openam/json/sessions?_action=validate","SessionLogoutURL":"http://am.localtest.me:8080/openam/json/sessions?_action=logout"}`
	if string(b) != want {
		t.Errorf("AMInfo JSON =\n%s\nwant\n%s", b, want)
	}
	if len(b) != 752 {
		t.Errorf("length = %d, want 752", len(b))
	}
}

func TestRoute(t *testing.T) {
	for op, want := range map[string][2]string{
		callback.OpAccessToken: {"/accesstoken", ""}, callback.OpAttributes: {"/attributes", ""},
		callback.OpSessionValidate: {"/session", "_action=validate"}, callback.OpSessionLogout: {"/session", "_action=logout"},
	} {
		p, q, err := coapx.Route(op)
		if err != nil || p != want[0] || q != want[1] {
			t.Errorf("Route(%s) = %s %s %v", op, p, q, err)
		}
	}
	if _, _, err := coapx.Route("nope"); err == nil {
		t.Error("unknown operation routed")
	}
}

func TestClientTrustExplicit(t *testing.T) {
	cert, err := coapx.SelfSignedCertificate(nil, "thing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := coapx.ClientOptions(cert, coapx.Trust{}); !errors.Is(err, coapx.ErrNoTrust) {
		t.Errorf("no trust: %v", err)
	}
	if _, err := coapx.ClientOptions(cert, coapx.Trust{InsecureAnyGateway: true, PinnedSHA256: make([]byte, 32)}); err == nil {
		t.Error("two trusts accepted")
	}
	if opts, err := coapx.ClientOptions(cert, coapx.Trust{InsecureAnyGateway: true}); err != nil || len(opts) == 0 {
		t.Errorf("insecure: %v", err)
	}
}
