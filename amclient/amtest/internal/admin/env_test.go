package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

// amtest embeds the example files that the default configuration holds; a
// test of this package alone reads them from amtest's defaults directory,
// as internal/config's tests do.
func TestMain(m *testing.M) {
	if err := config.SetExampleFilesFrom(filepath.Join("..", "..", "defaults")); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// The fake server of the tests: the configuration in force (the default
// one to start with), changes made with Apply and counted, the realms
// purged, an Authorize answer to give, and fixed random values.

const (
	testBase = "http://am.test/openam"
	testUUID = "00000000-0000-4000-8000-000000000001"
)

type fake struct {
	t       *testing.T
	cfg     *config.Config
	realm   string
	denied  error // Authorize's answer
	changes int
	purged  []string
}

func newFake(t *testing.T) *fake {
	return &fake{t: t, cfg: config.DefaultConfig(), realm: "/"}
}

// answer is what a call answered: the status, the headers and the body.
type answer struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// call sends method to /json/target (path and query) with body and the
// headers ("Name: value") through the room's entry points, and answers a
// crest error as amclient/amtest does.
func (f *fake) call(method, target, body string, headers ...string) answer {
	f.t.Helper()
	r := httptest.NewRequest(method, testBase+"/json/"+target, strings.NewReader(body))
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	path, _, _ := strings.Cut(target, "?")
	e := &Env{W: w, R: r, Rest: path, Base: testBase, Realm: f.realm, Config: f.cfg,
		Authorize: func() error { return f.denied },
		Body:      func() ([]byte, error) { return io.ReadAll(r.Body) },
		Change: func(fn func(cfg *config.Config) error) (*config.Config, error) {
			next, err := Apply(f.cfg, fn)
			if err != nil {
				return nil, err
			}
			f.cfg = next
			f.changes++
			return next, nil
		},
		PurgeRealm: func(p string) error { f.purged = append(f.purged, p); return nil },
		RandomID:   func(n int) string { return strings.Repeat("r", n) },
		NewUUID:    func() string { return testUUID },
	}
	seg, sub, _ := strings.Cut(path, "/")
	var err error
	switch seg {
	case "global-config":
		err = e.GlobalConfig(sub)
	case "realm-config":
		err = e.RealmConfig(sub)
	case "scripts":
		err = e.Scripts(sub)
	default:
		f.t.Fatalf("no entry point for %s", target)
	}
	if err != nil {
		var ae *crest.Error
		if !errors.As(err, &ae) {
			f.t.Fatalf("%s %s: not a crest error: %v", method, target, err)
		}
		crest.WriteCREST(w, ae)
	}
	a := answer{status: w.Code, header: w.Header(), raw: w.Body.Bytes()}
	if err := json.Unmarshal(a.raw, &a.body); err != nil {
		f.t.Fatalf("%s %s: answer is not a JSON object: %s", method, target, a.raw)
	}
	return a
}

// must checks a call's status.
func (f *fake) must(a answer, status int) map[string]any {
	f.t.Helper()
	if a.status != status {
		f.t.Fatalf("status %d, want %d: %s", a.status, status, a.raw)
	}
	return a.body
}

// refused checks that a call was refused with status and message, and
// changed nothing.
func (f *fake) refused(status int, message string, call func() answer) {
	f.t.Helper()
	before := f.changes
	a := call()
	if a.status != status || a.body["message"] != message {
		f.t.Fatalf("answer %d %v, want %d %q", a.status, a.body["message"], status, message)
	}
	if f.changes != before {
		f.t.Fatalf("a refused call changed the configuration")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAuthorizeFirst checks that every entry point asks for the
// administrator before it looks at the path.
func TestAuthorizeFirst(t *testing.T) {
	f := newFake(t)
	f.denied = crest.Err(http.StatusUnauthorized, "Access Denied")
	for _, target := range []string{"global-config/nowhere", "global-config/realms?_queryFilter=true",
		"realm-config/nowhere", "realm-config/services/iot", "scripts", "scripts/x"} {
		if a := f.call("GET", target, ""); a.status != 401 || a.body["message"] != "Access Denied" {
			t.Errorf("GET %s: %d %s, want 401 Access Denied", target, a.status, a.raw)
		}
	}
	f.denied = nil
	a := f.call("GET", "global-config/nowhere", "")
	if a.status != 404 || a.body["message"] != "Resource 'global-config/nowhere' not found" {
		t.Errorf("unknown path: %d %s", a.status, a.raw)
	}
	if a.header.Get("Content-Type") != "application/json;charset=UTF-8" {
		t.Errorf("Content-Type %q", a.header.Get("Content-Type"))
	}
}

// TestApply checks that a change is made on a copy, and that a refused or
// invalid one leaves the configuration as it was.
func TestApply(t *testing.T) {
	cur := config.DefaultConfig()
	want := mustJSON(t, cur)
	next, err := Apply(cur, func(cfg *config.Config) error {
		cfg.ServerProperties = map[string]string{"k": "v"}
		return nil
	})
	if err != nil || next == cur || next.ServerProperties["k"] != "v" {
		t.Fatalf("Apply: %v, %v", next, err)
	}
	if got := mustJSON(t, cur); got != want {
		t.Fatal("Apply changed the configuration it copied")
	}
	refusal := crest.Err(http.StatusConflict, "no")
	if _, err := Apply(cur, func(cfg *config.Config) error {
		delete(cfg.Realms, "/")
		return refusal
	}); err != refusal {
		t.Fatalf("f's error: %v", err)
	}
	_, err = Apply(cur, func(cfg *config.Config) error {
		delete(cfg.Realms, "/")
		return nil
	})
	var ae *crest.Error
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Message != `Invalid configuration: the top-level realm "/" is missing` {
		t.Fatalf("invalid result: %v", err)
	}
	if got := mustJSON(t, cur); got != want {
		t.Fatal("a refused change changed the configuration")
	}
}
