// Package strictjson checks that a JSON text is one object in which no
// object, at any depth, names a member twice.
//
// RFC 8259 §4 leaves duplicate member names to the parser: encoding/json
// keeps the last one, other parsers the first or refuse. When a signed
// JOSE header or JWT claims set is read by two parsers (a gateway and AM, a
// check and a use), a duplicate lets one document say two things:
// {"sub":"a","sub":"b"} is "a" to one reader and "b" to the other. RFC 7515
// §4 and RFC 7519 §4 let a JWS or JWT with duplicate names be rejected;
// this package does that before anything is decoded.
//
// # What is refused
//
//   - anything that is not exactly one JSON object (surrounding white
//     space is allowed), or is not valid JSON ([ErrNotObject], or the
//     decoder's syntax error)
//   - invalid UTF-8 anywhere ([ErrInvalidUTF8]): RFC 8259 §8.1 requires
//     UTF-8, and encoding/json would silently turn two different invalid
//     names into the same U+FFFD text
//   - two members of one object whose names are equal after JSON
//     unescaping ("nonce" and "non\u0063e" are the same name), or equal
//     under Unicode simple case folding ("csrf" and "CSRF"), at any depth
//     ([*DuplicateNameError], which matches [ErrDuplicateName]). The case
//     rule is there because encoding/json matches member names to struct
//     fields case-insensitively: decoded into a struct, "csrf" and "CSRF"
//     fill the same field
//
// Numbers are not range-checked and strings not otherwise interpreted:
// the check is about structure, decoding stays with the caller.
//
// # Usage
//
//	if err := strictjson.CheckObject(header); err != nil {
//		return fmt.Errorf("JWS header: %w", err)
//	}
//
// or, to check and decode in one call, [Unmarshal].
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

var (
	// ErrDuplicateName is matched (errors.Is) by every [*DuplicateNameError].
	ErrDuplicateName = errors.New("strictjson: duplicate member name")
	// ErrNotObject reports a JSON text that is not exactly one object.
	ErrNotObject = errors.New("strictjson: not a single JSON object")
	// ErrInvalidUTF8 reports bytes that are not valid UTF-8.
	ErrInvalidUTF8 = errors.New("strictjson: invalid UTF-8")
)

// DuplicateNameError reports a member name that occurs twice in one object.
type DuplicateNameError struct {
	// Name is the second occurrence, unescaped.
	Name string
	// Offset is the byte offset just after the second occurrence.
	Offset int64
}

func (e *DuplicateNameError) Error() string {
	name := e.Name
	if len(name) > 64 {
		name = name[:64] + "…"
	}
	return fmt.Sprintf("strictjson: duplicate member name %q at offset %d", name, e.Offset)
}

// Unwrap returns [ErrDuplicateName].
func (e *DuplicateNameError) Unwrap() error { return ErrDuplicateName }

// frame is an open object or array.
type frame struct {
	obj   bool
	key   bool                // in an object: the next token is a name or '}'
	names map[string]struct{} // in an object: the folded names seen
}

// CheckObject reports whether data is exactly one JSON object without
// duplicate member names at any depth (see the package documentation for
// the rules). It returns nil or an error that matches one of the package's
// sentinels or is the decoder's syntax error.
func CheckObject(data []byte) error {
	if !utf8.Valid(data) {
		return ErrInvalidUTF8
	}
	if json.Valid(data) {
		return checkValid(data)
	}
	return checkTokens(data) // the decoder's own error
}

// checkTokens is CheckObject on encoding/json's tokens: for input that
// is not valid JSON, whose error the decoder words.
func checkTokens(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // structure only: no float64 range errors
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return ErrNotObject
		}
		return fmt.Errorf("strictjson: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return ErrNotObject
	}
	// An explicit stack: the depth of the input never becomes the depth
	// of the Go stack.
	stack := []frame{{obj: true, key: true, names: map[string]struct{}{}}}
	for len(stack) > 0 {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("strictjson: %w", err)
		}
		top := &stack[len(stack)-1]
		if top.obj && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			name, ok := tok.(string)
			if !ok { // the decoder allows only a name or '}' here
				return fmt.Errorf("strictjson: unexpected %v where a member name belongs", tok)
			}
			k := fold(name)
			if _, dup := top.names[k]; dup {
				return &DuplicateNameError{Name: name, Offset: dec.InputOffset()}
			}
			top.names[k] = struct{}{}
			top.key = false
			continue
		}
		// A value: of an object member (a name follows it) or of an array.
		if top.obj {
			top.key = true
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, frame{obj: true, key: true, names: map[string]struct{}{}})
			case '[':
				stack = append(stack, frame{})
			case ']':
				stack = stack[:len(stack)-1]
			default: // '}' in value position; the decoder refuses it first
				return fmt.Errorf("strictjson: unexpected %v", d)
			}
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after the object", ErrNotObject)
	}
	return nil
}

