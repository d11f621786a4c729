package amtest_test

// Test harness (with harness_test.go): trees and their journeys,
// callbacks and their answers, and the things endpoint's signed requests.

import (
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest"
)

// callbacks is an AM callback response.
type callbacks struct {
	AuthID    string           `json:"authId"`
	Callbacks []map[string]any `json:"callbacks"`
	TokenID   string           `json:"tokenId"`
}

func (c *client) authURL(tree, realm string) string {
	u := c.srv.URL + "/json/authenticate?authIndexType=service&authIndexValue=" + tree
	if realm != "" {
		u += "&realm=" + realm
	}
	return u
}

func (c *client) authStep(url string, body any) (response, callbacks) {
	c.t.Helper()
	b, _ := json.Marshal(body)
	r := c.do("POST", url, b, "Content-Type: application/json", "Accept-API-Version: protocol=1.0,resource=2.1")
	var cb callbacks
	if r.status == 200 {
		json.Unmarshal(r.body, &cb)
	}
	return r, cb
}

// hidden returns the value output of the HiddenValueCallback with id.
func hidden(t testing.TB, cb callbacks, id string) (index int, value string) {
	t.Helper()
	for i, c := range cb.Callbacks {
		var v, got string
		for _, o := range c["output"].([]any) {
			m := o.(map[string]any)
			switch m["name"] {
			case "value":
				v, _ = m["value"].(string)
			case "id":
				got, _ = m["value"].(string)
			}
		}
		if got == id {
			return i, v
		}
	}
	t.Fatalf("no %s callback in %+v", id, cb.Callbacks)
	return 0, ""
}

// answer fills the input of callback i.
func answer(cb callbacks, i int, value string) callbacks {
	in := cb.Callbacks[i]["input"].([]any)
	in[0].(map[string]any)["value"] = value
	return cb
}

// authenticatePoP runs the PoP flow of the Authenticate Thing node and
// returns the tokenId.
func (c *client) authenticatePoP(th *thing, tree, realm, aud string) (string, response) {
	c.t.Helper()
	u := c.authURL(tree, realm)
	r, cb := c.authStep(u, map[string]any{})
	if r.status != 200 {
		return "", r
	}
	i, nonce := hidden(c.t, cb, "jwt-pop-authentication")
	jwtStr := sign(c.t, th.key, th.alg, map[jose.HeaderKey]any{"typ": "JWT"}, th.popClaims(aud, nonce, c.clock()))
	r, cb = c.authStep(u, answer(cb, i, jwtStr))
	return cb.TokenID, r
}

// signedRequest sends a request signed the way the SDK signs restricted requests.
func (c *client) signedRequest(th *thing, method, url, api, token string, nonce int64, payload map[string]any) response {
	c.t.Helper()
	if payload == nil {
		payload = map[string]any{}
	}
	payload["csrf"] = token
	body := signPayload(c.t, th, url, api, nonce, payload)
	return c.do(method, url, []byte(body), "Content-Type: application/jose", "Accept-API-Version: "+api,
		"Cookie: iPlanetDirectoryPro="+token)
}

func signPayload(t testing.TB, th *thing, aud, api string, nonce int64, payload any) string {
	t.Helper()
	return signHeaders(t, th, map[jose.HeaderKey]any{"aud": aud, "api": api, "nonce": nonce}, payload)
}

const thingsAPI = "protocol=2.0,resource=1.0"

// addTree adds a tree to the realm: auth → (register) → reg, or reg alone
// when auth is nil, or auth alone (register → Failure) when reg is nil.
func addTree(cfg *amtest.Config, realm, name string, auth *amtest.IoTAuthenticationNode, reg *amtest.IoTRegistrationNode) {
	r := cfg.Realms[realm]
	authID, regID := name+"-auth-node", name+"-reg-node"
	tree := &amtest.Tree{Nodes: map[string]*amtest.TreeNode{}}
	if reg != nil {
		r.Nodes[regID] = &amtest.Node{Type: amtest.NodeTypeIoTRegistration, Registration: reg}
		tree.Nodes[regID] = &amtest.TreeNode{DisplayName: "Register Thing", NodeType: amtest.NodeTypeIoTRegistration,
			Connections: map[string]string{"success": amtest.SuccessNodeID, "failure": amtest.FailureNodeID}}
		tree.EntryNodeID = regID
	}
	if auth != nil {
		register := amtest.FailureNodeID
		if reg != nil {
			register = regID
		}
		r.Nodes[authID] = &amtest.Node{Type: amtest.NodeTypeIoTAuthentication, Authentication: auth}
		tree.Nodes[authID] = &amtest.TreeNode{DisplayName: "Authenticate Thing", NodeType: amtest.NodeTypeIoTAuthentication,
			Connections: map[string]string{"success": amtest.SuccessNodeID, "failure": amtest.FailureNodeID, "register": register}}
		tree.EntryNodeID = authID
	}
	r.Trees[name] = tree
}

