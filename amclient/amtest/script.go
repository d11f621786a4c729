package amtest

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// VerifiedClaimsKey is the node-state key under which the Authenticate Thing
// node leaves the claims of the JWT it verified, in both shared and
// transient state.
const VerifiedClaimsKey = "org.forgerock.am.iot.jwt.pop.verified_claims"

// ScriptSubset describes the scripts a ScriptedDecisionNode may run in the
// local AM, which has no Groovy or JavaScript engine. It is part of the 400
// answer to a node whose script is outside the subset.
const ScriptSubset = "the local AM runs decision scripts (Groovy or JavaScript) that only compare the verified " +
	"claims with literals: statements are `def`/`var`/`let`/`const` declarations, assignments, " +
	"`outcome = \"true\"` or `outcome = \"false\"`, `if (...) {...} else {...}` and `logger.<level>(...)`; " +
	"values are string, number, true/false and null literals, " +
	"transientState/sharedState/nodeState.get(\"" + VerifiedClaimsKey + "\"), " +
	"and a claim of it read with .get(\"name\"), [\"name\"] or .name, optionally followed by .asString() or .toString(); " +
	"operators are == != === !== < <= > >= && || ! + and parentheses"

// maxScriptDepth bounds the nesting of expressions and blocks, so that a
// hostile script cannot exhaust the parser's stack.
const maxScriptDepth = 64

// maxScriptBytes bounds the source the parser reads.
const maxScriptBytes = 64 << 10

// scriptError is a script outside the subset, with its position.
type scriptError struct {
	line, col int
	msg       string
}

func (e *scriptError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.line, e.col, e.msg)
}

// decisionScript is a compiled decision script.
type decisionScript struct {
	lang     string // GROOVY or JAVASCRIPT
	body     []stmt
	outcomes []string // every literal assigned to outcome
}

// --- lexer ---

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tOp
)

type scriptToken struct {
	kind      tokKind
	text      string // identifier, operator, or the decoded string
	num       float64
	line, col int
}

func lexScript(src string) ([]scriptToken, error) {
	if len(src) > maxScriptBytes {
		return nil, &scriptError{1, 1, fmt.Sprintf("the script is longer than %d bytes", maxScriptBytes)}
	}
	if !utf8.ValidString(src) {
		return nil, &scriptError{1, 1, "the script is not UTF-8 text"}
	}
	var toks []scriptToken
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
				return nil, &scriptError{l, cl, "unterminated comment"}
			}
			adv(end + 4)
			continue
		}
		l, cl := line, col
		switch {
		case c == '"' || c == '\'':
			if strings.HasPrefix(src[i:], `"""`) || strings.HasPrefix(src[i:], `'''`) {
				return nil, &scriptError{l, cl, "multi-line strings are not supported"}
			}
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(src) || src[j] == '\n' {
					return nil, &scriptError{l, cl, "unterminated string"}
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
						return nil, &scriptError{l, cl, fmt.Sprintf("unsupported escape \\%c in a string", e)}
					}
					j += 2
					continue
				}
				if c == '"' && src[j] == '$' && j+1 < len(src) && (src[j+1] == '{' || isIdentStart(rune(src[j+1]))) {
					return nil, &scriptError{l, cl, "string interpolation ($) is not supported; use a single-quoted string"}
				}
				b.WriteByte(src[j])
				j++
			}
			toks = append(toks, scriptToken{kind: tString, text: b.String(), line: l, col: cl})
			adv(j + 1 - i)
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.') {
				j++
			}
			if j < len(src) && (isIdentStart(rune(src[j])) || src[j] >= '0' && src[j] <= '9') {
				return nil, &scriptError{l, cl, fmt.Sprintf("unsupported number %q", src[i:j+1])}
			}
			n, err := strconv.ParseFloat(src[i:j], 64)
			if err != nil || math.IsInf(n, 0) {
				return nil, &scriptError{l, cl, fmt.Sprintf("unsupported number %q", src[i:j])}
			}
			toks = append(toks, scriptToken{kind: tNumber, num: n, text: src[i:j], line: l, col: cl})
			adv(j - i)
		case isIdentStart(rune(c)):
			j := i
			for j < len(src) && (isIdentStart(rune(src[j])) || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			toks = append(toks, scriptToken{kind: tIdent, text: src[i:j], line: l, col: cl})
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
				return nil, &scriptError{l, cl, fmt.Sprintf("unsupported character %q", r)}
			}
			toks = append(toks, scriptToken{kind: tOp, text: op, line: l, col: cl})
			adv(len(op))
		}
	}
	toks = append(toks, scriptToken{kind: tEOF, line: line, col: col})
	return toks, nil
}

