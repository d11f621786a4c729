package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/thingway/thingway/amclient/callback"
	"github.com/thingway/thingway/thing"
)

// renewalRetry is the pause after a failed renewal.
const renewalRetry = time.Minute

// login authenticates the gateway as a thing of type gateway.
func (s *Server) login(ctx context.Context) (*thing.Thing, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*s.timeout())
	defer cancel()
	cfg := thing.Config{
		Connector: s.AM,
		ID:        s.ID,
		Audience:  s.Audience,
		Key:       s.Key,
		KeyID:     s.KeyID,
		Handlers:  s.Handlers,
		Logger:    s.log,
		Time:      s.Time,
	}
	if len(s.Certificates) > 0 {
		cfg.Registration = &thing.Registration{ThingType: callback.ThingTypeGateway, Certificates: s.Certificates}
	}
	t, err := thing.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("gateway: authenticating as %q with tree %q: %w", s.ID, s.AM.Tree, err)
	}
	return t, nil
}

func (s *Server) current() *thing.Thing {
	s.selfMu.Lock()
	defer s.selfMu.Unlock()
	return s.self
}

func (s *Server) renewal() time.Duration {
	if s.SessionRenewal < 0 {
		return 0
	}
	return durOr(s.SessionRenewal, DefaultSessionRenewal)
}

// startRenewal starts the goroutine that authenticates the gateway again
// every SessionRenewal and logs the previous session out.
func (s *Server) startRenewal() {
	every := s.renewal()
	if every == 0 {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	s.selfMu.Lock()
	s.renewCancel, s.renewDone = cancel, done
	s.selfMu.Unlock()
	go func() {
		defer close(done)
		wait := every
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			t, err := s.login(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				wait = min(every, renewalRetry)
				s.log.LogAttrs(ctx, slog.LevelWarn, "cannot renew the gateway's AM session; things are not affected",
					slog.String("error", err.Error()), slog.Duration("retry_in", wait))
				continue
			}
			wait = every
			s.selfMu.Lock()
			old := s.self
			s.self = t
			s.selfMu.Unlock()
			s.log.LogAttrs(ctx, slog.LevelDebug, "gateway session renewed")
			if old != nil {
				lctx, lcancel := context.WithTimeout(ctx, s.timeout())
				if err := old.Logout(lctx); err != nil {
					s.log.LogAttrs(ctx, slog.LevelDebug, "cannot log the previous gateway session out", slog.String("error", err.Error()))
				}
				lcancel()
			}
		}
	}()
}

// stopRenewal stops the renewal goroutine and waits for it.
func (s *Server) stopRenewal() {
	s.selfMu.Lock()
	cancel, done := s.renewCancel, s.renewDone
	s.renewCancel, s.renewDone = nil, nil
	s.selfMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// logout ends the gateway's AM session (iot-edge leaked one per start).
func (s *Server) logout(ctx context.Context) {
	s.selfMu.Lock()
	t := s.self
	s.self = nil
	s.selfMu.Unlock()
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	if err := t.Logout(ctx); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "cannot log the gateway's AM session out", slog.String("error", err.Error()))
		return
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "gateway session logged out")
}
