package callback_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/internal/jws"
)

// FuzzStep decodes arbitrary authentication steps, as a gateway reads a
// thing's and a thing reads a gateway's: what decodes re-encodes to a
// text that decodes to the same encoding (the relay is stable), keeps
// its authId, digest and token, and each callback's ID and Value are the
// string values of its first "id" and "value" output entries.
func FuzzStep(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"authId":"eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJvdGsiOiJ4In0.c2ln","callbacks":[{"type":"HiddenValueCallback","output":[{"name":"value","value":"c2hhbGxlbmdl"},{"name":"id","value":"jwt-pop-authentication"}],"input":[{"name":"IDToken1","value":"jwt-pop-authentication"}]}]}`,
		`{"auth_id_digest":"ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=","callbacks":[{"type":"NameCallback","output":[{"name":"prompt","value":"User Name"}],"input":[{"name":"IDToken1","value":""}]},{"type":"PasswordCallback","output":[{"name":"prompt","value":"Password"}],"input":[{"name":"IDToken2","value":""}]}]}`,
		`{"tokenId":"AQIC5wM2LY4SfcxZ...*","successUrl":"/openam/console","realm":"/"}`,
		`{"callbacks":[{"type":"ChoiceCallback","output":[{"name":"choices","value":["a","b"]},{"name":"defaultChoice","value":0}],"input":[{"name":"IDToken1","value":0}]}]}`,
		`{"callbacks":[],"authId":"","AUTHID":"x"}`,
		`{"callbacks":[{"output":[{"name":"id","value":7},{"name":"id","value":"second"}]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var step callback.Step
		if json.Unmarshal(b, &step) != nil {
			return
		}
		enc, err := json.Marshal(step)
		if err != nil {
			t.Fatalf("a decoded step does not encode: %v", err)
		}
		var again callback.Step
		if err := json.Unmarshal(enc, &again); err != nil {
			t.Fatalf("the re-encoded step %s does not decode: %v", enc, err)
		}
		enc2, _ := json.Marshal(again)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding is not stable: %s, then %s", enc, enc2)
		}
		if again.AuthID != step.AuthID || again.AuthIDDigest != step.AuthIDDigest || again.TokenID != step.TokenID ||
			len(again.Callbacks) != len(step.Callbacks) {
			t.Fatalf("step %+v re-encodes as %+v", step, again)
		}
		for i, cb := range step.Callbacks {
			if cb.ID() != firstString(cb.Output, "id") || cb.Value() != firstString(cb.Output, "value") {
				t.Fatalf("callback %d: ID %q, Value %q", i, cb.ID(), cb.Value())
			}
			if again.Callbacks[i].ID() != cb.ID() || again.Callbacks[i].Value() != cb.Value() || again.Callbacks[i].Type != cb.Type {
				t.Fatalf("callback %d changed on the way: %+v, then %+v", i, cb, again.Callbacks[i])
			}
		}
	})
}

// firstString is the string value of the first entry named name, or "".
func firstString(es []callback.Entry, name string) string {
	for _, e := range es {
		if e.Name == name {
			s, _ := e.Value.(string)
			return s
		}
	}
	return ""
}

// FuzzAMInfo decodes arbitrary /aminfo answers, as a thing reads its
// gateway's, and builds the aud of an attribute read from them: the
// attributes URL, then "?" (or "&" when it has a query) and _fields with
// the names joined by commas.
func FuzzAMInfo(f *testing.F) {
	info, _ := json.Marshal(callback.NewAMInfo("https://am.example.com/am", "/alpha"))
	f.Add(info, "thingConfig,_id")
	f.Add([]byte(`{"AttributesURL":"http://h/json/things/*"}`), "a")
	f.Add([]byte(`{"attributesurl":"x?y","Realm":7}`), "")
	f.Fuzz(func(t *testing.T, b []byte, names string) {
		var i callback.AMInfo
		if json.Unmarshal(b, &i) != nil {
			return
		}
		var fields []string
		if names != "" {
			fields = strings.Split(names, ",")
		}
		u := i.AttributesURLFor(fields)
		if len(fields) == 0 {
			if u != i.AttributesURL {
				t.Fatalf("no fields: %q, want %q", u, i.AttributesURL)
			}
			return
		}
		sep := "?"
		if strings.Contains(i.AttributesURL, "?") {
			sep = "&"
		}
		if u != i.AttributesURL+sep+"_fields="+names {
			t.Fatalf("AttributesURLFor(%q) = %q on %q", fields, u, i.AttributesURL)
		}
	})
}

