package config

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest/internal/members"
	"github.com/thingway/thingway/amclient/amtest/internal/proof"
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

// Keystore returns the keystore aliases in force: thingway-example-ca and
// c.KeystoreAliases.
func Keystore(c *Config) map[string]Certificates {
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
	ks := Keystore(c)
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

// RealmActive reports whether r answers requests: its Active is nil or true.
func RealmActive(r *Realm) bool { return r.Active == nil || *r.Active }

// Agent types.
const (
	AgentOAuth2Client      = "OAuth2Client"
	AgentSoftwarePublisher = "SoftwarePublisher"
	AgentTrustedJWTIssuer  = "TrustedJwtIssuer"
)

// IoTService is the realm's IoT Service ("iot").
type IoTService struct {
	OAuthClientName       string   `json:"oauthClientName"`
	OAuthJWTIssuerName    string   `json:"oauthJwtIssuerName"`
	CreateOAuthClient     bool     `json:"createOAuthClient"`
	CreateOAuthJWTIssuer  bool     `json:"createOAuthJwtIssuer"`
	OAuthSubjectAttribute string   `json:"oauthSubjectAttribute,omitempty"`
	AttributeAllowlist    []string `json:"attributeAllowlist"`

	extra members.Extra
}

// OAuth2Provider is the realm's OAuth2 Provider ("oauth-oidc"), reduced to
// the settings that things observe. The other sections and settings of
// AM's JSON are kept as given.
type OAuth2Provider struct {
	Core     OAuth2Core     `json:"coreOAuth2Config"`
	Advanced OAuth2Advanced `json:"advancedOAuth2Config"`
	Device   DeviceCode     `json:"deviceCodeConfig"`

	extra members.Extra
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

	extra members.Extra
}

// Grant type URNs.
const (
	GrantJWTBearer    = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantDeviceCode   = "urn:ietf:params:oauth:grant-type:device_code"
	GrantRefreshToken = "refresh_token"
)

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

	extra members.Extra
}

// PublisherKeys returns the software publisher's keys: its JWKSet, which
// must be held in the agent (a public key location of "jwks").
func PublisherKeys(p *SoftwarePublisher) (jose.JSONWebKeySet, error) {
	if p.PublicKeyLocation != "" && p.PublicKeyLocation != "jwks" {
		return jose.JSONWebKeySet{}, fmt.Errorf("public key location %q is not supported (the local AM makes no outbound calls; use jwks)", p.PublicKeyLocation)
	}
	return proof.ParseJWKSet(p.JWKSet)
}

// TrustedJWTIssuer is a trusted JWT issuer agent, as the IoT Service
// creates it for its JWT-bearer grant. The local AM keeps it for the REST
// API; issuing thing tokens does not need it.
type TrustedJWTIssuer struct {
	Issuer                     string   `json:"issuer"`
	ConsentedScopesClaim       string   `json:"consentedScopesClaim"`
	ResourceOwnerIdentityClaim string   `json:"resourceOwnerIdentityClaim"`
	AllowedSubjects            []string `json:"allowedSubjects"`

	extra members.Extra
}

// Script is a script in AM's shape; its JSON form carries the source
// base64-encoded in "script". Scripted Decision nodes run scripts of the
// context AUTHENTICATION_TREE_DECISION_NODE within [script.Subset].
type Script struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Source is the script's text (decoded).
	Source string `json:"-"`
	// Language is GROOVY or JAVASCRIPT.
	Language string `json:"language"`
	// Context is AM's script type, e.g. AUTHENTICATION_TREE_DECISION_NODE.
	Context string `json:"context"`

	extra members.Extra
}

// Script contexts and languages.
const (
	ScriptContextDecisionNode = "AUTHENTICATION_TREE_DECISION_NODE"
	ScriptGroovy              = "GROOVY"
	ScriptJavaScript          = "JAVASCRIPT"
)

// CompileScript checks s against the decision-script subset
// ([script.Subset]) and returns the program a Scripted Decision node runs.
func CompileScript(s *Script) (*script.Program, error) {
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

	extra members.Extra
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
// script (a Script ID of the realm) must be within [script.Subset]; its
// outcomes are "true" and/or "false".
type ScriptedDecisionNode struct {
	Script   string   `json:"script"`
	Outcomes []string `json:"outcomes"`
	Inputs   []string `json:"inputs,omitempty"`
	Outputs  []string `json:"outputs,omitempty"`
}

// NodeTypes returns the node types the local AM evaluates.
func NodeTypes() []string {
	return []string{NodeTypeIoTAuthentication, NodeTypeIoTRegistration, NodeTypeUsernameCollector,
		NodeTypePasswordCollector, NodeTypeDataStoreDecision, NodeTypeScriptedDecision}
}

// Certificates is a list of X.509 certificates; its JSON form is a list of
// PEM texts.
type Certificates []*x509.Certificate

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
