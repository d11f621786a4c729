package thing

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNoKey is returned by New when the configuration names no key but a
// handler that signs is needed.
var ErrNoKey = errors.New("thing: no signing key")

// Error is AM's refusal of a request, as the connector reported it: the
// HTTP status (through a gateway, the status its CoAP code stands for) and
// AM's body when there is one.
type Error struct {
	// Status is the HTTP status (401 when the session is not valid).
	Status int
	// Body is AM's answer, a CREST error object when AM sent one.
	Body []byte
	// OAuthError is the OAuth 2.0 error code AM reported, if any (for
	// example invalid_scope or authorization_declined).
	OAuthError string
	// Message is AM's message, if any.
	Message string
	// Op is what was refused: "authentication" or the request's operation.
	Op  string
	err error
}

func (e *Error) Error() string {
	op := e.Op
	if op == "" {
		op = "request"
	}
	s := fmt.Sprintf("thing: AM refused the %s: %d %s", op, e.Status, statusText[e.Status])
	if e.OAuthError != "" {
		s += ": " + e.OAuthError
	}
	if e.Message != "" && e.Message != e.OAuthError {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the connector's error.
func (e *Error) Unwrap() error { return e.err }

type statusError interface{ HTTPStatus() int }
type bodyError interface{ ResponseBody() []byte }

// asError turns a connector error carrying a status into an *Error; other
// errors (transport, context) are returned as they are.
func asError(err error) error {
	if err == nil {
		return nil
	}
	var te *Error
	if errors.As(err, &te) {
		return err
	}
	var se statusError
	if !errors.As(err, &se) {
		return err
	}
	e := &Error{Status: se.HTTPStatus(), err: err}
	var be bodyError
	if errors.As(err, &be) {
		e.Body = be.ResponseBody()
	}
	var b struct {
		Message string `json:"message"`
		Detail  struct {
			Error string `json:"error"`
		} `json:"detail"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(e.Body, &b) == nil {
		e.Message, e.OAuthError = b.Message, b.Detail.Error
		if e.OAuthError == "" {
			e.OAuthError = b.Error
		}
		if e.Message == "" {
			e.Message = b.Description
		}
	}
	return e
}

// isUnauthorized reports whether err says the session is not valid.
func isUnauthorized(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == 401
}

// statusText names the statuses AM and gateways answer (net/http is not
// linked by this package, so that CoAP-only devices stay small).
var statusText = map[int]string{
	400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
	406: "Not Acceptable", 409: "Conflict", 412: "Precondition Failed", 413: "Request Entity Too Large",
	415: "Unsupported Media Type", 500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
	503: "Service Unavailable", 504: "Gateway Timeout",
}
