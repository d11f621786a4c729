package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/internal/proctest"
)

// crashThing is a thing with a restricted session that sends signed
// get_access_token requests with explicit nonces.
type crashThing struct {
	id    string
	key   *ecdsa.PrivateKey
	token string
	acked int64 // highest nonce answered 200, -1 for none
	sent  int64 // highest nonce sent
}

// send makes one signed get_access_token request with nonce and returns
// the status (0 when the server did not answer).
func (th *crashThing) send(base string, nonce int64) int {
	u := base + "/json/things/*?_action=get_access_token&realm=/"
	jws, err := callback.SignRequest(th.key, u, "protocol=2.0,resource=1.0", nonce,
		map[string]any{"csrf": th.token, "scope": []string{"publish"}})
	if err != nil {
		return 0
	}
	req, _ := http.NewRequest("POST", u, strings.NewReader(jws))
	req.Header.Set("Content-Type", "application/jose")
	req.Header.Set("Accept-API-Version", "protocol=2.0,resource=1.0")
	req.Header.Set("Cookie", "iPlanetDirectoryPro="+th.token)
	res, err := newHTTPClient().Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// putStatus creates an identity and returns the status (0 when the server
// did not answer).
func putStatus(base, admin, id string) int {
	req, _ := http.NewRequest("PUT", base+"/json/realms/root/users/"+id, strings.NewReader(`{"thingType":"device","thingConfig":"crash"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-API-Version", "resource=4.0, protocol=2.1")
	req.Header.Set("Cookie", "iPlanetDirectoryPro="+admin)
	res, err := newHTTPClient().Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// SIGKILL during parallel identity creation and signed requests, three
// times over: after every restart the server starts, every identity that
// was answered 201 is there, every nonce that was answered 200 is refused
// (and so is every nonce below it), and the sessions go on with the next
// nonce. What a crash may lose is only what was never acknowledged.
func TestCrashKeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the amlocal binary")
	}
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"--listen", "127.0.0.1:0", "--data", data}
	const creators, signers, rounds = 4, 4, 3

	p := startAmlocal(t, nil, args...)
	base := serving(t, p)
	admin := adminLogin(t, base)
	var things []*crashThing
	for i := range signers {
		th := &crashThing{id: fmt.Sprintf("crash-signer-%d", i), acked: -1, sent: -1}
		var err error
		if th.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
		kid, _ := callback.Thumbprint(th.key.Public())
		set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: th.key.Public(), KeyID: kid, Use: "sig"}}})
		body, _ := json.Marshal(map[string]string{"thingType": "device", "thingKeys": string(set)})
		r := do(t, "PUT", base+"/json/realms/root/users/"+th.id, string(body), "Content-Type: application/json",
			"Accept-API-Version: resource=4.0, protocol=2.1", "Cookie: iPlanetDirectoryPro="+admin)
		if r.status != http.StatusCreated {
			t.Fatalf("PUT %s: %d %s", th.id, r.status, r.body)
		}
		s, err := (&amclient.Client{URL: base, Realm: "/"}).Authenticate(context.Background(), "auth-tree",
			callback.AuthenticateHandler{Audience: "/", ThingID: th.id, Key: th.key})
		if err != nil {
			t.Fatalf("authenticate %s: %v", th.id, err)
		}
		th.token = s.Token
		things = append(things, th)
	}

	var ackedIDs []string
	var idsMu sync.Mutex
	for round := range rounds {
		var stop atomic.Bool
		var nIDs, nNonces atomic.Int64
		var wg sync.WaitGroup
		for w := range creators {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					id := fmt.Sprintf("crash-%d-%d-%d", round, w, i)
					if putStatus(base, admin, id) == http.StatusCreated {
						idsMu.Lock()
						ackedIDs = append(ackedIDs, id)
						idsMu.Unlock()
						nIDs.Add(1)
					}
				}
			}()
		}
		for _, th := range things {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					n := th.sent + 1
					th.sent = n
					if th.send(base, n) == http.StatusOK {
						th.acked = n
						nNonces.Add(1)
					}
				}
			}()
		}
		// Kill once every kind of write is under way.
		if !proctest.Eventually(proctest.Deadline, func() bool { return nIDs.Load() >= 40 && nNonces.Load() >= 40 }) {
			t.Fatalf("round %d: the workload did not get going (%d identities, %d nonces)", round, nIDs.Load(), nNonces.Load())
		}
		p.Kill()
		stop.Store(true)
		wg.Wait()

		p = startAmlocal(t, nil, args...)
		base = serving(t, p)
		admin = adminLogin(t, base)
		idsMu.Lock()
		ids := append([]string(nil), ackedIDs...)
		idsMu.Unlock()
		lost := 0
		for _, id := range ids {
			r := do(t, "GET", base+"/json/realms/root/users/"+id, "", "Accept-API-Version: resource=4.0, protocol=2.1", "Cookie: iPlanetDirectoryPro="+admin)
			if r.status != http.StatusOK {
				lost++
				t.Errorf("round %d: acknowledged identity %s: %d after the restart", round, id, r.status)
			}
		}
		for _, th := range things {
			if th.acked >= 0 {
				if st := th.send(base, th.acked); st != http.StatusUnauthorized {
					t.Errorf("round %d: %s's acknowledged nonce %d answered %d after the restart, want 401", round, th.id, th.acked, st)
				}
			}
			// A nonce in flight at the kill may or may not have been
			// committed; the next one after every sent is new.
			th.sent++
			if st := th.send(base, th.sent); st != http.StatusOK {
				t.Errorf("round %d: %s's session after the restart: nonce %d answered %d", round, th.id, th.sent, st)
			}
			th.acked = th.sent
		}
		t.Logf("round %d: %d acknowledged identities in all, %d lost; nonces checked for %d sessions", round, len(ids), lost, len(things))
	}
	p.Kill()
}
