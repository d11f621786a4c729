package layout_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thingway/thingway/internal/layout"
)

// table is the layout table of the synthetic module that the tests below
// build: app over store over codec; store must link neither net/http
// nor codec/extra, which the clean module does not have.
const table = `# Layout

Text before the table is not part of it.

| package | owns | may import | must not link |
|---|---|---|---|
| ` + "`app`" + ` | the program | ` + "`store`, `codec`" + ` | — |
| ` + "`store`" + ` | storage | ` + "`codec`" + ` | ` + "`net/http`, `codec/extra`" + ` |
| ` + "`codec`, `codec/...`" + ` | encoding | ` + "`codec/...`" + ` | ` + "`app`" + ` |

| other | table |
|---|---|
| ` + "`ignored`" + ` | x |
`

// module writes a Go module example.com/m into a new directory, one
// package per entry of files (its module-relative path) with that source,
// and returns the directory. The module requires a third-party module
// example.org/x, which a replace directive finds in the directory third/x
// (a module of its own, so not one of example.com/m's packages).
func module(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.22\n\nrequire example.org/x v0.0.0\n\nreplace example.org/x => ./third/x\n")
	write("third/x/go.mod", "module example.org/x\n\ngo 1.22\n")
	write("third/x/x.go", "// Package x is a third-party package.\npackage x\n")
	for pkg, src := range files {
		write(pkg+"/"+filepath.Base(pkg)+".go", src)
	}
	return dir
}

// clean is the synthetic module as its table allows.
func clean() map[string]string {
	return map[string]string{
		"app":        "// Package app is the program.\npackage app\n\nimport (\n\t_ \"example.com/m/store\"\n\t_ \"net/http\"\n)\n",
		"store":      "// Package store stores.\npackage store\n\nimport _ \"example.com/m/codec\"\n",
		"codec":      "// Package codec encodes.\npackage codec\n\nimport _ \"example.com/m/codec/base\"\n",
		"codec/base": "// Package base is codec's base.\npackage base\n\nimport _ \"strings\"\n",
	}
}

// check parses tbl, loads the module of files and checks it.
func check(t *testing.T, tbl string, files map[string]string) []string {
	t.Helper()
	parsed, err := layout.Parse(strings.NewReader(tbl))
	if err != nil {
		t.Fatal(err)
	}
	mod, pkgs, err := layout.Load(module(t, files))
	if err != nil {
		t.Fatal(err)
	}
	if mod != "example.com/m" || len(pkgs) != len(files) {
		t.Fatalf("Load: module %q, %d packages, want example.com/m and %d", mod, len(pkgs), len(files))
	}
	var out []string
	for _, err := range layout.Check(parsed, mod, pkgs, layout.Options{}) {
		out = append(out, err.Error())
	}
	return out
}

func TestParse(t *testing.T) {
	tbl, err := layout.Parse(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	if len(tbl.Rules) != 3 {
		t.Fatalf("%d rules, want 3: %+v", len(tbl.Rules), tbl.Rules)
	}
	r := tbl.Rules[2]
	if strings.Join(r.Packages, " ") != "codec codec/..." || r.Owns != "encoding" ||
		strings.Join(r.MayImport, " ") != "codec/..." || strings.Join(r.MustNotLink, " ") != "app" || r.Line != 9 {
		t.Errorf("third rule = %+v", r)
	}
	if len(tbl.Rules[0].MustNotLink) != 0 {
		t.Errorf("a dash is no name: %+v", tbl.Rules[0])
	}
	for _, bad := range []string{"no table here\n", "| package | owns | may import | must not link |\n|---|---|---|---|\n| `a` | two | cells |\n"} {
		if _, err := layout.Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("Parse(%q) did not fail", bad)
		}
	}
}

func TestCheckClean(t *testing.T) {
	if errs := check(t, table, clean()); len(errs) != 0 {
		t.Errorf("the module as its table allows: %q", errs)
	}
}

