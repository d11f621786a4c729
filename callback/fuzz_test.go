package callback_test

import (
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/callback"
)

// FuzzHandle answers arbitrary callbacks with every handler.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{
		`{"type":"HiddenValueCallback","output":[{"name":"value","value":"c"},{"name":"id","value":"jwt-pop-authentication"}],"input":[{"name":"IDToken1","value":""}]}`,
		`{"type":"HiddenValueCallback","output":[{"name":"value","value":7},{"name":"id","value":"jwt-pop-registration"}],"input":[]}`,
		`{"type":"HiddenValueCallback","output":[{"name":"id","value":"client_assertion"}],"input":[{"name":"IDToken1","value":null}]}`,
		`{"type":"NameCallback","output":null,"input":[{}]}`,
		`{"type":"PasswordCallback"}`,
	} {
		f.Add([]byte(s))
	}
	key := testKeys(f)[jose.ES256]
	handlers := []callback.Handler{
		callback.NameHandler{Name: "n"}, callback.PasswordHandler{Password: "p"},
		callback.AuthenticateHandler{Audience: "/", ThingID: "t", Key: key},
		callback.RegisterHandler{Audience: "/", ThingID: "t", Key: key},
		callback.SoftwareStatementHandler{Statement: "s"},
		callback.AuthenticateHandler{}, callback.RegisterHandler{},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var cb callback.Callback
		if json.Unmarshal(b, &cb) != nil {
			return
		}
		_, _ = cb.ID(), cb.Value()
		for _, h := range handlers {
			c := cb
			c.Input = append([]callback.Entry(nil), cb.Input...)
			ok, err := h.Handle(&c)
			if !ok && err != nil {
				t.Fatalf("%T: unhandled with error %v", h, err)
			}
			if ok && err == nil {
				if _, isString := c.Input[0].Value.(string); !isString {
					t.Fatalf("%T handled without a string answer", h)
				}
			}
		}
	})
}
