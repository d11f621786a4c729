package amtest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest"
)

// The browser test drives Debian's Chromium, headless, through the real
// pages of the device authorization grant while the thing polls, as a
// person and a thing would. Chromium runs with scripts disabled: the flow
// must work without JavaScript.
//
// It is skipped when /usr/bin/chromium (or $CHROMIUM) is missing, unless the
// environment variable CI is set: then it fails. Screenshots of every step,
// at phone (390×844) and desktop (1280×800) sizes, are kept in
// $TEST_ARTIFACTS/<test> (default testdata/artifacts/<test>) when the test
// fails, or always when THINGWAY_SCREENSHOTS is set.

func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the browser test needs Chromium in CI: %v (.ci/run installs the Debian package chromium)", err)
		}
		t.Skipf("skipping the browser test: %s not found (apt-get install chromium to run it; with CI set it fails instead)", p)
	}
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("skipping the browser test in -short mode")
	}
	return p
}

// shots collects screenshots in a temporary directory and keeps them as
// test artefacts when the test fails (or THINGWAY_SCREENSHOTS is set).
type shots struct {
	dir string
	n   int
}

func newShots(t *testing.T) *shots {
	s := &shots{dir: t.TempDir()}
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("THINGWAY_SCREENSHOTS") == "" {
			return
		}
		base := os.Getenv("TEST_ARTIFACTS")
		if base == "" {
			base = filepath.Join("testdata", "artifacts")
		}
		dst := filepath.Join(base, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
		if err := os.RemoveAll(dst); err != nil {
			t.Logf("screenshots: %v", err)
			return
		}
		if err := os.CopyFS(dst, os.DirFS(s.dir)); err != nil {
			t.Logf("screenshots: %v", err)
			return
		}
		abs, _ := filepath.Abs(dst)
		t.Logf("screenshots kept in %s", abs)
	})
	return s
}

// take screenshots the tab's page at phone and desktop sizes, then
// restores the tab's viewport.
func (s *shots) take(tb *tab, name string, restore viewport) error {
	s.n++
	for _, vp := range []viewport{phone, desktop} {
		if err := tb.resize(vp); err != nil {
			return err
		}
		if err := tb.screenshot(filepath.Join(s.dir, fmt.Sprintf("%02d-%s-%s.png", s.n, name, vp.Name))); err != nil {
			return err
		}
	}
	return tb.resize(restore)
}

// browserFixture is a local AM with a thing (PoP session) and bjensen, and a
// running Chromium.
type browserFixture struct {
	srv   *amtest.Server
	c     *client
	thing *restricted
	b     *browser
	clock *fakeClock // the local AM's
}

const bjensenPassword = "Ch4ng31t"

func newBrowserFixture(t *testing.T) *browserFixture {
	t.Helper()
	path := chromiumPath(t)
	cfg := amtest.DefaultConfig()
	cfg.Realms["/"].OAuth2.Device.DevicePollInterval = 1
	srv, c, clk := startClocked(t, cfg)
	admin := c.adminLogin()
	th := newThing(t, "user-authorized-thing")
	c.createThing(admin, "/", th, nil)
	if r := c.putIdentity(admin, "/", "bjensen", map[string]any{"userPassword": bjensenPassword}); r.status != 201 {
		t.Fatalf("create bjensen: %d %s", r.status, r.body)
	}
	b, err := startBrowser(path, t.TempDir())
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(b.Close) // before the profile directory is removed
	v, err := b.version()
	if err != nil {
		t.Fatalf("chromium does not answer: %v", err)
	}
	t.Logf("browser: %s", v)
	return &browserFixture{srv: srv, c: c, thing: c.restrictedSession(th, c.mustPoP(th, "auth-tree", "/")), b: b, clock: clk}
}

// userCode starts a device authorization for the thing.
func (f *browserFixture) userCode(t *testing.T, scopes ...string) map[string]any {
	t.Helper()
	return expectStatus(t, f.thing.things("POST", "get_user_code", "/", map[string]any{"scope": scopes}), 200)
}

