package amtest_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest"
)

// deviceSetup starts a clocked server with a PoP-authenticated thing and a
// human user bjensen, and returns the thing's restricted session.
func deviceSetup(t *testing.T) (*amtest.Server, *client, *fakeClock, *restricted, string) {
	t.Helper()
	srv, c, clk := startClocked(t, nil)
	admin := c.adminLogin()
	th := newThing(t, "user-authorized-thing")
	c.createThing(admin, "/", th, nil)
	if r := c.putIdentity(admin, "/", "bjensen", map[string]any{"userPassword": "Ch4ng31t"}); r.status != 201 {
		t.Fatalf("create bjensen: %d %s", r.status, r.body)
	}
	return srv, c, clk, c.restrictedSession(th, c.mustPoP(th, "auth-tree", "/")), admin
}

// consent posts the decision as the functional-test harness does.
func (c *client) consent(uri, userToken, userCode, decision string) response {
	c.t.Helper()
	form := url.Values{"user_code": {userCode}, "decision": {decision}, "csrf": {userToken}}
	return c.do("POST", uri, []byte(form.Encode()), "Content-Type: application/x-www-form-urlencoded",
		"Cookie: iPlanetDirectoryPro="+userToken)
}

func expectDeviceError(t *testing.T, r response, status int, code string) {
	t.Helper()
	m := expectCREST(t, r, status, "")
	if d, _ := m["detail"].(map[string]any); d["error"] != code {
		t.Errorf("detail = %v, want error %q", m["detail"], code)
	}
}

func TestDeviceGrantAllow(t *testing.T) {
	_, c, clk, s, _ := deviceSetup(t)
	r := s.things("POST", "get_user_code", "/", map[string]any{"scope": []string{"publish", "subscribe"}})
	dc := expectStatus(t, r, 200)
	uri := dc["verification_uri"].(string)
	if !strings.HasSuffix(uri, "/openam/oauth2/device/user") || dc["verification_uri_complete"] != uri+"?user_code="+dc["user_code"].(string) ||
		dc["expires_in"] != float64(300) || dc["interval"] != float64(5) || len(dc["user_code"].(string)) != 8 {
		t.Errorf("device authorization = %v", dc)
	}
	code := dc["device_code"].(string)
	poll := func() response { return s.things("POST", "get_user_token", "/", map[string]any{"device_code": code}) }

	expectDeviceError(t, poll(), 403, "authorization_pending")
	clk.Advance(2 * time.Second)
	expectDeviceError(t, poll(), 403, "slow_down")
	clk.Advance(5 * time.Second)
	expectDeviceError(t, poll(), 403, "authorization_pending")

	user := c.userLogin("bjensen", "Ch4ng31t")
	page := c.consent(uri, user, dc["user_code"].(string), "allow")
	if page.status != 200 || !strings.Contains(string(page.body), "done: true") || strings.Contains(string(page.body), "errorCode") {
		t.Fatalf("consent page: %d %s", page.status, page.body)
	}
	if xfo := page.header.Get("X-Frame-Options"); xfo != "DENY" {
		t.Errorf("X-Frame-Options = %q", xfo)
	}
	clk.Advance(5 * time.Second)
	tok := expectStatus(t, poll(), 200)
	if tok["scope"] != "publish subscribe" || tok["refresh_token"] == nil {
		t.Fatalf("user token = %v", tok)
	}
	// The token is the user's, and the thing can introspect and refresh it.
	in := expectStatus(t, s.things("POST", "introspect_token", "/", map[string]any{"token": tok["access_token"]}), 200)
	if in["active"] != true || in["sub"] != "(usr!bjensen)" || in["subname"] != "bjensen" || in["scope"] != "publish subscribe" {
		t.Errorf("introspection = %v", in)
	}
	ref := expectStatus(t, s.things("POST", "get_access_token", "/", map[string]any{"refresh_token": tok["refresh_token"], "scope": []string{"publish"}}), 200)
	if ref["scope"] != "publish" {
		t.Errorf("refresh = %v", ref)
	}
	up := s.things("POST", "get_access_token", "/", map[string]any{"refresh_token": ref["refresh_token"], "scope": []string{"publish", "subscribe"}})
	expectThingsOAuth(t, up, "invalid_scope", "invalid_scope")
	// A device code is good for one token.
	clk.Advance(5 * time.Second)
	expectDeviceError(t, poll(), 400, "invalid_grant")
}

