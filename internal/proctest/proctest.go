// Package proctest runs the module's commands in tests the way a user
// does: built with go build, started as a child process, stopped with
// signals, their output read as it is written.
//
// Tests wait for the state they check, never for a while: [Output.Wait]
// returns as soon as the text has been written (it is woken by each write,
// not by a timer), fails the test at a deadline, and fails it at once when
// the process has exited without writing it. Commands that listen are
// started on port 0 and their address is read from what they print, so
// tests running beside each other (or beside another test run) never
// race for a port.
package proctest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Deadline bounds every wait of this package unless a test gives its own:
// long, because a loaded 2-core machine is slow, and only reached when the
// awaited state never comes.
const Deadline = 60 * time.Second

var (
	buildMu  sync.Mutex
	builds   = map[string]string{} // package path → binary
	buildDir string
)

// Build builds the command in the package directory pkg (relative to the
// test's working directory, "." for the package under test) once per test
// binary and returns the binary's path. [Cleanup] removes the binaries.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := builds[pkg]; ok {
		return bin
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "proctest")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = dir
	}
	abs, err := filepath.Abs(pkg)
	if err != nil {
		t.Fatal(err)
	}
	// One directory a build, so that two commands of the same name do not
	// collide; the binary keeps the command's name for messages.
	dir, err := os.MkdirTemp(buildDir, "")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(abs))
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = abs
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	builds[pkg] = bin
	return bin
}

// Eventually reports whether cond holds within d, checking it every 10
// milliseconds: for state that no event announces (a counter, a port
// released). Prefer waiting on the event where there is one.
func Eventually(d time.Duration, cond func() bool) bool {
	deadline := time.After(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			return cond()
		case <-tick.C:
		}
	}
	return true
}

// Cleanup removes what [Build] made; call it from TestMain after m.Run.
func Cleanup() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Output collects what a process writes to one stream and wakes waiters
// on every write.
type Output struct {
	name    string
	p       *Proc
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newOutput(name string, p *Proc) *Output {
	return &Output{name: name, p: p, changed: make(chan struct{})}
}

// Write implements io.Writer.
func (o *Output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.b.Write(b)
	close(o.changed)
	o.changed = make(chan struct{})
	return n, err
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

func (o *Output) snapshot() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String(), o.changed
}

// Wait waits until the output contains s and returns the output so far.
func (o *Output) Wait(s string) string {
	o.p.t.Helper()
	out, _ := o.await(func(out string) bool { return bytes.Contains([]byte(out), []byte(s)) }, "text "+quote(s))
	return out
}

// WaitMatch waits until re matches the output and returns the submatches
// of its first match.
func (o *Output) WaitMatch(re *regexp.Regexp) []string {
	o.p.t.Helper()
	var m []string
	o.await(func(out string) bool { m = re.FindStringSubmatch(out); return m != nil }, "a match of "+re.String())
	return m
}

func (o *Output) await(ok func(string) bool, what string) (string, bool) {
	o.p.t.Helper()
	deadline := time.NewTimer(Deadline)
	defer deadline.Stop()
	for {
		out, changed := o.snapshot()
		if ok(out) {
			return out, true
		}
		select {
		case <-changed:
		case <-o.p.exited:
			// Exited: the pipes are drained once Wait has returned, so
			// this look is the last.
			if out := o.String(); ok(out) {
				return out, true
			}
			o.p.t.Fatalf("%s exited (%v) without writing %s to %s\n%s", o.p.name, o.p.err, what, o.name, o.p.dump())
			return "", false
		case <-deadline.C:
			o.p.t.Fatalf("%s wrote no %s to %s within %v\n%s", o.p.name, what, o.name, Deadline, o.p.dump())
			return "", false
		}
	}
}

func quote(s string) string { return "\"" + s + "\"" }

// Proc is a running command.
type Proc struct {
	t              testing.TB
	name           string
	Cmd            *exec.Cmd
	Stdout, Stderr *Output
	exited         chan struct{} // closed when the process has exited and its output is read
	err            error         // Wait's result, set before exited is closed
}

// Start starts bin with args and the test's environment plus env. When
// the test ends the process is killed if it still runs; if the test
// failed, its output is logged.
func Start(t testing.TB, bin string, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, name: filepath.Base(bin), Cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.Stdout, p.Stderr = newOutput("stdout", p), newOutput("stderr", p)
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Stdout, p.Stderr
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.Cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s %q\n%s", p.name, args, p.dump())
		}
	})
	return p
}

func (p *Proc) dump() string {
	return "stdout:\n" + p.Stdout.String() + "\nstderr:\n" + p.Stderr.String()
}

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Kill kills the process with SIGKILL and waits for it to exit.
func (p *Proc) Kill() {
	p.t.Helper()
	p.Signal(syscall.SIGKILL)
	p.Exit()
}

// Exit waits for the process to exit and returns its exit status (-1
// when a signal ended it).
func (p *Proc) Exit() int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(Deadline):
		p.t.Fatalf("%s did not exit within %v\n%s", p.name, Deadline, p.dump())
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		p.t.Fatalf("wait: %v", p.err)
	}
	return p.Cmd.ProcessState.ExitCode()
}
