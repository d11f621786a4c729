// Package members is the local AM's JSON codec for configuration objects
// that keep the members they do not interpret: what an administrator
// writes to AM (a service, an agent, a script, a tree) is what a read
// returns, although the local AM's Go types hold only the settings it
// acts on. [Unmarshal] and [Marshal] are the one pair of functions every
// such type's UnmarshalJSON and MarshalJSON calls; [Split], [Merge] and
// [UnknownOnly] are the steps they are made of, for the shapes that need
// more (AM's agents with {"value", "inherited"} wrappers).
//
// It owns the JSON object plumbing only, and knows one thing of AM: the
// CREST metadata members ([CRESTMeta]) that the REST layer computes and a
// stored object never holds. It imports only the standard library: no
// package of the module, so that it knows nothing of the configuration
// types that use it.
package members
