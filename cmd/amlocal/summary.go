package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/thingway/thingway/amclient/amtest"
)

// summary is what amlocal tells at start. It holds no secrets: of the
// admin password it only says whether it is the default.
type summary struct {
	URL             string
	AdminUser       string
	DefaultPassword bool
	DataDir         string // "" for in memory
	CAs             []string
	Publishers      []publisher
	Realms          []realmSummary
	multiRealm      bool
	// Restored is true when the configuration came from the data
	// directory, as the admin REST API left it at an earlier run.
	Restored bool
	Import   string // --import DIR, or ""
	// Store is what the data directory holds at start; nil in memory.
	Store *amtest.StoreInfo
}

type realmSummary struct {
	Path  string
	Trees []string
}

func newSummary(url string, cfg *amtest.Config, o options) summary {
	s := summary{URL: url, AdminUser: cfg.AdminUser, DataDir: o.DataDir, Import: o.ImportDir,
		DefaultPassword: cfg.AdminPassword == defaultAdminPassword || cfg.AdminPassword == "",
		Publishers:      publishers(cfg), multiRealm: len(cfg.Realms) > 1}
	if s.DataDir != "" {
		if abs, err := filepath.Abs(s.DataDir); err == nil {
			s.DataDir = abs
		}
	}
	if s.AdminUser == "" {
		s.AdminUser = "amAdmin"
	}
	for _, c := range cfg.VerificationCAs() {
		s.CAs = append(s.CAs, c.Subject.String())
	}
	for _, p := range realmPaths(cfg) {
		s.Realms = append(s.Realms, realmSummary{Path: p, Trees: treeNames(cfg.Realms[p])})
	}
	return s
}

func (s summary) password() string {
	if s.DefaultPassword {
		return "default password"
	}
	return "password set by --admin-password or --config"
}

func (s summary) data() string {
	if s.DataDir == "" {
		return "in memory (state is lost when amlocal stops; use --data DIR to keep it)"
	}
	if s.Store == nil {
		return s.DataDir
	}
	return fmt.Sprintf("%s (%s, %s: %d identities, %d sessions)", s.DataDir, filepath.Base(s.Store.File),
		byteSize(s.Store.Size), s.Store.Identities, s.Store.Sessions)
}

// byteSize writes n bytes in kB below a megabyte and in MB from there.
func byteSize(n int64) string {
	if n < 1e6 {
		return fmt.Sprintf("%d kB", (n+500)/1000)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// print writes the human summary.
func (s summary) print(w io.Writer) {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "  %-11s %s\n", k, v) }
	b.WriteString("Thingway local AM is running\n")
	line("URL", s.URL)
	line("admin", s.AdminUser+" ("+s.password()+")")
	line("data", s.data())
	if s.Restored {
		line("config", "from the data directory, as the admin REST API left it (--config, --fresh, --ca-cert and --publisher-jwks set up new data directories only)")
	}
	if s.Import != "" {
		line("imported", s.Import)
	}
	for _, ca := range s.CAs {
		line("CA", ca+" (am.services.iot.cert.verification)")
	}
	for _, p := range s.Publishers {
		v := p.ID + ", issuer " + p.Issuer
		if s.multiRealm {
			v += " (realms " + strings.Join(p.Realms, ", ") + ")"
		}
		line("publisher", v)
	}
	for _, r := range s.Realms {
		line("realm "+r.Path, "trees "+strings.Join(r.Trees, ", "))
	}
	b.WriteString("Press Ctrl-C to stop.\n")
	io.WriteString(w, b.String())
}

// attrs are the summary as log attributes.
func (s summary) attrs() []slog.Attr {
	realms := make([]string, len(s.Realms))
	for i, r := range s.Realms {
		realms[i] = r.Path
	}
	pubs := make([]string, len(s.Publishers))
	for i, p := range s.Publishers {
		pubs[i] = p.ID + "=" + p.Issuer
	}
	data := s.DataDir
	if data == "" {
		data = "in memory"
	}
	attrs := []slog.Attr{
		slog.String("url", s.URL),
		slog.String("admin_user", s.AdminUser),
		slog.Bool("admin_password_default", s.DefaultPassword),
		slog.String("data", data),
		slog.Any("cas", s.CAs),
		slog.Any("publishers", pubs),
		slog.Any("realms", realms),
		slog.Bool("config_restored", s.Restored),
	}
	if s.Store != nil {
		attrs = append(attrs, slog.String("data_file", s.Store.File), slog.Int64("data_bytes", s.Store.Size),
			slog.Int("identities", s.Store.Identities), slog.Int("sessions", s.Store.Sessions))
	}
	return attrs
}
