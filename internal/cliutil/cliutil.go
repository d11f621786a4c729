// Package cliutil is the command-line behaviour that the small tools in
// cmd/ (auth-jwt, things-jwt, pem-to-jwks) share on top of urfave/cli v2,
// so that they fail alike, and what the daemons (gateway, amlocal) share:
// their flags' environment variables ([EnvVars]) and their structured
// logger ([NewLogger]).
//
// # Behaviour
//
//   - An error is one line on stderr, "<program>: <error>", with exit
//     status 1; a usage error (unknown flag, missing value) ends with
//     " (see --help)". --help and -h print the help on stdout, status 0.
//   - --version prints the build's version ([Version]); a tool that has
//     a --version flag of its own (things-jwt: iot-edge's api header) gets
//     --print-version instead. There is no help command: "help" is an
//     argument like any other.
//   - A tool takes no arguments, only flags. [CheckArgs] reports a stray
//     argument, then the required flags that are missing, then those
//     given an empty value.
//
// # Usage
//
//	func main() {
//		os.Exit(run(os.Args, os.Stdout, os.Stderr))
//	}
//
//	func run(args []string, stdout, stderr io.Writer) int {
//		return cliutil.Run(&cli.App{
//			Name:  "pem-to-jwks",
//			Flags: []cli.Flag{&cli.StringFlag{Name: "in", Usage: "PEM file of the private key (required)"}},
//			Action: func(c *cli.Context) error {
//				if err := cliutil.CheckArgs(c, "in"); err != nil {
//					return err
//				}
//				...
//			},
//		}, args, stdout, stderr)
//	}
//
// The package is shared by the commands in cmd/ and is not API.
package cliutil

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"
)

// Run runs app with args (args[0] is the program name), writing to stdout
// and stderr, and returns the exit status: 0, or 1 after writing the error
// on one line. Run is for an App made for it: it sets app's Writer,
// ErrWriter, HideVersion, HideHelpCommand, OnUsageError and ExitErrHandler,
// and urfave/cli's global version flag while it runs, so two Runs must
// not overlap.
func Run(app *cli.App, args []string, stdout, stderr io.Writer) int {
	app.Writer = stdout
	app.ErrWriter = stderr
	app.Version = Version()
	app.HideVersion = false
	// urfave/cli reads its version flag from a package variable: set it
	// for this app and put it back after, so that one tool with a
	// --version of its own does not rename the flag of the next app run
	// in the same process (the tests run many).
	prev := cli.VersionFlag
	cli.VersionFlag = versionFlag(app)
	defer func() { cli.VersionFlag = prev }()
	app.HideHelpCommand = true
	app.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
		return fmt.Errorf("%w (see --help)", err)
	}
	// Errors come back from app.Run, to be printed below, rather than
	// ending the process.
	app.ExitErrHandler = func(*cli.Context, error) {}
	if err := app.Run(args); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", app.Name, err)
		return 1
	}
	return 0
}

// defaultVersionFlag is urfave/cli's own --version (-v).
var defaultVersionFlag = cli.VersionFlag

// printVersionFlag is the version flag of a tool that has a --version of
// its own.
var printVersionFlag = &cli.BoolFlag{Name: "print-version", Usage: "print the version"}

// versionFlag is the flag that prints app's version.
func versionFlag(app *cli.App) cli.Flag {
	for _, f := range app.Flags {
		for _, n := range f.Names() {
			if n == "version" {
				return printVersionFlag
			}
		}
	}
	return defaultVersionFlag
}

// CheckArgs reports positional arguments, and the flags of required (names
// of string flags, without dashes) that are missing or empty.
func CheckArgs(c *cli.Context, required ...string) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", c.Args().First())
	}
	var missing, empty []string
	for _, name := range required {
		switch {
		case !c.IsSet(name):
			missing = append(missing, "--"+name)
		case c.String(name) == "":
			empty = append(empty, "--"+name)
		}
	}
	switch {
	case len(missing) == 1:
		return fmt.Errorf("missing required flag %s", missing[0])
	case len(missing) > 1:
		return fmt.Errorf("missing required flags %s", strings.Join(missing, ", "))
	case len(empty) > 0:
		return fmt.Errorf("empty value for %s", strings.Join(empty, ", "))
	}
	return nil
}

// Version is the build's version, as --version prints it: the module
// version (v1.2.0 for go install ...@v1.2.0, "(devel)" for a build from a
// checkout), then the VCS revision and time the go command stamped, with
// "+dirty" for a modified work tree.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" && !strings.Contains(v, rev[:min(12, len(rev))]) { // a pseudo-version names it already
		v += " " + rev[:min(12, len(rev))] + dirty
		if at != "" {
			v += " " + at
		}
	}
	return v + " " + bi.GoVersion
}
