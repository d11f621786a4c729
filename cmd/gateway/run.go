package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/gateway"
	"github.com/thingway/thingway/internal/pemkey"

	"github.com/thingway/thingway/internal/cliutil"
)

// options are the gateway's settings, from flags or environment variables.
type options struct {
	URL      string
	Realm    string
	RealmSet bool // --realm given (it may be empty on purpose)
	Audience string
	Tree     string
	Name     string
	Address  string
	KeyFile  string
	KeyID    string
	CertFile string
	Timeout  time.Duration
	Debug    bool

	DTLSCertFile string
	DTLSKeyFile  string
	LogFormat    string
	MaxSessions  int
	IdleTimeout  time.Duration
	LocalAM      string
	Metrics      string // --metrics-address
	Pprof        bool   // --pprof: /debug/pprof/ on the metrics address
	ThingTree    string
	AMCA         string
	AMCert       string
	AMKey        string

	MaxPendingHandshakes int
	HandshakeTimeout     time.Duration
	MaxRequestBytes      int
	MaxAuthPerMinute     int
	MaxConcurrentAuth    int
	SessionFile          string
	SessionKeyFile       string
	ParkAfter            time.Duration
}

// String is iot-edge's options block, which users and scripts read.
func (o options) String() string {
	return fmt.Sprintf("Provided commandline options:\n\turl: %s\n\trealm: %s\n\ttree: %s\n\tname: %s\n\taddress: %s\n\tkey: %s\n\tkid: %s\n\tcertificate: %s\n\ttimeout %v\n\tdebug: %v",
		o.URL, o.Realm, o.Tree, o.Name, o.Address, o.KeyFile, o.KeyID, o.CertFile, o.Timeout, o.Debug)
}

func newLogger(w io.Writer, debug bool, format string) (*slog.Logger, error) {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	return cliutil.NewLogger(w, level, format, flagLogFormat)
}

// check applies the defaults of the local-AM mode, or checks the flags
// that are required with --url.
func (o *options) check() error {
	if o.Timeout <= 0 {
		return fmt.Errorf("--%s must be positive", flagTimeout)
	}
	if (o.DTLSCertFile == "") != (o.DTLSKeyFile == "") {
		return fmt.Errorf("--%s and --%s go together", flagDTLSCert, flagDTLSKey)
	}
	if (o.SessionFile == "") != (o.SessionKeyFile == "") {
		return fmt.Errorf("--%s and --%s go together", flagSessionFile, flagSessionKey)
	}
	if o.Pprof && o.Metrics == "" {
		return fmt.Errorf("--%s needs --%s (the profiles are served there)", flagPprof, flagMetrics)
	}
	if o.ParkAfter < 0 {
		return fmt.Errorf("--%s must not be negative (0: never park)", flagParkAfter)
	}
	if o.URL == "" {
		if o.Name == "" {
			o.Name = localName
		}
		if !o.RealmSet {
			o.Realm = localRealm
		}
		if o.Tree == "" {
			o.Tree = localTree
		}
		return nil
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{flagKey, o.KeyFile}, {flagName, o.Name}, {flagTree, o.Tree}} {
		if f.v == "" {
			missing = append(missing, "--"+f.name)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("the required flag %s was not specified (required with --%s)", missing[0], flagURL)
	}
	return fmt.Errorf("the required flags %s and %s were not specified (required with --%s)",
		strings.Join(missing[:len(missing)-1], ", "), missing[len(missing)-1], flagURL)
}

// run starts the gateway and serves until ctx is done, then shuts down
// gracefully. Start-up errors are returned.
func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	logger, err := newLogger(stderr, o.Debug, o.LogFormat)
	if err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}

	key, keyErr := loadKey(o)
	if keyErr == nil && o.KeyID == "" {
		if o.KeyID, keyErr = callback.Thumbprint(key.Public()); keyErr != nil {
			keyErr = fmt.Errorf("key ID: %w", keyErr)
		}
	}
	var local *localAM
	var amErr error
	if o.URL == "" && keyErr == nil {
		if local, amErr = startLocalAM(o, key, logger); amErr == nil {
			defer local.close()
			o.URL = local.url
		}
	}
	// iot-edge prints the block before reading the key; ours shows the
	// effective key ID (the thumbprint when --kid is not given).
	fmt.Fprintln(stdout, o)
	if keyErr != nil {
		return keyErr
	}
	if amErr != nil {
		return amErr
	}
	if local != nil {
		local.printStarted(stdout, o)
	}

	var certs []*x509.Certificate
	if o.CertFile != "" {
		b, err := os.ReadFile(o.CertFile)
		if err != nil {
			return err
		}
		if certs, err = pemkey.ParseCertificates(b); err != nil {
			return fmt.Errorf("%s: %w", o.CertFile, err)
		}
	}
	var dtlsCert tls.Certificate
	if o.DTLSCertFile != "" {
		if dtlsCert, err = tls.LoadX509KeyPair(o.DTLSCertFile, o.DTLSKeyFile); err != nil {
			return fmt.Errorf("DTLS certificate: %w", err)
		}
	}

	sessionKey, err := loadSessionKey(o, logger)
	if err != nil {
		return err
	}
	parkAfter := o.ParkAfter
	if parkAfter == 0 {
		parkAfter = -1 // --park-after 0: never
	}

	var reg *prometheus.Registry
	var metrics *gateway.Metrics
	if o.Metrics != "" {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		metrics = gateway.NewMetrics(reg)
	}
	transport, err := amTransport(o)
	if err != nil {
		return err
	}
	am := &amclient.Client{URL: o.URL, Realm: o.Realm, Tree: o.Tree, Logger: logger,
		HTTPClient: &http.Client{Transport: metrics.AMTransport(transport)}}
	srv := &gateway.Server{
		AM:              am,
		ID:              o.Name,
		Audience:        o.Audience,
		Key:             key,
		KeyID:           o.KeyID,
		Certificates:    certs,
		DTLSCertificate: dtlsCert,
		Logger:          logger,
		Timeout:         o.Timeout,
		MaxSessions:     o.MaxSessions,
		IdleTimeout:     o.IdleTimeout,

		MaxPendingHandshakes: o.MaxPendingHandshakes,
		HandshakeTimeout:     o.HandshakeTimeout,
		MaxRequestBytes:      o.MaxRequestBytes,
		MaxAuthPerMinute:     o.MaxAuthPerMinute,
		MaxConcurrentAuth:    o.MaxConcurrentAuth,

		ThingTree:           o.ThingTree,
		RetryAuthentication: true,
		Metrics:             metrics,
		ParkAfter:           parkAfter,
		SessionFile:         o.SessionFile,
		SessionKey:          sessionKey,
	}
	defer srv.Close()
	// Bind first: a port in use is the first and only error.
	l, err := srv.Listen("udp", o.Address)
	if err != nil {
		return err
	}
	if reg != nil {
		ms, err := serveMetrics(o.Metrics, o.Pprof, reg, srv, logger)
		if err != nil {
			l.Close()
			return err
		}
		defer ms.Close()
	}
	// One attempt now, so that the common case logs in before it says it
	// has started; without AM the gateway serves all the same (things get
	// 5.03 with Max-Age) and keeps trying.
	if err := srv.Authenticate(ctx); err != nil {
		if ctx.Err() != nil {
			l.Close()
			return nil // interrupted during start-up
		}
		logger.LogAttrs(ctx, slog.LevelWarn, "AM does not answer yet; serving, things get 5.03 until it does", slog.String("error", err.Error()))
	}
	if local != nil {
		local.printConnect(stdout, coapURL(o.Address, l.Addr()))
	}
	fmt.Fprintln(stdout, "IoT Gateway server started.")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "IoT Gateway server shutting down.")
	// A fresh context: ctx is already cancelled.
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.LogAttrs(context.Background(), slog.LevelWarn, "graceful shutdown incomplete", slog.String("error", err.Error()))
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, gateway.ErrServerClosed) {
		logger.LogAttrs(context.Background(), slog.LevelWarn, "serve", slog.String("error", err.Error()))
	}
	return nil
}

