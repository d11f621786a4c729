package amtest_test

import (
	"encoding/json"
	"testing"
)

const sessionsAPI = "resource=4.0"

// session calls /json/sessions?_action=<action> with token as cookie and an
// optional JSON body.
func (c *client) session(action, token string, body any) response {
	c.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	h := []string{"Content-Type: application/json", "Accept-API-Version: " + sessionsAPI}
	if token != "" {
		h = append(h, "Cookie: iPlanetDirectoryPro="+token)
	}
	return c.do("POST", c.srv.URL+"/json/sessions?_action="+action, b, h...)
}

// adminSession acts on another session with the admin token in the header (§8.4).
func (c *client) adminSession(action, admin, target string) response {
	c.t.Helper()
	b, _ := json.Marshal(map[string]string{"tokenId": target})
	return c.do("POST", c.srv.URL+"/json/sessions?_action="+action, b, "Content-Type: application/json",
		"Accept-API-Version: "+sessionsAPI, "iPlanetDirectoryPro: "+admin)
}

func (c *client) userLogin(user, password string) string {
	c.t.Helper()
	res := c.login(c.authURL("ldapService", "/"), answers{"NameCallback": constant(user), "PasswordCallback": constant(password)})
	if res.token == "" {
		c.t.Fatalf("login of %s: %d %s", user, res.r.status, res.r.body)
	}
	return res.token
}

func valid(t testing.TB, r response) bool {
	t.Helper()
	got := expectStatus(t, r, 200)
	v, ok := got["valid"].(bool)
	if !ok {
		t.Fatalf("validate body = %s", r.body)
	}
	return v
}

