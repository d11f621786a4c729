package gateway

import (
	"container/list"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thingway/thingway/internal/jws"
)

// Lifetimes of a cached authId.
const (
	defaultAuthIDTTL = 5 * time.Minute  // when the authId has no exp claim
	maxAuthIDTTL     = 30 * time.Minute // cap on an authId's own exp
)

// digestCache maps auth_id_digest values to AM's authIds. It holds at most
// max entries (the oldest goes first), each until its authId expires. Each
// DTLS session has its own (the flows it started), so one peer cannot
// evict another's flows nor use their digests.
type digestCache struct {
	now   func() time.Time
	max   int
	total *atomic.Int64 // entries of every session's cache, for tests and metrics

	mu      sync.Mutex
	entries map[string]*list.Element // digest → element of order
	order   *list.List               // of *digestEntry, oldest first
}

type digestEntry struct {
	digest  string
	authID  string
	expires time.Time
}

func newDigestCache(max int, now func() time.Time, total *atomic.Int64) *digestCache {
	return &digestCache{now: now, max: max, total: total, entries: map[string]*list.Element{}, order: list.New()}
}

// digestOf is iot-edge's digest: standard padded base64 of SHA-256.
func digestOf(authID string) string {
	sum := sha256.Sum256([]byte(authID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// put caches authID and returns its digest. An authId that has already
// expired is not cached (AM would refuse it anyway).
func (c *digestCache) put(authID string) string {
	d := digestOf(authID)
	now := c.now()
	exp := authIDExpiry(authID, now)
	if !now.Before(exp) {
		return d
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[d]; ok {
		el.Value.(*digestEntry).expires = exp
		c.order.MoveToBack(el)
		return d
	}
	for c.order.Len() >= c.max {
		c.remove(c.order.Front())
	}
	c.entries[d] = c.order.PushBack(&digestEntry{digest: d, authID: authID, expires: exp})
	c.total.Add(1)
	return d
}

// get returns the authId of digest, if it is cached and not expired.
func (c *digestCache) get(digest string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[digest]
	if !ok {
		return "", false
	}
	e := el.Value.(*digestEntry)
	if !c.now().Before(e.expires) {
		c.remove(el)
		return "", false
	}
	return e.authID, true
}

// forget drops digest: its step has been answered by AM.
func (c *digestCache) forget(digest string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[digest]; ok {
		c.remove(el)
	}
}

func (c *digestCache) remove(el *list.Element) {
	delete(c.entries, el.Value.(*digestEntry).digest)
	c.order.Remove(el)
	c.total.Add(-1)
}

// clear drops every entry: the session has ended.
func (c *digestCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.order.Len() > 0 {
		c.remove(c.order.Front())
	}
}

// len returns the number of entries, expired ones included.
func (c *digestCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// authIDExpiry reads the exp claim of an authId (a JWT, not verified: AM
// verifies it) and bounds it; without one, now + 5 minutes.
func authIDExpiry(authID string, now time.Time) time.Time {
	def := now.Add(defaultAuthIDTTL)
	c, err := jws.Split(authID)
	if err != nil {
		return def
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(c.Payload, &claims) != nil || claims.Exp == nil {
		return def
	}
	f, err := claims.Exp.Float64()
	if err != nil {
		return def
	}
	// Bounded before the conversion: a claim out of int64's range would
	// convert to an arbitrary value.
	if limit := now.Add(maxAuthIDTTL); f >= float64(limit.Unix()) {
		return limit
	}
	if f <= float64(now.Unix()) {
		return now // passed
	}
	return time.Unix(int64(f), 0)
}
