package thing_test

import (
	"os/exec"
	"strings"
	"testing"
)

// A device that talks only CoAP must not link net/http: package thing and
// everything it imports stay clear of it, and of package amclient.
func TestNoHTTPDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/thingway/thingway/thing").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "net/http" || dep == "github.com/thingway/thingway/amclient" {
			t.Errorf("package thing depends on %s", dep)
		}
	}
}