// smallObject is the most member names an object's frame compares one by
// one (strings.EqualFold, no allocation); a larger object keeps a set of
// folded names.
const smallObject = 16

// scanFrame is an open object or array of checkValid.
type scanFrame struct {
	obj   bool
	key   bool                // in an object: a string here is a name
	names [][]byte            // in an object: the names seen, unescaped
	set   map[string]struct{} // the folded names, once names outgrew smallObject
}

// checkValid is CheckObject for data that json.Valid accepts (one JSON
// value, nothing but white space around it): a walk over its bytes that
// looks only at the structure and the member names, and allocates only
// for escaped names, objects of more than smallObject members and deep
// nesting. The stack is explicit, as in checkTokens.
func checkValid(data []byte) error {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return ErrNotObject
	}
	var first [8]scanFrame
	stack := append(first[:0], scanFrame{obj: true, key: true})
	i++
	for i < len(data) {
		switch c := data[i]; c {
		case '{', '[':
			stack = append(stack, scanFrame{obj: c == '{', key: c == '{'})
			i++
		case '}', ']':
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return nil // json.Valid: only white space follows
			}
			i++
		case ',':
			top := &stack[len(stack)-1]
			top.key = top.obj
			i++
		case '"':
			end, escaped := scanString(data, i)
			top := &stack[len(stack)-1]
			if top.obj && top.key {
				top.key = false
				name := data[i+1 : end-1]
				if escaped {
					var s string
					_ = json.Unmarshal(data[i:end], &s) // valid JSON: cannot fail
					name = []byte(s)
				}
				if top.seen(name) {
					return &DuplicateNameError{Name: string(name), Offset: int64(end)}
				}
			}
			i = end
		default: // white space, ':', a number or a literal
			i++
		}
	}
	return nil // unreachable for valid JSON
}

// seen adds name to the frame's names and reports whether an equal one
// (under simple case folding) was there.
func (f *scanFrame) seen(name []byte) bool {
	if f.set == nil {
		for _, n := range f.names {
			if bytes.EqualFold(n, name) {
				return true
			}
		}
		if len(f.names) < smallObject {
			f.names = append(f.names, name)
			return false
		}
		f.set = make(map[string]struct{}, 2*smallObject)
		for _, n := range f.names {
			f.set[fold(string(n))] = struct{}{}
		}
		f.names = nil
	}
	k := fold(string(name))
	if _, dup := f.set[k]; dup {
		return true
	}
	f.set[k] = struct{}{}
	return false
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') {
		i++
	}
	return i
}

// scanString returns the index just after the string that starts with
// the quote at data[i] (valid JSON), and whether it holds an escape.
func scanString(data []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			escaped = true
			j++ // the escaped byte; a \u escape's hex digits are not quotes
		case '"':
			return j + 1, escaped
		}
	}
	return len(data), escaped
}

// Unmarshal checks data with [CheckObject], then decodes it into v with
// [json.Unmarshal].
func Unmarshal(data []byte, v any) error {
	if err := CheckObject(data); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// fold maps a name to one representative of its Unicode simple case
// folding class, rune by rune, so that two names fold to the same string
// exactly when strings.EqualFold reports them equal.
func fold(s string) string {
	ascii, lower := true, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		lower = lower || ('a' <= c && c <= 'z')
	}
	if ascii {
		// The smallest rune of an ASCII letter's class is its upper case
		// (K and S too, below U+212A KELVIN SIGN and U+017F LONG S).
		if !lower {
			return s
		}
		return strings.ToUpper(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}
