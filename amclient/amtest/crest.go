package amtest

// The local AM's CREST errors and answers are amclient/amtest/internal/crest's;
// these are the answers that several endpoints share.

import (
	"net/http"

	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

var (
	errLoginFailure = crest.ErrLoginFailure
	errAccessDenied = crest.Err(http.StatusUnauthorized, "Access Denied")
	errForbidden    = crest.Err(http.StatusForbidden, "Access Denied")
	errNotFound     = crest.Err(http.StatusNotFound, "Resource cannot be found.")
)
