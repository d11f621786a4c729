package store

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// bag is a value with a map, which a plain copy would share.
type bag struct {
	Tags map[string]string `json:"tags"`
}

func (b *bag) CloneValue() any {
	c := &bag{Tags: map[string]string{}}
	for k, v := range b.Tags {
		c.Tags[k] = v
	}
	return c
}

func stores(t *testing.T, clk *clock) map[string]Store {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	out := map[string]Store{}
	for name, dir := range map[string]string{"memory": "", "data": t.TempDir()} {
		s, err := Open(Options{Dir: dir, Kinds: []string{"bag", "n"}, Cached: []string{"bag"}, Now: clk.now, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[name] = s
	}
	return out
}

// Both stores: a failed update applies nothing, scans see a transaction's
// own writes in key order, a read transaction refuses writes, a value read
// shares nothing with the stored one, a rewritten value is read as written
// (the decode cache never answers with old bytes), and expired records go
// at the next write after a minute.
func TestStores(t *testing.T) {
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	for name, s := range stores(t, clk) {
		t.Run(name, func(t *testing.T) {
			boom := errors.New("boom")
			if err := s.Update(func(tx Tx) error {
				if err := tx.Put("n", "a", ptr(1), time.Time{}); err != nil {
					return err
				}
				return boom
			}); err != boom {
				t.Fatalf("failed update = %v", err)
			}
			var keys []string
			if err := s.Update(func(tx Tx) error {
				if ok, _ := tx.Has("n", "a"); ok {
					t.Error("a failed update's write was applied")
				}
				for _, k := range []string{"c", "a", "b", "x"} {
					if err := tx.Put("n", k, ptr(len(k)), time.Time{}); err != nil {
						return err
					}
				}
				return tx.Scan("n", "", "a", func(k string, _ func(any) error) (bool, error) {
					keys = append(keys, k)
					return k != "c", nil
				})
			}); err != nil {
				t.Fatal(err)
			}
			if strings.Join(keys, ",") != "b,c" {
				t.Errorf("scan after a = %v, want b,c", keys)
			}
			if err := s.View(func(tx Tx) error { return tx.Put("n", "z", ptr(1), time.Time{}) }); err == nil {
				t.Error("a write in a read transaction was accepted")
			}
			put := func(v string, exp time.Time) {
				t.Helper()
				if err := s.Update(func(tx Tx) error { return tx.Put("bag", "k", &bag{Tags: map[string]string{"v": v}}, exp) }); err != nil {
					t.Fatal(err)
				}
			}
			get := func() (*bag, bool) {
				t.Helper()
				var b bag
				var ok bool
				if err := s.View(func(tx Tx) (err error) { ok, err = tx.Get("bag", "k", &b); return err }); err != nil {
					t.Fatal(err)
				}
				return &b, ok
			}
			put("one", time.Time{})
			b, _ := get()
			b.Tags["v"] = "changed by the reader"
			if b, _ := get(); b.Tags["v"] != "one" {
				t.Errorf("stored value = %q after a reader changed its copy", b.Tags["v"])
			}
			put("two", clk.now().Add(time.Hour))
			if b, ok := get(); !ok || b.Tags["v"] != "two" {
				t.Errorf("rewritten value = %v %v, want two", b.Tags, ok)
			}
			clk.add(2 * time.Hour)
			if err := s.Update(func(tx Tx) error { return tx.Put("n", "later", ptr(1), time.Time{}) }); err != nil {
				t.Fatal(err)
			}
			if _, ok := get(); ok {
				t.Error("an expired record survived a write after its expiry")
			}
			var n int
			s.View(func(tx Tx) (err error) { n, err = tx.Count("n"); return err })
			if n != 5 {
				t.Errorf("count = %d, want 5", n)
			}
		})
	}
}

func ptr(n int) *int { return &n }
