package identities

import (
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
)

// queryStore returns a store with the identities of "/" (in _id order,
// case counting: upper case first) and one of "/sub".
func queryStore(t *testing.T) (store.Store, []string) {
	t.Helper()
	db, err := store.Open(store.Options{Kinds: []string{Kind, OrderKind}, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ids := []string{"D2", "Zed", "a", "b", "c", "d1", "e"}
	err = db.Update(func(tx store.Tx) error {
		for _, id := range []string{"e", "c", "Zed", "a", "d1", "b", "D2"} {
			if err := Put(tx, New("/", id, testNow)); err != nil {
				return err
			}
		}
		return Put(tx, New("/sub", "a-sub", testNow))
	})
	if err != nil {
		t.Fatal(err)
	}
	return db, ids
}

// run parses and runs a query of realm; a refusal fails the test.
func run(t *testing.T, db store.Store, realm, query string) Page {
	t.Helper()
	p, err := tryRun(db, realm, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return p
}

func tryRun(db store.Store, realm, query string) (Page, error) {
	v, err := url.ParseQuery(query)
	if err != nil {
		return Page{}, err
	}
	q, err := ParseQuery(realm, v)
	if err != nil {
		return Page{}, err
	}
	var p Page
	err = db.View(func(tx store.Tx) error {
		var err error
		p, err = q.Run(tx, 4)
		return err
	})
	return p, err
}

func resultIDs(p Page) []string {
	var out []string
	for _, r := range p.Result {
		out = append(out, r["_id"].(string))
	}
	return out
}

func cookieOf(realm, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(OrderKey(realm, id)))
}

// Following the cookies pages through every match, in either order; the
// counts are AM's for each policy.
func TestQueryPages(t *testing.T) {
	db, ids := queryStore(t)
	desc := slices.Clone(ids)
	slices.Reverse(desc)
	for _, tc := range []struct {
		name, query string
		want        []string
		total       int
		exact       bool
	}{
		{"ascending", "_queryFilter=true&_pageSize=3", ids, -1, false},
		{"ascending by username", "_queryFilter=true&_pageSize=3&_sortKeys=%2Busername", ids, -1, false},
		{"ascending, exact", "_queryFilter=true&_pageSize=3&_totalPagedResultsPolicy=exact", ids, len(ids), true},
		{"descending", "_queryFilter=true&_pageSize=3&_sortKeys=-_id", desc, len(ids), false},
		{"descending, exact", "_queryFilter=true&_pageSize=3&_sortKeys=-uid&_totalPagedResultsPolicy=EXACT", desc, len(ids), true},
		{"one page", "_queryFilter=true&_pageSize=0", ids, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			q := tc.query
			for n := 0; ; n++ {
				if n > len(ids) {
					t.Fatalf("no last page after %v", got)
				}
				p := run(t, db, "/", q)
				got = append(got, resultIDs(p)...)
				if p.Total != tc.total {
					t.Errorf("page %d: totalPagedResults %d, want %d", n, p.Total, tc.total)
				}
				wantPolicy, wantLeft := "NONE", -1
				if tc.exact {
					wantPolicy, wantLeft = "EXACT", len(ids)-len(got)
				}
				if p.Policy != wantPolicy || p.Remaining != wantLeft {
					t.Errorf("page %d: policy %s remaining %d, want %s %d", n, p.Policy, p.Remaining, wantPolicy, wantLeft)
				}
				if p.Cookie == "" {
					break
				}
				if last := got[len(got)-1]; p.Cookie != cookieOf("/", last) {
					t.Errorf("page %d: cookie %q, want the order key of %s", n, p.Cookie, last)
				}
				q = tc.query + "&_pagedResultsCookie=" + p.Cookie
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("pages gave %v, want %v", got, tc.want)
			}
		})
	}
}

// An offset skips matches; a cookie resets it. _queryId matches names by
// pattern, case ignored; _fields applies to each result; a realm sees its
// own identities only.
func TestQuerySelect(t *testing.T) {
	db, ids := queryStore(t)
	for _, tc := range []struct {
		name, realm, query string
		want               []string
		cookie             string
	}{
		{"offset", "/", "_queryFilter=true&_pageSize=2&_pagedResultsOffset=1", ids[1:3], cookieOf("/", ids[2])},
		{"offset to the end", "/", "_queryFilter=true&_pagedResultsOffset=5", ids[5:], ""},
		{"offset past the end", "/", "_queryFilter=true&_pagedResultsOffset=50", nil, ""},
		{"offset past the end, descending", "/", "_queryFilter=true&_pagedResultsOffset=50&_sortKeys=-_id", nil, ""},
		{"descending offset", "/", "_queryFilter=true&_pageSize=2&_pagedResultsOffset=1&_sortKeys=-_id", []string{"d1", "c"}, cookieOf("/", "c")},
		{"cookie resets the offset", "/", "_queryFilter=true&_pageSize=2&_pagedResultsOffset=3&_pagedResultsCookie=" + cookieOf("/", "a"), []string{"b", "c"}, cookieOf("/", "c")},
		{"cookie past the end, descending", "/", "_queryFilter=true&_sortKeys=-_id&_pagedResultsCookie=" + cookieOf("/", "D2"), nil, ""},
		{"queryId", "/", "_queryId=d*", []string{"D2", "d1"}, ""},
		{"queryId exact name", "/", "_queryId=zED", []string{"Zed"}, ""},
		{"queryId paged", "/", "_queryId=*&_pageSize=1&_pagedResultsOffset=1", []string{"Zed"}, cookieOf("/", "Zed")},
		{"queryId none", "/", "_queryId=x*", nil, ""},
		{"sub-realm", "/sub", "_queryFilter=true", []string{"a-sub"}, ""},
		{"empty realm", "/other", "_queryFilter=true", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := run(t, db, tc.realm, tc.query)
			if got := resultIDs(p); !slices.Equal(got, tc.want) {
				t.Errorf("result %v, want %v", got, tc.want)
			}
			if p.Cookie != tc.cookie {
				t.Errorf("cookie %q, want %q", p.Cookie, tc.cookie)
			}
			if p.Result == nil {
				t.Error("result is nil, not an empty list")
			}
		})
	}
	p := run(t, db, "/", "_queryFilter=true&_pageSize=1&_fields=cn")
	if len(p.Result) != 1 || len(p.Result[0]) != 3 || p.Result[0]["cn"] == nil || p.Result[0]["_rev"] != "-1" {
		t.Errorf("_fields=cn gave %v", p.Result)
	}
}

