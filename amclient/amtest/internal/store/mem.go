package store

import (
	"sort"
	"strings"
	"sync"
	"time"
)

// Mem is the in-memory store: typed copies of the values in maps.
type Mem struct {
	mu        sync.RWMutex
	kinds     map[string]map[string]memRecord
	now       func() time.Time
	lastSweep time.Time
}

type memRecord struct {
	v       any
	expires time.Time
}

// NewMem returns an empty in-memory store whose expiries follow now.
func NewMem(now func() time.Time) *Mem {
	return &Mem{kinds: map[string]map[string]memRecord{}, now: now}
}

// View runs f on the store, holding a read lock.
func (m *Mem) View(f func(tx Tx) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return f(&memTx{m: m})
}

// Update runs f, holding the write lock, and applies its writes if it
// returns nil.
func (m *Mem) Update(f func(tx Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.kinds == nil {
		return ErrClosed
	}
	tx := &memTx{m: m, pending: map[memKey]*memRecord{}}
	if err := f(tx); err != nil {
		return err
	}
	for k, r := range tx.pending {
		recs := m.kinds[k.kind]
		if recs == nil {
			recs = map[string]memRecord{}
			m.kinds[k.kind] = recs
		}
		if r == nil {
			delete(recs, k.key)
		} else {
			recs[k.key] = *r
		}
	}
	m.sweepLocked()
	return nil
}

// sweepLocked deletes expired records, at most once a minute.
func (m *Mem) sweepLocked() {
	now := m.now()
	if now.Sub(m.lastSweep) < time.Minute {
		return
	}
	m.lastSweep = now
	for _, recs := range m.kinds {
		for k, r := range recs {
			if !r.expires.IsZero() && !now.Before(r.expires) {
				delete(recs, k)
			}
		}
	}
}

// Close drops the records; later writes fail with [ErrClosed].
func (m *Mem) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kinds = nil
	return nil
}

type memKey struct{ kind, key string }

// memTx reads the store and, in Update, buffers its writes (nil deletes)
// until f has returned nil.
type memTx struct {
	m       *Mem
	pending map[memKey]*memRecord
}

func (t *memTx) lookup(kind, key string) (memRecord, bool) {
	if r, ok := t.pending[memKey{kind, key}]; ok {
		if r == nil {
			return memRecord{}, false
		}
		return *r, true
	}
	r, ok := t.m.kinds[kind][key]
	return r, ok
}

func (t *memTx) Get(kind, key string, v any) (bool, error) {
	r, ok := t.lookup(kind, key)
	if !ok {
		return false, nil
	}
	return true, assign(v, r.v)
}

func (t *memTx) Put(kind, key string, v any, expires time.Time) error {
	if t.pending == nil {
		return errReadOnly
	}
	if e, ok := v.(*Encoded); ok {
		v = e.V
	}
	t.pending[memKey{kind, key}] = &memRecord{v: copyValue(v), expires: expires}
	return nil
}

func (t *memTx) Has(kind, key string) (bool, error) {
	_, ok := t.lookup(kind, key)
	return ok, nil
}

func (t *memTx) Del(kind, key string) error {
	if t.pending == nil {
		return errReadOnly
	}
	t.pending[memKey{kind, key}] = nil
	return nil
}

func (t *memTx) keys(kind, prefix, after string) []string {
	var keys []string
	for k := range t.m.kinds[kind] {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	for k, r := range t.pending {
		if k.kind == kind && r != nil && strings.HasPrefix(k.key, prefix) && k.key > after {
			if _, dup := t.m.kinds[kind][k.key]; !dup {
				keys = append(keys, k.key)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

func (t *memTx) Scan(kind, prefix, after string, f func(key string, decode func(v any) error) (bool, error)) error {
	for _, k := range t.keys(kind, prefix, after) {
		r, ok := t.lookup(kind, k)
		if !ok {
			continue
		}
		more, err := f(k, func(v any) error { return assign(v, r.v) })
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (t *memTx) Count(kind string) (int, error) {
	return len(t.keys(kind, "", "")), nil
}
