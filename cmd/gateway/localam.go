//go:build !nolocalam

package main

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/callback"
)

// This file is the in-process local AM of the mode without --url. A
// build with -tags nolocalam leaves it out (localam_none.go), and with it
// the local AM's pages, templates, script engine and database: a
// production gateway that always has --url.

// localAM is the in-process local AM of the mode without --url.
type localAM struct {
	am  *amtest.Server
	hs  *http.Server
	url string
}

// startLocalAM starts the local AM with the evaluation guide's
// configuration, the gateway's identity (thing type gateway, its public
// key under its key ID) registered in o.Realm.
func startLocalAM(o options, key crypto.Signer, logger *slog.Logger) (*localAM, error) {
	cfg := amtest.DefaultConfig()
	realm := cfg.Realms[o.Realm]
	if realm == nil {
		return nil, fmt.Errorf("the local AM has no realm %q (it has /)", o.Realm)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: o.KeyID, Use: "sig"}}})
	if err != nil {
		return nil, fmt.Errorf("gateway key: %w", err)
	}
	if realm.Identities == nil {
		realm.Identities = map[string]map[string]any{}
	}
	if _, ok := realm.Identities[o.Name]; !ok {
		realm.Identities[o.Name] = map[string]any{"thingType": callback.ThingTypeGateway, "thingKeys": string(set)}
	}
	// The guide's "Register identities" steps, done: the thing of "Connect
	// a thing to the gateway" and the gateway of its manual registration.
	for id, attrs := range amtest.GuideIdentities() {
		if _, ok := realm.Identities[id]; !ok {
			realm.Identities[id] = attrs
		}
	}
	l, err := net.Listen("tcp", o.LocalAM)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("local AM: %w (is ./run.sh am running? Give --%s to use it, or --%s 127.0.0.1:0 for any free port)",
			err, flagURL, flagLocalAM)
	}
	if err != nil {
		return nil, fmt.Errorf("local AM: %w", err)
	}
	am := &amtest.Server{Config: cfg, Logger: logger.With("component", "local-am")}
	if err := am.Init(); err != nil {
		l.Close()
		return nil, fmt.Errorf("local AM: %w", err)
	}
	am.URL = "http://" + l.Addr().String() + "/openam"
	hs := &http.Server{Handler: am, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go hs.Serve(l) //nolint:errcheck // ends with close
	return &localAM{am: am, hs: hs, url: am.URL}, nil
}

func (a *localAM) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.hs.Shutdown(ctx); err != nil {
		a.hs.Close()
	}
	a.am.Close()
}

// printStarted says that the local AM runs and what it holds.
func (a *localAM) printStarted(w io.Writer, o options) {
	fmt.Fprintf(w, "Local AM started at %s (no --url given; in memory; identity %s registered, realm %s, tree %s).\n",
		a.url, o.Name, o.Realm, o.Tree)
	fmt.Fprintf(w, "Local AM identities %s and %s registered with the example key (resources/manual-thing.jwks).\n",
		amtest.GuideThingID, amtest.GuideGatewayID)
}

// printConnect prints the guide's command that connects a thing.
func (a *localAM) printConnect(w io.Writer, url string) {
	fmt.Fprintf(w, "Connect a thing: ./run.sh example thing/manual-registration -name %s -url %s\n", amtest.GuideThingID, url)
}
