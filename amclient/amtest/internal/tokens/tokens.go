package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
)

// The store kinds of the records.
const (
	KindGrant = "grant"
	KindToken = "token"
)

// Grant is an OAuth 2.0 authorization: what a refresh token refreshes.
type Grant struct {
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

// Token is an issued access or refresh token, keyed by the token's SHA-256.
type Token struct {
	Refresh bool      `json:"refresh,omitempty"`
	GrantID string    `json:"grant"`
	Scopes  []string  `json:"scopes"`
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires"`
	Revoked bool      `json:"revoked,omitempty"`
	Audit   string    `json:"audit"`
}

// Hash is the store key of a secret: its SHA-256 in hex. Tokens are kept
// under it; the local AM keys its sessions and device codes the same way.
func Hash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// Keys are the server's secrets that client-side tokens need.
type Keys struct {
	// Sign signs ES256 access tokens.
	Sign *jose.JSONWebKey
	// HMAC signs HS256 access tokens and every refresh token.
	HMAC []byte
	// Enc encrypts tokens when the policy asks (dir, A128CBC-HS256).
	Enc []byte
}

// Policy is what the provider and client of a grant decide about its
// tokens.
type Policy struct {
	// ClientID is the client the tokens are for (their aud).
	ClientID string
	// ClientSide makes client-side tokens (AM's "Use Client-Based Access &
	// Refresh Tokens").
	ClientSide bool
	// SigningAlg signs client-side access tokens: "" or "ES256", or "HS256".
	SigningAlg string
	// Encrypt encrypts client-side tokens.
	Encrypt bool
	// AccessLife and RefreshLife are the tokens' lifetimes.
	AccessLife, RefreshLife time.Duration
	// Refresh issues a refresh token beside the access token.
	Refresh bool
}

// Minted is what Mint made: the tokens, and the records to store.
type Minted struct {
	// Access is the access token; Refresh the refresh token, or "".
	Access, Refresh string
	count           int
	puts            []put
}

type put struct {
	kind, key string
	v         *store.Encoded
	expires   time.Time
}

// Count is how many tokens were minted.
func (m *Minted) Count() int { return m.count }

// Stored reports whether there are records to write with Put.
func (m *Minted) Stored() bool { return len(m.puts) > 0 }

// Put writes the records (the grant when new or extended, and the
// tokens) in tx: all of them are stored, or none.
func (m *Minted) Put(tx store.Tx) error {
	for _, p := range m.puts {
		if err := tx.Put(p.kind, p.key, p.v, p.expires); err != nil {
			return err
		}
	}
	return nil
}

// Mint makes an access token for g with the scopes, and a refresh token
// when the policy says so; audit is their audit tracking ID. A refresh
// token that outlives g extends g's expiry.
//
// newGrant says that g is not stored yet: it is stored with the tokens.
// Client-side tokens store nothing (see clientside.go).
func Mint(keys Keys, p Policy, g *Grant, scopes []string, now time.Time, audit string, newGrant bool) (*Minted, error) {
	m := &Minted{}
	if p.ClientSide {
		var err error
		if m.Access, err = sign(keys, p, g, scopes, now, p.AccessLife, audit, false); err != nil {
			return nil, err
		}
	} else {
		m.Access = RandomID(20)
	}
	type tokenRec struct {
		h string
		t *Token
	}
	toks := []tokenRec{{Hash(m.Access), &Token{GrantID: g.ID, Scopes: scopes, Issued: now, Expires: now.Add(p.AccessLife), Audit: audit}}}
	saveGrant := newGrant
	if p.Refresh {
		if exp := now.Add(p.RefreshLife); exp.After(g.Expires) {
			g.Expires = exp
			saveGrant = true
		}
		m.Refresh = RandomID(20)
		if p.ClientSide {
			var err error
			if m.Refresh, err = sign(keys, p, g, scopes, now, p.RefreshLife, audit, true); err != nil {
				return nil, err
			}
		}
		toks = append(toks, tokenRec{Hash(m.Refresh), &Token{Refresh: true, GrantID: g.ID, Scopes: scopes, Issued: now, Expires: now.Add(p.RefreshLife), Audit: audit}})
	}
	m.count = len(toks)
	if p.ClientSide {
		return m, nil
	}
	// The grant (when new or extended) and the tokens are encoded here,
	// outside the transaction that Put runs in.
	if saveGrant {
		enc, err := store.Encode(g)
		if err != nil {
			return nil, err
		}
		m.puts = append(m.puts, put{KindGrant, g.ID, enc, g.Expires})
	}
	for _, r := range toks {
		enc, err := store.Encode(r.t)
		if err != nil {
			return nil, err
		}
		m.puts = append(m.puts, put{KindToken, r.h, enc, r.t.Expires})
	}
	return m, nil
}

// Lookup returns a live token and its grant, or nil ones.
func Lookup(db store.Store, keys Keys, tok string, now time.Time) (*Token, *Grant) {
	if tok == "" {
		return nil, nil
	}
	if looksClientSide(tok) {
		return lookupClientSide(db, keys, tok, now)
	}
	var t Token
	var g Grant
	var ok bool
	err := db.View(func(tx store.Tx) error {
		found, err := tx.Get(KindToken, Hash(tok), &t)
		if err != nil || !found || t.Revoked || !now.Before(t.Expires) {
			return err
		}
		found, err = tx.Get(KindGrant, t.GrantID, &g)
		ok = found && !g.Revoked
		return err
	})
	if err != nil || !ok {
		return nil, nil
	}
	return &t, &g
}

// Revoke revokes tok, found by Lookup as t of grant g, and with
// wholeGrant the grant: every token issued for it. A grant is kept revoked
// at least until keepUntil, when every token of it has expired.
func Revoke(db store.Store, tok string, t *Token, g *Grant, wholeGrant bool, keepUntil time.Time) error {
	rt, rg := *t, *g
	rt.Revoked, rg.Revoked = true, true
	if keepUntil.After(rg.Expires) {
		rg.Expires = keepUntil
	}
	return db.Update(func(tx store.Tx) error {
		if err := tx.Put(KindToken, Hash(tok), &rt, rt.Expires); err != nil {
			return err
		}
		if wholeGrant {
			return tx.Put(KindGrant, rg.ID, &rg, rg.Expires)
		}
		return nil
	})
}

// RandomBytes returns n random bytes (crypto/rand, which crashes the
// program rather than fail without randomness).
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// RandomID returns n random bytes as unpadded base64url: the local AM's
// token values, grant IDs and secrets.
func RandomID(n int) string { return base64.RawURLEncoding.EncodeToString(RandomBytes(n)) }

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	b := RandomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