// pollUserToken polls get_user_token as the SDK does: once before the
// user acts in the browser (run), which must answer authorization_pending,
// then, with the local AM's clock moved past the poll interval, once after
// the browser has finished; a browser error fails the test.
func (f *browserFixture) pollUserToken(t *testing.T, deviceCode string, run func() error) response {
	t.Helper()
	poll := func() response {
		return f.thing.things("POST", "get_user_token", "/", map[string]any{"device_code": deviceCode})
	}
	r := poll()
	if detail, _ := r.json(t)["detail"].(map[string]any); r.status == 200 || detail["error"] != "authorization_pending" {
		t.Fatalf("poll before the user acted: %d %s, want authorization_pending", r.status, r.body)
	}
	if err := run(); err != nil {
		t.Fatalf("browser: %v", err)
	}
	f.clock.Advance(2 * time.Second) // past the poll interval: no slow_down
	return poll()
}

// checkConsole fails the test on console errors, such as a style sheet
// the Content-Security-Policy refused.
func (f *browserFixture) checkConsole(t *testing.T, tb *tab) {
	t.Helper()
	if errs := tb.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

func TestBrowserDeviceGrant(t *testing.T) {
	f := newBrowserFixture(t)

	t.Run("allow", func(t *testing.T) {
		shots := newShots(t)
		dc := f.userCode(t, "publish", "subscribe")
		tb, err := f.b.newTab(t, phone)
		if err != nil {
			t.Fatal(err)
		}
		step := func(name string, err error) error {
			if err != nil {
				shots.take(tb, "failed-"+strings.ReplaceAll(name, " ", "-"), phone)
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		}
		r := f.pollUserToken(t, dc["device_code"].(string), func() error {
			if err := tb.navigate(dc["verification_uri_complete"].(string)); err != nil {
				return err
			}
			if _, err := tb.waitFor("#password", ""); err != nil {
				return step("sign-in page", err)
			}
			if err := shots.take(tb, "signin", phone); err != nil {
				return err
			}
			// A wrong password first: a clear message, the user name kept.
			for _, e := range []error{tb.typeInto("#username", "bjensen"), tb.typeInto("#password", "wrong"), tb.click("main button[type=submit]")} {
				if err := step("sign in", e); err != nil {
					return err
				}
			}
			if _, err := tb.waitFor("[role=alert]", "user name or password is not correct"); err != nil {
				return step("sign-in failure", err)
			}
			if err := shots.take(tb, "signin-failed", phone); err != nil {
				return err
			}
			for _, e := range []error{tb.typeInto("#password", bjensenPassword), tb.click("main button[type=submit]")} {
				if err := step("sign in", e); err != nil {
					return err
				}
			}
			for sel, want := range map[string]string{"#consent-thing": "user-authorized-thing",
				"#consent-client": "forgerock-iot-oauth2-client", "#consent-scopes": "<code>subscribe</code>",
				"header": "bjensen"} {
				if _, err := tb.waitFor(sel, want); err != nil {
					return step("consent page", err)
				}
			}
			if _, err := tb.waitFor("#consent-scopes", "<code>publish</code>"); err != nil {
				return step("consent page", err)
			}
			if err := shots.take(tb, "consent", phone); err != nil {
				return err
			}
			if err := step("allow", tb.click("#allow")); err != nil {
				return err
			}
			if _, err := tb.waitFor("#message-title", "Device connected"); err != nil {
				return step("result page", err)
			}
			return shots.take(tb, "allowed", phone)
		})
		tok := expectStatus(t, r, 200)
		if tok["scope"] != "publish subscribe" || tok["refresh_token"] == nil {
			t.Errorf("user token = %v", tok)
		}
		in := expectStatus(t, f.thing.things("POST", "introspect_token", "/", map[string]any{"token": tok["access_token"]}), 200)
		if in["active"] != true || in["sub"] != "(usr!bjensen)" || in["subname"] != "bjensen" || in["scope"] != "publish subscribe" {
			t.Errorf("introspection = %v", in)
		}
		f.checkConsole(t, tb)
	})

	t.Run("deny", func(t *testing.T) {
		shots := newShots(t)
		dc := f.userCode(t, "publish")
		tb, err := f.b.newTab(t, desktop)
		if err != nil {
			t.Fatal(err)
		}
		step := func(name string, err error) error {
			if err != nil {
				shots.take(tb, "failed-"+strings.ReplaceAll(name, " ", "-"), desktop)
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		}
		r := f.pollUserToken(t, dc["device_code"].(string), func() error {
			// The verification URI without the code: sign in, then type the code.
			if err := tb.navigate(dc["verification_uri"].(string)); err != nil {
				return err
			}
			if _, err := tb.waitFor("#password", ""); err != nil {
				return step("sign-in page", err)
			}
			for _, e := range []error{tb.typeInto("#username", "bjensen"), tb.typeInto("#password", bjensenPassword), tb.click("main button[type=submit]")} {
				if err := step("sign in", e); err != nil {
					return err
				}
			}
			if _, err := tb.waitFor("#user_code", ""); err != nil {
				return step("code page", err)
			}
			if err := shots.take(tb, "code", desktop); err != nil {
				return err
			}
			// A wrong code first.
			for _, e := range []error{tb.typeInto("#user_code", "NOPE2345"), tb.click("main button[type=submit]")} {
				if err := step("code", e); err != nil {
					return err
				}
			}
			if _, err := tb.waitFor("[role=alert]", "That code is not valid"); err != nil {
				return step("bad code", err)
			}
			if err := shots.take(tb, "code-invalid", desktop); err != nil {
				return err
			}
			// The form keeps what was typed: clear it, then type the right code.
			if err := step("clear code", tb.navigate(dc["verification_uri"].(string))); err != nil {
				return err
			}
			if _, err := tb.waitFor("#user_code", ""); err != nil {
				return step("code page", err)
			}
			for _, e := range []error{tb.typeInto("#user_code", dc["user_code"].(string)), tb.click("main button[type=submit]")} {
				if err := step("code", e); err != nil {
					return err
				}
			}
			if _, err := tb.waitFor("#consent-thing", "user-authorized-thing"); err != nil {
				return step("consent page", err)
			}
			if err := shots.take(tb, "consent", desktop); err != nil {
				return err
			}
			if err := step("deny", tb.click("#deny")); err != nil {
				return err
			}
			if _, err := tb.waitFor("#message-title", "Access denied"); err != nil {
				return step("result page", err)
			}
			if err := shots.take(tb, "denied", desktop); err != nil {
				return err
			}
			// The code cannot be used again.
			if err := tb.navigate(dc["verification_uri_complete"].(string)); err != nil {
				return err
			}
			if _, err := tb.waitFor("#message-title", "already been used"); err != nil {
				return step("used code", err)
			}
			return shots.take(tb, "code-used", desktop)
		})
		expectDeviceError(t, r, 403, "authorization_declined")
		f.checkConsole(t, tb)
	})

	t.Run("identities", func(t *testing.T) {
		shots := newShots(t)
		tb, err := f.b.newTab(t, desktop)
		if err != nil {
			t.Fatal(err)
		}
		must := func(name string, err error) {
			t.Helper()
			if err != nil {
				shots.take(tb, "failed-"+strings.ReplaceAll(name, " ", "-"), desktop)
				t.Fatalf("%s: %v", name, err)
			}
		}
		must("open", tb.navigate(f.srv.URL+"/ui/identities?realm=/"))
		_, err = tb.waitFor("#password", "")
		must("sign-in page", err)
		// bjensen is not the administrator.
		must("type", tb.typeInto("#username", "bjensen"))
		must("type", tb.typeInto("#password", bjensenPassword))
		must("submit", tb.click("main button[type=submit]"))
		_, err = tb.waitFor("#message-title", "Administrators only")
		must("refusal", err)
		must("screenshot", shots.take(tb, "identities-refused", desktop))
		must("sign out", tb.click("header button"))
		_, err = tb.waitFor("#password", "")
		must("sign-in page after sign-out", err)
		must("type", tb.typeInto("#username", "amAdmin"))
		must("type", tb.typeInto("#password", "changeit"))
		must("submit", tb.click("main button[type=submit]"))
		_, err = tb.waitFor("table", "user-authorized-thing")
		must("identities table", err)
		page, err := tb.html()
		must("page", err)
		for _, want := range []string{"bjensen", `<span class="tag">device</span>`, f.thing.th.kid} {
			if !strings.Contains(page, want) {
				t.Errorf("identities page lacks %q", want)
			}
		}
		for _, secret := range []string{"userPassword", "pbkdf2", bjensenPassword, "5tr0ngG3n3r@ted"} {
			if strings.Contains(page, secret) {
				t.Errorf("identities page shows %q", secret)
			}
		}
		must("screenshot", shots.take(tb, "identities", desktop))
		f.checkConsole(t, tb)
	})
}
