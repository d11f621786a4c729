package journey

import (
	"errors"
	"strings"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/proof"
	"github.com/thingway/thingway/amclient/amtest/internal/script"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// authenticateThingNode is the Authenticate Thing node.
func (e *Env) authenticateThingNode(st *State, cfg *config.IoTAuthenticationNode, answers []Callback, waiting bool) (string, []Callback, error) {
	const node = "Authenticate Thing"
	pop := cfg.JWTAuthenticationMethod != config.AuthClientAssertion
	if !waiting {
		if pop {
			st.nonce = tokens.RandomID(16)
			return "", []Callback{hiddenCallback(cbPoPAuthentication, st.nonce, 1)}, nil
		}
		return "", []Callback{hiddenCallback(cbClientAssertion, "", 1)}, nil
	}
	// Later Register Thing nodes accept this node's extra audiences, on
	// every outcome.
	st.extraAud = append([]string(nil), cfg.AdditionalAudienceValues...)
	raw, ok := answerFor(st.sent, answers, 0)
	if !ok || raw == "" {
		return e.nodeFail(node, "failure", "the callback was not answered")
	}
	jws, err := proof.Parse(raw)
	if err != nil {
		return e.nodeFail(node, "failure", "%v", err)
	}
	claims, err := proof.DecodeClaims(jws.Payload)
	if err != nil {
		return e.nodeFail(node, "failure", "%v", err)
	}
	var kid string
	if pop {
		if claims.Sub == "" || len(claims.Aud) == 0 || claims.Nonce == "" || claims.Cnf == nil || claims.Cnf.KID == "" {
			return e.nodeFail(node, "failure", "a required claim (sub, aud, nonce, cnf.kid) is missing")
		}
		if err := e.checkPoPClaims(claims, st.nonce); err != nil {
			return e.nodeFail(node, "failure", "%v", err)
		}
		if !claims.Aud.ContainsAny(append([]string{e.Realm}, cfg.AdditionalAudienceValues...)...) {
			return e.nodeFail(node, "failure", "audience %v is not the realm path %s", []string(claims.Aud), e.Realm)
		}
		kid = claims.Cnf.KID
	} else {
		kid = jws.HeaderString("kid")
		if kid == "" || claims.Sub == "" || claims.Iss == "" || len(claims.Aud) == 0 {
			return e.nodeFail(node, "failure", "a required value (kid header, sub, iss, aud) is missing")
		}
		if claims.Sub != claims.Iss {
			return e.nodeFail(node, "failure", "sub and iss differ")
		}
		if err := proof.CheckTimes(claims, e.Now, e.Skew, true, false); err != nil {
			return e.nodeFail(node, "failure", "%v", err)
		}
		if err := proof.CheckLifetime(claims, e.Now, e.MaxJWTLifetime, e.Skew); err != nil {
			return e.nodeFail(node, "failure", "%v", err)
		}
		if claims.Jti == "" && e.RequireAssertionJTI {
			return e.nodeFail(node, "failure", "the client assertion has no jti")
		}
		iss := e.Issuer
		if !claims.Aud.ContainsAny(append([]string{iss, iss + "/access_token", e.Base, e.Base + "/"}, cfg.AdditionalAudienceValues...)...) {
			return e.nodeFail(node, "failure", "audience %v is not accepted", []string(claims.Aud))
		}
	}
	thing := e.Identity(claims.Sub)
	if thing == nil {
		return e.nodeFail(node, "register", "no identity %q", claims.Sub)
	}
	key := thing.ThingKey(kid)
	if key == nil {
		return e.nodeFail(node, "register", "identity %q has no key %q", claims.Sub, kid)
	}
	if err := jws.Verify(key); err != nil {
		return e.nodeFail(node, "failure", "%v", err)
	}
	if !pop && claims.Jti != "" {
		first, err := FirstUse(e.Update, e.Realm, thing.ID, claims, e.Skew, e.Now)
		if err != nil {
			return "", nil, err
		}
		if !first {
			return e.nodeFail(node, "failure", "client assertion jti %q was already used", claims.Jti)
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
	st.sharedState[script.VerifiedClaimsKey] = claims.All()
	st.transientState[script.VerifiedClaimsKey] = claims.All()
	return "success", nil, nil
}

// KindAssertion is the store kind of used client-assertion jtis
// ([UsedAssertion] records), keyed by the SHA-256 of realm, thing and jti.
const KindAssertion = "assertion"

// UsedAssertion is a replay-cache entry: the jti may not be used again
// before Expires.
type UsedAssertion struct {
	Expires time.Time `json:"expires"`
}

// Expiry is when the store deletes the record: once a use is no longer
// refused.
func (u *UsedAssertion) Expiry() time.Time { return u.Expires.Add(time.Nanosecond) }

// FirstUse records a client assertion's jti, per realm and thing (id),
// until the assertion expires (exp plus skew), in a transaction that
// update runs, and reports whether this is its first use. The record is
// written (with a data directory, on disk) before the login succeeds, so
// a restart does not reopen the assertion for replay. Its error is
// update's.
func FirstUse(update func(f func(tx store.Tx) error) error, realm, id string, cl *proof.Claims, skew time.Duration, now time.Time) (bool, error) {
	h := tokens.Hash(realm + "\x00" + strings.ToLower(id) + "\x00" + cl.Jti)
	exp := cl.Exp.Time.Add(skew)
	var first bool
	err := update(func(tx store.Tx) error {
		first = false
		var used UsedAssertion
		seen, err := tx.Get(KindAssertion, h, &used)
		if err != nil || seen && !now.After(used.Expires) {
			return err
		}
		first = true
		u := &UsedAssertion{Expires: exp}
		return tx.Put(KindAssertion, h, u, u.Expiry())
	})
	if err != nil {
		return false, err
	}
	return first, nil
}

// checkPoPClaims checks a proof-of-possession JWT's time claims (exp and
// iat required), its lifetime and its nonce against the node's challenge:
// why it fails, or nil.
func (e *Env) checkPoPClaims(c *proof.Claims, challenge string) error {
	if err := proof.CheckTimes(c, e.Now, e.Skew, true, true); err != nil {
		return err
	}
	if err := proof.CheckLifetime(c, e.Now, e.MaxJWTLifetime, e.Skew); err != nil {
		return err
	}
	if !identities.ConstantTimeEqual(c.Nonce, challenge) {
		return errors.New("nonce does not match the challenge")
	}
	return nil
}
