package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DBFile is the database in a data directory.
const DBFile = "state.db"

// Buckets of the database beside one per record kind: the expiry index
// and the store's own metadata.
var (
	expiryBucket = []byte("expiry")
	metaBucket   = []byte("meta")
)

const (
	// maxBatch bounds how many writers one transaction commits for.
	maxBatch = 256
	// sweepPerCommit bounds how many expired records one transaction
	// deletes, so that expiry never makes a request wait long.
	sweepPerCommit = 512
)

// Bolt keeps the records in a bbolt database (one file, [DBFile], in the
// data directory). Reads are bbolt read transactions, which take no lock
// that writers wait on. Writes go through one committer goroutine: it
// takes the next write, adds every write queued meanwhile (at most
// maxBatch), runs them in one transaction and commits it (two fdatasyncs),
// then answers each writer. A writer alone is committed at once; writers
// that arrive during a commit share the next one (group commit), so
// durability does not cost an fsync per request. (A commit delay, the
// committer waiting up to 150 µs for writers being served to join, was
// tried and measured no gain with 4 or 16 things at once; see
// docs/benchmarks.md.)
//
// bbolt's own DB.Batch was not used: it waits up to MaxBatchDelay for a
// batch to fill even when no other writer is coming, which the serial
// signed requests of one thing (each needs the previous nonce on disk)
// would pay on every request.
//
// A record is stored as its expiry (8 bytes, big-endian Unix nanoseconds,
// zero for none) and its JSON. The expiry bucket indexes records that
// expire by (expiry, kind, key); every commit deletes up to sweepPerCommit
// records whose expiry has passed, and a minute's tick commits a sweep
// when an idle store has some, so a steady load keeps the file at a
// steady size (bbolt reuses freed pages).
type Bolt struct {
	db     *bolt.DB
	now    func() time.Time
	log    *slog.Logger
	reqs   chan *writeReq
	done   chan struct{}
	wg     sync.WaitGroup
	unlock func() // releases the data directory, or nil

	closeOnce sync.Once
	closeErr  error

	hookMu sync.Mutex
	// failCommit, if set, is called before each commit; an error fails the
	// transaction as a failed write to the file would.
	failCommit func() error
	failing    bool // the last commit failed; logged once until one succeeds

	// caches holds the decoded values of Options.Cached kinds; it is not
	// changed after open.
	caches map[string]*decodeCache
}

type writeReq struct {
	f   func(tx Tx) error
	err chan error
}

