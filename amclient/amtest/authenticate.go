package amtest

import (
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/journey"
	"github.com/thingway/thingway/amclient/amtest/internal/proof"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// The HTTP side of the journeys: POST /json/authenticate reads the request
// (the tree, the authId and its callbacks, zero-page headers), hands the
// walk to amclient/amtest/internal/journey, keeps the journey in progress
// under a signed authId and answers with the callbacks or a new SSO
// session.

// authState is a tree evaluation in progress.
type authState = journey.State

const maxAuthsInProgress = 100000

type authRequest struct {
	AuthID    string             `json:"authId"`
	Callbacks []journey.Callback `json:"callbacks"`
}

// journeyEnv is what the journeys need of the server for the request c.
func (s *Server) journeyEnv(c *reqCtx) *journey.Env {
	return &journey.Env{
		Realm: c.realm, Config: c.rc, AdminUser: c.cfg.AdminUser, VerificationCAs: c.cfg.VerificationCAs,
		Issuer: c.issuer(), Base: c.base,
		Now: c.now, Skew: s.skew(), MaxJWTLifetime: s.maxJWTLifetime(), RequireAssertionJTI: s.RequireAssertionJTI,
		Log: s.log, Ctx: c.r.Context(),
		CheckPassword: func(user, password string) bool { return s.checkPassword(c.realm, user, password) },
		Identity:      func(id string) *identity { return s.getIdentity(c.realm, id) },
		ChangeIdentity: func(id string, f func(x *identity, created bool) error) error {
			_, err := s.changeIdentity(c.realm, id, func(x *identity) (*identity, error) {
				created := x == nil
				if created {
					x = identities.New(c.realm, id, c.now)
				}
				if err := f(x, created); err != nil {
					return nil, err
				}
				x.Rev++
				return x, nil
			})
			return err
		},
		Update: s.updateStore,
	}
}

// updateStore runs f in a write transaction of the store, its failures
// marked for the log.
func (s *Server) updateStore(f func(tx store.Tx) error) error { return storeErr(s.db.Update(f)) }

func (s *Server) handleAuthenticate(c *reqCtx) error {
	if c.r.Method != http.MethodPost {
		return crest.Err(http.StatusMethodNotAllowed, "Method Not Allowed")
	}
	body, err := c.readBody()
	if err != nil {
		return err
	}
	var req authRequest
	if err := c.decodeJSON(body, &req); err != nil {
		return err
	}
	env := s.journeyEnv(c)
	if user := c.r.Header.Get("X-OpenAM-Username"); user != "" && req.AuthID == "" && len(req.Callbacks) == 0 {
		st, err := env.ZeroPage(user, c.r.Header.Get("X-OpenAM-Password"))
		if err != nil {
			return err
		}
		return s.finishLogin(c, env, st)
	}
	var st *authState
	if req.AuthID == "" {
		tree, err := s.selectTree(c)
		if err != nil {
			return err
		}
		st = &authState{Realm: c.realm, Tree: tree}
	} else {
		if st, err = s.takeAuthState(c, req.AuthID); err != nil {
			return err
		}
	}
	st.Expires = c.now.Add(s.authTimeout())
	cbs, outcome, err := env.Run(st, req.Callbacks)
	if err != nil {
		return err
	}
	switch {
	case cbs != nil:
		authID, err := s.putAuthState(st, c.now)
		if err != nil {
			return err
		}
		crest.WriteJSON(c.w, http.StatusOK, map[string]any{"authId": authID, "callbacks": cbs})
		return nil
	case outcome == SuccessNodeID:
		s.metrics.treeEnded(st.Tree, true)
		return s.finishLogin(c, env, st)
	default:
		s.metrics.treeEnded(st.Tree, false)
		return errLoginFailure.WithLog("tree %q ended in failure", st.Tree)
	}
}

// selectTree picks the tree from authIndexType/authIndexValue; without them
// the realm's default, ldapService.
func (s *Server) selectTree(c *reqCtx) (string, error) {
	q := c.r.URL.Query()
	typ, val := q.Get("authIndexType"), q.Get("authIndexValue")
	if typ == "" && val == "" {
		typ, val = "service", "ldapService"
	}
	if typ != "service" && typ != "composite_advice" {
		return "", crest.Err(http.StatusBadRequest, "Invalid authIndexType "+typ)
	}
	if typ == "composite_advice" {
		return "", crest.Err(http.StatusNotImplemented, "Unsupported authIndexType composite_advice")
	}
	if _, ok := c.rc.Trees[val]; !ok || val == "" {
		return "", crest.Err(http.StatusBadRequest, "No Configuration found").WithLog("no tree %q in realm %s", val, c.realm)
	}
	return val, nil
}

// authId is a JWT (HS256) naming the server-side state, as AM 7's authIds
// are JWT-shaped. Each one is good for a single continuation.
type authIDClaims struct {
	SID   string `json:"sessionId"`
	Realm string `json:"realm"`
	Tree  string `json:"authIndexValue"`
	Type  string `json:"authIndexType"`
	Exp   int64  `json:"exp"`
}

func (s *Server) putAuthState(st *authState, now time.Time) (string, error) {
	sid := tokens.RandomID(24)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: s.keys.AuthIDKey}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	tok, err := jwt.Signed(sig).Claims(authIDClaims{SID: sid, Realm: st.Realm, Tree: st.Tree, Type: "service", Exp: st.Expires.Unix()}).Serialize()
	if err != nil {
		return "", err
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if len(s.st.auths) >= maxAuthsInProgress {
		s.st.lastSweep = time.Time{}
		s.sweepLocked(now)
		if len(s.st.auths) >= maxAuthsInProgress {
			return "", crest.Err(http.StatusServiceUnavailable, "Too many authentications in progress")
		}
	}
	s.st.auths[sid] = st
	return tok, nil
}

// takeAuthState verifies an authId and removes its state, so that it cannot be replayed.
func (s *Server) takeAuthState(c *reqCtx, authID string) (*authState, error) {
	if err := proof.CheckCompactJSON(authID); err != nil {
		return nil, errLoginFailure.WithLog("malformed authId: %v", err)
	}
	t, err := jwt.ParseSigned(authID, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		return nil, errLoginFailure.WithLog("malformed authId: %v", err)
	}
	var cl authIDClaims
	if err := t.Claims(s.keys.AuthIDKey, &cl); err != nil {
		return nil, errLoginFailure.WithLog("authId signature: %v", err)
	}
	s.st.mu.Lock()
	st := s.st.auths[cl.SID]
	delete(s.st.auths, cl.SID)
	s.st.mu.Unlock()
	if st == nil {
		return nil, errLoginFailure.WithLog("authId unknown or already used")
	}
	if !c.now.Before(st.Expires) {
		return nil, errLoginFailure.WithLog("authId expired")
	}
	if st.Realm != c.realm {
		return nil, errLoginFailure.WithLog("authId of realm %s used in realm %s", st.Realm, c.realm)
	}
	return st, nil
}

// finishLogin makes the SSO session of the journey st, which ended in
// success, and answers its token.
func (s *Server) finishLogin(c *reqCtx, env *journey.Env, st *authState) error {
	l, err := env.Login(st)
	if err != nil {
		return err
	}
	x := &session{UID: l.UID, Realm: c.realm, Admin: l.Admin, Key: l.Key, Restricted: l.Restricted}
	tok, err := s.newSession(x, c.now)
	if err != nil {
		return err
	}
	crest.WriteJSON(c.w, http.StatusOK, map[string]string{"tokenId": tok, "successUrl": s.base + "/console", "realm": c.realm})
	return nil
}

// checkPassword checks a user's password: the administrator's in the
// top-level realm, else the identity's userPassword. Inactive users fail
// (see [identities.Identity.CheckPassword]).
func (s *Server) checkPassword(realm, user, password string) bool {
	if user == "" {
		return false
	}
	if cfg := s.config(); realm == "/" && strings.EqualFold(user, cfg.AdminUser) {
		return identities.ConstantTimeEqual(password, cfg.AdminPassword)
	}
	x := s.getIdentity(realm, user)
	return x != nil && x.CheckPassword(password)
}
