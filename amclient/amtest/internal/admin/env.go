package admin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

// Env is what the admin REST API needs of the server for one request:
// amclient/amtest makes one per request to /json/global-config,
// /json/realm-config or /json/scripts.
type Env struct {
	// W and R are the request's response writer and request.
	W http.ResponseWriter
	R *http.Request
	// Rest is the request's path after /json/ and its realm part
	// ("global-config/realms"): what AM's 404 for an unknown resource
	// names.
	Rest string
	// Base is AM's deployment URL as the client addressed it: the
	// Location of a created realm is under it.
	Base string
	// Realm is the request's realm path, Config the configuration the
	// request runs with (a snapshot; it is never changed). The realm
	// configuration endpoints address inactive realms too.
	Realm  string
	Config *config.Config

	// Authorize checks that the caller is the administrator; its error
	// (401 without a live session, 403 for another user's) is the answer.
	// Every call runs it first.
	Authorize func() error
	// Body reads the request body (within the server's size limit); its
	// error is the answer.
	Body func() ([]byte, error)
	// Change makes a change of the configuration: f modifies a copy of
	// the configuration in force (which may be newer than Config), and
	// Change returns the configuration in force afterwards, as [Apply]
	// makes it and the server keeps it; or f's error, a crest error of
	// validation or the server's failure to keep it, and then nothing
	// changed. f may call PurgeRealm.
	Change func(f func(cfg *config.Config) error) (*config.Config, error)
	// PurgeRealm removes what the server keeps of the realm path
	// (identities, sessions, grants and tokens, device codes,
	// authentications in progress): after the realm's deletion, and in
	// the change that creates a realm of that path. Its error is the
	// answer.
	PurgeRealm func(path string) error
	// RandomID returns n random bytes as text (the secret of the OAuth
	// 2.0 client that the IoT Service creates), NewUUID a random UUID (a
	// created script's ID when the body names none).
	RandomID func(n int) string
	NewUUID  func() string
}

// Apply is the change of the configuration cur that [Env.Change] makes:
// f modifies a copy of cur, which must then be valid as a whole (its
// JSON form read back, validation, the software publishers' keys). It
// returns the new configuration, or f's error, or AM's 400 for an
// invalid result; cur is not changed. What is returned is exactly what a
// restart reads back from the data directory.
func Apply(cur *config.Config, f func(cfg *config.Config) error) (*config.Config, error) {
	next, err := config.Clone(cur)
	if err != nil {
		return nil, err
	}
	if err := f(next); err != nil {
		return nil, err
	}
	// What is in force is exactly what a restart reads back: a second
	// round trip through the JSON form.
	if next, err = config.Clone(next); err != nil {
		return nil, crest.Err(http.StatusBadRequest, err.Error())
	}
	if err := next.Validate(); err != nil {
		return nil, crest.Err(http.StatusBadRequest, "Invalid configuration: "+err.Error())
	}
	if err := config.ValidatePublishers(next); err != nil {
		return nil, crest.Err(http.StatusBadRequest, "Invalid configuration: "+err.Error())
	}
	return next, nil
}

// realm is the request's realm as the request sees it.
func (e *Env) realm() *config.Realm { return e.Config.Realms[e.Realm] }

// inRealm runs f on the request's realm in a configuration change; the
// realm may have been deleted since the request started.
func (e *Env) inRealm(f func(cfg *config.Config, r *config.Realm) error) (*config.Realm, error) {
	cfg, err := e.Change(func(cfg *config.Config) error {
		r := cfg.Realms[e.Realm]
		if r == nil {
			return realmNotFound(e.Realm)
		}
		return f(cfg, r)
	})
	if err != nil {
		return nil, err
	}
	return cfg.Realms[e.Realm], nil
}

// objectBody reads a JSON object body.
func (e *Env) objectBody() ([]byte, map[string]json.RawMessage, error) {
	b, err := e.Body()
	if err != nil {
		return nil, nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, nil, crest.ErrInvalidJSON
	}
	return b, m, nil
}

// preconditions applies If-None-Match: * (create only) and If-Match (update
// only: * or the current revision) to a PUT.
func (e *Env) preconditions(exists bool, rev, what string) error {
	if e.R.Header.Get("If-None-Match") == "*" && exists {
		return crest.Err(http.StatusPreconditionFailed, what+" already exists")
	}
	if m := e.R.Header.Get("If-Match"); m != "" {
		m = strings.Trim(m, `"`)
		if !exists || (m != "*" && m != rev) {
			return crest.Err(http.StatusPreconditionFailed, "Precondition Failed")
		}
	}
	return nil
}

// action returns the _action of a POST, or a 501 for any other.
func (e *Env) action(allowed ...string) (string, error) {
	a := e.R.URL.Query().Get("_action")
	if !slices.Contains(allowed, a) {
		return "", crest.Err(http.StatusNotImplemented, "Action '"+a+"' not implemented for this resource")
	}
	return a, nil
}

func (e *Env) routeNotFound() error {
	return crest.Err(http.StatusNotFound, "Resource '"+e.Rest+"' not found")
}

func methodNotAllowed() error { return crest.Err(http.StatusMethodNotAllowed, "Method Not Allowed") }

// pathSegment unescapes one path segment; "" or a segment with a slash is not one.
func pathSegment(s string) (string, bool) {
	v, err := url.PathUnescape(s)
	if err != nil || v == "" || strings.Contains(v, "/") {
		return "", false
	}
	return v, true
}

// checkBodyID refuses a body whose _id is not the ID the URL names (what:
// "node's ID", "tree's name", ...); a body without _id is fine.
func checkBodyID(body map[string]json.RawMessage, want, what string) error {
	v, ok := body["_id"]
	if !ok {
		return nil
	}
	var got string
	if json.Unmarshal(v, &got) != nil || got != want {
		return crest.Err(http.StatusBadRequest, "The _id in the body is not the "+what+" "+want)
	}
	return nil
}
