package amtest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
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

// The browser is driven with chromedp (github.com/chromedp/chromedp): it
// starts Chromium, speaks the DevTools protocol to it and tracks each page's
// DOM, so that the test waits on the page itself. Pages are driven with the
// DOM and Input domains only (real mouse clicks and key presses), since
// their scripts are disabled.

// actionTimeout bounds each step of the browser test: a page that does not
// reach the state a step waits for fails the test after it, never sooner.
const actionTimeout = 15 * time.Second

// browser is a headless Chromium under the test's control.
type browser struct {
	ctx         context.Context // chromedp's, for the browser
	cancel      context.CancelFunc
	cancelAlloc context.CancelFunc
	out         *limitedWriter // the head of Chromium's output
}

// chromiumFlags are the flags, besides chromedp's defaults, that this
// machine's Chromium needs headless: no sandbox as root, and nothing that
// reaches for Google's servers.
var chromiumFlags = []chromedp.ExecAllocatorOption{chromedp.NoSandbox, chromedp.DisableGPU,
	chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
	chromedp.Flag("mute-audio", true), chromedp.Flag("hide-scrollbars", true)}

// startBrowser starts Chromium at path with a fresh profile in profileDir.
func startBrowser(path, profileDir string) (*browser, error) {
	out := &limitedWriter{max: 64 << 10}
	opts := append(append(chromedp.DefaultExecAllocatorOptions[:], chromiumFlags...),
		chromedp.ExecPath(path), chromedp.UserDataDir(profileDir), chromedp.CombinedOutput(out))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &browser{ctx: ctx, cancel: cancel, cancelAlloc: cancelAlloc, out: out}
	// The first run starts Chromium and binds its life to ctx, which has no
	// deadline; a Chromium that does not start is bounded by the timer.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("%w: %s", err, out)
		}
	case <-time.After(time.Minute):
		b.Close()
		return nil, fmt.Errorf("chromium did not start within a minute: %s", out)
	}
	return b, nil
}

// version is the browser's product name and version.
func (b *browser) version() (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.CallBrowser(ctx, cdpbrowser.GetVersion, cdp.Empty{})
	return v.Product, err
}

// Close asks Chromium to quit, and kills it if it does not within seconds.
func (b *browser) Close() {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	chromedp.Cancel(ctx)
	b.cancel()
	b.cancelAlloc()
}

// limitedWriter keeps the first max bytes written to it.
type limitedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// String is the head of what was written, for failure messages.
func (w *limitedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.TrimSpace(w.buf.String())
	if len(s) > 2000 {
		s = s[:2000] + "..."
	}
	return s
}

// tab is a page in its own browser context (its own cookie jar), with
// scripts disabled. It keeps the page's console errors.
type tab struct {
	ctx context.Context // chromedp's, for the tab

	mu       sync.Mutex
	consoles []string
}

type viewport struct {
	Name          string
	Width, Height int64
	Mobile        bool
}

var (
	phone   = viewport{"phone", 390, 844, true}
	desktop = viewport{"desktop", 1280, 800, false}
)

// newTab opens a tab of the viewport's size, closed when the test ends.
func (b *browser) newTab(t *testing.T, vp viewport) (*tab, error) {
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{ctx: ctx}
	// Listen opens the tab; its events come from then on, so none of the
	// pages it will show is missed.
	if err := chromedp.Listen(ctx, tb.event); err != nil {
		return nil, err
	}
	if err := tb.do(func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}); err != nil {
		return nil, err
	}
	return tb, tb.resize(vp)
}

// event keeps the messages of level error that the page logged, other
// than HTTP error statuses: CSP violations among them. It runs on
// chromedp's reading goroutine and only appends.
func (tb *tab) event(ev any) {
	e, ok := ev.(*cdplog.EventEntryAdded)
	// Network errors are the pages' own error statuses (403, 404).
	if !ok || e.Entry == nil || e.Entry.Level != cdplog.EntryLevelError || e.Entry.Source == cdplog.EntrySourceNetwork {
		return
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.consoles) < 1000 {
		tb.consoles = append(tb.consoles, fmt.Sprintf("%s: %s (%s)", e.Entry.Source, e.Entry.Text, e.Entry.URL))
	}
}

