package amtest_test

// A minimal Chrome DevTools Protocol client for the browser test. It talks
// to Chromium over --remote-debugging-pipe (NUL-separated JSON on file
// descriptors 3 and 4), so it needs no WebSocket library, and it drives
// pages with the DOM and Input domains only: real mouse clicks and typing
// on pages whose scripts are disabled.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *cdpError       `json:"error,omitempty"`
}

// browser is a headless Chromium under the test's control.
type browser struct {
	cmd    *exec.Cmd
	w      *os.File
	stderr *bytes.Buffer

	mu      sync.Mutex
	writeMu sync.Mutex
	next    int64
	waiting map[int64]chan cdpMessage
	events  []cdpMessage
	closed  chan struct{}
}

// chromiumFlags are the flags this machine's Chromium needs headless: no
// sandbox as root, and nothing that reaches for Google's servers.
var chromiumFlags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
	"--no-default-browser-check", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
	"--remote-debugging-pipe"}

// startBrowser starts Chromium with a fresh profile in profileDir.
func startBrowser(path, profileDir string) (*browser, error) {
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	resR, resW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, chromiumFlags...), "--user-data-dir="+profileDir, "about:blank")
	cmd := exec.Command(path, args...)
	cmd.ExtraFiles = []*os.File{cmdR, resW} // fd 3: commands in, fd 4: answers out
	b := &browser{cmd: cmd, w: cmdW, stderr: &bytes.Buffer{}, waiting: map[int64]chan cdpMessage{}, closed: make(chan struct{})}
	cmd.Stderr = &limitedWriter{buf: b.stderr, max: 64 << 10}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	cmdR.Close()
	resW.Close()
	go b.read(resR)
	return b, nil
}

type limitedWriter struct {
	mu  sync.Mutex
	buf *bytes.Buffer
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

func (b *browser) read(r *os.File) {
	defer close(b.closed)
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMessage
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch := b.waiting[m.ID]; ch != nil {
				ch <- m
				delete(b.waiting, m.ID)
			}
		} else if len(b.events) < 10000 {
			b.events = append(b.events, m)
		}
		b.mu.Unlock()
	}
}

// call sends a command (to a page when session is set) and decodes its result.
func (b *browser) call(ctx context.Context, session, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	ch := make(chan cdpMessage, 1)
	b.mu.Lock()
	b.next++
	id := b.next
	b.waiting[id] = ch
	b.mu.Unlock()
	msg, _ := json.Marshal(cdpMessage{ID: id, Method: method, SessionID: session, Params: p})
	b.writeMu.Lock()
	_, err = b.w.Write(append(msg, 0))
	b.writeMu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-b.closed:
		return fmt.Errorf("%s: chromium exited: %s", method, b.log())
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.waiting, id)
		b.mu.Unlock()
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// log is the head of Chromium's stderr, for failure messages.
func (b *browser) log() string {
	s := b.stderr.String()
	if len(s) > 2000 {
		s = s[:2000] + "..."
	}
	return strings.TrimSpace(s)
}

// consoleErrors returns the messages of level error that a page session
// logged, other than HTTP error statuses: CSP violations among them.
func (b *browser) consoleErrors(session string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, e := range b.events {
		if e.Method != "Log.entryAdded" || e.SessionID != session {
			continue
		}
		var p struct {
			Entry struct {
				Level, Source, Text, URL string
			} `json:"entry"`
		}
		// Network errors are the pages' own error statuses (403, 404).
		if json.Unmarshal(e.Params, &p) == nil && p.Entry.Level == "error" && p.Entry.Source != "network" {
			out = append(out, p.Entry.Source+": "+p.Entry.Text+" ("+p.Entry.URL+")")
		}
	}
	return out
}

// Close asks Chromium to quit and kills it if it does not.
func (b *browser) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	b.call(ctx, "", "Browser.close", nil, nil)
	select {
	case <-b.closed:
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
	}
	b.w.Close()
	b.cmd.Wait()
}

// tab is a page in its own browser context (its own cookie jar), with
// scripts disabled.
type tab struct {
	b       *browser
	session string
	ctx     context.Context
}

type viewport struct {
	Name          string
	Width, Height int
	Mobile        bool
}

var (
	phone   = viewport{"phone", 390, 844, true}
	desktop = viewport{"desktop", 1280, 800, false}
)

func (b *browser) newTab(ctx context.Context, vp viewport) (*tab, error) {
	var bc struct {
		BrowserContextID string `json:"browserContextId"`
	}
	if err := b.call(ctx, "", "Target.createBrowserContext", map[string]any{"disposeOnDetach": true}, &bc); err != nil {
		return nil, err
	}
	var tg struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank", "browserContextId": bc.BrowserContextID}, &tg); err != nil {
		return nil, err
	}
	var at struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": tg.TargetID, "flatten": true}, &at); err != nil {
		return nil, err
	}
	t := &tab{b: b, session: at.SessionID, ctx: ctx}
	for _, c := range []struct {
		method string
		params any
	}{
		{"Page.enable", nil},
		{"Log.enable", nil},
		{"Emulation.setScriptExecutionDisabled", map[string]any{"value": true}},
	} {
		if err := t.call(c.method, c.params, nil); err != nil {
			return nil, err
		}
	}
	return t, t.resize(vp)
}

