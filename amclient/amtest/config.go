package amtest

import (
	"bytes"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest/internal/script"
)

// Fixed node IDs of AM's Success and Failure nodes.
const (
	SuccessNodeID = "70e691a5-1e33-4ac3-a356-e7b6d60d92e0"
	FailureNodeID = "e301438c-0bd0-429c-ab0c-66126501069a"
)

// Node types the local AM evaluates.
const (
	NodeTypeIoTAuthentication = "IotAuthenticationNode"
	NodeTypeIoTRegistration   = "IotRegistrationNode"
	NodeTypeUsernameCollector = "UsernameCollectorNode"
	NodeTypePasswordCollector = "PasswordCollectorNode"
	NodeTypeDataStoreDecision = "DataStoreDecisionNode"
	NodeTypeScriptedDecision  = "ScriptedDecisionNode"
)

// Values of IoTAuthenticationNode.JWTAuthenticationMethod.
const (
	AuthProofOfPossession = "PROOF_OF_POSSESSION"
	AuthClientAssertion   = "CLIENT_ASSERTION"
)

// Values of IoTRegistrationNode.JWTRegistrationMethod.
const (
	RegPoPWithCertificate       = "POP_WITH_CERTIFICATE"
	RegPoPWithSoftwareStatement = "POP_WITH_SOFTWARE_STATEMENT"
	RegPoPWithoutTrust          = "POP_WITHOUT_TRUST"
	RegSoftwareStatementOnly    = "SOFTWARE_STATEMENT_WITHOUT_POP"
)

// Config is the AM configuration the local server runs with: what an
// administrator sets up in AM's console. Its JSON form follows AM's own
// REST/export shapes (services, trees, nodes, agents) so that exported
// journeys can be pasted in.
type Config struct {
	// CookieName is the SSO cookie name published by server info.
	// If empty, "iPlanetDirectoryPro".
	CookieName string `json:"cookieName,omitempty"`
	// AdminUser and AdminPassword are the administrator of the top-level
	// realm. If empty, "amAdmin" and "changeit" (the evaluation guide's).
	AdminUser     string `json:"adminUser,omitempty"`
	AdminPassword string `json:"adminPassword,omitempty"`
	// CertVerificationCAs are CA certificates trusted for the secret ID
	// am.services.iot.cert.verification besides those of the keystore
	// aliases that SecretMappings maps to it. The Register Thing node
	// accepts thing certificates signed by any of them. As in AM, only the
	// CA's key is used: its validity period is not checked.
	// In JSON, a list of PEM certificates.
	CertVerificationCAs Certificates `json:"certVerificationCAs,omitempty"`
	// KeystoreAliases stands in for AM's default keystore: certificates by
	// alias, which secret mappings name. The alias thingway-example-ca
	// (the project's example CA, [ExampleCA]) is always present unless
	// this map gives it other certificates. A team whose AM maps
	// am.services.iot.cert.verification to an alias of its own (the iot-edge
	// tests use es256test) adds its CA under that alias here.
	// In JSON, an object of lists of PEM certificates.
	KeystoreAliases map[string]Certificates `json:"keystoreAliases,omitempty"`
	// SecretMappings maps secret IDs to keystore aliases, as AM's
	// default-keystore mappings do. Only am.services.iot.cert.verification
	// is used: its aliases must be in KeystoreAliases. Others are kept for
	// the REST API. The admin REST API replaces a mapping and, for
	// am.services.iot.cert.verification, clears CertVerificationCAs.
	SecretMappings map[string][]string `json:"secretMappings,omitempty"`
	// ServerProperties are the advanced server properties
	// (com.sun.identity.server.fqdnMap[...] and the like). They are kept
	// and returned; a DNS alias works without its fqdnMap entry.
	ServerProperties map[string]string `json:"serverProperties,omitempty"`
	// Realms maps a realm path ("/", "/a", "/a/b") to its configuration.
	// The top-level realm "/" always exists.
	Realms map[string]*Realm `json:"realms"`
}

// Secret ID and keystore alias of certificate verification.
const (
	CertVerificationSecretID = "am.services.iot.cert.verification"
	ExampleCAAlias           = "thingway-example-ca"
)

// keystore returns the keystore aliases in force: thingway-example-ca and
// KeystoreAliases.
func (c *Config) keystore() map[string]Certificates {
	out := map[string]Certificates{ExampleCAAlias: {ExampleCA()}}
	for a, certs := range c.KeystoreAliases {
		out[a] = certs
	}
	return out
}

// VerificationCAs returns the CA certificates the Register Thing node
// trusts: CertVerificationCAs and the certificates of the keystore aliases
// mapped to am.services.iot.cert.verification. Unknown aliases contribute
// nothing ([Config.Validate] reports them).
func (c *Config) VerificationCAs() Certificates {
	var out Certificates
	seen := map[string]bool{}
	add := func(cs Certificates) {
		for _, ca := range cs {
			if ca != nil && !seen[string(ca.Raw)] {
				seen[string(ca.Raw)] = true
				out = append(out, ca)
			}
		}
	}
	add(c.CertVerificationCAs)
	ks := c.keystore()
	for _, a := range c.SecretMappings[CertVerificationSecretID] {
		add(ks[a])
	}
	return out
}

// Realm is one realm's configuration.
type Realm struct {
	// Aliases are realm aliases; an alias that contains a dot is also a
	// DNS alias, selected by the request's Host header.
	Aliases []string `json:"aliases,omitempty"`
	// Active realms answer requests; an inactive realm is as unknown.
	// A nil value means active.
	Active *bool `json:"active,omitempty"`
	// Services holds the realm services: "iot" and "oauth-oidc".
	IoT    *IoTService     `json:"-"`
	OAuth2 *OAuth2Provider `json:"-"`
	// Trees maps tree names to trees; Nodes maps node IDs to node settings.
	Trees map[string]*Tree `json:"trees,omitempty"`
	Nodes map[string]*Node `json:"nodes,omitempty"`
	// OAuth2Clients, SoftwarePublishers and TrustedJWTIssuers are the
	// realm's agents by ID.
	OAuth2Clients      map[string]*OAuth2Client      `json:"-"`
	SoftwarePublishers map[string]*SoftwarePublisher `json:"-"`
	TrustedJWTIssuers  map[string]*TrustedJWTIssuer  `json:"-"`
	// Scripts maps script IDs to the realm's scripts (those that Scripted
	// Decision nodes run).
	Scripts map[string]*Script `json:"scripts,omitempty"`
	// Identities are created in the realm's identity store when the server
	// starts with an empty store (for example human users for the device grant).
	Identities map[string]map[string]any `json:"identities,omitempty"`
}

func (r *Realm) active() bool { return r.Active == nil || *r.Active }

// Agent types.
const (
	AgentOAuth2Client      = "OAuth2Client"
	AgentSoftwarePublisher = "SoftwarePublisher"
	AgentTrustedJWTIssuer  = "TrustedJwtIssuer"
)

