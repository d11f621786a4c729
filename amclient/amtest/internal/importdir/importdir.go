package importdir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/config"
	"github.com/thingway/thingway/amclient/amtest/internal/crest"
)

// Admin is how an import reaches the local AM: its HTTP handler, the
// deployment path under which it serves /json (such as /openam; empty for
// none), and an administrator's session, sent in the cookie header
// CookieName.
type Admin struct {
	Handler    http.Handler
	Base       string
	CookieName string
	Token      string
}

// Apply applies the directory fsys, in the layout of the package doc, to
// the server behind a through its admin REST API: the secret mappings,
// then the top-level realm and, under it, each sub-realm. It stops at the
// first call that fails and returns its error, naming the file.
func Apply(fsys fs.FS, a Admin) error {
	im := &importer{a: a, fsys: fsys}
	if err := im.secretMappings(); err != nil {
		return err
	}
	return im.realm(".", "/")
}

type importer struct {
	a    Admin
	fsys fs.FS
}

// call makes one admin REST call; it fails unless the status is one of ok.
func (im *importer) call(file, method, p string, q url.Values, body []byte, version string, ok ...int) (int, error) {
	u := im.a.Base + "/json/" + p
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req := httptest.NewRequest(method, u, bytes.NewReader(body))
	req.Host = "localhost"
	req.Header.Set("Accept-API-Version", version)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(im.a.CookieName, im.a.Token)
	w := httptest.NewRecorder()
	im.a.Handler.ServeHTTP(w, req)
	for _, c := range ok {
		if w.Code == c {
			return w.Code, nil
		}
	}
	var e crest.ErrorBody
	msg := strings.TrimSpace(w.Body.String())
	if json.Unmarshal(w.Body.Bytes(), &e) == nil && e.Message != "" {
		msg = e.Message
	}
	return w.Code, fmt.Errorf("%s: %s %s: %d %s", file, method, "/json/"+p, w.Code, msg)
}

