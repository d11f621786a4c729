package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/thingway/thingway/amclient/amtest"
)

// shutdownTimeout bounds the graceful shutdown on SIGINT/SIGTERM.
const shutdownTimeout = 10 * time.Second

// run starts the local AM and serves until ctx is done, then shuts down
// gracefully. Errors in options, files, listening or the data directory are
// returned before anything is served.
func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	logger, err := newLogger(stderr, o.LogLevel, o.LogFormat)
	if err != nil {
		return err
	}
	base, err := basePath(o.BasePath)
	if err != nil {
		return err
	}
	cfg, err := buildConfig(o)
	if err != nil {
		return err
	}
	tlsCfg, err := loadTLS(o.TLSCertFile, o.TLSKeyFile)
	if err != nil {
		return err
	}

	// Listen before touching the data directory, so that a second amlocal
	// on a port in use fails without opening the first one's state.
	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	defer l.Close()
	am := &amtest.Server{BasePath: o.BasePath, Config: cfg, DataDir: o.DataDir, Logger: logger,
		MaxJWTLifetime: o.MaxJWTLifetime, RequireAssertionJTI: o.RequireJTI, MonitoringPassword: o.MonitoringPassword}
	if o.MaxJWTLifetime <= 0 {
		am.MaxJWTLifetime = -1 // no ceiling
	}
	if err := am.Init(); err != nil {
		return fmt.Errorf("start local AM: %w", err)
	}
	defer am.Close()
	if o.ImportDir != "" {
		if err := am.Import(os.DirFS(o.ImportDir)); err != nil {
			return fmt.Errorf("--%s %s: %w", flagImport, o.ImportDir, err)
		}
	}
	for _, u := range o.Users {
		name, password, ok := strings.Cut(u, "=")
		if !ok || name == "" || password == "" {
			return fmt.Errorf("--%s %q: want NAME=PASSWORD", flagUser, u)
		}
		created, err := am.EnsureUser("/", name, password)
		if err != nil {
			return fmt.Errorf("--%s %s: %w", flagUser, name, err)
		}
		logger.LogAttrs(ctx, slog.LevelInfo, "user", slog.String("name", name), slog.Bool("created", created))
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	am.URL = scheme + "://" + displayHost(l.Addr()) + base

	hs := &http.Server{
		Handler:           am,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			errc <- hs.ServeTLS(l, "", "")
		} else {
			errc <- hs.Serve(l)
		}
	}()

	s := newSummary(am.URL, am.Configuration(), o)
	s.Restored = am.ConfigurationRestored()
	if o.DataDir != "" {
		info, err := am.StoreInfo()
		if err != nil {
			return err
		}
		s.Store = &info
	}
	s.print(stdout)
	logger.LogAttrs(ctx, slog.LevelInfo, "local AM started", s.attrs()...)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.LogAttrs(context.Background(), slog.LevelInfo, "shutting down", slog.Duration("timeout", shutdownTimeout))
	// A fresh context: ctx is already cancelled.
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		logger.LogAttrs(context.Background(), slog.LevelWarn, "graceful shutdown incomplete, closing connections", slog.String("error", err.Error()))
		hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.LogAttrs(context.Background(), slog.LevelWarn, "serve", slog.String("error", err.Error()))
	}
	am.Close()
	logger.LogAttrs(context.Background(), slog.LevelInfo, "stopped")
	return nil
}

// basePath returns the deployment path as it appears in URLs ("" for the
// root), with amtest's default for an empty value.
func basePath(p string) (string, error) {
	if p == "" {
		return "/openam", nil
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("--%s %q must start with /", flagBasePath, p)
	}
	return strings.TrimSuffix(p, "/"), nil
}

// displayHost is the host:port to print for a listener; an unspecified
// address (":8080", "0.0.0.0:8080") is shown as localhost.
func displayHost(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	host := ta.IP.String()
	if ta.IP == nil || ta.IP.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, fmt.Sprint(ta.Port))
}
