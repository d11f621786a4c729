package script

import (
	"fmt"
	"slices"
)

// VerifiedClaimsKey is the node-state key under which the Authenticate Thing
// node leaves the claims of the JWT it verified, in both shared and
// transient state.
const VerifiedClaimsKey = "org.forgerock.am.iot.jwt.pop.verified_claims"

// Subset describes the scripts a ScriptedDecisionNode may run in the
// local AM, which has no Groovy or JavaScript engine. It is part of the 400
// answer to a node whose script is outside the subset.
const Subset = "the local AM runs decision scripts (Groovy or JavaScript) that only compare the verified " +
	"claims with literals: statements are `def`/`var`/`let`/`const` declarations, assignments, " +
	"`outcome = \"true\"` or `outcome = \"false\"`, `if (...) {...} else {...}` and `logger.<level>(...)`; " +
	"values are string, number, true/false and null literals, " +
	"transientState/sharedState/nodeState.get(\"" + VerifiedClaimsKey + "\"), " +
	"and a claim of it read with .get(\"name\"), [\"name\"] or .name, optionally followed by .asString() or .toString(); " +
	"operators are == != === !== < <= > >= && || ! + and parentheses"

// maxDepth bounds the nesting of expressions and blocks, so that a
// hostile script cannot exhaust the parser's stack.
const maxDepth = 64

// maxBytes bounds the source the parser reads.
const maxBytes = 64 << 10

// Error is a script outside the subset, with its position.
type Error struct {
	line, col int
	msg       string
}

func (e *Error) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.line, e.col, e.msg)
}

// Program is a compiled decision script.
type Program struct {
	lang     string // GROOVY or JAVASCRIPT
	body     []stmt
	outcomes []string // every literal assigned to outcome
}

// Outcomes are the literals the script may assign to outcome, in the
// order they first appear.
func (d *Program) Outcomes() []string { return slices.Clone(d.outcomes) }
