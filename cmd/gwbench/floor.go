package main

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/thingway/thingway/coapx"
)

// floorResult is the crypto floor of a DTLS 1.2 ECDHE-ECDSA (P-256)
// mutual-auth handshake on the server's side: what the gateway cannot
// avoid computing for one handshake, done with crypto/ecdh and
// crypto/ecdsa directly.
type floorResult struct {
	// Per handshake, in milliseconds of CPU: the whole (one loop doing
	// every step) and each step on its own. Medians of floorRounds.
	TotalMs float64 `json:"total_ms"`
	// ECDHEMs: an ephemeral P-256 key and the shared secret with the
	// client's public key (parsed from its ClientKeyExchange bytes).
	ECDHEMs float64 `json:"ecdhe_ms"`
	// SignMs: the ECDSA signature of the ServerKeyExchange parameters.
	SignMs float64 `json:"sign_ms"`
	// VerifyMs: the ECDSA verification of the client's CertificateVerify.
	VerifyMs float64 `json:"verify_ms"`
	// ChainMs: parsing the client's certificate and verifying its
	// signature (a one-certificate chain, self-signed as the things' are).
	ChainMs float64 `json:"chain_ms"`
	// Clock is what was measured: thread (the CPU time of the OS thread
	// running the loop) or wall (where the thread's CPU time cannot be
	// read).
	Clock string `json:"clock"`
}

// floorRounds and floorOps: each figure is the median of floorRounds
// loops of floorOps iterations.
const (
	floorRounds = 5
	floorOps    = 200
)

// cryptoFloor measures the server-side crypto of one handshake.
func cryptoFloor() (*floorResult, error) {
	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	clientCert, err := coapx.SelfSignedCertificate(nil, "gwbench-floor")
	if err != nil {
		return nil, err
	}
	clientKey, ok := clientCert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("the client certificate's key is not ECDSA")
	}
	der := clientCert.Certificate[0]
	// The client's halves, computed once: its ephemeral public key and
	// its CertificateVerify signature over a transcript hash.
	clientEph, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	clientPub := clientEph.PublicKey().Bytes()
	transcript := sha256.Sum256([]byte("the handshake messages so far"))
	certVerify, err := ecdsa.SignASN1(rand.Reader, clientKey, transcript[:])
	if err != nil {
		return nil, err
	}
	params := sha256.Sum256([]byte("client random, server random, curve, server public key"))

	ecdhe := func() error {
		eph, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		peer, err := ecdh.P256().NewPublicKey(clientPub)
		if err != nil {
			return err
		}
		_, err = eph.ECDH(peer)
		return err
	}
	sign := func() error {
		_, err := ecdsa.SignASN1(rand.Reader, serverKey, params[:])
		return err
	}
	verify := func() error {
		if !ecdsa.VerifyASN1(&clientKey.PublicKey, transcript[:], certVerify) {
			return errors.New("CertificateVerify does not verify")
		}
		return nil
	}
	chain := func() error {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		return c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	}
	all := func() error { return errors.Join(ecdhe(), sign(), verify(), chain()) }

	r := &floorResult{Clock: "thread"}
	for _, m := range []struct {
		f   func() error
		out *float64
	}{{all, &r.TotalMs}, {ecdhe, &r.ECDHEMs}, {sign, &r.SignMs}, {verify, &r.VerifyMs}, {chain, &r.ChainMs}} {
		ms, thread, err := perOp(m.f)
		if err != nil {
			return nil, fmt.Errorf("crypto floor: %w", err)
		}
		if !thread {
			r.Clock = "wall"
		}
		*m.out = ms
	}
	return r, nil
}

// perOp runs f floorRounds times floorOps times on one locked OS thread
// and returns the median CPU milliseconds per call (wall milliseconds
// where the thread's CPU time is not available).
func perOp(f func() error) (float64, bool, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := f(); err != nil { // warm up, and check it works
		return 0, false, err
	}
	rounds := make([]float64, floorRounds)
	thread := true
	for i := range rounds {
		c0, ok0 := threadCPU()
		t0 := time.Now()
		for range floorOps {
			if err := f(); err != nil {
				return 0, false, err
			}
		}
		wall := time.Since(t0)
		c1, ok1 := threadCPU()
		d := c1 - c0
		if !ok0 || !ok1 {
			d, thread = wall, false
		}
		rounds[i] = ms(d) / floorOps
	}
	slices.Sort(rounds)
	return rounds[len(rounds)/2], thread, nil
}
