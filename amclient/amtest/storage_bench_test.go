package amtest_test

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest"
)

// The storage benchmarks of issue #12: what a data directory costs at
// start, over a long run, and beside identity queries. Commands and
// figures are in docs/benchmarks.md.

// BenchmarkStartup measures a start of the local AM (Init, then Close) on
// a data directory holding 100,000 identities and the freed pages of a
// million get_access_token requests (three records each, expired and
// deleted). Filling the directory takes a while and is not timed.
func BenchmarkStartup(b *testing.B) {
	dir := b.TempDir()
	s := &amtest.Server{DataDir: dir}
	if err := s.Init(); err != nil {
		b.Fatal(err)
	}
	b.Logf("filling %s: 100000 identities, 1000000 requests of history", dir)
	if err := amtest.BulkThings(s, 100_000); err != nil {
		b.Fatal(err)
	}
	if err := amtest.BulkHistory(s, 1_000_000); err != nil {
		b.Fatal(err)
	}
	size, _ := amtest.DataFileSize(s)
	used, free, _ := amtest.DataFilePages(s)
	s.Close()
	b.Logf("state.db: %.1f MB, %d pages used, %d free", float64(size)/1e6, used, free)
	b.ResetTimer()
	for b.Loop() {
		s := &amtest.Server{DataDir: dir}
		if err := s.Init(); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkDataFileGrowth runs b.N signed get_access_token requests (one
// thing, serial) against a data directory while the server's clock moves
// 10 ms a request, with access tokens living 60 s and refresh tokens
// 120 s. With client-side tokens (the guide's setting) a request writes
// only its nonce; with server-side tokens it stores a grant and two
// tokens, and after the first 12,000 requests as many records expire as
// are made. It reports the database's size and pages in use at the
// half-way mark and at the end; at steady state the second half adds
// nothing. Run it with -benchtime 100000x.
func BenchmarkDataFileGrowth(b *testing.B) {
	for _, clientSide := range []bool{true, false} {
		b.Run(map[bool]string{true: "client-side", false: "server-side"}[clientSide], func(b *testing.B) {
			benchGrowth(b, clientSide)
		})
	}
}

func benchGrowth(b *testing.B, clientSide bool) {
	var mu sync.Mutex
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	cfg := amtest.DefaultConfig()
	cfg.Realms["/"].OAuth2.Core.AccessTokenLifetime = 60
	cfg.Realms["/"].OAuth2.Core.RefreshTokenLifetime = 120
	cfg.Realms["/"].OAuth2.Core.StatelessTokensEnabled = clientSide
	srv, c := startServer(b, func(s *amtest.Server) {
		s.DataDir = b.TempDir()
		s.Config = cfg
		s.Time = now
	})
	c.now = now
	th, tok := benchSession(b, c, c.adminLogin(), "growth-thing")
	u := srv.URL + "/json/things/*?_action=get_access_token&realm=/"
	var halfSize int64
	var halfUsed int
	b.ResetTimer()
	for i := range b.N {
		if i == b.N/2 {
			halfSize, _ = amtest.DataFileSize(srv)
			halfUsed, _, _ = amtest.DataFilePages(srv)
		}
		r := c.signedRequest(th, "POST", u, thingsAPI, tok, int64(i), map[string]any{"scope": []string{"publish"}})
		if r.status != 200 {
			b.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
		mu.Lock()
		clock = clock.Add(10 * time.Millisecond)
		mu.Unlock()
	}
	b.StopTimer()
	size, _ := amtest.DataFileSize(srv)
	used, free, _ := amtest.DataFilePages(srv)
	b.ReportMetric(float64(halfSize)/1e6, "MB-at-half")
	b.ReportMetric(float64(size)/1e6, "MB-at-end")
	b.ReportMetric(float64(halfUsed), "pages-at-half")
	b.ReportMetric(float64(used), "pages-at-end")
	b.Logf("%d requests: state.db %d bytes at half, %d at end; pages in use %d at half, %d at end (%d free)", b.N, halfSize, size, halfUsed, used, free)
}

// BenchmarkIdentityPage measures PoP authentications by 2 things at once
// on a data directory holding 100,000 identities: alone, and while an
// administrator pages through the identities 100 at a time, 20 pages a
// second at random offsets. It reports authentications per second and
// the median time to answer one page. A query that held a lock
// authentications wait on, or scanned every identity, would show in the
// second figure against the first.
func BenchmarkIdentityPage(b *testing.B) {
	for _, paging := range []bool{false, true} {
		b.Run(map[bool]string{false: "alone", true: "beside-pages"}[paging], func(b *testing.B) {
			srv, c := startServer(b, func(s *amtest.Server) { s.DataDir = b.TempDir() })
			if err := amtest.BulkThings(srv, 100_000); err != nil {
				b.Fatal(err)
			}
			admin := c.adminLogin()
			const workers = 2
			things := make(chan *thing, workers)
			for i := range workers {
				th := newThing(b, fmt.Sprintf("page-bench-%d", i))
				c.register(admin, th, "/realms/root")
				things <- th
			}
			stop := make(chan struct{})
			var pages []time.Duration
			var pageErr atomic.Value
			var wg sync.WaitGroup
			if paging {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tick := time.NewTicker(50 * time.Millisecond)
					defer tick.Stop()
					for n := 0; ; n++ {
						select {
						case <-stop:
							return
						case <-tick.C:
						}
						u := fmt.Sprintf("%s/json/realms/root/users?_queryFilter=true&_fields=username&_pageSize=100&_pagedResultsOffset=%d", srv.URL, (n*7919)%99_900)
						t0 := time.Now()
						r := c.do("GET", u, nil, "iPlanetDirectoryPro: "+admin, "Accept-API-Version: resource=4.0")
						pages = append(pages, time.Since(t0))
						if r.status != 200 {
							pageErr.Store(fmt.Sprintf("page: %d %s", r.status, r.body))
							return
						}
						if n := len(r.json(b)["result"].([]any)); n != 100 {
							pageErr.Store(fmt.Sprintf("page of %d identities, want 100", n))
							return
						}
					}
				}()
			}
			b.SetParallelism(1)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				th := <-things
				for pb.Next() {
					if tok, r := c.authenticatePoP(th, "auth-tree", "/", "/"); tok == "" {
						b.Errorf("auth: %d %s", r.status, r.body)
						return
					}
				}
			})
			b.StopTimer()
			close(stop)
			wg.Wait()
			if e := pageErr.Load(); e != nil {
				b.Fatal(e)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "auths/s")
			if paging && len(pages) > 0 {
				sort.Slice(pages, func(i, j int) bool { return pages[i] < pages[j] })
				b.ReportMetric(float64(pages[len(pages)/2].Microseconds())/1000, "ms/page")
				b.ReportMetric(float64(len(pages)), "pages")
			}
		})
	}
}
