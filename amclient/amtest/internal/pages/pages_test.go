package pages

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// Every kind of page renders, escapes what it shows, and carries pageData
// only when given.
func TestRender(t *testing.T) {
	for _, tc := range []struct {
		v    View
		want []string
	}{
		{View{Kind: "signin", Title: "Sign in", Realm: "/", LoginAction: "/ui/login", Username: `<b>x</b>`},
			[]string{"<title>Sign in · Thingway local AM</title>", `action="/ui/login"`, "&lt;b&gt;x&lt;/b&gt;"}},
		{View{Kind: "code", Title: "Connect a device", Realm: "/", PageData: &Data{ErrorCode: "invalid_user_code", Realm: "/"}},
			[]string{`var pageData = { errorCode: "invalid_user_code", realm: "/" }`}},
		{View{Kind: "consent", Title: "Allow this device?", Realm: "/sub", Scopes: []string{"publish"}, PageData: &Data{Realm: "/sub"}},
			[]string{"publish", `var pageData = { done: true, realm: "/sub" }`}},
		{View{Kind: "message", Title: "Not found", Heading: "Page not found", Lines: []string{"a <line>"}},
			[]string{"Page not found", "a &lt;line&gt;"}},
		{View{Kind: "identities", Title: "Identities", Realm: "/", Listed: true, Identities: []IdentityRow{{ID: "thing-1", Keys: []string{"kid-1"}}}},
			[]string{"thing-1", "kid-1"}},
	} {
		var b strings.Builder
		if err := Render(&b, &tc.v); err != nil {
			t.Fatalf("%s: %v", tc.v.Kind, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s page lacks %q:\n%s", tc.v.Kind, w, b.String())
			}
		}
		if tc.v.PageData == nil && strings.Contains(b.String(), "pageData") {
			t.Errorf("%s page carries pageData it was not given", tc.v.Kind)
		}
	}
}

// The CSP allows the inline style sheet by its hash, and nothing else.
func TestSetHeaders(t *testing.T) {
	h := http.Header{}
	SetHeaders(h)
	sum := sha256.Sum256([]byte(css))
	if p := h.Get("Content-Security-Policy"); !strings.Contains(p, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") ||
		!strings.Contains(p, "default-src 'none'") || !strings.Contains(p, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", p)
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", h)
	}
}
