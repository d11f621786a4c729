package amtest

import _ "embed"

// The evaluation guide's manually registered identities, as the README's
// curl steps register them.
const (
	// GuideThingID is the thing the guide registers by hand.
	GuideThingID = "manual-thing"
	// GuideGatewayID is the gateway the guide registers by hand.
	GuideGatewayID = "manual-gateway"
	// GuidePassword is the userPassword the guide gives them.
	GuidePassword = "5tr0ngG3n3r@ted"
)

//go:embed defaults/manual-thing.jwks
var exampleThingJWKS string

// ExampleThingKeys returns the public JWK set of the project's example key
// (resources/eckey1.key.pem, whose private half resources/example.secrets
// holds as manual-thing): the thingKeys value the guide registers, its kid
// the key's RFC 7638 thumbprint. It is a copy of
// resources/manual-thing.jwks.
func ExampleThingKeys() string { return exampleThingJWKS }

// GuideIdentities returns the identities of the guide's "Register
// identities" steps, registered with the example key: manual-thing (thing
// type device) and manual-gateway (gateway). Put them in a realm's
// Identities to skip those steps.
func GuideIdentities() map[string]map[string]any {
	id := func(thingType string) map[string]any {
		return map[string]any{"thingType": thingType, "thingKeys": ExampleThingKeys(), "userPassword": GuidePassword}
	}
	return map[string]map[string]any{GuideThingID: id("device"), GuideGatewayID: id("gateway")}
}
