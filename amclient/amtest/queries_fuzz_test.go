package amtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/thingway/thingway/amclient/amtest"
)

// queryTarget is one endpoint of FuzzQueries: how it is called and with
// whose session.
type queryTarget struct {
	method, path string
	as           string // "admin", "thing" or "" (no session)
	form         bool   // the body is a form (OAuth 2.0 endpoints, pages)
	page         bool   // the answer may be a web page
}

// queryTargets are the endpoints that read their query string or a form.
var queryTargets = []queryTarget{
	{method: "GET", path: "/json/realms/root/users", as: "admin"}, // CREST query: _queryFilter, _queryId, _fields
	{method: "GET", path: "/json/realms/root/users/fuzz-thing", as: "admin"},
	{method: "GET", path: "/json/things/*", as: "thing"}, // attributes: _fields, realm
	{method: "POST", path: "/json/things/*", as: "thing"},
	{method: "POST", path: "/json/authenticate"}, // authIndexType, authIndexValue, realm, service
	{method: "POST", path: "/json/sessions", as: "thing"},
	{method: "GET", path: "/json/serverinfo/*"},
	{method: "GET", path: "/json/realms/root/realm-config/authentication/authenticationtrees/trees", as: "admin"},
	{method: "GET", path: "/json/realms/root/realm-config/agents/OAuth2Client", as: "admin"},
	{method: "GET", path: "/json/global-config/realms", as: "admin"},
	{method: "POST", path: "/oauth2/access_token", form: true},
	{method: "POST", path: "/oauth2/introspect", form: true},
	{method: "POST", path: "/oauth2/token/revoke", form: true},
	{method: "GET", path: "/oauth2/.well-known/openid-configuration"},
	{method: "GET", path: "/oauth2/realms/root/connect/jwk_uri"},
	{method: "POST", path: "/oauth2/device/user", form: true, page: true},
	{method: "GET", path: "/oauth2/device/user", page: true},
}

// requestTarget percent-encodes the bytes of q that may not appear in a
// request target, keeping "%" so that the fuzzer's escapes reach AM's
// parser as they are.
func requestTarget(q string) string {
	const safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/?%"
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if strings.IndexByte(safe, q[i]) >= 0 {
			b.WriteByte(q[i])
		} else {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[q[i]>>4])+string("0123456789abcdef"[q[i]&15])))
		}
	}
	return b.String()
}

