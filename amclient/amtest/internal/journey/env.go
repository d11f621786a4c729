package journey

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/proof"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
)

// Env is what the journeys need of the server for one request:
// amclient/amtest makes one per /json/authenticate request.
type Env struct {
	// Realm is the request's realm path, Config the realm's configuration
	// as the request sees it: its trees, nodes, scripts and software
	// publishers.
	Realm  string
	Config *config.Realm
	// AdminUser is the administrator of the top-level realm: a thing may
	// not register under its name, and only a password check logs it in
	// as the administrator.
	AdminUser string
	// VerificationCAs returns the CAs that certificate registration
	// trusts (called only when a certificate is checked).
	VerificationCAs func() config.Certificates
	// Issuer is the realm's OAuth 2.0 issuer URL and Base AM's deployment
	// URL as the client addressed it: the audiences a client assertion may
	// name.
	Issuer, Base string
	// Now is the request's time, Skew the leeway of time checks and
	// MaxJWTLifetime the longest a PoP JWT or client assertion may live
	// (0: no ceiling).
	Now            time.Time
	Skew           time.Duration
	MaxJWTLifetime time.Duration
	// RequireAssertionJTI refuses a client assertion without jti.
	RequireAssertionJTI bool
	// Log and Ctx are the server's log and the request's context: nodes
	// log why they took a failure outcome (Info), the tree walk each
	// outcome and scripts their logger calls (Debug). A nil Log logs
	// nothing.
	Log *slog.Logger
	Ctx context.Context

	// CheckPassword checks a user's password in the realm: the Data Store
	// Decision node and zero-page login.
	CheckPassword func(user, password string) bool
	// Identity returns the realm's identity id (names compare as the
	// identity store compares them), nil when there is none.
	Identity func(id string) *identities.Identity
	// ChangeIdentity reads, changes and writes the realm's identity id in
	// one transaction: f gets the identity (a new one, with the store's
	// defaults, when created) and changes its Attrs; f's error stores
	// nothing and is returned as it is, a store failure ready for the log.
	// f may run more than once.
	ChangeIdentity func(id string, f func(x *identities.Identity, created bool) error) error
	// Update runs f in a write transaction of the server's store: the
	// records of used client-assertion jtis. Its error is f's, or a store
	// failure ready for the log.
	Update func(f func(tx store.Tx) error) error
}

// State is a tree evaluation in progress: the server keeps it between the
// requests of one journey, under the authId it hands out.
type State struct {
	// Realm and Tree are the journey's realm path and tree name.
	Realm, Tree string
	// Expires is when the journey may no longer be continued; the server
	// sets it.
	Expires time.Time

	node     string     // node being evaluated; "" before the entry node
	sent     []Callback // callbacks the node is waiting on
	nonce    string     // challenge of the node waiting on a PoP JWT
	username string
	password string
	claims   map[string]any
	// sharedState and transientState are AM's node states, as far as
	// scripts read them.
	sharedState    map[string]any
	transientState map[string]any
	extraAud       []string
	key            *jose.JSONWebKey
	restrict       bool
}

// Login is who a journey logged in: what the server's SSO session is made
// of.
type Login struct {
	// UID is the identity's ID (the administrator's as configured).
	UID string
	// Admin says the session is the administrator's.
	Admin bool
	// Key is the thing's confirmation key (public) when an IoT node
	// verified one; Restricted says whether requests must be signed with
	// it.
	Key        *jose.JSONWebKey
	Restricted bool
}

// Login is who st, a journey that ended in success, logged in. A journey
// that identified no user is a login failure.
func (e *Env) Login(st *State) (Login, error) {
	if st.username == "" {
		return Login{}, crest.ErrLoginFailure.WithLog("tree %q succeeded without identifying a user", st.Tree)
	}
	l := Login{UID: st.username, Restricted: st.restrict}
	if st.key != nil {
		l.Key = proof.PublicJWK(st.key)
	}
	// Only a password check makes an administrator session, never an IoT
	// node (whose verified claims are in st.claims).
	if e.Realm == "/" && st.claims == nil && strings.EqualFold(st.username, e.AdminUser) {
		l.Admin, l.UID = true, e.AdminUser
	}
	return l, nil
}

// ZeroPage is zero-page login (the X-OpenAM-Username and
// X-OpenAM-Password headers): a journey that checked the password, ended
// in success, for [Env.Login].
func (e *Env) ZeroPage(user, password string) (*State, error) {
	if !e.CheckPassword(user, password) {
		return nil, crest.ErrLoginFailure.WithLog("zero-page login for %q failed", user)
	}
	st := &State{Realm: e.Realm, username: user}
	if x := e.Identity(user); x != nil {
		st.username = x.ID
	}
	return st, nil
}

func (e *Env) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

func (e *Env) ctx() context.Context {
	if e.Ctx == nil {
		return context.Background()
	}
	return e.Ctx
}

// nodeFail logs why a node took its failure outcome; the client only sees
// AM's generic login failure.
func (e *Env) nodeFail(node, outcome, format string, args ...any) (string, []Callback, error) {
	e.log().LogAttrs(e.ctx(), slog.LevelInfo, "node outcome",
		slog.String("node", node), slog.String("outcome", outcome), slog.String("reason", fmt.Sprintf(format, args...)))
	return outcome, nil, nil
}
