package amclient_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports checks the package layout rule: amclient imports
// callback, go-jose and the standard library only.
func TestImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", "github.com/thingway/thingway/amclient").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, std, _ := strings.Cut(line, " ")
		switch {
		case std == "true", path == "github.com/thingway/thingway/amclient",
			path == "github.com/thingway/thingway/callback",
			strings.HasPrefix(path, "github.com/go-jose/go-jose/v4"):
		default:
			t.Errorf("amclient depends on %s", path)
		}
	}
}
