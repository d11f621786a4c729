package amtest

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/proof"
)

// popFailure is the answer to every proof-of-possession violation.
var popFailure = crest.Err(http.StatusUnauthorized, "Access Denied")

// requestPayload returns the JSON payload of a request made with an SSO
// session, enforcing the session's proof-of-possession restriction: a
// restricted session's requests must carry a compact JWS signed with its
// confirmation key, whose protected header names this exact URL (aud), the
// Accept-API-Version (api) and a nonce above every nonce used before, and
// whose payload carries the SSO token (csrf). Header and payload must be
// JSON objects without duplicate member names, and time claims in the
// payload (exp, nbf, iat), though not required, must hold at the server's
// clock with ClockSkew. A refused request consumes no nonce. Unrestricted
// sessions may send plain JSON, or a JWS that is checked the same way when
// the session knows a key.
func (c *reqCtx) requestPayload(x *session, tok string) ([]byte, error) {
	body, err := c.readBody()
	if err != nil {
		return nil, err
	}
	mt, _, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	jose := mt == "application/jose" || (mt != "application/json" && looksLikeJWS(body))
	if !jose {
		if x.Restricted {
			return nil, popFailure.WithLog("restricted session sent an unsigned request")
		}
		return body, nil
	}
	jws, err := proof.Parse(string(body))
	if err != nil {
		if x.Restricted {
			// An unusable JWS (alg none, HMAC, garbage) proves nothing:
			// a restriction violation like any other.
			return nil, popFailure.WithLog("signed request: %v", err)
		}
		return nil, crest.Err(http.StatusBadRequest, "Invalid signed request").WithLog("%v", err)
	}
	// The payload passed strictjson in proof.Parse: one csrf member at
	// most, whatever the case of its name. Read it by its exact name.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(jws.Payload, &members); err != nil {
		return nil, crest.Err(http.StatusBadRequest, "Invalid signed request").WithLog("payload is not a JSON object")
	}
	var csrf string
	if raw, ok := members["csrf"]; ok && json.Unmarshal(raw, &csrf) != nil {
		return nil, popFailure.WithLog("signed request csrf is not a string")
	}
	// Time claims are honoured wherever they appear, although neither
	// iot-edge nor this module's SDK sends them in signed requests.
	times, err := proof.TimeClaims(jws.Payload)
	if err == nil {
		err = proof.CheckTimes(times, c.now, c.s.skew(), false, false)
	}
	if err != nil {
		return nil, popFailure.WithLog("signed request: %v", err)
	}
	if x.Key == nil {
		if x.Restricted {
			return nil, popFailure.WithLog("restricted session has no key")
		}
		if csrf != "" && csrf != tok {
			return nil, popFailure.WithLog("csrf is not the session's token")
		}
		return jws.Payload, nil
	}
	if err := jws.Verify(x.Key); err != nil {
		return nil, popFailure.WithLog("signed request: %v", err)
	}
	if aud := jws.HeaderString("aud"); !c.matchesRequestURL(aud) {
		return nil, popFailure.WithLog("signed request aud %q is not the request URL %q", aud, c.requestURL())
	}
	api, err := crest.ParseAPIVersion(jws.HeaderString("api"))
	if err != nil || jws.HeaderString("api") == "" || api != c.ver {
		return nil, popFailure.WithLog("signed request api %q is not the Accept-API-Version", jws.HeaderString("api"))
	}
	var nonce json.Number
	if raw := bytes.TrimSpace(jws.Header["nonce"]); len(raw) == 0 || raw[0] == '"' {
		// encoding/json would decode "7" into a json.Number; AM wants an integer.
		return nil, popFailure.WithLog("signed request nonce is missing or not a JSON number")
	}
	dec := json.NewDecoder(bytes.NewReader(jws.Header["nonce"]))
	dec.UseNumber()
	if err := dec.Decode(&nonce); err != nil {
		return nil, popFailure.WithLog("signed request nonce is not an integer")
	}
	n, err := nonce.Int64()
	if err != nil || n < 0 {
		return nil, popFailure.WithLog("signed request nonce %q is not a non-negative integer", nonce)
	}
	if !identities.ConstantTimeEqual(csrf, tok) {
		return nil, popFailure.WithLog("csrf is not the session's token")
	}
	if n <= x.LastNonce {
		return nil, popFailure.WithLog("nonce %d was already used or is below one that was", n)
	}
	// Checked, not yet written: the nonce goes into the transaction of the
	// request's first change, or alone before the answer (see
	// reqCtx.nonce), and is checked again there.
	c.nonce = &pendingNonce{tok: tok, n: n}
	return jws.Payload, nil
}

