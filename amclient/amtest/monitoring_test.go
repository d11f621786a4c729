package amtest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/thingway/thingway/amclient/amtest"
)

// AM 7's probes, the classic isAlive page, and AM's Prometheus path with
// basic authentication of the monitoring user.
func TestMonitoringEndpoints(t *testing.T) {
	srv, c := startWith(t, nil, func(s *amtest.Server) { s.MonitoringPassword = "m0n1tor" })
	get := func(path, user, pass string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}
	for _, p := range []string{"/json/health/live", "/json/health/ready"} {
		if code, h, body := get(p, "", ""); code != 200 || body != "" || h.Get("Content-API-Version") != "resource=1.0" {
			t.Errorf("%s = %d %q %v", p, code, body, h)
		}
	}
	if code, _, body := get("/isAlive.jsp", "", ""); code != 200 || !strings.Contains(body, "Server is ALIVE") {
		t.Errorf("/isAlive.jsp = %d %q", code, body)
	}
	th := newThing(t, "monitored-thing")
	c.createThing(c.adminLogin(), "/", th, nil)
	c.mustPoP(th, "auth-tree", "/") // a tree that succeeds
	if code, h, _ := get("/json/metrics/prometheus", "", ""); code != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("metrics without credentials = %d %v", code, h)
	}
	if code, _, _ := get("/json/metrics/prometheus", amtest.MonitoringUser, "wrong"); code != 401 {
		t.Errorf("metrics with a wrong password = %d", code)
	}
	code, _, body := get("/json/metrics/prometheus", amtest.MonitoringUser, "m0n1tor")
	if code != 200 {
		t.Fatalf("metrics = %d %s", code, body)
	}
	for _, want := range []string{
		`thingway_am_requests_total{endpoint="authenticate",status="OK"}`,
		`thingway_am_request_duration_seconds_count{endpoint="authenticate"}`,
		`thingway_am_tree_outcomes_total{outcome="success",tree="auth-tree"}`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Off without a password, as AM's is until monitoring is enabled.
	off, _ := startWith(t, nil)
	res, err := http.Get(off.URL + "/json/metrics/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("metrics with monitoring off = %d, want 404", res.StatusCode)
	}
}
