package cliutil_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/thingway/thingway/internal/cliutil"
)

// newTool returns a tool with the required flags --a and --b and the
// optional --c, whose action prints "ok" or fails with --c's value.
func newTool() *cli.App {
	return &cli.App{
		Name: "tool",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "a", Usage: "required"},
			&cli.StringFlag{Name: "b", Usage: "required"},
			&cli.StringFlag{Name: "c", Aliases: []string{"f"}, Usage: "an error to fail with"},
		},
		Action: func(c *cli.Context) error {
			if err := cliutil.CheckArgs(c, "a", "b"); err != nil {
				return err
			}
			if msg := c.String("c"); msg != "" {
				return errors.New(msg)
			}
			_, err := c.App.Writer.Write([]byte("ok"))
			return err
		},
	}
}

func TestRun(t *testing.T) {
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"ok", []string{"--a", "1", "-b", "2"}, 0, "ok", ""},
		{"action error", []string{"--a", "1", "--b", "2", "-f", "it broke"}, 1, "", "tool: it broke\n"},
		{"no flags", nil, 1, "", "tool: missing required flags --a, --b\n"},
		{"one missing", []string{"--b", "2"}, 1, "", "tool: missing required flag --a\n"},
		{"empty", []string{"--a", "", "--b", ""}, 1, "", "tool: empty value for --a, --b\n"},
		{"missing before empty", []string{"--a", ""}, 1, "", "tool: missing required flag --b\n"},
		{"argument first", []string{"x"}, 1, "", `tool: unexpected argument "x" (see --help)` + "\n"},
		{"help is an argument", []string{"--a", "1", "--b", "2", "help"}, 1, "", `tool: unexpected argument "help" (see --help)` + "\n"},
		{"unknown flag", []string{"--d"}, 1, "", "tool: flag provided but not defined: -d (see --help)\n"},
		{"no value", []string{"--a"}, 1, "", "tool: flag needs an argument: -a (see --help)\n"},
		{"version", []string{"--version"}, 0, "tool version " + cliutil.Version() + "\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := cliutil.Run(newTool(), append([]string{"tool"}, tt.args...), &stdout, &stderr)
			if code != tt.code || stdout.String() != tt.stdout || stderr.String() != tt.stderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q",
					code, &stdout, &stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var stdout, stderr strings.Builder
		code := cliutil.Run(newTool(), []string{"tool", arg}, &stdout, &stderr)
		if code != 0 || stderr.Len() > 0 || !strings.Contains(stdout.String(), "-c value, -f value") {
			t.Errorf("%s: exit %d, stderr %q, stdout:\n%s", arg, code, &stderr, &stdout)
		}
		if !strings.Contains(stdout.String(), "--version") {
			t.Errorf("%s: the help does not show --version:\n%s", arg, &stdout)
		}
		for _, hidden := range []string{"COMMANDS:"} {
			if strings.Contains(stdout.String(), hidden) {
				t.Errorf("%s: the help shows %q:\n%s", arg, hidden, &stdout)
			}
		}
	}
}

// A tool with a --version flag of its own (things-jwt's api header) keeps
// it, and prints its version with --print-version.
func TestOwnVersionFlag(t *testing.T) {
	app := newTool()
	app.Flags = append(app.Flags, &cli.StringFlag{Name: "version", Usage: "the tool's own"})
	var stdout, stderr strings.Builder
	if code := cliutil.Run(app, []string{"tool", "--print-version"}, &stdout, &stderr); code != 0 || stdout.String() != "tool version "+cliutil.Version()+"\n" {
		t.Errorf("--print-version: exit %d, stdout %q, stderr %q", code, &stdout, &stderr)
	}
	// The next tool of the process has --version again.
	stdout.Reset()
	stderr.Reset()
	if code := cliutil.Run(newTool(), []string{"tool", "--version"}, &stdout, &stderr); code != 0 || stdout.String() != "tool version "+cliutil.Version()+"\n" {
		t.Errorf("--version after a tool with its own: exit %d, stdout %q, stderr %q", code, &stdout, &stderr)
	}
}

// The version names the Go toolchain, and the module version or (devel).
func TestVersion(t *testing.T) {
	v := cliutil.Version()
	if !strings.Contains(v, "go1.") || !(strings.HasPrefix(v, "v") || strings.HasPrefix(v, "(devel)")) {
		t.Errorf("Version() = %q", v)
	}
}
