package tokens_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

func testKeys(t *testing.T) tokens.Keys {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b := func(n int) []byte {
		x := make([]byte, n)
		rand.Read(x)
		return x
	}
	return tokens.Keys{Sign: &jose.JSONWebKey{Key: k, KeyID: "k", Algorithm: "ES256", Use: "sig"}, HMAC: b(32), Enc: b(32)}
}

// TestMintLookupRevoke mints an access and a refresh token for a grant
// under each kind of policy, looks them up, lets them expire and revokes
// them: the access token alone, then the grant through its refresh token.
func TestMintLookupRevoke(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		policy tokens.Policy
		dots   int // in the tokens
	}{
		{"server-side", tokens.Policy{}, 0},
		{"client-side ES256", tokens.Policy{ClientSide: true}, 2},
		{"client-side HS256", tokens.Policy{ClientSide: true, SigningAlg: "HS256"}, 2},
		{"client-side encrypted", tokens.Policy{ClientSide: true, Encrypt: true}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := store.NewMem(func() time.Time { return now })
			keys := testKeys(t)
			p := tc.policy
			p.ClientID, p.AccessLife, p.RefreshLife, p.Refresh = "client", time.Hour, 24*time.Hour, true
			g := &tokens.Grant{ID: "g1", Realm: "/r", Issuer: "http://am/oauth2", ClientID: "client", Subject: "thing",
				Thing: "thing", Scopes: []string{"publish"}, AuthTime: now, Expires: now.Add(time.Hour)}
			m, err := tokens.Mint(keys, p, g, []string{"publish"}, now, "audit-1", true)
			if err != nil {
				t.Fatal(err)
			}
			if m.Count() != 2 || m.Access == "" || m.Refresh == "" || m.Access == m.Refresh {
				t.Fatalf("minted %d tokens: %q and %q", m.Count(), m.Access, m.Refresh)
			}
			if n := strings.Count(m.Access, "."); n != tc.dots {
				t.Errorf("access token has %d dots, want %d", n, tc.dots)
			}
			if !g.Expires.Equal(now.Add(24 * time.Hour)) {
				t.Errorf("grant expires %v, want the refresh token's expiry", g.Expires)
			}
			if m.Stored() == p.ClientSide {
				t.Errorf("Stored() = %v with ClientSide %v", m.Stored(), p.ClientSide)
			}
			if err := db.Update(m.Put); err != nil {
				t.Fatal(err)
			}
			for _, tok := range []string{m.Access, m.Refresh} {
				refresh := tok == m.Refresh
				gt, gg := tokens.Lookup(db, keys, tok, now.Add(time.Minute))
				if gt == nil || gt.Refresh != refresh || gt.GrantID != "g1" || !slices.Equal(gt.Scopes, []string{"publish"}) || gt.Audit != "audit-1" {
					t.Fatalf("Lookup(refresh %v) = %+v", refresh, gt)
				}
				if gg.ID != "g1" || gg.Realm != "/r" || gg.ClientID != "client" || gg.Subject != "thing" || gg.Issuer != "http://am/oauth2" {
					t.Errorf("Lookup(refresh %v) grant = %+v", refresh, gg)
				}
			}
			if tk, _ := tokens.Lookup(db, keys, m.Access, now.Add(time.Hour)); tk != nil {
				t.Error("the access token is live at its expiry")
			}
			if tk, _ := tokens.Lookup(db, keys, m.Access[:len(m.Access)-2]+"xx", now); tk != nil {
				t.Error("an altered access token is live")
			}
			if tk, _ := tokens.Lookup(db, testKeys(t), m.Access, now); tk != nil && p.ClientSide {
				t.Error("a client-side token is live under other keys")
			}

			at, ag := tokens.Lookup(db, keys, m.Access, now)
			if err := tokens.Revoke(db, m.Access, at, ag, false, time.Time{}); err != nil {
				t.Fatal(err)
			}
			if tk, _ := tokens.Lookup(db, keys, m.Access, now); tk != nil {
				t.Error("the revoked access token is live")
			}
			rt, rg := tokens.Lookup(db, keys, m.Refresh, now)
			if rt == nil {
				t.Fatal("revoking the access token revoked the refresh token")
			}
			if err := tokens.Revoke(db, m.Refresh, rt, rg, true, now.Add(48*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if tk, _ := tokens.Lookup(db, keys, m.Refresh, now); tk != nil {
				t.Error("the revoked refresh token is live")
			}

			// A new access token of the revoked grant is not live either.
			m2, err := tokens.Mint(keys, tokens.Policy{ClientID: "client", ClientSide: p.ClientSide, SigningAlg: p.SigningAlg, Encrypt: p.Encrypt, AccessLife: time.Hour}, g, []string{"publish"}, now, "audit-2", false)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(m2.Put); err != nil {
				t.Fatal(err)
			}
			if m2.Count() != 1 || m2.Refresh != "" {
				t.Errorf("without Refresh: %d tokens, refresh %q", m2.Count(), m2.Refresh)
			}
			if tk, _ := tokens.Lookup(db, keys, m2.Access, now); tk != nil {
				t.Error("a token of a revoked grant is live")
			}
		})
	}
}

func TestMintRefusals(t *testing.T) {
	g := &tokens.Grant{ID: "g1"}
	now := time.Now()
	if _, err := tokens.Mint(testKeys(t), tokens.Policy{ClientSide: true, SigningAlg: "RS256", AccessLife: time.Hour}, g, nil, now, "a", true); err == nil ||
		!strings.Contains(err.Error(), `"RS256" is not supported`) {
		t.Errorf("RS256: %v", err)
	}
	db := store.NewMem(func() time.Time { return now })
	for _, tok := range []string{"", "unknown", "a.b.c", "a.b.c.d.e"} {
		if tk, _ := tokens.Lookup(db, testKeys(t), tok, now); tk != nil {
			t.Errorf("Lookup(%q) = %+v", tok, tk)
		}
	}
}

func TestHash(t *testing.T) {
	// The SHA-256 of "abc" (FIPS 180-2, appendix B.1).
	if h := tokens.Hash("abc"); h != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("Hash(abc) = %s", h)
	}
}
