package amtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Journal kinds.
const (
	kindIdentity = "identity"
	kindSession  = "session"
	kindGrant    = "grant"
	kindToken    = "token"
	kindKeys     = "keys"
	kindConfig   = "config"
	// kindAssertion records a used client-assertion jti, keyed by the
	// SHA-256 of realm, thing and jti.
	kindAssertion = "assertion"
)

// usedAssertion is a replay-cache entry: the jti may not be used again
// before Expires.
type usedAssertion struct {
	Expires time.Time `json:"expires"`
}

// identity is an entry of a realm's identity store.
type identity struct {
	Realm string `json:"realm"`
	ID    string `json:"id"`
	// Attrs holds every stored attribute as a list of strings, as AM's
	// identity store does; JSON values (thingKeys) are held as JSON text.
	Attrs        map[string][]string `json:"attrs"`
	PasswordHash string              `json:"pw,omitempty"`
	Created      time.Time           `json:"created"`
	Rev          int                 `json:"rev"`
}

func (id *identity) first(attr string) string {
	if v := id.Attrs[attr]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (id *identity) clone() *identity {
	c := *id
	c.Attrs = make(map[string][]string, len(id.Attrs))
	for k, v := range id.Attrs {
		c.Attrs[k] = append([]string(nil), v...)
	}
	return &c
}

// session is an SSO session. The token itself is not stored: sessions are
// keyed by the token's SHA-256.
type session struct {
	UID     string    `json:"uid"`
	Realm   string    `json:"realm"`
	Admin   bool      `json:"admin,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Key is the thing's confirmation key when the session came from an IoT
	// node; Restricted says whether requests must be signed with it.
	Key        *jose.JSONWebKey `json:"key,omitempty"`
	Restricted bool             `json:"restricted,omitempty"`
	// LastNonce is the highest request nonce seen; -1 before the first.
	LastNonce int64  `json:"lastNonce"`
	UID0      string `json:"sessionUid"`

	lastUse time.Time
}

// grant is an OAuth 2.0 authorization: what a refresh token refreshes.
type grant struct {
	ID       string    `json:"id"`
	Realm    string    `json:"realm"`
	Issuer   string    `json:"iss"`
	ClientID string    `json:"client"`
	Subject  string    `json:"sub"`   // resource owner's identity ID
	Thing    string    `json:"thing"` // the thing that obtained it
	Scopes   []string  `json:"scopes"`
	AuthTime time.Time `json:"authTime"`
	Revoked  bool      `json:"revoked,omitempty"`
	Expires  time.Time `json:"expires"`
}

// token is an issued access or refresh token, keyed by the token's SHA-256.
type token struct {
	Refresh bool      `json:"refresh,omitempty"`
	GrantID string    `json:"grant"`
	Scopes  []string  `json:"scopes"`
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires"`
	Revoked bool      `json:"revoked,omitempty"`
	Audit   string    `json:"audit"`
}

// serverKeys are the server's own secrets, generated once per data directory.
type serverKeys struct {
	// TokenKey signs client-side access tokens (ES256).
	TokenKey *jose.JSONWebKey `json:"tokenKey"`
	// TokenHMAC signs HS256 client-side access tokens.
	TokenHMAC []byte `json:"tokenHmac"`
	// AuthIDKey signs authIds.
	AuthIDKey []byte `json:"authIdKey"`
	// TokenEncKey encrypts client-side tokens when the provider asks
	// (dir, A128CBC-HS256).
	TokenEncKey []byte `json:"tokenEncKey"`
}

type state struct {
	mu         sync.Mutex
	identities map[string]*identity // realm + "\x00" + lower(id)
	sessions   map[string]*session  // sha256(token)
	grants     map[string]*grant
	tokens     map[string]*token // sha256(token)
	keys       *serverKeys
	auths      map[string]*authState
	assertions map[string]time.Time   // client-assertion jti replay cache: key hash → expiry
	devices    map[string]*deviceCode // sha256(device_code)
	userCodes  map[string]string      // user_code → sha256(device_code)
	lastSweep  time.Time
	// config is the configuration record of the journal, if any: the
	// configuration as the admin REST API last left it.
	config json.RawMessage
}

func newState() *state {
	return &state{
		identities: map[string]*identity{},
		sessions:   map[string]*session{},
		grants:     map[string]*grant{},
		tokens:     map[string]*token{},
		auths:      map[string]*authState{},
		assertions: map[string]time.Time{},
		devices:    map[string]*deviceCode{},
		userCodes:  map[string]string{},
	}
}

func identityKey(realm, id string) string { return realm + "\x00" + strings.ToLower(id) }

// apply loads one journal record.
func (st *state) apply(kind, id string, v json.RawMessage) error {
	switch kind {
	case kindIdentity:
		var x identity
		if err := json.Unmarshal(v, &x); err != nil {
			return err
		}
		st.identities[id] = &x
	case kindSession:
		var x session
		if err := json.Unmarshal(v, &x); err != nil {
			return err
		}
		st.sessions[id] = &x
	case kindGrant:
		var x grant
		if err := json.Unmarshal(v, &x); err != nil {
			return err
		}
		st.grants[id] = &x
	case kindToken:
		var x token
		if err := json.Unmarshal(v, &x); err != nil {
			return err
		}
		st.tokens[id] = &x
	case kindDevice:
		var x deviceCode
		if err := json.Unmarshal(v, &x); err != nil {
			return err
		}
		st.devices[id] = &x
		st.userCodes[canonicalUserCode(x.UserCode)] = id
	case kindAssertion:
		var x usedAssertion
		if err := json.Unmarshal(v, &x); err != nil {
			return err
		}
		st.assertions[id] = x.Expires
	case kindConfig:
		st.config = append(json.RawMessage(nil), v...)
	case kindKeys:
		var x serverKeys
		if err := json.Unmarshal(v, &x); err != nil {
			return err
		}
		st.keys = &x
	default:
		return fmt.Errorf("unknown record kind %q", kind)
	}
	return nil
}

func (s *Server) loadKeys() (*serverKeys, error) {
	if k := s.st.keys; k != nil {
		if len(k.TokenEncKey) == 0 { // a data directory from before encryption keys
			k.TokenEncKey = randomBytes(32)
			if err := s.j.put(kindKeys, "server", k); err != nil {
				return nil, err
			}
		}
		return k, nil
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	k := &serverKeys{TokenKey: &jose.JSONWebKey{Key: priv, Algorithm: "ES256", Use: "sig"},
		TokenHMAC: randomBytes(32), AuthIDKey: randomBytes(32), TokenEncKey: randomBytes(32)}
	pub := k.TokenKey.Public()
	tp, err := pub.Thumbprint(cryptoSHA256)
	if err != nil {
		return nil, err
	}
	k.TokenKey.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	if err := s.j.put(kindKeys, "server", k); err != nil {
		return nil, err
	}
	s.st.keys = k
	return k, nil
}

// seedIdentities creates the configured identities that do not exist yet.
func (s *Server) seedIdentities() error {
	cfg := s.config()
	for _, p := range sortedKeys(cfg.Realms) {
		r := cfg.Realms[p]
		ids := make([]string, 0, len(r.Identities))
		for id := range r.Identities {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if s.getIdentity(p, id) != nil {
				continue
			}
			x, err := newIdentityFromJSON(p, id, r.Identities[id], s.now())
			if err != nil {
				return fmt.Errorf("realm %q identity %q: %w", p, id, err)
			}
			if err := s.putIdentity(x); err != nil {
				return err
			}
		}
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return b
}

// randomID returns n random bytes as unpadded base64url.
func randomID(n int) string { return base64.RawURLEncoding.EncodeToString(randomBytes(n)) }

func newUUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// --- identity store ---

func (s *Server) getIdentity(realm, id string) *identity {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if x := s.st.identities[identityKey(realm, id)]; x != nil {
		return x.clone()
	}
	return nil
}

func (s *Server) putIdentity(x *identity) error {
	k := identityKey(x.Realm, x.ID)
	if err := s.j.put(kindIdentity, k, x); err != nil {
		return err
	}
	s.st.mu.Lock()
	s.st.identities[k] = x.clone()
	s.st.mu.Unlock()
	return nil
}

func (s *Server) deleteIdentity(realm, id string) error {
	k := identityKey(realm, id)
	if err := s.j.put(kindIdentity, k, nil); err != nil {
		return err
	}
	s.st.mu.Lock()
	delete(s.st.identities, k)
	s.st.mu.Unlock()
	return nil
}

func (s *Server) listIdentities(realm string) []*identity {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	var out []*identity
	for _, x := range s.st.identities {
		if x.Realm == realm {
			out = append(out, x.clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// --- sessions ---

// newSession creates a session and returns its token. AM's tokens are
// opaque strings with '.' and '*'; ours have the same alphabet.
func (s *Server) newSession(x *session, now time.Time) (string, error) {
	tok := randomID(32) + ".*AAJTSQACMDEAAlNLABQ" + randomID(9) + "*"
	x.Created = now
	x.Expires = now.Add(s.sessionMax())
	x.LastNonce = -1
	x.UID0 = randomID(12)
	x.lastUse = now
	h := hashToken(tok)
	if err := s.j.put(kindSession, h, x); err != nil {
		return "", err
	}
	s.st.mu.Lock()
	s.st.sessions[h] = x
	s.sweepLocked(now)
	s.st.mu.Unlock()
	return tok, nil
}

// liveSession returns a copy of the session for tok if it is valid at now,
// and refreshes its idle timer.
func (s *Server) liveSession(tok string, now time.Time) (*session, bool) {
	if tok == "" {
		return nil, false
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	x := s.st.sessions[hashToken(tok)]
	if x == nil || !now.Before(x.Expires) {
		return nil, false
	}
	if !x.lastUse.IsZero() && now.Sub(x.lastUse) >= s.sessionIdle() {
		return nil, false
	}
	x.lastUse = now
	c := *x
	return &c, true
}

// acceptNonce records nonce for the session if it is above every nonce seen.
func (s *Server) acceptNonce(tok string, nonce int64) (bool, error) {
	h := hashToken(tok)
	s.st.mu.Lock()
	x := s.st.sessions[h]
	if x == nil || nonce <= x.LastNonce {
		s.st.mu.Unlock()
		return false, nil
	}
	prev := x.LastNonce
	x.LastNonce = nonce
	c := *x
	s.st.mu.Unlock()
	if err := s.j.put(kindSession, h, &c); err != nil {
		s.st.mu.Lock()
		if x.LastNonce == nonce {
			x.LastNonce = prev
		}
		s.st.mu.Unlock()
		return false, err
	}
	return true, nil
}

func (s *Server) endSession(tok string) (bool, error) {
	h := hashToken(tok)
	s.st.mu.Lock()
	_, ok := s.st.sessions[h]
	s.st.mu.Unlock()
	if !ok {
		return false, nil
	}
	if err := s.j.put(kindSession, h, nil); err != nil {
		return false, err
	}
	s.st.mu.Lock()
	delete(s.st.sessions, h)
	s.st.mu.Unlock()
	return true, nil
}

// sweepLocked drops expired sessions, tokens, grants and auth states, at
// most once a minute, so memory stays bounded by live state.
func (s *Server) sweepLocked(now time.Time) {
	if now.Sub(s.st.lastSweep) < time.Minute {
		return
	}
	s.st.lastSweep = now
	var gone []journalRecord
	for h, x := range s.st.sessions {
		if !now.Before(x.Expires) {
			delete(s.st.sessions, h)
			gone = append(gone, journalRecord{Kind: kindSession, ID: h})
		}
	}
	for h, t := range s.st.tokens {
		if !now.Before(t.Expires) {
			delete(s.st.tokens, h)
			gone = append(gone, journalRecord{Kind: kindToken, ID: h})
		}
	}
	for id, g := range s.st.grants {
		if !now.Before(g.Expires) {
			delete(s.st.grants, id)
			gone = append(gone, journalRecord{Kind: kindGrant, ID: id})
		}
	}
	for id, a := range s.st.auths {
		if !now.Before(a.expires) {
			delete(s.st.auths, id)
		}
	}
	for h, d := range s.st.devices {
		if now.After(d.Expires.Add(time.Hour)) {
			delete(s.st.devices, h)
			delete(s.st.userCodes, d.UserCode)
			gone = append(gone, journalRecord{Kind: kindDevice, ID: h})
		}
	}
	for h, exp := range s.st.assertions {
		if now.After(exp) {
			delete(s.st.assertions, h)
			gone = append(gone, journalRecord{Kind: kindAssertion, ID: h})
		}
	}
	if s.j != nil && len(gone) > 0 {
		// Deletions of expired state need not be durable: replaying an
		// expired record is harmless, it is swept again.
		go func() {
			for _, g := range gone {
				s.j.put(g.Kind, g.ID, nil)
			}
		}()
	}
}
