package gateway_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The gateway is a product: it must not link the local AM (a test and
// evaluation server), nor the command-line tooling.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/thingway/thingway/gateway").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/thingway/thingway/amclient/amtest" || strings.HasPrefix(dep, "github.com/urfave/") {
			t.Errorf("package gateway depends on %s", dep)
		}
	}
}
