package gateway

import (
	"crypto/tls"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the gateway's Prometheus metrics, all named
// thingway_gateway_*. Make them with [NewMetrics], set them as
// [Server.Metrics], and wrap the AM client's transport with
// [Metrics.AMTransport] for the AM call metrics.
//
//	thingway_gateway_dtls_handshakes_total{result}       ok, failed, refused
//	thingway_gateway_sessions                            DTLS sessions open, parked ones included
//	thingway_gateway_parked_sessions                     DTLS sessions parked (Server.ParkAfter)
//	thingway_gateway_dtls_parks_total                    sessions parked
//	thingway_gateway_dtls_resumptions_total{from}        parked sessions resumed: idle, file (Server.SessionFile)
//	thingway_gateway_pending_handshakes                  handshakes under way
//	thingway_gateway_coap_requests_total{path,code}      requests answered
//	thingway_gateway_am_calls_total{endpoint,outcome}    ok, refused (4xx), error (5xx), unreachable
//	thingway_gateway_am_call_duration_seconds{endpoint}  histogram
//	thingway_gateway_am_reachable                        1 if AM's last answer came, 0 if it did not
//	thingway_gateway_authentications_total{result}       the gateway's own logins and renewals
//	thingway_gateway_refusals_total{reason}              what the gateway refused itself
//	thingway_gateway_ready                               1 while /readyz answers 200
//
// A nil *Metrics records nothing.
type Metrics struct {
	reg prometheus.Registerer

	handshakes  *prometheus.CounterVec
	requests    *prometheus.CounterVec
	amCalls     *prometheus.CounterVec
	amDuration  *prometheus.HistogramVec
	amReachable prometheus.Gauge
	selfAuth    *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	parks       prometheus.Counter
	resumptions *prometheus.CounterVec

	attachOnce sync.Once
}

const metricsNamespace = "thingway_gateway"

// NewMetrics makes the gateway's metrics and registers them with reg (the
// per-server gauges are registered when the Server starts).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: metricsNamespace, Name: name, Help: help}
	}
	m := &Metrics{
		reg: reg,
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts(opts("dtls_handshakes_total",
			"DTLS handshakes by result: ok, failed (the peer or the handshake failed) or refused (a limit).")), []string{"result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts(opts("coap_requests_total",
			"CoAP requests answered, by path and response code.")), []string{"path", "code"}),
		amCalls: prometheus.NewCounterVec(prometheus.CounterOpts(opts("am_calls_total",
			"Calls to AM by endpoint and outcome: ok, refused (4xx), error (5xx) or unreachable (no answer).")), []string{"endpoint", "outcome"}),
		amDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metricsNamespace, Name: "am_call_duration_seconds",
			Help: "Duration of calls to AM by endpoint.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}},
			[]string{"endpoint"}),
		amReachable: prometheus.NewGauge(prometheus.GaugeOpts(opts("am_reachable",
			"1 if AM answered the gateway's last call, 0 if it could not be reached."))),
		selfAuth: prometheus.NewCounterVec(prometheus.CounterOpts(opts("authentications_total",
			"The gateway's own authentications with AM (start and renewals), by result: ok or failed.")), []string{"result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts(opts("refusals_total",
			"Requests and handshakes the gateway refused itself, by reason.")), []string{"reason"}),
		parks: prometheus.NewCounter(prometheus.CounterOpts(opts("dtls_parks_total",
			"DTLS sessions parked after ParkAfter idle."))),
		resumptions: prometheus.NewCounterVec(prometheus.CounterOpts(opts("dtls_resumptions_total",
			"Parked DTLS sessions resumed without a handshake, by where they were parked: idle or file (the session file).")), []string{"from"}),
	}
	reg.MustRegister(m.handshakes, m.requests, m.amCalls, m.amDuration, m.amReachable, m.selfAuth, m.refusals, m.parks, m.resumptions)
	return m
}