// consoleErrors returns the errors the tab's pages logged so far.
func (tb *tab) consoleErrors() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return slices.Clone(tb.consoles)
}

// do runs f on the tab with a deadline of actionTimeout.
func (tb *tab) do(f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	return f(ctx)
}

func (tb *tab) resize(vp viewport) error {
	return tb.do(func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: vp.Width, Height: vp.Height, DeviceScaleFactor: 1, Mobile: vp.Mobile})
		return err
	})
}

// navigate loads url and waits for the page to load.
func (tb *tab) navigate(url string) error {
	return tb.do(func(ctx context.Context) error { return chromedp.Do(ctx, chromedp.Navigate(url)) })
}

// waitFor waits until an element matching selector exists and, when
// contains is not empty, its HTML contains it; it returns the element's
// HTML. chromedp repeats the query until then or until the deadline.
func (tb *tab) waitFor(selector, contains string) (string, error) {
	var html, last string
	found := chromedp.ByFunc(func(ctx context.Context, t *chromedp.Target, root *chromedp.Node) ([]cdp.NodeID, error) {
		q, err := cdp.Call(ctx, t, dom.QuerySelector, dom.QuerySelectorParams{NodeID: root.NodeID, Selector: selector})
		if err != nil || q.NodeID == 0 {
			return nil, err
		}
		h, err := cdp.Call(ctx, t, dom.GetOuterHTML, dom.GetOuterHTMLParams{NodeID: q.NodeID})
		if err != nil {
			return nil, err
		}
		last = h.OuterHTML
		if !strings.Contains(h.OuterHTML, contains) {
			return nil, nil // not yet: query again
		}
		html = h.OuterHTML
		return []cdp.NodeID{q.NodeID}, nil
	})
	err := tb.do(func(ctx context.Context) error { return chromedp.Do(ctx, chromedp.WaitReady(selector, found)) })
	switch {
	case err == nil:
		return html, nil
	case last != "":
		return "", fmt.Errorf("%s never contained %q; last: %s (%w)", selector, contains, last, err)
	default:
		return "", fmt.Errorf("no element %s appeared (%w)", selector, err)
	}
}

// html is the current document's HTML.
func (tb *tab) html() (string, error) {
	return tb.waitFor("html", "")
}

// typeInto focuses the visible element and types text as key presses.
func (tb *tab) typeInto(selector, text string) error {
	return tb.do(func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(selector), text))
	})
}

// click presses and releases the left mouse button in the middle of the
// visible element.
func (tb *tab) click(selector string) error {
	return tb.do(func(ctx context.Context) error { return chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector))) })
}

// screenshot writes a PNG of the whole page at the current viewport width.
func (tb *tab) screenshot(path string) error {
	return tb.do(func(ctx context.Context) error {
		m, err := chromedp.Call(ctx, page.GetLayoutMetrics, cdp.Empty{})
		if err != nil {
			return err
		}
		if m.CSSLayoutViewport == nil || m.CSSContentSize == nil {
			return errors.New("no layout metrics")
		}
		w := float64(m.CSSLayoutViewport.ClientWidth)
		h := max(m.CSSContentSize.Height, float64(m.CSSLayoutViewport.ClientHeight))
		r, err := chromedp.Call(ctx, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format: page.CaptureScreenshotFormatPng, CaptureBeyondViewport: new(true),
			Clip: &page.Viewport{Width: w, Height: h, Scale: 1}})
		if err != nil {
			return err
		}
		if len(r.Data) == 0 {
			return errors.New("empty screenshot")
		}
		return os.WriteFile(path, r.Data, 0o644)
	})
}
