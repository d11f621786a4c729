package config

import (
	"encoding/json"
	"fmt"
)

// Clone returns a deep copy of c, made through its JSON form, with the
// defaults of the settings a server needs filled in: the cookie name
// iPlanetDirectoryPro, the administrator amAdmin/changeit, a realm map.
// The OAuth 2.0 client secrets, which the JSON form leaves out, are
// carried over.
func Clone(c *Config) (*Config, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	out := &Config{}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	// Client secrets are never marshalled; carry them over.
	SetClientSecrets(out, ClientSecrets(c))
	if out.CookieName == "" {
		out.CookieName = "iPlanetDirectoryPro"
	}
	if out.AdminUser == "" {
		out.AdminUser = "amAdmin"
	}
	if out.AdminPassword == "" {
		out.AdminPassword = "changeit"
	}
	if out.Realms == nil {
		out.Realms = map[string]*Realm{}
	}
	return out, nil
}

// ClientSecrets returns the OAuth 2.0 client secrets of c by realm and
// client, those that are set.
func ClientSecrets(c *Config) map[string]map[string]string {
	out := map[string]map[string]string{}
	for p, r := range c.Realms {
		if r == nil {
			continue
		}
		for id, cl := range r.OAuth2Clients {
			if cl != nil && cl.Secret != "" {
				if out[p] == nil {
					out[p] = map[string]string{}
				}
				out[p][id] = cl.Secret
			}
		}
	}
	return out
}

// SetClientSecrets puts secrets (by realm and client, as [ClientSecrets]
// returns them) back on the clients of c that exist.
func SetClientSecrets(c *Config, secrets map[string]map[string]string) {
	for p, clients := range secrets {
		r := c.Realms[p]
		if r == nil {
			continue
		}
		for id, secret := range clients {
			if cl := r.OAuth2Clients[id]; cl != nil {
				cl.Secret = secret
			}
		}
	}
}