// query returns the realm query parameter and the given pairs.
func query(realm string, kv ...string) url.Values {
	q := url.Values{}
	if realm != "" {
		q.Set("realm", realm)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

// Accept-API-Version values of the admin calls (am-protocol.md §11.1).
const (
	verRealmConfig = "protocol=2.0,resource=1.0"
	verServiceRead = "protocol=1.0,resource=1.0"
	verScripts     = "protocol=1.0,resource=1.0"
	verRealms      = "resource=1.0, protocol=2.0"
)

// jsonFiles returns the .json files directly in dir, sorted, or none if dir
// does not exist.
func (im *importer) jsonFiles(dir string) ([]string, error) {
	names, err := im.entries(dir, func(e fs.DirEntry) bool { return !e.IsDir() && strings.HasSuffix(e.Name(), ".json") })
	for i, n := range names {
		names[i] = path.Join(dir, n)
	}
	return names, err
}

// subdirs returns the directories directly in dir, sorted.
func (im *importer) subdirs(dir string) ([]string, error) {
	return im.entries(dir, fs.DirEntry.IsDir)
}

// entries returns the names of the entries directly in dir that keep
// accepts, sorted, or none if dir does not exist.
func (im *importer) entries(dir string, keep func(fs.DirEntry) bool) ([]string, error) {
	entries, err := fs.ReadDir(im.fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if keep(e) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func (im *importer) read(file string) ([]byte, error) {
	b, err := fs.ReadFile(im.fsys, file)
	if err != nil {
		return nil, err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil || probe == nil {
		return nil, fmt.Errorf("%s is not a JSON object", file)
	}
	return b, nil
}

func baseName(file string) string { return strings.TrimSuffix(path.Base(file), ".json") }

func (im *importer) secretMappings() error {
	files, err := im.jsonFiles("secrets/mappings")
	if err != nil {
		return err
	}
	return im.putFiles(files, nil, verRealmConfig, func(f string, _ []byte) string {
		return pathGlobal + crest.PathSecretMappings + "/" + url.PathEscape(baseName(f))
	})
}

// putFiles PUTs each of files, in order, at the path that at gives for the
// file and its object (an answer of 200 or 201).
func (im *importer) putFiles(files []string, q url.Values, version string, at func(f string, b []byte) string) error {
	for _, f := range files {
		b, err := im.read(f)
		if err != nil {
			return err
		}
		if _, err := im.call(f, http.MethodPut, at(f, b), q, b, version, http.StatusOK, http.StatusCreated); err != nil {
			return err
		}
	}
	return nil
}

// objectID is the _id of a file's object, or the file's name without
// .json if it has none.
func objectID(f string, b []byte) string {
	var head struct {
		ID string `json:"_id"`
	}
	if json.Unmarshal(b, &head) == nil && head.ID != "" {
		return head.ID
	}
	return baseName(f)
}

const pathGlobal = "global-config/"

// realm applies dir to the realm at path, then its sub-realms.
func (im *importer) realm(dir, realm string) error {
	join := func(p string) string { return path.Join(dir, p) }

	// Services.
	var services [][2]string // type, file
	files, err := im.jsonFiles(join("services"))
	if err != nil {
		return err
	}
	for _, f := range files {
		services = append(services, [2]string{baseName(f), f})
	}
	types, err := im.subdirs(join("services"))
	if err != nil {
		return err
	}
	for _, t := range types {
		files, err := im.jsonFiles(join("services/" + t))
		if err != nil {
			return err
		}
		for _, f := range files {
			services = append(services, [2]string{t, f})
		}
	}
	for _, sv := range services {
		b, err := im.read(sv[1])
		if err != nil {
			return err
		}
		p := "realm-config/services/" + url.PathEscape(sv[0])
		code, err := im.call(sv[1], http.MethodPost, p, query(realm, "_action", "create"), b, verRealmConfig, http.StatusCreated, http.StatusConflict)
		if err != nil {
			return err
		}
		if code == http.StatusConflict {
			if _, err := im.call(sv[1], http.MethodPut, p, query(realm), b, verServiceRead, http.StatusOK); err != nil {
				return err
			}
		}
	}

	// Scripts, before the nodes that run them.
	if files, err = im.jsonFiles(join("scripts")); err != nil {
		return err
	}
	if err := im.putFiles(files, query(realm), verScripts, func(f string, b []byte) string {
		return "scripts/" + url.PathEscape(objectID(f, b))
	}); err != nil {
		return err
	}

	// Nodes, at any depth (iot-edge groups them in dependent/ and
	// independent/): the type is the file's directory.
	var nodes []string
	err = fs.WalkDir(im.fsys, join("nodes"), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == join("nodes") {
			return fs.SkipDir
		}
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".json") {
			nodes = append(nodes, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Nodes without dependencies first, as iot-edge orders them.
	sort.SliceStable(nodes, func(i, j int) bool {
		return strings.Contains(nodes[i], "/independent/") && !strings.Contains(nodes[j], "/independent/")
	})
	if err := im.putFiles(nodes, query(realm), verRealmConfig, func(f string, _ []byte) string {
		typ := path.Base(path.Dir(f))
		return "realm-config/authentication/authenticationtrees/nodes/" + url.PathEscape(typ) + "/" + url.PathEscape(baseName(f))
	}); err != nil {
		return err
	}

	// Trees.
	if files, err = im.jsonFiles(join("trees")); err != nil {
		return err
	}
	if err := im.putFiles(files, query(realm), verRealmConfig, func(f string, _ []byte) string {
		return "realm-config/authentication/authenticationtrees/trees/" + url.PathEscape(baseName(f))
	}); err != nil {
		return err
	}

	// Agents, after the services (the IoT Service creates its client).
	type agentFile struct{ typ, file string }
	var agents []agentFile
	if files, err = im.jsonFiles(join("agents")); err != nil {
		return err
	}
	for _, f := range files {
		b, err := im.read(f)
		if err != nil {
			return err
		}
		typ, err := agentTypeOf(b)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		agents = append(agents, agentFile{typ, f})
	}
	if types, err = im.subdirs(join("agents")); err != nil {
		return err
	}
	for _, t := range types {
		files, err := im.jsonFiles(join("agents/" + t))
		if err != nil {
			return err
		}
		for _, f := range files {
			agents = append(agents, agentFile{t, f})
		}
	}
	agentFiles := make([]string, len(agents))
	typeOf := map[string]string{}
	for i, a := range agents {
		agentFiles[i], typeOf[a.file] = a.file, a.typ
	}
	if err := im.putFiles(agentFiles, query(realm), verRealmConfig, func(f string, b []byte) string {
		return "realm-config/agents/" + url.PathEscape(typeOf[f]) + "/" + url.PathEscape(objectID(f, b))
	}); err != nil {
		return err
	}

	// Sub-realms.
	children, err := im.subdirs(join("realms"))
	if err != nil {
		return err
	}
	for _, name := range children {
		child := crest.NormRealmPath(realm + "/" + name)
		cdir := join("realms/" + name)
		body := map[string]any{"name": name, "parentPath": realm, "active": true, "aliases": []string{}}
		given := false
		if b, err := fs.ReadFile(im.fsys, path.Join(cdir, "realm.json")); err == nil {
			var rj struct {
				Aliases []string `json:"aliases"`
				Active  *bool    `json:"active"`
			}
			if err := json.Unmarshal(b, &rj); err != nil {
				return fmt.Errorf("%s: %w", path.Join(cdir, "realm.json"), err)
			}
			if rj.Aliases != nil {
				body["aliases"] = rj.Aliases
			}
			if rj.Active != nil {
				body["active"] = *rj.Active
			}
			given = true
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		b, _ := json.Marshal(body)
		code, err := im.call(cdir, http.MethodPost, pathGlobal+"realms", query("", "_action", "create"), b, verRealms, http.StatusCreated, http.StatusConflict)
		if err != nil {
			return err
		}
		if code == http.StatusConflict && given {
			if _, err := im.call(cdir, http.MethodPut, pathGlobal+"realms/"+crest.RealmID(child), nil, b, verRealms, http.StatusOK); err != nil {
				return err
			}
		}
		if err := im.realm(cdir, child); err != nil {
			return err
		}
	}
	return nil
}

// agentTypeOf tells an agent's type from its "_type", or from settings
// only that type has.
func agentTypeOf(b []byte) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return "", err
	}
	var t config.TypeRef
	if raw, ok := m["_type"]; ok && json.Unmarshal(raw, &t) == nil && t.ID != "" {
		return t.ID, nil
	}
	has := func(k string) bool { _, ok := m[k]; return ok }
	switch {
	case has("coreOAuth2ClientConfig"):
		return config.AgentOAuth2Client, nil
	case has("softwareStatementSigningAlgorithm"):
		return config.AgentSoftwarePublisher, nil
	case has("consentedScopesClaim") || has("resourceOwnerIdentityClaim"):
		return config.AgentTrustedJWTIssuer, nil
	}
	return "", errors.New(`cannot tell the agent's type: give "_type": {"_id": "<AgentType>"} or put the file in agents/<AgentType>/`)
}
