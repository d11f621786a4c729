package amclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is a failure answered by AM: any HTTP status other than the one
// the call expects. It carries AM's body, parsed when it is a ForgeRock
// Common REST (CREST) error {code, reason, message, detail} or an OAuth 2.0
// error {error, error_description}. Use [errors.As] to get it, for
// example to map StatusCode onto another protocol.
type Error struct {
	// StatusCode is the HTTP status of AM's answer.
	StatusCode int
	// Body is AM's raw response body.
	Body []byte
	// Code is the CREST code (normally StatusCode); 0 if the body is not
	// a CREST error.
	Code int
	// Reason is the CREST reason, the HTTP reason phrase ("Unauthorized").
	Reason string
	// Message is the CREST message, or an OAuth error_description.
	Message string
	// Detail is the CREST detail object, if any. On the things endpoint it
	// holds the OAuth 2.0 error of a failed token request.
	Detail json.RawMessage
}

// Error implements error. It never contains tokens: only the status and
// AM's reason and message.
func (e *Error) Error() string {
	msg := fmt.Sprintf("amclient: AM answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if oe := e.OAuthError(); oe != "" {
		msg += ": " + oe
	}
	if e.Message != "" && e.Message != e.OAuthError() {
		msg += ": " + e.Message
	}
	return msg
}

// OAuthError returns the OAuth 2.0 error code AM reported: detail.error of
// a CREST body (as the things endpoint answers, e.g. authorization_pending
// or invalid_scope) or error of an OAuth 2.0 body (/oauth2 endpoints). It
// returns "" when there is none.
func (e *Error) OAuthError() string {
	var v struct {
		Error string `json:"error"`
	}
	if len(e.Detail) > 0 && json.Unmarshal(e.Detail, &v) == nil && v.Error != "" {
		return v.Error
	}
	if json.Unmarshal(e.Body, &v) == nil {
		return v.Error
	}
	return ""
}

// newError builds an Error from an AM answer.
func newError(status int, body []byte) *Error {
	e := &Error{StatusCode: status, Body: body}
	var b struct {
		Code        int             `json:"code"`
		Reason      string          `json:"reason"`
		Message     string          `json:"message"`
		Detail      json.RawMessage `json:"detail"`
		Error       string          `json:"error"`
		Description string          `json:"error_description"`
	}
	if json.Unmarshal(body, &b) != nil {
		return e
	}
	e.Code, e.Reason, e.Message = b.Code, b.Reason, b.Message
	if len(b.Detail) > 0 && string(b.Detail) != "null" {
		e.Detail = b.Detail
	}
	if e.Message == "" && b.Description != "" {
		e.Message = b.Description
	}
	return e
}

// IsUnauthorized reports whether err is an [*Error] with status 401: AM
// refused the credentials, or the session is invalid, expired or logged
// out, or a signed request was refused.
func IsUnauthorized(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusUnauthorized
}
