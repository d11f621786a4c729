package journey

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
)

// The fake server of the tests: a realm's configuration, an identity
// store in a map, passwords, an in-memory store for jti records, a fixed
// clock and a log to read.

const (
	success = config.SuccessNodeID
	failure = config.FailureNodeID
)

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type fake struct {
	t         *testing.T
	realm     *config.Realm
	ids       map[string]*identities.Identity // by lower-case ID
	passwords map[string]string
	db        *store.Mem
	log       bytes.Buffer
}

func newFake(t *testing.T) *fake {
	f := &fake{t: t, realm: &config.Realm{Trees: map[string]*config.Tree{}, Nodes: map[string]*config.Node{},
		Scripts: map[string]*config.Script{}}, ids: map[string]*identities.Identity{}, passwords: map[string]string{},
		db: store.NewMem(func() time.Time { return testNow })}
	t.Cleanup(func() { f.db.Close() })
	return f
}

func (f *fake) env() *Env {
	return &Env{
		Realm: "/", Config: f.realm, AdminUser: "amAdmin",
		VerificationCAs: func() config.Certificates { return nil },
		Issuer:          "http://am.test/openam/oauth2", Base: "http://am.test/openam",
		Now: testNow, Skew: time.Minute, MaxJWTLifetime: 10 * time.Minute,
		Log: slog.New(slog.NewTextHandler(&f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		CheckPassword: func(user, password string) bool {
			pw, ok := f.passwords[strings.ToLower(user)]
			return user != "" && ok && pw == password
		},
		Identity: func(id string) *identities.Identity {
			if x := f.ids[strings.ToLower(id)]; x != nil {
				return &identities.Identity{ID: x.ID, Attrs: maps.Clone(x.Attrs)}
			}
			return nil
		},
		ChangeIdentity: func(id string, fn func(x *identities.Identity, created bool) error) error {
			cur := f.ids[strings.ToLower(id)]
			x := &identities.Identity{ID: id, Attrs: map[string][]string{"uid": {id}}}
			if cur != nil {
				x = &identities.Identity{ID: cur.ID, Attrs: maps.Clone(cur.Attrs)}
			}
			if err := fn(x, cur == nil); err != nil {
				return err
			}
			f.ids[strings.ToLower(id)] = x
			return nil
		},
		Update: f.db.Update,
	}
}

// tree adds a tree: its entry node and, per node, its type and its
// outcomes' connections.
func (f *fake) tree(name, entry string, nodes map[string]*config.Node, conns map[string]map[string]string) {
	tr := &config.Tree{EntryNodeID: entry, Nodes: map[string]*config.TreeNode{}}
	for id, n := range nodes {
		tr.Nodes[id] = &config.TreeNode{DisplayName: id, NodeType: n.Type, Connections: conns[id]}
		f.realm.Nodes[id] = n
	}
	f.realm.Trees[name] = tr
}

// loginFailure asserts that err is AM's 401 login failure with a log
// detail containing want.
func loginFailure(t *testing.T, err error, want string) {
	t.Helper()
	var ae *crest.Error
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Message != "Login failure" || !strings.Contains(ae.Log, want) {
		t.Fatalf("error = %v, want 401 Login failure with %q in the log detail", err, want)
	}
}

// answer fills the first input of each callback with the value given for
// its index.
func answer(cbs []Callback, vals ...string) []Callback {
	out := make([]Callback, len(cbs))
	for i, cb := range cbs {
		in := append([]NameValue(nil), cb.Input...)
		in[0].Value = vals[i]
		out[i] = Callback{Type: cb.Type, Output: cb.Output, Input: in}
	}
	return out
}

// thingKey is a thing's EC key, its public JWK set as the identity store
// keeps it.
type thingKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

func newThingKey(t *testing.T, kid string) *thingKey {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &thingKey{priv: priv, kid: kid}
}

func (k *thingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "ES256", Use: "sig"}
}

func (k *thingKey) jwks(t *testing.T) string {
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.public()}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sign signs claims (ES256), with the kid header when withKID.
func (k *thingKey) sign(t *testing.T, claims map[string]any, withKID bool) string {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if withKID {
		opts = opts.WithHeader("kid", k.kid)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
