package amtest_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/thingway/thingway/amclient/amtest"
)

// BenchmarkPoPAuthentication measures complete PoP authentications over
// real HTTP on loopback: two round trips each (challenge, signed answer),
// ending in a restricted session.
func BenchmarkPoPAuthentication(b *testing.B) {
	srv, c := startServer(b)
	t := b
	_ = srv
	admin := c.adminLogin()
	th := newThing(t, "bench-thing")
	if r := c.register(admin, th, "/realms/root"); r.status != 201 {
		b.Fatalf("register: %d %s", r.status, r.body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if tok, r := c.authenticatePoP(th, "auth-tree", "/", "/"); tok == "" {
			b.Fatalf("auth: %d %s", r.status, r.body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "auths/s")
}

// BenchmarkAccessToken measures signed get_access_token requests on one
// restricted session (client-side ES256 access tokens with refresh tokens).
func BenchmarkAccessToken(b *testing.B) {
	srv, c := startServer(b)
	th, tok := benchSession(b, c, c.adminLogin(), "bench-thing")
	u := srv.URL + "/json/things/*?_action=get_access_token&realm=/"
	var nonce int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := c.signedRequest(th, "POST", u, thingsAPI, tok, nonce, map[string]any{"scope": []string{"publish"}})
		if r.status != 200 {
			b.Fatalf("token: %d %s", r.status, r.body)
		}
		nonce++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkAccessTokenParallel measures signed get_access_token requests
// from 4 and from 16 things at once, each on its own restricted session, in
// memory and with a data directory (every nonce committed before the
// answer, commits grouped). A thing's
// signed requests are serial, so the number of things is the number of
// requests in flight.
func BenchmarkAccessTokenParallel(b *testing.B) {
	for _, workers := range []int{4, 16} {
		for _, store := range []string{"memory", "data"} {
			name := fmt.Sprintf("things=%d/%s", workers, store)
			b.Run(name, func(b *testing.B) { benchParallelTokens(b, workers, store) })
		}
	}
}

// benchParallelTokens runs the benchmark on a store: "memory" or "data"
// (a data directory).
func benchParallelTokens(b *testing.B, workers int, store string) {
	srv, c := startServer(b, func(s *amtest.Server) {
		if store != "memory" {
			s.DataDir = b.TempDir()
		}
	})
	admin := c.adminLogin()
	type worker struct {
		th  *thing
		tok string
	}
	ws := make(chan worker, workers)
	for i := range workers {
		th, tok := benchSession(b, c, admin, fmt.Sprintf("bench-thing-%d", i))
		ws <- worker{th, tok}
	}
	u := srv.URL + "/json/things/*?_action=get_access_token&realm=/"
	procs := runtime.GOMAXPROCS(0)
	if workers%procs != 0 {
		b.Skipf("%d things do not divide among %d procs", workers, procs)
	}
	b.SetParallelism(workers / procs) // one goroutine per thing
	b.ResetTimer()
	var running atomic.Int32
	b.RunParallel(func(pb *testing.PB) {
		if running.Add(1) > int32(workers) {
			b.Error("more goroutines than things")
			return
		}
		w := <-ws
		var nonce int64
		for pb.Next() {
			r := c.signedRequest(w.th, "POST", u, thingsAPI, w.tok, nonce, map[string]any{"scope": []string{"publish"}})
			if r.status != 200 {
				b.Errorf("token: %d %s", r.status, r.body)
				return
			}
			nonce++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// benchSession registers a thing and opens its restricted session.
func benchSession(b *testing.B, c *client, admin, id string) (*thing, string) {
	b.Helper()
	th := newThing(b, id)
	if r := c.register(admin, th, "/realms/root"); r.status != 201 {
		b.Fatalf("register %s: %d %s", id, r.status, r.body)
	}
	tok, r := c.authenticatePoP(th, "auth-tree", "/", "/")
	if tok == "" {
		b.Fatalf("auth %s: %d %s", id, r.status, r.body)
	}
	return th, tok
}
