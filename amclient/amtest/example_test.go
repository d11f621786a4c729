package amtest_test

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/thingway/thingway/amclient/amtest"
)

// A local AM answers the evaluation guide's administrator login.
func Example() {
	srv := amtest.NewServer()
	defer srv.Close()

	req, _ := http.NewRequest("POST", srv.URL+"/json/authenticate", nil)
	req.Header.Set("X-OpenAM-Username", "amAdmin")
	req.Header.Set("X-OpenAM-Password", "changeit")
	req.Header.Set("Accept-API-Version", "resource=2.0, protocol=1.0")
	res, err := srv.Client().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Body.Close()
	var body struct {
		TokenID    string `json:"tokenId"`
		SuccessURL string `json:"successUrl"`
		Realm      string `json:"realm"`
	}
	json.NewDecoder(res.Body).Decode(&body)
	fmt.Println(res.StatusCode, body.SuccessURL, body.Realm, body.TokenID != "")
	// Output: 200 /openam/console / true
}
