package pemkey_test

import (
	"fmt"

	"github.com/thingway/thingway/internal/pemkey"
)

func ExampleParsePrivateKey() {
	// A throw-away demo key as "openssl ecparam -name prime256v1 -genkey" writes it:
	// an EC PARAMETERS block, which is skipped, then the SEC 1 key.
	key, err := pemkey.ParsePrivateKey([]byte(`-----BEGIN EC PARAMETERS-----
BggqhkjOPQMBBw==
-----END EC PARAMETERS-----
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIF9vQOW/OYEOx1QvXYh4NRRDyfFUvpXVs3+hsFHTGrAeoAoGCCqGSM49
AwEHoUQDQgAE6T2O9rBScJlvLtLpGe1lDHa1CzeSqH9E29HuZk4wC21kjJbkyZ5Z
uIjMLIW9u321PNCJwhpyPL1uMorcHXONwQ==
-----END EC PRIVATE KEY-----
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%T\n", key)
	// Output: *ecdsa.PrivateKey
}