// openBolt opens (or creates) o.Dir's database. It does not take the
// directory lock; the caller holds it.
func openBolt(o Options) (*Bolt, error) {
	dir := o.Dir
	path := filepath.Join(dir, DBFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		// bbolt locks the file itself; another process holding it is an
		// error, not a wait.
		Timeout:      time.Second,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("data directory %s is in use by another process", dir)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, k := range o.Kinds {
			if _, err := tx.CreateBucketIfNotExists([]byte(k)); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucketIfNotExists(expiryBucket); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(metaBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	b := &Bolt{db: db, now: o.Now, log: o.Log, reqs: make(chan *writeReq), done: make(chan struct{})}
	if len(o.Cached) > 0 {
		b.caches = map[string]*decodeCache{}
		for _, k := range o.Cached {
			b.caches[k] = &decodeCache{}
		}
	}
	b.wg.Add(2)
	go b.commitLoop()
	go b.sweepLoop()
	return b, nil
}

// View runs f in a bbolt read transaction.
func (b *Bolt) View(f func(tx Tx) error) error {
	return b.db.View(func(tx *bolt.Tx) error { return f(&boltTx{tx: tx, caches: b.caches}) })
}

// Update hands f to the committer and waits for its commit.
func (b *Bolt) Update(f func(tx Tx) error) error {
	r := &writeReq{f: f, err: make(chan error, 1)}
	select {
	case b.reqs <- r:
	case <-b.done:
		return ErrClosed
	}
	return <-r.err
}

func (b *Bolt) commitLoop() {
	defer b.wg.Done()
	for {
		var batch []*writeReq
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
		case <-b.done:
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		b.commit(batch)
	}
}

// errSolo aborts a batch in which a write function failed after writing:
// its writes cannot be taken out of the transaction, so each function of
// the batch runs again in a transaction of its own.
var errSolo = errors.New("amtest: run the batch one by one")

func (b *Bolt) commit(batch []*writeReq) {
	results := make([]error, len(batch))
	err := b.db.Update(func(tx *bolt.Tx) error {
		for i, r := range batch {
			w := &boltTx{tx: tx, writable: true, caches: b.caches}
			if err := r.f(w); err != nil {
				if w.dirty {
					return errSolo
				}
				results[i] = err
			}
		}
		return b.beforeCommit(tx)
	})
	if errors.Is(err, errSolo) {
		for _, r := range batch {
			var ferr error
			err := b.db.Update(func(tx *bolt.Tx) error {
				ferr = r.f(&boltTx{tx: tx, writable: true, caches: b.caches})
				if ferr != nil {
					return ferr
				}
				return b.beforeCommit(tx)
			})
			if ferr == nil && err != nil {
				err = b.writeFailed(err)
			} else if err == nil {
				b.writeSucceeded()
			}
			r.err <- err
		}
		return
	}
	if err != nil {
		err = b.writeFailed(err)
	} else {
		b.writeSucceeded()
	}
	for i, r := range batch {
		if err != nil {
			r.err <- err
		} else {
			r.err <- results[i]
		}
	}
}

// beforeCommit sweeps expired records into the transaction and runs the
// test hook.
func (b *Bolt) beforeCommit(tx *bolt.Tx) error {
	if _, err := sweepExpired(tx, b.now(), sweepPerCommit); err != nil {
		return err
	}
	b.hookMu.Lock()
	hook := b.failCommit
	b.hookMu.Unlock()
	if hook != nil {
		return hook()
	}
	return nil
}

// FailCommitsForTest makes every commit call f first and fail as a
// failed write to the file would when f returns an error (nil f: commits
// as usual). It is for tests of what a full disk does.
func (b *Bolt) FailCommitsForTest(f func() error) {
	b.hookMu.Lock()
	b.failCommit = f
	b.hookMu.Unlock()
}

// writeFailed logs the first of a run of failed commits and returns the
// error for the request: the transaction was rolled back, nothing of it
// is applied.
func (b *Bolt) writeFailed(err error) error {
	b.hookMu.Lock()
	first := !b.failing
	b.failing = true
	b.hookMu.Unlock()
	if first {
		b.log.LogAttrs(context.Background(), slog.LevelError, "data directory write failed; requests that write fail with 500 until writes succeed again",
			slog.String("error", err.Error()))
	}
	return fmt.Errorf("store: %w", err)
}

func (b *Bolt) writeSucceeded() {
	b.hookMu.Lock()
	was := b.failing
	b.failing = false
	b.hookMu.Unlock()
	if was {
		b.log.LogAttrs(context.Background(), slog.LevelInfo, "data directory writes succeed again")
	}
}

// sweepLoop commits a sweep once a minute when expired records wait for
// one (a store without writes still shrinks to what is live).
func (b *Bolt) sweepLoop() {
	defer b.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
			if b.expiredWaiting() {
				b.Update(func(Tx) error { return nil })
			}
		}
	}
}

// expiredWaiting reports whether a record has expired and not been swept.
func (b *Bolt) expiredWaiting() bool {
	var waiting bool
	b.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(expiryBucket).Cursor().First()
		waiting = len(k) >= 8 && int64(binary.BigEndian.Uint64(k)) <= b.now().UnixNano()
		return nil
	})
	return waiting
}

// Close stops the committer, closes the database and releases the data
// directory.
func (b *Bolt) Close() error {
	b.closeOnce.Do(func() {
		close(b.done)
		b.wg.Wait()
		b.closeErr = b.db.Close()
		if b.unlock != nil {
			b.unlock()
		}
	})
	return b.closeErr
}

// UpdateDirect runs f in one bbolt transaction of its own, outside the
// committer and without a sweep: for filling a database in bulk (the
// storage benchmarks), many records to a transaction.
func (b *Bolt) UpdateDirect(f func(tx Tx) error) error {
	return b.db.Update(func(tx *bolt.Tx) error { return f(&boltTx{tx: tx, writable: true}) })
}

// Sweep deletes, in one transaction, up to max records whose expiry has
// passed, and returns how many it deleted.
func (b *Bolt) Sweep(max int) (int, error) {
	var n int
	err := b.db.Update(func(tx *bolt.Tx) error {
		var err error
		n, err = sweepExpired(tx, b.now(), max)
		return err
	})
	return n, err
}

// Pages returns the pages the database uses (its high-water mark) and how
// many of them are free for reuse.
func (b *Bolt) Pages() (used, free int, err error) {
	err = b.db.View(func(tx *bolt.Tx) error {
		used = int(tx.Size() / int64(b.db.Info().PageSize))
		return nil
	})
	st := b.db.Stats()
	return used, st.FreePageN + st.PendingPageN, err
}
