package jwttool_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/internal/jwttool"
)

// walkthrough sends the requests of iot-edge's curl walkthroughs to a local
// AM, with the bodies the three tools make.
type walkthrough struct {
	t   *testing.T
	srv *amtest.Server
}

// do sends a request and returns the status and body. Headers alternate
// names and values.
func (w walkthrough) do(method, url string, body []byte, headers ...string) (int, []byte) {
	w.t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := w.srv.Client().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return res.StatusCode, b
}

// tokenID returns the tokenId of a successful authentication.
func (w walkthrough) tokenID(status int, body []byte) string {
	w.t.Helper()
	var ok struct{ TokenID string }
	if status != http.StatusOK || json.Unmarshal(body, &ok) != nil || ok.TokenID == "" {
		w.t.Fatalf("authentication: %d %s", status, body)
	}
	return ok.TokenID
}

// authenticate runs a tree whose first step asks for a signed JWT in the
// hidden-value callback cbID: it reads the challenge, answers with the JWT
// sign returns for it, and returns the tokenId.
func (w walkthrough) authenticate(tree, cbID string, sign func(challenge string) string) string {
	w.t.Helper()
	url := w.srv.URL + "/json/authenticate?authIndexType=service&authIndexValue=" + tree
	hdr := []string{"Content-Type", "application/json", "Accept-API-Version", "resource=2.0, protocol=1.0"}
	status, body := w.do("POST", url, nil, hdr...)
	if status != http.StatusOK {
		w.t.Fatalf("%s: %d %s", tree, status, body)
	}
	// Post the step back as received, with the callback's input filled in.
	var step map[string]json.RawMessage
	var cbs []callback.Callback
	if err := json.Unmarshal(body, &step); err != nil {
		w.t.Fatal(err)
	}
	if err := json.Unmarshal(step["callbacks"], &cbs); err != nil {
		w.t.Fatalf("callbacks of %s: %v", body, err)
	}
	found := false
	for i := range cbs {
		if cbs[i].Type == callback.TypeHiddenValueCallback && cbs[i].ID() == cbID {
			cbs[i].SetInput(sign(cbs[i].Value()))
			found = true
		}
	}
	if !found {
		w.t.Fatalf("%s: no %s callback in %s", tree, cbID, body)
	}
	var err error
	if step["callbacks"], err = json.Marshal(cbs); err != nil {
		w.t.Fatal(err)
	}
	answer, err := json.Marshal(step)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.tokenID(w.do("POST", url, answer, hdr...))
}

// accessToken asks the things endpoint for an access token with a body
// signed by things-jwt, and returns the status and body.
func (w walkthrough) accessToken(opts jwttool.ThingsJWTOptions, tokenID string) (int, []byte) {
	w.t.Helper()
	jws, err := jwttool.ThingsJWT(opts)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.do("POST", opts.URL, []byte(jws),
		"Content-Type", "application/jose",
		"Accept-API-Version", "protocol=2.0,resource=1.0",
		"Cookie", "iPlanetDirectoryPro="+tokenID)
}

