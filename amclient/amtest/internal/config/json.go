package config

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/members"
)

// realmJSON is the file form of a realm: services and agents keyed as AM names them.
type realmJSON struct {
	Aliases    []string                              `json:"aliases,omitempty"`
	Active     *bool                                 `json:"active,omitempty"`
	Services   map[string]json.RawMessage            `json:"services,omitempty"`
	Trees      map[string]*Tree                      `json:"trees,omitempty"`
	Nodes      map[string]*Node                      `json:"nodes,omitempty"`
	Agents     map[string]map[string]json.RawMessage `json:"agents,omitempty"`
	Scripts    map[string]*Script                    `json:"scripts,omitempty"`
	Identities map[string]map[string]any             `json:"identities,omitempty"`
}

// MarshalJSON writes the realm in the file form.
func (r *Realm) MarshalJSON() ([]byte, error) {
	out := realmJSON{Aliases: r.Aliases, Active: r.Active, Trees: r.Trees, Nodes: r.Nodes, Scripts: r.Scripts,
		Identities: r.Identities, Services: map[string]json.RawMessage{}, Agents: map[string]map[string]json.RawMessage{}}
	var err error
	if r.IoT != nil {
		if out.Services["iot"], err = json.Marshal(r.IoT); err != nil {
			return nil, err
		}
	}
	if r.OAuth2 != nil {
		if out.Services["oauth-oidc"], err = json.Marshal(r.OAuth2); err != nil {
			return nil, err
		}
	}
	if err := cmp.Or(encodeAgents(out.Agents, AgentOAuth2Client, r.OAuth2Clients),
		encodeAgents(out.Agents, AgentSoftwarePublisher, r.SoftwarePublishers),
		encodeAgents(out.Agents, AgentTrustedJWTIssuer, r.TrustedJWTIssuers)); err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// encodeAgents writes the agents of type typ, if any, into out[typ].
func encodeAgents[A any](out map[string]map[string]json.RawMessage, typ string, agents map[string]*A) error {
	if len(agents) == 0 {
		return nil
	}
	m := make(map[string]json.RawMessage, len(agents))
	for id, a := range agents {
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		m[id] = b
	}
	out[typ] = m
	return nil
}

// UnmarshalJSON reads the file form. Unknown services and agent types are errors,
// so that a typo does not silently leave a realm unconfigured.
func (r *Realm) UnmarshalJSON(b []byte) error {
	var in realmJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return err
	}
	*r = Realm{Aliases: in.Aliases, Active: in.Active, Trees: in.Trees, Nodes: in.Nodes, Scripts: in.Scripts, Identities: in.Identities}
	for name, raw := range in.Services {
		switch name {
		case "iot":
			r.IoT = DefaultIoTService()
			if err := json.Unmarshal(raw, r.IoT); err != nil {
				return fmt.Errorf("service iot: %w", err)
			}
		case "oauth-oidc":
			r.OAuth2 = DefaultOAuth2Provider()
			if err := json.Unmarshal(raw, r.OAuth2); err != nil {
				return fmt.Errorf("service oauth-oidc: %w", err)
			}
		default:
			return fmt.Errorf("unsupported service %q (supported: iot, oauth-oidc)", name)
		}
	}
	for typ, agents := range in.Agents {
		for id, raw := range agents {
			if err := PutAgent(r, typ, id, raw); err != nil {
				return fmt.Errorf("agent %s/%s: %w", typ, id, err)
			}
		}
	}
	return nil
}

