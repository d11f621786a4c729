package amtest

import (
	"bytes"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/go-jose/go-jose/v4"
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
	// CertVerificationCAs are the CA certificates mapped to the secret ID
	// am.services.iot.cert.verification. The Register Thing node accepts
	// thing certificates signed by any of them. As in AM, only the CA's key
	// is used: its validity period is not checked.
	// In JSON, a list of PEM certificates.
	CertVerificationCAs Certificates `json:"certVerificationCAs,omitempty"`
	// Realms maps a realm path ("/", "/a", "/a/b") to its configuration.
	// The top-level realm "/" always exists.
	Realms map[string]*Realm `json:"realms"`
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
	// OAuth2Clients and SoftwarePublishers are the realm's agents by ID.
	OAuth2Clients      map[string]*OAuth2Client      `json:"-"`
	SoftwarePublishers map[string]*SoftwarePublisher `json:"-"`
	// Identities are created in the realm's identity store when the server
	// starts with an empty store (for example human users for the device grant).
	Identities map[string]map[string]any `json:"identities,omitempty"`
}

func (r *Realm) active() bool { return r.Active == nil || *r.Active }

// realmJSON is the file form of a realm: services and agents keyed as AM names them.
type realmJSON struct {
	Aliases    []string                              `json:"aliases,omitempty"`
	Active     *bool                                 `json:"active,omitempty"`
	Services   map[string]json.RawMessage            `json:"services,omitempty"`
	Trees      map[string]*Tree                      `json:"trees,omitempty"`
	Nodes      map[string]*Node                      `json:"nodes,omitempty"`
	Agents     map[string]map[string]json.RawMessage `json:"agents,omitempty"`
	Identities map[string]map[string]any             `json:"identities,omitempty"`
}

// MarshalJSON writes the realm in the file form.
func (r *Realm) MarshalJSON() ([]byte, error) {
	out := realmJSON{Aliases: r.Aliases, Active: r.Active, Trees: r.Trees, Nodes: r.Nodes, Identities: r.Identities,
		Services: map[string]json.RawMessage{}, Agents: map[string]map[string]json.RawMessage{}}
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
	if len(r.OAuth2Clients) > 0 {
		out.Agents["OAuth2Client"] = map[string]json.RawMessage{}
		for id, c := range r.OAuth2Clients {
			if err := put(out.Agents["OAuth2Client"], id, c); err != nil {
				return nil, err
			}
		}
	}
	if len(r.SoftwarePublishers) > 0 {
		out.Agents["SoftwarePublisher"] = map[string]json.RawMessage{}
		for id, p := range r.SoftwarePublishers {
			if err := put(out.Agents["SoftwarePublisher"], id, p); err != nil {
				return nil, err
			}
		}
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
	*r = Realm{Aliases: in.Aliases, Active: in.Active, Trees: in.Trees, Nodes: in.Nodes, Identities: in.Identities}
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
			switch typ {
			case "OAuth2Client":
				c := &OAuth2Client{}
				if err := json.Unmarshal(raw, c); err != nil {
					return fmt.Errorf("agent OAuth2Client/%s: %w", id, err)
				}
				if r.OAuth2Clients == nil {
					r.OAuth2Clients = map[string]*OAuth2Client{}
				}
				r.OAuth2Clients[id] = c
			case "SoftwarePublisher":
				p := &SoftwarePublisher{}
				if err := json.Unmarshal(raw, p); err != nil {
					return fmt.Errorf("agent SoftwarePublisher/%s: %w", id, err)
				}
				if r.SoftwarePublishers == nil {
					r.SoftwarePublishers = map[string]*SoftwarePublisher{}
				}
				r.SoftwarePublishers[id] = p
			default:
				return fmt.Errorf("unsupported agent type %q (supported: OAuth2Client, SoftwarePublisher)", typ)
			}
		}
	}
	return nil
}

