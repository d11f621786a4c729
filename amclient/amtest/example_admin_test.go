package amtest_test

import (
	"fmt"
	"sort"
	"testing/fstest"

	"github.com/thingway/thingway/amclient/amtest"
)

// A fresh local AM configured from AM-shaped JSON, in iot-edge's
// testdata/am layout, through the admin REST API.
func ExampleServer_Import() {
	srv := amtest.NewUnstartedServer()
	srv.Config = amtest.EmptyConfig()
	srv.Start()
	defer srv.Close()

	const success, failure = "70e691a5-1e33-4ac3-a356-e7b6d60d92e0", "e301438c-0bd0-429c-ab0c-66126501069a"
	dir := fstest.MapFS{
		"services/iot/iot.json": {Data: []byte(`{"oauthClientName": "forgerock-iot-oauth2-client",
			"createOAuthClient": true, "attributeAllowlist": ["thingConfig"]}`)},
		"services/oauth-oidc/oauth-oidc.json": {Data: []byte(`{"coreOAuth2Config": {"statelessTokensEnabled": true}}`)},
		"nodes/independent/IotAuthenticationNode/a1.json": {Data: []byte(`{"_id": "a1",
			"jwtAuthenticationMethod": "PROOF_OF_POSSESSION", "issueRestrictedToken": true, "additionalAudienceValues": []}`)},
		"trees/ThingAuth.json": {Data: []byte(`{"entryNodeId": "a1", "nodes": {"a1": {"nodeType": "IotAuthenticationNode",
			"connections": {"success": "` + success + `", "failure": "` + failure + `", "register": "` + failure + `"}}}}`)},
		"realms/fleet/realm.json": {Data: []byte(`{"aliases": ["fleet.example.com"]}`)},
	}
	if err := srv.Import(dir); err != nil {
		fmt.Println(err)
		return
	}
	cfg := srv.Configuration()
	var trees []string
	for name := range cfg.Realms["/"].Trees {
		trees = append(trees, name)
	}
	sort.Strings(trees)
	fmt.Println("trees of /:", trees)
	fmt.Println("client of the IoT Service:", cfg.Realms["/"].OAuth2Clients["forgerock-iot-oauth2-client"] != nil)
	fmt.Println("aliases of /fleet:", cfg.Realms["/fleet"].Aliases)
	// Output:
	// trees of /: [ThingAuth ldapService]
	// client of the IoT Service: true
	// aliases of /fleet: [fleet.example.com]
}
