package config

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/thingway/thingway/amclient/amtest/internal/members"
)

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

// IoTJWTIssuer returns the trusted JWT issuer that the IoT Service creates
// (createOAuthJwtIssuer) for its JWT-bearer grant: issuer
// forgerock-iot-service, the scope and sub claims, no allowed subjects, and
// the other settings of AM's agent as AM writes them.
func IoTJWTIssuer() *TrustedJWTIssuer {
	return &TrustedJWTIssuer{Issuer: "forgerock-iot-service",
		ConsentedScopesClaim: "scope", ResourceOwnerIdentityClaim: "sub", AllowedSubjects: []string{},
		extra: members.Extra{"jwksCacheTimeout": json.RawMessage("3600000"), "jwkStoreCacheMissCacheTime": json.RawMessage("60000"),
			"jwkSet": json.RawMessage("null"), "jwksUri": json.RawMessage("null")}}
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

// The project's example files that the defaults hold: the example CA
// certificate (PEM) and the software publisher's public JWK set. amtest
// embeds them from its defaults directory, which resources/gen writes, and
// gives them to this package with SetExampleFiles when it is initialized.
var (
	exampleCAPEM         []byte
	examplePublisherJWKS string
)

// SetExampleFiles sets the example CA certificate (PEM, a copy of
// resources/example-ca.cert.pem) and the software publisher's public JWK
// set (resources/software-publisher-public.jwks) that [ExampleCA],
// [GuideRealm] and the keystore alias [ExampleCAAlias] stand on. amtest,
// which embeds them, calls it once when it is initialized, before any
// other function of the package runs; it is not for concurrent use.
func SetExampleFiles(caPEM []byte, publisherJWKS string) {
	exampleCAPEM, examplePublisherJWKS = caPEM, publisherJWKS
}

// Example files' names in amtest's defaults directory.
const (
	ExampleCAFile        = "example-ca.cert.pem"
	ExamplePublisherFile = "software-publisher-public.jwks"
)

// SetExampleFilesFrom reads the example files from dir (amtest's defaults
// directory) and sets them: for the tests of the rooms under amtest, which
// run without amtest's embedded copies.
func SetExampleFilesFrom(dir string) error {
	ca, err := os.ReadFile(filepath.Join(dir, ExampleCAFile))
	if err != nil {
		return err
	}
	jwks, err := os.ReadFile(filepath.Join(dir, ExamplePublisherFile))
	if err != nil {
		return err
	}
	SetExampleFiles(ca, string(jwks))
	return nil
}

// ExampleCA returns the project's example CA certificate (resources/example-ca.cert.pem),
// the default certificate-verification CA.
func ExampleCA() *x509.Certificate {
	certs, err := ParseCertificates(exampleCAPEM)
	if err != nil || len(certs) == 0 {
		panic("amtest: embedded example CA is broken: " + fmt.Sprint(err))
	}
	return certs[0]
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
// admin REST API or amtest's Server.Import, as the iot-edge functional tests
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
