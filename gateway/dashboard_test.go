package gateway

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// The Grafana dashboard in resources/ queries only metrics the gateway
// exposes (its own, and the Go and process collectors cmd/gateway adds).
func TestDashboardUsesOnlyOurMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := NewMetrics(reg)
	m.attach(&Server{})
	// Every vector needs a sample to be gathered.
	m.handshake("ok")
	m.request("/aminfo", 69)
	m.amCalls.WithLabelValues("things", "ok").Inc()
	m.amDuration.WithLabelValues("things").Observe(0.01)
	m.selfAuthentication(nil)
	m.refusal(refusalRate)
	m.resumption(resumedIdle)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, f := range families {
		known[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				known[f.GetName()+s] = true
			}
		}
	}
	b, err := os.ReadFile("../resources/grafana/thingway-gateway.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	metric := regexp.MustCompile(`\b(thingway_gateway_\w+|go_\w+|process_\w+)`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range metric.FindAllString(tg.Expr, -1) {
				n++
				if !known[name] {
					t.Errorf("panel %q queries %s, which the gateway does not expose", p.Title, name)
				}
			}
		}
	}
	for name := range known {
		if strings.HasPrefix(name, "thingway_gateway_") && !strings.Contains(string(b), strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")) {
			t.Errorf("the dashboard shows nothing of %s", name)
		}
	}
	if n == 0 {
		t.Fatal("the dashboard queries no metric")
	}
}
