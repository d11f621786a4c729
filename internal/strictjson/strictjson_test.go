package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/thingway/thingway/internal/strictjson"
)

func TestCheckObject(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error // nil, a sentinel, or errSyntax for the decoder's error
		dup  string
	}{
		{"empty object", `{}`, nil, ""},
		{"white space around", " \t\r\n{}\n ", nil, ""},
		{"JWS header", `{"alg":"ES256","aud":"http://am/json/things/*?_action=get_access_token","api":"protocol=2.0,resource=1.0","nonce":7}`, nil, ""},
		{"PoP claims", `{"sub":"t","aud":"/","iat":1,"exp":301,"nonce":"n","cnf":{"kid":"k"}}`, nil, ""},
		{"same name in sibling objects", `{"a":{"kid":1},"b":{"kid":2},"c":[{"kid":3},{"kid":4}]}`, nil, ""},
		{"same name at two depths", `{"kid":1,"cnf":{"kid":2,"jwk":{"kid":3}}}`, nil, ""},
		{"names that differ", `{"a":1,"ab":2,"b":3,"":4}`, nil, ""},
		{"huge number", `{"exp":1e400}`, nil, ""},
		{"string values equal to names", `{"a":"a","b":["a","a"]}`, nil, ""},

		{"duplicate nonce", `{"alg":"ES256","nonce":0,"aud":"x","nonce":1}`, strictjson.ErrDuplicateName, "nonce"},
		{"duplicate csrf", `{"csrf":"x","scope":["publish"],"csrf":"token"}`, strictjson.ErrDuplicateName, "csrf"},
		{"duplicate sub", `{"sub":"a","aud":"/","sub":"b"}`, strictjson.ErrDuplicateName, "sub"},
		{"duplicate in a nested object", `{"cnf":{"kid":"a","kid":"b"}}`, strictjson.ErrDuplicateName, "kid"},
		{"duplicate inside an array", `{"keys":[{"kty":"EC"},{"x":"a","y":"b","x":"c"}]}`, strictjson.ErrDuplicateName, "x"},
		{"duplicate deep down", `{"a":{"b":[[{"c":{"d":1,"d":2}}]]}}`, strictjson.ErrDuplicateName, "d"},
		{"duplicate by escape", `{"nonce":0,"non\u0063e":1}`, strictjson.ErrDuplicateName, "nonce"},
		{"duplicate by case", `{"csrf":"x","CSRF":"y"}`, strictjson.ErrDuplicateName, "CSRF"},
		{"duplicate by Kelvin sign", "{\"kid\":1,\"\u212aid\":2}", strictjson.ErrDuplicateName, "\u212aid"},
		{"duplicate by long s", "{\"sub\":1,\"\u017fub\":2}", strictjson.ErrDuplicateName, "\u017fub"},
		{"duplicate empty name", `{"":1,"":2}`, strictjson.ErrDuplicateName, ""},

		{"empty", ``, strictjson.ErrNotObject, ""},
		{"array", `[{"a":1}]`, strictjson.ErrNotObject, ""},
		{"string", `"{}"`, strictjson.ErrNotObject, ""},
		{"null", `null`, strictjson.ErrNotObject, ""},
		{"two objects", `{}{}`, strictjson.ErrNotObject, ""},
		{"trailing data", `{"a":1} x`, strictjson.ErrNotObject, ""},
		{"invalid UTF-8 in a name", "{\"a\xff\":1}", strictjson.ErrInvalidUTF8, ""},
		{"invalid UTF-8 in a value", "{\"a\":\"\xc0\"}", strictjson.ErrInvalidUTF8, ""},
		{"truncated", `{"a":1`, errSyntax, ""},
		{"truncated name", `{"a`, errSyntax, ""},
		{"trailing comma", `{"a":1,}`, errSyntax, ""},
		{"bare word", `{"a":nope}`, errSyntax, ""},
		{"name not a string", `{1:2}`, errSyntax, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := strictjson.CheckObject([]byte(tt.in))
			switch {
			case tt.want == nil:
				if err != nil {
					t.Fatalf("CheckObject(%s) = %v, want nil", tt.in, err)
				}
				return
			case tt.want == errSyntax:
				if err == nil || errors.Is(err, strictjson.ErrDuplicateName) || errors.Is(err, strictjson.ErrNotObject) || errors.Is(err, strictjson.ErrInvalidUTF8) {
					t.Fatalf("CheckObject(%s) = %v, want a syntax error", tt.in, err)
				}
			case !errors.Is(err, tt.want):
				t.Fatalf("CheckObject(%s) = %v, want %v", tt.in, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "strictjson: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if tt.want == strictjson.ErrDuplicateName {
				var de *strictjson.DuplicateNameError
				if !errors.As(err, &de) || de.Name != tt.dup {
					t.Errorf("error = %#v, want a DuplicateNameError for %q", err, tt.dup)
				}
				if de != nil && (de.Offset <= 0 || de.Offset > int64(len(tt.in))) {
					t.Errorf("offset %d outside the input", de.Offset)
				}
			}
		})
	}
}

