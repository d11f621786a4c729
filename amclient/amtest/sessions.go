package amtest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/crest"
	"github.com/thingway/thingway/amclient/amtest/internal/sessions"
)

// SSO sessions: the /json/sessions endpoint and the records behind it
// (creation, liveness with the idle timer, signed requests' nonces, logout).

// handleSessions serves POST /json/sessions?_action=validate|logout, for
// the caller's own session or, for an administrator, the one named by
// tokenId in the body.
func (s *Server) handleSessions(c *reqCtx) error {
	if c.r.Method != http.MethodPost {
		return crest.Err(http.StatusMethodNotAllowed, "Method Not Allowed")
	}
	action := c.r.URL.Query().Get("_action")
	if action != "validate" && action != "logout" {
		return crest.Err(http.StatusNotImplemented, "Action '"+action+"' not implemented for this resource")
	}
	tok := c.ssoToken()
	caller, live := s.liveSession(tok, c.now)
	if !live {
		if action == "validate" {
			crest.WriteJSON(c.w, http.StatusOK, map[string]any{"valid": false})
			return nil
		}
		return errAccessDenied.WithLog("logout without a valid session")
	}
	payload, err := c.requestPayload(caller, tok)
	if err != nil {
		if action == "validate" && caller.Restricted {
			// AM 7.4 cannot validate a restricted session (OPENAM-19492).
			return crest.Err(http.StatusUnauthorized, "Access Denied").WithLog("restricted session validate (OPENAM-19492): %v", err)
		}
		return err
	}
	var body struct {
		TokenID string `json:"tokenId"`
	}
	json.Unmarshal(payload, &body)
	target, targetTok := caller, tok
	if body.TokenID != "" && body.TokenID != tok {
		if !caller.Admin {
			return errForbidden.WithLog("%s may not act on another session", caller.UID)
		}
		targetTok = body.TokenID
		target, live = s.liveSession(targetTok, c.now)
	}
	if action == "validate" {
		if caller.Restricted && target == caller {
			return crest.Err(http.StatusUnauthorized, "Access Denied").WithLog("restricted session validate (OPENAM-19492)")
		}
		if !live {
			crest.WriteJSON(c.w, http.StatusOK, map[string]any{"valid": false})
			return nil
		}
		crest.WriteJSON(c.w, http.StatusOK, map[string]any{"valid": true, "sessionUid": target.UID0, "uid": target.UID, "realm": target.Realm})
		return nil
	}
	if live {
		if _, err := s.endSession(targetTok); err != nil {
			return err
		}
	}
	crest.WriteJSON(c.w, http.StatusOK, map[string]any{"result": "Successfully logged out"})
	return nil
}

// newSession creates a session and returns its token.
func (s *Server) newSession(x *session, now time.Time) (string, error) {
	tok := sessions.NewToken()
	sessions.Start(x, now, s.sessionMax())
	h := sessions.Hash(tok)
	if err := s.put(kindSession, h, x); err != nil {
		return "", err
	}
	s.st.idle.Touch(h, now)
	s.st.mu.Lock()
	s.sweepLocked(now)
	s.st.mu.Unlock()
	return tok, nil
}

// liveSession returns the session for tok if it is valid at now, and
// refreshes its idle timer.
func (s *Server) liveSession(tok string, now time.Time) (*session, bool) {
	if tok == "" {
		return nil, false
	}
	h := sessions.Hash(tok)
	var x *session
	var found bool
	err := s.db.View(func(tx storeTx) error {
		var err error
		x, found, err = sessions.Read(tx, h)
		return err
	})
	if err != nil {
		s.log.LogAttrs(context.Background(), slog.LevelError, "state read failed", slog.String("kind", kindSession), slog.String("error", err.Error()))
		return nil, false
	}
	if !found || !now.Before(x.Expires) || !s.st.idle.Use(h, now, s.sessionIdle()) {
		return nil, false
	}
	return x, true
}

// acceptNonce records nonce for the session if it is above every nonce
// seen. The check and the write are one transaction, so two requests
// cannot both pass with one nonce, and an accepted nonce is on disk
// before it is acknowledged.
func (s *Server) acceptNonce(tok string, nonce int64) (bool, error) {
	err := s.db.Update(func(tx storeTx) error { return sessions.TakeNonce(tx, tok, nonce) })
	if errors.Is(err, sessions.ErrNonceUsed) || errors.Is(err, sessions.ErrGone) {
		return false, nil
	}
	if err != nil {
		return false, storeErr(err)
	}
	return true, nil
}

// pendingNonce is a signed request's nonce, checked against the session
// but not yet written.
type pendingNonce struct {
	tok string
	n   int64
}

// update runs f in a transaction of the server's store; a signed
// request's pending nonce is taken in the same transaction, so that the
// request's change and its nonce cost one commit. A nonce another request
// took in the meantime fails the transaction: nothing of f is applied.
func (c *reqCtx) update(f func(tx storeTx) error) error {
	pn := c.nonce
	err := c.s.db.Update(func(tx storeTx) error {
		if pn != nil {
			if err := sessions.TakeNonce(tx, pn.tok, pn.n); err != nil {
				return err
			}
		}
		return f(tx)
	})
	if errors.Is(err, sessions.ErrNonceUsed) || errors.Is(err, sessions.ErrGone) {
		c.nonce = nil
		return popFailure.WithLog("nonce %d was already used or is below one that was, or the session ended", pn.n)
	}
	if err == nil {
		c.nonce = nil
	}
	return err
}

// flushNonce writes a pending nonce that no change of the request took,
// before the request is answered: an answer never goes out before its
// nonce is on disk.
func (c *reqCtx) flushNonce() *crest.Error {
	pn := c.nonce
	if pn == nil {
		return nil
	}
	c.nonce = nil
	err := c.s.db.Update(func(tx storeTx) error { return sessions.TakeNonce(tx, pn.tok, pn.n) })
	var ae *crest.Error
	switch {
	case err == nil, errors.Is(err, sessions.ErrGone):
		// Gone: the request ended its own session (logout), whose nonces
		// can no longer be replayed.
		return nil
	case errors.Is(err, sessions.ErrNonceUsed):
		return popFailure.WithLog("nonce %d was already used or is below one that was", pn.n)
	case errors.As(storeErr(err), &ae):
		return ae
	}
	c.s.log.LogAttrs(c.r.Context(), slog.LevelError, "storing a nonce", slog.String("error", err.Error()))
	return crest.Err(http.StatusInternalServerError, "Internal Server Error")
}

func (s *Server) endSession(tok string) (bool, error) {
	h := sessions.Hash(tok)
	var ended bool
	err := s.db.Update(func(tx storeTx) error {
		var err error
		ended, err = sessions.End(tx, h)
		return err
	})
	if err != nil {
		return false, storeErr(err)
	}
	s.st.idle.Forget(h)
	return ended, nil
}

// caller returns the live session of the request, or a 401.
func (c *reqCtx) caller() (*session, string, error) {
	tok := c.ssoToken()
	x, ok := c.s.liveSession(tok, c.now)
	if !ok {
		return nil, "", errAccessDenied.WithLog("no valid SSO token")
	}
	return x, tok, nil
}
