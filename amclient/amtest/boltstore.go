package amtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// dbFile is the database in a data directory.
const dbFile = "state.db"

// Buckets of the database: one per record kind, plus the expiry index
// and the store's own metadata.
var (
	storeKinds   = []string{kindIdentity, kindIdentityOrder, kindSession, kindNonce, kindGrant, kindToken, kindDevice, kindUserCode, kindAssertion, kindKeys, kindConfig}
	expiryBucket = []byte("expiry")
	metaBucket   = []byte("meta")
)

const (
	// maxBatch bounds how many writers one transaction commits for.
	maxBatch = 256
	// defaultCommitDelay is how long a commit waits for writers being
	// served to join it: about the CPU time of a signed request, so that
	// concurrent things share a commit (two fdatasyncs, 300-450 µs on the
	// development machine) instead of taking turns.
	defaultCommitDelay = 150 * time.Microsecond
	// sweepPerCommit bounds how many expired records one transaction
	// deletes, so that expiry never makes a request wait long.
	sweepPerCommit = 512
)

// boltStore keeps the state in a bbolt database (one file, state.db, in
// the data directory). Reads are bbolt read transactions, which take no
// lock that writers wait on. Writes go through one committer goroutine:
// it takes the next write, adds every write queued meanwhile (at most
// maxBatch), runs them in one transaction and commits it (two fdatasyncs),
// then answers each writer. A writer alone is committed at once; writers
// that arrive during a commit share the next one (group commit), so
// durability does not cost an fsync per request. When more requests that
// may write are being served than have joined, the committer waits up to
// commitDelay for them, so that a few concurrent things share commits
// rather than taking turns.
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
// when an idle server has some, so a steady load keeps the file at a
// steady size (bbolt reuses freed pages).
type boltStore struct {
	db   *bolt.DB
	now  func() time.Time
	log  *slog.Logger
	reqs chan *writeReq
	done chan struct{}
	wg   sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	hookMu sync.Mutex
	// failCommit, if set, is called before each commit; an error fails the
	// transaction as a failed write to the file would (see ForTest).
	failCommit func() error
	failing    bool // the last commit failed; logged once until one succeeds

	sessions decodeCache

	// writers counts requests being served that may write (Server.ServeHTTP
	// counts every request but GET and HEAD).
	writers     atomic.Int32
	commitDelay atomic.Int64 // time.Duration
}

// decodeCache keeps decoded sessions beside the bytes they were decoded
// from. Decoding a session costs a check that its confirmation key is a
// point on the curve, and every request with a session token reads its
// session. A session is
// served from the cache only while its stored bytes are the bytes it was
// decoded from, so the cache never answers with what the database no
// longer holds; it holds at most decodeCacheMax sessions.
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

type writeReq struct {
	f   func(tx storeTx) error
	err chan error
}

// openBoltStore opens (or creates) dir's database. It does not take the
// directory lock; the caller holds it.
func openBoltStore(dir string, now func() time.Time, log *slog.Logger) (*boltStore, error) {
	path := filepath.Join(dir, dbFile)
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
		for _, k := range storeKinds {
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
	b := &boltStore{db: db, now: now, log: log, reqs: make(chan *writeReq), done: make(chan struct{})}
	b.commitDelay.Store(int64(defaultCommitDelay))
	b.wg.Add(2)
	go b.commitLoop()
	go b.sweepLoop()
	return b, nil
}

func (b *boltStore) view(f func(tx storeTx) error) error {
	return b.db.View(func(tx *bolt.Tx) error { return f(&boltTx{tx: tx, cache: &b.sessions}) })
}

func (b *boltStore) update(f func(tx storeTx) error) error {
	r := &writeReq{f: f, err: make(chan error, 1)}
	select {
	case b.reqs <- r:
	case <-b.done:
		return errStoreClosed
	}
	return <-r.err
}

func (b *boltStore) commitLoop() {
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
		// Commit delay: when more writers are being served than are in the
		// batch, wait a little for them to join it (PostgreSQL's
		// commit_delay with commit_siblings). A writer alone never waits.
		if d := time.Duration(b.commitDelay.Load()); d > 0 {
			if n := int(b.writers.Load()); n > len(batch) {
				timer := time.NewTimer(d)
			wait:
				for len(batch) < min(n, maxBatch) {
					select {
					case r := <-b.reqs:
						batch = append(batch, r)
						n = int(b.writers.Load())
					case <-timer.C:
						break wait
					}
				}
				timer.Stop()
			}
		}
		b.commit(batch)
	}
}

