package members_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/thingway/thingway/amclient/amtest/internal/members"
)

type node struct{ Type string }

type tree struct {
	Entry string           `json:"entryNodeId"`
	Nodes map[string]*node `json:"nodes"`
	Max   int              `json:"max"`
}

// A value of the wrong JSON type is named by its JSON path and the JSON it
// should have been, never by Go's types; other errors pass through.
func TestPlainError(t *testing.T) {
	for in, want := range map[string]string{
		`{"nodes":[]}`:       "nodes: a JSON array where an object belongs",
		`{"nodes":{"a":[]}}`: "nodes: a JSON array where an object belongs",
		`{"entryNodeId":5}`:  "entryNodeId: a JSON number where a string belongs",
		`{"max":1.5}`:        "max: a JSON number 1.5 where an integer belongs",
		`[]`:                 "a JSON array where an object belongs",
	} {
		var v tree
		err := members.PlainError(json.Unmarshal([]byte(in), &v))
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
	var v tree
	syntax := json.Unmarshal([]byte(`{`), &v)
	if err := members.PlainError(syntax); !errors.Is(err, syntax) {
		t.Errorf("syntax error changed: %v", err)
	}
	if members.PlainError(nil) != nil {
		t.Error("nil became an error")
	}
}