// PutAgent decodes an agent of type typ (AgentOAuth2Client,
// AgentSoftwarePublisher or AgentTrustedJWTIssuer) from AM's JSON and
// stores it in r under id, replacing the one there.
func PutAgent(r *Realm, typ, id string, raw []byte) error {
	switch typ {
	case AgentOAuth2Client:
		return decodeAgent(raw, &r.OAuth2Clients, id)
	case AgentSoftwarePublisher:
		return decodeAgent(raw, &r.SoftwarePublishers, id)
	case AgentTrustedJWTIssuer:
		return decodeAgent(raw, &r.TrustedJWTIssuers, id)
	default:
		return fmt.Errorf("unsupported agent type %q (supported: %s, %s, %s)", typ, AgentOAuth2Client, AgentSoftwarePublisher, AgentTrustedJWTIssuer)
	}
}

// decodeAgent decodes raw into a new agent and stores it in (*agents)[id].
func decodeAgent[A any](raw []byte, agents *map[string]*A, id string) error {
	a := new(A)
	if err := json.Unmarshal(raw, a); err != nil {
		return err
	}
	if *agents == nil {
		*agents = map[string]*A{}
	}
	(*agents)[id] = a
	return nil
}

// UnmarshalJSON reads the service; members it does not know are kept. Read
// into an existing value, it updates the members given, as AM does.
func (s *IoTService) UnmarshalJSON(b []byte) error {
	type plain IoTService
	return members.Unmarshal(b, (*plain)(s), &s.extra)
}

// MarshalJSON writes the service with the members it keeps.
func (s *IoTService) MarshalJSON() ([]byte, error) {
	type plain IoTService
	return members.Marshal((*plain)(s), s.extra)
}

// UnmarshalJSON reads the provider; members it does not know are kept.
// Read into an existing value, it updates the members given, as AM does.
func (p *OAuth2Provider) UnmarshalJSON(b []byte) error {
	type plain OAuth2Provider
	return members.Unmarshal(b, (*plain)(p), &p.extra)
}

// MarshalJSON writes the provider with the members it keeps.
func (p *OAuth2Provider) MarshalJSON() ([]byte, error) {
	type plain OAuth2Provider
	return members.Marshal((*plain)(p), p.extra)
}

type inherited[T any] struct {
	Value     T    `json:"value"`
	Inherited bool `json:"inherited"`
}

// unwrap decodes either {"value": v, ...} or v.
func unwrap(raw json.RawMessage, dst any) error {
	if len(raw) == 0 {
		return nil
	}
	var probe map[string]json.RawMessage
	if json.Unmarshal(raw, &probe) == nil {
		if v, ok := probe["value"]; ok {
			if _, ok := probe["inherited"]; ok || len(probe) == 1 {
				return json.Unmarshal(v, dst)
			}
		}
	}
	return json.Unmarshal(raw, dst)
}

type oauth2ClientJSON struct {
	Core struct {
		Userpassword         json.RawMessage `json:"userpassword,omitempty"`
		Scopes               json.RawMessage `json:"scopes,omitempty"`
		DefaultScopes        json.RawMessage `json:"defaultScopes,omitempty"`
		Status               json.RawMessage `json:"status,omitempty"`
		AccessTokenLifetime  json.RawMessage `json:"accessTokenLifetime,omitempty"`
		RefreshTokenLifetime json.RawMessage `json:"refreshTokenLifetime,omitempty"`
	} `json:"coreOAuth2ClientConfig"`
	Advanced struct {
		GrantTypes json.RawMessage `json:"grantTypes,omitempty"`
	} `json:"advancedOAuth2ClientConfig"`
}

