package amtest_test

import (
	"fmt"
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
	t := b
	_ = srv
	admin := c.adminLogin()
	th := newThing(t, "bench-thing")
	c.register(admin, th, "/realms/root")
	tok, r := c.authenticatePoP(th, "auth-tree", "/", "/")
	if tok == "" {
		b.Fatalf("auth: %d %s", r.status, r.body)
	}
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
// from 4 things at once, each on its own restricted session, in memory and
// with a data directory (every nonce and token committed before the
// answer, commits grouped).
func BenchmarkAccessTokenParallel(b *testing.B) {
	for _, data := range []bool{false, true} {
		b.Run(map[bool]string{false: "memory", true: "data"}[data], func(b *testing.B) {
			srv, c := startServer(b, func(s *amtest.Server) {
				if data {
					s.DataDir = b.TempDir()
				}
			})
			admin := c.adminLogin()
			const workers = 4
			type worker struct {
				th  *thing
				tok string
			}
			ws := make(chan worker, workers)
			for i := range workers {
				th := newThing(b, fmt.Sprintf("bench-thing-%d", i))
				c.register(admin, th, "/realms/root")
				tok, r := c.authenticatePoP(th, "auth-tree", "/", "/")
				if tok == "" {
					b.Fatalf("auth: %d %s", r.status, r.body)
				}
				ws <- worker{th, tok}
			}
			u := srv.URL + "/json/things/*?_action=get_access_token&realm=/"
			b.SetParallelism(2) // 2 × GOMAXPROCS goroutines: 4 on this 2-core machine
			b.ResetTimer()
			var running atomic.Int32
			b.RunParallel(func(pb *testing.PB) {
				if running.Add(1) > workers {
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
		})
	}
}
