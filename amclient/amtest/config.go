package amtest

import (
	"crypto/x509"
	_ "embed"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
)

// The configuration schema lives in internal/config; this file re-exports
// it unchanged: its types as aliases, its constants and functions under
// the same names.

//go:embed defaults/example-ca.cert.pem
var exampleCAPEM []byte

//go:embed defaults/software-publisher-public.jwks
var examplePublisherJWKS string

func init() { config.SetExampleFiles(exampleCAPEM, examplePublisherJWKS) }

// Fixed node IDs of AM's Success and Failure nodes.
const (
	SuccessNodeID = config.SuccessNodeID
	FailureNodeID = config.FailureNodeID
)

// Node types the local AM evaluates.
const (
	NodeTypeIoTAuthentication = config.NodeTypeIoTAuthentication
	NodeTypeIoTRegistration   = config.NodeTypeIoTRegistration
	NodeTypeUsernameCollector = config.NodeTypeUsernameCollector
	NodeTypePasswordCollector = config.NodeTypePasswordCollector
	NodeTypeDataStoreDecision = config.NodeTypeDataStoreDecision
	NodeTypeScriptedDecision  = config.NodeTypeScriptedDecision
)

// Values of IoTAuthenticationNode.JWTAuthenticationMethod.
const (
	AuthProofOfPossession = config.AuthProofOfPossession
	AuthClientAssertion   = config.AuthClientAssertion
)

// Values of IoTRegistrationNode.JWTRegistrationMethod.
const (
	RegPoPWithCertificate       = config.RegPoPWithCertificate
	RegPoPWithSoftwareStatement = config.RegPoPWithSoftwareStatement
	RegPoPWithoutTrust          = config.RegPoPWithoutTrust
	RegSoftwareStatementOnly    = config.RegSoftwareStatementOnly
)

// Secret ID and keystore alias of certificate verification.
const (
	CertVerificationSecretID = config.CertVerificationSecretID
	ExampleCAAlias           = config.ExampleCAAlias
)

// Agent types.
const (
	AgentOAuth2Client      = config.AgentOAuth2Client
	AgentSoftwarePublisher = config.AgentSoftwarePublisher
	AgentTrustedJWTIssuer  = config.AgentTrustedJWTIssuer
)

// Grant type URNs.
const (
	GrantJWTBearer    = config.GrantJWTBearer
	GrantDeviceCode   = config.GrantDeviceCode
	GrantRefreshToken = config.GrantRefreshToken
)

// Script contexts and languages.
const (
	ScriptContextDecisionNode = config.ScriptContextDecisionNode
	ScriptGroovy              = config.ScriptGroovy
	ScriptJavaScript          = config.ScriptJavaScript
)

// Config is the AM configuration the local server runs with: what an
// administrator sets up in AM's console (cookie name, administrator,
// certificate-verification CAs and keystore aliases, secret mappings,
// server properties, and the realms by path). Its JSON form follows AM's
// own REST/export shapes, so that exported journeys can be pasted in. Its
// fields are documented at [config.Config]; its methods are
// [config.Config.Validate] and [config.Config.VerificationCAs].
type Config = config.Config

// Realm is one realm's configuration: aliases, whether it is active, the
// IoT Service and OAuth2 Provider, trees and nodes, agents, scripts and
// identities to create. Fields: [config.Realm].
type Realm = config.Realm

// IoTService is the realm's IoT Service ("iot"). Members of AM's JSON it
// does not hold are kept as given. Fields: [config.IoTService].
type IoTService = config.IoTService

// OAuth2Provider is the realm's OAuth2 Provider ("oauth-oidc"), reduced to
// the settings that things observe (Core, Advanced and Device); the rest of
// AM's JSON is kept as given. Fields: [config.OAuth2Provider].
type OAuth2Provider = config.OAuth2Provider

// OAuth2Core is the provider's Core tab: token lifetimes, refresh tokens,
// client-side tokens. Fields: [config.OAuth2Core].
type OAuth2Core = config.OAuth2Core

// OAuth2Advanced is the provider's Advanced tab: the signing algorithm and
// encryption of client-side tokens. Fields: [config.OAuth2Advanced].
type OAuth2Advanced = config.OAuth2Advanced

// DeviceCode is the provider's Device Flow tab: the device code's lifetime
// and poll interval. Fields: [config.DeviceCode].
type DeviceCode = config.DeviceCode