func isIdentStart(r rune) bool { return r == '_' || r == '$' || r < 0x80 && unicode.IsLetter(r) }

// --- syntax tree ---

type expr interface{}

type (
	litExpr    struct{ v any }
	nameExpr   struct{ name string }
	claimsExpr struct{ state string } // state.get(VerifiedClaimsKey)
	getExpr    struct{ x, key expr }
	convExpr   struct{ x expr } // .asString() / .toString()
	equalsExpr struct{ x, y expr }
	notExpr    struct{ x expr }
	binExpr    struct {
		op   string
		l, r expr
	}
	assignExpr struct {
		name string
		x    expr
	}
)

type stmt interface{}

type (
	assignStmt struct {
		name string
		x    expr
	}
	ifStmt struct {
		cond      expr
		then, els []stmt
	}
	logStmt struct {
		level string
		args  []expr
	}
)

// --- parser ---

type scriptParser struct {
	toks     []scriptToken
	pos      int
	depth    int
	declared map[string]bool
	outcomes []string
}

// compileScript parses a decision script in the subset. lang is the
// script's language (GROOVY or JAVASCRIPT), which decides how == compares
// a string with a number.
func compileScript(src, lang string) (*decisionScript, error) {
	lang = strings.ToUpper(lang)
	if lang != "GROOVY" && lang != "JAVASCRIPT" {
		return nil, fmt.Errorf("language %q is not GROOVY or JAVASCRIPT", lang)
	}
	toks, err := lexScript(src)
	if err != nil {
		return nil, err
	}
	p := &scriptParser{toks: toks, declared: map[string]bool{}}
	var body []stmt
	for p.peek().kind != tEOF {
		s, err := p.statement()
		if err != nil {
			return nil, err
		}
		if s != nil {
			body = append(body, s)
		}
	}
	if len(p.outcomes) == 0 {
		return nil, &scriptError{1, 1, `the script never sets outcome (write outcome = "true" or outcome = "false")`}
	}
	return &decisionScript{lang: lang, body: body, outcomes: p.outcomes}, nil
}

func (p *scriptParser) peek() scriptToken { return p.toks[p.pos] }

func (p *scriptParser) next() scriptToken {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *scriptParser) errAt(t scriptToken, format string, args ...any) error {
	return &scriptError{t.line, t.col, fmt.Sprintf(format, args...)}
}

func (p *scriptParser) isOp(s string) bool {
	t := p.peek()
	return t.kind == tOp && t.text == s
}

func (p *scriptParser) isWord(s string) bool {
	t := p.peek()
	return t.kind == tIdent && t.text == s
}

func (p *scriptParser) expectOp(s string) error {
	t := p.next()
	if t.kind != tOp || t.text != s {
		return p.errAt(t, "expected %q, found %s", s, describe(t))
	}
	return nil
}

func describe(t scriptToken) string {
	switch t.kind {
	case tEOF:
		return "the end of the script"
	case tString:
		return strconv.Quote(t.text)
	}
	return strconv.Quote(t.text)
}

func (p *scriptParser) enter() error {
	p.depth++
	if p.depth > maxScriptDepth {
		return p.errAt(p.peek(), "the script is nested too deeply")
	}
	return nil
}

var reservedNames = map[string]bool{"outcome": true, "transientState": true, "sharedState": true, "nodeState": true,
	"logger": true, "null": true, "true": true, "false": true, "if": true, "else": true, "def": true, "var": true,
	"let": true, "const": true, "undefined": true, "String": true}

