package gateway

import (
	"context"

	"github.com/thingway/thingway/internal/introspect"
)

// newIntrospector is the local introspection of the gateway: AM's
// client-side access tokens checked against the realm's issuer and JWK
// set when AM cannot answer, as iot-edge does (internal/introspect says
// what makes a token active).
func (s *Server) newIntrospector() *introspect.Checker {
	return &introspect.Checker{
		Fetch: func(ctx context.Context) (introspect.Keys, error) {
			iss, set, err := s.AM.TokenKeys(ctx)
			return introspect.Keys{Issuer: iss, Set: set}, err
		},
		Time: s.now,
	}
}

// introspectLocally checks token locally: an RFC 7662 answer, or
// introspect.ErrCannotCheck when the AM failure must stand.
func (s *Server) introspectLocally(ctx context.Context, token string) ([]byte, error) {
	r, err := s.jwks.Check(ctx, token)
	if err != nil {
		return nil, err
	}
	return r.JSON(), nil
}
