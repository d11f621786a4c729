package amtest

import (
	"encoding/json"
	"net/http"
)

// handleSessions serves POST /json/sessions?_action=validate|logout, for
// the caller's own session or, for an administrator, the one named by
// tokenId in the body.
func (s *Server) handleSessions(c *reqCtx) error {
	if c.r.Method != http.MethodPost {
		return crestErr(http.StatusMethodNotAllowed, "Method Not Allowed")
	}
	action := c.r.URL.Query().Get("_action")
	if action != "validate" && action != "logout" {
		return crestErr(http.StatusNotImplemented, "Action '"+action+"' not implemented for this resource")
	}
	tok := c.ssoToken()
	caller, live := s.liveSession(tok, c.now)
	if !live {
		if action == "validate" {
			writeJSON(c.w, http.StatusOK, map[string]any{"valid": false})
			return nil
		}
		return errAccessDenied.withLog("logout without a valid session")
	}
	payload, err := c.requestPayload(caller, tok)
	if err != nil {
		if action == "validate" && caller.Restricted {
			// AM 7.4 cannot validate a restricted session (OPENAM-19492).
			return crestErr(http.StatusUnauthorized, "Access Denied").withLog("restricted session validate (OPENAM-19492): %v", err)
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
			return errForbidden.withLog("%s may not act on another session", caller.UID)
		}
		targetTok = body.TokenID
		target, live = s.liveSession(targetTok, c.now)
	}
	if action == "validate" {
		if caller.Restricted && target == caller {
			return crestErr(http.StatusUnauthorized, "Access Denied").withLog("restricted session validate (OPENAM-19492)")
		}
		if !live {
			writeJSON(c.w, http.StatusOK, map[string]any{"valid": false})
			return nil
		}
		writeJSON(c.w, http.StatusOK, map[string]any{"valid": true, "sessionUid": target.UID0, "uid": target.UID, "realm": target.Realm})
		return nil
	}
	if live {
		if _, err := s.endSession(targetTok); err != nil {
			return err
		}
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"result": "Successfully logged out"})
	return nil
}