// amTransport is gateway.NewAMTransport with --am-ca and
// --am-client-cert for a private CA and mutual TLS.
func amTransport(o options) (*http.Transport, error) {
	if o.AMCA == "" && o.AMCert == "" && o.AMKey == "" {
		return gateway.NewAMTransport(nil, o.Timeout), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.AMCA != "" {
		b, err := os.ReadFile(o.AMCA)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flagAMCA, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--%s %s: no PEM certificate in it", flagAMCA, o.AMCA)
		}
	}
	if (o.AMCert == "") != (o.AMKey == "") {
		return nil, fmt.Errorf("--%s and --%s go together", flagAMCert, flagAMKey)
	}
	if o.AMCert != "" {
		c, err := tls.LoadX509KeyPair(o.AMCert, o.AMKey)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flagAMCert, err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return gateway.NewAMTransport(cfg, o.Timeout), nil
}

// serveMetrics serves /metrics, /livez and /readyz on address, and with
// withPprof Go's profiles under /debug/pprof/.
func serveMetrics(address string, withPprof bool, reg *prometheus.Registry, srv *gateway.Server, logger *slog.Logger) (*http.Server, error) {
	ml, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagMetrics, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := srv.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	paths := "/metrics /livez /readyz"
	if withPprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		paths += " /debug/pprof/"
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go hs.Serve(ml) //nolint:errcheck // ends with Close
	logger.LogAttrs(context.Background(), slog.LevelInfo, "metrics serving", slog.String("address", ml.Addr().String()),
		slog.String("paths", paths))
	return hs, nil
}

// coapURL is the coap:// URL of the gateway listening on a for --address
// address: the host given (none for all interfaces, as in the guide's
// coap://:5683) and the port bound.
func coapURL(address string, a net.Addr) string {
	host, _, err := net.SplitHostPort(address)
	if ip := net.ParseIP(host); err != nil || (ip != nil && ip.IsUnspecified()) {
		host = ""
	}
	port := ""
	if ua, ok := a.(*net.UDPAddr); ok {
		port = strconv.Itoa(ua.Port)
	} else if _, p, err := net.SplitHostPort(a.String()); err == nil {
		port = p
	}
	return "coap://" + net.JoinHostPort(host, port)
}

// loadSessionKey reads --session-key; a key others can read is warned of.
func loadSessionKey(o options, logger *slog.Logger) ([]byte, error) {
	if o.SessionKeyFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(o.SessionKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagSessionKey, err)
	}
	if len(b) < 32 {
		return nil, fmt.Errorf("--%s %s: %d bytes; want at least 32 secret bytes (head -c 32 /dev/urandom > %s)",
			flagSessionKey, o.SessionKeyFile, len(b), o.SessionKeyFile)
	}
	if fi, err := os.Stat(o.SessionKeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.LogAttrs(context.Background(), slog.LevelWarn, "the session key file can be read by others; chmod 600 it",
			slog.String("file", o.SessionKeyFile), slog.String("mode", fi.Mode().Perm().String()))
	}
	return b, nil
}

// loadKey reads --key, or makes a key in the local-AM mode.
func loadKey(o options) (crypto.Signer, error) {
	if o.KeyFile == "" {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	b, err := os.ReadFile(o.KeyFile)
	if err != nil {
		return nil, err
	}
	key, err := pemkey.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.KeyFile, err)
	}
	return key, nil
}