// errSyntax marks the rows where the decoder's own error is expected.
var errSyntax = errors.New("syntax")

func TestCheckObjectDepth(t *testing.T) {
	// Deep nesting is walked without recursion.
	deep := strings.Repeat(`{"a":[`, 100000) + strings.Repeat(`]}`, 100000)
	if err := strictjson.CheckObject([]byte(deep)); err != nil {
		t.Fatalf("deep document: %v", err)
	}
	dupDeep := strings.Repeat(`{"a":[`, 1000) + `{"z":1,"z":2}` + strings.Repeat(`]}`, 1000)
	if err := strictjson.CheckObject([]byte(dupDeep)); !errors.Is(err, strictjson.ErrDuplicateName) {
		t.Fatalf("duplicate at depth 2000: %v", err)
	}
}

func TestDuplicateNameErrorTruncates(t *testing.T) {
	long := strings.Repeat("n", 1000)
	err := strictjson.CheckObject([]byte(`{"` + long + `":1,"` + long + `":2}`))
	var de *strictjson.DuplicateNameError
	if !errors.As(err, &de) || de.Name != long {
		t.Fatalf("err = %v", err)
	}
	if len(err.Error()) > 200 {
		t.Errorf("error text is %d bytes long", len(err.Error()))
	}
}

func TestUnmarshal(t *testing.T) {
	var v struct {
		CSRF  string   `json:"csrf"`
		Scope []string `json:"scope"`
	}
	if err := strictjson.Unmarshal([]byte(`{"csrf":"t","scope":["publish"]}`), &v); err != nil || v.CSRF != "t" || len(v.Scope) != 1 {
		t.Fatalf("Unmarshal = %v, %+v", err, v)
	}
	v.CSRF = "unchanged"
	if err := strictjson.Unmarshal([]byte(`{"csrf":"x","CSRF":"t"}`), &v); !errors.Is(err, strictjson.ErrDuplicateName) || v.CSRF != "unchanged" {
		t.Fatalf("Unmarshal of a duplicate = %v, %+v", err, v)
	}
}

// FuzzCheckObject checks CheckObject against encoding/json: whatever it
// accepts is one valid JSON object; a valid UTF-8 object is either
// accepted or refused for a duplicate name; and re-encoding an accepted
// object (encoding/json writes each map key once) is accepted again.
func FuzzCheckObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"b":1},{"b":1}]}`,
		`{"csrf":"x","CSRF":"y"}`, `{"nonce":0,"non\u0063e":1}`, "{\"k\":1,\"\u212a\":2}",
		`[]`, `{"a":1}{}`, `{"a":`, "{\"\xff\":1}", `{"exp":1e400,"x":[true,false,null,"s",-0.5e-3]}`,
		`{"alg":"ES256","aud":"http://h/json/things/*","api":"protocol=2.0,resource=1.0","nonce":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := strictjson.CheckObject(data)
		trimmed := bytes.TrimLeft(data, " \t\r\n")
		isObject := json.Valid(data) && len(trimmed) > 0 && trimmed[0] == '{'
		if err == nil {
			if !isObject || !utf8.Valid(data) {
				t.Fatalf("accepted %q, which is not one valid JSON object", data)
			}
			var m map[string]any
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.UseNumber()
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("accepted %q, which encoding/json cannot decode: %v", data, err)
			}
			again, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			if err := strictjson.CheckObject(again); err != nil {
				t.Fatalf("re-encoded %q refused: %v", again, err)
			}
			return
		}
		if isObject && utf8.Valid(data) && !errors.Is(err, strictjson.ErrDuplicateName) {
			t.Fatalf("valid object %q refused with %v", data, err)
		}
	})
}

// FuzzSameAsTokens checks the byte walk CheckObject uses for valid JSON
// against the walk over encoding/json's tokens: the same verdict, the
// same duplicate name at the same offset.
func FuzzSameAsTokens(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"b":1},{"b":1}]}`, `{"x":"\"a\\","y":"}","x":0}`,
		`{"csrf":"x","CSRF":"y"}`, `{"nonce":0,"non\u0063e":1}`, "{\"k\":1,\"\u212a\":2}", `[1]`, ` "s" `,
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"A":18}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) || !json.Valid(data) {
			return
		}
		got, want := strictjson.CheckObject(data), strictjson.CheckTokens(data)
		var g, w *strictjson.DuplicateNameError
		switch {
		case got == nil && want == nil:
		case errors.As(got, &g) && errors.As(want, &w):
			if *g != *w {
				t.Fatalf("%q: duplicate %+v, the tokens' walk %+v", data, *g, *w)
			}
		case errors.Is(got, strictjson.ErrNotObject) && errors.Is(want, strictjson.ErrNotObject):
		default:
			t.Fatalf("%q: %v, the tokens' walk %v", data, got, want)
		}
	})
}