// A query the local AM cannot answer is AM's CREST error.
func TestQueryRefused(t *testing.T) {
	db, _ := queryStore(t)
	for _, tc := range []struct {
		realm, query string
		status       int
		message      string
	}{
		{"/", "", 400, "Query request must specify _queryFilter or _queryId"},
		{"/", "_pageSize=1", 400, "Query request must specify _queryFilter or _queryId"},
		{"/", "_queryFilter=uid+eq+%22a%22", 501, "Only _queryFilter=true is supported by the local AM"},
		{"/", "_queryFilter=false&_queryId=a", 501, "Only _queryFilter=true is supported by the local AM"},
		{"/", "_queryId=%ff", 400, "Invalid _queryId"},
		{"/", "_queryFilter=true&_pageSize=-1", 400, "The value '-1' for parameter '_pageSize' could not be parsed as a valid integer"},
		{"/", "_queryFilter=true&_pagedResultsOffset=x", 400, "The value 'x' for parameter '_pagedResultsOffset' could not be parsed as a valid integer"},
		{"/", "_queryFilter=true&_sortKeys=-cn", 400, "Sorting by 'cn' is not supported by the local AM (only _id, username and uid)"},
		{"/", "_queryFilter=true&_pagedResultsCookie=!!", 400, "Invalid _pagedResultsCookie"},
		{"/sub", "_queryFilter=true&_pagedResultsCookie=" + cookieOf("/", "a"), 400, "Invalid _pagedResultsCookie"},
	} {
		_, err := tryRun(db, tc.realm, tc.query)
		var ce *crest.Error
		if !errors.As(err, &ce) || ce.Status != tc.status || ce.Message != tc.message {
			t.Errorf("%s in %s: %v, want %d %q", tc.query, tc.realm, err, tc.status, tc.message)
		}
	}
}
