package script

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// --- lexer ---

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tOp
)

type token struct {
	kind      tokKind
	text      string // identifier, operator, or the decoded string
	num       float64
	line, col int
}

func lex(src string) ([]token, error) {
	if len(src) > maxBytes {
		return nil, &Error{1, 1, fmt.Sprintf("the script is longer than %d bytes", maxBytes)}
	}
	if !utf8.ValidString(src) {
		return nil, &Error{1, 1, "the script is not UTF-8 text"}
	}
	var toks []token
	line, col := 1, 1
	i := 0
	adv := func(n int) {
		for k := 0; k < n && i < len(src); k++ {
			if src[i] == '\n' {
				line, col = line+1, 1
			} else if src[i]&0xC0 != 0x80 {
				col++
			}
			i++
		}
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f':
			adv(1)
			continue
		case strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				adv(1)
			}
			continue
		case strings.HasPrefix(src[i:], "/*"):
			l, cl := line, col
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, &Error{l, cl, "unterminated comment"}
			}
			adv(end + 4)
			continue
		}
		l, cl := line, col
		switch {
		case c == '"' || c == '\'':
			if strings.HasPrefix(src[i:], `"""`) || strings.HasPrefix(src[i:], `'''`) {
				return nil, &Error{l, cl, "multi-line strings are not supported"}
			}
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(src) || src[j] == '\n' {
					return nil, &Error{l, cl, "unterminated string"}
				}
				if src[j] == c {
					break
				}
				if src[j] == '\\' && j+1 < len(src) {
					switch e := src[j+1]; e {
					case '"', '\'', '\\', '/':
						b.WriteByte(e)
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case 'r':
						b.WriteByte('\r')
					default:
						return nil, &Error{l, cl, fmt.Sprintf("unsupported escape \\%c in a string", e)}
					}
					j += 2
					continue
				}
				if c == '"' && src[j] == '$' && j+1 < len(src) && (src[j+1] == '{' || isIdentStart(rune(src[j+1]))) {
					return nil, &Error{l, cl, "string interpolation ($) is not supported; use a single-quoted string"}
				}
				b.WriteByte(src[j])
				j++
			}
			toks = append(toks, token{kind: tString, text: b.String(), line: l, col: cl})
			adv(j + 1 - i)
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.') {
				j++
			}
			if j < len(src) && (isIdentStart(rune(src[j])) || src[j] >= '0' && src[j] <= '9') {
				return nil, &Error{l, cl, fmt.Sprintf("unsupported number %q", src[i:j+1])}
			}
			n, err := strconv.ParseFloat(src[i:j], 64)
			if err != nil || math.IsInf(n, 0) {
				return nil, &Error{l, cl, fmt.Sprintf("unsupported number %q", src[i:j])}
			}
			toks = append(toks, token{kind: tNumber, num: n, text: src[i:j], line: l, col: cl})
			adv(j - i)
		case isIdentStart(rune(c)):
			j := i
			for j < len(src) && (isIdentStart(rune(src[j])) || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			toks = append(toks, token{kind: tIdent, text: src[i:j], line: l, col: cl})
			adv(j - i)
		default:
			op := ""
			for _, o := range []string{"===", "!==", "==", "!=", "<=", ">=", "&&", "||", "=", "!", "<", ">", "+", "(", ")", "{", "}", "[", "]", ".", ",", ";"} {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(src[i:])
				return nil, &Error{l, cl, fmt.Sprintf("unsupported character %q", r)}
			}
			toks = append(toks, token{kind: tOp, text: op, line: l, col: cl})
			adv(len(op))
		}
	}
	toks = append(toks, token{kind: tEOF, line: line, col: col})
	return toks, nil
}

func isIdentStart(r rune) bool { return r == '_' || r == '$' || r < 0x80 && unicode.IsLetter(r) }