// FuzzSignedAnswers answers PoP authentication, client-assertion and
// registration callbacks whose challenge (AM's, untrusted) and thing ID
// are arbitrary, and signs requests with an arbitrary csrf token. Every
// JWT the SDK signs is one that the module's strict splitter accepts (no
// member named twice, canonical base64url), that verifies with the
// thing's key under the one algorithm of the key, and whose claims are
// exactly what the handlers document: the challenge as nonce, the thing
// as sub, the audience as aud, exp 5 minutes after iat.
func FuzzSignedAnswers(f *testing.F) {
	f.Add("AAECAwQFBgcICQoLDA0ODw==", "thing-42", "/")
	f.Add(`","sub":"admin`, "a\u2028b", "/realms/root")
	f.Add("\x00\xff", "", "")
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	signers := map[jose.SignatureAlgorithm]crypto.Signer{jose.ES256: ec, jose.EdDSA: ed}
	hidden := func(id, value string) *callback.Callback {
		return &callback.Callback{Type: callback.TypeHiddenValueCallback,
			Output: []callback.Entry{{Name: "value", Value: value}, {Name: "id", Value: id}},
			Input:  []callback.Entry{{Name: "IDToken1", Value: id}}}
	}
	f.Fuzz(func(t *testing.T, challenge, thingID, aud string) {
		valid := utf8.ValidString(challenge) && utf8.ValidString(thingID) && utf8.ValidString(aud)
		for alg, key := range signers {
			kid, _ := callback.Thumbprint(key.Public())
			for _, tc := range []struct {
				h  callback.Handler
				cb *callback.Callback
			}{
				{callback.AuthenticateHandler{Audience: aud, ThingID: thingID, Key: key}, hidden(callback.IDPoPAuthentication, challenge)},
				{callback.AuthenticateHandler{Audience: aud, ThingID: thingID, Key: key}, hidden(callback.IDClientAssertion, "")},
				{callback.RegisterHandler{Audience: aud, ThingID: thingID, Key: key}, hidden(callback.IDPoPRegistration, challenge)},
			} {
				id := tc.cb.ID()
				ok, err := tc.h.Handle(tc.cb)
				if !ok {
					t.Fatalf("%s not handled", id)
				}
				needsChallenge := id != callback.IDClientAssertion
				if thingID == "" || aud == "" || needsChallenge && challenge == "" {
					if err == nil {
						t.Fatalf("%s answered without thing ID, audience or challenge", id)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				tok, _ := tc.cb.Input[0].Value.(string)
				claims := checkJWT(t, tok, alg, key)
				if !valid {
					continue // JSON carries the text with U+FFFD for each invalid byte
				}
				if claims["sub"] != thingID || claims["aud"] != aud {
					t.Fatalf("%s: sub %v, aud %v; want %q, %q", id, claims["sub"], claims["aud"], thingID, aud)
				}
				if needsChallenge && claims["nonce"] != challenge {
					t.Fatalf("%s: nonce %v, want the challenge %q", id, claims["nonce"], challenge)
				}
				iat, _ := claims["iat"].(float64)
				exp, _ := claims["exp"].(float64)
				if exp-iat != 300 {
					t.Fatalf("%s: iat %v, exp %v", id, iat, exp)
				}
				cnf, _ := claims["cnf"].(map[string]any)
				if id != callback.IDClientAssertion && cnf["kid"] != kid {
					t.Fatalf("%s: cnf %v, want kid %q", id, cnf, kid)
				}
			}
			// A signed request's nonce header is a JSON integer, which
			// go-jose does not read: checked by hand.
			req, err := callback.SignRequest(key, aud, callback.ThingsVersion, 3, map[string]any{"csrf": challenge})
			if err != nil {
				t.Fatal(err)
			}
			c, err := jws.Split(req)
			if err != nil {
				t.Fatalf("the strict splitter refuses a request the SDK signed: %v: %s", err, req)
			}
			if !verifyJWS(key.Public(), []byte(c.SigningInput), c.Signature) {
				t.Fatal("a request the SDK signed does not verify")
			}
			var hdr struct {
				Alg, Aud, API string
				Nonce         json.Number
			}
			var claims struct{ CSRF string }
			if json.Unmarshal(c.Header, &hdr) != nil || json.Unmarshal(c.Payload, &claims) != nil {
				t.Fatalf("signed request %s, %s", c.Header, c.Payload)
			}
			if hdr.Alg != string(alg) || hdr.Nonce != "3" || hdr.API != callback.ThingsVersion ||
				valid && (hdr.Aud != aud || claims.CSRF != challenge) {
				t.Fatalf("signed request: header %s, payload %s", c.Header, c.Payload)
			}
		}
	})
}

// checkJWT checks a JWT the SDK signed and returns its claims.
func checkJWT(t *testing.T, tok string, alg jose.SignatureAlgorithm, key crypto.Signer) map[string]any {
	t.Helper()
	if _, err := jws.Split(tok); err != nil {
		t.Fatalf("the strict splitter refuses a JWT the SDK signed: %v: %s", err, tok)
	}
	sig, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("a JWT the SDK signed does not parse: %v", err)
	}
	payload, err := sig.Verify(key.Public())
	if err != nil {
		t.Fatalf("a JWT the SDK signed does not verify: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// verifyJWS checks a JWS signature (ES256 as r||s, or Ed25519).
func verifyJWS(pub crypto.PublicKey, input, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if len(sig) != 64 {
			return false
		}
		h := sha256.Sum256(input)
		return ecdsa.Verify(k, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case ed25519.PublicKey:
		return ed25519.Verify(k, input, sig)
	}
	return false
}
