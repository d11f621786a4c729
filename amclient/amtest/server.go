package amtest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
)

// Server is an AM-compatible server. The zero value is ready to use as an
// [http.Handler] with the evaluation guide's configuration, in memory;
// set fields before the first request. [NewServer] also listens on a
// loopback port, like [httptest.NewServer].
type Server struct {
	// URL is the deployment URL of a started server: scheme, host, port and
	// BasePath, e.g. http://127.0.0.1:41234/openam. Empty until Start.
	URL string

	// BasePath is the deployment path. If empty, "/openam". Use "/" for none.
	BasePath string

	// Config is AM's configuration at start. If nil, DefaultConfig(). The
	// server works on its own copy, taken at the first request or Start;
	// the admin REST API (realms, services, trees, nodes, agents, scripts,
	// secret mappings) changes that copy at run time, never Config.
	Config *Config

	// DataDir, if set, is where state (identities, sessions, grants, keys)
	// is kept, so that it survives restarts; every acknowledged write is on
	// disk. Configuration changed through the admin REST API is kept there
	// too: once the data directory holds such changes, later starts run the
	// data directory's configuration, and take only CookieName, AdminUser,
	// AdminPassword and KeystoreAliases from Config. If empty, state lives
	// in memory only.
	DataDir string

	// Time returns the current time. If nil, time.Now.
	Time func() time.Time

	// Logger receives one line per request and the details of every error.
	// If nil, the server is silent.
	Logger *slog.Logger

	// SessionMaxTime and SessionIdleTime bound SSO sessions. If zero, AM's
	// defaults: 120 and 30 minutes.
	SessionMaxTime  time.Duration
	SessionIdleTime time.Duration

	// AuthTimeout is how long an authentication in progress (an authId)
	// stays valid. If zero, 5 minutes.
	AuthTimeout time.Duration

	// ClockSkew is the leeway allowed on the time claims (iat, nbf, exp) of
	// the JWTs things present and of signed requests, and on the validity
	// periods of thing certificates. If zero, 60 seconds.
	ClockSkew time.Duration

	// MaxJWTLifetime caps how long the JWTs of the Authenticate Thing and
	// Register Thing nodes may live: PoP authentication and registration
	// JWTs and client assertions. The lifetime is exp − iat, or exp − now
	// (less ClockSkew) for a client assertion without iat. A longer-lived
	// JWT takes the node's failure outcome, as any invalid JWT does (401
	// Login failure). If zero, 10 minutes: iot-edge v7.4 and this module's
	// SDK sign for 5. If negative, no ceiling.
	MaxJWTLifetime time.Duration

	// RequireAssertionJTI makes the Authenticate Thing node refuse a client
	// assertion without a jti claim. If false, an assertion without jti is
	// accepted, as AM 7.4 accepts the ones iot-edge v7.4 sends (it sets no
	// jti; this module's SDK does). Either way, a jti is accepted once per
	// thing until the assertion expires; with DataDir, across restarts.
	RequireAssertionJTI bool

	// MaxBodyBytes caps request bodies; larger ones get 413. If zero, 64 KiB.
	MaxBodyBytes int64

	// MonitoringPassword is the password of MonitoringUser for AM's
	// Prometheus endpoint, /json/metrics/prometheus (request counts and
	// latencies by endpoint, tree outcomes). If empty, the endpoint is off
	// (404), as AM's is until monitoring is enabled.
	MonitoringPassword string

	metrics monitoring
	signins signinLimiter // failed sign-ins of the web pages

	initOnce sync.Once
	initErr  error
	closed   sync.Once

	// cfg is the configuration in force: an immutable snapshot that each
	// request loads once. Admin changes are made on a copy under cfgMu,
	// validated whole, persisted, then swapped in.
	cfg      atomic.Pointer[Config]
	cfgMu    sync.Mutex
	restored bool // the configuration came from the data directory

	base string // cleaned BasePath, "" for root
	st   *state
	// issued counts the tokens issued (for tests).
	issued atomic.Int64
	db     store.Store
	keys   *serverKeys
	log    *slog.Logger
	hs     *httptest.Server
	done   chan struct{}
}

// NewServer starts a Server with the default configuration, in memory, on a
// loopback port. Close it when done.
func NewServer() *Server {
	s := NewUnstartedServer()
	s.Start()
	return s
}

// NewUnstartedServer returns a Server that is not yet listening; set its
// fields, then call Start or StartTLS.
func NewUnstartedServer() *Server {
	return &Server{}
}

// Start initialises the server and starts it on a loopback port. It panics
// if the configuration is invalid or the data directory cannot be used, as
// httptest does for listen failures.
func (s *Server) Start() { s.start(false) }

