package importdir_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/thingway/thingway/amclient/amtest/internal/importdir"
)

// recorder is an admin API that answers every call with status (or
// conflict for a service create) and records the calls.
type recorder struct {
	calls    []string
	conflict bool // services exist: a create answers 409
	fail     string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.calls = append(r.calls, fmt.Sprintf("%s %s %s %s|%s", req.Method, req.URL.RequestURI(), req.Header.Get("Accept-API-Version"), req.Header.Get("session"), body))
	switch {
	case r.fail != "" && strings.Contains(req.URL.Path, r.fail):
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"code":400,"reason":"Bad Request","message":"Invalid attribute"}`)
	case r.conflict && req.URL.Query().Get("_action") == "create":
		w.WriteHeader(http.StatusConflict)
	case req.Method == http.MethodPost:
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

var dir = fstest.MapFS{
	"services/iot.json": {Data: []byte(`{"a":1}`)},
	"scripts/s1.json":   {Data: []byte(`{"_id":"script-1"}`)},
	"nodes/dependent/ScriptedDecisionNode/n2.json":            {Data: []byte(`{}`)},
	"nodes/independent/IotAuthenticationNode/n1.json":         {Data: []byte(`{}`)},
	"trees/auth-tree.json":                                    {Data: []byte(`{}`)},
	"notes.txt":                                               {Data: []byte(`ignored`)},
	"realms/sub/realm.json":                                   {Data: []byte(`{"aliases":["x"]}`)},
	"realms/sub/trees/t.json":                                 {Data: []byte(`{}`)},
	"secrets/mappings/am.services.iot.cert.verification.json": {Data: []byte(`{"aliases":["ca"]}`)},
}

// The calls come in AM's order (secret mappings, then per realm: services,
// scripts, nodes without dependencies first, trees; then sub-realms), at
// AM's paths with its API versions and the administrator's session.
func TestApplyOrder(t *testing.T) {
	r := &recorder{}
	if err := importdir.Apply(dir, importdir.Admin{Handler: r, Base: "/openam", CookieName: "session", Token: "tok"}); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, c := range r.calls {
		if !strings.Contains(c, " tok|") {
			t.Errorf("call without the session: %s", c)
		}
		paths = append(paths, strings.SplitN(c, " ", 3)[0]+" "+strings.SplitN(c, " ", 3)[1])
	}
	want := []string{
		"PUT /openam/json/global-config/secrets/stores/KeyStoreSecretStore/default-keystore/mappings/am.services.iot.cert.verification",
		"POST /openam/json/realm-config/services/iot?_action=create&realm=%2F",
		"PUT /openam/json/scripts/script-1?realm=%2F",
		"PUT /openam/json/realm-config/authentication/authenticationtrees/nodes/IotAuthenticationNode/n1?realm=%2F",
		"PUT /openam/json/realm-config/authentication/authenticationtrees/nodes/ScriptedDecisionNode/n2?realm=%2F",
		"PUT /openam/json/realm-config/authentication/authenticationtrees/trees/auth-tree?realm=%2F",
	}
	if len(paths) < len(want) {
		t.Fatalf("calls:\n%s", strings.Join(r.calls, "\n"))
	}
	for i, w := range want {
		if paths[i] != w {
			t.Errorf("call %d = %s, want %s", i, paths[i], w)
		}
	}
	var sub bool
	for _, p := range paths[len(want):] {
		if strings.Contains(p, "realm=%2Fsub") && strings.Contains(p, "trees/t") {
			sub = true
		}
	}
	if !sub {
		t.Errorf("the sub-realm's tree was not put:\n%s", strings.Join(paths, "\n"))
	}
}

// A service that exists is updated; a refused call stops the import with
// the file's name and AM's message.
func TestApplyConflictAndFailure(t *testing.T) {
	r := &recorder{conflict: true}
	if err := importdir.Apply(fstest.MapFS{"services/iot.json": {Data: []byte(`{}`)}}, importdir.Admin{Handler: r}); err != nil {
		t.Fatal(err)
	}
	if len(r.calls) != 2 || !strings.HasPrefix(r.calls[1], "PUT /json/realm-config/services/iot?realm=%2F protocol=1.0,resource=1.0") {
		t.Errorf("calls after a 409:\n%s", strings.Join(r.calls, "\n"))
	}
	r = &recorder{fail: "/trees/"}
	err := importdir.Apply(dir, importdir.Admin{Handler: r})
	if err == nil || !strings.Contains(err.Error(), "trees/auth-tree.json: PUT /json/realm-config/authentication/authenticationtrees/trees/auth-tree: 400 Invalid attribute") {
		t.Errorf("failed call: %v", err)
	}
}
