package journey

import (
	"errors"
	"log/slog"
	"slices"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/script"
)

// maxSteps bounds the nodes one request evaluates, so that a tree that
// loops without asking for input fails.
const maxSteps = 100

// Run walks st's tree from the node it is at (the entry node at first),
// giving the node that sent callbacks the answers to them, until a node
// needs input (the callbacks to send, and the server keeps st) or the tree
// ends (outcome is config.SuccessNodeID or config.FailureNodeID). Its
// errors are AM's answers: a login failure with a detail for the log, or a
// store failure.
func (e *Env) Run(st *State, answers []Callback) ([]Callback, string, error) {
	tree := e.Config.Trees[st.Tree]
	if tree == nil {
		return nil, "", crest.ErrLoginFailure.WithLog("tree %q was removed", st.Tree)
	}
	if st.node == "" {
		st.node = tree.EntryNodeID
	}
	for steps := 0; steps < maxSteps; steps++ {
		if st.node == config.SuccessNodeID || st.node == config.FailureNodeID {
			return nil, st.node, nil
		}
		tn, n := tree.Nodes[st.node], e.Config.Nodes[st.node]
		if tn == nil || n == nil {
			return nil, "", crest.ErrLoginFailure.WithLog("node %s is not configured", st.node)
		}
		outcome, cbs, err := e.processNode(st, n, answers)
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
			return nil, "", crest.ErrLoginFailure.WithLog("node %s outcome %q is not connected", st.node, outcome)
		}
		e.log().Debug("tree node", "tree", st.Tree, "node", tn.DisplayName, "outcome", outcome)
		st.node = next
	}
	return nil, "", crest.ErrLoginFailure.WithLog("tree %q loops", st.Tree)
}

// processNode runs one node. A node that needs input returns callbacks;
// when the answers arrive it is run again with them.
func (e *Env) processNode(st *State, n *config.Node, answers []Callback) (string, []Callback, error) {
	waiting := st.sent != nil
	if waiting && answers == nil {
		return "false", nil, crest.ErrLoginFailure.WithLog("callbacks were not answered")
	}
	switch n.Type {
	case config.NodeTypeUsernameCollector, config.NodeTypePasswordCollector:
		return collectorNode(st, n.Type, answers, waiting)
	case config.NodeTypeDataStoreDecision:
		if e.CheckPassword(st.username, st.password) {
			return "true", nil, nil
		}
		return "false", nil, nil
	case config.NodeTypeIoTAuthentication:
		return e.authenticateThingNode(st, n.Authentication, answers, waiting)
	case config.NodeTypeIoTRegistration:
		return e.registerThingNode(st, n.Registration, answers, waiting)
	case config.NodeTypeScriptedDecision:
		return e.scriptedDecisionNode(st, n.Scripted)
	}
	return "", nil, crest.ErrLoginFailure.WithLog("node type %s cannot be evaluated", n.Type)
}

// collectorNode is the Username Collector and Password Collector nodes:
// a NameCallback or PasswordCallback, then the outcome "outcome".
func collectorNode(st *State, nodeType string, answers []Callback, waiting bool) (string, []Callback, error) {
	typ, prompt := "NameCallback", "User Name"
	if nodeType == config.NodeTypePasswordCollector {
		typ, prompt = "PasswordCallback", "Password"
	}
	sent := []Callback{promptCallback(typ, prompt, 1)}
	if !waiting && answers == nil {
		return "", sent, nil
	}
	v, ok := answerFor(sent, answers, 0)
	if !ok {
		return "", nil, crest.ErrLoginFailure.WithLog("%s not answered", typ)
	}
	if nodeType == config.NodeTypeUsernameCollector {
		st.username = v
	} else {
		st.password = v
	}
	return "outcome", nil, nil
}

// errNodeFailure, from a ChangeIdentity function, takes the node's
// failure outcome.
var errNodeFailure = errors.New("node failure")

// scriptedDecisionNode runs the node's script (within [script.Subset]) on
// the verified claims in the node states and takes the outcome it sets.
func (e *Env) scriptedDecisionNode(st *State, cfg *config.ScriptedDecisionNode) (string, []Callback, error) {
	sc := e.Config.Scripts[cfg.Script]
	if sc == nil {
		return "", nil, crest.ErrLoginFailure.WithLog("script %s of a Scripted Decision node is not in realm %s", cfg.Script, e.Realm)
	}
	prog, err := config.CompileScript(sc)
	if err != nil {
		return "", nil, crest.ErrLoginFailure.WithLog("script %s: %v", cfg.Script, err)
	}
	claims := map[string]map[string]any{}
	stateClaims := func(m map[string]any) map[string]any {
		v, _ := m[script.VerifiedClaimsKey].(map[string]any)
		return v
	}
	claims["transientState"] = stateClaims(st.transientState)
	claims["sharedState"] = stateClaims(st.sharedState)
	claims["nodeState"] = claims["transientState"]
	if claims["nodeState"] == nil {
		claims["nodeState"] = claims["sharedState"]
	}
	outcome, err := prog.Run(claims, func(level, msg string) {
		e.log().LogAttrs(e.ctx(), slog.LevelDebug, "script log", slog.String("script", sc.Name),
			slog.String("level", level), slog.String("message", msg))
	})
	if err != nil {
		return "", nil, crest.ErrLoginFailure.WithLog("script %s (%s): %v", cfg.Script, sc.Name, err)
	}
	if !slices.Contains(cfg.Outcomes, outcome) {
		return "", nil, crest.ErrLoginFailure.WithLog("script %s set outcome %q, which the node does not have", cfg.Script, outcome)
	}
	return outcome, nil, nil
}