// wantAccessToken checks a get_access_token answer.
func (w walkthrough) wantAccessToken(status int, body []byte) {
	t := w.t
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
		Scope       string
		TokenType   string `json:"token_type"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("get_access_token: %d %s", status, body)
	}
	if tok.Scope != "publish" || tok.TokenType != "Bearer" {
		t.Errorf("get_access_token: %s", body)
	}
}

// TestWalkthrough reproduces iot-edge's curl walkthroughs against the local
// AM with the tools' output: manual registration then authentication on
// auth-tree and an access token; and registration with a certificate on
// reg-tree.
func TestWalkthrough(t *testing.T) {
	srv := amtest.NewServer()
	defer srv.Close()

	res := filepath.Join("..", "..", "resources")
	key, err := jwttool.ReadKey(filepath.Join(res, "eckey1.key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	// pem-to-jwks --thumbprint-kid: its kid is what auth-jwt --kid gets.
	jwks, err := jwttool.PEMToJWKS(jwttool.PEMToJWKSOptions{Key: key, ThumbprintKeyID: true})
	if err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []struct{ KID string } }
	if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("pem-to-jwks: %s, %v", jwks, err)
	}
	kid := set.Keys[0].KID

	t.Run("manual registration", func(t *testing.T) {
		w := walkthrough{t, srv}
		admin := w.tokenID(w.do("POST", srv.URL+"/json/authenticate", nil,
			"Content-Type", "application/json",
			"X-OpenAM-Username", "amAdmin",
			"X-OpenAM-Password", "changeit",
			"Accept-API-Version", "resource=2.0, protocol=1.0"))
		identity, err := json.Marshal(map[string]string{
			"userPassword": "5tr0ngG3n3r@ted",
			"thingType":    "device",
			"thingKeys":    string(jwks),
		})
		if err != nil {
			t.Fatal(err)
		}
		status, body := w.do("PUT", srv.URL+"/json/realms/root/users/manual-thing", identity,
			"Content-Type", "application/json",
			"Accept-API-Version", "resource=4.0, protocol=2.1",
			"Cookie", "iPlanetDirectoryPro="+admin)
		if status != http.StatusCreated {
			t.Fatalf("PUT manual-thing: %d %s", status, body)
		}

		// auth-jwt -s manual-thing -a / -c <challenge> -k eckey1.key.pem --kid <thumbprint>
		tok := w.authenticate("auth-tree", callback.IDPoPAuthentication, func(challenge string) string {
			jwt, err := jwttool.AuthJWT(jwttool.AuthJWTOptions{Subject: "manual-thing", Audience: "/", Challenge: challenge, Key: key, KeyID: kid})
			if err != nil {
				t.Fatal(err)
			}
			return jwt
		})

		// things-jwt -u <url> -k eckey1.key.pem -n 1 --custom '{"csrf":"<tokenId>","scope":["publish"]}'
		opts := jwttool.ThingsJWTOptions{
			URL:    srv.URL + "/json/things/*?_action=get_access_token",
			Key:    key,
			Nonce:  1,
			Claims: []byte(`{"csrf":"` + tok + `","scope":["publish"]}`),
		}
		w.wantAccessToken(w.accessToken(opts, tok))

		// AM refuses the same nonce again, and takes the default, the
		// current Unix time, after it.
		if status, body := w.accessToken(opts, tok); status != http.StatusUnauthorized {
			t.Errorf("replayed nonce: %d %s", status, body)
		}
		opts.Nonce = -1
		w.wantAccessToken(w.accessToken(opts, tok))
	})

	t.Run("default kid is not the registered one", func(t *testing.T) {
		w := walkthrough{t, srv}
		url := srv.URL + "/json/authenticate?authIndexType=service&authIndexValue=auth-tree"
		_, body := w.do("POST", url, nil, "Content-Type", "application/json", "Accept-API-Version", "resource=2.0, protocol=1.0")
		var step struct {
			AuthID    string `json:"authId"`
			Callbacks []callback.Callback
		}
		if err := json.Unmarshal(body, &step); err != nil || len(step.Callbacks) == 0 {
			t.Fatalf("auth-tree: %s", body)
		}
		jwt, err := jwttool.AuthJWT(jwttool.AuthJWTOptions{Subject: "manual-thing", Audience: "/", Challenge: step.Callbacks[0].Value(), Key: key, KeyID: jwttool.IoTEdgeKeyID})
		if err != nil {
			t.Fatal(err)
		}
		step.Callbacks[0].SetInput(jwt)
		answer, _ := json.Marshal(step)
		if status, body := w.do("POST", url, answer, "Content-Type", "application/json", "Accept-API-Version", "resource=2.0, protocol=1.0"); status != http.StatusUnauthorized {
			t.Errorf("kid pop.cnf: %d %s", status, body)
		}
	})

	t.Run("registration with certificate", func(t *testing.T) {
		w := walkthrough{t, srv}
		certs, err := jwttool.ReadCertificates(filepath.Join(res, "thingymabot.cert.pem"))
		if err != nil {
			t.Fatal(err)
		}
		// auth-jwt -s thingymabot -a / -c <challenge> -k eckey1.key.pem
		//   --certificate thingymabot.cert.pem --kid <thumbprint>
		tok := w.authenticate("reg-tree", callback.IDPoPRegistration, func(challenge string) string {
			jwt, err := jwttool.AuthJWT(jwttool.AuthJWTOptions{Subject: "thingymabot", Audience: "/", Challenge: challenge, Key: key, KeyID: kid, Certificates: certs})
			if err != nil {
				t.Fatal(err)
			}
			return jwt
		})
		// The registered session is bound to the key too.
		w.wantAccessToken(w.accessToken(jwttool.ThingsJWTOptions{
			URL:    srv.URL + "/json/things/*?_action=get_access_token",
			Key:    key,
			Nonce:  0,
			Claims: []byte(`{"csrf":"` + tok + `","scope":["publish"]}`),
		}, tok))
	})
}
