// Package identities is the local AM's identity store without the HTTP
// around it: the identities of a realm, things and people alike, as AM's
// identity store keeps them. It owns
//
//   - the record ([Identity]): its realm, ID, attributes as lists of
//     strings (JSON values, thingKeys among them, as JSON text), password
//     hash, creation time and revision; the defaults of a new one ([New]:
//     AM's object classes, cn, sn, uid, inetUserStatus) and the rule for
//     its name ([ValidName])
//   - AM's JSON of an identity, both ways: a request body's attributes
//     stored as AM stores them ([Identity.SetFromJSON], [FromJSON]: strings
//     as one value, arrays one value per element, null removes, read-only
//     and _-prefixed members ignored, thingKeys checked to be a JWK set),
//     and the identity as the identity endpoint renders it per API version
//     and _fields ([Identity.JSON], [Identity.Filtered])
//   - a thing's confirmation keys in its thingKeys ([Identity.ThingKeys])
//   - passwords: the PBKDF2-SHA256 hash kept in place of userPassword
//     ([HashPassword], [CheckPasswordHash]) and an identity's password
//     check ([Identity.CheckPassword]: inactive users fail), and the
//     constant-time compare of secrets ([ConstantTimeEqual])
//   - the records in the server's store: their kinds ([Kind], and
//     [OrderKind], the index in _id order that queries read), keys
//     ([StoreKey]: realm and lower-case ID, as names compare), writing and
//     deleting an identity with its place in the order ([Put], [Delete])
//     and reading a realm's in order ([Scan])
//   - the query of the identity endpoint ([ParseQuery], [Query.Run]):
//     _queryFilter=true and _queryId, _sortKeys, and paging as AM's CREST
//     pages (_pageSize, _pagedResultsCookie, _pagedResultsOffset,
//     _totalPagedResultsPolicy), reading the order index and decoding only
//     the page's identities
//
// The HTTP side is amclient/amtest's: the identity endpoint's handlers
// (/json/users and /json/realms/.../users/{id}: the caller's session and
// rights, the request's body and preconditions, the answers and their
// Location), the transactions of the server's store around [Put] and
// [Delete], the administrator's name and password (configuration), and
// EnsureUser. The journeys (internal/journey) read and change identities
// of this type through their Env, and take the name rule and the
// attribute value of a claim ([AttrValue]) from here.
//
// It is the room to edit to change what an identity holds, how AM's JSON
// maps to it, how passwords are hashed or what a query answers. It must
// not import amclient/amtest nor a room above it (internal/journey,
// internal/oauth2), nor the client's wire vocabulary (callback), nor the
// web pages (internal/pages, html/template): only internal/crest (its
// errors and paging parameters), internal/proof (JWK sets),
// internal/store, internal/tokens (random values), go-jose and the
// standard library. Its password hash costs nothing until a password is
// hashed or checked: no package-level value computes one.
package identities