// UnmarshalJSON reads AM's agent layout.
func (c *OAuth2Client) UnmarshalJSON(b []byte) error {
	var in oauth2ClientJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	status := "Active"
	*c = OAuth2Client{}
	for _, f := range []struct {
		raw json.RawMessage
		dst any
	}{
		{in.Core.Userpassword, &c.Secret}, {in.Core.Scopes, &c.Scopes}, {in.Core.DefaultScopes, &c.DefaultScopes},
		{in.Core.Status, &status}, {in.Core.AccessTokenLifetime, &c.AccessTokenLifetime},
		{in.Core.RefreshTokenLifetime, &c.RefreshTokenLifetime}, {in.Advanced.GrantTypes, &c.GrantTypes},
	} {
		if err := unwrap(f.raw, f.dst); err != nil {
			return err
		}
	}
	c.Inactive = strings.EqualFold(status, "Inactive")
	extra, err := members.Split(b)
	if err != nil {
		return err
	}
	// The secret is held in Secret only, never among the kept members.
	if core, ok := extra["coreOAuth2ClientConfig"]; ok {
		var m map[string]json.RawMessage
		if json.Unmarshal(core, &m) == nil && m != nil {
			delete(m, "userpassword")
			extra["coreOAuth2ClientConfig"], _ = json.Marshal(m)
		}
	}
	c.extra = nil
	c.extra = members.UnknownOnly(extra, c)
	return nil
}

// MarshalJSON writes AM's agent layout. The secret is never written.
func (c *OAuth2Client) MarshalJSON() ([]byte, error) {
	status := "Active"
	if c.Inactive {
		status = "Inactive"
	}
	type core struct {
		Scopes               inherited[[]string] `json:"scopes"`
		DefaultScopes        inherited[[]string] `json:"defaultScopes"`
		Status               inherited[string]   `json:"status"`
		AccessTokenLifetime  inherited[int64]    `json:"accessTokenLifetime"`
		RefreshTokenLifetime inherited[int64]    `json:"refreshTokenLifetime"`
	}
	type adv struct {
		GrantTypes inherited[[]string] `json:"grantTypes"`
	}
	return members.Marshal(struct {
		Core core `json:"coreOAuth2ClientConfig"`
		Adv  adv  `json:"advancedOAuth2ClientConfig"`
	}{
		core{inherited[[]string]{Value: NonNil(c.Scopes)}, inherited[[]string]{Value: NonNil(c.DefaultScopes)},
			inherited[string]{Value: status}, inherited[int64]{Value: c.AccessTokenLifetime},
			inherited[int64]{Value: c.RefreshTokenLifetime}},
		adv{inherited[[]string]{Value: NonNil(c.GrantTypes)}},
	}, c.extra)
}

// NonNil returns s, or an empty list for nil, so that JSON writes [] and
// not null.
func NonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// UnmarshalJSON reads the agent; members it does not know are kept.
func (p *SoftwarePublisher) UnmarshalJSON(b []byte) error {
	type plain SoftwarePublisher
	return members.Unmarshal(b, (*plain)(p), &p.extra)
}

// MarshalJSON writes the agent with the members it keeps.
func (p *SoftwarePublisher) MarshalJSON() ([]byte, error) {
	type plain SoftwarePublisher
	return members.Marshal((*plain)(p), p.extra)
}

// UnmarshalJSON reads the agent; members it does not know are kept.
func (p *TrustedJWTIssuer) UnmarshalJSON(b []byte) error {
	type plain TrustedJWTIssuer
	return members.Unmarshal(b, (*plain)(p), &p.extra)
}

// MarshalJSON writes the agent with the members it keeps.
func (p *TrustedJWTIssuer) MarshalJSON() ([]byte, error) {
	type plain TrustedJWTIssuer
	out := *p
	out.AllowedSubjects = NonNil(p.AllowedSubjects)
	return members.Marshal((*plain)(&out), p.extra)
}

// UnmarshalJSON reads AM's script shape.
func (s *Script) UnmarshalJSON(b []byte) error {
	type plain Script
	extra := s.extra
	if err := members.Unmarshal(b, (*plain)(s), &extra, "script"); err != nil {
		return err
	}
	var src struct {
		Script *string `json:"script"`
	}
	if err := json.Unmarshal(b, &src); err != nil {
		return err
	}
	if src.Script != nil {
		text, err := base64.StdEncoding.DecodeString(*src.Script)
		if err != nil {
			if text, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(*src.Script, "=")); err != nil {
				return errors.New(`"script" is not base64`)
			}
		}
		s.Source = string(text)
	}
	s.extra = extra
	return nil
}

