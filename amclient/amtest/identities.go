package amtest

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/proof"
)

var objectClasses = []string{"iplanet-am-managed-person", "inetuser", "fr-iot", "sunFMSAML2NameIdentifier",
	"inetorgperson", "devicePrintProfilesContainer", "pushDeviceProfilesContainer", "iPlanetPreferences",
	"iplanet-am-user-service", "forgerock-am-dashboard-service", "organizationalperson", "top",
	"kbaInfoContainer", "oathDeviceProfilesContainer", "person", "webauthnDeviceProfilesContainer",
	"sunAMAuthAccountLockout", "deviceProfilesContainer", "iplanet-am-auth-configuration-service"}

func newThingIdentity(realm, id string, now time.Time) *identity {
	return &identity{Realm: realm, ID: id, Created: now, Attrs: map[string][]string{
		"objectClass":    append([]string(nil), objectClasses...),
		"cn":             {id},
		"sn":             {id},
		"uid":            {id},
		"inetUserStatus": {"Active"},
	}}
}

// Attributes the identity endpoint computes and clients cannot set.
var readOnlyAttrs = map[string]bool{"_id": true, "_rev": true, "realm": true, "username": true, "dn": true,
	"universalid": true, "createTimestamp": true, "modifyTimestamp": true, "objectClass": true}

var validID = regexp.MustCompile(`^[^\x00-\x1f/\\,+"<>;=*()#]{1,255}$`)

// validName says whether id may name an identity.
func validName(id string) bool { return validID.MatchString(id) && strings.TrimSpace(id) == id }

// newIdentityFromJSON builds an identity from an identity-endpoint body.
func newIdentityFromJSON(realm, id string, body map[string]any, now time.Time) (*identity, error) {
	return buildIdentity(realm, id, body, now, "")
}

// buildIdentity is newIdentityFromJSON with the hash of the body's
// userPassword, if it has one, made beforehand (see passwordHashOf).
func buildIdentity(realm, id string, body map[string]any, now time.Time, pwHash string) (*identity, error) {
	if !validName(id) {
		return nil, fmt.Errorf("invalid identity name %q", id)
	}
	x := newThingIdentity(realm, id, now)
	if err := x.setFromJSON(body, pwHash); err != nil {
		return nil, err
	}
	return x, nil
}

// passwordHashOf hashes the body's userPassword, when it is a non-empty
// string, so that the slow hash is not computed inside a transaction.
func passwordHashOf(body map[string]any) string {
	if pw, ok := body["userPassword"].(string); ok && pw != "" {
		return hashPassword(pw)
	}
	return ""
}

// setFromJSON stores the attributes of a request body as AM does: strings
// as one value, arrays as one value per element, other JSON values as their
// JSON text; null or an empty array removes the attribute. pwHash, if not
// empty, is the hash of the body's userPassword.
func (x *identity) setFromJSON(body map[string]any, pwHash string) error {
	for k, v := range body {
		if readOnlyAttrs[k] || strings.HasPrefix(k, "_") {
			continue
		}
		if k == "userPassword" {
			pw, ok := v.(string)
			if !ok || pw == "" {
				return errors.New("userPassword must be a non-empty string")
			}
			if pwHash == "" {
				pwHash = hashPassword(pw)
			}
			x.PasswordHash = pwHash
			continue
		}
		var vals []string
		switch t := v.(type) {
		case nil:
		case string:
			vals = []string{t}
		case []any:
			for _, e := range t {
				if e == nil {
					continue
				}
				vals = append(vals, claimString(e))
			}
		case map[string]any:
			if k == "thingKeys" {
				if keys, ok := t["keys"]; ok && keys == nil {
					break // {"keys": null}: no keys, as the test harness sends for humans
				}
			}
			vals = []string{claimString(t)}
		default:
			vals = []string{claimString(t)}
		}
		if k == "thingKeys" {
			for _, text := range vals {
				if _, err := proof.ParseJWKSet(text); err != nil {
					return fmt.Errorf("thingKeys is not a JSON Web Key set: %v", err)
				}
			}
		}
		if len(vals) == 0 {
			delete(x.Attrs, k)
		} else {
			x.Attrs[k] = vals
		}
	}
	return nil
}

