//go:build nolocalam

package main

import (
	"crypto"
	"errors"
	"io"
	"log/slog"
)

// A gateway built with -tags nolocalam has no in-process local AM: it
// needs --url. It links none of the local AM (pages, templates, script
// engine, database).

type localAM struct{ url string }

func startLocalAM(options, crypto.Signer, *slog.Logger) (*localAM, error) {
	return nil, errors.New("this gateway is built without the local AM (-tags nolocalam): give --url, the AM to use")
}

func (*localAM) close()                          {}
func (*localAM) printStarted(io.Writer, options) {}
func (*localAM) printConnect(io.Writer, string)  {}
