package crest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// WriteQuery answers a CREST query with all its results on one page.
func WriteQuery(w http.ResponseWriter, result []map[string]any) {
	if result == nil {
		result = []map[string]any{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"result": result, "resultCount": len(result),
		"pagedResultsCookie": nil, "totalPagedResultsPolicy": "NONE", "totalPagedResults": -1, "remainingPagedResults": -1})
}

// CheckQuery accepts _queryFilter=true, the only filter the local AM
// evaluates.
func CheckQuery(q url.Values) error {
	f, ok := q["_queryFilter"]
	if !ok {
		return Err(http.StatusBadRequest, "Query request must specify _queryFilter")
	}
	if len(f) == 0 || f[0] != "true" {
		return Err(http.StatusNotImplemented, "Query not supported: "+strings.Join(f, ","))
	}
	return nil
}

// Count reads a paging parameter (_pageSize, _pagedResultsOffset): absent
// is 0, anything but a non-negative integer is AM's 400.
func Count(q url.Values, name string) (int, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, Err(http.StatusBadRequest, "The value '"+v+"' for parameter '"+name+"' could not be parsed as a valid integer")
	}
	return n, nil
}

// KeepFields applies a request's _fields to the resource m: fields, when
// not empty, is a comma-separated list of the members to keep; _id and
// _rev are always kept.
func KeepFields(m map[string]any, fields string) {
	if fields == "" {
		return
	}
	keep := map[string]bool{"_id": true, "_rev": true}
	for _, name := range strings.Split(fields, ",") {
		keep[strings.TrimSpace(name)] = true
	}
	for k := range m {
		if !keep[k] {
			delete(m, k)
		}
	}
}
