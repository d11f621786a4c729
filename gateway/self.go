package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/thingway/thingway/callback"
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
			if ctx.Err() == nil {
				s.Metrics.selfAuthentication(err)
			}
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

// Backoff of RetryAuthentication.
const (
	authRetryFirst = time.Second
	authRetryMax   = time.Minute
)

// authAttempt is a failed self-authentication and when the next is due.
type authAttempt struct {
	err  error
	next time.Time
}

// authenticateUntilDone authenticates the gateway, again and again with
// jittered exponential backoff until it succeeds or the Server closes.
func (s *Server) authenticateUntilDone() {
	defer s.wg.Done()
	for attempt := 0; ; attempt++ {
		err := s.Authenticate(s.ctx)
		if err == nil {
			s.authState.Store(nil)
			return
		}
		if s.isClosed() || errors.Is(err, ErrServerClosed) {
			return
		}
		wait := retryWait(attempt)
		next := time.Now().Add(wait)
		s.authState.Store(&authAttempt{err: err, next: next})
		s.log.LogAttrs(s.ctx, slog.LevelWarn, "cannot authenticate with AM; things get 5.03 until it answers",
			slog.String("error", err.Error()), slog.Duration("retry_in", wait.Round(time.Millisecond)),
			slog.Time("next_attempt", next))
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-s.ctx.Done():
			timer.Stop()
			return
		}
	}
}

// retryWait is the pause after the attempt-th failure (from 0): the
// capped exponential step with equal jitter, so that gateways that lost AM
// together do not come back together.
func retryWait(attempt int) time.Duration {
	d := authRetryMax
	if attempt < 16 {
		d = min(authRetryMax, authRetryFirst<<attempt)
	}
	return d/2 + rand.N(d/2+1)
}

// Ready reports whether the gateway is ready for things: authenticated
// with AM and serving. If not, the error says why.
func (s *Server) Ready() error {
	switch {
	case s.isClosed() || s.draining.Load():
		return errors.New("shutting down")
	case s.current() == nil:
		if a := s.authState.Load(); a != nil {
			return fmt.Errorf("not authenticated with AM: %w", a.err)
		}
		return errors.New("not authenticated with AM yet")
	}
	s.mu.Lock()
	n := len(s.servers)
	s.mu.Unlock()
	if n == 0 {
		return errors.New("not listening")
	}
	return nil
}

// untilAuthenticated is how long a thing should wait before it asks again
// while the gateway is not authenticated with AM.
func (s *Server) untilAuthenticated() time.Duration {
	if a := s.authState.Load(); a != nil {
		return max(time.Second, time.Until(a.next))
	}
	return time.Second
}