// errSolo aborts a batch in which a write function failed after writing:
// its writes cannot be taken out of the transaction, so each function of
// the batch runs again in a transaction of its own.
var errSolo = errors.New("amtest: run the batch one by one")

func (b *boltStore) commit(batch []*writeReq) {
	results := make([]error, len(batch))
	err := b.db.Update(func(tx *bolt.Tx) error {
		for i, r := range batch {
			w := &boltTx{tx: tx, writable: true, cache: &b.sessions}
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
				ferr = r.f(&boltTx{tx: tx, writable: true, cache: &b.sessions})
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
func (b *boltStore) beforeCommit(tx *bolt.Tx) error {
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

// writeFailed logs the first of a run of failed commits and returns the
// error for the request: the transaction was rolled back, nothing of it
// is applied.
func (b *boltStore) writeFailed(err error) error {
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

func (b *boltStore) writeSucceeded() {
	b.hookMu.Lock()
	was := b.failing
	b.failing = false
	b.hookMu.Unlock()
	if was {
		b.log.LogAttrs(context.Background(), slog.LevelInfo, "data directory writes succeed again")
	}
}

// sweepLoop commits a sweep once a minute when expired records wait for
// one (a server without writes still shrinks to what is live).
func (b *boltStore) sweepLoop() {
	defer b.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
			if b.expiredWaiting() {
				b.update(func(storeTx) error { return nil })
			}
		}
	}
}

// expiredWaiting reports whether a record has expired and not been swept.
func (b *boltStore) expiredWaiting() bool {
	var waiting bool
	b.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(expiryBucket).Cursor().First()
		waiting = len(k) >= 8 && int64(binary.BigEndian.Uint64(k)) <= b.now().UnixNano()
		return nil
	})
	return waiting
}

func (b *boltStore) close() error {
	b.closeOnce.Do(func() {
		close(b.done)
		b.wg.Wait()
		b.closeErr = b.db.Close()
	})
	return b.closeErr
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

// boltTx is a storeTx over a bbolt transaction.
type boltTx struct {
	tx       *bolt.Tx
	writable bool
	dirty    bool         // a write was made
	cache    *decodeCache // decoded sessions, or nil
}

func (t *boltTx) bucket(kind string) (*bolt.Bucket, error) {
	bk := t.tx.Bucket([]byte(kind))
	if bk == nil {
		return nil, fmt.Errorf("amtest: no bucket for kind %q", kind)
	}
	return bk, nil
}

func (t *boltTx) get(kind, key string, v any) (bool, error) {
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
	cached := kind == kindSession && t.cache != nil
	if cached && t.cache.get(key, raw, v) {
		return true, nil
	}
	if err := json.Unmarshal(raw[8:], v); err != nil {
		return false, fmt.Errorf("record %s %q: %w", kind, key, err)
	}
	if cached {
		t.cache.put(key, raw, v)
	}
	return true, nil
}

func (t *boltTx) put(kind, key string, v any, expires time.Time) error {
	if e, ok := v.(*encoded); ok {
		return t.putRaw(kind, key, e.raw, expires)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return t.putRaw(kind, key, b, expires)
}

func (t *boltTx) putRaw(kind, key string, b []byte, expires time.Time) error {
	if !t.writable {
		return errors.New("amtest: write in a read transaction")
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

func (t *boltTx) has(kind, key string) (bool, error) {
	bk, err := t.bucket(kind)
	if err != nil {
		return false, err
	}
	return bk.Get([]byte(key)) != nil, nil
}

func (t *boltTx) del(kind, key string) error {
	if !t.writable {
		return errors.New("amtest: write in a read transaction")
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

func (t *boltTx) scan(kind, prefix, after string, f func(key string, decode func(v any) error) (bool, error)) error {
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
	// where f deletes (purgeRealm does), which copying the key allows.
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

func (t *boltTx) count(kind string) (int, error) {
	bk, err := t.bucket(kind)
	if err != nil {
		return 0, err
	}
	return bk.Stats().KeyN, nil
}
