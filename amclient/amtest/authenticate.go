package amtest

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/proof"
)

// Callback is one AM authentication callback.
type callback struct {
	Type   string      `json:"type"`
	Output []nameValue `json:"output"`
	Input  []nameValue `json:"input"`
}

type nameValue struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// IoT callback IDs.
const (
	cbPoPAuthentication = "jwt-pop-authentication"
	cbClientAssertion   = "client_assertion"
	cbPoPRegistration   = "jwt-pop-registration"
	cbSoftwareStatement = "software_statement"
)

func hiddenCallback(id, value string, index int) callback {
	return callback{Type: "HiddenValueCallback",
		Output: []nameValue{{Name: "value", Value: value}, {Name: "id", Value: id}},
		Input:  []nameValue{{Name: fmt.Sprintf("IDToken%d", index), Value: id}}}
}

func promptCallback(typ, prompt string, index int) callback {
	return callback{Type: typ,
		Output: []nameValue{{Name: "prompt", Value: prompt}},
		Input:  []nameValue{{Name: fmt.Sprintf("IDToken%d", index), Value: ""}}}
}

// authState is a tree evaluation in progress.
type authState struct {
	realm    string
	tree     string
	node     string     // node being evaluated; "" before the entry node
	sent     []callback // callbacks the node is waiting on
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
	expires        time.Time
}

const maxAuthsInProgress = 100000

type authRequest struct {
	AuthID    string     `json:"authId"`
	Callbacks []callback `json:"callbacks"`
}

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
	if user := c.r.Header.Get("X-OpenAM-Username"); user != "" && req.AuthID == "" && len(req.Callbacks) == 0 {
		return s.zeroPageLogin(c, user, c.r.Header.Get("X-OpenAM-Password"))
	}
	var st *authState
	if req.AuthID == "" {
		tree, err := s.selectTree(c)
		if err != nil {
			return err
		}
		st = &authState{realm: c.realm, tree: tree}
	} else {
		if st, err = s.takeAuthState(c, req.AuthID); err != nil {
			return err
		}
	}
	st.expires = c.now.Add(s.authTimeout())
	cbs, outcome, err := s.runTree(c, st, req.Callbacks)
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
		s.metrics.treeEnded(st.tree, true)
		return s.finishLogin(c, st)
	default:
		s.metrics.treeEnded(st.tree, false)
		return errLoginFailure.WithLog("tree %q ended in failure", st.tree)
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
	sid := randomID(24)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: s.keys.AuthIDKey}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	tok, err := jwt.Signed(sig).Claims(authIDClaims{SID: sid, Realm: st.realm, Tree: st.tree, Type: "service", Exp: st.expires.Unix()}).Serialize()
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
	if !c.now.Before(st.expires) {
		return nil, errLoginFailure.WithLog("authId expired")
	}
	if st.realm != c.realm {
		return nil, errLoginFailure.WithLog("authId of realm %s used in realm %s", st.realm, c.realm)
	}
	return st, nil
}

// runTree evaluates nodes until one needs input (callbacks) or the tree ends
// (outcome is SuccessNodeID or FailureNodeID).
func (s *Server) runTree(c *reqCtx, st *authState, answers []callback) ([]callback, string, error) {
	tree := c.rc.Trees[st.tree]
	if tree == nil {
		return nil, "", errLoginFailure.WithLog("tree %q was removed", st.tree)
	}
	if st.node == "" {
		st.node = tree.EntryNodeID
	}
	for steps := 0; steps < 100; steps++ {
		if st.node == SuccessNodeID || st.node == FailureNodeID {
			return nil, st.node, nil
		}
		tn, n := tree.Nodes[st.node], c.rc.Nodes[st.node]
		if tn == nil || n == nil {
			return nil, "", errLoginFailure.WithLog("node %s is not configured", st.node)
		}
		outcome, cbs, err := s.processNode(c, st, n, answers)
		answers = nil
		if err != nil {
			return nil, "", err
		}
		if cbs != nil {
			st.sent = cbs
			return cbs, "", nil
		}
		st.sent, st.nonce = nil, ""
		next, ok := tn.Connections[outcome]
		if !ok {
			return nil, "", errLoginFailure.WithLog("node %s outcome %q is not connected", st.node, outcome)
		}
		s.log.Debug("tree node", "tree", st.tree, "node", tn.DisplayName, "outcome", outcome)
		st.node = next
	}
	return nil, "", errLoginFailure.WithLog("tree %q loops", st.tree)
}

// answerFor returns the string input of the answered callback at index i of
// the sent list, matching a HiddenValueCallback by its id output.
func answerFor(sent []callback, answers []callback, i int) (string, bool) {
	want := sent[i]
	var got *callback
	if want.Type == "HiddenValueCallback" {
		id := outputValue(want, "id")
		for j := range answers {
			if answers[j].Type == want.Type && outputValue(answers[j], "id") == id {
				got = &answers[j]
				break
			}
		}
	} else if i < len(answers) && answers[i].Type == want.Type {
		got = &answers[i]
	}
	if got == nil || len(got.Input) == 0 {
		return "", false
	}
	v, ok := got.Input[0].Value.(string)
	return v, ok
}

func outputValue(cb callback, name string) string {
	for _, o := range cb.Output {
		if o.Name == name {
			s, _ := o.Value.(string)
			return s
		}
	}
	return ""
}