func (p *scriptParser) statement() (stmt, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	t := p.peek()
	switch {
	case t.kind == tOp && t.text == ";":
		p.next()
		return nil, nil
	case t.kind == tIdent && t.text == "if":
		return p.ifStatement()
	case t.kind == tIdent && (t.text == "def" || t.text == "var" || t.text == "let" || t.text == "const" || t.text == "String"):
		p.next()
		name := p.next()
		if name.kind != tIdent {
			return nil, p.errAt(name, "expected a variable name, found %s", describe(name))
		}
		if name.text == "outcome" {
			return p.assignment(name)
		}
		if reservedNames[name.text] {
			return nil, p.errAt(name, "%q cannot be declared", name.text)
		}
		p.declared[name.text] = true
		if !p.isOp("=") {
			p.skipSemicolon()
			return assignStmt{name: name.text, x: litExpr{nil}}, nil
		}
		return p.assignment(name)
	case t.kind == tIdent && t.text == "logger":
		p.next()
		if err := p.expectOp("."); err != nil {
			return nil, err
		}
		lvl := p.next()
		switch lvl.text {
		case "error", "warning", "warn", "message", "info", "debug":
		default:
			return nil, p.errAt(lvl, "logger has no method %s (use error, warning, message, info or debug)", describe(lvl))
		}
		if err := p.expectOp("("); err != nil {
			return nil, err
		}
		var args []expr
		for !p.isOp(")") {
			if len(args) > 0 {
				if err := p.expectOp(","); err != nil {
					return nil, err
				}
			}
			a, err := p.expression()
			if err != nil {
				return nil, err
			}
			args = append(args, a)
		}
		p.next()
		p.skipSemicolon()
		return logStmt{level: lvl.text, args: args}, nil
	case t.kind == tIdent && (t.text == "outcome" || p.declared[t.text]):
		p.next()
		return p.assignment(t)
	case t.kind == tIdent && (t.text == "transientState" || t.text == "sharedState" || t.text == "nodeState"):
		return nil, p.errAt(t, "%s can only be read, as %s.get(\"%s\")", t.text, t.text, VerifiedClaimsKey)
	case t.kind == tIdent && t.text == "action":
		return nil, p.errAt(t, "action (the next-generation script API) is not supported; set outcome instead")
	case t.kind == tIdent:
		return nil, p.errAt(t, "unknown name %q", t.text)
	}
	return nil, p.errAt(t, "unexpected %s", describe(t))
}

func (p *scriptParser) skipSemicolon() {
	if p.isOp(";") {
		p.next()
	}
}

// assignment parses "= expr" after the name.
func (p *scriptParser) assignment(name scriptToken) (stmt, error) {
	if err := p.expectOp("="); err != nil {
		return nil, err
	}
	valTok := p.peek()
	x, err := p.expression()
	if err != nil {
		return nil, err
	}
	if name.text == "outcome" {
		if err := p.noteOutcome(valTok, x); err != nil {
			return nil, err
		}
	}
	p.skipSemicolon()
	return assignStmt{name: name.text, x: x}, nil
}

func (p *scriptParser) noteOutcome(at scriptToken, x expr) error {
	l, ok := x.(litExpr)
	s, isStr := l.v.(string)
	if !ok || !isStr || (s != "true" && s != "false") {
		return p.errAt(at, `outcome may only be set to "true" or "false"`)
	}
	for _, o := range p.outcomes {
		if o == s {
			return nil
		}
	}
	p.outcomes = append(p.outcomes, s)
	return nil
}