// toJSON renders the identity as the identity endpoint returns it.
func (x *identity) toJSON(resourceMajor int) map[string]any {
	out := map[string]any{}
	for k, v := range x.Attrs {
		if k == "thingKeys" {
			// Rendered as parsed JSON, as the evaluation guide shows.
			var objs []any
			for _, text := range v {
				var o any
				if json.Unmarshal([]byte(text), &o) == nil {
					objs = append(objs, o)
				}
			}
			out[k] = objs
			continue
		}
		out[k] = v
	}
	out["_id"] = x.ID
	if resourceMajor > 0 && resourceMajor < 4 {
		out["_id"] = []string{x.ID}
	}
	out["_rev"] = strconv.Itoa(-1 - x.Rev)
	out["realm"] = x.Realm
	out["username"] = x.ID
	out["dn"] = []string{"uid=" + x.ID + ",ou=people,dc=openam,dc=forgerock,dc=org"}
	out["universalid"] = []string{"id=" + x.ID + ",ou=user,dc=openam,dc=forgerock,dc=org"}
	out["createTimestamp"] = []string{x.Created.UTC().Format("20060102150405Z")}
	return out
}

const pbkdf2Iterations = 20000

func hashPassword(pw string) string {
	salt := randomBytes(16)
	dk, err := pbkdf2.Key(sha256.New, pw, salt, pbkdf2Iterations, 32)
	if err != nil {
		panic(err)
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", pbkdf2Iterations, enc.EncodeToString(salt), enc.EncodeToString(dk))
}

func checkPasswordHash(stored, pw string) bool {
	parts := strings.Split(stored, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > 10_000_000 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[2])
	want, err2 := enc.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	dk, err := pbkdf2.Key(sha256.New, pw, salt, iter, len(want))
	return err == nil && subtle.ConstantTimeCompare(dk, want) == 1
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func equalFoldASCII(a, b string) bool { return strings.EqualFold(a, b) }

// claimString is a JSON value as an attribute value: a string as it is,
// anything else as JSON text.
func claimString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// caller returns the live session of the request, or a 401.
func (c *reqCtx) caller() (*session, string, error) {
	tok := c.ssoToken()
	x, ok := c.s.liveSession(tok, c.now)
	if !ok {
		return nil, "", errAccessDenied.WithLog("no valid SSO token")
	}
	return x, tok, nil
}

// handleUsers serves the identity endpoint: /json/users and
// /json/realms/root/.../users/{id}.
func (s *Server) handleUsers(c *reqCtx, sub string) error {
	caller, tok, err := c.caller()
	if err != nil {
		return err
	}
	if caller.Restricted {
		// A restricted session signs every request, here as on things.
		if _, err := c.requestPayload(caller, tok); err != nil {
			return err
		}
	}
	id, err := url.PathUnescape(sub)
	if err != nil || strings.Contains(id, "/") {
		return errNotFound
	}
	self := id != "" && caller.Realm == c.realm && strings.EqualFold(caller.UID, id)
	if !caller.Admin && !(self && c.r.Method == http.MethodGet) {
		return errForbidden.WithLog("%s is not an administrator", caller.UID)
	}
	major := c.ver.Major()
	switch {
	case id == "" && c.r.Method == http.MethodPost && c.r.URL.Query().Get("_action") == "create":
		body, err := s.readObject(c)
		if err != nil {
			return err
		}
		name, _ := body["username"].(string)
		if name == "" {
			name, _ = body["_id"].(string)
		}
		if name == "" {
			return crest.Err(http.StatusBadRequest, "username is required")
		}
		return s.createIdentity(c, name, body, major)
	case id == "" && c.r.Method == http.MethodGet:
		return s.queryIdentities(c, major)
	case id == "":
		return crest.Err(http.StatusMethodNotAllowed, "Method Not Allowed")
	case c.r.Method == http.MethodGet:
		x := s.getIdentity(c.realm, id)
		if x == nil {
			return errNotFound
		}
		crest.WriteJSON(c.w, http.StatusOK, x.filtered(c, major))
		return nil
	case c.r.Method == http.MethodPut:
		body, err := s.readObject(c)
		if err != nil {
			return err
		}
		pwHash := passwordHashOf(body)
		ifMatch, ifNoneMatch := c.r.Header.Get("If-Match"), c.r.Header.Get("If-None-Match")
		var created bool
		// The existence checks and the write are one transaction.
		x, err := s.changeIdentity(c.realm, id, func(cur *identity) (*identity, error) {
			created = cur == nil
			if cur == nil {
				if ifMatch != "" && ifMatch != "*" {
					return nil, crest.Err(http.StatusPreconditionFailed, "Precondition Failed")
				}
				return s.newIdentityFor(c, id, body, pwHash)
			}
			if ifNoneMatch == "*" {
				return nil, crest.Err(http.StatusPreconditionFailed, "Resource already exists")
			}
			if err := cur.setFromJSON(body, pwHash); err != nil {
				return nil, crest.Err(http.StatusBadRequest, err.Error())
			}
			cur.Rev++
			return cur, nil
		})
		if err != nil {
			return err
		}
		if created {
			return s.createdIdentity(c, x, major)
		}
		crest.WriteJSON(c.w, http.StatusOK, x.toJSON(major))
		return nil
	case c.r.Method == http.MethodDelete:
		x, err := s.deleteIdentity(c.realm, id)
		if err != nil {
			return err
		}
		if x == nil {
			return errNotFound
		}
		crest.WriteJSON(c.w, http.StatusOK, x.toJSON(major))
		return nil
	}
	return crest.Err(http.StatusMethodNotAllowed, "Method Not Allowed")
}

func (s *Server) readObject(c *reqCtx) (map[string]any, error) {
	b, err := c.readBody()
	if err != nil {
		return nil, err
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil || body == nil {
		return nil, crest.Err(http.StatusBadRequest, "The request could not be processed because the provided content is not valid JSON")
	}
	return body, nil
}

func (s *Server) createIdentity(c *reqCtx, id string, body map[string]any, major int) error {
	pwHash := passwordHashOf(body)
	x, err := s.changeIdentity(c.realm, id, func(cur *identity) (*identity, error) {
		if cur != nil {
			return nil, crest.Err(http.StatusConflict, "Unable to save user: the resource already exists").WithLog("identity %q exists", id)
		}
		return s.newIdentityFor(c, id, body, pwHash)
	})
	if err != nil {
		return err
	}
	return s.createdIdentity(c, x, major)
}

// newIdentityFor builds the identity a create request asks for, or AM's
// refusal: 409 for the administrator's name, 400 for a bad body.
func (s *Server) newIdentityFor(c *reqCtx, id string, body map[string]any, pwHash string) (*identity, error) {
	if c.realm == "/" && strings.EqualFold(id, c.cfg.AdminUser) {
		return nil, crest.Err(http.StatusConflict, "Unable to save user: the resource already exists").WithLog("identity %q exists", id)
	}
	x, err := buildIdentity(c.realm, id, body, c.now, pwHash)
	if err != nil {
		return nil, crest.Err(http.StatusBadRequest, err.Error())
	}
	return x, nil
}

// createdIdentity answers a create: 201 with the identity and its Location.
func (s *Server) createdIdentity(c *reqCtx, x *identity, major int) error {
	c.w.Header().Set("Location", c.base+"/json"+realmJSONPath(c.realm)+"/users/"+url.PathEscape(x.ID))
	crest.WriteJSON(c.w, http.StatusCreated, x.toJSON(major))
	return nil
}

func realmJSONPath(realm string) string {
	p := "/realms/root"
	for _, part := range strings.Split(strings.Trim(realm, "/"), "/") {
		if part != "" {
			p += "/realms/" + part
		}
	}
	return p
}

// filtered applies _fields to an identity rendering.
func (x *identity) filtered(c *reqCtx, major int) map[string]any {
	out := x.toJSON(major)
	if f := c.r.URL.Query().Get("_fields"); f != "" {
		keep := map[string]bool{"_id": true, "_rev": true}
		for _, name := range strings.Split(f, ",") {
			keep[strings.TrimSpace(name)] = true
		}
		for k := range out {
			if !keep[k] {
				delete(out, k)
			}
		}
	}
	return out
}

// queryIdentities answers _queryFilter=true (all) and _queryId=<pattern> (*
// wildcards), paged as AM's CREST pages: _pageSize (0 or absent: all),
// _pagedResultsCookie (from the previous page), _pagedResultsOffset, and
// _sortKeys (_id, username or uid, "-" before for descending; by default
// ascending _id). _totalPagedResultsPolicy=EXACT
// counts the matches; otherwise totalPagedResults and
// remainingPagedResults are -1, as AM answers with policy NONE.
//
// With a data directory the page is read in a read transaction, which
// holds no lock that writes (authentications, signed requests) wait on;
// ascending pages by cookie seek straight to where the last page ended.
func (s *Server) queryIdentities(c *reqCtx, major int) error {
	q := c.r.URL.Query()
	filter, qid := q.Get("_queryFilter"), q.Get("_queryId")
	if filter == "" && qid == "" {
		return crest.Err(http.StatusBadRequest, "Query request must specify _queryFilter or _queryId")
	}
	if filter != "" && filter != "true" {
		return crest.Err(http.StatusNotImplemented, "Only _queryFilter=true is supported by the local AM")
	}
	var match *regexp.Regexp
	if qid != "" {
		var err error
		// QuoteMeta's text fails to compile only when it is not UTF-8.
		if match, err = regexp.Compile("(?i)^" + strings.ReplaceAll(regexp.QuoteMeta(qid), `\*`, ".*") + "$"); err != nil {
			return crest.Err(http.StatusBadRequest, "Invalid _queryId")
		}
	}
	pageSize, err := crest.Count(q, "_pageSize")
	if err != nil {
		return err
	}
	offset, err := crest.Count(q, "_pagedResultsOffset")
	if err != nil {
		return err
	}
	desc := false
	if v := q.Get("_sortKeys"); v != "" {
		key := strings.TrimPrefix(strings.TrimPrefix(v, "+"), "-")
		desc = strings.HasPrefix(v, "-")
		if key != "_id" && key != "username" && key != "uid" {
			return crest.Err(http.StatusBadRequest, "Sorting by '"+key+"' is not supported by the local AM (only _id, username and uid)")
		}
	}
	exact := strings.EqualFold(q.Get("_totalPagedResultsPolicy"), "EXACT")
	prefix := realmPrefix(c.realm)
	after := ""
	if ck := q.Get("_pagedResultsCookie"); ck != "" {
		b, err := base64.RawURLEncoding.DecodeString(ck)
		if err != nil || !strings.HasPrefix(string(b), prefix) {
			return crest.Err(http.StatusBadRequest, "Invalid _pagedResultsCookie")
		}
		after, offset = string(b), 0
	}
	result := []map[string]any{}
	var cookie any
	total, left := -1, 0
	// The order index's keys hold the _id: matching, skipping and counting
	// read the index alone, and only the page's identities are decoded, so
	// a page of 100 out of 100,000 is a short read transaction.
	matches := func(okey string) bool { return match == nil || match.MatchString(okey[len(prefix):]) }
	add := func(tx storeTx, okey string) error {
		var x identity
		found, err := tx.Get(kindIdentity, identityKey(c.realm, okey[len(prefix):]), &x)
		if found {
			result = append(result, x.filtered(c, major))
		}
		return err
	}
	err = s.db.View(func(tx storeTx) error {
		if !desc && !exact {
			// Straight from the index: skip offset, take a page, peek one more.
			skipped := 0
			var last string
			return tx.Scan(kindIdentityOrder, prefix, after, func(okey string, _ func(any) error) (bool, error) {
				if !matches(okey) {
					return true, nil
				}
				if skipped < offset {
					skipped++
					return true, nil
				}
				if pageSize > 0 && len(result) == pageSize {
					cookie = base64.RawURLEncoding.EncodeToString([]byte(last))
					return false, nil
				}
				last = okey
				return true, add(tx, okey)
			})
		}
		// Descending or counted: the index keys of every match of the
		// realm, then the page.
		var keys []string
		if err := tx.Scan(kindIdentityOrder, prefix, "", func(okey string, _ func(any) error) (bool, error) {
			if matches(okey) {
				keys = append(keys, okey)
			}
			return true, nil
		}); err != nil {
			return err
		}
		if desc {
			slices.Reverse(keys)
		}
		total = len(keys)
		start := 0
		if after != "" {
			start = len(keys)
			for i, k := range keys {
				if desc && k < after || !desc && k > after {
					start = i
					break
				}
			}
		}
		start = min(start+offset, len(keys))
		end := len(keys)
		if pageSize > 0 && start+pageSize < end {
			end = start + pageSize
			cookie = base64.RawURLEncoding.EncodeToString([]byte(keys[end-1]))
		}
		for _, k := range keys[start:end] {
			if err := add(tx, k); err != nil {
				return err
			}
		}
		left = max(len(keys)-end, 0)
		return nil
	})
	if err != nil {
		return storeErr(err)
	}
	policy, remaining := "NONE", -1
	if exact {
		policy = "EXACT"
		remaining = left
	}
	crest.WriteJSON(c.w, http.StatusOK, map[string]any{"result": result, "resultCount": len(result),
		"pagedResultsCookie": cookie, "totalPagedResultsPolicy": policy, "totalPagedResults": total, "remainingPagedResults": remaining})
	return nil
}

// EnsureUser creates a person's identity (a user with a password and no
// thingType, such as the one who approves a device) in realm, unless an
// identity of that name exists; an existing one is left unchanged. It
// reports whether it created the user.
func (s *Server) EnsureUser(realm, id, password string) (bool, error) {
	if err := s.Init(); err != nil {
		return false, err
	}
	if password == "" {
		return false, errors.New("amtest: a user needs a password")
	}
	if realm == "" {
		realm = "/"
	}
	if _, ok := s.config().Realms[realm]; !ok {
		return false, fmt.Errorf("amtest: no realm %q", realm)
	}
	if realm == "/" && strings.EqualFold(id, s.config().AdminUser) {
		return false, fmt.Errorf("amtest: %q is the administrator", id)
	}
	pwHash := passwordHashOf(map[string]any{"userPassword": password})
	_, err := s.changeIdentity(realm, id, func(cur *identity) (*identity, error) {
		if cur != nil {
			return nil, errNoChange
		}
		return buildIdentity(realm, id, map[string]any{"userPassword": password}, s.now(), pwHash)
	})
	if errors.Is(err, errNoChange) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("amtest: %w", err)
	}
	return true, nil
}
