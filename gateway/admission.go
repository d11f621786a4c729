package gateway

import (
	"log/slog"
	"math"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
)

// maxFlowsPerSession bounds the authentication flows (auth_id_digest
// values) one DTLS session holds at once; a new one evicts the session's
// own oldest. A thing runs one flow at a time.
const maxFlowsPerSession = 4

// Requests in flight: go-coap handles the requests of one DTLS session one
// after the other (a session's goroutine reads, handles, answers; further
// datagrams wait in its queue of 16), so a session never has more than one
// request at AM. What a session can still do is send many, one after the
// other: the authentication steps, which make AM work hardest, are capped
// per session (MaxAuthPerMinute) and, for all sessions together, in
// flight at AM (MaxConcurrentAuth).

// authBucket is a session's allowance of authentication steps: a token
// bucket of perMinute tokens, refilled continuously.
type authBucket struct {
	tokens float64
	last   time.Time
}

// take takes a token at now if there is one; otherwise it says how long
// until there is.
func (b *authBucket) take(now time.Time, perMinute int) (time.Duration, bool) {
	capacity := float64(perMinute)
	if b.last.IsZero() {
		b.tokens = capacity
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(capacity, b.tokens+d.Minutes()*capacity)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / capacity * float64(time.Minute)), false
}

// admitAuth decides whether an authentication step of the session st
// goes to AM. It returns a release func for the MaxConcurrentAuth slot, or
// answers 5.03 with Max-Age itself and returns false.
func (s *Server) admitAuth(w mux.ResponseWriter, r *mux.Message, st *connState) (func(), bool) {
	if perMinute := capOr(s.MaxAuthPerMinute, DefaultMaxAuthPerMinute); perMinute > 0 && st != nil {
		st.mu.Lock()
		wait, ok := st.auth.take(s.now(), perMinute)
		st.mu.Unlock()
		if !ok {
			s.refuse(w, r, "authentication rate", refusalRate, wait)
			return nil, false
		}
	}
	if s.authSem == nil {
		return func() {}, true
	}
	select {
	case s.authSem <- struct{}{}:
		return func() { <-s.authSem }, true
	default:
		s.refuse(w, r, "authentication admission", refusalAdmission, time.Second)
		return nil, false
	}
}

// refuse answers 5.03 Service Unavailable with Max-Age, the seconds until
// the thing may try again (RFC 7252 §5.9.3.4), and logs the refusal.
func (s *Server) refuse(w mux.ResponseWriter, r *mux.Message, reason, metric string, retry time.Duration) {
	s.Metrics.refusal(metric)
	secs := uint32(math.Ceil(retry.Seconds()))
	if secs < 1 {
		secs = 1
	}
	text(w, codes.ServiceUnavailable, msgBusy)
	w.Message().SetOptionUint32(message.MaxAge, secs)
	path, _ := r.Options().Path()
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request refused", slog.String("reason", reason), slog.String("path", path),
		slog.String("peer", w.Conn().RemoteAddr().String()), slog.Uint64("retry_after_s", uint64(secs)))
}
