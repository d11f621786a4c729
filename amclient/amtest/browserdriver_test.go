package amtest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
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
)

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
