package admin

import (
	"encoding/json"
	"net/http"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

// The admin REST API of a realm's services (iot, oauth-oidc).

var serviceTypes = map[string]map[string]any{
	"iot":        {"_id": "iot", "name": "IoT Service", "collection": false},
	"oauth-oidc": {"_id": "oauth-oidc", "name": "OAuth2 Provider", "collection": false},
}

// service returns the realm's service of type typ, or nil.
func service(r *config.Realm, typ string) any {
	switch typ {
	case "iot":
		if r.IoT != nil {
			return r.IoT
		}
	case "oauth-oidc":
		if r.OAuth2 != nil {
			return r.OAuth2
		}
	}
	return nil
}

func (e *Env) serviceResource(status int, typ string, v any) error {
	return e.writeResource(status, "", v, map[string]any{"_type": serviceTypes[typ]})
}

func (e *Env) services(typ string) error {
	if serviceTypes[typ] == nil {
		return crest.Err(http.StatusNotFound, "Service "+typ+" is not supported by the local AM (iot, oauth-oidc)")
	}
	notFound := crest.Err(http.StatusNotFound, "Service "+typ+" is not configured in realm "+e.Realm)
	switch e.R.Method {
	case http.MethodGet:
		v := service(e.realm(), typ)
		if v == nil {
			return notFound
		}
		return e.serviceResource(http.StatusOK, typ, v)
	case http.MethodDelete:
		var gone any
		_, err := e.inRealm(func(_ *config.Config, r *config.Realm) error {
			if gone = service(r, typ); gone == nil {
				return notFound
			}
			if typ == "iot" {
				r.IoT = nil
			} else {
				r.OAuth2 = nil
			}
			return nil
		})
		if err != nil {
			return err
		}
		crest.WriteJSON(e.W, http.StatusOK, map[string]any{"_id": "", "_rev": "0", "success": true})
		return nil
	case http.MethodPost:
		if _, err := e.action("create"); err != nil {
			return err
		}
		return e.putService(typ, true)
	case http.MethodPut:
		return e.putService(typ, false)
	}
	return methodNotAllowed()
}

// putService creates (create: POST _action=create, or PUT with
// If-None-Match: *) or updates a service. An update changes the members
// given and keeps the others, as AM does.
func (e *Env) putService(typ string, create bool) error {
	body, _, err := e.objectBody()
	if err != nil {
		return err
	}
	if e.R.Header.Get("If-None-Match") == "*" {
		create = true
	}
	created := false
	r, err := e.inRealm(func(cfg *config.Config, r *config.Realm) error {
		existing := service(r, typ)
		switch {
		case create && existing != nil && e.R.Method == http.MethodPut:
			return crest.Err(http.StatusPreconditionFailed, "Service Already Exists")
		case create && existing != nil:
			return crest.Err(http.StatusConflict, "Service already exists")
		case !create && existing == nil:
			return crest.Err(http.StatusNotFound, "Service "+typ+" is not configured in realm "+e.Realm)
		}
		created = existing == nil
		bad := func(err error) error {
			return crest.Err(http.StatusBadRequest, "Invalid "+typ+" configuration: "+err.Error())
		}
		switch typ {
		case "iot":
			svc := config.DefaultIoTService()
			svc.CreateOAuthClient, svc.CreateOAuthJWTIssuer = false, false
			if !created {
				svc = r.IoT
			}
			if err := json.Unmarshal(body, svc); err != nil {
				return bad(err)
			}
			r.IoT = svc
			e.createIoTAgents(r)
		case "oauth-oidc":
			p := config.DefaultOAuth2Provider()
			if !created {
				p = r.OAuth2
			}
			if err := json.Unmarshal(body, p); err != nil {
				return bad(err)
			}
			r.OAuth2 = p
		}
		return nil
	})
	if err != nil {
		return err
	}
	return e.serviceResource(putStatus(created), typ, service(r, typ))
}

// createIoTAgents makes the agents the IoT Service creates when asked: its
// OAuth 2.0 client (JWT bearer, device code and refresh token grants, no
// scopes, a generated secret) and its trusted JWT issuer.
func (e *Env) createIoTAgents(r *config.Realm) {
	svc := r.IoT
	if svc.CreateOAuthClient && svc.OAuthClientName != "" && r.OAuth2Clients[svc.OAuthClientName] == nil {
		if r.OAuth2Clients == nil {
			r.OAuth2Clients = map[string]*config.OAuth2Client{}
		}
		r.OAuth2Clients[svc.OAuthClientName] = &config.OAuth2Client{Secret: e.RandomID(24),
			GrantTypes: []string{config.GrantJWTBearer, config.GrantDeviceCode, config.GrantRefreshToken}}
	}
	if svc.CreateOAuthJWTIssuer && svc.OAuthJWTIssuerName != "" && r.TrustedJWTIssuers[svc.OAuthJWTIssuerName] == nil {
		if r.TrustedJWTIssuers == nil {
			r.TrustedJWTIssuers = map[string]*config.TrustedJWTIssuer{}
		}
		r.TrustedJWTIssuers[svc.OAuthJWTIssuerName] = config.IoTJWTIssuer()
	}
}
