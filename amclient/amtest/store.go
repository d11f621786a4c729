package amtest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
)

// A store holds the server's state as records: a kind (identity, session,
// grant, token, device, usercode, assertion, keys, config), a key and a
// value. Without a data directory it is a [memStore]; with one, a
// [boltStore], where every change is committed to disk before it is
// acknowledged.
//
// There is one write discipline: a change is made in update, which reads
// what it needs and writes in one transaction; the change is visible to
// other requests, and acknowledged, only once update has returned nil.
// Nothing is kept in memory beside the store, so memory never runs ahead
// of disk.
type store interface {
	// view runs f on a consistent snapshot. It holds no lock that writers
	// wait on.
	view(f func(tx storeTx) error) error
	// update runs f in a write transaction and returns once the
	// transaction is committed (on disk, for a boltStore). If f returns an
	// error, none of its writes are applied and update returns that error.
	// f must do its reads and checks before its first write, and may run
	// more than once: whatever it records outside tx must be set afresh on
	// every run.
	update(f func(tx storeTx) error) error
	close() error
}

// storeTx is a transaction of a store.
type storeTx interface {
	// get decodes the record into v (a pointer) and reports whether it
	// exists.
	get(kind, key string, v any) (bool, error)
	// has reports whether the record exists, without decoding it.
	has(kind, key string) (bool, error)
	// put writes v. A record with a non-zero expires is deleted once
	// expires has passed, while the server runs.
	put(kind, key string, v any, expires time.Time) error
	del(kind, key string) error
	// scan calls f for each record of kind whose key starts with prefix
	// and sorts after after, in key order, until f returns false.
	scan(kind, prefix, after string, f func(key string, decode func(v any) error) (bool, error)) error
	// count returns the number of records of kind.
	count(kind string) (int, error)
}

// encoded is a value to put with its JSON made beforehand, outside the
// transaction: writes run one after another in the committer, so the work
// done there is what every writer waits for.
type encoded struct {
	v   any
	raw []byte
}

func encode(v any) (*encoded, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &encoded{v: v, raw: raw}, nil
}

// errStoreClosed answers writes after Close.
var errStoreClosed = errors.New("amtest: the server's store is closed")

// memStore is the in-memory store: typed copies of the values in maps.
type memStore struct {
	mu        sync.RWMutex
	kinds     map[string]map[string]memRecord
	now       func() time.Time
	lastSweep time.Time
}

type memRecord struct {
	v       any
	expires time.Time
}

func newMemStore(now func() time.Time) *memStore {
	return &memStore{kinds: map[string]map[string]memRecord{}, now: now}
}

// copyValue returns a copy of *v that shares nothing mutable with it.
func copyValue(v any) any {
	if x, ok := v.(*identity); ok {
		return x.clone()
	}
	rv := reflect.ValueOf(v)
	c := reflect.New(rv.Elem().Type())
	c.Elem().Set(rv.Elem())
	return c.Interface()
}

// assign copies the stored value src into the pointer dst.
func assign(dst, src any) error {
	if x, ok := src.(*identity); ok {
		if d, ok := dst.(*identity); ok {
			*d = *x.clone()
			return nil
		}
	}
	dv, sv := reflect.ValueOf(dst), reflect.ValueOf(src)
	if dv.Kind() != reflect.Pointer || dv.Type() != sv.Type() {
		return errors.New("amtest: store record of another type")
	}
	dv.Elem().Set(sv.Elem())
	return nil
}

func (m *memStore) view(f func(tx storeTx) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return f(&memTx{m: m})
}

func (m *memStore) update(f func(tx storeTx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.kinds == nil {
		return errStoreClosed
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
func (m *memStore) sweepLocked() {
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

func (m *memStore) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kinds = nil
	return nil
}

type memKey struct{ kind, key string }

// memTx reads the store and, in update, buffers its writes (nil deletes)
// until f has returned nil.
type memTx struct {
	m       *memStore
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

func (t *memTx) get(kind, key string, v any) (bool, error) {
	r, ok := t.lookup(kind, key)
	if !ok {
		return false, nil
	}
	return true, assign(v, r.v)
}

func (t *memTx) put(kind, key string, v any, expires time.Time) error {
	if t.pending == nil {
		return errors.New("amtest: write in a read transaction")
	}
	if e, ok := v.(*encoded); ok {
		v = e.v
	}
	t.pending[memKey{kind, key}] = &memRecord{v: copyValue(v), expires: expires}
	return nil
}

func (t *memTx) has(kind, key string) (bool, error) {
	_, ok := t.lookup(kind, key)
	return ok, nil
}

func (t *memTx) del(kind, key string) error {
	if t.pending == nil {
		return errors.New("amtest: write in a read transaction")
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

func (t *memTx) scan(kind, prefix, after string, f func(key string, decode func(v any) error) (bool, error)) error {
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

func (t *memTx) count(kind string) (int, error) {
	return len(t.keys(kind, "", "")), nil
}

// openStore opens the store: in memory, or DataDir's database (converting
// a journal-format directory at its first start).
func (s *Server) openStore() error {
	if s.DataDir == "" {
		s.db = newMemStore(s.now)
		return nil
	}
	// The directory lock covers the journal of an older format too, which
	// bbolt's lock on its own file does not.
	unlock, err := lockDataDir(s.DataDir)
	if err != nil {
		return err
	}
	b, err := openBoltStore(s.DataDir, s.now, s.log)
	if err != nil {
		unlock()
		return err
	}
	if err := convertJournal(s.DataDir, b, s.log); err != nil {
		b.close()
		unlock()
		return err
	}
	s.db, s.unlock = b, unlock
	return nil
}

// closeStore closes the store and releases the data directory.
func (s *Server) closeStore() {
	if s.db != nil {
		s.db.close()
	}
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}

// countRecords returns the number of records of kind (for tests and
// benchmarks).
func (s *Server) countRecords(kind string) int {
	var n int
	s.db.view(func(tx storeTx) error {
		var err error
		n, err = tx.count(kind)
		return err
	})
	return n
}

// StoreInfo describes what a server's store holds.
type StoreInfo struct {
	// File is the database file of the data directory; empty in memory.
	File string
	// Size is the file's size in bytes.
	Size int64
	// Identities and Sessions count the records of each kind (every
	// realm; sessions not yet deleted by expiry included).
	Identities, Sessions int
}

// StoreInfo says what the store holds. Call it after Init or Start.
func (s *Server) StoreInfo() (StoreInfo, error) {
	if err := s.Init(); err != nil {
		return StoreInfo{}, err
	}
	info := StoreInfo{Identities: s.countRecords(kindIdentity), Sessions: s.countRecords(kindSession)}
	if s.DataDir != "" {
		info.File = filepath.Join(s.DataDir, dbFile)
		fi, err := os.Stat(info.File)
		if err != nil {
			return info, err
		}
		info.Size = fi.Size()
	}
	return info, nil
}
