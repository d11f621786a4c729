package layout_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/thingway/thingway/internal/layout"
)

// TestModule holds the Thingway module to the layout table of
// docs/layout.md: who may import whom, dependencies only pointing down;
// that thing, coapx and the CoAP-only example link no net/http; that the
// gateway library links no html/template and no local AM; and that every
// package has a package doc.
func TestModule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list on the whole module")
	}
	root := filepath.Join("..", "..")
	f, err := os.Open(filepath.Join(root, "docs", "layout.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table, err := layout.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	module, pkgs, err := layout.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if module != "github.com/thingway/thingway" || len(pkgs) < 20 {
		t.Fatalf("go list found module %q with %d packages", module, len(pkgs))
	}
	errs := layout.Check(table, module, pkgs, layout.Options{})
	for _, err := range errs {
		t.Error(err)
	}
}
