package script

import (
	"fmt"
	"strconv"
	"strings"
)

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

type parser struct {
	toks     []token
	pos      int
	depth    int
	declared map[string]bool
	outcomes []string
}

// Compile parses a decision script in the subset. lang is the
// script's language (GROOVY or JAVASCRIPT), which decides how == compares
// a string with a number.
func Compile(src, lang string) (*Program, error) {
	lang = strings.ToUpper(lang)
	if lang != "GROOVY" && lang != "JAVASCRIPT" {
		return nil, fmt.Errorf("language %q is not GROOVY or JAVASCRIPT", lang)
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, declared: map[string]bool{}}
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
		return nil, &Error{1, 1, `the script never sets outcome (write outcome = "true" or outcome = "false")`}
	}
	return &Program{lang: lang, body: body, outcomes: p.outcomes}, nil
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return &Error{t.line, t.col, fmt.Sprintf(format, args...)}
}

func (p *parser) isOp(s string) bool {
	t := p.peek()
	return t.kind == tOp && t.text == s
}

func (p *parser) isWord(s string) bool {
	t := p.peek()
	return t.kind == tIdent && t.text == s
}

func (p *parser) expectOp(s string) error {
	t := p.next()
	if t.kind != tOp || t.text != s {
		return p.errAt(t, "expected %q, found %s", s, describe(t))
	}
	return nil
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "the end of the script"
	case tString:
		return strconv.Quote(t.text)
	}
	return strconv.Quote(t.text)
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errAt(p.peek(), "the script is nested too deeply")
	}
	return nil
}

var reservedNames = map[string]bool{"outcome": true, "transientState": true, "sharedState": true, "nodeState": true,
	"logger": true, "null": true, "true": true, "false": true, "if": true, "else": true, "def": true, "var": true,
	"let": true, "const": true, "undefined": true, "String": true}

func (p *parser) statement() (stmt, error) {
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

func (p *parser) skipSemicolon() {
	if p.isOp(";") {
		p.next()
	}
}

// assignment parses "= expr" after the name.
func (p *parser) assignment(name token) (stmt, error) {
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

func (p *parser) noteOutcome(at token, x expr) error {
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

func (p *parser) ifStatement() (stmt, error) {
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
func (p *parser) block() ([]stmt, error) {
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

func (p *parser) expression() (expr, error) {
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

func (p *parser) binary(level int) (expr, error) {
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

func (p *parser) unary() (expr, error) {
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

func (p *parser) postfix() (expr, error) {
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
