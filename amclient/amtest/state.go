package amtest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/journey"
	"github.com/thingway/thingway/amclient/amtest/internal/oauth2"
	"github.com/thingway/thingway/amclient/amtest/internal/sessions"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// Journal kinds.
const (
	// kindIdentity and kindIdentityOrder are the identities and their
	// order index (amclient/amtest/internal/identities).
	kindIdentity      = identities.Kind
	kindIdentityOrder = identities.OrderKind
	kindSession       = sessions.Kind
	kindGrant         = tokens.KindGrant
	kindToken         = tokens.KindToken
	kindKeys          = "keys"
	kindConfig        = "config"
	// kindAssertion records a used client-assertion jti, keyed by the
	// SHA-256 of realm, thing and jti (amclient/amtest/internal/journey).
	kindAssertion = journey.KindAssertion
	// kindNonce is a restricted session's highest request nonce
	// (amclient/amtest/internal/sessions).
	kindNonce = sessions.NonceKind
)

// usedAssertion is a replay-cache entry: the jti may not be used again
// before Expires.
type usedAssertion = journey.UsedAssertion

// session is an SSO session (amclient/amtest/internal/sessions).
type session = sessions.Session

// grant is an OAuth 2.0 authorization: what a refresh token refreshes;
// token an issued access or refresh token (amclient/amtest/internal/tokens).
type (
	grant = tokens.Grant
	token = tokens.Token
)

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

// tokenKeys are the keys of client-side tokens.
func (s *Server) tokenKeys() tokens.Keys {
	return tokens.Keys{Sign: s.keys.TokenKey, HMAC: s.keys.TokenHMAC, Enc: s.keys.TokenEncKey}
}

// state is what the server keeps in memory only, beside the store: the
// authentications in progress (authIds do not survive a restart, as in
// AM), the idle timers of sessions and the last polls of device codes.
// None of it is acknowledged state.
type state struct {
	mu        sync.Mutex
	auths     map[string]*authState
	idle      sessions.Idle // when each session was last used
	polls     oauth2.Polls
	lastSweep time.Time
}

func newState() *state {
	return &state{
		auths: map[string]*authState{},
	}
}

// Keys of the singleton records.
const (
	keysKey   = "server"
	configKey = "current"
)

// expiryOf is when a record is deleted: the journal's kinds with their
// lifetimes (device codes are kept an hour past expiry, so that a late poll
// is told expired_token rather than invalid_grant).
func expiryOf(kind string, v any) time.Time {
	switch x := v.(type) {
	case *session:
		return x.Expires
	case *grant:
		return x.Expires
	case *token:
		return x.Expires
	case *deviceCode:
		return x.KeepUntil()
	case *usedAssertion:
		// Refused while now is not after Expires.
		return x.Expiry()
	}
	return time.Time{}
}

// storeErr wraps a store failure for the log; the request gets a 500.
func storeErr(err error) error {
	if err == nil {
		return nil
	}
	var ae *crest.Error
	if errors.As(err, &ae) {
		return err
	}
	return fmt.Errorf("state: %w", err)
}

// get reads one record; a failure to read is logged and reads as absent.
func (s *Server) get(kind, key string, v any) bool {
	var found bool
	err := s.db.View(func(tx storeTx) error {
		var err error
		found, err = tx.Get(kind, key, v)
		return err
	})
	if err != nil {
		s.log.LogAttrs(context.Background(), slog.LevelError, "state read failed", slog.String("kind", kind), slog.String("error", err.Error()))
		return false
	}
	return found
}

// put writes one record durably.
func (s *Server) put(kind, key string, v any) error {
	return storeErr(s.db.Update(func(tx storeTx) error { return tx.Put(kind, key, v, expiryOf(kind, v)) }))
}

