package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thingway/thingway/internal/jws"
)

// FuzzAuthID feeds arbitrary authIds, as AM's answers carry them, to the
// gateway's reading of them (authIDExpiry) and its digest cache. The
// expiry is the exp claim of a well-formed JWS (the whole second, toward
// zero), never later than 30 minutes from now however large the claim,
// and 5 minutes from now without one; the digest is iot-edge's (standard
// base64 of the SHA-256, 44 characters); an authId is cached exactly when
// it has not expired, its digest then gives it back until it expires, and
// the cache never holds more than its bound.
func FuzzAuthID(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	jwt := func(payload string) string {
		return enc([]byte(`{"typ":"JWT","alg":"HS256"}`)) + "." + enc([]byte(payload)) + "." + enc([]byte("signature"))
	}
	// The shape of AM's authIds (and the local AM's).
	f.Add(jwt(`{"otk":"k6lhfa0k2ko5ljvrs5sq4ku55n","authIndexType":"service","authIndexValue":"auth-tree","realm":"/","sessionId":"AQIC5w...","exp":1800000100}`))
	f.Add(jwt(`{"exp":1800000000.9}`))
	// Regressions: claims beyond int64's range converted to arbitrary
	// times (here a year past 292 billion, after the cap and yet not
	// capped).
	f.Add(jwt(`{"exp":1e300}`))
	f.Add(jwt(`{"exp":9223372036854775808}`))
	f.Add(jwt(`{"exp":-1e300}`))
	f.Add(jwt(`{"exp":"1800000100"}`))
	f.Add(jwt(`{"exp":1,"exp":1800000100}`))
	f.Add(jwt(`{}`) + "=")
	f.Add("opaque-auth-id")
	now := time.Unix(1_800_000_000, 0)
	var total atomic.Int64
	f.Fuzz(func(t *testing.T, authID string) {
		got := authIDExpiry(authID, now)
		limit := now.Add(maxAuthIDTTL)
		if got.After(limit) {
			t.Fatalf("expiry %v after the %v cap", got, limit)
		}
		want := now.Add(defaultAuthIDTTL)
		if c, err := jws.Split(authID); err == nil {
			var claims struct {
				Exp *json.Number `json:"exp"`
			}
			if json.Unmarshal(c.Payload, &claims) == nil && claims.Exp != nil {
				if e, err := claims.Exp.Float64(); err == nil {
					switch {
					case e >= float64(limit.Unix()):
						want = limit
					case e <= float64(now.Unix()):
						want = time.Time{} // expired: only the comparison matters
					default:
						want = time.Unix(int64(math.Trunc(e)), 0)
					}
				}
			}
		}
		if want.IsZero() {
			if got.After(now) {
				t.Fatalf("an authId whose exp has passed expires at %v", got)
			}
		} else if !got.Equal(want) {
			t.Fatalf("expiry %v, want %v", got, want)
		}

		d := digestOf(authID)
		sum := sha256.Sum256([]byte(authID))
		if d != base64.StdEncoding.EncodeToString(sum[:]) || len(d) != 44 {
			t.Fatalf("digest %q", d)
		}
		clock := now
		c := newDigestCache(2, func() time.Time { return clock }, &total)
		c.put("other-1")
		if c.put(authID) != d {
			t.Fatal("put returns another digest")
		}
		c.put("other-2")
		c.put(authID) // the latest use is kept
		id, ok := c.get(d)
		if ok != now.Before(got) || ok && id != authID {
			t.Fatalf("get = %q, %v for an authId expiring at %v", id, ok, got)
		}
		if c.len() > 2 {
			t.Fatalf("%d entries in a cache of 2", c.len())
		}
		if ok {
			clock = got
			if _, ok := c.get(d); ok {
				t.Fatal("an expired authId is still given back")
			}
		}
		c.clear()
		if total.Load() != 0 {
			t.Fatalf("%d entries counted after clear", total.Load())
		}
	})
}
