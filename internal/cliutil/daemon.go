package cliutil

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// EnvVars returns the environment variable of a daemon's flag: prefix
// (such as "GATEWAY_") and the flag's name in upper case, dashes as
// underscores: EnvVars("GATEWAY_", "park-after") is GATEWAY_PARK_AFTER.
func EnvVars(prefix, flag string) []string {
	b := []byte(prefix + flag)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return []string{string(b)}
}

// NewLogger returns a daemon's structured logger on w: format is "text"
// or "json" (any case); formatFlag names the flag that set it, for the
// error.
func NewLogger(w io.Writer, level slog.Level, format, formatFlag string) (*slog.Logger, error) {
	hopts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("--%s %q: want text or json", formatFlag, format)
}

// Main runs a long-running command's app with the program's arguments
// under a context that SIGINT and SIGTERM cancel, and exits with status 1
// after writing "<app name>: <error>" on stderr if it fails.
func Main(app *cli.App) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", app.Name, err)
		os.Exit(1)
	}
}
