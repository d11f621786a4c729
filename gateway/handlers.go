package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/internal/jws"
)

// Short texts of the answers the gateway makes itself.
const (
	msgMissingCF      = "missing content format"
	msgUnsupportedCF  = "unsupported content format"
	msgBadJSON        = "malformed JSON"
	msgBadJWS         = "malformed JWS"
	msgNoCSRF         = "JWS without csrf claim"
	msgBadAuthPayload = "Unable to unmarshal payload" // iot-edge's text
	msgUnknownDigest  = "unknown or expired auth_id_digest"
	msgNoAuthAnswer   = "unexpected authentication answer from AM"
	msgBadQuery       = "unknown/missing query" // iot-edge's text
	msgTimeout        = "AM did not answer in time"
	msgUnavailable    = "AM unavailable"
	msgBadAnswer      = "unexpected answer from AM"
	msgShuttingDown   = "gateway shutting down"
	msgBusy           = "gateway busy, retry after Max-Age"
	msgTooLarge       = "request body too large"
	msgValidateFailed = "session validation failed"
	msgLogoutFailed   = "session logout failed"
)

func setResponse(w mux.ResponseWriter, c codes.Code, cf message.MediaType, body []byte) {
	var r io.ReadSeeker
	if len(body) > 0 {
		r = bytes.NewReader(body)
	}
	_ = w.SetResponse(c, cf, r) // fails only for a closed session
}

func text(w mux.ResponseWriter, c codes.Code, msg string) {
	setResponse(w, c, message.TextPlain, []byte(msg))
}

// relayBody answers with AM's body, as JSON when it is JSON.
func relayBody(w mux.ResponseWriter, c codes.Code, body []byte) {
	cf := message.TextPlain
	if json.Valid(body) {
		cf = message.AppJSON
	}
	setResponse(w, c, cf, body)
}

// middleware counts the requests being handled, answers 5.03 while
// shutting down and 4.13 to requests over MaxRequestBytes, and logs one
// line per request.
func (s *Server) middleware(next mux.Handler) mux.Handler {
	return mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		start := time.Now()
		s.inflight.Add(1)
		defer s.inflight.Add(-1)
		path, _ := r.Options().Path()
		switch {
		case s.draining.Load():
			text(w, codes.ServiceUnavailable, msgShuttingDown)
		case r.Context().Value(tooLargeKey{}) != nil:
			// RFC 7959 §4: Size1 in a 4.13 gives the largest body accepted.
			s.refused(w, r, refusalSize, msgTooLarge, nil)
			text(w, codes.RequestEntityTooLarge, msgTooLarge)
			w.Message().SetOptionUint32(message.Size1, s.size1())
		case s.current() == nil && path != coapx.PathAMInfo:
			// RetryAuthentication: AM has not answered the gateway yet.
			s.refuse(w, r, "not authenticated with AM yet", refusalNoAM, s.untilAuthenticated())
		default:
			next.ServeCOAP(w, r)
		}
		s.Metrics.request(path, w.Message().Code())
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "coap request", slog.String("method", r.Code().String()),
			slog.String("path", path), slog.String("code", w.Message().Code().String()),
			slog.Duration("took", time.Since(start)), slog.String("peer", w.Conn().RemoteAddr().String()))
	})
}

// amContext bounds an AM call made for a request.
func (s *Server) amContext(r *mux.Message) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.timeout())
}

// classify maps a failure to reach AM (not an AM answer) onto a CoAP code
// and a short text.
func classify(err error) (codes.Code, string) {
	var (
		ne  net.Error
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return codes.GatewayTimeout, msgTimeout
	case errors.As(err, &se), errors.As(err, &ute):
		return codes.BadGateway, msgBadAnswer
	}
	return codes.ServiceUnavailable, msgUnavailable
}

// amFailure answers a request whose AM call failed without an AM answer.
func (s *Server) amFailure(w mux.ResponseWriter, r *mux.Message, op string, err error) {
	code, msg := classify(err)
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "AM call failed", slog.String("op", op), slog.String("code", code.String()),
		slog.String("error", err.Error()))
	text(w, code, msg)
}

