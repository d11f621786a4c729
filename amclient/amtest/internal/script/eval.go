package script

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrFailed is a failure while running a script (Groovy's
// NullPointerException and the like); the node then fails the tree.
var ErrFailed = errors.New("script failed")

type runner struct {
	lang    string
	claims  map[string]map[string]any // state name → verified claims (nil when absent)
	vars    map[string]any
	outcome any
	logf    func(level, msg string)
}

// Run evaluates the script on claims (a state's name, transientState,
// sharedState or nodeState, to the verified claims it holds; nil where it
// holds none) and returns the outcome the script set. logf, if not nil,
// receives the script's logger calls. An error wraps [ErrFailed].
func (d *Program) Run(claims map[string]map[string]any, logf func(level, msg string)) (string, error) {
	r := &runner{lang: d.lang, claims: claims, vars: map[string]any{}, logf: logf}
	if err := r.block(d.body); err != nil {
		return "", err
	}
	s, ok := r.outcome.(string)
	if !ok {
		return "", fmt.Errorf("%w: the script did not set outcome", ErrFailed)
	}
	return s, nil
}

func (r *runner) block(body []stmt) error {
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

func (r *runner) set(name string, v any) {
	if name == "outcome" {
		r.outcome = v
		return
	}
	r.vars[name] = v
}

func (r *runner) eval(x expr) (any, error) {
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
				return nil, fmt.Errorf("%w: cannot read %s of null", ErrFailed, display(k))
			}
			return nil, fmt.Errorf("%w: cannot read %s of %s", ErrFailed, display(k), display(v))
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
			return nil, fmt.Errorf("%w: cannot convert null to a string", ErrFailed)
		}
		return display(v), nil
	case equalsExpr:
		a, err := r.eval(x.x)
		if err != nil {
			return nil, err
		}
		if a == nil {
			return nil, fmt.Errorf("%w: cannot call equals on null", ErrFailed)
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
			if len(ls)+len(rs) > maxBytes {
				return nil, fmt.Errorf("%w: a string longer than %d bytes", ErrFailed, maxBytes)
			}
			return ls + rs, nil
		}
		return compare(x.op, l, rv)
	}
	return nil, fmt.Errorf("%w: unknown expression", ErrFailed)
}

// looseEqual is ==: Groovy compares a string and a number as different
// values; JavaScript converts the string to a number.
func (r *runner) looseEqual(a, b any) bool {
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
			return nil, fmt.Errorf("%w: cannot compare null with %s", ErrFailed, op)
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
	b, _ := json.Marshal(v) // an object or an array, as JSON
	return string(b)
}