// OAuth2Client is an OAuth 2.0 client agent: secret, scopes, grant types,
// status, lifetimes. Its JSON form is AM's agent layout; settings the local
// AM does not use are kept as given. Fields: [config.OAuth2Client].
type OAuth2Client = config.OAuth2Client

// SoftwarePublisher is a software publisher agent: it vouches for software
// statements whose iss equals Issuer, signed with a key of its JWK set.
// Fields: [config.SoftwarePublisher].
type SoftwarePublisher = config.SoftwarePublisher

// TrustedJWTIssuer is a trusted JWT issuer agent, as the IoT Service
// creates it for its JWT-bearer grant; kept for the REST API. Fields:
// [config.TrustedJWTIssuer].
type TrustedJWTIssuer = config.TrustedJWTIssuer

// Script is a script in AM's shape (its JSON form carries the source
// base64-encoded); Scripted Decision nodes run scripts within
// [ScriptSubset]. Fields: [config.Script].
type Script = config.Script

// Tree is an authentication tree (journey) in AM's export shape: its entry
// node and its nodes' places and connections. Fields: [config.Tree].
type Tree = config.Tree

// TreeNode is a node's place in a tree: its type and outcome connections.
// Fields: [config.TreeNode].
type TreeNode = config.TreeNode

// Node is a node's settings, in AM's node shape ({"_type": {"_id": type},
// ...settings}): its type and, for the IoT and Scripted Decision nodes, the
// settings of that type. Fields: [config.Node].
type Node = config.Node

// IoTAuthenticationNode holds the Authenticate Thing node's settings.
// Fields: [config.IoTAuthenticationNode].
type IoTAuthenticationNode = config.IoTAuthenticationNode

// IoTRegistrationNode holds the Register Thing node's settings; defaults
// are the node's documented ones. Fields: [config.IoTRegistrationNode].
type IoTRegistrationNode = config.IoTRegistrationNode

// ScriptedDecisionNode holds the Scripted Decision node's settings: the
// script (a Script ID of the realm) and its outcomes, "true" and/or
// "false". Fields: [config.ScriptedDecisionNode].
type ScriptedDecisionNode = config.ScriptedDecisionNode

// Certificates is a list of X.509 certificates; its JSON form is a list of
// PEM texts.
type Certificates = config.Certificates

// NodeTypes returns the node types the local AM evaluates.
func NodeTypes() []string { return config.NodeTypes() }

// ParseCertificates reads every CERTIFICATE block of a PEM file.
func ParseCertificates(pemBytes []byte) ([]*x509.Certificate, error) {
	return config.ParseCertificates(pemBytes)
}

// DefaultIoTService returns the IoT Service as the evaluation guide creates
// it. Its Readable Attributes are thingConfig and thingKeys: the guide's
// software-statement transcript shows exactly those two read back.
func DefaultIoTService() *IoTService { return config.DefaultIoTService() }

// DefaultOAuth2Provider returns AM's provider defaults with client-side ES256
// tokens, which lets the SDK's local introspection work.
func DefaultOAuth2Provider() *OAuth2Provider { return config.DefaultOAuth2Provider() }

// ExampleCA returns the project's example CA certificate (resources/example-ca.cert.pem),
// the default certificate-verification CA.
func ExampleCA() *x509.Certificate { return config.ExampleCA() }

// DefaultConfig returns the AM that the IoT evaluation guide sets up: the
// top-level realm with the IoT Service, the OAuth2 Provider, the
// forgerock-iot-oauth2-client (scopes publish and subscribe), the trees
// auth-tree, reg-tree and auth-reg-tree, the example CA mapped for
// certificate verification, and the software publisher iot-software-publisher.
func DefaultConfig() *Config { return config.DefaultConfig() }

// EmptyConfig returns an AM as freshly installed, before any IoT
// configuration: the top-level realm with only the username and password
// tree ldapService, administrator amAdmin/changeit. Configure it with the
// admin REST API or [Server.Import], as the iot-edge functional tests
// configure a fresh AM.
func EmptyConfig() *Config { return config.EmptyConfig() }

// GuideRealm returns one realm configured as the evaluation guide configures
// the top-level realm. Use it to give sub-realms the same setup.
func GuideRealm() *Realm { return config.GuideRealm() }

// LoadConfig reads a configuration file (the JSON form of Config) on top of
// DefaultConfig: realms named in the file replace the default realm of the
// same path entirely; other settings keep their defaults.
func LoadConfig(path string) (*Config, error) { return config.LoadConfig(path) }
