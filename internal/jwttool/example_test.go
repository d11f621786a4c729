package jwttool_test

import (
	"fmt"

	"github.com/thingway/thingway/internal/jwttool"
	"github.com/thingway/thingway/internal/pemkey"
)

// A throw-away demo key, as "openssl ecparam -name prime256v1 -genkey" writes it.
const demoKey = `-----BEGIN EC PARAMETERS-----
BggqhkjOPQMBBw==
-----END EC PARAMETERS-----
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIF9vQOW/OYEOx1QvXYh4NRRDyfFUvpXVs3+hsFHTGrAeoAoGCCqGSM49
AwEHoUQDQgAE6T2O9rBScJlvLtLpGe1lDHa1CzeSqH9E29HuZk4wC21kjJbkyZ5Z
uIjMLIW9u321PNCJwhpyPL1uMorcHXONwQ==
-----END EC PRIVATE KEY-----
`

// The thingKeys of an identity registered by hand, with the thumbprint as
// key ID.
func ExamplePEMToJWKS() {
	key, err := pemkey.ParsePrivateKey([]byte(demoKey))
	if err != nil {
		fmt.Println(err)
		return
	}
	jwks, err := jwttool.PEMToJWKS(jwttool.PEMToJWKSOptions{Key: key, ThumbprintKeyID: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", jwks)
	// Output: {"keys":[{"use":"sig","kty":"EC","kid":"25DeJdw_TOfW4sHZDFo8x3YfzihirwspSI4FfSyUai0=","crv":"P-256","x":"6T2O9rBScJlvLtLpGe1lDHa1CzeSqH9E29HuZk4wC20","y":"ZIyW5MmeWbiIzCyFvbt9tTzQicIacjy9bjKK3B1zjcE"}]}
}