func popNode(restricted bool, extraAud ...string) *amtest.IoTAuthenticationNode {
	return &amtest.IoTAuthenticationNode{JWTAuthenticationMethod: amtest.AuthProofOfPossession, IssueRestrictedToken: restricted, AdditionalAudienceValues: extraAud}
}

func assertionNode(extraAud ...string) *amtest.IoTAuthenticationNode {
	return &amtest.IoTAuthenticationNode{JWTAuthenticationMethod: amtest.AuthClientAssertion, AdditionalAudienceValues: extraAud}
}

func regNode(method string) *amtest.IoTRegistrationNode {
	return &amtest.IoTRegistrationNode{JWTRegistrationMethod: method, VerifySubject: method == amtest.RegPoPWithCertificate, CreateIdentity: true}
}

// answers maps a callback (HiddenValueCallback id, or callback type for the
// others) to a function from its output value to the input to send.
type answers map[string]func(value string) string

// loginResult is the end of a callback exchange.
type loginResult struct {
	token  string
	r      response
	rounds [][]string // callback keys of each callback response, in order
}

func callbackKey(cb map[string]any) (key, value string) {
	key, _ = cb["type"].(string)
	for _, o := range cb["output"].([]any) {
		m := o.(map[string]any)
		switch m["name"] {
		case "value", "prompt":
			value, _ = m["value"].(string)
		case "id":
			if id, _ := m["value"].(string); key == "HiddenValueCallback" {
				key = id
			}
		}
	}
	return key, value
}

// login runs a tree from {} to a tokenId or a non-200, answering callbacks with a.
func (c *client) login(url string, a answers) loginResult {
	c.t.Helper()
	var res loginResult
	r, cb := c.authStep(url, map[string]any{})
	for round := 0; round < 10 && r.status == 200 && cb.TokenID == ""; round++ {
		var keys []string
		for i, callback := range cb.Callbacks {
			k, v := callbackKey(callback)
			keys = append(keys, k)
			f := a[k]
			if f == nil {
				c.t.Fatalf("unexpected callback %s in %s", k, r.body)
			}
			answer(cb, i, f(v))
		}
		res.rounds = append(res.rounds, keys)
		r, cb = c.authStep(url, cb)
	}
	res.token, res.r = cb.TokenID, r
	return res
}

// popAnswer answers jwt-pop-authentication for th with audience aud.
func (c *client) popAnswer(th *thing, aud string) func(string) string {
	return func(nonce string) string { return th.signJWT(c.t, th.popClaims(aud, nonce, c.clock())) }
}

// regAnswer answers jwt-pop-registration for th with audience aud.
func (c *client) regAnswer(th *thing, aud string, extra map[string]any) func(string) string {
	return func(nonce string) string { return th.signJWT(c.t, th.regClaims(aud, nonce, c.clock(), extra)) }
}

func constant(s string) func(string) string { return func(string) string { return s } }

// mustPoP authenticates th on tree in realm ("/" in the URL) with aud = realm and fails the test otherwise.
func (c *client) mustPoP(th *thing, tree, realm string) string {
	c.t.Helper()
	tok, r := c.authenticatePoP(th, tree, realm, realm)
	if tok == "" {
		c.t.Fatalf("PoP authentication of %s on %s: %d %s", th.id, tree, r.status, r.body)
	}
	return tok
}

// thingsURL is the things endpoint URL for an action ("" for attributes) in realm.
func (c *client) thingsURL(action, realm string) string {
	u := c.srv.URL + "/json/things/*"
	sep := "?"
	if action != "" {
		u += "?_action=" + action
		sep = "&"
	}
	if realm != "" {
		u += sep + "realm=" + realm
	}
	return u
}

// thingsJSON calls the things endpoint with an unrestricted token and a JSON body.
func (c *client) thingsJSON(method, url, token string, body any) response {
	c.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	return c.do(method, url, b, "Content-Type: application/json", "Accept-API-Version: "+thingsAPI, "Cookie: iPlanetDirectoryPro="+token)
}

// session is a restricted session with its nonce counter, as the SDK keeps it.
type restricted struct {
	c     *client
	th    *thing
	token string
	nonce int64
}

func (c *client) restrictedSession(th *thing, token string) *restricted {
	return &restricted{c: c, th: th, token: token}
}

// do sends a signed request with the next nonce.
func (s *restricted) do(method, url, api string, payload map[string]any) response {
	s.c.t.Helper()
	r := s.c.signedRequest(s.th, method, url, api, s.token, s.nonce, payload)
	s.nonce++
	return r
}

func (s *restricted) things(method, action, realm string, payload map[string]any) response {
	s.c.t.Helper()
	return s.do(method, s.c.thingsURL(action, realm), thingsAPI, payload)
}