// relay answers a things-endpoint request with AM's answer: 2.04 and the
// body on success, else the CoAP code of AM's status and AM's body
// unchanged (things read detail.error from it).
func (s *Server) relay(w mux.ResponseWriter, r *mux.Message, op string, body []byte, err error) {
	if err == nil {
		relayBody(w, codes.Changed, body)
		return
	}
	var ae *amclient.Error
	if !errors.As(err, &ae) {
		s.amFailure(w, r, op, err)
		return
	}
	code := coapx.CodeForStatus(ae.StatusCode)
	if coapx.IsSuccess(code) {
		code = codes.Changed
	}
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "AM refused", slog.String("op", op), slog.Int("status", ae.StatusCode))
	relayBody(w, code, ae.Body)
}

func (s *Server) serveAMInfo(w mux.ResponseWriter, _ *mux.Message) {
	setResponse(w, codes.Content, message.AppJSON, s.aminfo)
}

// serveAuthenticate runs one step of the tree for a thing (§2.3, §3.2).
func (s *Server) serveAuthenticate(w mux.ResponseWriter, r *mux.Message) {
	// iot-edge does not check the Content-Format here; its SDK sends 50.
	if cf, err := r.ContentFormat(); err == nil && cf != coapx.AppJSON {
		text(w, codes.UnsupportedMediaType, msgUnsupportedCF)
		return
	}
	body, err := r.ReadBody()
	var step callback.Step
	if err != nil || json.Unmarshal(body, &step) != nil {
		text(w, codes.BadRequest, msgBadAuthPayload)
		return
	}
	st := connStateOf(w)
	req := amclient.AuthPayload{AuthID: step.AuthID, Callbacks: step.Callbacks}
	digest := step.AuthIDDigest
	flows := st.digests(s)
	if digest != "" {
		id, ok := flows.get(digest)
		if !ok {
			// AM could only refuse callbacks without their authId.
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "unknown auth_id_digest")
			text(w, codes.Unauthorized, msgUnknownDigest)
			return
		}
		req.AuthID = id
	}
	release, ok := s.admitAuth(w, r, st)
	if !ok {
		return
	}
	ctx, cancel := s.amContext(r)
	defer cancel()
	start := time.Now()
	res, err := s.AM.AuthenticateStep(ctx, s.thingTree(), req)
	release()
	if err == nil && res.TokenID != "" {
		s.logOutcome(w, r, step.Callbacks, "ok", start)
	} else if ae := (*amclient.Error)(nil); errors.As(err, &ae) && ae.StatusCode < 500 {
		s.logOutcome(w, r, step.Callbacks, "refused", start)
	}
	var ae *amclient.Error
	switch {
	case err == nil:
	case errors.As(err, &ae):
		if digest != "" {
			flows.forget(digest)
		}
		code := codes.Unauthorized
		if ae.StatusCode >= 500 { // an AM outage, not a refusal
			code = coapx.CodeForStatus(ae.StatusCode)
		}
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "AM refused the authentication step", slog.Int("status", ae.StatusCode))
		relayBody(w, code, ae.Body)
		return
	default:
		// Transport failure: keep the digest, the thing may try again.
		s.amFailure(w, r, "authenticate", err)
		return
	}
	if digest != "" {
		flows.forget(digest)
	}
	var out callback.Step
	switch {
	case res.TokenID != "":
		out.TokenID = res.TokenID
	case res.AuthID != "":
		out.AuthIDDigest = flows.put(res.AuthID)
		out.Callbacks = res.Callbacks
	default:
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "AM's authentication answer has neither tokenId nor authId")
		text(w, codes.Unauthorized, msgNoAuthAnswer)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		text(w, codes.BadGateway, msgBadAnswer)
		return
	}
	setResponse(w, codes.Valid, message.AppJSON, b)
}

