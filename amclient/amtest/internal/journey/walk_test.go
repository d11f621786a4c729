package journey

import (
	"strings"
	"testing"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/script"
)

// passwordTree is the username-password journey: Username Collector,
// Password Collector, Data Store Decision.
func passwordTree(f *fake) {
	f.tree("pw", "user", map[string]*config.Node{
		"user": {Type: config.NodeTypeUsernameCollector},
		"pass": {Type: config.NodeTypePasswordCollector},
		"ds":   {Type: config.NodeTypeDataStoreDecision},
	}, map[string]map[string]string{
		"user": {"outcome": "pass"},
		"pass": {"outcome": "ds"},
		"ds":   {"true": success, "false": failure},
	})
}

// The walk asks for the username, then the password, one request each,
// and ends where the data store decision's outcome leads.
func TestRunPasswordJourney(t *testing.T) {
	for _, tc := range []struct {
		user, password, outcome string
		login                   Login
	}{
		// The username as typed: only zero-page login looks the identity up.
		{"alice", "secret", success, Login{UID: "alice"}},
		{"alice", "wrong", failure, Login{}},
		{"AMADMIN", "changeit", success, Login{UID: "amAdmin", Admin: true}},
	} {
		f := newFake(t)
		passwordTree(f)
		f.ids["alice"] = &identities.Identity{ID: "Alice", Attrs: map[string][]string{}}
		f.passwords["alice"], f.passwords["amadmin"] = "secret", "changeit"
		e := f.env()
		st := &State{Realm: "/", Tree: "pw"}

		cbs, outcome, err := e.Run(st, nil)
		if err != nil || outcome != "" || len(cbs) != 1 || cbs[0].Type != "NameCallback" ||
			cbs[0].Output[0].Value != "User Name" || cbs[0].Input[0].Name != "IDToken1" {
			t.Fatalf("first step = %+v, %q, %v; want a NameCallback", cbs, outcome, err)
		}
		cbs, outcome, err = e.Run(st, answer(cbs, tc.user))
		if err != nil || outcome != "" || len(cbs) != 1 || cbs[0].Type != "PasswordCallback" {
			t.Fatalf("second step = %+v, %q, %v; want a PasswordCallback", cbs, outcome, err)
		}
		cbs, outcome, err = e.Run(st, answer(cbs, tc.password))
		if err != nil || cbs != nil || outcome != tc.outcome {
			t.Fatalf("%s/%s: last step = %+v, %q, %v; want outcome %s", tc.user, tc.password, cbs, outcome, err, tc.outcome)
		}
		if outcome != success {
			continue
		}
		if l, err := e.Login(st); err != nil || l != tc.login {
			t.Errorf("Login = %+v, %v; want %+v", l, err, tc.login)
		}
		if !strings.Contains(f.log.String(), `msg="tree node" tree=pw node=ds outcome=true`) {
			t.Errorf("log = %s; want the data store decision's outcome", f.log.String())
		}
	}
}

