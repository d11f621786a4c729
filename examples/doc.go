// Package examples holds the example programs of the evaluation guide, one
// main package each under examples/thing (run them with ./run.sh example
// NAME), and, in this directory, the tests that build and run them against
// the local AM and a gateway, as a user would. The programs share
// examples/internal; nothing outside examples imports them.
package examples