func (p *scriptParser) ifStatement() (stmt, error) {
	p.next() // if
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	cond, err := p.expression()
	if err != nil {
		return nil, err
	}
	if err := p.expectOp(")"); err != nil {
		return nil, err
	}
	then, err := p.block()
	if err != nil {
		return nil, err
	}
	s := ifStmt{cond: cond, then: then}
	if p.isWord("else") {
		p.next()
		if p.isWord("if") {
			elif, err := p.ifStatement()
			if err != nil {
				return nil, err
			}
			s.els = []stmt{elif}
		} else if s.els, err = p.block(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// block parses { statements } or a single statement.
func (p *scriptParser) block() ([]stmt, error) {
	if !p.isOp("{") {
		s, err := p.statement()
		if err != nil || s == nil {
			return nil, err
		}
		return []stmt{s}, nil
	}
	p.next()
	var out []stmt
	for !p.isOp("}") {
		if p.peek().kind == tEOF {
			return nil, p.errAt(p.peek(), "missing }")
		}
		s, err := p.statement()
		if err != nil {
			return nil, err
		}
		if s != nil {
			out = append(out, s)
		}
	}
	p.next()
	return out, nil
}

func (p *scriptParser) expression() (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	start := p.peek()
	left, err := p.binary(0)
	if err != nil {
		return nil, err
	}
	if !p.isOp("=") {
		return left, nil
	}
	// Groovy's and JavaScript's assignment is an expression whose value
	// is the assigned value: if (claims = null || ...) assigns.
	n, ok := left.(nameExpr)
	if !ok || (n.name != "outcome" && !p.declared[n.name]) {
		return nil, p.errAt(start, "only a declared variable or outcome can be assigned")
	}
	p.next()
	valTok := p.peek()
	x, err := p.expression()
	if err != nil {
		return nil, err
	}
	if n.name == "outcome" {
		if err := p.noteOutcome(valTok, x); err != nil {
			return nil, err
		}
	}
	return assignExpr{name: n.name, x: x}, nil
}

var binaryLevels = [][]string{{"||"}, {"&&"}, {"==", "!=", "===", "!=="}, {"<", "<=", ">", ">="}, {"+"}}

func (p *scriptParser) binary(level int) (expr, error) {
	if level == len(binaryLevels) {
		return p.unary()
	}
	l, err := p.binary(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		found := false
		for _, op := range binaryLevels[level] {
			if t.kind == tOp && t.text == op {
				found = true
			}
		}
		if !found {
			return l, nil
		}
		if err := p.enter(); err != nil {
			return nil, err
		}
		p.next()
		r, err := p.binary(level + 1)
		p.depth--
		if err != nil {
			return nil, err
		}
		l = binExpr{op: t.text, l: l, r: r}
	}
}

func (p *scriptParser) unary() (expr, error) {
	if p.isOp("!") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notExpr{x}, nil
	}
	return p.postfix()
}

func (p *scriptParser) postfix() (expr, error) {
	t := p.next()
	var x expr
	switch {
	case t.kind == tString:
		x = litExpr{t.text}
	case t.kind == tNumber:
		x = litExpr{t.num}
	case t.kind == tIdent && (t.text == "null" || t.text == "undefined"):
		x = litExpr{nil}
	case t.kind == tIdent && (t.text == "true" || t.text == "false"):
		x = litExpr{t.text == "true"}
	case t.kind == tIdent && (t.text == "transientState" || t.text == "sharedState" || t.text == "nodeState"):
		if err := p.expectOp("."); err != nil {
			return nil, err
		}
		m := p.next()
		if m.kind != tIdent || m.text != "get" {
			return nil, p.errAt(m, "only %s.get(\"%s\") is supported", t.text, VerifiedClaimsKey)
		}
		if err := p.expectOp("("); err != nil {
			return nil, err
		}
		k := p.next()
		if k.kind != tString || k.text != VerifiedClaimsKey {
			return nil, p.errAt(k, "only the state key %q can be read", VerifiedClaimsKey)
		}
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
		x = claimsExpr{state: t.text}
	case t.kind == tIdent && (t.text == "outcome" || p.declared[t.text]):
		x = nameExpr{t.text}
	case t.kind == tIdent:
		return nil, p.errAt(t, "unknown name %q", t.text)
	case t.kind == tOp && t.text == "(":
		inner, err := p.expression()
		if err != nil {
			return nil, err
		}
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
		x = inner
	default:
		return nil, p.errAt(t, "unexpected %s", describe(t))
	}
	for {
		switch {
		case p.isOp("."):
			p.next()
			m := p.next()
			if m.kind != tIdent {
				return nil, p.errAt(m, "expected a name after '.', found %s", describe(m))
			}
			switch m.text {
			case "get", "equals":
				if err := p.expectOp("("); err != nil {
					return nil, err
				}
				arg, err := p.expression()
				if err != nil {
					return nil, err
				}
				if err := p.expectOp(")"); err != nil {
					return nil, err
				}
				if m.text == "get" {
					x = getExpr{x: x, key: arg}
				} else {
					x = equalsExpr{x: x, y: arg}
				}
			case "asString", "toString":
				if err := p.expectOp("("); err != nil {
					return nil, err
				}
				if err := p.expectOp(")"); err != nil {
					return nil, err
				}
				x = convExpr{x}
			default:
				if p.isOp("(") {
					return nil, p.errAt(m, "method %s is not supported (get, equals, asString and toString are)", m.text)
				}
				x = getExpr{x: x, key: litExpr{m.text}}
			}
		case p.isOp("["):
			p.next()
			k, err := p.expression()
			if err != nil {
				return nil, err
			}
			if err := p.expectOp("]"); err != nil {
				return nil, err
			}
			x = getExpr{x: x, key: k}
		default:
			return x, nil
		}
	}
}

// --- evaluation ---

// errScript is a failure while running a script (Groovy's
// NullPointerException and the like); the node then fails the tree.
var errScript = errors.New("script failed")

type scriptRun struct {
	lang    string
	claims  map[string]map[string]any // state name → verified claims (nil when absent)
	vars    map[string]any
	outcome any
	logf    func(level, msg string)
}

// run evaluates the script and returns the outcome it set.
func (d *decisionScript) run(claims map[string]map[string]any, logf func(level, msg string)) (string, error) {
	r := &scriptRun{lang: d.lang, claims: claims, vars: map[string]any{}, logf: logf}
	if err := r.block(d.body); err != nil {
		return "", err
	}
	s, ok := r.outcome.(string)
	if !ok {
		return "", fmt.Errorf("%w: the script did not set outcome", errScript)
	}
	return s, nil
}

func (r *scriptRun) block(body []stmt) error {
	for _, s := range body {
		switch s := s.(type) {
		case assignStmt:
			v, err := r.eval(s.x)
			if err != nil {
				return err
			}
			r.set(s.name, v)
		case ifStmt:
			c, err := r.eval(s.cond)
			if err != nil {
				return err
			}
			if truthy(c) {
				err = r.block(s.then)
			} else {
				err = r.block(s.els)
			}
			if err != nil {
				return err
			}
		case logStmt:
			var parts []string
			for _, a := range s.args {
				v, err := r.eval(a)
				if err != nil {
					return err
				}
				parts = append(parts, display(v))
			}
			if r.logf != nil {
				r.logf(s.level, strings.Join(parts, " "))
			}
		}
	}
	return nil
}

func (r *scriptRun) set(name string, v any) {
	if name == "outcome" {
		r.outcome = v
		return
	}
	r.vars[name] = v
}

func (r *scriptRun) eval(x expr) (any, error) {
	switch x := x.(type) {
	case litExpr:
		return x.v, nil
	case nameExpr:
		if x.name == "outcome" {
			return r.outcome, nil
		}
		return r.vars[x.name], nil
	case claimsExpr:
		if c := r.claims[x.state]; c != nil {
			return c, nil
		}
		return nil, nil
	case getExpr:
		v, err := r.eval(x.x)
		if err != nil {
			return nil, err
		}
		k, err := r.eval(x.key)
		if err != nil {
			return nil, err
		}
		m, ok := v.(map[string]any)
		if !ok {
			if v == nil {
				return nil, fmt.Errorf("%w: cannot read %s of null", errScript, display(k))
			}
			return nil, fmt.Errorf("%w: cannot read %s of %s", errScript, display(k), display(v))
		}
		ks, ok := k.(string)
		if !ok {
			return nil, nil
		}
		return m[ks], nil
	case convExpr:
		v, err := r.eval(x.x)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, fmt.Errorf("%w: cannot convert null to a string", errScript)
		}
		return display(v), nil
	case equalsExpr:
		a, err := r.eval(x.x)
		if err != nil {
			return nil, err
		}
		if a == nil {
			return nil, fmt.Errorf("%w: cannot call equals on null", errScript)
		}
		b, err := r.eval(x.y)
		if err != nil {
			return nil, err
		}
		return strictEqual(a, b), nil
	case notExpr:
		v, err := r.eval(x.x)
		if err != nil {
			return nil, err
		}
		return !truthy(v), nil
	case assignExpr:
		v, err := r.eval(x.x)
		if err != nil {
			return nil, err
		}
		r.set(x.name, v)
		return v, nil
	case binExpr:
		l, err := r.eval(x.l)
		if err != nil {
			return nil, err
		}
		switch x.op {
		case "&&":
			if !truthy(l) {
				return false, nil
			}
			rv, err := r.eval(x.r)
			return truthy(rv), err
		case "||":
			if truthy(l) {
				return true, nil
			}
			rv, err := r.eval(x.r)
			return truthy(rv), err
		}
		rv, err := r.eval(x.r)
		if err != nil {
			return nil, err
		}
		switch x.op {
		case "==":
			return r.looseEqual(l, rv), nil
		case "!=":
			return !r.looseEqual(l, rv), nil
		case "===":
			return strictEqual(l, rv), nil
		case "!==":
			return !strictEqual(l, rv), nil
		case "+":
			ln, lok := l.(float64)
			rn, rok := rv.(float64)
			if lok && rok {
				return ln + rn, nil
			}
			ls, rs := display(l), display(rv)
			if len(ls)+len(rs) > maxScriptBytes {
				return nil, fmt.Errorf("%w: a string longer than %d bytes", errScript, maxScriptBytes)
			}
			return ls + rs, nil
		}
		return compare(x.op, l, rv)
	}
	return nil, fmt.Errorf("%w: unknown expression", errScript)
}

// looseEqual is ==: Groovy compares a string and a number as different
// values; JavaScript converts the string to a number.
func (r *scriptRun) looseEqual(a, b any) bool {
	if r.lang == "JAVASCRIPT" {
		as, aStr := a.(string)
		bn, bNum := b.(float64)
		if aStr && bNum {
			n, err := strconv.ParseFloat(strings.TrimSpace(as), 64)
			return err == nil && n == bn
		}
		if _, bStr := b.(string); bStr {
			if _, aNum := a.(float64); aNum {
				return r.looseEqual(b, a)
			}
		}
	}
	return strictEqual(a, b)
}

func strictEqual(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case string:
		s, ok := b.(string)
		return ok && a == s
	case float64:
		n, ok := b.(float64)
		return ok && a == n
	case bool:
		v, ok := b.(bool)
		return ok && a == v
	}
	return false // maps and arrays are equal only to themselves; scripts cannot hold two references
}

func compare(op string, a, b any) (any, error) {
	var c int
	switch a := a.(type) {
	case float64:
		n, ok := b.(float64)
		if !ok {
			return false, nil
		}
		c = cmpOrdered(a, n)
	case string:
		s, ok := b.(string)
		if !ok {
			return false, nil
		}
		c = strings.Compare(a, s)
	default:
		if a == nil || b == nil {
			return nil, fmt.Errorf("%w: cannot compare null with %s", errScript, op)
		}
		return false, nil
	}
	switch op {
	case "<":
		return c < 0, nil
	case "<=":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	}
	return c >= 0, nil
}

func cmpOrdered(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// truthy is Groovy truth (and JavaScript's, for the values a script holds).
func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case float64:
		return v != 0
	case map[string]any:
		return len(v) > 0
	case []any:
		return len(v) > 0
	}
	return true
}

// display renders a value as the scripts' string conversion does.
func display(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return v
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return claimString(v)
}
