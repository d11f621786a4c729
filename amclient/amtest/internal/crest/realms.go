package crest

import (
	"encoding/base64"
	"strings"
)

// PathSecretMappings is where the global configuration keeps the default
// keystore's secret mappings (under /json/global-config/).
const PathSecretMappings = "secrets/stores/KeyStoreSecretStore/default-keystore/mappings"

// RealmID is a realm's _id in the realms endpoint: its path in standard
// base64.
func RealmID(path string) string { return base64.StdEncoding.EncodeToString([]byte(path)) }

// RealmPathOf decodes a realm _id, in any of the base64 forms clients send.
func RealmPathOf(id string) (string, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(id); err == nil && len(b) > 0 && b[0] == '/' {
			return string(b), true
		}
	}
	return "", false
}

// NormRealmPath is a realm path with one leading slash and no empty
// segments ("a//b/" is "/a/b", "" is "/").
func NormRealmPath(p string) string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return "/" + strings.Join(parts, "/")
}