// StartTLS is like Start but serves HTTPS with a self-signed certificate;
// Client trusts it.
func (s *Server) StartTLS() { s.start(true) }

func (s *Server) start(tlsOn bool) {
	if err := s.Init(); err != nil {
		panic("amtest: " + err.Error())
	}
	s.hs = httptest.NewUnstartedServer(s)
	if tlsOn {
		s.hs.StartTLS()
	} else {
		s.hs.Start()
	}
	s.URL = s.hs.URL + s.base
}

// Client returns an HTTP client for the started server (it trusts the TLS
// certificate of StartTLS).
func (s *Server) Client() *http.Client {
	if s.hs == nil {
		return &http.Client{}
	}
	return s.hs.Client()
}

// Close stops a started server and releases the data directory. It is safe
// to call more than once.
func (s *Server) Close() {
	s.closed.Do(func() {
		if s.hs != nil {
			s.hs.Close()
		}
		if s.done != nil {
			close(s.done)
		}
		s.closeStore()
	})
}

// Init loads the configuration and state. ServeHTTP calls it on first use;
// call it directly to see configuration errors at start.
func (s *Server) Init() error {
	s.initOnce.Do(func() { s.initErr = s.init() })
	return s.initErr
}

func (s *Server) init() error {
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.base = strings.TrimSuffix(s.BasePath, "/")
	if s.BasePath == "" {
		s.base = "/openam"
	}
	if s.base != "" && !strings.HasPrefix(s.base, "/") {
		return fmt.Errorf("base path %q must start with /", s.BasePath)
	}
	base := s.Config
	if base == nil {
		base = DefaultConfig()
	}
	cfg, err := config.Clone(base)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := config.ValidatePublishers(cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	s.st = newState()
	s.done = make(chan struct{})
	if err := s.openStore(); err != nil {
		return err
	}
	var rec json.RawMessage
	if s.get(kindConfig, configKey, &rec) {
		if cfg, err = restoreConfig(rec, cfg); err != nil {
			s.closeStore()
			return fmt.Errorf("configuration in %s (changed through the admin REST API): %w", s.DataDir, err)
		}
		s.restored = true
		s.log.LogAttrs(context.Background(), slog.LevelInfo, "configuration restored from the data directory",
			slog.String("dir", s.DataDir), slog.Int("realms", len(cfg.Realms)))
	}
	s.cfg.Store(cfg)
	if s.keys, err = s.loadKeys(); err != nil {
		s.closeStore()
		return err
	}
	if err := s.seedIdentities(); err != nil {
		s.closeStore()
		return err
	}
	return nil
}

func (s *Server) now() time.Time {
	if s.Time != nil {
		return s.Time()
	}
	return time.Now()
}

func (s *Server) sessionMax() time.Duration  { return durOr(s.SessionMaxTime, 120*time.Minute) }
func (s *Server) sessionIdle() time.Duration { return durOr(s.SessionIdleTime, 30*time.Minute) }
func (s *Server) authTimeout() time.Duration { return durOr(s.AuthTimeout, 5*time.Minute) }
func (s *Server) skew() time.Duration        { return durOr(s.ClockSkew, 60*time.Second) }

// maxJWTLifetime is MaxJWTLifetime with its default; 0 means no ceiling.
func (s *Server) maxJWTLifetime() time.Duration {
	if s.MaxJWTLifetime < 0 {
		return 0
	}
	return durOr(s.MaxJWTLifetime, 10*time.Minute)
}
func (s *Server) maxBody() int64 {
	if s.MaxBodyBytes > 0 {
		return s.MaxBodyBytes
	}
	return 64 << 10
}

func durOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// CookieName is the SSO cookie name the server publishes.
func (s *Server) CookieName() string {
	if err := s.Init(); err != nil {
		return "iPlanetDirectoryPro"
	}
	return s.config().CookieName
}

// config returns the configuration in force. Callers must not modify it.
func (s *Server) config() *Config { return s.cfg.Load() }

// Configuration returns a copy of the configuration in force, with the
// changes made through the admin REST API, or nil if the server cannot
// start.
func (s *Server) Configuration() *Config {
	if err := s.Init(); err != nil {
		return nil
	}
	c, err := config.Clone(s.config())
	if err != nil {
		return nil
	}
	return c
}

// ConfigurationRestored reports whether the configuration in force came
// from the data directory (changed through the admin REST API at an
// earlier run) rather than from Config.
func (s *Server) ConfigurationRestored() bool {
	return s.Init() == nil && s.restored
}

// Shutdown is Close for symmetry with http.Server; ctx is not used because
// httptest closes synchronously.
func (s *Server) Shutdown(ctx context.Context) error {
	s.Close()
	return nil
}
