package oauth2

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

// javaSet formats scopes as AM's messages do: [a, b].
func javaSet(s []string) string { return "[" + strings.Join(s, ", ") + "]" }

// validateScopes applies AM's default scope validator: the requested
// scopes, each one of the client's, or without any the client's default
// scopes.
func validateScopes(requested []string, cl *config.OAuth2Client) ([]string, error) {
	if len(requested) == 0 {
		if len(cl.DefaultScopes) == 0 {
			return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_scope", "No scope requested and no default scope configured")
		}
		return append([]string(nil), cl.DefaultScopes...), nil
	}
	var bad []string
	for _, sc := range requested {
		if !slices.Contains(cl.Scopes, sc) {
			bad = append(bad, sc)
		}
	}
	if len(bad) > 0 {
		return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_scope", "Unknown/invalid scope(s): "+javaSet(bad))
	}
	return dedupe(requested), nil
}

// refreshScopes are the scopes of a refreshed token: those of the
// refresh token, or the requested ones when they are among them.
func refreshScopes(granted, requested []string) ([]string, error) {
	if len(requested) == 0 {
		return granted, nil
	}
	var extra []string
	for _, sc := range requested {
		if !slices.Contains(granted, sc) {
			extra = append(extra, sc)
		}
	}
	if len(extra) > 0 {
		return nil, crest.OAuthErr(http.StatusBadRequest, "invalid_scope", "Scope parameter is not a subset of the original scope: "+javaSet(extra))
	}
	return dedupe(requested), nil
}

// dedupe drops empty and repeated scopes, keeping the first of each.
func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// lifetime is a client's lifetime in seconds when it sets one, else the
// provider's.
func lifetime(client, provider int64) time.Duration {
	if client > 0 {
		return time.Duration(client) * time.Second
	}
	return time.Duration(provider) * time.Second
}
