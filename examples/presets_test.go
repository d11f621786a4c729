package examples_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/thingway/thingway/amclient/amtest"
)

var update = flag.Bool("update", false, "rewrite resources/am/*.json from amtest.GuideRealm")

// presetDir holds the AM configurations that the evaluation guide's
// dynamic-registration steps ask for, for ./run.sh am --config FILE.
const presetDir = "../resources/am"

// presets returns, by file name, the top-level realm as the evaluation
// guide sets it up for each step that changes node settings. A realm in a
// configuration file replaces the default realm wholesale, so each preset
// is the complete guide realm with the step's changes.
func presets(t *testing.T) map[string]*amtest.Config {
	t.Helper()
	out := map[string]*amtest.Config{}

	// Proof of possession and software statement: auth-reg-tree registers
	// with "Proof of Possession & Software Statement".
	r := amtest.GuideRealm()
	registerNode(t, r, "auth-reg-tree").JWTRegistrationMethod = amtest.RegPoPWithSoftwareStatement
	out["pop-sw-stmt.json"] = &amtest.Config{Realms: map[string]*amtest.Realm{"/": r}}

	// Proof of possession: auth-reg-tree registers with "Proof of Possession".
	r = amtest.GuideRealm()
	registerNode(t, r, "auth-reg-tree").JWTRegistrationMethod = amtest.RegPoPWithoutTrust
	out["pop.json"] = &amtest.Config{Realms: map[string]*amtest.Realm{"/": r}}

	// Software statement: auth-tree authenticates with a client assertion
	// and issues unrestricted sessions; reg-tree registers with "Software
	// Statement", creating the identity with thingType=device.
	r = amtest.GuideRealm()
	auth := authenticateNode(t, r, "auth-tree")
	auth.JWTAuthenticationMethod = amtest.AuthClientAssertion
	auth.IssueRestrictedToken = false
	reg := registerNode(t, r, "reg-tree")
	reg.JWTRegistrationMethod = amtest.RegSoftwareStatementOnly
	reg.CreateIdentity = true
	reg.DefaultAttributeValues = map[string]string{"thingType": "device"}
	out["sw-stmt.json"] = &amtest.Config{Realms: map[string]*amtest.Realm{"/": r}}
	return out
}

// nodeOf returns the settings of the only node of type typ in tree.
func nodeOf(t *testing.T, r *amtest.Realm, tree, typ string) *amtest.Node {
	t.Helper()
	var found *amtest.Node
	for id, tn := range r.Trees[tree].Nodes {
		if tn.NodeType == typ {
			if found != nil {
				t.Fatalf("tree %s has more than one %s", tree, typ)
			}
			found = r.Nodes[id]
		}
	}
	if found == nil {
		t.Fatalf("tree %s has no %s", tree, typ)
	}
	return found
}

func registerNode(t *testing.T, r *amtest.Realm, tree string) *amtest.IoTRegistrationNode {
	return nodeOf(t, r, tree, amtest.NodeTypeIoTRegistration).Registration
}

func authenticateNode(t *testing.T, r *amtest.Realm, tree string) *amtest.IoTAuthenticationNode {
	return nodeOf(t, r, tree, amtest.NodeTypeIoTAuthentication).Authentication
}

func marshalPreset(t *testing.T, c *amtest.Config) []byte {
	t.Helper()
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestPresets checks resources/am/*.json against the guide realm with each
// step's changes; go test ./examples -run TestPresets -update rewrites
// them (after amtest's defaults or the example PKI change).
func TestPresets(t *testing.T) {
	for name, cfg := range presets(t) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(presetDir, name)
			want := marshalPreset(t, cfg)
			if *update {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s is out of date; run go test ./examples -run TestPresets -update", path)
			}
		})
	}
}

// TestLoadPresets loads every file of resources/am as amlocal --config
// does, and checks that the realm it yields is the intended one.
func TestLoadPresets(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(presetDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no presets in %s: %v", presetDir, err)
	}
	want := presets(t)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cfg, err := amtest.LoadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			w, ok := want[filepath.Base(path)]
			if !ok {
				t.Fatalf("%s is not a known preset", path)
			}
			got := marshalPreset(t, &amtest.Config{Realms: map[string]*amtest.Realm{"/": cfg.Realms["/"]}})
			if !bytes.Equal(got, marshalPreset(t, w)) {
				t.Errorf("loading %s does not give the intended realm /:\n%s", path, got)
			}
			// The loaded configuration must also start a server.
			srv := amtest.NewUnstartedServer()
			srv.Config = cfg
			if err := srv.Init(); err != nil {
				t.Fatal(err)
			}
			srv.Close()
		})
	}
}
