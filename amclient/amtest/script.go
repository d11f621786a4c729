package amtest

import "github.com/thingway/thingway/amclient/amtest/internal/script"

// VerifiedClaimsKey is the node-state key under which the Authenticate Thing
// node leaves the claims of the JWT it verified, in both shared and
// transient state.
const VerifiedClaimsKey = script.VerifiedClaimsKey

// ScriptSubset describes the scripts a ScriptedDecisionNode may run in the
// local AM, which has no Groovy or JavaScript engine. It is part of the 400
// answer to a node whose script is outside the subset.
const ScriptSubset = script.Subset