// TestSessions covers validate and logout (§8, SessionValid, SessionInvalid,
// SessionLogout, SessionLogoutWithRestrictedToken).
func TestSessions(t *testing.T) {
	srv, c := startServer(t)
	admin := c.adminLogin()
	for _, u := range []string{"alice", "bob"} {
		if r := c.putIdentity(admin, "/", u, map[string]any{"userPassword": "pa55word"}); r.status != 201 {
			t.Fatalf("create %s: %d %s", u, r.status, r.body)
		}
	}

	t.Run("validate own session", func(t *testing.T) {
		tok := c.userLogin("alice", "pa55word")
		got := expectStatus(t, c.session("validate", tok, nil), 200)
		if got["valid"] != true || got["uid"] != "alice" || got["realm"] != "/" {
			t.Errorf("validate = %v", got)
		}
		if s, _ := got["sessionUid"].(string); s == "" {
			t.Errorf("no sessionUid: %v", got)
		}
		// The token header works as well as the cookie.
		r := c.do("POST", srv.URL+"/json/sessions?_action=validate", nil, "Accept-API-Version: "+sessionsAPI, "iPlanetDirectoryPro: "+tok)
		if !valid(t, r) {
			t.Errorf("validate with the header: %s", r.body)
		}
	})
	t.Run("logout own session", func(t *testing.T) {
		tok := c.userLogin("alice", "pa55word")
		got := expectStatus(t, c.session("logout", tok, nil), 200)
		if got["result"] != "Successfully logged out" {
			t.Errorf("logout = %v", got)
		}
		if valid(t, c.session("validate", tok, nil)) {
			t.Errorf("session valid after logout")
		}
		if valid(t, c.adminSession("validate", admin, tok)) {
			t.Errorf("admin sees the session valid after logout")
		}
		expectCREST(t, c.session("logout", tok, nil), 401, "")
	})
	t.Run("admin validates and logs out another session", func(t *testing.T) {
		tok := c.userLogin("alice", "pa55word")
		got := expectStatus(t, c.adminSession("validate", admin, tok), 200)
		if got["valid"] != true || got["uid"] != "alice" {
			t.Errorf("admin validate = %v", got)
		}
		expectStatus(t, c.adminSession("logout", admin, tok), 200)
		if valid(t, c.session("validate", tok, nil)) {
			t.Errorf("owner sees the session valid after the admin logged it out")
		}
		if valid(t, c.adminSession("validate", admin, tok)) {
			t.Errorf("admin sees the session valid after logging it out")
		}
		// Logging out a dead session is not an error for the admin.
		expectStatus(t, c.adminSession("logout", admin, tok), 200)
		// The admin's own session is untouched.
		if !valid(t, c.session("validate", admin, nil)) {
			t.Errorf("admin session invalid")
		}
	})
	t.Run("non-admin acting on another session", func(t *testing.T) {
		alice := c.userLogin("alice", "pa55word")
		bob := c.userLogin("bob", "pa55word")
		expectCREST(t, c.adminSession("validate", bob, alice), 403, "")
		expectCREST(t, c.adminSession("logout", bob, alice), 403, "")
		if !valid(t, c.session("validate", alice, nil)) {
			t.Errorf("alice was logged out by bob")
		}
		// Naming one's own token is fine.
		if !valid(t, c.adminSession("validate", bob, bob)) {
			t.Errorf("bob validating himself by tokenId")
		}
	})
	t.Run("no or unknown token", func(t *testing.T) {
		if valid(t, c.session("validate", "", nil)) || valid(t, c.session("validate", "made-up-token", nil)) {
			t.Errorf("a missing token validates")
		}
		expectCREST(t, c.session("logout", "", nil), 401, "")
	})
	t.Run("restricted session", func(t *testing.T) {
		th := newThing(t, "session-thing")
		c.createThing(admin, "/", th, nil)
		tok := c.mustPoP(th, "auth-tree", "/")
		s := c.restrictedSession(th, tok)
		// Unsigned logout is refused and changes nothing.
		expectCREST(t, c.session("logout", tok, nil), 401, "")
		if !valid(t, c.adminSession("validate", admin, tok)) {
			t.Fatalf("the refused logout ended the session")
		}
		// Validating a restricted session fails, signed or not (OPENAM-19492).
		expectCREST(t, s.do("POST", srv.URL+"/json/sessions?_action=validate", sessionsAPI, nil), 401, "")
		expectCREST(t, c.session("validate", tok, nil), 401, "")
		// A logout signed for the validate URL is refused.
		bad := signPayload(t, th, srv.URL+"/json/sessions?_action=validate", sessionsAPI, 50, map[string]any{"csrf": tok})
		expectCREST(t, c.sendJOSE("POST", srv.URL+"/json/sessions?_action=logout", sessionsAPI, tok, bad), 401, "")
		if !valid(t, c.adminSession("validate", admin, tok)) {
			t.Fatalf("the refused logout ended the session")
		}
		r := c.signedRequest(th, "POST", srv.URL+"/json/sessions?_action=logout", sessionsAPI, tok, 50, nil)
		if got := expectStatus(t, r, 200); got["result"] != "Successfully logged out" {
			t.Errorf("signed logout = %s", r.body)
		}
		if valid(t, c.adminSession("validate", admin, tok)) {
			t.Errorf("session valid after signed logout")
		}
		expectCREST(t, s.things("GET", "", "/", nil), 401, "")
	})
	t.Run("signed logout with the things api is refused", func(t *testing.T) {
		th := newThing(t, "api-thing")
		c.createThing(admin, "/", th, nil)
		tok := c.mustPoP(th, "auth-tree", "/")
		body := signPayload(t, th, srv.URL+"/json/sessions?_action=logout", thingsAPI, 0, map[string]any{"csrf": tok})
		expectCREST(t, c.sendJOSE("POST", srv.URL+"/json/sessions?_action=logout", sessionsAPI, tok, body), 401, "")
		if !valid(t, c.adminSession("validate", admin, tok)) {
			t.Errorf("the refused logout ended the session")
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		tok := c.userLogin("alice", "pa55word")
		expectCREST(t, c.session("refresh", tok, nil), 501, "refresh")
		expectCREST(t, c.do("GET", srv.URL+"/json/sessions?_action=validate", nil, "Cookie: iPlanetDirectoryPro="+tok), 405, "")
	})
}