func TestDeviceGrantFailures(t *testing.T) {
	t.Run("deny", func(t *testing.T) {
		_, c, clk, s, _ := deviceSetup(t)
		dc := expectStatus(t, s.things("POST", "get_user_code", "/", map[string]any{"scope": []string{"publish"}}), 200)
		user := c.userLogin("bjensen", "Ch4ng31t")
		if page := c.consent(dc["verification_uri"].(string), user, dc["user_code"].(string), "deny"); !strings.Contains(string(page.body), "done: true") {
			t.Fatalf("deny page: %s", page.body)
		}
		clk.Advance(5 * time.Second)
		expectDeviceError(t, s.things("POST", "get_user_token", "/", map[string]any{"device_code": dc["device_code"]}), 403, "authorization_declined")
	})
	t.Run("expired", func(t *testing.T) {
		_, c, clk, s, _ := deviceSetup(t)
		dc := expectStatus(t, s.things("POST", "get_user_code", "/", map[string]any{"scope": []string{"publish"}}), 200)
		clk.Advance(301 * time.Second)
		expectDeviceError(t, s.things("POST", "get_user_token", "/", map[string]any{"device_code": dc["device_code"]}), 403, "expired_token")
		user := c.userLogin("bjensen", "Ch4ng31t")
		if page := c.consent(dc["verification_uri"].(string), user, dc["user_code"].(string), "allow"); !strings.Contains(string(page.body), `errorCode: "expired_token"`) {
			t.Errorf("consent on an expired code: %s", page.body)
		}
	})
	t.Run("unsupported scope", func(t *testing.T) {
		_, _, _, s, _ := deviceSetup(t)
		expectThingsOAuth(t, s.things("POST", "get_user_code", "/", map[string]any{"scope": []string{"delete"}}), "invalid_scope", "Unknown/invalid scope(s)")
	})
	t.Run("wrong thing polling", func(t *testing.T) {
		_, c, _, s, admin := deviceSetup(t)
		dc := expectStatus(t, s.things("POST", "get_user_code", "/", map[string]any{"scope": []string{"publish"}}), 200)
		other := newThing(t, "other-thing")
		c.createThing(admin, "/", other, nil)
		os := c.restrictedSession(other, c.mustPoP(other, "auth-tree", "/"))
		expectDeviceError(t, os.things("POST", "get_user_token", "/", map[string]any{"device_code": dc["device_code"]}), 400, "invalid_grant")
	})
	t.Run("consent errors", func(t *testing.T) {
		_, c, _, s, _ := deviceSetup(t)
		dc := expectStatus(t, s.things("POST", "get_user_code", "/", map[string]any{"scope": []string{"publish"}}), 200)
		uri, ucode := dc["verification_uri"].(string), dc["user_code"].(string)
		user := c.userLogin("bjensen", "Ch4ng31t")
		for name, tc := range map[string]struct{ token, csrf, code, decision, want string }{
			"no session":    {"", "", ucode, "allow", "not_authenticated"},
			"csrf mismatch": {user, "other", ucode, "allow", "invalid_csrf"},
			"bad code":      {user, user, "NOPE1234", "allow", "invalid_user_code"},
			"bad decision":  {user, user, ucode, "maybe", "invalid_decision"},
		} {
			form := url.Values{"user_code": {tc.code}, "decision": {tc.decision}, "csrf": {tc.csrf}}
			r := c.do("POST", uri, []byte(form.Encode()), "Content-Type: application/x-www-form-urlencoded", "Cookie: iPlanetDirectoryPro="+tc.token)
			if !strings.Contains(string(r.body), `errorCode: "`+tc.want+`"`) {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
		}
		// None of them decided anything.
		expectDeviceError(t, s.things("POST", "get_user_token", "/", map[string]any{"device_code": dc["device_code"]}), 403, "authorization_pending")
	})
}

// User codes are upper case and compared without regard to case or the
// separators people type (RFC 8628 §6.1): "abcd-efgh" is ABCDEFGH.
func TestUserCodeTypedLoosely(t *testing.T) {
	_, c, clk, s, _ := deviceSetup(t)
	dc := expectStatus(t, s.things("POST", "get_user_code", "/", map[string]any{"scope": []string{"publish"}}), 200)
	code := dc["user_code"].(string)
	if strings.ToUpper(code) != code || strings.ContainsAny(code, "01IO") {
		t.Errorf("user code %q: want upper case without 0, 1, I or O", code)
	}
	typed := strings.ToLower(code[:4]) + "-" + strings.ToLower(code[4:])
	user := c.userLogin("bjensen", "Ch4ng31t")
	page := c.consent(dc["verification_uri"].(string), user, typed, "allow")
	if page.status != 200 || !strings.Contains(string(page.body), "done: true") || strings.Contains(string(page.body), "errorCode") {
		t.Fatalf("consent with %q for %q: %d %s", typed, code, page.status, page.body)
	}
	clk.Advance(5 * time.Second)
	expectStatus(t, s.things("POST", "get_user_token", "/", map[string]any{"device_code": dc["device_code"]}), 200)
}
