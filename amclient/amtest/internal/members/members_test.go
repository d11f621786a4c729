package members

import (
	"encoding/json"
	"testing"
)

type settings struct {
	Name  string `json:"name"`
	Inner struct {
		Known int `json:"known"`
	} `json:"inner"`
	Source string `json:"-"`

	extra Extra
}

func (s *settings) UnmarshalJSON(b []byte) error {
	type plain settings
	return Unmarshal(b, (*plain)(s), &s.extra, "source")
}

func (s *settings) MarshalJSON() ([]byte, error) {
	type plain settings
	return Marshal((*plain)(s), s.extra)
}

func canonical(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// A value keeps what its fields do not hold, member by member inside
// sections, and never the CREST metadata or the dropped members.
func TestRoundTrip(t *testing.T) {
	var s settings
	in := `{"_id":"x","_rev":"1","name":"a","other":[1,2],"inner":{"known":3,"unknown":"u"},"source":"s"}`
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if s.Name != "a" || s.Inner.Known != 3 {
		t.Fatalf("typed fields %+v", s)
	}
	if got := canonical(t, mustJSON(t, s.extra)); got != `{"inner":{"unknown":"u"},"other":[1,2]}` {
		t.Errorf("kept %s", got)
	}
	out, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	if got := canonical(t, out); got != `{"inner":{"known":3,"unknown":"u"},"name":"a","other":[1,2]}` {
		t.Errorf("written %s", got)
	}

	// Read into the existing value, an update changes what it gives.
	if err := json.Unmarshal([]byte(`{"inner":{"unknown":"v"},"more":true}`), &s); err != nil {
		t.Fatal(err)
	}
	out, _ = json.Marshal(&s)
	if got := canonical(t, out); got != `{"inner":{"known":3,"unknown":"v"},"more":true,"name":"a","other":[1,2]}` {
		t.Errorf("after the update %s", got)
	}
}

func TestNotAnObject(t *testing.T) {
	for _, in := range []string{`null`, `[1]`, `"x"`, `{`} {
		var s settings
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

// Overlay lets the given members win, merging sections.
func TestOverlay(t *testing.T) {
	s := &settings{Name: "a", extra: Extra{"inner": json.RawMessage(`{"unknown":1}`)}}
	s.Inner.Known = 2
	out, err := Overlay(s, Extra{"name": json.RawMessage(`"b"`), "inner": json.RawMessage(`{"known":5}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := canonical(t, out); got != `{"inner":{"known":5,"unknown":1},"name":"b"}` {
		t.Errorf("Overlay = %s", got)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