func (t *tab) call(method string, params, result any) error {
	return t.b.call(t.ctx, t.session, method, params, result)
}

func (t *tab) resize(vp viewport) error {
	return t.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": vp.Width, "height": vp.Height,
		"deviceScaleFactor": 1, "mobile": vp.Mobile}, nil)
}

func (t *tab) navigate(url string) error {
	var r struct {
		ErrorText string `json:"errorText"`
	}
	if err := t.call("Page.navigate", map[string]any{"url": url}, &r); err != nil {
		return err
	}
	if r.ErrorText != "" {
		return fmt.Errorf("navigate %s: %s", url, r.ErrorText)
	}
	return nil
}

// query returns the node ID of the first element matching selector in the
// current document, or 0.
func (t *tab) query(selector string) (int64, error) {
	var doc struct {
		Root struct {
			NodeID int64 `json:"nodeId"`
		} `json:"root"`
	}
	if err := t.call("DOM.getDocument", map[string]any{"depth": 0}, &doc); err != nil {
		return 0, err
	}
	var q struct {
		NodeID int64 `json:"nodeId"`
	}
	if err := t.call("DOM.querySelector", map[string]any{"nodeId": doc.Root.NodeID, "selector": selector}, &q); err != nil {
		return 0, err
	}
	return q.NodeID, nil
}

// waitFor waits until an element matching selector exists and, when
// contains is not empty, its HTML contains it; it returns the element's HTML.
func (t *tab) waitFor(selector, contains string) (string, error) {
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for {
		id, err := t.query(selector)
		if err == nil && id != 0 {
			var h struct {
				OuterHTML string `json:"outerHTML"`
			}
			if err := t.call("DOM.getOuterHTML", map[string]any{"nodeId": id}, &h); err == nil {
				last = h.OuterHTML
				if contains == "" || strings.Contains(h.OuterHTML, contains) {
					return h.OuterHTML, nil
				}
			}
		}
		if time.Now().After(deadline) {
			if last != "" {
				return "", fmt.Errorf("%s never contained %q; last: %s", selector, contains, last)
			}
			return "", fmt.Errorf("no element %s appeared", selector)
		}
		if err := t.ctx.Err(); err != nil {
			return "", err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// html is the current document's HTML.
func (t *tab) html() (string, error) {
	return t.waitFor("html", "")
}

// typeInto focuses the element and types text as keyboard input.
func (t *tab) typeInto(selector, text string) error {
	id, err := t.query(selector)
	if err != nil || id == 0 {
		return fmt.Errorf("type into %s: no such element (%v)", selector, err)
	}
	if err := t.call("DOM.focus", map[string]any{"nodeId": id}, nil); err != nil {
		return err
	}
	return t.call("Input.insertText", map[string]any{"text": text}, nil)
}

// click presses and releases the left mouse button in the middle of the element.
func (t *tab) click(selector string) error {
	id, err := t.query(selector)
	if err != nil || id == 0 {
		return fmt.Errorf("click %s: no such element (%v)", selector, err)
	}
	if err := t.call("DOM.scrollIntoViewIfNeeded", map[string]any{"nodeId": id}, nil); err != nil {
		return err
	}
	var q struct {
		Quads [][]float64 `json:"quads"`
	}
	if err := t.call("DOM.getContentQuads", map[string]any{"nodeId": id}, &q); err != nil {
		return err
	}
	if len(q.Quads) == 0 || len(q.Quads[0]) != 8 {
		return fmt.Errorf("click %s: element is not visible", selector)
	}
	var x, y float64
	for i := 0; i < 8; i += 2 {
		x += q.Quads[0][i] / 4
		y += q.Quads[0][i+1] / 4
	}
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		p := map[string]any{"type": typ, "x": x, "y": y}
		if typ != "mouseMoved" {
			p["button"], p["clickCount"] = "left", 1
		}
		if err := t.call("Input.dispatchMouseEvent", p, nil); err != nil {
			return err
		}
	}
	return nil
}

// screenshot writes a PNG of the whole page at the current viewport width.
func (t *tab) screenshot(path string) error {
	var m struct {
		CSSContentSize struct {
			Width, Height float64
		} `json:"cssContentSize"`
		CSSLayoutViewport struct {
			ClientWidth, ClientHeight float64
		} `json:"cssLayoutViewport"`
	}
	if err := t.call("Page.getLayoutMetrics", nil, &m); err != nil {
		return err
	}
	w := m.CSSLayoutViewport.ClientWidth
	h := max(m.CSSContentSize.Height, m.CSSLayoutViewport.ClientHeight)
	var r struct {
		Data string `json:"data"`
	}
	if err := t.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": w, "height": h, "scale": 1}}, &r); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		return err
	}
	if len(png) == 0 {
		return errors.New("empty screenshot")
	}
	return os.WriteFile(path, png, 0o644)
}