// decode reads a things-endpoint or session request: JSON with its token
// taken by fromJSON, or a JWS with its token in the csrf claim. It answers
// the request itself and returns false when the request is malformed.
func (s *Server) decode(w mux.ResponseWriter, r *mux.Message, fromJSON func([]byte, *callback.Request) error) (callback.Request, bool) {
	var req callback.Request
	refuse := func(code codes.Code, msg string, err error) (callback.Request, bool) {
		s.refused(w, r, refusalBad, msg, err)
		text(w, code, msg)
		return req, false
	}
	cf, err := r.ContentFormat()
	if err != nil {
		return refuse(codes.BadRequest, msgMissingCF, err)
	}
	if cf != coapx.AppJSON && cf != coapx.AppJOSE {
		return refuse(codes.UnsupportedMediaType, msgUnsupportedCF, nil)
	}
	body, err := r.ReadBody()
	if err != nil {
		return refuse(codes.BadRequest, msgBadJSON, err)
	}
	if cf == coapx.AppJSON {
		if err := fromJSON(body, &req); err != nil {
			return refuse(codes.BadRequest, msgBadJSON, err)
		}
		return req, true
	}
	tok, err := coapx.CSRF(body)
	if err != nil {
		msg := msgBadJWS
		if _, cerr := jwsClaims(body); cerr == nil {
			msg = msgNoCSRF
		}
		return refuse(codes.BadRequest, msg, err)
	}
	req.Token, req.Body, req.Signed = tok, body, true
	return req, true
}

// logOutcome logs the end of a thing's authentication: one INFO line with
// the ID the thing claimed (its JWT's sub, or the name it gave), its peer
// address, the tree, whether it registered, the result and the last step's
// time. Never a token, key or JWT.
func (s *Server) logOutcome(w mux.ResponseWriter, r *mux.Message, cbs []callback.Callback, result string, start time.Time) {
	id, registration := claimedThing(cbs)
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "thing authentication", slog.String("thing", id),
		slog.String("peer", w.Conn().RemoteAddr().String()), slog.String("tree", s.thingTree()),
		slog.Bool("registration", registration), slog.String("result", result), slog.Duration("took", time.Since(start)))
}

// claimedThing reads the thing's ID from its answers: the sub of a PoP or
// registration JWT (unverified: AM checks it), else a NameCallback's value.
func claimedThing(cbs []callback.Callback) (id string, registration bool) {
	for _, cb := range cbs {
		if len(cb.Input) == 0 {
			continue
		}
		v, _ := cb.Input[0].Value.(string)
		switch {
		case cb.Type == "NameCallback" && id == "":
			id = v
		case cb.ID() == callback.IDPoPAuthentication || cb.ID() == callback.IDPoPRegistration:
			registration = registration || cb.ID() == callback.IDPoPRegistration
			if c, err := jws.Split(v); err == nil {
				var claims struct {
					Sub string `json:"sub"`
				}
				if json.Unmarshal(c.Payload, &claims) == nil && claims.Sub != "" {
					id = claims.Sub
				}
			}
		}
	}
	return id, registration
}

// refused logs a request the gateway answers itself, without asking AM:
// the reason the thing is told, and the error behind it.
func (s *Server) refused(w mux.ResponseWriter, r *mux.Message, metric, reason string, err error) {
	s.Metrics.refusal(metric)
	path, _ := r.Options().Path()
	attrs := []slog.Attr{slog.String("reason", reason), slog.String("path", path), slog.String("peer", w.Conn().RemoteAddr().String())}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request refused", attrs...)
}

// thingsJSON reads the {"token","payload"} wrapper; payload is AM's body.
func thingsJSON(b []byte, req *callback.Request) error {
	var tr coapx.ThingsRequest
	if err := json.Unmarshal(b, &tr); err != nil {
		return err
	}
	req.Token = tr.Token
	if tr.Payload != "" {
		req.Body = []byte(tr.Payload)
	}
	return nil
}

// sessionJSON reads {"tokenId"}; AM gets no body (as from iot-edge).
func sessionJSON(b []byte, req *callback.Request) error {
	var sr coapx.SessionRequest
	if err := json.Unmarshal(b, &sr); err != nil {
		return err
	}
	req.Token = sr.TokenID
	return nil
}

