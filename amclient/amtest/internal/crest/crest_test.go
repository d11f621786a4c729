package crest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

func TestParseAPIVersion(t *testing.T) {
	for _, tc := range []struct {
		in                 string
		protocol, resource string
		major              int
		bad                bool
	}{
		{in: "", major: 0},
		{in: "protocol=2.0,resource=1.0", protocol: "2.0", resource: "1.0", major: 1},
		{in: " Resource = 4 , protocol=1.0", protocol: "1.0", resource: "4.0", major: 4},
		{in: "resource=3.1", resource: "3.1", major: 3},
		{in: "resource", bad: true},
		{in: "resource=a.b", bad: true},
		{in: "resource=-1.0", bad: true},
		{in: "version=1.0", bad: true},
	} {
		v, err := crest.ParseAPIVersion(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("ParseAPIVersion(%q): error %v, want failure %v", tc.in, err, tc.bad)
			continue
		}
		if !tc.bad && (v.Protocol != tc.protocol || v.Resource != tc.resource || v.Major() != tc.major) {
			t.Errorf("ParseAPIVersion(%q) = %+v (major %d)", tc.in, v, v.Major())
		}
	}
}

// answer records what f writes and decodes its JSON body.
func answer(t *testing.T, f func(w http.ResponseWriter)) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	w := httptest.NewRecorder()
	f(w)
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json;charset=UTF-8" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", w.Header())
	}
	return w, m
}

func TestErrors(t *testing.T) {
	e := crest.Err(http.StatusForbidden, "Access Denied").WithLog("user %s", "x")
	if e.Error() != "403 Access Denied: user x" {
		t.Errorf("Error() = %q", e.Error())
	}
	w, m := answer(t, func(w http.ResponseWriter) { crest.WriteCREST(w, e) })
	if w.Code != 403 || m["code"] != 403.0 || m["reason"] != "Forbidden" || m["message"] != "Access Denied" || len(m) != 3 {
		t.Errorf("CREST answer %d %v", w.Code, m)
	}
	o := crest.OAuthErr(http.StatusUnauthorized, "invalid_client", "Client authentication failed")
	w, m = answer(t, func(w http.ResponseWriter) { crest.WriteOAuth(w, o) })
	if w.Code != 401 || m["error"] != "invalid_client" || m["error_description"] != "Client authentication failed" || w.Header().Get("WWW-Authenticate") != `Basic realm="oauth2"` {
		t.Errorf("OAuth answer %d %v %v", w.Code, m, w.Header())
	}
	// On the things endpoint an OAuth error is a CREST body with the
	// OAuth error in detail.
	_, m = answer(t, func(w http.ResponseWriter) { crest.WriteCREST(w, o) })
	if d, _ := m["detail"].(map[string]any); d["error"] != "invalid_client" || m["message"] != "Client authentication failed" {
		t.Errorf("CREST answer of an OAuth error %v", m)
	}
}

func TestQueries(t *testing.T) {
	for q, want := range map[string]int{"_queryFilter=true": 0, "": 400, "_queryFilter=false": 501, "_queryFilter=uid+eq+%22x%22": 501} {
		v, _ := url.ParseQuery(q)
		err := crest.CheckQuery(v)
		got := 0
		if e, ok := err.(*crest.Error); ok {
			got = e.Status
		} else if err != nil {
			t.Fatalf("CheckQuery(%q): %v", q, err)
		}
		if got != want {
			t.Errorf("CheckQuery(%q) = %v, want status %d", q, err, want)
		}
	}
	v := url.Values{"_pageSize": {"10"}, "_pagedResultsOffset": {"-1"}, "x": {"a"}}
	if n, err := crest.Count(v, "_pageSize"); n != 10 || err != nil {
		t.Errorf("Count(_pageSize) = %d, %v", n, err)
	}
	if n, err := crest.Count(v, "absent"); n != 0 || err != nil {
		t.Errorf("Count(absent) = %d, %v", n, err)
	}
	for _, name := range []string{"_pagedResultsOffset", "x"} {
		if _, err := crest.Count(v, name); err == nil || err.(*crest.Error).Status != 400 {
			t.Errorf("Count(%s) = %v, want a 400", name, err)
		}
	}
	w, m := answer(t, func(w http.ResponseWriter) { crest.WriteQuery(w, nil) })
	if r, ok := m["result"].([]any); w.Code != 200 || !ok || len(r) != 0 || m["resultCount"] != 0.0 || m["totalPagedResults"] != -1.0 {
		t.Errorf("empty query answer %d %v", w.Code, m)
	}
}

// _fields keeps the members named (spaces around the commas allowed) and
// always _id and _rev; no _fields keeps all.
func TestKeepFields(t *testing.T) {
	m := map[string]any{"_id": "a", "_rev": "1", "cn": "x", "mail": "y", "sn": "z"}
	crest.KeepFields(m, "cn, sn,nope")
	if len(m) != 4 || m["cn"] != "x" || m["sn"] != "z" || m["_id"] != "a" || m["_rev"] != "1" {
		t.Errorf("kept %v", m)
	}
	crest.KeepFields(m, "")
	if len(m) != 4 {
		t.Errorf("no _fields dropped members: %v", m)
	}
}
