package identities

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/proof"
)

// Identity is an entry of a realm's identity store.
type Identity struct {
	Realm string `json:"realm"`
	ID    string `json:"id"`
	// Attrs holds every stored attribute as a list of strings, as AM's
	// identity store does; JSON values (thingKeys) are held as JSON text.
	Attrs        map[string][]string `json:"attrs"`
	PasswordHash string              `json:"pw,omitempty"`
	Created      time.Time           `json:"created"`
	Rev          int                 `json:"rev"`
}

var objectClasses = []string{"iplanet-am-managed-person", "inetuser", "fr-iot", "sunFMSAML2NameIdentifier",
	"inetorgperson", "devicePrintProfilesContainer", "pushDeviceProfilesContainer", "iPlanetPreferences",
	"iplanet-am-user-service", "forgerock-am-dashboard-service", "organizationalperson", "top",
	"kbaInfoContainer", "oathDeviceProfilesContainer", "person", "webauthnDeviceProfilesContainer",
	"sunAMAuthAccountLockout", "deviceProfilesContainer", "iplanet-am-auth-configuration-service"}

// New returns a new identity id of realm, created at now, with the
// attributes AM's identity store gives every identity: its object
// classes, cn, sn and uid (the ID) and inetUserStatus Active.
func New(realm, id string, now time.Time) *Identity {
	return &Identity{Realm: realm, ID: id, Created: now, Attrs: map[string][]string{
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

// ValidName says whether id may name an identity: 1 to 255 characters,
// none of them a control character or one of / \ , + " < > ; = * ( ) #,
// and no leading or trailing space.
func ValidName(id string) bool { return validID.MatchString(id) && strings.TrimSpace(id) == id }

// FromJSON builds the identity id of realm, created at now, from an
// identity-endpoint body (see [Identity.SetFromJSON]). pwHash, if not
// empty, is the hash of the body's userPassword made beforehand (see
// [PasswordHashOf]). An invalid name or body is an error whose text is
// the client's message.
func FromJSON(realm, id string, body map[string]any, now time.Time, pwHash string) (*Identity, error) {
	if !ValidName(id) {
		return nil, fmt.Errorf("invalid identity name %q", id)
	}
	x := New(realm, id, now)
	if err := x.SetFromJSON(body, pwHash); err != nil {
		return nil, err
	}
	return x, nil
}

// SetFromJSON stores the attributes of a request body as AM does: strings
// as one value, arrays as one value per element, other JSON values as their
// JSON text; null or an empty array removes the attribute. Read-only
// members and those that start with _ are ignored; userPassword is stored
// as its hash, and thingKeys must be JSON Web Key sets. pwHash, if not
// empty, is the hash of the body's userPassword. An error's text is the
// client's message; x may then be changed in part.
func (x *Identity) SetFromJSON(body map[string]any, pwHash string) error {
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
				pwHash = HashPassword(pw)
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
				vals = append(vals, AttrValue(e))
			}
		case map[string]any:
			if k == "thingKeys" {
				if keys, ok := t["keys"]; ok && keys == nil {
					break // {"keys": null}: no keys, as the test harness sends for humans
				}
			}
			vals = []string{AttrValue(t)}
		default:
			vals = []string{AttrValue(t)}
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

// JSON renders the identity as the identity endpoint returns it at
// resource API version major (0: none asked): every attribute, thingKeys
// as parsed JSON, and the members AM computes (_id, a list before version
// 4; _rev, realm, username, dn, universalid, createTimestamp).
func (x *Identity) JSON(major int) map[string]any {
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
	if major > 0 && major < 4 {
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

// Filtered is [Identity.JSON] with a request's _fields applied: fields,
// when not empty, is a comma-separated list of the members to keep, and
// _id and _rev are always kept.
func (x *Identity) Filtered(major int, fields string) map[string]any {
	out := x.JSON(major)
	crest.KeepFields(out, fields)
	return out
}

// First returns the first value of the attribute attr, "" when it has
// none.
func (x *Identity) First(attr string) string {
	if v := x.Attrs[attr]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Clone returns a copy of x that shares no attribute with it.
func (x *Identity) Clone() *Identity {
	c := *x
	c.Attrs = make(map[string][]string, len(x.Attrs))
	for k, v := range x.Attrs {
		c.Attrs[k] = append([]string(nil), v...)
	}
	return &c
}

// CloneValue lets the store copy an identity without sharing its maps
// (store.Cloner).
func (x *Identity) CloneValue() any { return x.Clone() }

// ThingKeys returns the thing's confirmation keys: the usable keys of the
// JWK sets in its thingKeys.
func (x *Identity) ThingKeys() []jose.JSONWebKey {
	var keys []jose.JSONWebKey
	for _, text := range x.Attrs["thingKeys"] {
		set, err := proof.ParseJWKSet(text)
		if err != nil {
			continue
		}
		keys = append(keys, set.Keys...)
	}
	return keys
}

// ThingKey returns the public part of the thing's confirmation key kid,
// nil when it has none.
func (x *Identity) ThingKey(kid string) *jose.JSONWebKey {
	for _, k := range x.ThingKeys() {
		if k.KeyID == kid {
			return proof.PublicJWK(&k)
		}
	}
	return nil
}

// AttrValue is a JSON value (a request body's, a claim's) as an attribute
// value: a string as it is, anything else as JSON text, as the identity
// store keeps JSON values.
func AttrValue(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// ConstantTimeEqual compares two secrets (passwords, nonces, anti-forgery
// values) in a time that does not depend on where they differ.
func ConstantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
