package store

import (
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"time"
)

// A Store holds records: a kind, a key and a value. There is one write
// discipline: a change is made in Update, which reads what it needs and
// writes in one transaction; the change is visible to other requests, and
// acknowledged, only once Update has returned nil. Nothing is kept in
// memory beside the store, so memory never runs ahead of disk.
type Store interface {
	// View runs f on a consistent snapshot. It holds no lock that writers
	// wait on.
	View(f func(tx Tx) error) error
	// Update runs f in a write transaction and returns once the
	// transaction is committed (on disk, for a [Bolt]). If f returns an
	// error, none of its writes are applied and Update returns that error.
	// f must do its reads and checks before its first write, and may run
	// more than once: whatever it records outside tx must be set afresh on
	// every run.
	Update(f func(tx Tx) error) error
	// Close closes the store (and releases its data directory).
	Close() error
}

// Tx is a transaction of a store.
type Tx interface {
	// Get decodes the record into v (a pointer) and reports whether it
	// exists.
	Get(kind, key string, v any) (bool, error)
	// Has reports whether the record exists, without decoding it.
	Has(kind, key string) (bool, error)
	// Put writes v (a pointer, or an [*Encoded]). A record with a non-zero
	// expires is deleted once expires has passed, while the store is open.
	Put(kind, key string, v any, expires time.Time) error
	Del(kind, key string) error
	// Scan calls f for each record of kind whose key starts with prefix
	// and sorts after after, in key order, until f returns false.
	Scan(kind, prefix, after string, f func(key string, decode func(v any) error) (bool, error)) error
	// Count returns the number of records of kind.
	Count(kind string) (int, error)
}

// Encoded is a value to put with its JSON made beforehand, outside the
// transaction: writes run one after another in the committer, so the work
// done there is what every writer waits for.
type Encoded struct {
	V   any
	Raw []byte
}

// Encode encodes v for Put.
func Encode(v any) (*Encoded, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &Encoded{V: v, Raw: raw}, nil
}

// Cloner is a stored value that a plain copy would share mutable parts
// with (maps, slices): the in-memory store and the decode cache keep and
// hand out its CloneValue (of the same pointer type) instead.
type Cloner interface {
	CloneValue() any
}

// ErrClosed answers writes after Close.
var ErrClosed = errors.New("amtest: the server's store is closed")

var errReadOnly = errors.New("amtest: write in a read transaction")

// Options says what a store holds and where.
type Options struct {
	// Dir is the data directory; empty, the store is in memory.
	Dir string
	// Kinds are the record kinds (a database bucket each).
	Kinds []string
	// Cached are the kinds whose decoded values a [Bolt] keeps beside the
	// bytes they were decoded from (values that are costly to decode and
	// read on every request).
	Cached []string
	// Now is the clock that expiries are compared with.
	Now func() time.Time
	// Log receives the store's warnings and errors.
	Log *slog.Logger
	// ImportJournal writes one record of a journal-format directory being
	// converted (the caller knows the kinds' types, keys and expiries).
	ImportJournal func(tx Tx, rec JournalRecord) error
}

// Open opens the store: in memory, or Dir's database (converting a
// journal-format directory at its first start), holding Dir's lock until
// Close.
func Open(o Options) (Store, error) {
	if o.Dir == "" {
		return NewMem(o.Now), nil
	}
	// The directory lock covers the journal of an older format too, which
	// bbolt's lock on its own file does not.
	unlock, err := lockDataDir(o.Dir)
	if err != nil {
		return nil, err
	}
	b, err := openBolt(o)
	if err != nil {
		unlock()
		return nil, err
	}
	if err := convertJournal(o.Dir, b, o.Log, o.ImportJournal); err != nil {
		b.Close()
		unlock()
		return nil, err
	}
	b.unlock = unlock
	return b, nil
}

// copyValue returns a copy of *v that shares nothing mutable with it.
func copyValue(v any) any {
	if x, ok := v.(Cloner); ok {
		return x.CloneValue()
	}
	rv := reflect.ValueOf(v)
	c := reflect.New(rv.Elem().Type())
	c.Elem().Set(rv.Elem())
	return c.Interface()
}

// assign copies the stored value src into the pointer dst.
func assign(dst, src any) error {
	dv, sv := reflect.ValueOf(dst), reflect.ValueOf(src)
	if dv.Kind() != reflect.Pointer || dv.Type() != sv.Type() {
		return errors.New("amtest: store record of another type")
	}
	if x, ok := src.(Cloner); ok {
		sv = reflect.ValueOf(x.CloneValue())
	}
	dv.Elem().Set(sv.Elem())
	return nil
}