// attach registers the gauges that read s; once.
func (m *Metrics) attach(s *Server) {
	if m == nil {
		return
	}
	m.attachOnce.Do(func() {
		gauge := func(name, help string, f func() float64) prometheus.Collector {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: name, Help: help}, f)
		}
		m.reg.MustRegister(
			gauge("sessions", "DTLS sessions open.", func() float64 { return float64(s.sessions.Load()) }),
			gauge("pending_handshakes", "DTLS handshakes under way.", func() float64 { return float64(s.pending.Load()) }),
			gauge("parked_sessions", "DTLS sessions parked.", func() float64 { return float64(s.parked.Load()) }),
			gauge("ready", "1 while the gateway is authenticated with AM and listening (/readyz answers 200).", func() float64 {
				if s.Ready() == nil {
					return 1
				}
				return 0
			}),
		)
	})
}

func (m *Metrics) handshake(result string) {
	if m != nil {
		m.handshakes.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) park() {
	if m != nil {
		m.parks.Inc()
	}
}

func (m *Metrics) resumption(from string) {
	if m != nil {
		m.resumptions.WithLabelValues(from).Inc()
	}
}

func (m *Metrics) request(path string, code codes.Code) {
	if m == nil {
		return
	}
	switch strings.TrimPrefix(path, "/") {
	case "aminfo", "authenticate", "accesstoken", "attributes", "introspect", "session", "usercode", "usertoken":
	default:
		path = "other"
	}
	m.requests.WithLabelValues(strings.TrimPrefix(path, "/"), code.String()).Inc()
}

func (m *Metrics) selfAuthentication(err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.selfAuth.WithLabelValues(result).Inc()
}

// Refusal reasons, the values of refusals_total's reason label.
const (
	refusalRate      = "rate"      // MaxAuthPerMinute
	refusalAdmission = "admission" // MaxConcurrentAuth
	refusalSize      = "size"      // MaxRequestBytes
	refusalBad       = "bad_request"
	refusalHandshake = "handshake" // MaxPendingHandshakes, MaxSessions, shutting down
	refusalNoAM      = "not_ready" // the gateway is not authenticated with AM yet
)

func (m *Metrics) refusal(reason string) {
	if m != nil {
		m.refusals.WithLabelValues(reason).Inc()
	}
}

// NewAMTransport is the HTTP transport the gateway should reach AM with:
// connections kept for its concurrency (Go's default keeps 2 idle per
// host, so most proxied requests would dial AM anew and leave sockets in
// TIME_WAIT), 90 s idle, HTTP/2 where AM offers it, the TLS handshake
// bounded by timeout (if positive), and tlsConfig (nil: the system's
// roots) for AM's HTTPS.
func NewAMTransport(tlsConfig *tls.Config, timeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	if timeout > 0 {
		t.TLSHandshakeTimeout = timeout
	}
	t.ForceAttemptHTTP2 = true
	if tlsConfig != nil {
		t.TLSClientConfig = tlsConfig
	}
	return t
}

// AMTransport wraps next (http.DefaultTransport if nil) so that every AM
// call is counted and timed.
func (m *Metrics) AMTransport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if m == nil {
		return next
	}
	return amTransport{m: m, next: next}
}

type amTransport struct {
	m    *Metrics
	next http.RoundTripper
}

func (t amTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := t.next.RoundTrip(req)
	endpoint := amEndpoint(req.URL.Path)
	t.m.amDuration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	outcome := "unreachable"
	switch {
	case err != nil:
	case res.StatusCode >= 500:
		outcome = "error"
	case res.StatusCode >= 400:
		outcome = "refused"
	default:
		outcome = "ok"
	}
	t.m.amCalls.WithLabelValues(endpoint, outcome).Inc()
	if err != nil {
		t.m.amReachable.Set(0)
	} else {
		t.m.amReachable.Set(1)
	}
	return res, err
}

// amEndpoint names the AM endpoint of a request path, for labels.
func amEndpoint(path string) string {
	for _, e := range []struct{ part, name string }{
		{"/json/authenticate", "authenticate"}, {"/json/things", "things"}, {"/json/sessions", "sessions"},
		{"/json/serverinfo", "serverinfo"}, {"/oauth2/", "oauth2"},
	} {
		if strings.Contains(path, e.part) {
			return e.name
		}
	}
	return "other"
}
