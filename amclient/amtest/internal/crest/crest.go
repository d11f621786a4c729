package crest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// ErrorBody is the ForgeRock Common REST error body AM uses on /json endpoints.
type ErrorBody struct {
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

// Error is an error that knows how AM answers it. Handlers return it and
// the router renders it, so every failure path produces AM's shape.
type Error struct {
	Status  int
	Message string
	Detail  any
	// OAuth selects the OAuth 2.0 body instead of a CREST body.
	OAuth     bool
	OAuthCode string
	// Log carries details for the server log only, never for the client.
	Log string
}

func (e *Error) Error() string {
	if e.Log != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.Message, e.Log)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Message)
}

// Err is a CREST error: AM's answer on /json endpoints.
func Err(status int, message string) *Error {
	return &Error{Status: status, Message: message}
}

// WithLog attaches a detail that is logged but not sent.
func (e *Error) WithLog(format string, args ...any) *Error {
	c := *e
	c.Log = fmt.Sprintf(format, args...)
	return &c
}

// ErrInvalidJSON is AM's answer to a request body that is not the JSON it
// takes.
var ErrInvalidJSON = Err(http.StatusBadRequest, "The request could not be processed because the provided content is not valid JSON")

// ErrLoginFailure is AM's answer to an authentication that fails other
// than by a node's failure outcome; its log detail says why.
var ErrLoginFailure = Err(http.StatusUnauthorized, "Login failure")

// OAuthErr builds an RFC 6749 error. On /json/things/* it is rendered as a
// CREST body with the OAuth error in detail, as AM wraps it.
func OAuthErr(status int, code, description string) *Error {
	return &Error{Status: status, Message: description, OAuth: true, OAuthCode: code,
		Detail: oauthError{Error: code, Description: description}}
}

// WriteJSON answers v as JSON with AM's headers.
func WriteJSON(w http.ResponseWriter, status int, v any) {
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

// WriteCREST answers e with a CREST error body.
func WriteCREST(w http.ResponseWriter, e *Error) {
	WriteJSON(w, e.Status, ErrorBody{Code: e.Status, Reason: http.StatusText(e.Status), Message: e.Message, Detail: e.Detail})
}

// WriteOAuth answers e with an RFC 6749 error body.
func WriteOAuth(w http.ResponseWriter, e *Error) {
	code := e.OAuthCode
	if code == "" {
		code = "server_error"
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth2"`)
	}
	WriteJSON(w, e.Status, oauthError{Error: code, Description: e.Message})
}

// APIVersion is a parsed Accept-API-Version header.
type APIVersion struct {
	Protocol, Resource string // "" when absent; otherwise "major.minor"
}

// ParseAPIVersion parses "protocol=1.0,resource=2.1" in any order and spacing.
func ParseAPIVersion(h string) (APIVersion, error) {
	var v APIVersion
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
			v.Protocol = norm
		case "resource":
			v.Resource = norm
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

// Major returns the resource major version, or 0 when absent.
func (v APIVersion) Major() int {
	maj, _, _ := strings.Cut(v.Resource, ".")
	n, _ := strconv.Atoi(maj)
	return n
}
