package amtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/members"
)

// The request plumbing every endpoint shares: ServeHTTP (a request's
// metrics, its error answer by endpoint family), the statusWriter that
// drops an answer a handler must not send, the routes of /json and
// /oauth2, and reqCtx with the request's body, JSON and SSO token.

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
	ver    crest.APIVersion
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
	sw := &statusWriter{ResponseWriter: w}
	fam, err := s.serve(sw, r)
	if err != nil {
		var ae *crest.Error
		if !errors.As(err, &ae) {
			s.log.LogAttrs(r.Context(), slog.LevelError, "internal error", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
			ae = crest.Err(http.StatusInternalServerError, "Internal Server Error")
		}
		if ae.Log != "" {
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request refused", slog.String("method", r.Method),
				slog.String("path", r.URL.Path), slog.Int("status", ae.Status), slog.String("reason", ae.Log))
		}
		if fam == famOAuth && ae.OAuth {
			crest.WriteOAuth(sw, ae)
		} else if fam == famOAuth {
			crest.WriteOAuth(sw, &crest.Error{Status: ae.Status, Message: ae.Message, OAuthCode: oauthCodeFor(ae.Status)})
		} else {
			crest.WriteCREST(sw, ae)
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
	before  func() *crest.Error
	dropped bool
}

// start runs before once; it reports whether the handler's answer is to
// be dropped.
func (w *statusWriter) start() bool {
	if f := w.before; f != nil {
		w.before = nil
		if ae := f(); ae != nil {
			crest.WriteCREST(w, ae)
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
			return famCREST, crest.Err(http.StatusNotFound, "Not Found").WithLog("outside base path %s", s.base)
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
		crest.WriteJSON(w, http.StatusOK, map[string]string{"name": "Thingway local AM", "json": c.base + "/json", "oauth2": c.base + "/oauth2"})
		return famCREST, nil
	}
	return famCREST, crest.Err(http.StatusNotFound, "Not Found").WithLog("no route for %s", p)
}

func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// readBody reads the request body up to the size limit.
func (c *reqCtx) readBody() ([]byte, error) {
	if c.body != nil {
		return c.body, nil
	}
	limit := c.s.maxBody()
	b, err := io.ReadAll(io.LimitReader(c.r.Body, limit+1))
	if err != nil {
		return nil, crest.Err(http.StatusBadRequest, "Unable to read request body").WithLog("%v", err)
	}
	if int64(len(b)) > limit {
		return nil, crest.Err(http.StatusRequestEntityTooLarge, "Request Entity Too Large").WithLog("body over %d bytes", limit)
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
		return crest.ErrInvalidJSON.WithLog("%v", members.PlainError(err))
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
		return crest.Err(http.StatusNotFound, "Not Found").WithLog("%v", err)
	}
	c.rest = rest
	if c.ver, err = crest.ParseAPIVersion(c.r.Header.Get("Accept-API-Version")); err != nil {
		return crest.Err(http.StatusBadRequest, err.Error())
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
	return crest.Err(http.StatusNotFound, "Resource '"+rest+"' not found")
}

func (s *Server) serveOAuth2(c *reqCtx, p string) error {
	pathRealm, rest, err := splitRealmPath(p)
	if err != nil {
		return &crest.Error{Status: http.StatusNotFound, Message: "Not Found", OAuth: true, OAuthCode: "not_found"}
	}
	c.rest = rest
	if err := s.resolveRealm(c, pathRealm); err != nil {
		var ae *crest.Error
		errors.As(err, &ae)
		return &crest.Error{Status: ae.Status, Message: ae.Message, OAuth: true, OAuthCode: "invalid_request"}
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
	return &crest.Error{Status: http.StatusNotFound, Message: "Not Found", OAuth: true, OAuthCode: "not_found"}
}
