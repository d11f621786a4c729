package config

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/script"
)

// Validate checks that realm paths are well formed, trees only reference
// configured nodes with the right types, and outcomes lead somewhere.
func (c *Config) Validate() error {
	if _, ok := c.Realms["/"]; !ok {
		return errors.New("the top-level realm \"/\" is missing")
	}
	paths := make([]string, 0, len(c.Realms))
	for p := range c.Realms {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	aliases := map[string]string{}
	for _, p := range paths {
		if p != "/" && (!strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//")) {
			return fmt.Errorf("realm %q: a realm path looks like /a or /a/b", p)
		}
		if p != "/" {
			parent := p[:strings.LastIndex(p, "/")]
			if parent == "" {
				parent = "/"
			}
			if _, ok := c.Realms[parent]; !ok {
				return fmt.Errorf("realm %q: parent realm %q is not configured", p, parent)
			}
		}
		r := c.Realms[p]
		if r == nil {
			return fmt.Errorf("realm %q is null", p)
		}
		for _, a := range r.Aliases {
			if other, dup := aliases[strings.ToLower(a)]; dup {
				return fmt.Errorf("realm %q: alias %q is already used by realm %q", p, a, other)
			}
			aliases[strings.ToLower(a)] = p
		}
		if err := validateRealm(r); err != nil {
			return fmt.Errorf("realm %q, %w", p, err)
		}
	}
	ks := Keystore(c)
	for _, a := range c.SecretMappings[CertVerificationSecretID] {
		if _, ok := ks[a]; !ok {
			return fmt.Errorf("secret %s is mapped to the alias %q, which is not in the keystore (add its CA certificate to keystoreAliases)", CertVerificationSecretID, a)
		}
	}
	return nil
}

// validateRealm checks one realm: its nodes, scripts, trees and services.
func validateRealm(r *Realm) error {
	for _, id := range SortedKeys(r.Nodes) {
		n := r.Nodes[id]
		if n == nil {
			return fmt.Errorf("node %s is null", id)
		}
		if err := ValidateNode(r, id, n, NodeInUse(r, id) != ""); err != nil {
			return fmt.Errorf("node %s: %w", id, err)
		}
	}
	for _, name := range SortedKeys(r.Trees) {
		t := r.Trees[name]
		if t == nil {
			return fmt.Errorf("tree %q is null", name)
		}
		if err := ValidateTree(r, t); err != nil {
			return fmt.Errorf("tree %q: %w", name, err)
		}
	}
	for _, id := range SortedKeys(r.Scripts) {
		sc := r.Scripts[id]
		if sc == nil {
			return fmt.Errorf("script %s is null", id)
		}
		switch sc.Language {
		case ScriptGroovy, ScriptJavaScript:
		default:
			return fmt.Errorf("script %s: language %q is not %s or %s", id, sc.Language, ScriptGroovy, ScriptJavaScript)
		}
	}
	if p := r.OAuth2; p != nil {
		switch p.Advanced.TokenSigningAlgorithm {
		case "", "ES256", "HS256":
		default:
			return fmt.Errorf("service oauth-oidc: tokenSigningAlgorithm %q is not supported by the local AM (ES256, HS256)", p.Advanced.TokenSigningAlgorithm)
		}
		if p.Core.AccessTokenLifetime < 0 || p.Core.RefreshTokenLifetime < 0 || p.Device.DeviceCodeLifetime < 0 || p.Device.DevicePollInterval < 0 {
			return errors.New("service oauth-oidc: lifetimes and intervals must not be negative")
		}
	}
	for _, kind := range []struct {
		typ string
		ids []string
		nil func(string) bool
	}{
		{AgentOAuth2Client, SortedKeys(r.OAuth2Clients), func(id string) bool { return r.OAuth2Clients[id] == nil }},
		{AgentSoftwarePublisher, SortedKeys(r.SoftwarePublishers), func(id string) bool { return r.SoftwarePublishers[id] == nil }},
		{AgentTrustedJWTIssuer, SortedKeys(r.TrustedJWTIssuers), func(id string) bool { return r.TrustedJWTIssuers[id] == nil }},
	} {
		for _, id := range kind.ids {
			if kind.nil(id) {
				return fmt.Errorf("agent %s/%s is null", kind.typ, id)
			}
		}
	}
	return nil
}

// ValidateNode checks the settings of node id of realm r. A Scripted
// Decision node's script must be in the realm and within the subset; a
// node that is not used (no tree uses it) may name a script that was
// deleted since.
func ValidateNode(r *Realm, id string, n *Node, used bool) error {
	if n.Registration != nil {
		switch n.Registration.JWTRegistrationMethod {
		case RegPoPWithCertificate, RegPoPWithSoftwareStatement, RegPoPWithoutTrust, RegSoftwareStatementOnly:
		default:
			return fmt.Errorf("unknown jwtRegistrationMethod %q", n.Registration.JWTRegistrationMethod)
		}
	}
	if n.Authentication != nil {
		switch n.Authentication.JWTAuthenticationMethod {
		case AuthProofOfPossession, AuthClientAssertion:
		default:
			return fmt.Errorf("unknown jwtAuthenticationMethod %q", n.Authentication.JWTAuthenticationMethod)
		}
	}
	if n.Type == NodeTypeScriptedDecision {
		sd := n.Scripted
		if sd == nil {
			return errors.New("a ScriptedDecisionNode has no settings")
		}
		if len(sd.Outcomes) == 0 {
			return errors.New("outcomes is empty")
		}
		for i, o := range sd.Outcomes {
			if o != "true" && o != "false" {
				return fmt.Errorf("outcome %q is not supported: %s", o, script.Subset)
			}
			if slices.Contains(sd.Outcomes[:i], o) {
				return fmt.Errorf("outcome %q is listed twice", o)
			}
		}
		sc := r.Scripts[sd.Script]
		if sc == nil {
			if used || sd.Script == "" {
				return fmt.Errorf("script %q is not in the realm", sd.Script)
			}
			return nil
		}
		prog, err := CompileScript(sc)
		if err != nil {
			return fmt.Errorf("script %s (%s) is outside the subset: %v; %s", sd.Script, sc.Name, err, script.Subset)
		}
		for _, o := range prog.Outcomes() {
			if !slices.Contains(sd.Outcomes, o) {
				return fmt.Errorf("script %s sets outcome %q, which is not among the node's outcomes %v", sd.Script, o, sd.Outcomes)
			}
		}
	}
	return nil
}

// NodeInUse returns the name of a tree of r that uses node id, or "".
func NodeInUse(r *Realm, id string) string {
	for _, name := range SortedKeys(r.Trees) {
		if t := r.Trees[name]; t != nil {
			if _, ok := t.Nodes[id]; ok {
				return name
			}
		}
	}
	return ""
}

// ScriptInUse returns a node of r that runs script id in a tree, and the
// tree; "", "" when no tree runs it.
func ScriptInUse(r *Realm, id string) (node, tree string) {
	for _, nid := range SortedKeys(r.Nodes) {
		n := r.Nodes[nid]
		if n == nil || n.Scripted == nil || n.Scripted.Script != id {
			continue
		}
		if t := NodeInUse(r, nid); t != "" {
			return nid, t
		}
	}
	return "", ""
}

// SortedKeys returns the keys of m in order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ValidatePublishers checks that every software publisher's keys can be
// used. The server checks it at start; LoadConfig does not, so that a
// program can fill in keys after loading a file.
func ValidatePublishers(c *Config) error {
	for p, r := range c.Realms {
		for id, pub := range r.SoftwarePublishers {
			set, err := PublisherKeys(pub)
			if err != nil {
				return fmt.Errorf("realm %q, software publisher %s: %w", p, id, err)
			}
			if len(set.Keys) == 0 {
				return fmt.Errorf("realm %q, software publisher %s: jwkSet has no usable public key", p, id)
			}
		}
	}
	return nil
}

var nodeOutcomes = map[string][]string{
	NodeTypeIoTAuthentication: {"success", "failure", "register"},
	NodeTypeIoTRegistration:   {"success", "failure"},
	NodeTypeUsernameCollector: {"outcome"},
	NodeTypePasswordCollector: {"outcome"},
	NodeTypeDataStoreDecision: {"true", "false"},
}

// NodeOutcomes returns the outcome IDs of a node: fixed by its type, or the
// configured ones of a Scripted Decision node.
func NodeOutcomes(n *Node) []string {
	if n.Scripted != nil {
		return n.Scripted.Outcomes
	}
	return nodeOutcomes[n.Type]
}

// ValidateTree checks tree t of realm r: its entry node is in it, every
// node has settings of its type in the realm, and every outcome of every
// node is connected, to a node of the tree or to Success or Failure.
func ValidateTree(r *Realm, t *Tree) error {
	if t.EntryNodeID == "" {
		return errors.New("no entryNodeId")
	}
	if _, ok := t.Nodes[t.EntryNodeID]; !ok {
		return fmt.Errorf("entry node %s is not in the tree", t.EntryNodeID)
	}
	for _, id := range SortedKeys(t.Nodes) {
		tn := t.Nodes[id]
		if tn == nil {
			return fmt.Errorf("node %s is null", id)
		}
		n, ok := r.Nodes[id]
		if !ok || n == nil {
			return fmt.Errorf("node %s has no settings in the realm's nodes", id)
		}
		if n.Type != tn.NodeType {
			return fmt.Errorf("node %s is a %s in the tree but a %s in the realm's nodes", id, tn.NodeType, n.Type)
		}
		for _, o := range NodeOutcomes(n) {
			to, ok := tn.Connections[o]
			if !ok {
				return fmt.Errorf("node %s: outcome %q is not connected", id, o)
			}
			if _, inTree := t.Nodes[to]; !inTree && to != SuccessNodeID && to != FailureNodeID {
				return fmt.Errorf("node %s: outcome %q leads to %s, which is not in the tree", id, o, to)
			}
		}
		for _, o := range SortedKeys(tn.Connections) {
			if !slices.Contains(NodeOutcomes(n), o) {
				return fmt.Errorf("node %s: a %s has no outcome %q", id, n.Type, o)
			}
		}
	}
	return nil
}
