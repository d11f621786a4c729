// Package crest is the local AM's ForgeRock Common REST plumbing: errors
// that know how AM answers them ([Error]: a CREST body on /json, an
// RFC 6749 body on /oauth2, a detail for the log only), the JSON answer
// with AM's headers, the Accept-API-Version header, and queries: the
// _queryFilter the local AM evaluates, paging parameters and the answer's
// shape.
//
// It owns the wire shape of answers, not what they say: the endpoints,
// their resources and messages are amclient/amtest's and its rooms' (the
// admin API's are amclient/amtest/internal/admin's, OAuth 2.0's
// amclient/amtest/internal/oauth2's). It must not import
// amclient/amtest nor any other package of the module.
package crest
