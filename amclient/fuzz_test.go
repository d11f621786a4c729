package amclient

import (
	"encoding/json"
	"testing"
)

// FuzzAnswers feeds arbitrary AM answers to the decoders of the client.
func FuzzAnswers(f *testing.F) {
	for _, s := range []string{
		`{"code":403,"reason":"Forbidden","message":"m","detail":{"error":"authorization_pending"}}`,
		`{"error":"invalid_scope","error_description":"d"}`,
		`{"access_token":"a","expires_in":3599}`,
		`{"access_token":"a","expires_in":1e30}`,
		`{"device_code":"d","interval":"5"}`,
		`{"authId":"a","callbacks":[{"type":"NameCallback","output":[{"name":"id","value":1}],"input":[]}]}`,
		`null`, ``, `[`,
	} {
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := newError(status, body)
		_ = e.Error()
		_ = e.OAuthError()
		var tok TokenResponse
		_ = json.Unmarshal(body, &tok)
		_ = tok.Scopes()
		var d DeviceAuthorization
		_ = json.Unmarshal(body, &d)
		var p AuthPayload
		if json.Unmarshal(body, &p) == nil {
			for i := range p.Callbacks {
				_, _ = handle(&p.Callbacks[i], nil)
				_ = describe(&p.Callbacks[i])
			}
		}
	})
}
