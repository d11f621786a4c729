// Package sessions is the local AM's SSO sessions without the HTTP around
// them. It owns
//
//   - the session record ([Session]) and its token: AM's format for a new
//     token ([NewToken]); the token itself is never stored, a session is
//     kept under the token's hash
//   - a restricted session's request nonces ([TakeNonce]): a record of
//     their own ([Nonce]), checked and raised in one store transaction, so
//     that two requests cannot pass with one nonce and an accepted nonce
//     is on disk before it is acknowledged
//   - the idle timers ([Idle]): when each session was last used, in memory
//     only, as AM's idle timeout is
//
// The /json/sessions endpoint, the SSO cookie and the signed requests'
// JWSs are amclient/amtest's; what a session allows is decided where it is
// used. It must not import amclient/amtest; it imports only
// internal/store and internal/tokens (the token hash and random values),
// go-jose and the standard library.
package sessions

import (
	"errors"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thingway/thingway/amclient/amtest/internal/store"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// The store kinds of sessions and of their nonces.
const (
	Kind = "session"
	// NonceKind is a restricted session's highest request nonce, keyed as
	// its session and expiring with it. It is a record of its own so that
	// a signed request rewrites a few bytes, not the session with its key.
	NonceKind = "nonce"
)

// Session is an SSO session, stored under the hash of its token.
type Session struct {
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
}

// Nonce is a NonceKind record.
type Nonce struct {
	N       int64     `json:"n"`
	Expires time.Time `json:"expires"`
}

// NewToken returns a new session token. AM's tokens are opaque strings
// with '.' and '*'; these have the same alphabet.
func NewToken() string {
	return tokens.RandomID(32) + ".*AAJTSQACMDEAAlNLABQ" + tokens.RandomID(9) + "*"
}

// Hash is the key a session and its nonce are stored under.
func Hash(tok string) string { return tokens.Hash(tok) }

// Start fills in a new session x made at now that lives for max.
func Start(x *Session, now time.Time, max time.Duration) {
	x.Created = now
	x.Expires = now.Add(max)
	x.LastNonce = -1
	x.UID0 = tokens.RandomID(12)
}

// Read returns the session stored under h with its highest nonce so far.
func Read(tx store.Tx, h string) (*Session, bool, error) {
	var x Session
	found, err := tx.Get(Kind, h, &x)
	if err != nil || !found {
		return nil, false, err
	}
	var n Nonce
	ok, err := tx.Get(NonceKind, h, &n)
	if ok && n.N > x.LastNonce {
		x.LastNonce = n.N
	}
	return &x, true, err
}

// End deletes the session stored under h and its nonce; it reports
// whether there was one.
func End(tx store.Tx, h string) (bool, error) {
	found, err := tx.Has(Kind, h)
	if err != nil || !found {
		return false, err
	}
	if err := tx.Del(NonceKind, h); err != nil {
		return true, err
	}
	return true, tx.Del(Kind, h)
}

// ErrNonceUsed fails a transaction whose request's nonce another request
// took first, or that is not above the session's highest; ErrGone one
// whose session has ended.
var (
	ErrNonceUsed = errors.New("nonce already used")
	ErrGone      = errors.New("session ended")
)

// TakeNonce records nonce n for the session of token tok if it is above
// every nonce of the session: the check and the write in one transaction,
// so that two requests cannot both pass with one nonce.
//
// The session is decoded only for its first signed request, or one whose
// session was written before nonces had records: otherwise the check reads
// and writes a few bytes.
func TakeNonce(tx store.Tx, tok string, n int64) error {
	h := Hash(tok)
	live, err := tx.Has(Kind, h)
	if err != nil {
		return err
	}
	if !live {
		return ErrGone
	}
	var rec Nonce
	found, err := tx.Get(NonceKind, h, &rec)
	if err != nil {
		return err
	}
	if !found {
		var x Session
		if found, err = tx.Get(Kind, h, &x); err != nil {
			return err
		}
		if !found {
			return ErrGone
		}
		rec = Nonce{N: x.LastNonce, Expires: x.Expires}
	}
	if n <= rec.N {
		return ErrNonceUsed
	}
	rec.N = n
	return tx.Put(NonceKind, h, &rec, rec.Expires)
}

// Idle keeps when each session was last used, by its hash. The zero value
// is ready.
type Idle struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// Touch records that the session h was used at now.
func (i *Idle) Touch(h string, now time.Time) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.last == nil {
		i.last = map[string]time.Time{}
	}
	i.last[h] = now
}

// Use reports whether the session h has been idle for less than idle at
// now (a session never used counts as fresh), and records the use if so.
func (i *Idle) Use(h string, now time.Time, idle time.Duration) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if last, ok := i.last[h]; ok && now.Sub(last) >= idle {
		return false
	}
	if i.last == nil {
		i.last = map[string]time.Time{}
	}
	i.last[h] = now
	return true
}

// Forget drops the session h's timer.
func (i *Idle) Forget(h string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	delete(i.last, h)
}

// Sweep drops the timers of sessions unused for max (the longest a
// session lives): they can no longer matter.
func (i *Idle) Sweep(now time.Time, max time.Duration) {
	i.mu.Lock()
	defer i.mu.Unlock()
	for h, t := range i.last {
		if now.Sub(t) >= max {
			delete(i.last, h)
		}
	}
}