// MarshalJSON writes AM's script shape.
func (s *Script) MarshalJSON() ([]byte, error) {
	type plain Script
	typed, err := members.Marshal((*plain)(s), s.extra)
	if err != nil {
		return nil, err
	}
	var m members.Extra
	if err := json.Unmarshal(typed, &m); err != nil {
		return nil, err
	}
	m["script"], _ = json.Marshal(base64.StdEncoding.EncodeToString([]byte(s.Source)))
	return json.Marshal(m)
}

// UnmarshalJSON reads AM's tree shape.
func (t *Tree) UnmarshalJSON(b []byte) error {
	type plain Tree
	return members.Unmarshal(b, (*plain)(t), &t.extra)
}

// MarshalJSON writes AM's tree shape.
func (t *Tree) MarshalJSON() ([]byte, error) {
	type plain Tree
	return members.Marshal((*plain)(t), t.extra)
}

// TypeRef is the "_type" member of AM's nodes and agents: {"_id": type}.
type TypeRef struct {
	ID string `json:"_id"`
}

// UnmarshalJSON reads AM's node shape.
func (n *Node) UnmarshalJSON(b []byte) error {
	var head struct {
		Type TypeRef `json:"_type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	*n = Node{Type: head.Type.ID}
	strip := func() []byte {
		var m map[string]json.RawMessage
		json.Unmarshal(b, &m)
		for _, k := range members.CRESTMeta {
			delete(m, k)
		}
		out, _ := json.Marshal(m)
		return out
	}
	strict := func(dst any) error {
		dec := json.NewDecoder(bytes.NewReader(strip()))
		dec.DisallowUnknownFields()
		return dec.Decode(dst)
	}
	switch n.Type {
	case NodeTypeIoTAuthentication:
		n.Authentication = &IoTAuthenticationNode{JWTAuthenticationMethod: AuthProofOfPossession}
		return strict(n.Authentication)
	case NodeTypeIoTRegistration:
		n.Registration = &IoTRegistrationNode{JWTRegistrationMethod: RegPoPWithCertificate, VerifySubject: true}
		return strict(n.Registration)
	case NodeTypeScriptedDecision:
		n.Scripted = &ScriptedDecisionNode{Outcomes: []string{"true", "false"}}
		return strict(n.Scripted)
	case NodeTypeUsernameCollector, NodeTypePasswordCollector, NodeTypeDataStoreDecision:
		return nil
	case "":
		return errors.New(`node has no "_type"`)
	default:
		return fmt.Errorf("unsupported node type %q (the local AM evaluates %s)", n.Type, strings.Join(NodeTypes(), ", "))
	}
}

// MarshalJSON writes AM's node shape (without _id, which is the map key).
func (n *Node) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	var settings any
	switch {
	case n.Authentication != nil:
		settings = n.Authentication
	case n.Registration != nil:
		settings = n.Registration
	case n.Scripted != nil:
		settings = n.Scripted
	}
	if settings != nil {
		b, err := json.Marshal(settings)
		if err != nil {
			return nil, err
		}
		json.Unmarshal(b, &m)
	}
	m["_type"] = map[string]any{"_id": n.Type}
	return json.Marshal(m)
}

// MarshalJSON writes each certificate as a PEM text.
func (cs Certificates) MarshalJSON() ([]byte, error) {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads a list of PEM texts (each may hold several certificates).
func (cs *Certificates) UnmarshalJSON(b []byte) error {
	var texts []string
	if err := json.Unmarshal(b, &texts); err != nil {
		return err
	}
	var out Certificates
	for i, t := range texts {
		certs, err := ParseCertificates([]byte(t))
		if err != nil {
			return fmt.Errorf("certificate %d: %w", i, err)
		}
		out = append(out, certs...)
	}
	*cs = out
	return nil
}
