package thing

import (
	"context"

	"github.com/thingway/thingway/callback"
)

// Connector carries a thing's requests to AM. An *amclient.Client is a
// Connector that talks to AM directly over HTTP(S); a gateway connection
// (CoAP over DTLS) is another. Its methods mirror the gateway's resources.
type Connector interface {
	// AuthStep sends one step of an authentication exchange ({} to
	// start, then AM's last answer with its callbacks answered) and
	// returns AM's answer: more callbacks, or a TokenID.
	AuthStep(ctx context.Context, step callback.Step) (callback.Step, error)
	// AMInfo returns the URLs and API versions that signed requests name.
	AMInfo(ctx context.Context) (callback.AMInfo, error)
	// Send makes one things-endpoint or session request and returns AM's
	// answer body. Errors that carry AM's status implement
	// HTTPStatus() int (and ResponseBody() []byte where there is a body).
	Send(ctx context.Context, req callback.Request) ([]byte, error)
}