// Zero-page login checks the password and logs the identity in under its
// own ID.
func TestZeroPage(t *testing.T) {
	f := newFake(t)
	f.ids["alice"] = &identities.Identity{ID: "Alice", Attrs: map[string][]string{}}
	f.passwords["alice"] = "secret"
	e := f.env()
	st, err := e.ZeroPage("ALICE", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if l, err := e.Login(st); err != nil || l != (Login{UID: "Alice"}) {
		t.Errorf("Login = %+v, %v", l, err)
	}
	_, err = e.ZeroPage("alice", "wrong")
	loginFailure(t, err, `zero-page login for "alice" failed`)
}

// A journey fails, with the reason in the log detail, when its tree or
// node is gone, an outcome leads nowhere, the callbacks sent are not
// answered, or it loops.
func TestRunFailures(t *testing.T) {
	ds := map[string]*config.Node{"ds": {Type: config.NodeTypeDataStoreDecision}}
	for _, tc := range []struct {
		name  string
		setup func(f *fake)
		steps int // requests answered before the one that fails
		want  string
	}{
		{"tree removed", func(f *fake) {}, 0, `tree "t" was removed`},
		{"node missing", func(f *fake) {
			f.tree("t", "ds", ds, map[string]map[string]string{"ds": {"false": "gone"}})
		}, 0, "node gone is not configured"},
		{"outcome not connected", func(f *fake) {
			f.tree("t", "ds", ds, map[string]map[string]string{"ds": {"true": success}})
		}, 0, `node ds outcome "false" is not connected`},
		{"loop", func(f *fake) {
			f.tree("t", "ds", ds, map[string]map[string]string{"ds": {"false": "ds"}})
		}, 0, `tree "t" loops`},
		{"not answered", passwordTree, 1, "callbacks were not answered"},
		{"unknown node type", func(f *fake) {
			f.tree("t", "x", map[string]*config.Node{"x": {Type: "PageNode"}}, nil)
		}, 0, "node type PageNode cannot be evaluated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			tc.setup(f)
			e := f.env()
			tree := "t"
			if _, ok := f.realm.Trees["pw"]; ok {
				tree = "pw"
			}
			st := &State{Realm: "/", Tree: tree}
			for range tc.steps {
				if cbs, _, err := e.Run(st, nil); err != nil || cbs == nil {
					t.Fatalf("step = %v, %v", cbs, err)
				}
			}
			cbs, outcome, err := e.Run(st, nil)
			if cbs != nil || outcome != "" {
				t.Errorf("Run = %v, %q", cbs, outcome)
			}
			loginFailure(t, err, tc.want)
		})
	}
}

// A journey that ends in success without identifying anyone logs no one
// in.
func TestLoginWithoutUser(t *testing.T) {
	f := newFake(t)
	_, err := f.env().Login(&State{Realm: "/", Tree: "t"})
	loginFailure(t, err, `tree "t" succeeded without identifying a user`)
}

// The Scripted Decision node runs its script on the claims in the node
// states and takes the outcome it sets, which the node must have.
func TestScriptedDecision(t *testing.T) {
	const src = `outcome = "true"
def claims = transientState.get("` + script.VerifiedClaimsKey + `")
if (claims == null || claims.get("answer") != "42") {
    outcome = "false"
}
logger.message("checked")`
	for _, tc := range []struct {
		name     string
		claims   map[string]any
		outcomes []string
		want     string // outcome, or the log detail of a login failure
	}{
		{"claim matches", map[string]any{"answer": "42"}, []string{"true", "false"}, success},
		{"claim differs", map[string]any{"answer": "41"}, []string{"true", "false"}, failure},
		{"no claims", nil, []string{"true", "false"}, failure},
		{"outcome the node lacks", map[string]any{"answer": "42"}, []string{"false"}, `set outcome "true", which the node does not have`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.realm.Scripts["s1"] = &config.Script{Name: "check", Source: src, Language: config.ScriptGroovy,
				Context: config.ScriptContextDecisionNode}
			f.tree("t", "sd", map[string]*config.Node{"sd": {Type: config.NodeTypeScriptedDecision,
				Scripted: &config.ScriptedDecisionNode{Script: "s1", Outcomes: tc.outcomes}}},
				map[string]map[string]string{"sd": {"true": success, "false": failure}})
			st := &State{Realm: "/", Tree: "t"}
			if tc.claims != nil {
				st.transientState = map[string]any{script.VerifiedClaimsKey: tc.claims}
			}
			cbs, outcome, err := f.env().Run(st, nil)
			if tc.want != success && tc.want != failure {
				loginFailure(t, err, tc.want)
				return
			}
			if err != nil || cbs != nil || outcome != tc.want {
				t.Fatalf("Run = %v, %q, %v; want %s", cbs, outcome, err, tc.want)
			}
			if !strings.Contains(f.log.String(), `msg="script log" script=check level=message message=checked`) {
				t.Errorf("log = %s; want the script's logger call", f.log.String())
			}
		})
	}
	f := newFake(t)
	f.tree("t", "sd", map[string]*config.Node{"sd": {Type: config.NodeTypeScriptedDecision,
		Scripted: &config.ScriptedDecisionNode{Script: "gone", Outcomes: []string{"true"}}}}, nil)
	_, _, err := f.env().Run(&State{Realm: "/", Tree: "t"}, nil)
	loginFailure(t, err, "script gone of a Scripted Decision node is not in realm /")
}
