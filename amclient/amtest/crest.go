package amtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// crestError is the ForgeRock Common REST error body AM uses on /json endpoints.
type crestError struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// oauthError is the RFC 6749 error body AM uses on /oauth2 endpoints.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// apiError is an error that knows how AM answers it. Handlers return it and
// the router renders it, so every failure path produces AM's shape.
type apiError struct {
	status  int
	message string
	detail  any
	// oauth selects the OAuth 2.0 body instead of a CREST body.
	oauth     bool
	oauthCode string
	// log carries details for the server log only, never for the client.
	log string
}

func (e *apiError) Error() string {
	if e.log != "" {
		return fmt.Sprintf("%d %s: %s", e.status, e.message, e.log)
	}
	return fmt.Sprintf("%d %s", e.status, e.message)
}

func crestErr(status int, message string) *apiError {
	return &apiError{status: status, message: message}
}

// withLog attaches a detail that is logged but not sent.
func (e *apiError) withLog(format string, args ...any) *apiError {
	c := *e
	c.log = fmt.Sprintf(format, args...)
	return &c
}

var (
	errLoginFailure = crestErr(http.StatusUnauthorized, "Login failure")
	errAccessDenied = crestErr(http.StatusUnauthorized, "Access Denied")
	errForbidden    = crestErr(http.StatusForbidden, "Access Denied")
	errNotFound     = crestErr(http.StatusNotFound, "Resource cannot be found.")
)

// oauthErr builds an RFC 6749 error. On /json/things/* it is rendered as a
// CREST body with the OAuth error in detail, as AM wraps it.
func oauthErr(status int, code, description string) *apiError {
	return &apiError{status: status, message: description, oauth: true, oauthCode: code,
		detail: oauthError{Error: code, Description: description}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"code":500,"reason":"Internal Server Error","message":"Internal Server Error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	w.Write(b)
}

func writeCREST(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, crestError{Code: e.status, Reason: http.StatusText(e.status), Message: e.message, Detail: e.detail})
}

func writeOAuth(w http.ResponseWriter, e *apiError) {
	code := e.oauthCode
	if code == "" {
		code = "server_error"
	}
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth2"`)
	}
	writeJSON(w, e.status, oauthError{Error: code, Description: e.message})
}

// apiVersion is a parsed Accept-API-Version header.
type apiVersion struct {
	protocol, resource string // "" when absent; otherwise "major.minor"
}

// parseAPIVersion parses "protocol=1.0,resource=2.1" in any order and spacing.
func parseAPIVersion(h string) (apiVersion, error) {
	var v apiVersion
	if strings.TrimSpace(h) == "" {
		return v, nil
	}
	for _, part := range strings.Split(h, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return v, fmt.Errorf("malformed Accept-API-Version %q", h)
		}
		k, val = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(val)
		norm, err := normVersion(val)
		if err != nil {
			return v, fmt.Errorf("malformed Accept-API-Version %q", h)
		}
		switch k {
		case "protocol":
			v.protocol = norm
		case "resource":
			v.resource = norm
		default:
			return v, fmt.Errorf("malformed Accept-API-Version %q", h)
		}
	}
	return v, nil
}

func normVersion(s string) (string, error) {
	maj, min, ok := strings.Cut(s, ".")
	if !ok {
		min = "0"
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil || a < 0 || b < 0 {
		return "", fmt.Errorf("bad version %q", s)
	}
	return fmt.Sprintf("%d.%d", a, b), nil
}

// major returns the resource major version, or 0 when absent.
func (v apiVersion) major() int {
	maj, _, _ := strings.Cut(v.resource, ".")
	n, _ := strconv.Atoi(maj)
	return n
}
