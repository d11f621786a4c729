package amtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/journey"
	"github.com/thingway/thingway/amclient/amtest/internal/oauth2"
	"github.com/thingway/thingway/amclient/amtest/internal/proof"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// lockedBuffer is a log destination tests read while the server writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func journalLine(t *testing.T, kind, id string, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(store.JournalRecord{Kind: kind, ID: id, V: raw})
	return string(b) + "\n"
}

// A data directory in the journal format is converted at its first start:
// every live record is in the database, the record after a failed write's
// fragment too, the journal is kept aside, and a log line says so. A
// second start does not convert again.
func TestJournalConverted(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	x := identities.New("/", "Old-Thing", now)
	x.Attrs["thingType"] = []string{"device"}
	gone := identities.New("/", "gone-thing", now)
	sess := &session{UID: "Old-Thing", Realm: "/", Created: now, Expires: now.Add(time.Hour), LastNonce: 41, UID0: "u0"}
	var j strings.Builder
	j.WriteString(journalLine(t, kindIdentity, identities.StoreKey("/", "Old-Thing"), x))
	j.WriteString(journalLine(t, kindIdentity, identities.StoreKey("/", "gone-thing"), gone))
	j.WriteString(journalLine(t, kindIdentity, identities.StoreKey("/", "gone-thing"), nil))
	// A write that failed half way (disk full), then an acknowledged one
	// on the same line.
	j.WriteString(`{"k":"session","id":"abc","v":{"uid":"tor`)
	j.WriteString(journalLine(t, kindSession, tokens.Hash("old-token"), sess))
	j.WriteString(journalLine(t, kindAssertion, "jti-hash", &usedAssertion{Expires: now.Add(time.Hour)}))
	// A torn last line: never acknowledged.
	j.WriteString(`{"k":"identity","id":"/` + "\x00" + `torn","v":{"re`)
	if err := os.WriteFile(filepath.Join(dir, store.JournalFile), []byte(j.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	s := &Server{DataDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	if got := s.getIdentity("/", "old-thing"); got == nil || got.First("thingType") != "device" {
		t.Errorf("identity after conversion = %+v", got)
	}
	if s.getIdentity("/", "gone-thing") != nil {
		t.Error("a deleted identity came back")
	}
	if sx, ok := s.liveSession("old-token", now); !ok || sx.LastNonce != 41 {
		t.Errorf("session after conversion = %+v, %v", sx, ok)
	}
	if ok, err := s.acceptNonce("old-token", 41); ok || err != nil {
		t.Errorf("nonce 41 accepted again after conversion: %v %v", ok, err)
	}
	if _, err := os.Stat(filepath.Join(dir, store.JournalFile)); !os.IsNotExist(err) {
		t.Errorf("the journal is still in place: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, store.JournalKeptFile)); err != nil {
		t.Errorf("the journal was not kept aside: %v", err)
	}
	out := logs.String()
	for _, want := range []string{"data directory converted", "records=3", "fragment of a failed write dropped, the record after it kept", "torn last line dropped"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	s.Close()

	s2 := &Server{DataDir: dir}
	if err := s2.Init(); err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.getIdentity("/", "old-thing") == nil {
		t.Error("identity lost at the second start")
	}
}

// An accepted nonce is on disk: after a restart it is refused, the next
// one accepted.
func TestNonceSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := &Server{DataDir: dir}
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	tok, err := s.newSession(&session{UID: "amAdmin", Realm: "/", Admin: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for n := int64(0); n < 20; n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.acceptNonce(tok, n)
		}()
	}
	wg.Wait()
	if ok, _ := s.acceptNonce(tok, 20); !ok {
		t.Fatal("nonce 20 refused")
	}
	s.Close()
	s = &Server{DataDir: dir}
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for n := int64(0); n <= 20; n++ {
		if ok, err := s.acceptNonce(tok, n); ok || err != nil {
			t.Fatalf("nonce %d accepted again after a restart (%v)", n, err)
		}
	}
	if ok, err := s.acceptNonce(tok, 21); !ok || err != nil {
		t.Fatalf("nonce 21: %v %v", ok, err)
	}
}

// Expired sessions, tokens, grants, device codes and assertions are
// deleted while the server runs, in memory and on disk.
func TestOnlineExpiry(t *testing.T) {
	for _, dataDir := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "data"}[dataDir], func(t *testing.T) {
			clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
			s := &Server{Time: clk.Now}
			if dataDir {
				s.DataDir = t.TempDir()
			}
			if err := s.Init(); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			now := clk.Now()
			if _, err := s.newSession(&session{UID: "amAdmin", Realm: "/"}, now); err != nil {
				t.Fatal(err)
			}
			g := &grant{ID: "g1", Realm: "/", Expires: now.Add(time.Hour)}
			if err := s.db.Update(func(tx storeTx) error {
				if err := tx.Put(kindGrant, g.ID, g, g.Expires); err != nil {
					return err
				}
				tk := &token{GrantID: "g1", Expires: now.Add(time.Hour)}
				return tx.Put(kindToken, "t1", tk, tk.Expires)
			}); err != nil {
				t.Fatal(err)
			}
			if err := oauth2.PutDevice(failStore{s.db}, "d1", &deviceCode{Realm: "/", UserCode: "ABCDEFGH", Expires: now.Add(5 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
			if _, err := journey.FirstUse(s.updateStore, "/", "thing", &proof.Claims{Jti: "j", Exp: proof.NumericDate{Time: now.Add(time.Minute)}}, s.skew(), now); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{kindSession, kindGrant, kindToken, kindDevice, kindUserCode, kindAssertion} {
				if n := s.countRecords(k); n != 1 {
					t.Fatalf("%s records before expiry = %d, want 1", k, n)
				}
			}
			clk.Add(s.sessionMax() + 2*time.Hour)
			// Any write sweeps.
			if err := s.putIdentity(identities.New("/", "after", clk.Now())); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{kindSession, kindGrant, kindToken, kindDevice, kindUserCode, kindAssertion} {
				if n := s.countRecords(k); n != 0 {
					t.Errorf("%s records after expiry = %d, want 0", k, n)
				}
			}
		})
	}
}

// Identity queries page as CREST does: _pageSize with a cookie to go on,
// _pagedResultsOffset, descending _sortKeys and exact totals.
func TestIdentityPaging(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Server) {
		admin, err := s.newSession(&session{UID: "amAdmin", Realm: "/", Admin: true}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for i := range 25 {
			id := fmt.Sprintf("thing-%02d", i)
			want = append(want, id)
			if err := s.putIdentity(identities.New("/", id, time.Now())); err != nil {
				t.Fatal(err)
			}
		}
		query := func(q string) map[string]any {
			t.Helper()
			r := httptest.NewRequest("GET", "/openam/json/realms/root/users?_queryFilter=true&_fields=username&"+q, nil)
			r.Header.Set("iPlanetDirectoryPro", admin)
			r.Header.Set("Accept-API-Version", "resource=4.0")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != 200 {
				t.Fatalf("%s: %d %s", q, w.Code, w.Body)
			}
			var m map[string]any
			json.Unmarshal(w.Body.Bytes(), &m)
			return m
		}
		names := func(m map[string]any) []string {
			var out []string
			for _, e := range m["result"].([]any) {
				out = append(out, e.(map[string]any)["username"].(string))
			}
			return out
		}
		var got []string
		cookie := ""
		for pages := 0; ; pages++ {
			m := query("_pageSize=10&_pagedResultsCookie=" + cookie)
			got = append(got, names(m)...)
			if m["pagedResultsCookie"] == nil {
				if pages != 2 {
					t.Errorf("%d pages, want 3", pages+1)
				}
				break
			}
			cookie = m["pagedResultsCookie"].(string)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("paged = %v, want %v", got, want)
		}
		if g := names(query("_pageSize=3&_pagedResultsOffset=5")); strings.Join(g, ",") != "thing-05,thing-06,thing-07" {
			t.Errorf("offset page = %v", g)
		}
		m := query("_pageSize=2&_sortKeys=-_id&_totalPagedResultsPolicy=EXACT")
		if g := names(m); strings.Join(g, ",") != "thing-24,thing-23" || m["totalPagedResults"] != float64(25) || m["remainingPagedResults"] != float64(23) {
			t.Errorf("descending exact page = %v %v %v", g, m["totalPagedResults"], m["remainingPagedResults"])
		}
		m = query("_pageSize=2&_sortKeys=-_id&_pagedResultsCookie=" + m["pagedResultsCookie"].(string))
		if g := names(m); strings.Join(g, ",") != "thing-22,thing-21" {
			t.Errorf("descending second page = %v", g)
		}
	})
}

// A signed request's nonce is a record of its own beside its session. A
// session written before nonces had records keeps its nonce in the
// session: replays below it are still refused, and ending the session
// deletes the nonce with it.
func TestNonceRecord(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Server) {
		now := time.Now()
		tok, err := s.newSession(&session{UID: "thing", Realm: "/", Restricted: true}, now)
		if err != nil {
			t.Fatal(err)
		}
		// The session as an older version stored it: its nonce inside.
		h := tokens.Hash(tok)
		var x session
		if !s.get(kindSession, h, &x) {
			t.Fatal("no session")
		}
		x.LastNonce = 5
		if err := s.put(kindSession, h, &x); err != nil {
			t.Fatal(err)
		}
		if got, ok := s.liveSession(tok, now); !ok || got.LastNonce != 5 {
			t.Fatalf("live session nonce = %v %v, want 5", got, ok)
		}
		for n, want := range map[int64]bool{4: false, 5: false} {
			if ok, err := s.acceptNonce(tok, n); ok != want || err != nil {
				t.Errorf("nonce %d: %v %v, want %v", n, ok, err, want)
			}
		}
		if ok, err := s.acceptNonce(tok, 6); !ok || err != nil {
			t.Fatalf("nonce 6: %v %v", ok, err)
		}
		if n := s.countRecords(kindNonce); n != 1 {
			t.Fatalf("nonce records = %d, want 1", n)
		}
		if got, ok := s.liveSession(tok, now); !ok || got.LastNonce != 6 {
			t.Fatalf("live session nonce = %v %v, want 6", got, ok)
		}
		if ok, _ := s.acceptNonce(tok, 6); ok {
			t.Error("nonce 6 accepted twice")
		}
		if ended, err := s.endSession(tok); !ended || err != nil {
			t.Fatalf("end session: %v %v", ended, err)
		}
		if n := s.countRecords(kindNonce); n != 0 {
			t.Errorf("nonce records after logout = %d, want 0", n)
		}
		if ok, _ := s.acceptNonce(tok, 7); ok {
			t.Error("nonce accepted for an ended session")
		}
	})
}

// eachStore runs f on a started server in memory and on one with a data
// directory.
func eachStore(t *testing.T, f func(t *testing.T, s *Server)) {
	for _, dataDir := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "data"}[dataDir], func(t *testing.T) {
			s := &Server{}
			if dataDir {
				s.DataDir = t.TempDir()
			}
			if err := s.Init(); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			f(t, s)
		})
	}
}
