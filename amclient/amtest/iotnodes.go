package amtest

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/proof"
)

// nodeFail logs why a node took its failure outcome; the client only sees
// AM's generic login failure.
func (s *Server) nodeFail(c *reqCtx, node, outcome, format string, args ...any) (string, []callback, error) {
	s.log.LogAttrs(c.r.Context(), 0, "node outcome", // slog.LevelInfo == 0
		attrString("node", node), attrString("outcome", outcome), attrString("reason", fmt.Sprintf(format, args...)))
	return outcome, nil, nil
}

// authenticateThingNode is the Authenticate Thing node.
func (s *Server) authenticateThingNode(c *reqCtx, st *authState, cfg *IoTAuthenticationNode, answers []callback, waiting bool) (string, []callback, error) {
	const node = "Authenticate Thing"
	pop := cfg.JWTAuthenticationMethod != AuthClientAssertion
	if !waiting {
		if pop {
			st.nonce = randomID(16)
			return "", []callback{hiddenCallback(cbPoPAuthentication, st.nonce, 1)}, nil
		}
		return "", []callback{hiddenCallback(cbClientAssertion, "", 1)}, nil
	}
	// Later Register Thing nodes accept this node's extra audiences, on
	// every outcome.
	st.extraAud = append([]string(nil), cfg.AdditionalAudienceValues...)
	raw, ok := answerFor(st.sent, answers, 0)
	if !ok || raw == "" {
		return s.nodeFail(c, node, "failure", "the callback was not answered")
	}
	jws, err := proof.Parse(raw)
	if err != nil {
		return s.nodeFail(c, node, "failure", "%v", err)
	}
	claims, err := proof.DecodeClaims(jws.Payload)
	if err != nil {
		return s.nodeFail(c, node, "failure", "%v", err)
	}
	var kid string
	if pop {
		if claims.Sub == "" || len(claims.Aud) == 0 || claims.Nonce == "" || claims.Cnf == nil || claims.Cnf.KID == "" {
			return s.nodeFail(c, node, "failure", "a required claim (sub, aud, nonce, cnf.kid) is missing")
		}
		if err := proof.CheckTimes(claims, c.now, s.skew(), true, true); err != nil {
			return s.nodeFail(c, node, "failure", "%v", err)
		}
		if err := proof.CheckLifetime(claims, c.now, s.maxJWTLifetime(), s.skew()); err != nil {
			return s.nodeFail(c, node, "failure", "%v", err)
		}
		if !constantTimeEqual(claims.Nonce, st.nonce) {
			return s.nodeFail(c, node, "failure", "nonce does not match the challenge")
		}
		if !claims.Aud.ContainsAny(append([]string{c.realm}, cfg.AdditionalAudienceValues...)...) {
			return s.nodeFail(c, node, "failure", "audience %v is not the realm path %s", []string(claims.Aud), c.realm)
		}
		kid = claims.Cnf.KID
	} else {
		kid = jws.HeaderString("kid")
		if kid == "" || claims.Sub == "" || claims.Iss == "" || len(claims.Aud) == 0 {
			return s.nodeFail(c, node, "failure", "a required value (kid header, sub, iss, aud) is missing")
		}
		if claims.Sub != claims.Iss {
			return s.nodeFail(c, node, "failure", "sub and iss differ")
		}
		if err := proof.CheckTimes(claims, c.now, s.skew(), true, false); err != nil {
			return s.nodeFail(c, node, "failure", "%v", err)
		}
		if err := proof.CheckLifetime(claims, c.now, s.maxJWTLifetime(), s.skew()); err != nil {
			return s.nodeFail(c, node, "failure", "%v", err)
		}
		if claims.Jti == "" && s.RequireAssertionJTI {
			return s.nodeFail(c, node, "failure", "the client assertion has no jti")
		}
		iss := c.issuer()
		if !claims.Aud.ContainsAny(append([]string{iss, iss + "/access_token", c.base, c.base + "/"}, cfg.AdditionalAudienceValues...)...) {
			return s.nodeFail(c, node, "failure", "audience %v is not accepted", []string(claims.Aud))
		}
	}
	thing := s.getIdentity(c.realm, claims.Sub)
	if thing == nil {
		return s.nodeFail(c, node, "register", "no identity %q", claims.Sub)
	}
	key := thingKey(thing, kid)
	if key == nil {
		return s.nodeFail(c, node, "register", "identity %q has no key %q", claims.Sub, kid)
	}
	if err := jws.Verify(key); err != nil {
		return s.nodeFail(c, node, "failure", "%v", err)
	}
	if !pop && claims.Jti != "" {
		first, err := s.firstUseOfAssertion(c.realm, thing.ID, claims, c.now)
		if err != nil {
			return "", nil, err
		}
		if !first {
			return s.nodeFail(c, node, "failure", "client assertion jti %q was already used", claims.Jti)
		}
	}
	st.username, st.claims, st.key, st.restrict = thing.ID, claims.All(), key, cfg.IssueRestrictedToken
	// Later nodes (a Scripted Decision) find the verified claims in both
	// node states: iot-edge's script reads transient state, AM's node page
	// says shared state.
	if st.sharedState == nil {
		st.sharedState = map[string]any{}
	}
	if st.transientState == nil {
		st.transientState = map[string]any{}
	}
	st.sharedState[VerifiedClaimsKey] = claims.All()
	st.transientState[VerifiedClaimsKey] = claims.All()
	return "success", nil, nil
}

