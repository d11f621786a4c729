package amtest_test

import (
	"strings"
	"testing"
)

// TestGuideManualRegistration runs the evaluation guide's AM-side flow for
// manual registration: admin login, PUT of the identity, PoP authentication
// on auth-tree, then signed things requests.
func TestGuideManualRegistration(t *testing.T) {
	srv, c := startServer(t)
	admin := c.adminLogin()
	th := newThing(t, "manual-thing")
	r := c.register(admin, th, "/realms/root")
	if r.status != 201 {
		t.Fatalf("PUT identity: %d %s", r.status, r.body)
	}
	got := r.json(t)
	if got["_id"] != "manual-thing" || got["username"] != "manual-thing" || got["realm"] != "/" {
		t.Errorf("identity response = %v", got)
	}
	tok, r := c.authenticatePoP(th, "auth-tree", "/", "/")
	if tok == "" {
		t.Fatalf("PoP authentication: %d %s", r.status, r.body)
	}
	u := srv.URL + "/json/things/*?_action=get_access_token&realm=/"
	r = c.signedRequest(th, "POST", u, thingsAPI, tok, 0, map[string]any{"scope": []string{"publish"}})
	if r.status != 200 {
		t.Fatalf("get_access_token: %d %s", r.status, r.body)
	}
	at := r.json(t)
	if at["scope"] != "publish" || at["expires_in"] != float64(3599) || at["token_type"] != "Bearer" || !strings.Contains(at["access_token"].(string), ".") {
		t.Errorf("token response = %v", at)
	}
	// The same nonce again is a replay.
	r = c.signedRequest(th, "POST", u, thingsAPI, tok, 0, map[string]any{"scope": []string{"publish"}})
	if r.status != 401 {
		t.Errorf("replayed nonce: %d %s", r.status, r.body)
	}
	r = c.signedRequest(th, "GET", srv.URL+"/json/things/*?realm=/", thingsAPI, tok, 1, nil)
	if r.status != 200 {
		t.Fatalf("attributes: %d %s", r.status, r.body)
	}
	attrs := r.json(t)
	if attrs["_id"] != "manual-thing" {
		t.Errorf("attributes = %v", attrs)
	}
}