// realmJSON is the file form of a realm: services and agents keyed as AM names them.
type realmJSON struct {
	Aliases    []string                              `json:"aliases,omitempty"`
	Active     *bool                                 `json:"active,omitempty"`
	Services   map[string]json.RawMessage            `json:"services,omitempty"`
	Trees      map[string]*Tree                      `json:"trees,omitempty"`
	Nodes      map[string]*Node                      `json:"nodes,omitempty"`
	Agents     map[string]map[string]json.RawMessage `json:"agents,omitempty"`
	Scripts    map[string]*Script                    `json:"scripts,omitempty"`
	Identities map[string]map[string]any             `json:"identities,omitempty"`
}

// MarshalJSON writes the realm in the file form.
func (r *Realm) MarshalJSON() ([]byte, error) {
	out := realmJSON{Aliases: r.Aliases, Active: r.Active, Trees: r.Trees, Nodes: r.Nodes, Scripts: r.Scripts,
		Identities: r.Identities, Services: map[string]json.RawMessage{}, Agents: map[string]map[string]json.RawMessage{}}
	put := func(m map[string]json.RawMessage, k string, v any) error {
		b, err := json.Marshal(v)
		m[k] = b
		return err
	}
	if r.IoT != nil {
		if err := put(out.Services, "iot", r.IoT); err != nil {
			return nil, err
		}
	}
	if r.OAuth2 != nil {
		if err := put(out.Services, "oauth-oidc", r.OAuth2); err != nil {
			return nil, err
		}
	}
	agents := func(typ string, n int, each func(func(id string, v any) error) error) error {
		if n == 0 {
			return nil
		}
		out.Agents[typ] = map[string]json.RawMessage{}
		return each(func(id string, v any) error { return put(out.Agents[typ], id, v) })
	}
	if err := agents(AgentOAuth2Client, len(r.OAuth2Clients), func(f func(string, any) error) error {
		for id, c := range r.OAuth2Clients {
			if err := f(id, c); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := agents(AgentSoftwarePublisher, len(r.SoftwarePublishers), func(f func(string, any) error) error {
		for id, p := range r.SoftwarePublishers {
			if err := f(id, p); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := agents(AgentTrustedJWTIssuer, len(r.TrustedJWTIssuers), func(f func(string, any) error) error {
		for id, p := range r.TrustedJWTIssuers {
			if err := f(id, p); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads the file form. Unknown services and agent types are errors,
// so that a typo does not silently leave a realm unconfigured.
func (r *Realm) UnmarshalJSON(b []byte) error {
	var in realmJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return err
	}
	*r = Realm{Aliases: in.Aliases, Active: in.Active, Trees: in.Trees, Nodes: in.Nodes, Scripts: in.Scripts, Identities: in.Identities}
	for name, raw := range in.Services {
		switch name {
		case "iot":
			r.IoT = DefaultIoTService()
			if err := json.Unmarshal(raw, r.IoT); err != nil {
				return fmt.Errorf("service iot: %w", err)
			}
		case "oauth-oidc":
			r.OAuth2 = DefaultOAuth2Provider()
			if err := json.Unmarshal(raw, r.OAuth2); err != nil {
				return fmt.Errorf("service oauth-oidc: %w", err)
			}
		default:
			return fmt.Errorf("unsupported service %q (supported: iot, oauth-oidc)", name)
		}
	}
	for typ, agents := range in.Agents {
		for id, raw := range agents {
			if err := r.putAgent(typ, id, raw); err != nil {
				return fmt.Errorf("agent %s/%s: %w", typ, id, err)
			}
		}
	}
	return nil
}

// putAgent decodes an agent of type typ and stores it under id.
func (r *Realm) putAgent(typ, id string, raw []byte) error {
	switch typ {
	case AgentOAuth2Client:
		c := &OAuth2Client{}
		if err := json.Unmarshal(raw, c); err != nil {
			return err
		}
		if r.OAuth2Clients == nil {
			r.OAuth2Clients = map[string]*OAuth2Client{}
		}
		r.OAuth2Clients[id] = c
	case AgentSoftwarePublisher:
		p := &SoftwarePublisher{}
		if err := json.Unmarshal(raw, p); err != nil {
			return err
		}
		if r.SoftwarePublishers == nil {
			r.SoftwarePublishers = map[string]*SoftwarePublisher{}
		}
		r.SoftwarePublishers[id] = p
	case AgentTrustedJWTIssuer:
		p := &TrustedJWTIssuer{}
		if err := json.Unmarshal(raw, p); err != nil {
			return err
		}
		if r.TrustedJWTIssuers == nil {
			r.TrustedJWTIssuers = map[string]*TrustedJWTIssuer{}
		}
		r.TrustedJWTIssuers[id] = p
	default:
		return fmt.Errorf("unsupported agent type %q (supported: %s, %s, %s)", typ, AgentOAuth2Client, AgentSoftwarePublisher, AgentTrustedJWTIssuer)
	}
	return nil
}

// extraMembers holds the members of AM's JSON that the local AM does not
// interpret, so that what an administrator writes is what a read returns.
type extraMembers = map[string]json.RawMessage

// crestMeta are members the REST layer computes; they are never stored.
var crestMeta = []string{"_id", "_rev", "_type", "_outcomes"}

// splitExtra returns b's top-level members without the CREST metadata.
func splitExtra(b []byte) (extraMembers, error) {
	var all extraMembers
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	if all == nil {
		return nil, errors.New("not a JSON object")
	}
	for _, k := range crestMeta {
		delete(all, k)
	}
	return all, nil
}

// mergeMembers overlays src on dst: members that are objects on both
// sides are merged member by member (AM's sections), others replaced. dst
// is not modified.
func mergeMembers(dst, src extraMembers) extraMembers {
	out := make(extraMembers, len(dst)+len(src))
	for k, v := range dst {
		out[k] = v
	}
	for k, v := range src {
		var a, b map[string]json.RawMessage
		if old, ok := out[k]; ok && isObject(old) && isObject(v) && json.Unmarshal(old, &a) == nil && json.Unmarshal(v, &b) == nil {
			for mk, mv := range b {
				a[mk] = mv
			}
			merged, err := json.Marshal(a)
			if err == nil {
				out[k] = merged
				continue
			}
		}
		out[k] = v
	}
	return out
}

func isObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// unknownOnly returns the members of extra that typed's JSON form does not
// have (inside objects present in both, member by member), so that a value
// read from JSON keeps only what its fields do not hold.
func unknownOnly(extra extraMembers, typed any) extraMembers {
	if len(extra) == 0 {
		return nil
	}
	b, err := json.Marshal(typed)
	if err != nil {
		return extra
	}
	var known extraMembers
	if json.Unmarshal(b, &known) != nil {
		return extra
	}
	out := extraMembers{}
	for k, v := range extra {
		kv, ok := known[k]
		if !ok {
			out[k] = v
			continue
		}
		var em, km map[string]json.RawMessage
		if !isObject(v) || !isObject(kv) || json.Unmarshal(v, &em) != nil || json.Unmarshal(kv, &km) != nil {
			continue
		}
		for mk := range km {
			delete(em, mk)
		}
		if len(em) > 0 {
			out[k], _ = json.Marshal(em)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// withExtra marshals v (a struct without methods) and, when extra is set,
// overlays the result on extra.
func withExtra(v any, extra extraMembers) ([]byte, error) {
	typed, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return typed, err
	}
	var m extraMembers
	if err := json.Unmarshal(typed, &m); err != nil {
		return nil, err
	}
	return json.Marshal(mergeMembers(extra, m))
}

// IoTService is the realm's IoT Service ("iot").
type IoTService struct {
	OAuthClientName       string   `json:"oauthClientName"`
	OAuthJWTIssuerName    string   `json:"oauthJwtIssuerName"`
	CreateOAuthClient     bool     `json:"createOAuthClient"`
	CreateOAuthJWTIssuer  bool     `json:"createOAuthJwtIssuer"`
	OAuthSubjectAttribute string   `json:"oauthSubjectAttribute,omitempty"`
	AttributeAllowlist    []string `json:"attributeAllowlist"`

	extra extraMembers
}

// UnmarshalJSON reads the service; members it does not know are kept. Read
// into an existing value, it updates the members given, as AM does.
func (s *IoTService) UnmarshalJSON(b []byte) error {
	type plain IoTService
	if err := json.Unmarshal(b, (*plain)(s)); err != nil {
		return err
	}
	all, err := splitExtra(b)
	if err != nil {
		return err
	}
	s.extra = unknownOnly(mergeMembers(s.extra, all), (*plain)(s))
	return nil
}

// MarshalJSON writes the service with the members it keeps.
func (s *IoTService) MarshalJSON() ([]byte, error) {
	type plain IoTService
	return withExtra((*plain)(s), s.extra)
}

// DefaultIoTService returns the IoT Service as the evaluation guide creates
// it. Its Readable Attributes are thingConfig and thingKeys: the guide's
// software-statement transcript shows exactly those two read back.
func DefaultIoTService() *IoTService {
	return &IoTService{
		OAuthClientName:      "forgerock-iot-oauth2-client",
		OAuthJWTIssuerName:   "forgerock-iot-jwt-issuer",
		CreateOAuthClient:    true,
		CreateOAuthJWTIssuer: true,
		AttributeAllowlist:   []string{"thingConfig", "thingKeys"},
	}
}

// OAuth2Provider is the realm's OAuth2 Provider ("oauth-oidc"), reduced to
// the settings that things observe. The other sections and settings of
// AM's JSON are kept as given.
type OAuth2Provider struct {
	Core     OAuth2Core     `json:"coreOAuth2Config"`
	Advanced OAuth2Advanced `json:"advancedOAuth2Config"`
	Device   DeviceCode     `json:"deviceCodeConfig"`

	extra extraMembers
}

// UnmarshalJSON reads the provider; members it does not know are kept.
// Read into an existing value, it updates the members given, as AM does.
func (p *OAuth2Provider) UnmarshalJSON(b []byte) error {
	type plain OAuth2Provider
	if err := json.Unmarshal(b, (*plain)(p)); err != nil {
		return err
	}
	all, err := splitExtra(b)
	if err != nil {
		return err
	}
	p.extra = unknownOnly(mergeMembers(p.extra, all), (*plain)(p))
	return nil
}

// MarshalJSON writes the provider with the members it keeps.
func (p *OAuth2Provider) MarshalJSON() ([]byte, error) {
	type plain OAuth2Provider
	return withExtra((*plain)(p), p.extra)
}

// OAuth2Core is the provider's Core tab.
type OAuth2Core struct {
	// Lifetimes in seconds.
	AccessTokenLifetime               int64 `json:"accessTokenLifetime"`
	RefreshTokenLifetime              int64 `json:"refreshTokenLifetime"`
	IssueRefreshToken                 bool  `json:"issueRefreshToken"`
	IssueRefreshTokenOnRefreshedToken bool  `json:"issueRefreshTokenOnRefreshedToken"`
	// StatelessTokensEnabled selects client-side (signed JWT) access tokens
	// instead of opaque server-side ones.
	StatelessTokensEnabled bool `json:"statelessTokensEnabled"`
}

// OAuth2Advanced is the provider's Advanced tab.
type OAuth2Advanced struct {
	// TokenSigningAlgorithm for client-side tokens: ES256 (asymmetric, so
	// things can introspect locally against the JWK set) or HS256.
	TokenSigningAlgorithm string `json:"tokenSigningAlgorithm"`
	// TokenEncryptionEnabled makes client-side tokens encrypted (a JWE
	// holding the signed JWT): opaque to clients, still introspectable
	// through AM.
	TokenEncryptionEnabled bool `json:"tokenEncryptionEnabled"`
}

// DeviceCode is the provider's Device Flow tab.
type DeviceCode struct {
	DeviceCodeLifetime int64 `json:"deviceCodeLifetime"`
	DevicePollInterval int64 `json:"devicePollInterval"`
}

// DefaultOAuth2Provider returns AM's provider defaults with client-side ES256
// tokens, which lets the SDK's local introspection work.
func DefaultOAuth2Provider() *OAuth2Provider {
	return &OAuth2Provider{
		Core: OAuth2Core{AccessTokenLifetime: 3600, RefreshTokenLifetime: 604800,
			IssueRefreshToken: true, IssueRefreshTokenOnRefreshedToken: true, StatelessTokensEnabled: true},
		Advanced: OAuth2Advanced{TokenSigningAlgorithm: "ES256"},
		Device:   DeviceCode{DeviceCodeLifetime: 300, DevicePollInterval: 5},
	}
}

// OAuth2Client is an OAuth 2.0 client agent. Its JSON form is AM's agent
// layout; values may be plain or wrapped as {"value": v, "inherited": false}.
// Settings the local AM does not use are kept as given.
type OAuth2Client struct {
	Secret        string
	Scopes        []string
	DefaultScopes []string
	GrantTypes    []string
	// Inactive is true when the client's status is Inactive; the zero
	// value is an active client.
	Inactive bool
	// AccessTokenLifetime and RefreshTokenLifetime in seconds; 0 means the
	// provider's value.
	AccessTokenLifetime  int64
	RefreshTokenLifetime int64

	extra extraMembers
}

// Grant type URNs.
const (
	GrantJWTBearer    = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantDeviceCode   = "urn:ietf:params:oauth:grant-type:device_code"
	GrantRefreshToken = "refresh_token"
)

type inherited[T any] struct {
	Value     T    `json:"value"`
	Inherited bool `json:"inherited"`
}

// unwrap decodes either {"value": v, ...} or v.
func unwrap(raw json.RawMessage, dst any) error {
	if len(raw) == 0 {
		return nil
	}
	var probe map[string]json.RawMessage
	if json.Unmarshal(raw, &probe) == nil {
		if v, ok := probe["value"]; ok {
			if _, ok := probe["inherited"]; ok || len(probe) == 1 {
				return json.Unmarshal(v, dst)
			}
		}
	}
	return json.Unmarshal(raw, dst)
}

type oauth2ClientJSON struct {
	Core struct {
		Userpassword         json.RawMessage `json:"userpassword,omitempty"`
		Scopes               json.RawMessage `json:"scopes,omitempty"`
		DefaultScopes        json.RawMessage `json:"defaultScopes,omitempty"`
		Status               json.RawMessage `json:"status,omitempty"`
		AccessTokenLifetime  json.RawMessage `json:"accessTokenLifetime,omitempty"`
		RefreshTokenLifetime json.RawMessage `json:"refreshTokenLifetime,omitempty"`
	} `json:"coreOAuth2ClientConfig"`
	Advanced struct {
		GrantTypes json.RawMessage `json:"grantTypes,omitempty"`
	} `json:"advancedOAuth2ClientConfig"`
}

// UnmarshalJSON reads AM's agent layout.
func (c *OAuth2Client) UnmarshalJSON(b []byte) error {
	var in oauth2ClientJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	status := "Active"
	*c = OAuth2Client{}
	for _, f := range []struct {
		raw json.RawMessage
		dst any
	}{
		{in.Core.Userpassword, &c.Secret}, {in.Core.Scopes, &c.Scopes}, {in.Core.DefaultScopes, &c.DefaultScopes},
		{in.Core.Status, &status}, {in.Core.AccessTokenLifetime, &c.AccessTokenLifetime},
		{in.Core.RefreshTokenLifetime, &c.RefreshTokenLifetime}, {in.Advanced.GrantTypes, &c.GrantTypes},
	} {
		if err := unwrap(f.raw, f.dst); err != nil {
			return err
		}
	}
	c.Inactive = strings.EqualFold(status, "Inactive")
	extra, err := splitExtra(b)
	if err != nil {
		return err
	}
	// The secret is held in Secret only, never among the kept members.
	if core, ok := extra["coreOAuth2ClientConfig"]; ok {
		var m map[string]json.RawMessage
		if json.Unmarshal(core, &m) == nil && m != nil {
			delete(m, "userpassword")
			extra["coreOAuth2ClientConfig"], _ = json.Marshal(m)
		}
	}
	c.extra = nil
	c.extra = unknownOnly(extra, c)
	return nil
}

// MarshalJSON writes AM's agent layout. The secret is never written.
func (c *OAuth2Client) MarshalJSON() ([]byte, error) {
	status := "Active"
	if c.Inactive {
		status = "Inactive"
	}
	type core struct {
		Scopes               inherited[[]string] `json:"scopes"`
		DefaultScopes        inherited[[]string] `json:"defaultScopes"`
		Status               inherited[string]   `json:"status"`
		AccessTokenLifetime  inherited[int64]    `json:"accessTokenLifetime"`
		RefreshTokenLifetime inherited[int64]    `json:"refreshTokenLifetime"`
	}
	type adv struct {
		GrantTypes inherited[[]string] `json:"grantTypes"`
	}
	return withExtra(struct {
		Core core `json:"coreOAuth2ClientConfig"`
		Adv  adv  `json:"advancedOAuth2ClientConfig"`
	}{
		core{inherited[[]string]{Value: nonNil(c.Scopes)}, inherited[[]string]{Value: nonNil(c.DefaultScopes)},
			inherited[string]{Value: status}, inherited[int64]{Value: c.AccessTokenLifetime},
			inherited[int64]{Value: c.RefreshTokenLifetime}},
		adv{inherited[[]string]{Value: nonNil(c.GrantTypes)}},
	}, c.extra)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// SoftwarePublisher is a software publisher agent: it vouches for software
// statements whose iss equals Issuer, signed with a key of JWKSet. Other
// settings of AM's agent (cache times) are kept as given.
type SoftwarePublisher struct {
	Issuer string `json:"issuer"`
	// PublicKeyLocation is "jwks" (JWKSet holds the keys). "jwks_uri" is
	// not supported by the local AM, which makes no outbound calls.
	PublicKeyLocation string `json:"publicKeyLocation"`
	// JWKSet is the publisher's JSON Web Key set, held as JSON text as AM does.
	JWKSet string `json:"jwkSet"`
	// SigningAlgorithm is the algorithm statements must use (default ES256).
	SigningAlgorithm string `json:"softwareStatementSigningAlgorithm"`

	extra extraMembers
}

// UnmarshalJSON reads the agent; members it does not know are kept.
func (p *SoftwarePublisher) UnmarshalJSON(b []byte) error {
	type plain SoftwarePublisher
	if err := json.Unmarshal(b, (*plain)(p)); err != nil {
		return err
	}
	all, err := splitExtra(b)
	if err != nil {
		return err
	}
	p.extra = unknownOnly(mergeMembers(p.extra, all), (*plain)(p))
	return nil
}

// MarshalJSON writes the agent with the members it keeps.
func (p *SoftwarePublisher) MarshalJSON() ([]byte, error) {
	type plain SoftwarePublisher
	return withExtra((*plain)(p), p.extra)
}

func (p *SoftwarePublisher) keys() (jose.JSONWebKeySet, error) {
	if p.PublicKeyLocation != "" && p.PublicKeyLocation != "jwks" {
		return jose.JSONWebKeySet{}, fmt.Errorf("public key location %q is not supported (the local AM makes no outbound calls; use jwks)", p.PublicKeyLocation)
	}
	return parseJWKSet(p.JWKSet)
}

// TrustedJWTIssuer is a trusted JWT issuer agent, as the IoT Service
// creates it for its JWT-bearer grant. The local AM keeps it for the REST
// API; issuing thing tokens does not need it.
type TrustedJWTIssuer struct {
	Issuer                     string   `json:"issuer"`
	ConsentedScopesClaim       string   `json:"consentedScopesClaim"`
	ResourceOwnerIdentityClaim string   `json:"resourceOwnerIdentityClaim"`
	AllowedSubjects            []string `json:"allowedSubjects"`

	extra extraMembers
}

// UnmarshalJSON reads the agent; members it does not know are kept.
func (p *TrustedJWTIssuer) UnmarshalJSON(b []byte) error {
	type plain TrustedJWTIssuer
	if err := json.Unmarshal(b, (*plain)(p)); err != nil {
		return err
	}
	all, err := splitExtra(b)
	if err != nil {
		return err
	}
	p.extra = unknownOnly(mergeMembers(p.extra, all), (*plain)(p))
	return nil
}

// MarshalJSON writes the agent with the members it keeps.
func (p *TrustedJWTIssuer) MarshalJSON() ([]byte, error) {
	type plain TrustedJWTIssuer
	out := *p
	out.AllowedSubjects = nonNil(p.AllowedSubjects)
	return withExtra((*plain)(&out), p.extra)
}

// Script is a script in AM's shape; its JSON form carries the source
// base64-encoded in "script". Scripted Decision nodes run scripts of the
// context AUTHENTICATION_TREE_DECISION_NODE within [ScriptSubset].
type Script struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Source is the script's text (decoded).
	Source string `json:"-"`
	// Language is GROOVY or JAVASCRIPT.
	Language string `json:"language"`
	// Context is AM's script type, e.g. AUTHENTICATION_TREE_DECISION_NODE.
	Context string `json:"context"`

	extra extraMembers
}

// Script contexts and languages.
const (
	ScriptContextDecisionNode = "AUTHENTICATION_TREE_DECISION_NODE"
	ScriptGroovy              = "GROOVY"
	ScriptJavaScript          = "JAVASCRIPT"
)

// UnmarshalJSON reads AM's script shape.
func (s *Script) UnmarshalJSON(b []byte) error {
	type plain Script
	if err := json.Unmarshal(b, (*plain)(s)); err != nil {
		return err
	}
	var src struct {
		Script *string `json:"script"`
	}
	if err := json.Unmarshal(b, &src); err != nil {
		return err
	}
	if src.Script != nil {
		text, err := base64.StdEncoding.DecodeString(*src.Script)
		if err != nil {
			if text, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(*src.Script, "=")); err != nil {
				return errors.New(`"script" is not base64`)
			}
		}
		s.Source = string(text)
	}
	all, err := splitExtra(b)
	if err != nil {
		return err
	}
	delete(all, "script")
	s.extra = unknownOnly(mergeMembers(s.extra, all), (*plain)(s))
	return nil
}

// MarshalJSON writes AM's script shape.
func (s *Script) MarshalJSON() ([]byte, error) {
	type plain Script
	typed, err := withExtra((*plain)(s), s.extra)
	if err != nil {
		return nil, err
	}
	var m extraMembers
	if err := json.Unmarshal(typed, &m); err != nil {
		return nil, err
	}
	m["script"], _ = json.Marshal(base64.StdEncoding.EncodeToString([]byte(s.Source)))
	return json.Marshal(m)
}

// compile checks the script against [ScriptSubset].
func (s *Script) compile() (*script.Program, error) {
	if s.Context != "" && s.Context != ScriptContextDecisionNode {
		return nil, fmt.Errorf("its context is %s, not %s", s.Context, ScriptContextDecisionNode)
	}
	return script.Compile(s.Source, s.Language)
}

// Tree is an authentication tree (journey) in AM's export shape. Members
// the local AM does not interpret (description, identityResource, ...) are
// kept as given.
type Tree struct {
	EntryNodeID string               `json:"entryNodeId"`
	Nodes       map[string]*TreeNode `json:"nodes"`
	// UIConfig and StaticNodes are kept for round trips; not evaluated.
	UIConfig    json.RawMessage `json:"uiConfig,omitempty"`
	StaticNodes json.RawMessage `json:"staticNodes,omitempty"`

	extra extraMembers
}

// UnmarshalJSON reads AM's tree shape.
func (t *Tree) UnmarshalJSON(b []byte) error {
	type plain Tree
	if err := json.Unmarshal(b, (*plain)(t)); err != nil {
		return err
	}
	all, err := splitExtra(b)
	if err != nil {
		return err
	}
	t.extra = unknownOnly(mergeMembers(t.extra, all), (*plain)(t))
	return nil
}

// MarshalJSON writes AM's tree shape.
func (t *Tree) MarshalJSON() ([]byte, error) {
	type plain Tree
	return withExtra((*plain)(t), t.extra)
}

// TreeNode is a node's place in a tree: its type and outcome connections.
type TreeNode struct {
	DisplayName string            `json:"displayName,omitempty"`
	NodeType    string            `json:"nodeType"`
	Connections map[string]string `json:"connections"`
	X           float64           `json:"x,omitempty"`
	Y           float64           `json:"y,omitempty"`
}

// Node is a node's settings, in AM's node shape: {"_id", "_type": {"_id": type}, ...settings}.
type Node struct {
	Type string
	// Exactly one of these is set, matching Type; collector and decision nodes have no settings.
	Authentication *IoTAuthenticationNode
	Registration   *IoTRegistrationNode
	Scripted       *ScriptedDecisionNode
}

// IoTAuthenticationNode holds the Authenticate Thing node's settings.
type IoTAuthenticationNode struct {
	JWTAuthenticationMethod  string   `json:"jwtAuthenticationMethod"`
	IssueRestrictedToken     bool     `json:"issueRestrictedToken"`
	AdditionalAudienceValues []string `json:"additionalAudienceValues"`
}

// IoTRegistrationNode holds the Register Thing node's settings. Defaults are
// the node's documented ones.
type IoTRegistrationNode struct {
	JWTRegistrationMethod   string            `json:"jwtRegistrationMethod"`
	VerifySubject           bool              `json:"verifySubject"`
	CreateIdentity          bool              `json:"createIdentity"`
	AllowKeyRotation        bool              `json:"allowKeyRotation"`
	DefaultAttributeValues  map[string]string `json:"defaultAttributeValues"`
	ClaimToAttributeMapping map[string]string `json:"claimToAttributeMapping"`
	AllowAttributeOverwrite bool              `json:"allowAttributeOverwrite"`
	// NameValidationRegex, when set, is a pattern of invalid thing names:
	// a name that matches it is refused (AM's export default matches names
	// with LDAP special characters).
	NameValidationRegex string `json:"nameValidationRegex,omitempty"`
}

// ScriptedDecisionNode holds the Scripted Decision node's settings. The
// script (a Script ID of the realm) must be within [ScriptSubset]; its
// outcomes are "true" and/or "false".
type ScriptedDecisionNode struct {
	Script   string   `json:"script"`
	Outcomes []string `json:"outcomes"`
	Inputs   []string `json:"inputs,omitempty"`
	Outputs  []string `json:"outputs,omitempty"`
}

type nodeType struct {
	ID string `json:"_id"`
}

// UnmarshalJSON reads AM's node shape.
func (n *Node) UnmarshalJSON(b []byte) error {
	var head struct {
		Type nodeType `json:"_type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	*n = Node{Type: head.Type.ID}
	strip := func() []byte {
		var m map[string]json.RawMessage
		json.Unmarshal(b, &m)
		for _, k := range crestMeta {
			delete(m, k)
		}
		out, _ := json.Marshal(m)
		return out
	}
	strict := func(dst any) error {
		dec := json.NewDecoder(bytes.NewReader(strip()))
		dec.DisallowUnknownFields()
		return dec.Decode(dst)
	}
	switch n.Type {
	case NodeTypeIoTAuthentication:
		n.Authentication = &IoTAuthenticationNode{JWTAuthenticationMethod: AuthProofOfPossession}
		return strict(n.Authentication)
	case NodeTypeIoTRegistration:
		n.Registration = &IoTRegistrationNode{JWTRegistrationMethod: RegPoPWithCertificate, VerifySubject: true}
		return strict(n.Registration)
	case NodeTypeScriptedDecision:
		n.Scripted = &ScriptedDecisionNode{Outcomes: []string{"true", "false"}}
		return strict(n.Scripted)
	case NodeTypeUsernameCollector, NodeTypePasswordCollector, NodeTypeDataStoreDecision:
		return nil
	case "":
		return errors.New(`node has no "_type"`)
	default:
		return fmt.Errorf("unsupported node type %q (the local AM evaluates %s)", n.Type, strings.Join(NodeTypes(), ", "))
	}
}

// NodeTypes returns the node types the local AM evaluates.
func NodeTypes() []string {
	return []string{NodeTypeIoTAuthentication, NodeTypeIoTRegistration, NodeTypeUsernameCollector,
		NodeTypePasswordCollector, NodeTypeDataStoreDecision, NodeTypeScriptedDecision}
}

// MarshalJSON writes AM's node shape (without _id, which is the map key).
func (n *Node) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	var settings any
	switch {
	case n.Authentication != nil:
		settings = n.Authentication
	case n.Registration != nil:
		settings = n.Registration
	case n.Scripted != nil:
		settings = n.Scripted
	}
	if settings != nil {
		b, err := json.Marshal(settings)
		if err != nil {
			return nil, err
		}
		json.Unmarshal(b, &m)
	}
	m["_type"] = map[string]any{"_id": n.Type}
	return json.Marshal(m)
}

// Node IDs of the evaluation guide's trees in the default configuration.
const (
	nodeAuthTreeAuth    = "4b8a0f5e-3d1c-4c0e-9f2a-6a1d3c5b7e01"
	nodeRegTreeReg      = "4b8a0f5e-3d1c-4c0e-9f2a-6a1d3c5b7e02"
	nodeAuthRegAuth     = "4b8a0f5e-3d1c-4c0e-9f2a-6a1d3c5b7e03"
	nodeAuthRegReg      = "4b8a0f5e-3d1c-4c0e-9f2a-6a1d3c5b7e04"
	nodeLDAPUsername    = "4b8a0f5e-3d1c-4c0e-9f2a-6a1d3c5b7e05"
	nodeLDAPPassword    = "4b8a0f5e-3d1c-4c0e-9f2a-6a1d3c5b7e06"
	nodeLDAPDataStore   = "4b8a0f5e-3d1c-4c0e-9f2a-6a1d3c5b7e07"
	defaultPublisherID  = "iot-software-publisher"
	defaultPublisherIss = "https://soft-pub.example.com"
)

//go:embed defaults/example-ca.cert.pem
var exampleCAPEM []byte

//go:embed defaults/software-publisher-public.jwks
var examplePublisherJWKS string

// ExampleCA returns the project's example CA certificate (resources/example-ca.cert.pem),
// the default certificate-verification CA.
func ExampleCA() *x509.Certificate {
	certs, err := ParseCertificates(exampleCAPEM)
	if err != nil || len(certs) == 0 {
		panic("amtest: embedded example CA is broken: " + fmt.Sprint(err))
	}
	return certs[0]
}

// ParseCertificates reads every CERTIFICATE block of a PEM file.
func ParseCertificates(pemBytes []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, pemBytes = pem.Decode(pemBytes)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no CERTIFICATE block found")
	}
	return out, nil
}

// Certificates is a list of X.509 certificates; its JSON form is a list of
// PEM texts.
type Certificates []*x509.Certificate

// MarshalJSON writes each certificate as a PEM text.
func (cs Certificates) MarshalJSON() ([]byte, error) {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads a list of PEM texts (each may hold several certificates).
func (cs *Certificates) UnmarshalJSON(b []byte) error {
	var texts []string
	if err := json.Unmarshal(b, &texts); err != nil {
		return err
	}
	var out Certificates
	for i, t := range texts {
		certs, err := ParseCertificates([]byte(t))
		if err != nil {
			return fmt.Errorf("certificate %d: %w", i, err)
		}
		out = append(out, certs...)
	}
	*cs = out
	return nil
}

// DefaultConfig returns the AM that the IoT evaluation guide sets up: the
// top-level realm with the IoT Service, the OAuth2 Provider, the
// forgerock-iot-oauth2-client (scopes publish and subscribe), the trees
// auth-tree, reg-tree and auth-reg-tree, the example CA mapped for
// certificate verification, and the software publisher iot-software-publisher.
func DefaultConfig() *Config {
	return &Config{
		CookieName:          "iPlanetDirectoryPro",
		AdminUser:           "amAdmin",
		AdminPassword:       "changeit",
		CertVerificationCAs: Certificates{ExampleCA()},
		Realms:              map[string]*Realm{"/": GuideRealm()},
	}
}

// EmptyConfig returns an AM as freshly installed, before any IoT
// configuration: the top-level realm with only the username and password
// tree ldapService, administrator amAdmin/changeit. Configure it with the
// admin REST API or [Server.Import], as the iot-edge functional tests
// configure a fresh AM.
func EmptyConfig() *Config {
	g := GuideRealm()
	root := &Realm{Trees: map[string]*Tree{"ldapService": g.Trees["ldapService"]}, Nodes: map[string]*Node{}}
	for id := range root.Trees["ldapService"].Nodes {
		root.Nodes[id] = g.Nodes[id]
	}
	return &Config{CookieName: "iPlanetDirectoryPro", AdminUser: "amAdmin", AdminPassword: "changeit",
		Realms: map[string]*Realm{"/": root}}
}

// GuideRealm returns one realm configured as the evaluation guide configures
// the top-level realm. Use it to give sub-realms the same setup.
func GuideRealm() *Realm {
	auth := func(id string) *TreeNode {
		return &TreeNode{DisplayName: "Authenticate Thing", NodeType: NodeTypeIoTAuthentication,
			Connections: map[string]string{"success": SuccessNodeID, "failure": FailureNodeID, "register": FailureNodeID}}
	}
	reg := &TreeNode{DisplayName: "Register Thing", NodeType: NodeTypeIoTRegistration,
		Connections: map[string]string{"success": SuccessNodeID, "failure": FailureNodeID}}
	authReg := auth(nodeAuthRegAuth)
	authReg.Connections["register"] = nodeAuthRegReg
	regCopy := *reg
	return &Realm{
		IoT:    DefaultIoTService(),
		OAuth2: DefaultOAuth2Provider(),
		Trees: map[string]*Tree{
			"auth-tree":     {EntryNodeID: nodeAuthTreeAuth, Nodes: map[string]*TreeNode{nodeAuthTreeAuth: auth(nodeAuthTreeAuth)}},
			"reg-tree":      {EntryNodeID: nodeRegTreeReg, Nodes: map[string]*TreeNode{nodeRegTreeReg: reg}},
			"auth-reg-tree": {EntryNodeID: nodeAuthRegAuth, Nodes: map[string]*TreeNode{nodeAuthRegAuth: authReg, nodeAuthRegReg: &regCopy}},
			"ldapService": {EntryNodeID: nodeLDAPUsername, Nodes: map[string]*TreeNode{
				nodeLDAPUsername:  {DisplayName: "User Name Collector", NodeType: NodeTypeUsernameCollector, Connections: map[string]string{"outcome": nodeLDAPPassword}},
				nodeLDAPPassword:  {DisplayName: "Password Collector", NodeType: NodeTypePasswordCollector, Connections: map[string]string{"outcome": nodeLDAPDataStore}},
				nodeLDAPDataStore: {DisplayName: "Data Store Decision", NodeType: NodeTypeDataStoreDecision, Connections: map[string]string{"true": SuccessNodeID, "false": FailureNodeID}},
			}},
		},
		Nodes: map[string]*Node{
			nodeAuthTreeAuth:  {Type: NodeTypeIoTAuthentication, Authentication: &IoTAuthenticationNode{JWTAuthenticationMethod: AuthProofOfPossession, IssueRestrictedToken: true}},
			nodeRegTreeReg:    {Type: NodeTypeIoTRegistration, Registration: &IoTRegistrationNode{JWTRegistrationMethod: RegPoPWithCertificate, VerifySubject: true, CreateIdentity: true}},
			nodeAuthRegAuth:   {Type: NodeTypeIoTAuthentication, Authentication: &IoTAuthenticationNode{JWTAuthenticationMethod: AuthProofOfPossession, IssueRestrictedToken: true}},
			nodeAuthRegReg:    {Type: NodeTypeIoTRegistration, Registration: &IoTRegistrationNode{JWTRegistrationMethod: RegPoPWithCertificate, VerifySubject: true, CreateIdentity: true}},
			nodeLDAPUsername:  {Type: NodeTypeUsernameCollector},
			nodeLDAPPassword:  {Type: NodeTypePasswordCollector},
			nodeLDAPDataStore: {Type: NodeTypeDataStoreDecision},
		},
		OAuth2Clients: map[string]*OAuth2Client{
			"forgerock-iot-oauth2-client": {
				Secret: "", Scopes: []string{"publish", "subscribe"}, DefaultScopes: nil,
				GrantTypes: []string{GrantJWTBearer, GrantDeviceCode, GrantRefreshToken},
			},
		},
		SoftwarePublishers: map[string]*SoftwarePublisher{
			defaultPublisherID: {Issuer: defaultPublisherIss, PublicKeyLocation: "jwks", JWKSet: examplePublisherJWKS, SigningAlgorithm: "ES256"},
		},
	}
}

// LoadConfig reads a configuration file (the JSON form of Config) on top of
// DefaultConfig: realms named in the file replace the default realm of the
// same path entirely; other settings keep their defaults.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg := DefaultConfig()
	var in Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if in.CookieName != "" {
		cfg.CookieName = in.CookieName
	}
	if in.AdminUser != "" {
		cfg.AdminUser = in.AdminUser
	}
	if in.AdminPassword != "" {
		cfg.AdminPassword = in.AdminPassword
	}
	if len(in.CertVerificationCAs) > 0 {
		cfg.CertVerificationCAs = in.CertVerificationCAs
	}
	for a, certs := range in.KeystoreAliases {
		if cfg.KeystoreAliases == nil {
			cfg.KeystoreAliases = map[string]Certificates{}
		}
		cfg.KeystoreAliases[a] = certs
	}
	for id, aliases := range in.SecretMappings {
		if cfg.SecretMappings == nil {
			cfg.SecretMappings = map[string][]string{}
		}
		cfg.SecretMappings[id] = aliases
	}
	for k, v := range in.ServerProperties {
		if cfg.ServerProperties == nil {
			cfg.ServerProperties = map[string]string{}
		}
		cfg.ServerProperties[k] = v
	}
	for p, r := range in.Realms {
		cfg.Realms[p] = r
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks that realm paths are well formed, trees only reference
// configured nodes with the right types, and outcomes lead somewhere.
func (c *Config) Validate() error {
	if _, ok := c.Realms["/"]; !ok {
		return errors.New("the top-level realm \"/\" is missing")
	}
	paths := make([]string, 0, len(c.Realms))
	for p := range c.Realms {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	aliases := map[string]string{}
	for _, p := range paths {
		if p != "/" && (!strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//")) {
			return fmt.Errorf("realm %q: a realm path looks like /a or /a/b", p)
		}
		if p != "/" {
			parent := p[:strings.LastIndex(p, "/")]
			if parent == "" {
				parent = "/"
			}
			if _, ok := c.Realms[parent]; !ok {
				return fmt.Errorf("realm %q: parent realm %q is not configured", p, parent)
			}
		}
		r := c.Realms[p]
		if r == nil {
			return fmt.Errorf("realm %q is null", p)
		}
		for _, a := range r.Aliases {
			if other, dup := aliases[strings.ToLower(a)]; dup {
				return fmt.Errorf("realm %q: alias %q is already used by realm %q", p, a, other)
			}
			aliases[strings.ToLower(a)] = p
		}
		if err := r.validate(); err != nil {
			return fmt.Errorf("realm %q, %w", p, err)
		}
	}
	ks := c.keystore()
	for _, a := range c.SecretMappings[CertVerificationSecretID] {
		if _, ok := ks[a]; !ok {
			return fmt.Errorf("secret %s is mapped to the alias %q, which is not in the keystore (add its CA certificate to keystoreAliases)", CertVerificationSecretID, a)
		}
	}
	return nil
}

// validate checks one realm: its nodes, scripts, trees and services.
func (r *Realm) validate() error {
	for _, id := range sortedKeys(r.Nodes) {
		n := r.Nodes[id]
		if n == nil {
			return fmt.Errorf("node %s is null", id)
		}
		if err := r.validateNode(id, n, r.nodeInUse(id) != ""); err != nil {
			return fmt.Errorf("node %s: %w", id, err)
		}
	}
	for _, name := range sortedKeys(r.Trees) {
		t := r.Trees[name]
		if t == nil {
			return fmt.Errorf("tree %q is null", name)
		}
		if err := validateTree(r, t); err != nil {
			return fmt.Errorf("tree %q: %w", name, err)
		}
	}
	for _, id := range sortedKeys(r.Scripts) {
		sc := r.Scripts[id]
		if sc == nil {
			return fmt.Errorf("script %s is null", id)
		}
		switch sc.Language {
		case ScriptGroovy, ScriptJavaScript:
		default:
			return fmt.Errorf("script %s: language %q is not %s or %s", id, sc.Language, ScriptGroovy, ScriptJavaScript)
		}
	}
	if p := r.OAuth2; p != nil {
		switch p.Advanced.TokenSigningAlgorithm {
		case "", "ES256", "HS256":
		default:
			return fmt.Errorf("service oauth-oidc: tokenSigningAlgorithm %q is not supported by the local AM (ES256, HS256)", p.Advanced.TokenSigningAlgorithm)
		}
		if p.Core.AccessTokenLifetime < 0 || p.Core.RefreshTokenLifetime < 0 || p.Device.DeviceCodeLifetime < 0 || p.Device.DevicePollInterval < 0 {
			return errors.New("service oauth-oidc: lifetimes and intervals must not be negative")
		}
	}
	for _, kind := range []struct {
		typ string
		ids []string
		nil func(string) bool
	}{
		{AgentOAuth2Client, sortedKeys(r.OAuth2Clients), func(id string) bool { return r.OAuth2Clients[id] == nil }},
		{AgentSoftwarePublisher, sortedKeys(r.SoftwarePublishers), func(id string) bool { return r.SoftwarePublishers[id] == nil }},
		{AgentTrustedJWTIssuer, sortedKeys(r.TrustedJWTIssuers), func(id string) bool { return r.TrustedJWTIssuers[id] == nil }},
	} {
		for _, id := range kind.ids {
			if kind.nil(id) {
				return fmt.Errorf("agent %s/%s is null", kind.typ, id)
			}
		}
	}
	return nil
}

// validateNode checks a node's settings. A Scripted Decision node's script
// must be in the realm and within the subset; a node that no tree uses may
// name a script that was deleted since.
func (r *Realm) validateNode(id string, n *Node, used bool) error {
	if n.Registration != nil {
		switch n.Registration.JWTRegistrationMethod {
		case RegPoPWithCertificate, RegPoPWithSoftwareStatement, RegPoPWithoutTrust, RegSoftwareStatementOnly:
		default:
			return fmt.Errorf("unknown jwtRegistrationMethod %q", n.Registration.JWTRegistrationMethod)
		}
	}
	if n.Authentication != nil {
		switch n.Authentication.JWTAuthenticationMethod {
		case AuthProofOfPossession, AuthClientAssertion:
		default:
			return fmt.Errorf("unknown jwtAuthenticationMethod %q", n.Authentication.JWTAuthenticationMethod)
		}
	}
	if n.Type == NodeTypeScriptedDecision {
		sd := n.Scripted
		if sd == nil {
			return errors.New("a ScriptedDecisionNode has no settings")
		}
		if len(sd.Outcomes) == 0 {
			return errors.New("outcomes is empty")
		}
		for i, o := range sd.Outcomes {
			if o != "true" && o != "false" {
				return fmt.Errorf("outcome %q is not supported: %s", o, ScriptSubset)
			}
			if slices.Contains(sd.Outcomes[:i], o) {
				return fmt.Errorf("outcome %q is listed twice", o)
			}
		}
		sc := r.Scripts[sd.Script]
		if sc == nil {
			if used || sd.Script == "" {
				return fmt.Errorf("script %q is not in the realm", sd.Script)
			}
			return nil
		}
		prog, err := sc.compile()
		if err != nil {
			return fmt.Errorf("script %s (%s) is outside the subset: %v; %s", sd.Script, sc.Name, err, ScriptSubset)
		}
		for _, o := range prog.Outcomes() {
			if !slices.Contains(sd.Outcomes, o) {
				return fmt.Errorf("script %s sets outcome %q, which is not among the node's outcomes %v", sd.Script, o, sd.Outcomes)
			}
		}
	}
	return nil
}

// nodeInUse returns the name of a tree that uses node id, or "".
func (r *Realm) nodeInUse(id string) string {
	for _, name := range sortedKeys(r.Trees) {
		if t := r.Trees[name]; t != nil {
			if _, ok := t.Nodes[id]; ok {
				return name
			}
		}
	}
	return ""
}

// scriptInUse returns a node that runs script id in a tree, and the tree.
func (r *Realm) scriptInUse(id string) (node, tree string) {
	for _, nid := range sortedKeys(r.Nodes) {
		n := r.Nodes[nid]
		if n == nil || n.Scripted == nil || n.Scripted.Script != id {
			continue
		}
		if t := r.nodeInUse(nid); t != "" {
			return nid, t
		}
	}
	return "", ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// validatePublishers checks that every software publisher's keys can be
// used. The server checks it at start; LoadConfig does not, so that a
// program can fill in keys after loading a file.
func (c *Config) validatePublishers() error {
	for p, r := range c.Realms {
		for id, pub := range r.SoftwarePublishers {
			set, err := pub.keys()
			if err != nil {
				return fmt.Errorf("realm %q, software publisher %s: %w", p, id, err)
			}
			if len(set.Keys) == 0 {
				return fmt.Errorf("realm %q, software publisher %s: jwkSet has no usable public key", p, id)
			}
		}
	}
	return nil
}

var nodeOutcomes = map[string][]string{
	NodeTypeIoTAuthentication: {"success", "failure", "register"},
	NodeTypeIoTRegistration:   {"success", "failure"},
	NodeTypeUsernameCollector: {"outcome"},
	NodeTypePasswordCollector: {"outcome"},
	NodeTypeDataStoreDecision: {"true", "false"},
}

// outcomes returns the outcome IDs of a node: fixed by its type, or the
// configured ones of a Scripted Decision node.
func (n *Node) outcomes() []string {
	if n.Scripted != nil {
		return n.Scripted.Outcomes
	}
	return nodeOutcomes[n.Type]
}

func validateTree(r *Realm, t *Tree) error {
	if t.EntryNodeID == "" {
		return errors.New("no entryNodeId")
	}
	if _, ok := t.Nodes[t.EntryNodeID]; !ok {
		return fmt.Errorf("entry node %s is not in the tree", t.EntryNodeID)
	}
	for _, id := range sortedKeys(t.Nodes) {
		tn := t.Nodes[id]
		if tn == nil {
			return fmt.Errorf("node %s is null", id)
		}
		n, ok := r.Nodes[id]
		if !ok || n == nil {
			return fmt.Errorf("node %s has no settings in the realm's nodes", id)
		}
		if n.Type != tn.NodeType {
			return fmt.Errorf("node %s is a %s in the tree but a %s in the realm's nodes", id, tn.NodeType, n.Type)
		}
		for _, o := range n.outcomes() {
			to, ok := tn.Connections[o]
			if !ok {
				return fmt.Errorf("node %s: outcome %q is not connected", id, o)
			}
			if _, inTree := t.Nodes[to]; !inTree && to != SuccessNodeID && to != FailureNodeID {
				return fmt.Errorf("node %s: outcome %q leads to %s, which is not in the tree", id, o, to)
			}
		}
		for _, o := range sortedKeys(tn.Connections) {
			if !slices.Contains(n.outcomes(), o) {
				return fmt.Errorf("node %s: a %s has no outcome %q", id, n.Type, o)
			}
		}
	}
	return nil
}
