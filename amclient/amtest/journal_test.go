package amtest

import (
	"strings"
	"testing"
)

// Two servers on one data directory would lose each other's writes: the
// second one is refused while the first holds it, and gets it once the
// first is closed.
func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	a := &Server{DataDir: dir}
	if err := a.Init(); err != nil {
		t.Fatal(err)
	}
	b := &Server{DataDir: dir}
	if err := b.Init(); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second server on the same directory: %v", err)
	}
	a.Close()
	c := &Server{DataDir: dir}
	if err := c.Init(); err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	c.Close()
}