// firstUseOfAssertion records a client assertion's jti, per realm and
// thing, until the assertion expires (exp plus the skew). With a data
// directory the record is on disk before the login succeeds, so a restart
// does not reopen the assertion for replay.
func (s *Server) firstUseOfAssertion(realm, id string, cl *proof.Claims, now time.Time) (bool, error) {
	h := hashToken(realm + "\x00" + strings.ToLower(id) + "\x00" + cl.Jti)
	exp := cl.Exp.Time.Add(s.skew())
	var first bool
	err := s.db.Update(func(tx storeTx) error {
		first = false
		var used usedAssertion
		seen, err := tx.Get(kindAssertion, h, &used)
		if err != nil || seen && !now.After(used.Expires) {
			return err
		}
		first = true
		u := &usedAssertion{Expires: exp}
		return tx.Put(kindAssertion, h, u, expiryOf(kindAssertion, u))
	})
	if err != nil {
		return false, storeErr(err)
	}
	return first, nil
}

// thingKeys returns the identity's confirmation keys.
func thingKeys(x *identity) []jose.JSONWebKey {
	var keys []jose.JSONWebKey
	for _, text := range x.Attrs["thingKeys"] {
		set, err := proof.ParseJWKSet(text)
		if err != nil {
			continue
		}
		keys = append(keys, set.Keys...)
	}
	return keys
}

func thingKey(x *identity, kid string) *jose.JSONWebKey {
	for _, k := range thingKeys(x) {
		if k.KeyID == kid {
			return proof.PublicJWK(&k)
		}
	}
	return nil
}

var thingTypes = []string{"device", "service", "gateway"}

