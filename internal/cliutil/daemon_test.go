package cliutil_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/thingway/thingway/internal/cliutil"
)

func TestEnvVars(t *testing.T) {
	for flag, want := range map[string]string{"park-after": "GATEWAY_PARK_AFTER", "url": "GATEWAY_URL", "dtls-cert": "GATEWAY_DTLS_CERT"} {
		if got := cliutil.EnvVars("GATEWAY_", flag); len(got) != 1 || got[0] != want {
			t.Errorf("EnvVars(GATEWAY_, %s) = %v, want [%s]", flag, got, want)
		}
	}
}

// The logger writes the format asked for, at the level asked for, and an
// unknown format names its flag.
func TestNewLogger(t *testing.T) {
	var b bytes.Buffer
	l, err := cliutil.NewLogger(&b, slog.LevelInfo, "JSON", "log-format")
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hidden")
	l.Info("shown", "k", 1)
	var line map[string]any
	if err := json.Unmarshal(b.Bytes(), &line); err != nil || line["msg"] != "shown" || line["k"] != 1.0 {
		t.Errorf("json log = %q (%v)", b.String(), err)
	}
	b.Reset()
	if l, err = cliutil.NewLogger(&b, slog.LevelDebug, "text", "log-format"); err != nil {
		t.Fatal(err)
	}
	l.Debug("seen")
	if !strings.Contains(b.String(), "level=DEBUG msg=seen") {
		t.Errorf("text log = %q", b.String())
	}
	if _, err := cliutil.NewLogger(&b, slog.LevelInfo, "xml", "log-format"); err == nil || !strings.Contains(err.Error(), `--log-format "xml"`) {
		t.Errorf("xml: %v", err)
	}
}