// processNode runs one node. A node that needs input returns callbacks;
// when the answers arrive it is run again with them.
func (s *Server) processNode(c *reqCtx, st *authState, n *Node, answers []callback) (string, []callback, error) {
	waiting := st.sent != nil
	if waiting && answers == nil {
		return "false", nil, errLoginFailure.WithLog("callbacks were not answered")
	}
	switch n.Type {
	case NodeTypeUsernameCollector, NodeTypePasswordCollector:
		typ, prompt := "NameCallback", "User Name"
		if n.Type == NodeTypePasswordCollector {
			typ, prompt = "PasswordCallback", "Password"
		}
		sent := []callback{promptCallback(typ, prompt, 1)}
		if !waiting && answers == nil {
			return "", sent, nil
		}
		v, ok := answerFor(sent, answers, 0)
		if !ok {
			return "", nil, errLoginFailure.WithLog("%s not answered", typ)
		}
		if n.Type == NodeTypeUsernameCollector {
			st.username = v
		} else {
			st.password = v
		}
		return "outcome", nil, nil
	case NodeTypeDataStoreDecision:
		if s.checkPassword(c.realm, st.username, st.password) {
			return "true", nil, nil
		}
		return "false", nil, nil
	case NodeTypeIoTAuthentication:
		return s.authenticateThingNode(c, st, n.Authentication, answers, waiting)
	case NodeTypeIoTRegistration:
		return s.registerThingNode(c, st, n.Registration, answers, waiting)
	case NodeTypeScriptedDecision:
		return s.scriptedDecisionNode(c, st, n.Scripted)
	}
	return "", nil, errLoginFailure.WithLog("node type %s cannot be evaluated", n.Type)
}

func (s *Server) finishLogin(c *reqCtx, st *authState) error {
	if st.username == "" {
		return errLoginFailure.WithLog("tree %q succeeded without identifying a user", st.tree)
	}
	x := &session{UID: st.username, Realm: c.realm, Restricted: st.restrict}
	if st.key != nil {
		x.Key = proof.PublicJWK(st.key)
	}
	// Only a password check makes an administrator session, never an IoT
	// node (whose verified claims are in st.claims).
	if c.realm == "/" && st.claims == nil && equalFoldASCII(st.username, c.cfg.AdminUser) {
		x.Admin, x.UID = true, c.cfg.AdminUser
	}
	tok, err := s.newSession(x, c.now)
	if err != nil {
		return err
	}
	crest.WriteJSON(c.w, http.StatusOK, map[string]string{"tokenId": tok, "successUrl": s.base + "/console", "realm": c.realm})
	return nil
}

func (s *Server) zeroPageLogin(c *reqCtx, user, password string) error {
	if !s.checkPassword(c.realm, user, password) {
		return errLoginFailure.WithLog("zero-page login for %q failed", user)
	}
	st := &authState{realm: c.realm, username: user}
	if x := s.getIdentity(c.realm, user); x != nil {
		st.username = x.ID
	}
	return s.finishLogin(c, st)
}

// checkPassword checks a user's password: the administrator's in the
// top-level realm, else the identity's userPassword. Inactive users fail.
func (s *Server) checkPassword(realm, user, password string) bool {
	if user == "" {
		return false
	}
	if cfg := s.config(); realm == "/" && equalFoldASCII(user, cfg.AdminUser) {
		return constantTimeEqual(password, cfg.AdminPassword)
	}
	x := s.getIdentity(realm, user)
	if x == nil || x.PasswordHash == "" {
		return false
	}
	if st := x.first("inetUserStatus"); st != "" && !equalFoldASCII(st, "Active") {
		return false
	}
	return checkPasswordHash(x.PasswordHash, password)
}

var errNodeFailure = errors.New("node failure")

// scriptedDecisionNode runs the node's script (within [ScriptSubset]) on
// the verified claims in the node states and takes the outcome it sets.
func (s *Server) scriptedDecisionNode(c *reqCtx, st *authState, cfg *ScriptedDecisionNode) (string, []callback, error) {
	sc := c.rc.Scripts[cfg.Script]
	if sc == nil {
		return "", nil, errLoginFailure.WithLog("script %s of a Scripted Decision node is not in realm %s", cfg.Script, c.realm)
	}
	prog, err := config.CompileScript(sc)
	if err != nil {
		return "", nil, errLoginFailure.WithLog("script %s: %v", cfg.Script, err)
	}
	claims := map[string]map[string]any{}
	stateClaims := func(m map[string]any) map[string]any {
		v, _ := m[VerifiedClaimsKey].(map[string]any)
		return v
	}
	claims["transientState"] = stateClaims(st.transientState)
	claims["sharedState"] = stateClaims(st.sharedState)
	claims["nodeState"] = claims["transientState"]
	if claims["nodeState"] == nil {
		claims["nodeState"] = claims["sharedState"]
	}
	outcome, err := prog.Run(claims, func(level, msg string) {
		s.log.LogAttrs(c.r.Context(), slog.LevelDebug, "script log", slog.String("script", sc.Name),
			slog.String("level", level), slog.String("message", msg))
	})
	if err != nil {
		return "", nil, errLoginFailure.WithLog("script %s (%s): %v", cfg.Script, sc.Name, err)
	}
	if !slices.Contains(cfg.Outcomes, outcome) {
		return "", nil, errLoginFailure.WithLog("script %s set outcome %q, which the node does not have", cfg.Script, outcome)
	}
	return outcome, nil, nil
}
