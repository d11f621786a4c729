package reliability_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/thing"
)

// A flow is what one of the example programs does through a gateway, with
// a fresh thing: it connects through conn and runs to the end or fails.
type flow struct {
	name string
	// realm is the local AM's configuration the flow needs (nil: the
	// default, whose thing-tree authenticates known things and registers
	// unknown ones with a CA-signed certificate).
	realm func(r *amtest.Realm)
	run   func(ctx context.Context, s *stack, conn thing.Connector, n int) error
}

// registration sets the thing tree's registration method.
func registration(method string) func(r *amtest.Realm) {
	return func(r *amtest.Realm) {
		for id, tn := range r.Trees["thing-tree"].Nodes {
			if tn.NodeType == amtest.NodeTypeIoTRegistration {
				r.Nodes[id].Registration.JWTRegistrationMethod = method
			}
		}
	}
}

var thingN atomic.Int64

// uniqueName is a thing name unique in the test binary.
func uniqueName(prefix string) string { return fmt.Sprintf("%s-%d", prefix, thingN.Add(1)) }

// flows are the example programs' flows that run through a gateway.
var flows = []flow{
	{name: "manual-registration", run: func(ctx context.Context, s *stack, conn thing.Connector, _ int) error {
		id, key := uniqueName("manual"), newKey(s.t)
		s.admin.Identity(id, "device", key, nil)
		th, err := thing.New(ctx, thing.Config{Connector: conn, ID: id, Key: key, Logger: debugLog("thing")})
		if err != nil {
			return err
		}
		if _, err := th.AccessToken(ctx, "publish"); err != nil {
			return err
		}
		return th.Logout(ctx)
	}},
	{name: "pop-cert", run: func(ctx context.Context, s *stack, conn thing.Connector, _ int) error {
		id, key := uniqueName("pop-cert"), newKey(s.t)
		return register(ctx, conn, id, key, &thing.Registration{Certificates: s.ca.Issue(key, id)})
	}},
	{name: "pop", realm: registration(amtest.RegPoPWithoutTrust), run: func(ctx context.Context, s *stack, conn thing.Connector, _ int) error {
		id, key := uniqueName("pop"), newKey(s.t)
		return register(ctx, conn, id, key, &thing.Registration{})
	}},
	{name: "pop-sw-stmt", realm: registration(amtest.RegPoPWithSoftwareStatement), run: func(ctx context.Context, s *stack, conn thing.Connector, _ int) error {
		id, key := uniqueName("pop-sw-stmt"), newKey(s.t)
		return register(ctx, conn, id, key, &thing.Registration{SoftwareStatement: s.pub.Statement(key)})
	}},
	{name: "refresh", run: func(ctx context.Context, s *stack, conn thing.Connector, _ int) error {
		th, at, err := s.tokenThing(ctx, conn)
		if err != nil {
			return err
		}
		if at.RefreshToken == "" {
			return errors.New("no refresh token")
		}
		if _, err := th.RefreshAccessToken(ctx, at.RefreshToken); err != nil {
			return err
		}
		return th.Logout(ctx)
	}},
	{name: "introspection", run: func(ctx context.Context, s *stack, conn thing.Connector, _ int) error {
		th, at, err := s.tokenThing(ctx, conn)
		if err != nil {
			return err
		}
		in, err := th.IntrospectAccessToken(ctx, at.AccessToken)
		if err != nil {
			return err
		}
		if !in.Active || in.Local {
			return fmt.Errorf("introspection: active %v, local %v", in.Active, in.Local)
		}
		if _, err := th.Attributes(ctx); err != nil {
			return err
		}
		return th.Logout(ctx)
	}},
	{name: "device-grant", run: func(ctx context.Context, s *stack, conn thing.Connector, _ int) error {
		th, err := s.manualThing(ctx, conn)
		if err != nil {
			return err
		}
		da, err := th.UserCode(ctx, "publish")
		if err != nil {
			return err
		}
		if err := s.consent(da.VerificationURI, da.UserCode, "bjensen", "Ch4ng31t"); err != nil {
			return err
		}
		if _, err := th.UserToken(ctx, da); err != nil {
			return err
		}
		return th.Logout(ctx)
	}},
}

// register registers a thing and asks for an access token, as the
// dynamic-registration examples do.
func register(ctx context.Context, conn thing.Connector, id string, key *ecdsa.PrivateKey, reg *thing.Registration) error {
	reg.ThingType = "device"
	th, err := thing.New(ctx, thing.Config{Connector: conn, ID: id, Key: key, Registration: reg, Logger: debugLog("thing")})
	if err != nil {
		return err
	}
	if _, err := th.AccessToken(ctx, "publish"); err != nil {
		return err
	}
	return th.Logout(ctx)
}

// manualThing creates an identity and authenticates it.
func (s *stack) manualThing(ctx context.Context, conn thing.Connector) (*thing.Thing, error) {
	id, key := uniqueName("thing"), newKey(s.t)
	s.admin.Identity(id, "device", key, nil)
	return thing.New(ctx, thing.Config{Connector: conn, ID: id, Key: key, Logger: debugLog("thing")})
}

// tokenThing is a manualThing with an access token.
func (s *stack) tokenThing(ctx context.Context, conn thing.Connector) (*thing.Thing, *thing.AccessToken, error) {
	th, err := s.manualThing(ctx, conn)
	if err != nil {
		return nil, nil, err
	}
	at, err := th.AccessToken(ctx, "publish")
	return th, at, err
}

// flowsByRealm groups the flows that share an AM configuration.
func flowsByRealm() [][]flow {
	var groups [][]flow
	var shared []flow
	for _, f := range flows {
		if f.realm == nil {
			shared = append(shared, f)
		} else {
			groups = append(groups, []flow{f})
		}
	}
	return append([][]flow{shared}, groups...)
}
