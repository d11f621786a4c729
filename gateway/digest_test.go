package gateway

import (
	"encoding/base64"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func fakeAuthID(exp int64) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(fmt.Sprintf(`{"exp":%d,"x":"y"}`, exp))) + ".sig"
}

func TestDigestCache(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := newDigestCache(3, func() time.Time { return now }, new(atomic.Int64))

	// iot-edge's digest: base64 std of SHA-256, 44 characters.
	if d := digestOf("abc"); d != "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=" {
		t.Errorf("digestOf = %s", d)
	}

	// The authId's exp sets the lifetime; without one, 5 minutes.
	withExp := fakeAuthID(now.Add(time.Minute).Unix())
	d1 := c.put(withExp)
	d2 := c.put("opaque-auth-id")
	if id, ok := c.get(d1); !ok || id != withExp {
		t.Fatal("entry missing")
	}
	now = now.Add(2 * time.Minute)
	if _, ok := c.get(d1); ok {
		t.Error("entry outlived the authId's exp")
	}
	if _, ok := c.get(d2); !ok {
		t.Error("entry without exp expired before 5 minutes")
	}
	now = now.Add(4 * time.Minute)
	if _, ok := c.get(d2); ok {
		t.Error("entry without exp outlived 5 minutes")
	}

	// An authId already expired is not cached (iot-edge kept it for ever).
	c.put(fakeAuthID(now.Add(-time.Second).Unix()))
	if c.len() != 0 {
		t.Errorf("len = %d", c.len())
	}
	// A far exp is capped.
	far := c.put(fakeAuthID(now.Add(24 * time.Hour).Unix()))
	now = now.Add(maxAuthIDTTL + time.Second)
	if _, ok := c.get(far); ok {
		t.Error("exp not capped")
	}

	// Size bound: the oldest goes first.
	var ds []string
	for i := range 5 {
		ds = append(ds, c.put(fmt.Sprintf("auth-%d", i)))
	}
	if c.len() != 3 {
		t.Errorf("len = %d, want 3", c.len())
	}
	if _, ok := c.get(ds[0]); ok {
		t.Error("oldest entry kept beyond the bound")
	}
	if _, ok := c.get(ds[4]); !ok {
		t.Error("newest entry evicted")
	}
	c.forget(ds[4])
	if _, ok := c.get(ds[4]); ok {
		t.Error("forget kept the entry")
	}
}
