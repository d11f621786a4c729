package amtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	cfg, err := base.clone()
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := cfg.validatePublishers(); err != nil {
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

// clone returns a deep copy of c with the defaults filled in.
func (c *Config) clone() (*Config, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	out := &Config{}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	// Client secrets are never marshalled; carry them over.
	out.setSecrets(c.secrets())
	if out.CookieName == "" {
		out.CookieName = "iPlanetDirectoryPro"
	}
	if out.AdminUser == "" {
		out.AdminUser = "amAdmin"
	}
	if out.AdminPassword == "" {
		out.AdminPassword = "changeit"
	}
	if out.Realms == nil {
		out.Realms = map[string]*Realm{}
	}
	return out, nil
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
	c, err := s.config().clone()
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

// reqCtx is what every handler gets: the request, its realm and AM's base URL.
type reqCtx struct {
	w      http.ResponseWriter
	r      *http.Request
	s      *Server
	cfg    *Config // the configuration snapshot the request runs with
	rest   string  // path after the realm part, e.g. "things/*"
	realm  string  // realm path
	rc     *Realm
	viaDNS bool
	base   string // B: scheme://host/basepath as the client addressed us
	ver    apiVersion
	now    time.Time
	// inactiveOK lets the realm configuration endpoints address inactive
	// realms, which answer nothing else.
	inactiveOK bool
	body       []byte
	// nonce is a signed request's nonce, checked and not yet written;
	// c.update takes it with the request's first change, the response
	// writer before the answer (flushNonce).
	nonce *pendingNonce
}

// family says how errors of an endpoint are rendered.
type family int

const (
	famCREST family = iota
	famOAuth
)

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if b, ok := s.db.(*store.Bolt); ok && r.Method != http.MethodGet && r.Method != http.MethodHead {
		b.AddWriters(1)
		defer b.AddWriters(-1)
	}
	sw := &statusWriter{ResponseWriter: w}
	fam, err := s.serve(sw, r)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			s.log.LogAttrs(r.Context(), slog.LevelError, "internal error", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
			ae = crestErr(http.StatusInternalServerError, "Internal Server Error")
		}
		if ae.log != "" {
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request refused", slog.String("method", r.Method),
				slog.String("path", r.URL.Path), slog.Int("status", ae.status), slog.String("reason", ae.log))
		}
		if fam == famOAuth && ae.oauth {
			writeOAuth(sw, ae)
		} else if fam == famOAuth {
			writeOAuth(sw, &apiError{status: ae.status, message: ae.message, oauthCode: oauthCodeFor(ae.status)})
		} else {
			writeCREST(sw, ae)
		}
	}
	took := time.Since(start)
	s.metrics.observe(strings.TrimPrefix(r.URL.Path, s.base), sw.status, took)
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "request", slog.String("method", r.Method),
		slog.String("path", r.URL.Path), slog.Int("status", sw.status), slog.Duration("took", took))
}

func oauthCodeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "invalid_client"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "invalid_request"
	default:
		return "server_error"
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
	// before, if set, runs before the answer's header goes out; an error
	// it returns is answered instead, and the handler's answer dropped.
	before  func() *apiError
	dropped bool
}

// start runs before once; it reports whether the handler's answer is to
// be dropped.
func (w *statusWriter) start() bool {
	if f := w.before; f != nil {
		w.before = nil
		if ae := f(); ae != nil {
			writeCREST(w, ae)
			w.dropped = true
		}
	}
	return w.dropped
}