func looksLikeJWS(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] != '{' && bytes.Count(b, []byte(".")) == 2
}

// requestURL is the URL the client addressed, as it must appear in aud.
func (c *reqCtx) requestURL() string {
	uri := c.r.RequestURI
	if !strings.HasPrefix(uri, "/") {
		uri = c.r.URL.RequestURI() // absolute-form request target
	}
	return requestScheme(c.r) + "://" + c.r.Host + uri
}

func (c *reqCtx) matchesRequestURL(aud string) bool {
	if aud == "" {
		return false
	}
	want := c.requestURL()
	if aud == want {
		return true
	}
	da, err1 := url.PathUnescape(aud)
	dw, err2 := url.PathUnescape(want)
	return err1 == nil && err2 == nil && da == dw
}

// handleThings serves /json/things/*: the thing of the session.
func (s *Server) handleThings(c *reqCtx) error {
	x, tok, err := c.caller()
	if err != nil {
		return err
	}
	if x.Realm != c.realm {
		return errAccessDenied.WithLog("session of realm %s used in realm %s", x.Realm, c.realm)
	}
	if c.rc.IoT == nil {
		return crest.Err(http.StatusNotFound, "The IoT Service is not configured in this realm")
	}
	thing := s.getIdentity(c.realm, x.UID)
	if thing == nil {
		return errAccessDenied.WithLog("the session's identity %q no longer exists", x.UID)
	}
	action := c.r.URL.Query().Get("_action")
	switch {
	case c.r.Method == http.MethodGet && action == "":
		if _, err := c.requestPayload(x, tok); err != nil {
			return err
		}
		return s.thingAttributes(c, thing)
	case c.r.Method == http.MethodPost && action != "":
		payload, err := c.requestPayload(x, tok)
		if err != nil {
			return err
		}
		var err2 error
		switch action {
		case "get_access_token":
			err2 = s.thingAccessToken(c, thing, payload)
		case "introspect_token":
			err2 = s.thingIntrospect(c, thing, payload)
		case "get_user_code":
			err2 = s.thingUserCode(c, thing, payload)
		case "get_user_token":
			err2 = s.thingUserToken(c, thing, payload)
		default:
			return crest.Err(http.StatusNotImplemented, "Action '"+action+"' not implemented for this resource")
		}
		return wrapOAuth(err2)
	}
	return crest.Err(http.StatusMethodNotAllowed, "Method Not Allowed")
}

// wrapOAuth renders OAuth errors of the things endpoint as AM does: a CREST
// body carrying the OAuth error object in detail.
func wrapOAuth(err error) error {
	ae, ok := err.(*crest.Error)
	if !ok || !ae.OAuth {
		return err
	}
	c := *ae
	c.OAuth = false
	return &c
}

// thingAttributes answers a GET: _id plus the IoT Service's readable
// attributes, each as an array of strings, filtered by _fields.
func (s *Server) thingAttributes(c *reqCtx, thing *identity) error {
	allow := c.rc.IoT.AttributeAllowlist
	var want []string
	f := c.r.URL.Query().Get("_fields")
	if f != "" {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" && slices.Contains(allow, name) {
				want = append(want, name)
			}
		}
	} else {
		want = allow
	}
	out := map[string]any{"_id": thing.ID}
	for _, name := range want {
		v := thing.Attrs[name]
		if v == nil {
			if f != "" {
				// Requested by _fields but not set: omitted. Without
				// _fields every readable attribute appears, [] when unset.
				continue
			}
			v = []string{}
		}
		out[name] = v
	}
	crest.WriteJSON(c.w, http.StatusOK, out)
	return nil
}
