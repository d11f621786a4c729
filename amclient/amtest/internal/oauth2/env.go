package oauth2

import (
	"sync/atomic"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/store"
	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// Env is what the OAuth 2.0 rules need of the server for one request:
// amclient/amtest makes one per request.
type Env struct {
	// Realm is the request's realm path, Issuer the realm's OAuth 2.0
	// issuer URL.
	Realm, Issuer string
	// Config is the realm's configuration as the request sees it: the
	// OAuth2 Provider, the clients and the IoT Service.
	Config *config.Realm
	// Now is the request's time.
	Now time.Time
	// Keys are the server's keys of client-side tokens.
	Keys tokens.Keys
	// DB is the server's store: token lookups and revocations, device
	// codes. Its failures are returned as they are (a 500 answer), so the
	// server passes a store whose failures are ready for the log.
	DB store.Store
	// Get reads one record of DB; a failure to read is logged and reads
	// as absent.
	Get func(kind, key string, v any) bool
	// Update runs f in the request's write transaction, in which the
	// records of issued tokens are stored (with a signed request's nonce).
	// Its error is f's, or a store failure ready for the log.
	Update func(f func(tx store.Tx) error) error
	// Issued counts the tokens minted; nil counts nothing.
	Issued *atomic.Int64
	// Polls are the last polls of device codes.
	Polls *Polls
}

// thingClient is the OAuth 2.0 client of a thing: its
// thingOAuth2ClientName, else the IoT Service's client.
func (e *Env) thingClient(t *identities.Identity) string {
	if n := t.First("thingOAuth2ClientName"); n != "" {
		return n
	}
	return e.Config.IoT.OAuthClientName
}