// registerThingNode is the Register Thing node.
func (s *Server) registerThingNode(c *reqCtx, st *authState, cfg *IoTRegistrationNode, answers []callback, waiting bool) (string, []callback, error) {
	const node = "Register Thing"
	method := cfg.JWTRegistrationMethod
	withPoP := method != RegSoftwareStatementOnly
	withStatement := method == RegPoPWithSoftwareStatement || method == RegSoftwareStatementOnly
	if !waiting {
		var cbs []callback
		if withPoP {
			st.nonce = randomID(16)
			cbs = append(cbs, hiddenCallback(cbPoPRegistration, st.nonce, 1))
		}
		if withStatement {
			cbs = append(cbs, hiddenCallback(cbSoftwareStatement, "", len(cbs)+1))
		}
		return "", cbs, nil
	}
	claims := map[string]any{}
	var (
		id        string
		regKeys   []jose.JSONWebKey // keys to register
		bound     *jose.JSONWebKey  // session confirmation key
		stmtKeys  jose.JSONWebKeySet
		stmtClaim map[string]any
		thingType string
	)
	if withStatement {
		raw, ok := answerFor(st.sent, answers, len(st.sent)-1)
		if !ok || raw == "" {
			return s.nodeFail(c, node, "failure", "no software statement")
		}
		var err error
		if stmtKeys, stmtClaim, err = s.verifySoftwareStatement(c, raw); err != nil {
			return s.nodeFail(c, node, "failure", "software statement: %v", err)
		}
	}
	if withPoP {
		raw, ok := answerFor(st.sent, answers, 0)
		if !ok || raw == "" {
			return s.nodeFail(c, node, "failure", "no registration JWT")
		}
		jws, err := proof.Parse(raw)
		if err != nil {
			return s.nodeFail(c, node, "failure", "%v", err)
		}
		cl, err := proof.DecodeClaims(jws.Payload)
		if err != nil {
			return s.nodeFail(c, node, "failure", "%v", err)
		}
		if cl.Sub == "" || len(cl.Aud) == 0 || cl.Nonce == "" || cl.Cnf == nil {
			return s.nodeFail(c, node, "failure", "a required claim (sub, aud, nonce, cnf) is missing")
		}
		if err := proof.CheckTimes(cl, c.now, s.skew(), true, true); err != nil {
			return s.nodeFail(c, node, "failure", "%v", err)
		}
		if err := proof.CheckLifetime(cl, c.now, s.maxJWTLifetime(), s.skew()); err != nil {
			return s.nodeFail(c, node, "failure", "%v", err)
		}
		if !constantTimeEqual(cl.Nonce, st.nonce) {
			return s.nodeFail(c, node, "failure", "nonce does not match the challenge")
		}
		if !cl.Aud.ContainsAny(append([]string{c.realm}, st.extraAud...)...) {
			return s.nodeFail(c, node, "failure", "audience %v is not accepted", []string(cl.Aud))
		}
		var (
			key   *jose.JSONWebKey
			certs []*x509.Certificate
		)
		if method == RegPoPWithSoftwareStatement {
			kid := cl.Cnf.KID
			if kid == "" && cl.Cnf.JWK != nil {
				if k, _, err := proof.ParseConfirmationKey(cl.Cnf.JWK); err == nil {
					kid = k.KeyID
				}
			}
			for i := range stmtKeys.Keys {
				if stmtKeys.Keys[i].KeyID == kid {
					key = proof.PublicJWK(&stmtKeys.Keys[i])
				}
			}
			if key == nil {
				return s.nodeFail(c, node, "failure", "the software statement has no key %q", kid)
			}
		} else {
			if cl.Cnf.JWK == nil {
				return s.nodeFail(c, node, "failure", "cnf.jwk is missing")
			}
			key, certs, err = proof.ParseConfirmationKey(cl.Cnf.JWK)
			if err != nil {
				return s.nodeFail(c, node, "failure", "cnf.jwk: %v", err)
			}
			if key.KeyID == "" {
				key.KeyID = cl.Cnf.KID
			}
		}
		if key.KeyID == "" {
			return s.nodeFail(c, node, "failure", "the confirmation key has no kid")
		}
		if err := jws.Verify(key); err != nil {
			return s.nodeFail(c, node, "failure", "%v", err)
		}
		if method == RegPoPWithCertificate {
			if len(certs) == 0 {
				return s.nodeFail(c, node, "failure", "cnf.jwk has no x5c certificate")
			}
			if pk, ok := certs[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pk.Equal(key.Key) {
				return s.nodeFail(c, node, "failure", "the certificate does not certify the confirmation key")
			}
			if err := proof.VerifyThingCertificate(certs, c.cfg.VerificationCAs(), c.now, s.skew()); err != nil {
				return s.nodeFail(c, node, "failure", "certificate: %v", err)
			}
			if cfg.VerifySubject && !proof.CertNames(certs[0], cl.Sub) {
				return s.nodeFail(c, node, "failure", "subject %q is not the certificate's CN or UID", cl.Sub)
			}
		}
		for k, v := range cl.All() {
			claims[k] = v
		}
		id, bound, regKeys = cl.Sub, key, []jose.JSONWebKey{*key}
	}
	for k, v := range stmtClaim {
		claims[k] = v // the statement's claims take precedence
	}
	if method == RegSoftwareStatementOnly {
		id = newUUID()
		claims["sub"] = id
		for i := range stmtKeys.Keys {
			if k := proof.PublicJWK(&stmtKeys.Keys[i]); k != nil && k.KeyID != "" {
				regKeys = append(regKeys, *k)
			}
		}
		if len(regKeys) == 0 {
			return s.nodeFail(c, node, "failure", "the software statement's jwks has no public key with a kid")
		}
	}
	if !validID.MatchString(id) || strings.TrimSpace(id) != id {
		return s.nodeFail(c, node, "failure", "invalid thing name %q", id)
	}
	if c.realm == "/" && equalFoldASCII(id, c.cfg.AdminUser) {
		return s.nodeFail(c, node, "failure", "a thing may not take the administrator's name %q", id)
	}
	if cfg.NameValidationRegex != "" {
		re, err := regexp.Compile(cfg.NameValidationRegex)
		if err != nil {
			return s.nodeFail(c, node, "failure", "nameValidationRegex does not compile: %v", err)
		}
		if re.MatchString(id) {
			return s.nodeFail(c, node, "failure", "thing name %q matches nameValidationRegex", id)
		}
	}
	if v, ok := claims["thingType"].(string); ok {
		thingType = v
		if !slices.Contains(thingTypes, strings.ToLower(v)) {
			return s.nodeFail(c, node, "failure", "thingType %q is not one of %v", v, thingTypes)
		}
	} else if withPoP {
		return s.nodeFail(c, node, "failure", "thingType is missing")
	}
	if err := s.registerIdentity(c, cfg, id, thingType, regKeys, claims); err != nil {
		if errors.Is(err, errNodeFailure) {
			return s.nodeFail(c, node, "failure", "identity %q does not exist and Create Identity is off", id)
		}
		return "", nil, err
	}
	st.username, st.claims = id, claims
	st.key, st.restrict = bound, withPoP
	return "success", nil, nil
}

// verifySoftwareStatement checks a statement against the realm's software
// publishers and returns the thing keys (jwks) and all its claims.
func (s *Server) verifySoftwareStatement(c *reqCtx, raw string) (jose.JSONWebKeySet, map[string]any, error) {
	var none jose.JSONWebKeySet
	jws, err := proof.Parse(raw)
	if err != nil {
		return none, nil, err
	}
	cl, err := proof.DecodeClaims(jws.Payload)
	if err != nil {
		return none, nil, err
	}
	if cl.Iss == "" {
		return none, nil, fmt.Errorf("iss is missing")
	}
	if err := proof.CheckTimes(cl, c.now, s.skew(), false, false); err != nil {
		return none, nil, err
	}
	var pub *SoftwarePublisher
	for _, p := range c.rc.SoftwarePublishers {
		if p.Issuer == cl.Iss {
			pub = p
		}
	}
	if pub == nil {
		return none, nil, fmt.Errorf("no software publisher with issuer %q", cl.Iss)
	}
	alg := pub.SigningAlgorithm
	if alg == "" {
		alg = "ES256"
	}
	if jws.Alg != alg {
		return none, nil, fmt.Errorf("signed with %s, the publisher expects %s", jws.Alg, alg)
	}
	keys, err := config.PublisherKeys(pub)
	if err != nil {
		return none, nil, fmt.Errorf("publisher keys: %w", err)
	}
	kid := jws.HeaderString("kid")
	verified := false
	for i := range keys.Keys {
		if kid != "" && keys.Keys[i].KeyID != kid {
			continue
		}
		if jws.Verify(&keys.Keys[i]) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return none, nil, fmt.Errorf("signature does not verify with the publisher's keys (kid %q)", kid)
	}
	rawJWKS, ok := cl.All()["jwks"]
	if !ok {
		return none, nil, fmt.Errorf("jwks is missing")
	}
	b, _ := json.Marshal(rawJWKS)
	set, err := proof.ParseJWKSet(string(b))
	if err != nil || len(set.Keys) == 0 {
		return none, nil, fmt.Errorf("jwks is not a JWK set with usable public keys")
	}
	return set, cl.All(), nil
}

// registerIdentity creates the thing or registers its key on an existing
// identity, with the node's attribute rules.
func (s *Server) registerIdentity(c *reqCtx, cfg *IoTRegistrationNode, id, thingType string, keys []jose.JSONWebKey, claims map[string]any) error {
	// The read, the change and the write are one transaction, so
	// concurrent registrations of one identity cannot lose each other's
	// keys.
	_, err := s.changeIdentity(c.realm, id, func(x *identity) (*identity, error) {
		return registerChange(c, cfg, x, id, thingType, keys, claims)
	})
	return err
}

// registerChange is the change registerIdentity makes to x (nil when the
// identity does not exist).
func registerChange(c *reqCtx, cfg *IoTRegistrationNode, x *identity, id, thingType string, keys []jose.JSONWebKey, claims map[string]any) (*identity, error) {
	created := x == nil
	if created {
		if !cfg.CreateIdentity {
			return nil, errNodeFailure
		}
		x = newThingIdentity(c.realm, id, c.now)
	}
	// Confirmation keys.
	var existing []jose.JSONWebKey
	if !created {
		existing = thingKeys(x)
	}
	for _, k := range keys {
		k.Use = "sig"
		k.Certificates = nil
		replaced := false
		for i := range existing {
			if existing[i].KeyID == k.KeyID {
				existing[i], replaced = k, true
			}
		}
		if !replaced {
			if cfg.AllowKeyRotation {
				existing = append(existing, k)
			} else {
				existing = []jose.JSONWebKey{k}
			}
		}
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: existing})
	if err != nil {
		return nil, err
	}
	x.Attrs["thingKeys"] = []string{string(set)}
	setAttr := func(attr, val string) {
		if _, has := x.Attrs[attr]; has && !created && !cfg.AllowAttributeOverwrite {
			return
		}
		x.Attrs[attr] = []string{val}
	}
	for attr, val := range cfg.DefaultAttributeValues {
		if _, has := x.Attrs[attr]; !has {
			x.Attrs[attr] = []string{val}
		}
	}
	if thingType != "" {
		setAttr("thingType", thingType)
	}
	if cfg.CreateIdentity {
		for claim, attr := range cfg.ClaimToAttributeMapping {
			v, ok := claims[claim]
			if !ok {
				continue
			}
			setAttr(attr, claimString(v))
		}
	}
	x.Rev++
	return x, nil
}

func claimString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