func (s *Server) loadKeys() (*serverKeys, error) {
	var k serverKeys
	if s.get(kindKeys, keysKey, &k) {
		if len(k.TokenEncKey) == 0 { // a data directory from before encryption keys
			k.TokenEncKey = tokens.RandomBytes(32)
			if err := s.put(kindKeys, keysKey, &k); err != nil {
				return nil, err
			}
		}
		return &k, nil
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	nk := &serverKeys{TokenKey: &jose.JSONWebKey{Key: priv, Algorithm: "ES256", Use: "sig"},
		TokenHMAC: tokens.RandomBytes(32), AuthIDKey: tokens.RandomBytes(32), TokenEncKey: tokens.RandomBytes(32)}
	pub := nk.TokenKey.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	nk.TokenKey.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	// Two first starts cannot race (the directory is locked), so a plain
	// put is enough.
	if err := s.put(kindKeys, keysKey, nk); err != nil {
		return nil, err
	}
	return nk, nil
}

// seedIdentities creates the configured identities that do not exist yet.
func (s *Server) seedIdentities() error {
	cfg := s.config()
	for _, p := range config.SortedKeys(cfg.Realms) {
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
			x, err := identities.FromJSON(p, id, r.Identities[id], s.now(), "")
			if err != nil {
				return fmt.Errorf("realm %q identity %q: %w", p, id, err)
			}
			if _, err := s.changeIdentity(p, id, func(cur *identity) (*identity, error) {
				if cur != nil {
					return nil, errNoChange
				}
				return x, nil
			}); err != nil && !errors.Is(err, errNoChange) {
				return err
			}
		}
	}
	return nil
}

// --- identity store ---

func (s *Server) getIdentity(realm, id string) *identity {
	var x identity
	if !s.get(kindIdentity, identities.StoreKey(realm, id), &x) {
		return nil
	}
	return &x
}

// errNoChange, returned by a changeIdentity function, leaves the identity
// as it is; changeIdentity returns it too.
var errNoChange = errors.New("amtest: no change")

// changeIdentity reads, changes and writes one identity in one
// transaction: f gets a copy of the identity (nil if there is none) and
// returns what to store, or an error to store nothing. f may run more than
// once and must be cheap (it runs in the committer): do expensive work,
// such as hashing a password, before. changeIdentity returns what was
// stored.
func (s *Server) changeIdentity(realm, id string, f func(cur *identity) (*identity, error)) (*identity, error) {
	k := identities.StoreKey(realm, id)
	var out *identity
	var ferr error
	err := s.db.Update(func(tx storeTx) error {
		out, ferr = nil, nil
		var cur identity
		found, err := tx.Get(kindIdentity, k, &cur)
		if err != nil {
			return err
		}
		var in *identity
		if found {
			in = &cur
		}
		next, err := f(in)
		ferr = err
		if err != nil {
			return err
		}
		out = next
		return identities.Put(tx, next)
	})
	if err != nil && err == ferr {
		return nil, err // f's answer, not a failure of the store
	}
	if err != nil {
		return nil, storeErr(err)
	}
	return out, nil
}

// putIdentity stores x as it is.
func (s *Server) putIdentity(x *identity) error {
	return storeErr(s.db.Update(func(tx storeTx) error { return identities.Put(tx, x) }))
}

// deleteIdentity deletes an identity and returns it, or nil if there was none.
func (s *Server) deleteIdentity(realm, id string) (*identity, error) {
	k := identities.StoreKey(realm, id)
	var gone *identity
	err := s.db.Update(func(tx storeTx) error {
		gone = nil
		var cur identity
		found, err := tx.Get(kindIdentity, k, &cur)
		if err != nil || !found {
			return err
		}
		gone = &cur
		return identities.Delete(tx, &cur)
	})
	return gone, storeErr(err)
}

// listIdentities returns all identities of realm in _id order.
func (s *Server) listIdentities(realm string) []*identity {
	var out []*identity
	err := s.db.View(func(tx storeTx) error {
		return identities.Scan(tx, realm, "", func(_ string, x *identity) (bool, error) {
			out = append(out, x)
			return true, nil
		})
	})
	if err != nil {
		s.log.LogAttrs(context.Background(), slog.LevelError, "state read failed", slog.String("kind", kindIdentity), slog.String("error", err.Error()))
	}
	return out
}

// sweepLocked drops expired authentications in progress and the idle
// timers and poll times that can no longer matter, at most once a minute,
// so memory stays bounded by live state. The store deletes its own expired
// records.
func (s *Server) sweepLocked(now time.Time) {
	if now.Sub(s.st.lastSweep) < time.Minute {
		return
	}
	s.st.lastSweep = now
	for id, a := range s.st.auths {
		if !now.Before(a.Expires) {
			delete(s.st.auths, id)
		}
	}
	// A session used last at t was created before t, so it has expired by
	// t + SessionMaxTime.
	s.st.idle.Sweep(now, s.sessionMax())
	s.st.polls.Sweep(now)
}
