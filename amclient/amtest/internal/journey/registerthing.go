package journey

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/proof"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// thingTypes are the values of a thing's thingType (any case).
var thingTypes = []string{"device", "service", "gateway"}

// registerThingNode is the Register Thing node.
func (e *Env) registerThingNode(st *State, cfg *config.IoTRegistrationNode, answers []Callback, waiting bool) (string, []Callback, error) {
	const node = "Register Thing"
	method := cfg.JWTRegistrationMethod
	withPoP := method != config.RegSoftwareStatementOnly
	withStatement := method == config.RegPoPWithSoftwareStatement || method == config.RegSoftwareStatementOnly
	if !waiting {
		var cbs []Callback
		if withPoP {
			st.nonce = tokens.RandomID(16)
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
			return e.nodeFail(node, "failure", "no software statement")
		}
		var err error
		if stmtKeys, stmtClaim, err = e.verifySoftwareStatement(raw); err != nil {
			return e.nodeFail(node, "failure", "software statement: %v", err)
		}
	}
	if withPoP {
		raw, ok := answerFor(st.sent, answers, 0)
		if !ok || raw == "" {
			return e.nodeFail(node, "failure", "no registration JWT")
		}
		jws, err := proof.Parse(raw)
		if err != nil {
			return e.nodeFail(node, "failure", "%v", err)
		}
		cl, err := proof.DecodeClaims(jws.Payload)
		if err != nil {
			return e.nodeFail(node, "failure", "%v", err)
		}
		if cl.Sub == "" || len(cl.Aud) == 0 || cl.Nonce == "" || cl.Cnf == nil {
			return e.nodeFail(node, "failure", "a required claim (sub, aud, nonce, cnf) is missing")
		}
		if err := e.checkPoPClaims(cl, st.nonce); err != nil {
			return e.nodeFail(node, "failure", "%v", err)
		}
		if !cl.Aud.ContainsAny(append([]string{e.Realm}, st.extraAud...)...) {
			return e.nodeFail(node, "failure", "audience %v is not accepted", []string(cl.Aud))
		}
		var (
			key   *jose.JSONWebKey
			certs []*x509.Certificate
		)
		if method == config.RegPoPWithSoftwareStatement {
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
				return e.nodeFail(node, "failure", "the software statement has no key %q", kid)
			}
		} else {
			if cl.Cnf.JWK == nil {
				return e.nodeFail(node, "failure", "cnf.jwk is missing")
			}
			key, certs, err = proof.ParseConfirmationKey(cl.Cnf.JWK)
			if err != nil {
				return e.nodeFail(node, "failure", "cnf.jwk: %v", err)
			}
			if key.KeyID == "" {
				key.KeyID = cl.Cnf.KID
			}
		}
		if key.KeyID == "" {
			return e.nodeFail(node, "failure", "the confirmation key has no kid")
		}
		if err := jws.Verify(key); err != nil {
			return e.nodeFail(node, "failure", "%v", err)
		}
		if method == config.RegPoPWithCertificate {
			if len(certs) == 0 {
				return e.nodeFail(node, "failure", "cnf.jwk has no x5c certificate")
			}
			if pk, ok := certs[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pk.Equal(key.Key) {
				return e.nodeFail(node, "failure", "the certificate does not certify the confirmation key")
			}
			if err := proof.VerifyThingCertificate(certs, e.VerificationCAs(), e.Now, e.Skew); err != nil {
				return e.nodeFail(node, "failure", "certificate: %v", err)
			}
			if cfg.VerifySubject && !proof.CertNames(certs[0], cl.Sub) {
				return e.nodeFail(node, "failure", "subject %q is not the certificate's CN or UID", cl.Sub)
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
	if method == config.RegSoftwareStatementOnly {
		id = tokens.NewUUID()
		claims["sub"] = id
		for i := range stmtKeys.Keys {
			if k := proof.PublicJWK(&stmtKeys.Keys[i]); k != nil && k.KeyID != "" {
				regKeys = append(regKeys, *k)
			}
		}
		if len(regKeys) == 0 {
			return e.nodeFail(node, "failure", "the software statement's jwks has no public key with a kid")
		}
	}
	if !identities.ValidName(id) {
		return e.nodeFail(node, "failure", "invalid thing name %q", id)
	}
	if e.Realm == "/" && strings.EqualFold(id, e.AdminUser) {
		return e.nodeFail(node, "failure", "a thing may not take the administrator's name %q", id)
	}
	if cfg.NameValidationRegex != "" {
		re, err := regexp.Compile(cfg.NameValidationRegex)
		if err != nil {
			return e.nodeFail(node, "failure", "nameValidationRegex does not compile: %v", err)
		}
		if re.MatchString(id) {
			return e.nodeFail(node, "failure", "thing name %q matches nameValidationRegex", id)
		}
	}
	if v, ok := claims["thingType"].(string); ok {
		thingType = v
		if !slices.Contains(thingTypes, strings.ToLower(v)) {
			return e.nodeFail(node, "failure", "thingType %q is not one of %v", v, thingTypes)
		}
	} else if withPoP {
		return e.nodeFail(node, "failure", "thingType is missing")
	}
	// The read, the change and the write are one transaction, so
	// concurrent registrations of one identity cannot lose each other's
	// keys.
	err := e.ChangeIdentity(id, func(x *identities.Identity, created bool) error {
		return registerChange(cfg, x, created, thingType, regKeys, claims)
	})
	if err != nil {
		if errors.Is(err, errNodeFailure) {
			return e.nodeFail(node, "failure", "identity %q does not exist and Create Identity is off", id)
		}
		return "", nil, err
	}
	st.username, st.claims = id, claims
	st.key, st.restrict = bound, withPoP
	return "success", nil, nil
}

// verifySoftwareStatement checks a statement against the realm's software
// publishers and returns the thing keys (jwks) and all its claims.
func (e *Env) verifySoftwareStatement(raw string) (jose.JSONWebKeySet, map[string]any, error) {
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
	if err := proof.CheckTimes(cl, e.Now, e.Skew, false, false); err != nil {
		return none, nil, err
	}
	var pub *config.SoftwarePublisher
	for _, p := range e.Config.SoftwarePublishers {
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

// registerChange is the change the Register Thing node makes to the
// thing's identity x (created: new, with the store's defaults): its
// confirmation keys, thingType and the node's attribute rules.
func registerChange(cfg *config.IoTRegistrationNode, x *identities.Identity, created bool, thingType string, keys []jose.JSONWebKey, claims map[string]any) error {
	if created && !cfg.CreateIdentity {
		return errNodeFailure
	}
	// Confirmation keys.
	var existing []jose.JSONWebKey
	if !created {
		existing = x.ThingKeys()
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
		return err
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
			setAttr(attr, identities.AttrValue(v))
		}
	}
	return nil
}