// IoTService is the realm's IoT Service ("iot").
type IoTService struct {
	OAuthClientName       string   `json:"oauthClientName"`
	OAuthJWTIssuerName    string   `json:"oauthJwtIssuerName"`
	CreateOAuthClient     bool     `json:"createOAuthClient"`
	CreateOAuthJWTIssuer  bool     `json:"createOAuthJwtIssuer"`
	OAuthSubjectAttribute string   `json:"oauthSubjectAttribute,omitempty"`
	AttributeAllowlist    []string `json:"attributeAllowlist"`
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
// the settings that things observe.
type OAuth2Provider struct {
	Core     OAuth2Core     `json:"coreOAuth2Config"`
	Advanced OAuth2Advanced `json:"advancedOAuth2Config"`
	Device   DeviceCode     `json:"deviceCodeConfig"`
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
	return json.Marshal(struct {
		Core core `json:"coreOAuth2ClientConfig"`
		Adv  adv  `json:"advancedOAuth2ClientConfig"`
	}{
		core{inherited[[]string]{Value: nonNil(c.Scopes)}, inherited[[]string]{Value: nonNil(c.DefaultScopes)},
			inherited[string]{Value: status}, inherited[int64]{Value: c.AccessTokenLifetime},
			inherited[int64]{Value: c.RefreshTokenLifetime}},
		adv{inherited[[]string]{Value: nonNil(c.GrantTypes)}},
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// SoftwarePublisher is a software publisher agent: it vouches for software
// statements whose iss equals Issuer, signed with a key of JWKSet.
type SoftwarePublisher struct {
	Issuer string `json:"issuer"`
	// PublicKeyLocation is "jwks" (JWKSet holds the keys). "jwks_uri" is
	// not supported by the local AM, which makes no outbound calls.
	PublicKeyLocation string `json:"publicKeyLocation"`
	// JWKSet is the publisher's JSON Web Key set, held as JSON text as AM does.
	JWKSet string `json:"jwkSet"`
	// SigningAlgorithm is the algorithm statements must use (default ES256).
	SigningAlgorithm string `json:"softwareStatementSigningAlgorithm"`
}

func (p *SoftwarePublisher) keys() (jose.JSONWebKeySet, error) {
	if p.PublicKeyLocation != "" && p.PublicKeyLocation != "jwks" {
		return jose.JSONWebKeySet{}, fmt.Errorf("public key location %q is not supported (the local AM makes no outbound calls; use jwks)", p.PublicKeyLocation)
	}
	return parseJWKSet(p.JWKSet)
}

// Tree is an authentication tree (journey) in AM's export shape.
type Tree struct {
	EntryNodeID string               `json:"entryNodeId"`
	Nodes       map[string]*TreeNode `json:"nodes"`
	// UIConfig and StaticNodes are kept for round trips; not evaluated.
	UIConfig    json.RawMessage `json:"uiConfig,omitempty"`
	StaticNodes json.RawMessage `json:"staticNodes,omitempty"`
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
		for _, k := range []string{"_id", "_type", "_rev", "_outcomes"} {
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
	case NodeTypeUsernameCollector, NodeTypePasswordCollector, NodeTypeDataStoreDecision:
		return nil
	case "":
		return errors.New(`node has no "_type"`)
	default:
		return fmt.Errorf("unsupported node type %q", n.Type)
	}
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
		for _, a := range r.Aliases {
			if other, dup := aliases[strings.ToLower(a)]; dup {
				return fmt.Errorf("realm %q: alias %q is already used by realm %q", p, a, other)
			}
			aliases[strings.ToLower(a)] = p
		}
		for name, t := range r.Trees {
			if err := validateTree(r, t); err != nil {
				return fmt.Errorf("realm %q, tree %q: %w", p, name, err)
			}
		}
		for id, n := range r.Nodes {
			if n.Registration != nil {
				switch n.Registration.JWTRegistrationMethod {
				case RegPoPWithCertificate, RegPoPWithSoftwareStatement, RegPoPWithoutTrust, RegSoftwareStatementOnly:
				default:
					return fmt.Errorf("realm %q, node %s: unknown jwtRegistrationMethod %q", p, id, n.Registration.JWTRegistrationMethod)
				}
			}
			if n.Authentication != nil {
				switch n.Authentication.JWTAuthenticationMethod {
				case AuthProofOfPossession, AuthClientAssertion:
				default:
					return fmt.Errorf("realm %q, node %s: unknown jwtAuthenticationMethod %q", p, id, n.Authentication.JWTAuthenticationMethod)
				}
			}
		}
	}
	return nil
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

func validateTree(r *Realm, t *Tree) error {
	if t.EntryNodeID == "" {
		return errors.New("no entryNodeId")
	}
	if _, ok := t.Nodes[t.EntryNodeID]; !ok {
		return fmt.Errorf("entry node %s is not in the tree", t.EntryNodeID)
	}
	for id, tn := range t.Nodes {
		n, ok := r.Nodes[id]
		if !ok {
			return fmt.Errorf("node %s has no settings in the realm's nodes", id)
		}
		if n.Type != tn.NodeType {
			return fmt.Errorf("node %s is a %s in the tree but a %s in the realm's nodes", id, tn.NodeType, n.Type)
		}
		for _, o := range nodeOutcomes[n.Type] {
			to, ok := tn.Connections[o]
			if !ok {
				return fmt.Errorf("node %s: outcome %q is not connected", id, o)
			}
			if _, inTree := t.Nodes[to]; !inTree && to != SuccessNodeID && to != FailureNodeID {
				return fmt.Errorf("node %s: outcome %q leads to %s, which is not in the tree", id, o, to)
			}
		}
		for o := range tn.Connections {
			if !slices.Contains(nodeOutcomes[n.Type], o) {
				return fmt.Errorf("node %s: a %s has no outcome %q", id, n.Type, o)
			}
		}
	}
	return nil
}
