// Package layout checks a Go module against its layout table: the
// Markdown table in docs/layout.md that says, for every package, what it
// owns, which of the module's packages and which third-party modules it
// may import, and what it must not link at all. Its test holds the
// Thingway module to that table, so that the table a newcomer reads is the
// rule the build keeps.
//
// The table's rows run from the top of the module (commands) down to its
// leaves. A package may import the module packages its row names, and they
// must stand below it in the table: dependencies only point down. It may
// import the standard library, and the third-party modules its row names
// (a module path covers its packages). No package it links, directly or
// through others, may be one its row's "must not link" column names, or a
// package under one, other than the row's own packages. Every package has
// a package doc.
//
// The check reads the packages with `go list -json` (non-test files of
// the host platform) and imports nothing outside the standard library.
package layout

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strings"
)

// Rule is one row of the layout table.
type Rule struct {
	// Packages are the module-relative paths the row is for ("gateway",
	// "cmd/gateway"); a path ending in "/..." is a pattern for the package
	// and every package under it, which an exact row overrides.
	Packages []string
	// Owns says what the packages are for.
	Owns string
	// MayImport are the module packages (module-relative, patterns
	// allowed) and the third-party modules (by module path) the packages
	// may import.
	MayImport []string
	// MustNotLink are packages that must not be among the packages'
	// dependencies, with the packages under them: module-relative for the
	// module's own, import paths for others ("net/http").
	MustNotLink []string
	// Line is the row's line in the table's file, for messages.
	Line int
}

// Table is a parsed layout table, its rows in order from top to bottom.
type Table struct {
	Rules []Rule
}

var code = regexp.MustCompile("`([^`]+)`")

