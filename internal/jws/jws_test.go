package jws_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/thingway/thingway/internal/jws"
	"github.com/thingway/thingway/internal/strictjson"
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestSplit(t *testing.T) {
	good := b64(`{"alg":"ES256"}`) + "." + b64(`{"sub":"a","nonce":1}`) + "." + b64("sig")
	c, err := jws.Split(" " + good + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Header) != `{"alg":"ES256"}` || string(c.Payload) != `{"sub":"a","nonce":1}` || string(c.Signature) != "sig" ||
		c.SigningInput != good[:strings.LastIndex(good, ".")] {
		t.Errorf("Split = %+v", c)
	}
	for _, tc := range []struct {
		name, tok string
		is        error
	}{
		{"two parts", b64(`{}`) + "." + b64(`{}`), jws.ErrNotCompact},
		{"four parts", good + ".x", jws.ErrNotCompact},
		{"JWE", "a.b.c.d.e", jws.ErrNotCompact},
		{"padded base64", b64(`{"alg":"ES256"}`) + "=." + b64(`{}`) + ".", nil},
		{"standard base64", "+/+/." + b64(`{}`) + ".", nil},
		{"header not an object", b64(`["alg"]`) + "." + b64(`{}`) + ".", strictjson.ErrNotObject},
		{"duplicate header member", b64(`{"alg":"ES256","alg":"none"}`) + "." + b64(`{}`) + ".", strictjson.ErrDuplicateName},
		{"duplicate claim", b64(`{"alg":"ES256"}`) + "." + b64(`{"sub":"a","sub":"b"}`) + ".", strictjson.ErrDuplicateName},
		{"duplicate claim by case", b64(`{"alg":"ES256"}`) + "." + b64(`{"csrf":"a","CSRF":"b"}`) + ".", strictjson.ErrDuplicateName},
		{"nested duplicate", b64(`{"alg":"ES256"}`) + "." + b64(`{"cnf":{"kid":"a","kid":"b"}}`) + ".", strictjson.ErrDuplicateName},
		{"payload not JSON", b64(`{"alg":"ES256"}`) + "." + b64(`hello`) + ".", nil},
		// encoding/base64 skips CR and LF: the same content under another
		// signing input (found by FuzzSplit).
		{"newline inside a part", "eyJ0YCI6Im\n0ifQ.eyJ0XyI6MX0.", jws.ErrNotCompact},
		{"space inside a part", b64(`{"alg":"ES256"}`) + " ." + b64(`{}`) + ".", jws.ErrNotCompact},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := jws.Split(tc.tok)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v, want %v", err, tc.is)
			}
		})
	}
}

// FuzzSplit: a text Split accepts re-encodes to itself, and its parts are
// JSON objects that strictjson accepts.
func FuzzSplit(f *testing.F) {
	f.Add(b64(`{"alg":"ES256","kid":"k"}`) + "." + b64(`{"sub":"a","csrf":"t","nonce":1}`) + "." + b64("sig"))
	f.Add(b64(`{"alg":"none"}`) + "." + b64(`{"a":{"b":[1,{"c":2}]}}`) + ".")
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := jws.Split(tok)
		if err != nil {
			return
		}
		if strictjson.CheckObject(c.Header) != nil || strictjson.CheckObject(c.Payload) != nil {
			t.Fatalf("accepted parts that strictjson refuses: %q %q", c.Header, c.Payload)
		}
		again := b64(string(c.Header)) + "." + b64(string(c.Payload))
		if again != c.SigningInput {
			t.Fatalf("signing input %q, re-encoded %q", c.SigningInput, again)
		}
	})
}
