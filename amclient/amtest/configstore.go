package amtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/admin"
	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/identities"
	"github.com/thingway/thingway/amclient/amtest/internal/oauth2"
)

// configRecord is the journal's configuration record: the whole
// configuration, with the OAuth 2.0 client secrets that the configuration's
// JSON form leaves out.
type configRecord struct {
	Config  *Config                      `json:"config"`
	Secrets map[string]map[string]string `json:"secrets,omitempty"` // realm → client → secret
	Saved   time.Time                    `json:"saved"`
}

// restoreConfig decodes a configuration record. The settings that the
// admin REST API cannot change (cookie name, administrator, keystore) come
// from base, so that a restart with new ones takes effect.
func restoreConfig(rec json.RawMessage, base *Config) (*Config, error) {
	var in configRecord
	if err := json.Unmarshal(rec, &in); err != nil {
		return nil, err
	}
	if in.Config == nil {
		return nil, errors.New("the record holds no configuration")
	}
	config.SetClientSecrets(in.Config, in.Secrets)
	in.Config.CookieName, in.Config.AdminUser, in.Config.AdminPassword = base.CookieName, base.AdminUser, base.AdminPassword
	in.Config.KeystoreAliases = base.KeystoreAliases
	cfg, err := config.Clone(in.Config)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := config.ValidatePublishers(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// changeConfig makes an administrative change (the admin API's
// [admin.Env.Change]): f modifies a copy of the configuration in force; if
// the whole result is valid ([admin.Apply]) it is persisted (with a data
// directory) and swapped in. Otherwise nothing changes: either all of f's
// change is in force afterwards, or none of it. f may return an
// *crest.Error for AM's answer; validation failures are 400.
func (s *Server) changeConfig(f func(cfg *Config) error) (*Config, error) {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	next, err := admin.Apply(s.config(), f)
	if err != nil {
		return nil, err
	}
	rec, err := json.Marshal(&configRecord{Config: next, Secrets: config.ClientSecrets(next), Saved: s.now().UTC()})
	if err != nil {
		return nil, fmt.Errorf("persist configuration: %w", err)
	}
	raw := json.RawMessage(rec)
	if err := s.put(kindConfig, configKey, &raw); err != nil {
		return nil, fmt.Errorf("persist configuration: %w", err)
	}
	s.cfg.Store(next)
	return next, nil
}

// purgeRealm removes the state of a realm that no longer exists: its
// identities, sessions, grants, tokens, device codes and authentications
// in progress, in one transaction.
func (s *Server) purgeRealm(realm string) error {
	err := s.db.Update(func(tx storeTx) error {
		type rec struct{ kind, key string }
		var gone []rec
		grants := map[string]bool{}
		collect := func(kind, prefix string, match func(decode func(any) error) (bool, error)) error {
			return tx.Scan(kind, prefix, "", func(key string, decode func(any) error) (bool, error) {
				ok, err := match(decode)
				if ok {
					gone = append(gone, rec{kind, key})
				}
				return err == nil, err
			})
		}
		if err := identities.Scan(tx, realm, "", func(okey string, x *identity) (bool, error) {
			gone = append(gone, rec{kindIdentity, identities.StoreKey(x.Realm, x.ID)}, rec{kindIdentityOrder, okey})
			return true, nil
		}); err != nil {
			return err
		}
		if err := collect(kindSession, "", func(decode func(any) error) (bool, error) {
			var x session
			err := decode(&x)
			return err == nil && x.Realm == realm, err
		}); err != nil {
			return err
		}
		for _, r := range gone {
			if r.kind == kindSession {
				gone = append(gone, rec{kindNonce, r.key})
			}
		}
		if err := tx.Scan(kindGrant, "", "", func(key string, decode func(any) error) (bool, error) {
			var g grant
			if err := decode(&g); err != nil {
				return false, err
			}
			if g.Realm == realm {
				grants[key] = true
				gone = append(gone, rec{kindGrant, key})
			}
			return true, nil
		}); err != nil {
			return err
		}
		if err := collect(kindToken, "", func(decode func(any) error) (bool, error) {
			var t token
			err := decode(&t)
			return err == nil && grants[t.GrantID], err
		}); err != nil {
			return err
		}
		if err := tx.Scan(kindDevice, "", "", func(key string, decode func(any) error) (bool, error) {
			var d deviceCode
			if err := decode(&d); err != nil {
				return false, err
			}
			if d.Realm == realm {
				gone = append(gone, rec{kindDevice, key}, rec{kindUserCode, oauth2.CanonicalUserCode(d.UserCode)})
			}
			return true, nil
		}); err != nil {
			return err
		}
		for _, r := range gone {
			if err := tx.Del(r.kind, r.key); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return storeErr(err)
	}
	s.st.mu.Lock()
	for id, a := range s.st.auths {
		if a.Realm == realm {
			delete(s.st.auths, id)
		}
	}
	s.st.mu.Unlock()
	return nil
}