// things serves a things-endpoint resource.
func (s *Server) things(op string) mux.HandlerFunc {
	return func(w mux.ResponseWriter, r *mux.Message) {
		req, ok := s.decode(w, r, thingsJSON)
		if !ok {
			return
		}
		req.Op = op
		if op == callback.OpAttributes {
			req.Fields, _ = r.Queries() // one bare name per Uri-Query option
		}
		ctx, cancel := s.amContext(r)
		defer cancel()
		b, err := s.AM.Send(ctx, req)
		s.relay(w, r, op, b, err)
	}
}

// serveIntrospect relays introspection to AM and, when AM cannot be
// reached or fails (5xx), checks a JWT access token locally.
func (s *Server) serveIntrospect(w mux.ResponseWriter, r *mux.Message) {
	req, ok := s.decode(w, r, thingsJSON)
	if !ok {
		return
	}
	req.Op = callback.OpIntrospect
	ctx, cancel := s.amContext(r)
	defer cancel()
	b, err := s.AM.Send(ctx, req)
	var ae *amclient.Error
	if err == nil || (errors.As(err, &ae) && ae.StatusCode < 500) {
		s.relay(w, r, req.Op, b, err)
		return
	}
	if tok := introspectedToken(req); tok != "" {
		lctx, lcancel := context.WithTimeout(r.Context(), s.timeout())
		defer lcancel()
		if res, lerr := s.introspectLocally(lctx, tok); lerr == nil {
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "AM unavailable: token introspected locally", slog.String("error", err.Error()))
			relayBody(w, codes.Changed, res)
			return
		}
	}
	s.relay(w, r, req.Op, nil, err)
}

// introspectedToken is the token a thing asks to introspect.
func introspectedToken(req callback.Request) string {
	var v struct {
		Token string `json:"token"`
	}
	if req.Signed {
		claims, err := jwsClaims(req.Body)
		if err != nil {
			return ""
		}
		_ = json.Unmarshal(claims, &v)
		return v.Token
	}
	_ = json.Unmarshal(req.Body, &v)
	return v.Token
}

// jwsClaims returns the decoded (unverified) payload of a compact JWS.
func jwsClaims(body []byte) ([]byte, error) {
	c, err := jws.Split(string(body))
	if errors.Is(err, jws.ErrNotCompact) {
		return nil, coapx.ErrNotJWS
	}
	if err != nil {
		return nil, err
	}
	return c.Payload, nil
}

// serveSession validates or logs out a session (§2.10): validate answers
// 2.04 valid or 4.01 invalid, logout 2.04; AM errors are 5.04.
func (s *Server) serveSession(w mux.ResponseWriter, r *mux.Message) {
	req, ok := s.decode(w, r, sessionJSON)
	if !ok {
		return
	}
	qs, _ := r.Queries()
	switch strings.Join(qs, "&") {
	case coapx.QueryValidate:
		req.Op = callback.OpSessionValidate
	case coapx.QueryLogout:
		req.Op = callback.OpSessionLogout
	default:
		text(w, codes.BadRequest, msgBadQuery)
		return
	}
	validate := req.Op == callback.OpSessionValidate
	failed := msgLogoutFailed
	if validate {
		failed = msgValidateFailed
	}
	ctx, cancel := s.amContext(r)
	defer cancel()
	b, err := s.AM.Send(ctx, req)
	var ae *amclient.Error
	switch {
	case err == nil:
	case errors.As(err, &ae) && ae.StatusCode == 401 && validate:
		setResponse(w, codes.Unauthorized, message.TextPlain, nil)
		return
	case errors.As(err, &ae):
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "AM refused", slog.String("op", req.Op), slog.Int("status", ae.StatusCode))
		text(w, codes.GatewayTimeout, failed)
		return
	default:
		s.amFailure(w, r, req.Op, err)
		return
	}
	if !validate {
		setResponse(w, codes.Changed, message.TextPlain, nil)
		return
	}
	var v struct {
		Valid *bool `json:"valid"`
	}
	if json.Unmarshal(b, &v) != nil || v.Valid == nil {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "AM's session validation answer is not the expected JSON")
		text(w, codes.GatewayTimeout, failed)
		return
	}
	if *v.Valid {
		setResponse(w, codes.Changed, message.TextPlain, nil)
	} else {
		setResponse(w, codes.Unauthorized, message.TextPlain, nil)
	}
}
