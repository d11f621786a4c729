package identities

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
)

// Query is a query of a realm's identities, as the identity endpoint
// takes it: _queryFilter=true (all) or _queryId=<pattern> (* wildcards,
// case ignored), paged as AM's CREST pages.
type Query struct {
	realm    string
	match    *regexp.Regexp // nil: all
	pageSize int            // 0: all
	offset   int
	desc     bool
	exact    bool
	after    string // the cookie's order key; "" from the start
	fields   string
}

// ParseQuery reads a query of realm's identities from its parameters:
// _queryFilter (only true) or _queryId, _pageSize (0 or absent: all),
// _pagedResultsCookie (from the previous page; it resets the offset),
// _pagedResultsOffset, _sortKeys (_id, username or uid, "-" before for
// descending; by default ascending _id), _totalPagedResultsPolicy and the
// _fields of each result. A refusal is AM's CREST error.
func ParseQuery(realm string, q url.Values) (*Query, error) {
	filter, qid := q.Get("_queryFilter"), q.Get("_queryId")
	if filter == "" && qid == "" {
		return nil, crest.Err(http.StatusBadRequest, "Query request must specify _queryFilter or _queryId")
	}
	if filter != "" && filter != "true" {
		return nil, crest.Err(http.StatusNotImplemented, "Only _queryFilter=true is supported by the local AM")
	}
	qq := &Query{realm: realm, fields: q.Get("_fields")}
	if qid != "" {
		var err error
		// QuoteMeta's text fails to compile only when it is not UTF-8.
		if qq.match, err = regexp.Compile("(?i)^" + strings.ReplaceAll(regexp.QuoteMeta(qid), `\*`, ".*") + "$"); err != nil {
			return nil, crest.Err(http.StatusBadRequest, "Invalid _queryId")
		}
	}
	var err error
	if qq.pageSize, err = crest.Count(q, "_pageSize"); err != nil {
		return nil, err
	}
	if qq.offset, err = crest.Count(q, "_pagedResultsOffset"); err != nil {
		return nil, err
	}
	if v := q.Get("_sortKeys"); v != "" {
		key := strings.TrimPrefix(strings.TrimPrefix(v, "+"), "-")
		qq.desc = strings.HasPrefix(v, "-")
		if key != "_id" && key != "username" && key != "uid" {
			return nil, crest.Err(http.StatusBadRequest, "Sorting by '"+key+"' is not supported by the local AM (only _id, username and uid)")
		}
	}
	qq.exact = strings.EqualFold(q.Get("_totalPagedResultsPolicy"), "EXACT")
	if ck := q.Get("_pagedResultsCookie"); ck != "" {
		b, err := base64.RawURLEncoding.DecodeString(ck)
		if err != nil || !strings.HasPrefix(string(b), RealmPrefix(realm)) {
			return nil, crest.Err(http.StatusBadRequest, "Invalid _pagedResultsCookie")
		}
		qq.after, qq.offset = string(b), 0
	}
	return qq, nil
}

// Page is a page of a query's answer, as AM's CREST query answers it.
type Page struct {
	// Result holds the page's identities as [Identity.Filtered] renders
	// them.
	Result []map[string]any
	// Cookie is the _pagedResultsCookie of the next page (the last order
	// key of this one, base64url), "" when this page is the last.
	Cookie string
	// Policy is totalPagedResultsPolicy: EXACT when asked, else NONE.
	Policy string
	// Total is totalPagedResults: the matches when they were counted (a
	// descending or EXACT query), else -1. Remaining is
	// remainingPagedResults: with EXACT the matches after this page,
	// else -1.
	Total, Remaining int
}

// Run reads the query's page in tx, rendering each identity at resource
// API version major. The order index's keys hold the _id: matching,
// skipping and counting read the index alone, and only the page's
// identities are decoded, so a page of 100 out of 100,000 is a short read
// transaction; ascending pages by cookie seek straight to where the last
// page ended. Its error is tx's.
func (q *Query) Run(tx store.Tx, major int) (Page, error) {
	p := Page{Result: []map[string]any{}, Policy: "NONE", Total: -1, Remaining: -1}
	prefix := RealmPrefix(q.realm)
	matches := func(okey string) bool { return q.match == nil || q.match.MatchString(okey[len(prefix):]) }
	add := func(okey string) error {
		var x Identity
		found, err := tx.Get(Kind, StoreKey(q.realm, okey[len(prefix):]), &x)
		if found {
			p.Result = append(p.Result, x.Filtered(major, q.fields))
		}
		return err
	}
	if !q.desc && !q.exact {
		// Straight from the index: skip offset, take a page, peek one more.
		skipped := 0
		var last string
		err := tx.Scan(OrderKind, prefix, q.after, func(okey string, _ func(any) error) (bool, error) {
			if !matches(okey) {
				return true, nil
			}
			if skipped < q.offset {
				skipped++
				return true, nil
			}
			if q.pageSize > 0 && len(p.Result) == q.pageSize {
				p.Cookie = base64.RawURLEncoding.EncodeToString([]byte(last))
				return false, nil
			}
			last = okey
			return true, add(okey)
		})
		return p, err
	}
	// Descending or counted: the index keys of every match of the realm,
	// then the page.
	var keys []string
	if err := tx.Scan(OrderKind, prefix, "", func(okey string, _ func(any) error) (bool, error) {
		if matches(okey) {
			keys = append(keys, okey)
		}
		return true, nil
	}); err != nil {
		return p, err
	}
	if q.desc {
		slices.Reverse(keys)
	}
	p.Total = len(keys)
	start := 0
	if q.after != "" {
		start = len(keys)
		for i, k := range keys {
			if q.desc && k < q.after || !q.desc && k > q.after {
				start = i
				break
			}
		}
	}
	start = min(start+q.offset, len(keys))
	end := len(keys)
	if q.pageSize > 0 && start+q.pageSize < end {
		end = start + q.pageSize
		p.Cookie = base64.RawURLEncoding.EncodeToString([]byte(keys[end-1]))
	}
	for _, k := range keys[start:end] {
		if err := add(k); err != nil {
			return p, err
		}
	}
	if q.exact {
		p.Policy, p.Remaining = "EXACT", max(len(keys)-end, 0)
	}
	return p, nil
}
