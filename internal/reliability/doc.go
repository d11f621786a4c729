// Package reliability holds the module's end-to-end reliability tests and
// benchmarks (issue #13): the thing SDK, the gateway and the local AM,
// real parts over real DTLS and HTTP on loopback, with the thing↔gateway
// link impaired by [github.com/thingway/thingway/internal/impair] (loss,
// duplication, reordering) and AM or the gateway paused, slowed, failing
// or killed.
//
// It has no code of its own; docs/reliability.md gives the figures its
// benchmarks measure and the commands that produce them.
package reliability
