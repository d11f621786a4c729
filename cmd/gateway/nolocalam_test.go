package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thingway/thingway/internal/proctest"
)

// A gateway built with -tags nolocalam links none of the local AM (its
// pages, templates, script engine and database), and without --url says
// in one line that it needs one.
func TestNoLocalAMBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway")
	}
	out, err := exec.Command("go", "list", "-tags", "nolocalam", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "html/template" || pkg == "go.etcd.io/bbolt" || strings.HasPrefix(pkg, "github.com/thingway/thingway/amclient/amtest") {
			t.Errorf("the nolocalam build links %s", pkg)
		}
	}
	bin := filepath.Join(t.TempDir(), "gateway")
	if out, err := exec.Command("go", "build", "-tags", "nolocalam", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := proctest.Start(t, bin, nil, "--address", "127.0.0.1:0")
	if code := p.Exit(); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if errOut := p.Stderr.String(); !logLine.MatchString(errOut) || !strings.Contains(errOut, "built without the local AM (-tags nolocalam): give --url") {
		t.Errorf("stderr = %q", errOut)
	}
}
