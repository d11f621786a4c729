package amtest

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// This file gives the storage benchmarks (storage_bench_test.go) ways to
// fill a data directory faster than the REST API can: records written
// straight into the database, many to a transaction.

// BulkThings stores n thing identities, thing-000000 onwards, in the
// top-level realm of a started server.
func BulkThings(s *Server, n int) error {
	now := s.now()
	for i := 0; i < n; {
		err := s.db.Update(func(tx storeTx) error {
			for end := min(i+5000, n); i < end; i++ {
				if err := identities.Put(tx, identities.New("/", fmt.Sprintf("thing-%06d", i), now)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// BulkHistory writes what n past get_access_token requests left in the
// database (a grant, an access token and a refresh token each, all
// expired) and lets the store's expiry delete it all, so the file holds
// the history's freed pages as a long-running server's would.
func BulkHistory(s *Server, n int) error {
	b, ok := s.db.(*store.Bolt)
	if !ok {
		return fmt.Errorf("BulkHistory needs a data directory")
	}
	past := s.now().Add(-time.Minute)
	for i := 0; i < n; {
		err := b.UpdateDirect(func(tx storeTx) error {
			for end := min(i+10000, n); i < end; i++ {
				g := &grant{ID: tokens.RandomID(20), Realm: "/", ClientID: "thing-client", Subject: "thing", Expires: past}
				if err := tx.Put(kindGrant, g.ID, g, past); err != nil {
					return err
				}
				for _, refresh := range []bool{false, true} {
					t := &token{Refresh: refresh, GrantID: g.ID, Scopes: []string{"publish"}, Issued: past, Expires: past}
					if err := tx.Put(kindToken, tokens.Hash(tokens.RandomID(20)), t, past); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		// What expired is deleted before the next batch, as the server's
		// own sweeps keep up with a steady load.
		for swept := 1; swept > 0; {
			var err error
			if swept, err = b.Sweep(100000); err != nil {
				return err
			}
		}
	}
	return nil
}

// DataFileSize returns the size of the server's database file.
func DataFileSize(s *Server) (int64, error) {
	fi, err := os.Stat(filepath.Join(s.DataDir, dbFile))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// DataFilePages returns the pages the database uses (its high-water mark)
// and how many of them are free for reuse.
func DataFilePages(s *Server) (used, free int, err error) {
	b, ok := s.db.(*store.Bolt)
	if !ok {
		return 0, 0, fmt.Errorf("no data directory")
	}
	return b.Pages()
}

// StoredTokens returns how many token and grant records the store holds.
func StoredTokens(s *Server) (tokens, grants int) {
	return s.countRecords(kindToken), s.countRecords(kindGrant)
}
