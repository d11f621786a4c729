package callback

import (
	"encoding/json"
	"math"
	"strings"
)

// Step is one message of an authentication exchange: what a thing sends
// ({} to start, then the previous answer with its callbacks answered) and
// what comes back (more callbacks, or a TokenID). Through a gateway,
// AuthIDDigest stands in for AuthID, which is too large for a datagram.
type Step struct {
	AuthID       string     `json:"authId,omitempty"`
	AuthIDDigest string     `json:"auth_id_digest,omitempty"`
	Callbacks    []Callback `json:"callbacks,omitempty"`
	TokenID      string     `json:"tokenId,omitempty"`
}

// AMInfo names the AM URLs and API versions that a thing's signed requests
// must carry as aud and api. A gateway serves it as JSON with exactly these
// member names (no JSON tags), as the iot-edge gateway's /aminfo does.
type AMInfo struct {
	Realm              string
	AccessTokenURL     string
	IntrospectURL      string
	AttributesURL      string
	ThingsVersion      string
	UserCodeURL        string
	UserTokenURL       string
	SessionsVersion    string
	SessionValidateURL string
	SessionLogoutURL   string
}

// API versions of the things and sessions endpoints.
const (
	ThingsVersion   = "protocol=2.0,resource=1.0"
	SessionsVersion = "resource=4.0"
)

// NewAMInfo computes the AMInfo of AM at base (the deployment URL) for
// realm, which is inserted raw, as AM compares the URLs byte for byte.
func NewAMInfo(base, realm string) AMInfo {
	base = strings.TrimRight(base, "/")
	action := func(a string) string {
		u := base + "/json/things/*?_action=" + a
		if realm != "" {
			u += "&realm=" + realm
		}
		return u
	}
	attrs := base + "/json/things/*"
	if realm != "" {
		attrs += "?realm=" + realm
	}
	return AMInfo{
		Realm:              realm,
		AccessTokenURL:     action("get_access_token"),
		IntrospectURL:      action("introspect_token"),
		AttributesURL:      attrs,
		ThingsVersion:      ThingsVersion,
		UserCodeURL:        action("get_user_code"),
		UserTokenURL:       action("get_user_token"),
		SessionsVersion:    SessionsVersion,
		SessionValidateURL: base + "/json/sessions?_action=validate",
		SessionLogoutURL:   base + "/json/sessions?_action=logout",
	}
}

// AttributesURLFor is the attributes URL with _fields for names, as the
// aud of a signed attribute read: AttributesURL, then "&" or "?", then
// _fields= and the names joined by commas.
func (i AMInfo) AttributesURLFor(names []string) string {
	if len(names) == 0 {
		return i.AttributesURL
	}
	sep := "?"
	if strings.Contains(i.AttributesURL, "?") {
		sep = "&"
	}
	return i.AttributesURL + sep + "_fields=" + strings.Join(names, ",")
}

// Operations a thing asks of AM through a connector; the names are the
// gateway's CoAP resources.
const (
	OpAccessToken     = "accesstoken"
	OpIntrospect      = "introspect"
	OpAttributes      = "attributes"
	OpUserCode        = "usercode"
	OpUserToken       = "usertoken"
	OpSessionValidate = "session/validate"
	OpSessionLogout   = "session/logout"
)

// Request is one things-endpoint or session request of a thing.
type Request struct {
	// Op is one of the Op constants.
	Op string
	// Token is the SSO token.
	Token string
	// Body is the JSON body (nil for none), or, when Signed, the compact
	// JWS that carries it.
	Body   []byte
	Signed bool
	// Fields are the attribute names of an OpAttributes request.
	Fields []string
}

// Seconds reads a JSON number of seconds: an integer as it is, any other
// number truncated toward zero, and saturated beyond int64's range (the
// float conversion would give an arbitrary value: on amd64, 1e30 became
// -9223372036854775808). AM's expires_in and interval are read with it.
func Seconds(n json.Number) (int64, error) {
	if n == "" {
		return 0, nil
	}
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	f, err := n.Float64()
	if err != nil && !math.IsInf(f, 0) {
		return 0, err
	}
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64, nil
	case f <= math.MinInt64:
		return math.MinInt64, nil
	}
	return int64(f), nil
}
