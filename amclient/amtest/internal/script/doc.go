// Package script is the local AM's decision-script engine: the lexer,
// parser and evaluator of the subset of Groovy and JavaScript that a
// Scripted Decision node may run there ([Subset] says which). A script
// reads the claims that the Authenticate Thing node verified (under
// [VerifiedClaimsKey] in the node states), compares them with literals and
// sets outcome; [Compile] refuses a script outside the subset with an
// [*Error] that gives its line and column, and [Program.Run] evaluates one.
//
// It owns the language only: which scripts exist and which node runs which
// belong to the configuration (internal/config), what an outcome does to
// the journeys (internal/journey). It imports only the standard library:
// no other package of the module, and in particular nothing of amtest's
// server, storage or HTTP handling, so that the language can be read and
// tested on its own.
package script
