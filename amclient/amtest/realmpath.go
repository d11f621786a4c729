package amtest

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

// How a request names its realm: the realm path of /json and /oauth2 URLs,
// the realm query parameter, a DNS alias of the Host header, and the realm
// part of the OAuth 2.0 URLs the answer gives back.

// splitRealmPath consumes "realms/root/realms/a/realms/b/" from the front of
// p and returns the realm path it names ("" when p has no realm part).
func splitRealmPath(p string) (realm, rest string, err error) {
	if !strings.HasPrefix(p, "realms/") {
		return "", p, nil
	}
	segs := strings.Split(p, "/")
	if len(segs) < 2 || segs[1] != "root" {
		return "", "", errors.New("a realm path starts with realms/root")
	}
	i := 2
	var parts []string
	for i+1 < len(segs) && segs[i] == "realms" {
		name, err := url.PathUnescape(segs[i+1])
		if err != nil || name == "" {
			return "", "", errors.New("bad realm name")
		}
		parts = append(parts, name)
		i += 2
	}
	return "/" + strings.Join(parts, "/"), strings.Join(segs[i:], "/"), nil
}

// resolveRealm picks the request's realm: the realm query parameter, then a
// realm in the path, then a DNS alias matching the Host header, then the
// top-level realm.
func (s *Server) resolveRealm(c *reqCtx, pathRealm string) error {
	q := c.r.URL.Query()
	if v, ok := q["realm"]; ok && len(v) > 0 && v[0] != "" {
		p, ok := findRealm(c.cfg, v[0], c.inactiveOK)
		if !ok {
			return crest.Err(http.StatusBadRequest, "Invalid realm, "+v[0])
		}
		c.realm = p
	} else if pathRealm != "" {
		if r, ok := c.cfg.Realms[pathRealm]; !ok || !(config.RealmActive(r) || c.inactiveOK) {
			return crest.Err(http.StatusNotFound, "Realm \""+pathRealm+"\" not found")
		}
		c.realm = pathRealm
	} else {
		c.realm = "/"
		if p, ok := dnsRealm(c.cfg, c.r.Host); ok {
			c.realm, c.viaDNS = p, true
		}
	}
	c.rc = c.cfg.Realms[c.realm]
	return nil
}

// dnsRealm returns the active realm with a DNS alias (an alias containing
// a dot) equal to host's name.
func dnsRealm(cfg *Config, host string) (string, bool) {
	host = strings.ToLower(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	for _, p := range config.SortedKeys(cfg.Realms) {
		r := cfg.Realms[p]
		for _, a := range r.Aliases {
			if strings.Contains(a, ".") && strings.EqualFold(a, host) && config.RealmActive(r) {
				return p, true
			}
		}
	}
	return "", false
}

// lookupRealm resolves a realm query value: an absolute path, an alias, or
// the bare name of a child of the top-level realm.
func lookupRealm(cfg *Config, v string) (string, bool) { return findRealm(cfg, v, false) }

// findRealm is lookupRealm that, with inactive, also finds inactive realms
// (which only the realm configuration endpoints address).
func findRealm(cfg *Config, v string, inactive bool) (string, bool) {
	usable := func(r *Realm) bool { return r != nil && (inactive || config.RealmActive(r)) }
	if strings.HasPrefix(v, "/") {
		p := "/" + strings.Trim(v, "/")
		return p, usable(cfg.Realms[p])
	}
	for _, p := range config.SortedKeys(cfg.Realms) {
		r := cfg.Realms[p]
		for _, a := range r.Aliases {
			if strings.EqualFold(a, v) && usable(r) {
				return p, true
			}
		}
	}
	p := "/" + strings.Trim(v, "/")
	return p, usable(cfg.Realms[p])
}

// realmURLPart is the realm's part of OAuth 2.0 URLs: "" for the top-level
// realm and DNS-aliased requests, else /realms/root/realms/a/realms/b.
func (c *reqCtx) realmURLPart() string {
	if c.realm == "/" || c.viaDNS {
		return ""
	}
	return realmJSONPath(c.realm)
}

// issuer is the realm's OAuth 2.0 issuer URL.
func (c *reqCtx) issuer() string { return c.base + "/oauth2" + c.realmURLPart() }

// realmJSONPath is the realm part of the URLs the answers give back:
// /realms/root, then /realms/<name> for each part of the realm path.
func realmJSONPath(realm string) string {
	p := "/realms/root"
	for _, part := range strings.Split(strings.Trim(realm, "/"), "/") {
		if part != "" {
			p += "/realms/" + part
		}
	}
	return p
}