func (w *statusWriter) WriteHeader(code int) {
	if w.start() {
		return
	}
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.start() {
		return len(b), nil
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) (family, error) {
	if err := s.Init(); err != nil {
		return famCREST, fmt.Errorf("server not initialised: %w", err)
	}
	p := r.URL.Path
	if s.base != "" {
		if p != s.base && !strings.HasPrefix(p, s.base+"/") {
			return famCREST, crestErr(http.StatusNotFound, "Not Found").withLog("outside base path %s", s.base)
		}
		p = strings.TrimPrefix(p, s.base)
	}
	if s.serveMonitoring(w, r, p) {
		return famCREST, nil
	}
	c := &reqCtx{w: w, r: r, s: s, cfg: s.config(), now: s.now(), base: requestScheme(r) + "://" + r.Host + s.base}
	if sw, ok := w.(*statusWriter); ok {
		sw.before = c.flushNonce
	}
	switch {
	case strings.HasPrefix(p, "/json/"):
		return famCREST, s.serveJSON(c, strings.TrimPrefix(p, "/json/"))
	case strings.HasPrefix(p, "/oauth2/"):
		return famOAuth, s.serveOAuth2(c, strings.TrimPrefix(p, "/oauth2/"))
	case p == "/ui" || strings.HasPrefix(p, "/ui/"):
		return famCREST, s.serveUI(c, strings.TrimPrefix(p, "/ui"))
	case p == "" || p == "/":
		writeJSON(w, http.StatusOK, map[string]string{"name": "Thingway local AM", "json": c.base + "/json", "oauth2": c.base + "/oauth2"})
		return famCREST, nil
	}
	return famCREST, crestErr(http.StatusNotFound, "Not Found").withLog("no route for %s", p)
}

func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// splitRealmPath consumes "realms/root/realms/a/realms/b/" from the front of
// p and returns the realm path it names ("" when p has no realm part).
func splitRealmPath(p string) (realm, rest string, err error) {
	if !strings.HasPrefix(p, "realms/") {
		return "", p, nil
	}
	segs := strings.Split(p, "/")
	if len(segs) < 2 || segs[1] != "root" {
		return "", "", errors.New("a realm path starts with realms/root")
	}
	i := 2
	var parts []string
	for i+1 < len(segs) && segs[i] == "realms" {
		name, err := url.PathUnescape(segs[i+1])
		if err != nil || name == "" {
			return "", "", errors.New("bad realm name")
		}
		parts = append(parts, name)
		i += 2
	}
	return "/" + strings.Join(parts, "/"), strings.Join(segs[i:], "/"), nil
}

// resolveRealm picks the request's realm: the realm query parameter, then a
// realm in the path, then a DNS alias matching the Host header, then the
// top-level realm.
func (s *Server) resolveRealm(c *reqCtx, pathRealm string) error {
	q := c.r.URL.Query()
	if v, ok := q["realm"]; ok && len(v) > 0 && v[0] != "" {
		p, ok := c.cfg.findRealm(v[0], c.inactiveOK)
		if !ok {
			return crestErr(http.StatusBadRequest, "Invalid realm, "+v[0])
		}
		c.realm = p
	} else if pathRealm != "" {
		if r, ok := c.cfg.Realms[pathRealm]; !ok || !(r.active() || c.inactiveOK) {
			return crestErr(http.StatusNotFound, "Realm \""+pathRealm+"\" not found")
		}
		c.realm = pathRealm
	} else {
		c.realm = "/"
		if p, ok := c.cfg.dnsRealm(c.r.Host); ok {
			c.realm, c.viaDNS = p, true
		}
	}
	c.rc = c.cfg.Realms[c.realm]
	return nil
}

// dnsRealm returns the active realm with a DNS alias (an alias containing
// a dot) equal to host's name.
func (cfg *Config) dnsRealm(host string) (string, bool) {
	host = strings.ToLower(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	for _, p := range sortedKeys(cfg.Realms) {
		r := cfg.Realms[p]
		for _, a := range r.Aliases {
			if strings.Contains(a, ".") && strings.EqualFold(a, host) && r.active() {
				return p, true
			}
		}
	}
	return "", false
}

// lookupRealm resolves a realm query value: an absolute path, an alias, or
// the bare name of a child of the top-level realm.
func (cfg *Config) lookupRealm(v string) (string, bool) { return cfg.findRealm(v, false) }

// findRealm is lookupRealm that, with inactive, also finds inactive realms
// (which only the realm configuration endpoints address).
func (cfg *Config) findRealm(v string, inactive bool) (string, bool) {
	usable := func(r *Realm) bool { return r != nil && (inactive || r.active()) }
	if strings.HasPrefix(v, "/") {
		p := "/" + strings.Trim(v, "/")
		return p, usable(cfg.Realms[p])
	}
	for _, p := range sortedKeys(cfg.Realms) {
		r := cfg.Realms[p]
		for _, a := range r.Aliases {
			if strings.EqualFold(a, v) && usable(r) {
				return p, true
			}
		}
	}
	p := "/" + strings.Trim(v, "/")
	return p, usable(cfg.Realms[p])
}

// realmURLPart is the realm's part of OAuth 2.0 URLs: "" for the top-level
// realm and DNS-aliased requests, else /realms/root/realms/a/realms/b.
func (c *reqCtx) realmURLPart() string {
	if c.realm == "/" || c.viaDNS {
		return ""
	}
	var b strings.Builder
	b.WriteString("/realms/root")
	for _, p := range strings.Split(strings.Trim(c.realm, "/"), "/") {
		b.WriteString("/realms/")
		b.WriteString(p)
	}
	return b.String()
}

// issuer is the realm's OAuth 2.0 issuer URL.
func (c *reqCtx) issuer() string { return c.base + "/oauth2" + c.realmURLPart() }

// readBody reads the request body up to the size limit.
func (c *reqCtx) readBody() ([]byte, error) {
	if c.body != nil {
		return c.body, nil
	}
	limit := c.s.maxBody()
	b, err := io.ReadAll(io.LimitReader(c.r.Body, limit+1))
	if err != nil {
		return nil, crestErr(http.StatusBadRequest, "Unable to read request body").withLog("%v", err)
	}
	if int64(len(b)) > limit {
		return nil, crestErr(http.StatusRequestEntityTooLarge, "Request Entity Too Large").withLog("body over %d bytes", limit)
	}
	c.body = b
	return b, nil
}

// decodeJSON decodes a JSON object body into v; an empty body leaves v alone.
func (c *reqCtx) decodeJSON(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return crestErr(http.StatusBadRequest, "The request could not be processed because the provided content is not valid JSON").withLog("%v", err)
	}
	return nil
}

// ssoToken returns the SSO token from the cookie or the header named after
// the cookie.
func (c *reqCtx) ssoToken() string {
	name := c.cfg.CookieName
	if v := c.r.Header.Get(name); v != "" {
		return v
	}
	if ck, err := c.r.Cookie(name); err == nil {
		return ck.Value
	}
	return ""
}

func (s *Server) serveJSON(c *reqCtx, p string) error {
	pathRealm, rest, err := splitRealmPath(p)
	if err != nil {
		return crestErr(http.StatusNotFound, "Not Found").withLog("%v", err)
	}
	c.rest = rest
	if c.ver, err = parseAPIVersion(c.r.Header.Get("Accept-API-Version")); err != nil {
		return crestErr(http.StatusBadRequest, err.Error())
	}
	seg, sub, _ := strings.Cut(rest, "/")
	c.inactiveOK = seg == "realm-config" || seg == "scripts"
	if err := s.resolveRealm(c, pathRealm); err != nil {
		return err
	}
	switch seg {
	case "serverinfo":
		return s.handleServerInfo(c, sub)
	case "authenticate":
		if sub != "" {
			break
		}
		return s.handleAuthenticate(c)
	case "things":
		if sub != "*" {
			break
		}
		return s.handleThings(c)
	case "sessions":
		if sub != "" {
			break
		}
		return s.handleSessions(c)
	case "users":
		return s.handleUsers(c, sub)
	case "global-config":
		return s.handleGlobalConfig(c, sub)
	case "realm-config":
		return s.handleRealmConfig(c, sub)
	case "scripts":
		return s.handleScripts(c, sub)
	}
	return crestErr(http.StatusNotFound, "Resource '"+rest+"' not found")
}

func (s *Server) serveOAuth2(c *reqCtx, p string) error {
	pathRealm, rest, err := splitRealmPath(p)
	if err != nil {
		return &apiError{status: http.StatusNotFound, message: "Not Found", oauth: true, oauthCode: "not_found"}
	}
	c.rest = rest
	if err := s.resolveRealm(c, pathRealm); err != nil {
		var ae *apiError
		errors.As(err, &ae)
		return &apiError{status: ae.status, message: ae.message, oauth: true, oauthCode: "invalid_request"}
	}
	switch rest {
	case ".well-known/openid-configuration":
		return s.handleOpenIDConfig(c)
	case "connect/jwk_uri":
		return s.handleJWKS(c)
	case "access_token":
		return s.handleTokenEndpoint(c)
	case "introspect":
		return s.handleIntrospectEndpoint(c)
	case "token/revoke":
		return s.handleRevoke(c)
	case "device/user":
		return s.handleDeviceUser(c)
	}
	return &apiError{status: http.StatusNotFound, message: "Not Found", oauth: true, oauthCode: "not_found"}
}

// Shutdown is Close for symmetry with http.Server; ctx is not used because
// httptest closes synchronously.
func (s *Server) Shutdown(ctx context.Context) error {
	s.Close()
	return nil
}
