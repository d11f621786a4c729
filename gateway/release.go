package gateway

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// When parked sessions give their memory back to the OS. A parked session
// keeps a few KiB of the 50-70 KiB it held while active; the Go runtime
// keeps the rest as free heap and returns it to the OS only gradually, so
// an edge box whose things have gone to sleep would go on paying for
// them. Once releaseMin sessions have been parked since the last release,
// the gateway waits until parking has been quiet for releaseQuiet (a wave
// of things going to sleep is released once, at its end), at most
// releaseMaxWait, and returns the free heap to the OS.
const (
	releaseMin     = 256
	releaseQuiet   = 2 * time.Second
	releaseMaxWait = 30 * time.Second
)

// memRelease schedules the release of parked sessions' memory.
type memRelease struct {
	mu     sync.Mutex
	parked int         // sessions parked since the last release
	timer  *time.Timer // armed once parked reaches min
	first  time.Time   // when timer was armed

	// Settings; zero values mean the constants above and
	// debug.FreeOSMemory (tests set them).
	min   int
	quiet time.Duration
	free  func()
}

// noteParked counts a parked session and arms or re-arms the release.
func (s *Server) noteParked() {
	r := &s.release
	r.mu.Lock()
	defer r.mu.Unlock()
	r.parked++
	least, quiet := releaseMin, releaseQuiet
	if r.min > 0 {
		least = r.min
	}
	if r.quiet > 0 {
		quiet = r.quiet
	}
	if r.parked < least {
		return
	}
	now := time.Now()
	switch {
	case r.timer == nil:
		r.first = now
		r.timer = time.AfterFunc(quiet, s.releaseMemory)
	case now.Sub(r.first) < releaseMaxWait && r.timer.Stop():
		// Stopped before it fired: wait for quiet again. (Once it has
		// fired, its run, waiting for r.mu, counts this park too.)
		r.timer.Reset(quiet)
	}
}

// releaseMemory returns the free heap to the OS and logs what it took.
func (s *Server) releaseMemory() {
	r := &s.release
	r.mu.Lock()
	n, free := r.parked, r.free
	r.parked, r.timer = 0, nil
	r.mu.Unlock()
	if free == nil {
		free = debug.FreeOSMemory
	}
	start := time.Now()
	free()
	s.log.LogAttrs(context.Background(), slog.LevelDebug, "returned the memory of parked sessions to the OS",
		slog.Int("parked_since_last", n), slog.Duration("took", time.Since(start)))
}

// stopRelease cancels a pending release: the server is stopping.
func (s *Server) stopRelease() {
	r := &s.release
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}
