// Package jws splits a compact JWS (RFC 7515 §7.1) into its parts: the one
// splitter of the module, for every place that reads a JWS it did not
// sign (the gateway, the SDK, the local AM).
//
// [Split] refuses what a second reader could read differently: anything
// but three base64url parts in their one canonical (unpadded, strict)
// form, and a header or payload that is not
// exactly one JSON object without duplicate member names (see
// [strictjson.CheckObject]). It verifies no signature; callers that trust
// the content verify it (go-jose) or hand it to AM, which does.
package jws

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/thingway/thingway/internal/strictjson"
)

// ErrNotCompact reports a text that is not three dot-separated parts.
var ErrNotCompact = errors.New("jws: not a compact JWS")

// Compact is a compact JWS, decoded.
type Compact struct {
	// Header and Payload are the decoded protected header and payload,
	// each one JSON object without duplicate member names.
	Header, Payload []byte
	// Signature is the decoded signature.
	Signature []byte
	// SigningInput is the text the signature covers: the first two parts
	// as they arrived, joined by a dot.
	SigningInput string
}

// Split decodes the compact JWS tok (surrounding white space is ignored)
// and checks its header and payload.
func Split(tok string) (*Compact, error) {
	tok = strings.TrimSpace(tok)
	// Only the base64url alphabet and the two dots: encoding/base64 skips
	// CR and LF inside its input, which would give one content two
	// signing inputs.
	if i := strings.IndexFunc(tok, notCompact); i >= 0 {
		return nil, fmt.Errorf("%w: byte %q at %d", ErrNotCompact, tok[i], i)
	}
	h, rest, ok1 := strings.Cut(tok, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s, ".") {
		return nil, ErrNotCompact
	}
	// Strict: one encoding per content, so that two signing inputs never
	// decode to the same header and payload.
	dec := base64.RawURLEncoding.Strict()
	c := &Compact{SigningInput: tok[:len(h)+1+len(p)]}
	var err error
	if c.Header, err = dec.DecodeString(h); err != nil {
		return nil, fmt.Errorf("jws: header: %w", err)
	}
	if c.Payload, err = dec.DecodeString(p); err != nil {
		return nil, fmt.Errorf("jws: payload: %w", err)
	}
	if c.Signature, err = dec.DecodeString(s); err != nil {
		return nil, fmt.Errorf("jws: signature: %w", err)
	}
	if err := strictjson.CheckObject(c.Header); err != nil {
		return nil, fmt.Errorf("jws: header: %w", err)
	}
	if err := strictjson.CheckObject(c.Payload); err != nil {
		return nil, fmt.Errorf("jws: payload: %w", err)
	}
	return c, nil
}

// notCompact reports a rune outside base64url and the dot.
func notCompact(r rune) bool {
	switch {
	case 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
		return false
	}
	return true
}