// Parse reads the first Markdown table of r whose header's cells are
// package, owns, may import and must not link. In the package, may import
// and must not link cells, each name is written in backquotes; other text
// there (commas, a dash for none, remarks) is ignored.
func Parse(r io.Reader) (*Table, error) {
	sc := bufio.NewScanner(r)
	var t Table
	line, in := 0, false
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(text, "|") {
			if in {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(text, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if !in {
			if len(cells) == 4 && strings.EqualFold(cells[0], "package") && strings.EqualFold(cells[1], "owns") &&
				strings.EqualFold(cells[2], "may import") && strings.EqualFold(cells[3], "must not link") {
				in = true
			}
			continue
		}
		if strings.Trim(text, "|-: ") == "" {
			continue // the header's rule
		}
		if len(cells) != 4 {
			return nil, fmt.Errorf("layout table line %d: %d cells, want 4", line, len(cells))
		}
		rule := Rule{Packages: names(cells[0]), Owns: cells[1], MayImport: names(cells[2]), MustNotLink: names(cells[3]), Line: line}
		if len(rule.Packages) == 0 {
			return nil, fmt.Errorf("layout table line %d: no package named (in backquotes)", line)
		}
		t.Rules = append(t.Rules, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(t.Rules) == 0 {
		return nil, errors.New("no layout table (a table headed | package | owns | may import | must not link |)")
	}
	return &t, nil
}

func names(cell string) []string {
	var out []string
	for _, m := range code.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// Package is what the check needs of a package.
type Package struct {
	ImportPath string
	Doc        string
	Imports    []string // of its non-test files
	Deps       []string // every package it links, transitively
}

// Load lists the packages of the module in dir with `go list -json ./...`
// and returns the module's path with them.
func Load(dir string) (module string, pkgs []Package, err error) {
	out, err := goList(dir, "-m", "-f", "{{.Path}}")
	if err != nil {
		return "", nil, err
	}
	module = strings.TrimSpace(string(out))
	out, err = goList(dir, "-json=ImportPath,Doc,Imports,Deps,Error", "./...")
	if err != nil {
		return "", nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			Package
			Error *struct{ Err string }
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return "", nil, fmt.Errorf("go list: %w", err)
		}
		if p.Error != nil {
			return "", nil, fmt.Errorf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p.Package)
	}
	return module, pkgs, nil
}

func goList(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Options relax the check.
type Options struct {
	// NoDocOK are module-relative packages (patterns allowed) that need no
	// package doc yet.
	NoDocOK []string
}

// Check holds the packages of module to the table and returns every
// breach, each a sentence naming the package and the table's line.
func Check(t *Table, module string, pkgs []Package, opt Options) []error {
	c := checker{t: t, module: module}
	var errs []error
	report := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	// Every name of the table must mean something.
	used := make([]bool, len(t.Rules))
	for _, p := range pkgs {
		if i := c.rule(c.rel(p.ImportPath)); i >= 0 {
			used[i] = true
		}
	}
	for i, r := range t.Rules {
		if !used[i] {
			report("layout table line %d: %s matches no package of the module (a stale row?)", r.Line, strings.Join(r.Packages, ", "))
		}
		for _, m := range r.MayImport {
			j := c.rule(m)
			switch {
			case j < 0 && !thirdParty(m):
				report("layout table line %d: may import %q, which is neither a package of the table nor a third-party module path", r.Line, m)
			case j >= 0 && j <= i && !(j == i && slices.Contains(r.Packages, m)):
				report("layout table line %d: may import %s, which stands at line %d, not below: dependencies must point down", r.Line, m, t.Rules[j].Line)
			}
		}
	}

	for _, p := range pkgs {
		rel := c.rel(p.ImportPath)
		i := c.rule(rel)
		if i < 0 {
			report("package %s has no row in the layout table (docs/layout.md): add one that says what it owns and may import", rel)
			continue
		}
		r := t.Rules[i]
		if strings.TrimSpace(p.Doc) == "" && !slices.ContainsFunc(opt.NoDocOK, func(pat string) bool { return match(pat, rel) }) {
			report("package %s has no package doc (a doc.go that says what it owns)", rel)
		}
		for _, imp := range p.Imports {
			if !c.mayImport(r, imp) {
				report("package %s imports %s, which its row (line %d) does not allow", rel, c.rel(imp), r.Line)
			}
		}
		for _, bad := range r.MustNotLink {
			path := bad
			if c.rule(bad) >= 0 {
				path = module + "/" + bad
			}
			// One report for each name: the name itself, or else the
			// first package under it. A row's own packages, and those
			// under them, are never forbidden to it (amclient/amtest must
			// not link amclient, but may link amclient/amtest/internal/...).
			own := func(d string) bool {
				return slices.ContainsFunc(r.Packages, func(pat string) bool {
					return c.own(d) && match(strings.TrimSuffix(pat, "/...")+"/...", c.rel(d))
				})
			}
			i := slices.IndexFunc(p.Deps, func(d string) bool { return d == path && !own(d) })
			if i < 0 {
				i = slices.IndexFunc(p.Deps, func(d string) bool { return strings.HasPrefix(d, path+"/") && !own(d) })
			}
			if i >= 0 {
				report("package %s links %s (directly or through its imports), which its row (line %d) forbids", rel, c.rel(p.Deps[i]), r.Line)
			}
		}
	}
	return errs
}

type checker struct {
	t      *Table
	module string
}

// rel is path relative to the module, if it is the module's.
func (c checker) rel(path string) string {
	if rest, ok := strings.CutPrefix(path, c.module+"/"); ok {
		return rest
	}
	return path
}

func (c checker) own(path string) bool {
	return path == c.module || strings.HasPrefix(path, c.module+"/")
}

// rule returns the index of the row for the module-relative path: the row
// that names it, or else the row with the longest pattern that covers it;
// -1 if none.
func (c checker) rule(rel string) int {
	best, bestLen := -1, -1
	for i, r := range c.t.Rules {
		for _, p := range r.Packages {
			switch {
			case p == rel:
				return i
			case strings.HasSuffix(p, "/...") && match(p, rel) && len(p) > bestLen:
				best, bestLen = i, len(p)
			}
		}
	}
	return best
}

func (c checker) mayImport(r Rule, imp string) bool {
	if !c.own(imp) {
		if !thirdParty(imp) {
			return true // the standard library
		}
		return slices.ContainsFunc(r.MayImport, func(m string) bool { return imp == m || strings.HasPrefix(imp, m+"/") })
	}
	rel := c.rel(imp)
	return slices.ContainsFunc(r.MayImport, func(m string) bool { return match(m, rel) })
}

// match reports whether the module-relative pattern (a path, or a path
// ending in "/...") covers rel.
func match(pattern, rel string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return rel == base || strings.HasPrefix(rel, base+"/")
	}
	return pattern == rel
}

// thirdParty reports whether path is outside the standard library: its
// first element has a dot, as a domain name does.
func thirdParty(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return strings.Contains(first, ".")
}
