// Package store is the local AM's storage: records of a kind (a bucket),
// a key and a JSON value, with an optional expiry, read in snapshots and
// written in transactions that are committed before they are
// acknowledged. Without a data directory it is [Mem], typed copies of the
// values in maps; with one, [Bolt], a bbolt database (state.db) written by
// one committer goroutine with group commit, an expiry
// index swept as it commits, a cache of decoded values for the kinds that
// ask for one, and a log line (not a crash) when the disk refuses a write.
// [Open] also takes the data directory's lock and converts a directory of
// the older journal format (state.jsonl) at its first start.
//
// It owns how records are kept, not what they mean: the kinds, their Go
// types, their expiries and how a journal record becomes one are the
// caller's ([Options]). It must not import amclient/amtest or any other
// package of the module, nor net/http; its only third-party module is
// go.etcd.io/bbolt.
package store
