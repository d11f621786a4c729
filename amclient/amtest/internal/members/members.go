package members

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
)

// Extra holds the members of an object that its Go type does not
// interpret, by name.
type Extra = map[string]json.RawMessage

// CRESTMeta are the members the REST layer computes (_id, _rev, _type,
// _outcomes); [Split] drops them, so they are never kept.
var CRESTMeta = []string{"_id", "_rev", "_type", "_outcomes"}

// Unmarshal decodes the JSON object b into plain, a pointer to a struct
// type without JSON methods (the type's own "plain" twin), and updates
// *extra to hold b's members that plain's fields do not, besides those
// *extra held before: read into an existing value, an object updates the
// members it gives, as AM does. The members named in drop are never kept
// (those the caller decodes itself).
func Unmarshal[P any](b []byte, plain *P, extra *Extra, drop ...string) error {
	if err := json.Unmarshal(b, plain); err != nil {
		return PlainError(err)
	}
	all, err := Split(b)
	if err != nil {
		return err
	}
	for _, k := range drop {
		delete(all, k)
	}
	*extra = UnknownOnly(Merge(*extra, all), plain)
	return nil
}

// Marshal encodes v (a struct without JSON methods) and overlays the
// result on extra: the typed members win, objects present in both are
// merged member by member.
func Marshal(v any, extra Extra) ([]byte, error) {
	typed, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return typed, err
	}
	var m Extra
	if err := json.Unmarshal(typed, &m); err != nil {
		return nil, err
	}
	return json.Marshal(Merge(extra, m))
}

// Split returns b's top-level members without the CREST metadata; b must
// be a JSON object.
func Split(b []byte) (Extra, error) {
	var all Extra
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	if all == nil {
		return nil, errors.New("not a JSON object")
	}
	for _, k := range CRESTMeta {
		delete(all, k)
	}
	return all, nil
}

// Merge overlays src on dst: members that are objects on both sides are
// merged member by member (AM's sections), others replaced. dst is not
// modified.
func Merge(dst, src Extra) Extra {
	out := make(Extra, len(dst)+len(src))
	maps.Copy(out, dst)
	for k, v := range src {
		var a, b map[string]json.RawMessage
		if old, ok := out[k]; ok && isObject(old) && isObject(v) && json.Unmarshal(old, &a) == nil && json.Unmarshal(v, &b) == nil {
			maps.Copy(a, b)
			merged, err := json.Marshal(a)
			if err == nil {
				out[k] = merged
				continue
			}
		}
		out[k] = v
	}
	return out
}

func isObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// UnknownOnly returns the members of extra that typed's JSON form does not
// have (inside objects present in both, member by member), so that a value
// read from JSON keeps only what its fields do not hold; nil if none.
func UnknownOnly(extra Extra, typed any) Extra {
	if len(extra) == 0 {
		return nil
	}
	b, err := json.Marshal(typed)
	if err != nil {
		return extra
	}
	var known Extra
	if json.Unmarshal(b, &known) != nil {
		return extra
	}
	out := Extra{}
	for k, v := range extra {
		kv, ok := known[k]
		if !ok {
			out[k] = v
			continue
		}
		var em, km map[string]json.RawMessage
		if !isObject(v) || !isObject(kv) || json.Unmarshal(v, &em) != nil || json.Unmarshal(kv, &km) != nil {
			continue
		}
		for mk := range km {
			delete(em, mk)
		}
		if len(em) > 0 {
			out[k], _ = json.Marshal(em)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Overlay encodes v (any value whose JSON form is an object) and overlays
// src on it as [Merge] does: src's members win. It is an update of v by
// the members an administrator sends.
func Overlay(v any, src Extra) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m Extra
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return json.Marshal(Merge(m, src))
}