// FuzzQueries sends requests with arbitrary query strings and bodies (a
// form for the OAuth 2.0 endpoints and pages) to a local AM over HTTP, to
// the endpoints that read them: CREST queries (_queryFilter, _queryId,
// _fields), the things endpoint's actions and attribute reads,
// authentication's index parameters, session actions, server
// information, the OAuth 2.0 token, introspection and revocation
// endpoints and the device-flow page. The answer is never a 5xx other
// than AM's own 501 for what it does not implement and its 503 for too
// many authentications in progress; an error from a JSON endpoint is a
// JSON object; and AM still answers a normal request afterwards.
func FuzzQueries(f *testing.F) {
	seeds := []struct {
		which      int
		query      string
		body       string
		form, json bool
	}{
		{0, "_queryFilter=true&_fields=username,thingType", "", false, false},
		{0, "_queryId=fuzz*&_fields=cn", "", false, false},
		{0, "_queryId=%FF", "", false, false},
		{0, "_queryFilter=userName+eq+%22x%22", "", false, false},
		{1, "_fields=thingConfig,_id", "", false, false},
		{2, "realm=/&_fields=thingConfig,thingType", "", false, false},
		{3, "_action=get_access_token&realm=/", `{"scope":["publish"]}`, false, true},
		{3, "_action=introspect_token", `{"token":"x"}`, false, true},
		{3, "_action=get_user_code", `{}`, false, true},
		{3, "_action=get_user_token", `{"device_code":"d"}`, false, true},
		{3, "_action=nope", ``, false, true},
		{4, "authIndexType=service&authIndexValue=ldapService&realm=/", `{}`, false, true},
		{4, "authIndexType=composite_advice&authIndexValue=%3CAdvices%3E", `{}`, false, true},
		{4, "service=auth-tree&realm=%2Frealms%2Froot", `{}`, false, true},
		{5, "_action=validate", `{"tokenId":"x"}`, false, true},
		{5, "_action=getSessionInfo", ``, false, true},
		{6, "_fields=cookieName", "", false, false},
		{7, "_queryFilter=true", "", false, false},
		{8, "_queryFilter=true&_fields=_id", "", false, false},
		{9, "_queryFilter=false", "", false, false},
		{10, "realm=/", "grant_type=client_credentials&client_id=forgerock-iot-oauth2-client&client_secret=x&scope=publish", true, false},
		{10, "", "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=a.b.c&scope=a%20b", true, false},
		{10, "", "grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=d&client_id=c", true, false},
		{10, "", "grant_type=refresh_token&refresh_token=r&client_id=c&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=x.y.z", true, false},
		{11, "", "token=eyJ0eXAiOiJKV1QifQ.e30.&client_id=c&client_secret=s", true, false},
		{12, "", "token=x&token_type_hint=refresh_token", true, false},
		{13, "realm=/", "", false, false},
		{14, "", "", false, false},
		{15, "user_code=ABCD-EFGH", "user_code=abcd-efgh&decision=allow&csrf=x", true, false},
		{16, "user_code=%00", "", false, false},
	}
	for _, s := range seeds {
		f.Add(s.which, s.query, []byte(s.body))
	}

	srv := amtest.NewServer()
	f.Cleanup(srv.Close)
	hc := srv.Client()
	do := func(method, target string, body io.Reader, headers ...string) (*http.Response, []byte, error) {
		req, err := http.NewRequest(method, srv.URL, body)
		if err != nil {
			return nil, nil, err
		}
		path, query, _ := strings.Cut(target, "?")
		req.URL.Path, req.URL.RawPath, req.URL.RawQuery = req.URL.Path+path, "", query
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		res, err := hc.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res, b, err
	}
	login := func(tb testing.TB, user, password string) string {
		tb.Helper()
		res, b, err := do("POST", "/json/authenticate", nil, "X-OpenAM-Username: "+user, "X-OpenAM-Password: "+password,
			"Accept-API-Version: resource=2.0, protocol=1.0", "Content-Type: application/json")
		var v struct{ TokenID string }
		if err != nil || res.StatusCode != 200 || json.Unmarshal(b, &v) != nil || v.TokenID == "" {
			tb.Fatalf("login %s: %v %v %s", user, res, err, b)
		}
		return v.TokenID
	}
	admin := login(f, "amAdmin", "changeit")
	if res, b, err := do("PUT", "/json/realms/root/users/fuzz-thing", strings.NewReader(`{"userPassword":"fuzz-password","thingType":"device"}`),
		"Cookie: iPlanetDirectoryPro="+admin, "Content-Type: application/json", "Accept-API-Version: resource=4.0, protocol=2.1"); err != nil || res.StatusCode != 201 {
		f.Fatalf("creating the thing: %v %v %s", res, err, b)
	}

	execs := 0
	f.Fuzz(func(t *testing.T, which int, query string, body []byte) {
		if execs++; execs%10000 == 0 {
			admin = login(t, "amAdmin", "changeit") // before the session's 2 hours are up
		}
		tg := queryTargets[uint(which)%uint(len(queryTargets))]
		headers := []string{"Accept-API-Version: protocol=2.0,resource=1.0", "Content-Type: application/json"}
		switch {
		case tg.form:
			headers[1] = "Content-Type: application/x-www-form-urlencoded"
		case strings.HasPrefix(tg.path, "/json/realms/root/users"), strings.HasPrefix(tg.path, "/json/sessions"):
			headers[0] = "Accept-API-Version: resource=4.0, protocol=2.1"
		case strings.HasPrefix(tg.path, "/json/authenticate"), strings.HasPrefix(tg.path, "/json/serverinfo"):
			headers[0] = "Accept-API-Version: resource=2.0, protocol=1.0"
		}
		switch tg.as {
		case "admin":
			headers = append(headers, "Cookie: iPlanetDirectoryPro="+admin)
		case "thing":
			tok := login(t, "fuzz-thing", "fuzz-password")
			headers = append(headers, "Cookie: iPlanetDirectoryPro="+tok)
			// The session ends with the input, unless the input ended it.
			defer do("POST", "/json/sessions?_action=logout", nil, "Cookie: iPlanetDirectoryPro="+tok,
				"Accept-API-Version: resource=4.0, protocol=2.1", "Content-Type: application/json")
		}
		target := tg.path
		if query != "" {
			target += "?" + requestTarget(query)
		}
		var rd io.Reader
		if tg.method == "POST" {
			rd = strings.NewReader(string(body))
		}
		res, b, err := do(tg.method, target, rd, headers...)
		if err != nil {
			t.Fatalf("%s %s: %v (the server dropped the connection: a panic?)", tg.method, target, err)
		}
		switch code := res.StatusCode; {
		case code == http.StatusNotImplemented:
		case code == http.StatusServiceUnavailable && tg.path == "/json/authenticate":
		case code >= 500:
			t.Fatalf("%s %s: %d %s", tg.method, target, code, b)
		case code >= 400 && !tg.page && res.Header.Get("Content-Type") != "text/plain; charset=utf-8":
			// net/http's own 400s (a request target it cannot parse) are
			// text; AM's are JSON objects.
			var v map[string]any
			if json.Unmarshal(b, &v) != nil {
				t.Fatalf("%s %s: %d with a body that is not a JSON object: %q", tg.method, target, code, b)
			}
		}
		// AM still answers.
		if res, b, err := do("GET", "/json/serverinfo/*?_fields=cookieName", nil, "Accept-API-Version: resource=1.1, protocol=1.0"); err != nil || res.StatusCode != 200 {
			t.Fatalf("server information after %s %s: %v %v %s", tg.method, target, res, err, b)
		}
	})
}
