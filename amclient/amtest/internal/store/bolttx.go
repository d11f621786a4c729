package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// boltTx is a [Tx] over a bbolt transaction.
type boltTx struct {
	tx       *bolt.Tx
	writable bool
	dirty    bool                    // a write was made
	caches   map[string]*decodeCache // decoded values of the cached kinds, or nil
}

func (t *boltTx) bucket(kind string) (*bolt.Bucket, error) {
	bk := t.tx.Bucket([]byte(kind))
	if bk == nil {
		return nil, fmt.Errorf("amtest: no bucket for kind %q", kind)
	}
	return bk, nil
}

func (t *boltTx) Get(kind, key string, v any) (bool, error) {
	bk, err := t.bucket(kind)
	if err != nil {
		return false, err
	}
	raw := bk.Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	if len(raw) < 8 {
		return false, fmt.Errorf("record %s %q is malformed", kind, key)
	}
	cache := t.caches[kind]
	if cache != nil && cache.get(key, raw, v) {
		return true, nil
	}
	if err := json.Unmarshal(raw[8:], v); err != nil {
		return false, fmt.Errorf("record %s %q: %w", kind, key, err)
	}
	if cache != nil {
		cache.put(key, raw, v)
	}
	return true, nil
}

func (t *boltTx) Put(kind, key string, v any, expires time.Time) error {
	if e, ok := v.(*Encoded); ok {
		return t.putRaw(kind, key, e.Raw, expires)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return t.putRaw(kind, key, b, expires)
}

func (t *boltTx) putRaw(kind, key string, b []byte, expires time.Time) error {
	if !t.writable {
		return errReadOnly
	}
	bk, err := t.bucket(kind)
	if err != nil {
		return err
	}
	t.dirty = true
	exp := encodeExpiry(expires)
	if err := t.unindex(bk, kind, key, exp); err != nil {
		return err
	}
	val := make([]byte, 0, 8+len(b))
	val = append(append(val, exp...), b...)
	if err := bk.Put([]byte(key), val); err != nil {
		return err
	}
	if !expires.IsZero() {
		return t.tx.Bucket(expiryBucket).Put(expiryIndexKey(exp, kind, key), nil)
	}
	return nil
}

// unindex removes the expiry index entry of the record at key, unless its
// expiry is keep.
func (t *boltTx) unindex(bk *bolt.Bucket, kind, key string, keep []byte) error {
	old := bk.Get([]byte(key))
	if len(old) < 8 || bytes.Equal(old[:8], keep) || binary.BigEndian.Uint64(old[:8]) == 0 {
		return nil
	}
	return t.tx.Bucket(expiryBucket).Delete(expiryIndexKey(old[:8], kind, key))
}

func (t *boltTx) Has(kind, key string) (bool, error) {
	bk, err := t.bucket(kind)
	if err != nil {
		return false, err
	}
	return bk.Get([]byte(key)) != nil, nil
}

func (t *boltTx) Del(kind, key string) error {
	if !t.writable {
		return errReadOnly
	}
	bk, err := t.bucket(kind)
	if err != nil {
		return err
	}
	t.dirty = true
	if err := t.unindex(bk, kind, key, nil); err != nil {
		return err
	}
	return bk.Delete([]byte(key))
}

func (t *boltTx) Scan(kind, prefix, after string, f func(key string, decode func(v any) error) (bool, error)) error {
	bk, err := t.bucket(kind)
	if err != nil {
		return err
	}
	c := bk.Cursor()
	p := []byte(prefix)
	var k, v []byte
	if after != "" && after >= prefix {
		k, v = c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
	} else {
		k, v = c.Seek(p)
	}
	// Deleting under a cursor skips records; collect deletions' keys first
	// where f deletes (amtest's purgeRealm does), which copying the key
	// allows.
	for ; k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		key := string(k)
		raw := v
		more, err := f(key, func(x any) error {
			if len(raw) < 8 {
				return fmt.Errorf("record %s %q is malformed", kind, key)
			}
			return json.Unmarshal(raw[8:], x)
		})
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (t *boltTx) Count(kind string) (int, error) {
	bk, err := t.bucket(kind)
	if err != nil {
		return 0, err
	}
	return bk.Stats().KeyN, nil
}

// sweepExpired deletes up to max records whose expiry is at or before now,
// with their index entries, and returns how many it deleted.
func sweepExpired(tx *bolt.Tx, now time.Time, max int) (int, error) {
	idx := tx.Bucket(expiryBucket)
	c := idx.Cursor()
	n := 0
	limit := now.UnixNano()
	for k, _ := c.First(); k != nil && n < max; k, _ = c.First() {
		if len(k) < 9 || int64(binary.BigEndian.Uint64(k)) > limit {
			break
		}
		kind, key, ok := bytes.Cut(k[8:], []byte{0})
		if !ok {
			return n, fmt.Errorf("expiry index entry %q is malformed", k)
		}
		if bk := tx.Bucket(kind); bk != nil {
			if v := bk.Get(key); len(v) >= 8 && bytes.Equal(v[:8], k[:8]) {
				if err := bk.Delete(key); err != nil {
					return n, err
				}
			}
		}
		if err := c.Delete(); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func expiryIndexKey(exp []byte, kind, key string) []byte {
	k := make([]byte, 0, 8+len(kind)+1+len(key))
	k = append(k, exp...)
	k = append(k, kind...)
	k = append(k, 0)
	return append(k, key...)
}

func encodeExpiry(t time.Time) []byte {
	b := make([]byte, 8)
	if !t.IsZero() {
		n := t.UnixNano()
		if n < 1 {
			n = 1
		}
		binary.BigEndian.PutUint64(b, uint64(n))
	}
	return b
}

// decodeCache keeps decoded values of one kind beside the bytes they were
// decoded from (amtest caches sessions, whose confirmation key costs a
// point-on-curve check to decode, and identities, read on every signed
// request). A value is served from the cache only
// while its stored bytes are the bytes it was decoded from, so the cache
// never answers with what the database no longer holds; it holds at most
// decodeCacheMax values.
type decodeCache struct {
	mu sync.Mutex
	m  map[string]cachedValue
}

type cachedValue struct {
	raw []byte
	v   any
}

const decodeCacheMax = 8192

func (c *decodeCache) get(key string, raw []byte, dst any) bool {
	c.mu.Lock()
	cv, ok := c.m[key]
	c.mu.Unlock()
	return ok && bytes.Equal(cv.raw, raw) && assign(dst, cv.v) == nil
}

func (c *decodeCache) put(key string, raw []byte, v any) {
	cv := cachedValue{raw: bytes.Clone(raw), v: copyValue(v)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedValue{}
	}
	if len(c.m) >= decodeCacheMax {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = cv
}
