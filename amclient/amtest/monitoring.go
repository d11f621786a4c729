package amtest

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MonitoringUser is the user of AM's Prometheus endpoint
// (/json/metrics/prometheus), whose password is Server.MonitoringPassword.
const MonitoringUser = "prometheus"

// monitoring is the server's Prometheus registry and metrics, made on
// first use.
type monitoring struct {
	once     sync.Once
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	trees    *prometheus.CounterVec
	handler  http.Handler
}

func (m *monitoring) init() {
	m.once.Do(func() {
		m.reg = prometheus.NewRegistry()
		m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "thingway_am", Name: "requests_total",
			Help: "Requests answered by the local AM, by endpoint and HTTP status."}, []string{"endpoint", "status"})
		m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "thingway_am", Name: "request_duration_seconds",
			Help: "Duration of the local AM's answers, by endpoint.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}},
			[]string{"endpoint"})
		m.trees = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "thingway_am", Name: "tree_outcomes_total",
			Help: "Authentication trees that ended, by tree and outcome: success or failure."}, []string{"tree", "outcome"})
		m.reg.MustRegister(m.requests, m.duration, m.trees, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	})
}

// observe counts an answer.
func (m *monitoring) observe(path string, status int, took time.Duration) {
	m.init()
	e := endpointOf(path)
	m.requests.WithLabelValues(e, http.StatusText(status)).Inc()
	m.duration.WithLabelValues(e).Observe(took.Seconds())
}

// treeEnded counts a tree's outcome.
func (m *monitoring) treeEnded(tree string, success bool) {
	m.init()
	outcome := "failure"
	if success {
		outcome = "success"
	}
	m.trees.WithLabelValues(tree, outcome).Inc()
}

// endpointOf names the endpoint of a request path (after the base path),
// a label of few values.
func endpointOf(p string) string {
	for _, e := range []struct{ prefix, name string }{
		{"/json/authenticate", "authenticate"}, {"/json/things", "things"}, {"/json/sessions", "sessions"},
		{"/json/serverinfo", "serverinfo"}, {"/json/health", "health"}, {"/json/metrics", "metrics"},
		{"/oauth2/access_token", "oauth2/access_token"}, {"/oauth2/introspect", "oauth2/introspect"},
		{"/oauth2/device", "oauth2/device"}, {"/oauth2/", "oauth2"}, {"/ui", "ui"}, {"/json/", "json"},
	} {
		if strings.HasPrefix(p, e.prefix) {
			return e.name
		}
	}
	return "other"
}

// serveMonitoring answers AM's monitoring endpoints, p being the path
// after the base path; it reports false for any other path.
//
//	GET /json/health/live        200, empty (AM 7's liveness probe)
//	GET /json/health/ready       200, empty, once the server is initialised
//	GET /isAlive.jsp             200, "Server is ALIVE: " (AM's classic page)
//	GET /json/metrics/prometheus the Prometheus exposition, with HTTP basic
//	                             authentication of MonitoringUser and
//	                             Server.MonitoringPassword; 404 when no
//	                             password is set (monitoring off)
func (s *Server) serveMonitoring(w http.ResponseWriter, r *http.Request, p string) bool {
	switch p {
	case "/json/health/live", "/json/health/ready", "/isAlive.jsp", "/json/metrics/prometheus":
	default:
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return true
	}
	w.Header().Set("Cache-Control", "private")
	switch p {
	case "/json/health/live", "/json/health/ready":
		w.Header().Set("Content-API-Version", "resource=1.0")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	case "/isAlive.jsp":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<html><body>Server is ALIVE: </body></html>\n"))
	case "/json/metrics/prometheus":
		if s.MonitoringPassword == "" {
			http.Error(w, "Not Found", http.StatusNotFound)
			return true
		}
		user, pass, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(MonitoringUser)) != 1 ||
			subtle.ConstantTimeCompare([]byte(pass), []byte(s.MonitoringPassword)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="prometheus"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return true
		}
		s.metrics.init()
		s.metrics.handler.ServeHTTP(w, r)
	}
	return true
}
