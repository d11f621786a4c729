package amtest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/oauth2"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
)

// The server's state is records in a store (amclient/amtest/internal/store):
// a kind (identity, session, grant, token, device, usercode, assertion,
// keys, config), a key and a value. Without a data directory the store is
// in memory; with one, a database where every change is committed to disk
// before it is acknowledged. What the kinds are, their types and their
// expiries are this package's; how records are kept is the store's.

// storeTx is a transaction of the server's store.
type storeTx = store.Tx

// storeKinds are the record kinds, a database bucket each.
var storeKinds = []string{kindIdentity, kindIdentityOrder, kindSession, kindNonce, kindGrant, kindToken, kindDevice, kindUserCode, kindAssertion, kindKeys, kindConfig}

// dbFile is the database in a data directory.
const dbFile = store.DBFile

// openStore opens the store: in memory, or DataDir's database (converting
// a journal-format directory at its first start).
func (s *Server) openStore() error {
	db, err := store.Open(store.Options{
		Dir:   s.DataDir,
		Kinds: storeKinds,
		// Decoding a session costs a check that its confirmation key is a
		// point on the curve, and every request with a session token reads
		// its session; a thing's signed request also reads its identity
		// (a JSON decode of all its attributes: 17 µs of the 140 µs that
		// a data directory added to a signed get_access_token's CPU).
		Cached:        []string{kindSession, kindIdentity},
		Now:           s.now,
		Log:           s.log,
		ImportJournal: importRecord,
	})
	if err != nil {
		return err
	}
	s.db = db
	return nil
}

// closeStore closes the store and releases the data directory.
func (s *Server) closeStore() {
	if s.db != nil {
		s.db.Close()
	}
}

// importRecord writes one record of a journal-format data directory, with
// the expiry its kind has.
func importRecord(w storeTx, rec store.JournalRecord) error {
	var v any
	switch rec.Kind {
	case kindIdentity:
		v = &identity{}
	case kindSession:
		v = &session{}
	case kindGrant:
		v = &grant{}
	case kindToken:
		v = &token{}
	case kindDevice:
		v = &deviceCode{}
	case kindAssertion:
		v = &usedAssertion{}
	case kindKeys:
		v = &serverKeys{}
	case kindConfig:
		raw := rec.V
		return w.Put(kindConfig, configKey, &store.Encoded{V: &raw, Raw: rec.V}, time.Time{})
	default:
		return fmt.Errorf("unknown record kind %q", rec.Kind)
	}
	if err := json.Unmarshal(rec.V, v); err != nil {
		return err
	}
	key := rec.ID
	if rec.Kind == kindKeys {
		key = keysKey
	}
	if x, ok := v.(*identity); ok {
		k := rec.ID
		if err := w.Put(kindIdentityOrder, identities.OrderKey(x.Realm, x.ID), &k, time.Time{}); err != nil {
			return err
		}
	}
	if d, ok := v.(*deviceCode); ok {
		h := rec.ID
		if err := w.Put(kindUserCode, oauth2.CanonicalUserCode(d.UserCode), &h, expiryOf(kindDevice, d)); err != nil {
			return err
		}
	}
	return w.Put(rec.Kind, key, &store.Encoded{V: v, Raw: rec.V}, expiryOf(rec.Kind, v))
}

// countRecords returns the number of records of kind (for tests and
// benchmarks).
func (s *Server) countRecords(kind string) int {
	var n int
	s.db.View(func(tx storeTx) error {
		var err error
		n, err = tx.Count(kind)
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
