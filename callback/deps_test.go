package callback_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports checks the package layout rule: callback imports go-jose and
// the standard library, but not net/http.
func TestImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", "github.com/thingway/thingway/callback").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, std, _ := strings.Cut(line, " ")
		switch {
		case path == "net/http":
			t.Errorf("callback depends on net/http")
		case std == "true", path == "github.com/thingway/thingway/callback",
			strings.HasPrefix(path, "github.com/go-jose/go-jose/v4"):
		default:
			t.Errorf("callback depends on %s", path)
		}
	}
}