// Each breach the check exists for, added to the clean module or its
// table, fails with a message that names the package and the rule.
func TestCheckBreaches(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(files map[string]string) // of the module
		table string                        // if not the default
		want  string
	}{
		{name: "import not in the row", want: "package app imports codec, which its row (line 7) does not allow",
			table: strings.Replace(table, "`store`, `codec`", "`store`", 1),
			edit: func(f map[string]string) {
				f["app"] = strings.Replace(f["app"], "import (\n", "import (\n\t_ \"example.com/m/codec\"\n", 1)
			}},
		{name: "forbidden direct link", want: "package store links net/http (directly or through its imports), which its row (line 8) forbids",
			edit: func(f map[string]string) { f["store"] += "\nimport _ \"net/http\"\n" }},
		{name: "forbidden link through a dependency", want: "package store links net/http (directly or through its imports), which its row (line 8) forbids",
			edit: func(f map[string]string) { f["codec/base"] += "\nimport _ \"net/http/httptest\"\n" }},
		{name: "forbidden module package", want: "package store links codec/extra (directly or through its imports), which its row (line 8) forbids",
			edit: func(f map[string]string) {
				f["codec/extra"] = "// Package extra is more of codec.\npackage extra\n"
				f["codec"] += "\nimport _ \"example.com/m/codec/extra\"\n"
			}},
		{name: "third-party import", want: "package store imports example.org/x, which its row (line 8) does not allow",
			edit: func(f map[string]string) { f["store"] += "\nimport _ \"example.org/x\"\n" }},
		{name: "third-party import allowed", want: "",
			table: strings.Replace(table, "| storage | `codec` |", "| storage | `codec`, `example.org/x` |", 1),
			edit:  func(f map[string]string) { f["store"] += "\nimport _ \"example.org/x\"\n" }},
		{name: "dependency pointing up", want: "layout table line 8: may import app, which stands at line 7, not below",
			table: strings.Replace(table, "| storage | `codec` |", "| storage | `codec`, `app` |", 1)},
		{name: "unknown name", want: `layout table line 7: may import "nothing"`,
			table: strings.Replace(table, "`store`, `codec`", "`store`, `codec`, `nothing`", 1)},
		{name: "package without a row", want: "package tools has no row in the layout table",
			edit: func(f map[string]string) { f["tools"] = "// Package tools is new.\npackage tools\n" }},
		{name: "stale row", want: "layout table line 7: app matches no package",
			edit: func(f map[string]string) { delete(f, "app") }},
		{name: "own packages under a forbidden name", want: "",
			table: strings.Replace(table, "| `codec`, `codec/...` |", "| `store/local/...` | local storage | `store/local/...` | `store` |\n| `codec`, `codec/...` |", 1),
			edit: func(f map[string]string) {
				f["store/local"] = "// Package local stores locally.\npackage local\n\nimport _ \"example.com/m/store/local/disk\"\n"
				f["store/local/disk"] = "// Package disk is local's disk.\npackage disk\n"
			}},
		{name: "packages under a row's own under a forbidden name", want: "",
			table: strings.Replace(table, "| `codec`, `codec/...` |", "| `store/local` | local storage | `store/local/disk` | `store` |\n| `store/local/disk` | local's disk | — | — |\n| `codec`, `codec/...` |", 1),
			edit: func(f map[string]string) {
				f["store/local"] = "// Package local stores locally.\npackage local\n\nimport _ \"example.com/m/store/local/disk\"\n"
				f["store/local/disk"] = "// Package disk is local's disk.\npackage disk\n"
			}},
		{name: "forbidden sibling under a forbidden name", want: "package store/local links store/remote (directly or through its imports), which its row (line 9) forbids",
			table: strings.Replace(table, "| `codec`, `codec/...` |", "| `store/local` | local storage | `store/remote` | `store` |\n| `store/remote` | remote storage | — | — |\n| `codec`, `codec/...` |", 1),
			edit: func(f map[string]string) {
				f["store/local"] = "// Package local stores locally.\npackage local\n\nimport _ \"example.com/m/store/remote\"\n"
				f["store/remote"] = "// Package remote stores remotely.\npackage remote\n"
			}},
		{name: "no package doc", want: "package codec/base has no package doc",
			edit: func(f map[string]string) { f["codec/base"] = "package base\n" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := clean()
			if tc.edit != nil {
				tc.edit(files)
			}
			tbl := table
			if tc.table != "" {
				tbl = tc.table
			}
			errs := check(t, tbl, files)
			if tc.want == "" {
				if len(errs) != 0 {
					t.Errorf("errors %q, want none", errs)
				}
				return
			}
			if len(errs) != 1 || !strings.Contains(errs[0], tc.want) {
				t.Errorf("errors %q, want one with %q", errs, tc.want)
			}
		})
	}
}
