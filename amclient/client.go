// Package amclient is an HTTP client for the REST API that ForgeRock/Ping
// Access Management (AM) offers to things: authentication trees
// (/json/authenticate), the things endpoint (/json/things/*: attributes,
// OAuth 2.0 access tokens, introspection, the device authorization grant),
// sessions (/json/sessions) and OpenID Connect discovery with the JWK set.
//
// It sends what the ForgeRock iot-edge SDK sends, byte for byte where AM
// checks it, so it works with real AM 7.x and with the local AM of package
// amclient/amtest.
//
// # Sessions
//
// [Client.Authenticate] runs a tree with [callback.Handler]s and returns a
// [*Session]. When a [callback.SigningHandler] (such as
// [callback.AuthenticateHandler]) answered a callback, the session keeps
// its key and every later request of the session is signed with it, as AM
// requires for proof-of-possession (restricted) sessions: the body becomes
// a compact JWS (see [callback.SignRequest]) whose header names the exact
// request URL, the Accept-API-Version and the session's request nonce.
//
// # Errors
//
// Every answer from AM other than the expected status is an [*Error]
// carrying the HTTP status and AM's body; [IsUnauthorized] tells whether AM
// refused the session or credentials. When ctx ends, calls return ctx.Err().
//
// # Usage
//
//	c := &amclient.Client{URL: "https://am.example.com/am", Realm: "/"}
//	s, err := c.Authenticate(ctx, "auth-tree", callback.AuthenticateHandler{
//		Audience: "/", ThingID: "thing-42", Key: key,
//	})
//	if err != nil {
//		return err
//	}
//	tok, err := c.AccessToken(ctx, s, "publish")
package amclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Accept-API-Version values the iot-edge SDK sends; AM copies them into
// the api header of signed requests.
const (
	serverInfoVersion   = "resource=1.1"
	authenticateVersion = "protocol=1.0,resource=2.1"
	thingsVersion       = "protocol=2.0,resource=1.0"
	sessionsVersion     = "resource=4.0"
)

// maxResponseBytes bounds the AM answers the client reads.
const maxResponseBytes = 4 << 20

// Client is an AM REST client. Set its fields before the first call and do
// not change them afterwards; a Client is safe for concurrent use.
type Client struct {
	// URL is AM's deployment URL: scheme, host, port and deployment path,
	// e.g. https://am.example.com/am. A trailing slash is ignored.
	URL string

	// Realm selects the realm with the realm query parameter: a realm path
	// ("/", "/a/b"), a realm alias, or a child's bare name. If empty, no
	// realm parameter is sent and AM picks the realm from the URL (a DNS
	// alias) or uses the top-level realm.
	Realm string

	// Tree is the authentication tree that AuthStep (the connector method a
	// thing uses) runs. Authenticate and AuthenticateStep take theirs as an
	// argument.
	Tree string

	// HTTPClient sends the requests. If nil, http.DefaultClient.
	HTTPClient *http.Client

	// Logger receives a debug line per request (method, path, status,
	// duration); never tokens, keys or JWTs. If nil, the client is silent.
	Logger *slog.Logger

	mu         sync.Mutex
	cookieName string
}

func (c *Client) base() string { return strings.TrimRight(c.URL, "/") }

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

func (c *Client) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return discard
}

var discard = slog.New(slog.DiscardHandler)

// queryValue escapes a realm or field name for a query string but keeps
// "/" as is: AM compares the aud of signed requests with the request URL,
// and the iot-edge SDK sends realm paths raw (realm=/a/b). Ordinary realm
// and attribute names are therefore sent unchanged.
func queryValue(v string) string {
	return strings.ReplaceAll(url.QueryEscape(v), "%2F", "/")
}

// request is one HTTP exchange with AM.
type request struct {
	method      string
	url         string
	version     string // Accept-API-Version; "" for none
	contentType string // "" means application/json
	body        []byte
	token       string // SSO token sent as the cookie; "" for none
}

// response is AM's answer.
type response struct {
	status int
	body   []byte
}

// do sends r and reads the answer. Transport failures are wrapped; when
// ctx is done, do returns ctx.Err().
func (c *Client) do(ctx context.Context, r request) (*response, error) {
	if c.URL == "" {
		return nil, errors.New("amclient: Client.URL is empty")
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return nil, fmt.Errorf("amclient: %w", err)
	}
	ct := r.contentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	if r.version != "" {
		req.Header.Set("Accept-API-Version", r.version)
	}
	if r.token != "" {
		name, err := c.CookieName(ctx)
		if err != nil {
			return nil, err
		}
		req.AddCookie(&http.Cookie{Name: name, Value: r.token})
	}
	start := time.Now()
	res, err := c.httpClient().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("amclient: cannot reach AM at %s: %w", c.base(), unwrapURLError(err))
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("amclient: reading AM's answer to %s %s: %w", r.method, req.URL.Path, err)
	}
	if len(b) > maxResponseBytes {
		return nil, fmt.Errorf("amclient: AM's answer to %s %s is larger than %d bytes", r.method, req.URL.Path, maxResponseBytes)
	}
	c.logger().LogAttrs(ctx, slog.LevelDebug, "am request", slog.String("method", r.method),
		slog.String("path", req.URL.Path), slog.String("query", req.URL.RawQuery),
		slog.Int("status", res.StatusCode), slog.Duration("took", time.Since(start)))
	return &response{status: res.StatusCode, body: b}, nil
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the
// method and URL, keeping the cause.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// call sends r and decodes a 200 answer into out (if not nil); any other
// status is an *Error.
func (c *Client) call(ctx context.Context, r request, out any) (*response, error) {
	res, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if res.status != http.StatusOK {
		return res, newError(res.status, res.body)
	}
	if out != nil {
		if err := json.Unmarshal(res.body, out); err != nil {
			return res, fmt.Errorf("amclient: AM's answer to %s is not the expected JSON: %w", r.method+" "+pathOf(r.url), err)
		}
	}
	return res, nil
}

func pathOf(u string) string {
	p, _, _ := strings.Cut(u, "?")
	return p
}

// CookieName returns the name of AM's SSO cookie, learnt from AM's server
// information (GET /json/serverinfo/*?_fields=cookieName) on first use and
// then remembered.
func (c *Client) CookieName(ctx context.Context) (string, error) {
	c.mu.Lock()
	name := c.cookieName
	c.mu.Unlock()
	if name != "" {
		return name, nil
	}
	var info struct {
		CookieName string `json:"cookieName"`
	}
	_, err := c.call(ctx, request{method: http.MethodGet, url: c.base() + "/json/serverinfo/*?_fields=cookieName",
		version: serverInfoVersion}, &info)
	if err != nil {
		return "", err
	}
	if info.CookieName == "" {
		return "", errors.New("amclient: AM's server information has no cookieName")
	}
	c.mu.Lock()
	c.cookieName = info.CookieName
	c.mu.Unlock()
	return info.CookieName, nil
}
