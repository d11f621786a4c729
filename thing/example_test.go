package thing_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/thing"
)

// A manually registered thing authenticates with proof of possession and
// asks for an access token, as the evaluation guide's manual-registration
// example does.
func Example() {
	am := amtest.NewServer() // a local AM set up as the evaluation guide sets one up
	defer am.Close()
	ctx := context.Background()

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	registerManually(am, "manual-thing", key) // the guide's PUT /json/realms/root/users/manual-thing

	th, err := thing.New(ctx, thing.Config{
		Connector: &amclient.Client{URL: am.URL, Realm: "/", Tree: "auth-tree"},
		ID:        "manual-thing",
		Key:       key,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, err := th.AccessToken(ctx, "publish")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("Expires in:", tok.ExpiresIn)
	fmt.Println("Scope(s):", tok.Scope)
	// Output:
	// Expires in: 3599
	// Scope(s): [publish]
}

func registerManually(am *amtest.Server, id string, key *ecdsa.PrivateKey) {
	kid, _ := callback.Thumbprint(key.Public())
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Use: "sig", Algorithm: "ES256"}}})
	body, _ := json.Marshal(map[string]string{"thingType": "device", "thingKeys": string(set)})
	login, _ := http.NewRequest("POST", am.URL+"/json/authenticate", nil)
	login.Header.Set("X-OpenAM-Username", "amAdmin")
	login.Header.Set("X-OpenAM-Password", "changeit")
	res, err := http.DefaultClient.Do(login)
	if err != nil {
		panic(err)
	}
	var admin struct{ TokenID string }
	json.NewDecoder(res.Body).Decode(&admin)
	res.Body.Close()
	put, _ := http.NewRequest("PUT", am.URL+"/json/realms/root/users/"+id, strings.NewReader(string(body)))
	put.Header.Set("Content-Type", "application/json")
	put.Header.Set("Accept-API-Version", "resource=4.0, protocol=2.1")
	put.AddCookie(&http.Cookie{Name: "iPlanetDirectoryPro", Value: admin.TokenID})
	res, err = http.DefaultClient.Do(put)
	if err != nil {
		panic(err)
	}
	res.Body.Close()
}
