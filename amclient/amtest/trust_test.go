package amtest_test

// Trust-path hardening (issue 11): one table row per attack of the
// external attack matrix, each over real HTTP against a real server, each
// asserting AM's status and body, that nothing was stored, and that the
// server's log says why.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/internal/examplepki"
)

// logBuffer collects a server's log; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

func (l *logBuffer) since(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()[n:]
}

// logTo makes the server log into lb.
func logTo(lb *logBuffer) func(*amtest.Server) {
	return func(s *amtest.Server) {
		s.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
}

// expectLogged checks that the log written since mark gives the reason.
func expectLogged(t testing.TB, lb *logBuffer, mark int, reason string) {
	t.Helper()
	if got := lb.since(mark); !strings.Contains(got, reason) {
		t.Errorf("log does not say %q:\n%s", reason, got)
	}
}

// identityCount is the number of identities in the top-level realm.
func (c *client) identityCount(admin string) int {
	c.t.Helper()
	r := c.do("GET", c.srv.URL+"/json/realms/root/users?_queryFilter=true", nil,
		"Accept-API-Version: resource=4.0, protocol=2.1", "iPlanetDirectoryPro: "+admin)
	n, ok := expectStatus(c.t, r, 200)["resultCount"].(float64)
	if !ok {
		c.t.Fatalf("no resultCount: %s", r.body)
	}
	return int(n)
}

// --- certificates made at run time ---

// certSpec describes a certificate for mintCert.
type certSpec struct {
	cn     string
	nb, na time.Time
	// ext adds basicConstraints (with cA) and keyUsage; without it the
	// certificate is v3 with no extensions but the authority key ID, like
	// the iot-edge harness's thing certificates.
	ext      bool
	ca       bool
	keyUsage x509.KeyUsage
	pathLen  int // with ca: -1 for none
	permit   []string
}

// mintCert issues a certificate for pub signed by parent's key (self-signed
// when parent is nil).
func mintCert(t testing.TB, pub crypto.PublicKey, sp certSpec, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: sp.cn}, NotBefore: sp.nb, NotAfter: sp.na}
	if sp.ext {
		tmpl.BasicConstraintsValid, tmpl.IsCA, tmpl.KeyUsage = true, sp.ca, sp.keyUsage
		tmpl.PermittedDNSDomains = sp.permit
		if sp.ca {
			tmpl.MaxPathLen, tmpl.MaxPathLenZero = sp.pathLen, sp.pathLen == 0
		}
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// tbsCertificate is RFC 5280's TBSCertificate, enough of it to re-encode.
type tbsCertificate struct {
	Raw        asn1.RawContent
	Version    int `asn1:"optional,explicit,default:0,tag:0"`
	Serial     *big.Int
	SigAlg     pkix.AlgorithmIdentifier
	Issuer     asn1.RawValue
	Validity   asn1.RawValue
	Subject    asn1.RawValue
	PublicKey  asn1.RawValue
	Extensions []pkix.Extension `asn1:"omitempty,optional,explicit,tag:3"`
}

var (
	oidECDSAWithSHA1   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
)

// asV1 re-encodes cert as X.509 v1 (no version field, no extensions),
// signed again by signer with ECDSA-SHA256, or ECDSA-SHA1 with sha1Sig:
// what "openssl x509 -req" makes without an extensions file.
func asV1(t testing.TB, cert *x509.Certificate, signer *ecdsa.PrivateKey, sha1Sig bool) *x509.Certificate {
	t.Helper()
	var tbs tbsCertificate
	if _, err := asn1.Unmarshal(cert.RawTBSCertificate, &tbs); err != nil {
		t.Fatal(err)
	}
	tbs.Raw, tbs.Version, tbs.Extensions = nil, 0, nil
	tbs.SigAlg = pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256}
	if sha1Sig {
		tbs.SigAlg.Algorithm = oidECDSAWithSHA1
	}
	der, err := asn1.Marshal(tbs)
	if err != nil {
		t.Fatal(err)
	}
	var digest []byte
	if sha1Sig {
		h := sha1.Sum(der)
		digest = h[:]
	} else {
		h := sha256.Sum256(der)
		digest = h[:]
	}
	sig, err := ecdsa.SignASN1(rand.Reader, signer, digest)
	if err != nil {
		t.Fatal(err)
	}
	full, err := asn1.Marshal(struct {
		TBS    asn1.RawValue
		SigAlg pkix.AlgorithmIdentifier
		Sig    asn1.BitString
	}{asn1.RawValue{FullBytes: der}, tbs.SigAlg, asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := x509.ParseCertificate(full)
	if err != nil {
		t.Fatal(err)
	}
	if out.Version != 1 || len(out.Extensions) != 0 {
		t.Fatalf("asV1 made a v%d certificate with %d extensions", out.Version, len(out.Extensions))
	}
	return out
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRegistrationChains covers certificate registration (§5.4) through
// chains: an intermediate must be proven a CA, every certificate up to the
// trusted CA must be valid at the server's clock, and the leaf must
// certify the key that signed the registration JWT. AM's own leniencies
// (SHA-1, v1 leaves, the trusted CA's validity) are kept.
func TestRegistrationChains(t *testing.T) {
	cfg, root := configWithCA(t)
	expiredCA, expiredCAKey, err := examplepki.NewCA("expired-ca", time.Now().Add(-10*365*24*time.Hour), time.Now().Add(-9*365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cfg.CertVerificationCAs = append(cfg.CertVerificationCAs, expiredCA)
	lb := &logBuffer{}
	_, c, clk := startClocked(t, cfg, logTo(lb))
	admin := c.adminLogin()
	now, day := clk.Now(), 24*time.Hour
	foreign := newPKI(t, "foreign-ca")

	leaf := func(th *thing, pub crypto.PublicKey, parent *x509.Certificate, key crypto.Signer) *x509.Certificate {
		return mintCert(t, pub, certSpec{cn: th.id, nb: now.Add(-day), na: now.Add(day)}, parent, key)
	}
	// intermediate makes a certificate for a new key, signed by parent.
	intermediate := func(sp certSpec, parent *x509.Certificate, key crypto.Signer) (*x509.Certificate, *ecdsa.PrivateKey) {
		k := newECKey(t)
		if sp.nb.IsZero() {
			sp.nb, sp.na = now.Add(-day), now.Add(day)
		}
		if sp.cn == "" {
			sp.cn = "intermediate"
		}
		return mintCert(t, k.Public(), sp, parent, key), k
	}
	caSpec := certSpec{ext: true, ca: true, keyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, pathLen: -1}
	withPathLen := func(cn string, n int) certSpec { sp := caSpec; sp.cn, sp.pathLen = cn, n; return sp }

	tests := []struct {
		name  string
		chain func(th *thing) []*x509.Certificate
		ok    bool
		log   string // the reason the log must give
	}{
		// What AM accepts, kept.
		{name: "leaf signed by the CA", ok: true, chain: func(th *thing) []*x509.Certificate {
			return []*x509.Certificate{leaf(th, th.key.Public(), root.ca, root.key)}
		}},
		{name: "v1 leaf signed ecdsa-with-SHA1 by the CA (the guide's dynamic-gateway certificate)", ok: true, chain: func(th *thing) []*x509.Certificate {
			return []*x509.Certificate{asV1(t, leaf(th, th.key.Public(), root.ca, root.key), root.key, true)}
		}},
		{name: "leaf signed by a CA whose own certificate expired years ago", ok: true, chain: func(th *thing) []*x509.Certificate {
			return []*x509.Certificate{leaf(th, th.key.Public(), expiredCA, expiredCAKey)}
		}},
		{name: "leaf under a CA intermediate", ok: true, chain: func(th *thing) []*x509.Certificate {
			in, ik := intermediate(caSpec, root.ca, root.key)
			return []*x509.Certificate{leaf(th, th.key.Public(), in, ik), in}
		}},
		{name: "leaf, CA intermediate and the trusted CA's certificate", ok: true, chain: func(th *thing) []*x509.Certificate {
			in, ik := intermediate(caSpec, root.ca, root.key)
			return []*x509.Certificate{leaf(th, th.key.Public(), in, ik), in, root.ca}
		}},
		{name: "two intermediates within pathLen 1", ok: true, chain: func(th *thing) []*x509.Certificate {
			up, uk := intermediate(withPathLen("upper", 1), root.ca, root.key)
			low, lk := intermediate(withPathLen("lower", 0), up, uk)
			return []*x509.Certificate{leaf(th, th.key.Public(), low, lk), low, up}
		}},
		{name: "CA intermediate without keyUsage", ok: true, chain: func(th *thing) []*x509.Certificate {
			sp := caSpec
			sp.keyUsage = 0
			in, ik := intermediate(sp, root.ca, root.key)
			return []*x509.Certificate{leaf(th, th.key.Public(), in, ik), in}
		}},

		// Attacks.
		{name: "v1 intermediate (a leaf of the CA, made by openssl x509 -req)", log: "X.509 v1 certificate", chain: func(th *thing) []*x509.Certificate {
			attacker := newECKey(t)
			v1 := asV1(t, mintCert(t, attacker.Public(), certSpec{cn: "attacker", nb: now.Add(-day), na: now.Add(day)}, root.ca, root.key), root.key, false)
			return []*x509.Certificate{leaf(th, th.key.Public(), v1, attacker), v1}
		}},
		{name: "v3 intermediate without extensions (an iot-edge thing certificate)", log: "no basicConstraints with cA=true", chain: func(th *thing) []*x509.Certificate {
			in, ik := intermediate(certSpec{cn: "attacker"}, root.ca, root.key)
			return []*x509.Certificate{leaf(th, th.key.Public(), in, ik), in}
		}},
		{name: "v3 intermediate with cA=false", log: "no basicConstraints with cA=true", chain: func(th *thing) []*x509.Certificate {
			in, ik := intermediate(certSpec{ext: true, keyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}, root.ca, root.key)
			return []*x509.Certificate{leaf(th, th.key.Public(), in, ik), in}
		}},
		{name: "intermediate whose keyUsage lacks keyCertSign", log: "keyUsage lacks keyCertSign", chain: func(th *thing) []*x509.Certificate {
			sp := caSpec
			sp.keyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign
			in, ik := intermediate(sp, root.ca, root.key)
			return []*x509.Certificate{leaf(th, th.key.Public(), in, ik), in}
		}},
		{name: "pathLen 0 exceeded by a second intermediate", log: "certificate 2 (CN=upper) allows 0 intermediates below it (pathLenConstraint), the chain has 1", chain: func(th *thing) []*x509.Certificate {
			up, uk := intermediate(withPathLen("upper", 0), root.ca, root.key)
			low, lk := intermediate(withPathLen("lower", -1), up, uk)
			return []*x509.Certificate{leaf(th, th.key.Public(), low, lk), low, up}
		}},
		{name: "intermediate with name constraints", log: "name constraints", chain: func(th *thing) []*x509.Certificate {
			sp := caSpec
			sp.permit = []string{"example.com"}
			in, ik := intermediate(sp, root.ca, root.key)
			return []*x509.Certificate{leaf(th, th.key.Public(), in, ik), in}
		}},
		{name: "leaf of a foreign CA", log: "not signed by a trusted CA", chain: func(th *thing) []*x509.Certificate {
			return []*x509.Certificate{leaf(th, th.key.Public(), foreign.ca, foreign.key)}
		}},
		{name: "leaf of a foreign CA with the trusted CA's certificate after it", log: "certificate 0 is not signed by certificate 1", chain: func(th *thing) []*x509.Certificate {
			return []*x509.Certificate{leaf(th, th.key.Public(), foreign.ca, foreign.key), root.ca}
		}},
		{name: "expired leaf", log: "certificate 0 (CN=", chain: func(th *thing) []*x509.Certificate {
			return []*x509.Certificate{mintCert(t, th.key.Public(), certSpec{cn: th.id, nb: now.Add(-2 * day), na: now.Add(-day)}, root.ca, root.key)}
		}},
		{name: "leaf not yet valid", log: "is not valid at", chain: func(th *thing) []*x509.Certificate {
			return []*x509.Certificate{mintCert(t, th.key.Public(), certSpec{cn: th.id, nb: now.Add(day), na: now.Add(2 * day)}, root.ca, root.key)}
		}},
		{name: "expired intermediate", log: "certificate 1 (CN=intermediate) is not valid at", chain: func(th *thing) []*x509.Certificate {
			sp := caSpec
			sp.nb, sp.na = now.Add(-2*day), now.Add(-day)
			in, ik := intermediate(sp, root.ca, root.key)
			return []*x509.Certificate{leaf(th, th.key.Public(), in, ik), in}
		}},
		{name: "leaf key is not the key that signed the JWT", log: "does not certify the confirmation key", chain: func(th *thing) []*x509.Certificate {
			return []*x509.Certificate{leaf(th, newECKey(t).Public(), root.ca, root.key)}
		}},
		{name: "more than 10 certificates", log: "more than 10", chain: func(th *thing) []*x509.Certificate {
			in, ik := intermediate(caSpec, root.ca, root.key)
			chain := []*x509.Certificate{leaf(th, th.key.Public(), in, ik)}
			for len(chain) < 11 {
				chain = append(chain, in)
			}
			return chain
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newThing(t, uniqueID("chain"))
			th.cert = tt.chain(th)
			mark := lb.mark()
			res := c.login(c.authURL("reg-tree", "/"), answers{"jwt-pop-registration": c.regAnswer(th, "/", nil)})
			if tt.ok {
				if res.token == "" {
					t.Fatalf("%d %s\nlog: %s", res.r.status, res.r.body, lb.since(mark))
				}
				expectStatus(t, c.getIdentity(admin, "/", th.id), 200)
				return
			}
			loginFailed(t, res.r)
			if r := c.getIdentity(admin, "/", th.id); r.status != 404 {
				t.Errorf("identity created by a refused registration: %d %s", r.status, r.body)
			}
			expectLogged(t, lb, mark, "Register Thing")
			expectLogged(t, lb, mark, tt.log)
		})
	}

	// The attack of the matrix in full: a thing holding a v1 leaf of the
	// trusted CA signs a certificate for an existing thing's name and
	// registers as it. Without Rotate Confirmation Key that would replace
	// the victim's key; it changes nothing.
	t.Run("v1 intermediate against an existing thing", func(t *testing.T) {
		victim := newThing(t, uniqueID("victim"))
		c.createThing(admin, "/", victim, nil)
		before, _ := c.identityKeys(admin, "/", victim.id)
		attacker := newECKey(t)
		v1 := asV1(t, mintCert(t, attacker.Public(), certSpec{cn: "attacker", nb: now.Add(-day), na: now.Add(day)}, root.ca, root.key), root.key, false)
		impostor := newThing(t, victim.id)
		impostor.cert = []*x509.Certificate{leaf(impostor, impostor.key.Public(), v1, attacker), v1}
		mark := lb.mark()
		loginFailed(t, c.login(c.authURL("reg-tree", "/"), answers{"jwt-pop-registration": c.regAnswer(impostor, "/", nil)}).r)
		expectLogged(t, lb, mark, "X.509 v1 certificate")
		after, _ := c.identityKeys(admin, "/", victim.id)
		if strings.Join(after, ",") != strings.Join(before, ",") || len(after) != 1 || after[0] != victim.kid {
			t.Errorf("victim's keys changed: %v → %v", before, after)
		}
		// The victim still authenticates with its own key.
		c.mustPoP(victim, "auth-tree", "/")
	})
}

// --- JWS with duplicate member names ---

// signRaw signs header and payload, given as JSON text, with ES256.
func signRaw(t testing.TB, key crypto.Signer, header, payload string) string {
	t.Helper()
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok || k.Curve != elliptic.P256() {
		t.Fatalf("signRaw signs with P-256 keys only")
	}
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	h := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + enc.EncodeToString(sig)
}

// withFirst returns v as a JSON object with an extra member name:first
// written before all the others. encoding/json keeps the last of two
// members, so this server read v as it is before the fix; a reader that
// keeps the first sees first.
func withFirst(t testing.TB, v any, name string, first any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := json.Marshal(first)
	if !bytes.HasPrefix(b, []byte("{")) || bytes.Equal(b, []byte("{}")) {
		t.Fatalf("%s is not a JSON object with members", b)
	}
	return fmt.Sprintf(`{%q:%s,%s`, name, f, b[1:])
}

func jsonText(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDuplicateMembers sends, to every place where the local AM parses a
// JWS, a header or payload naming a member twice. The copy encoding/json
// would keep (the last) is valid, so each row was accepted before; now
// each is refused as AM refuses an invalid JWT at that step, stores
// nothing and logs why.
func TestDuplicateMembers(t *testing.T) {
	cfg := amtest.DefaultConfig()
	addTree(cfg, "/", "assert-tree", assertionNode("custom-client-assertion-audience"), nil)
	addTree(cfg, "/", "reg-pop", nil, regNode(amtest.RegPoPWithoutTrust))
	addTree(cfg, "/", "reg-stmt", nil, regNode(amtest.RegSoftwareStatementOnly))
	cfg.Realms["/"].Nodes["reg-stmt-reg-node"].Registration.DefaultAttributeValues = map[string]string{"thingType": "device"}
	pub := newPublisher(t, "https://soft-pub.example.com")
	pub.configure(t, cfg, "/")
	lb := &logBuffer{}
	_, c := startWith(t, cfg, logTo(lb))
	admin := c.adminLogin()
	th := newThing(t, uniqueID("dup"))
	c.createThing(admin, "/", th, nil)
	victim := newThing(t, uniqueID("dup-victim"))
	c.createThing(admin, "/", victim, nil)

	popHeader := `{"alg":"ES256","typ":"JWT"}`
	pop := func(claims func(nonce string) map[string]any, header func(map[string]any) (string, string)) func(string) string {
		return func(nonce string) string {
			h, p := header(claims(nonce))
			return signRaw(t, th.key, h, p)
		}
	}
	popClaims := func(nonce string) map[string]any { return th.popClaims("/", nonce, time.Now()) }
	regClaims := func(id string) func(nonce string) map[string]any {
		return func(nonce string) map[string]any {
			nt := *th
			nt.id = id
			return nt.regClaims("/", nonce, time.Now(), nil)
		}
	}
	assertion := func() map[string]any {
		return map[string]any{"sub": th.id, "iss": th.id, "aud": "custom-client-assertion-audience",
			"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix(), "cnf": map[string]any{}}
	}
	assertHeader := map[string]any{"alg": "ES256", "kid": th.kid, "typ": "JWT"}
	stmt := func() map[string]any {
		return map[string]any{"iss": pub.iss, "scope": "publish subscribe",
			"jwks": jose.JSONWebKeySet{Keys: []jose.JSONWebKey{th.publicJWK()}}}
	}
	stmtHeader := map[string]any{"alg": "ES256", "kid": pub.kid}

	type login struct {
		tree string
		a    answers
	}
	tests := []struct {
		name   string
		login  login
		reason string
	}{
		{"PoP authentication JWT: header alg twice (none first)", login{"auth-tree", answers{"jwt-pop-authentication": pop(popClaims,
			func(m map[string]any) (string, string) {
				return `{"alg":"none","typ":"JWT","alg":"ES256"}`, jsonText(t, m)
			})}}, `jws: header: strictjson: duplicate member name \"alg\"`},
		{"PoP authentication JWT: payload sub twice", login{"auth-tree", answers{"jwt-pop-authentication": pop(popClaims,
			func(m map[string]any) (string, string) { return popHeader, withFirst(t, m, "sub", victim.id) })}}, `jws: payload: strictjson: duplicate member name \"sub\"`},
		{"PoP authentication JWT: payload nonce twice", login{"auth-tree", answers{"jwt-pop-authentication": pop(popClaims,
			func(m map[string]any) (string, string) {
				return popHeader, withFirst(t, m, "nonce", "another-challenge")
			})}}, `duplicate member name \"nonce\"`},
		{"PoP authentication JWT: cnf.kid twice", login{"auth-tree", answers{"jwt-pop-authentication": pop(popClaims,
			func(m map[string]any) (string, string) {
				m["cnf"] = json.RawMessage(withFirst(t, map[string]any{"kid": th.kid}, "kid", victim.kid))
				return popHeader, jsonText(t, m)
			})}}, `duplicate member name \"kid\"`},
		{"PoP authentication JWT: sub and SUB", login{"auth-tree", answers{"jwt-pop-authentication": pop(popClaims,
			func(m map[string]any) (string, string) { return popHeader, withFirst(t, m, "SUB", victim.id) })}}, `duplicate member name \"sub\"`},
		{"registration JWT: header typ twice", login{"reg-pop", answers{"jwt-pop-registration": pop(regClaims(uniqueID("dup-reg")),
			func(m map[string]any) (string, string) {
				return `{"alg":"ES256","typ":"none","typ":"JWT"}`, jsonText(t, m)
			})}}, `jws: header: strictjson: duplicate member name \"typ\"`},
		{"registration JWT: payload sub twice", login{"reg-pop", answers{"jwt-pop-registration": pop(regClaims(uniqueID("dup-reg")),
			func(m map[string]any) (string, string) { return popHeader, withFirst(t, m, "sub", victim.id) })}}, `jws: payload: strictjson: duplicate member name \"sub\"`},
		{"registration JWT: cnf.jwk.x twice", login{"reg-pop", answers{"jwt-pop-registration": pop(regClaims(uniqueID("dup-reg")),
			func(m map[string]any) (string, string) {
				jwk := jsonText(t, th.jwk())
				m["cnf"] = json.RawMessage(`{"kid":"` + th.kid + `","jwk":` + withFirst(t, json.RawMessage(jwk), "x", "AAAA") + `}`)
				return popHeader, jsonText(t, m)
			})}}, `duplicate member name \"x\"`},
		{"client assertion: header kid twice", login{"assert-tree", answers{"client_assertion": func(string) string {
			return signRaw(t, th.key, withFirst(t, assertHeader, "kid", victim.kid), jsonText(t, assertion()))
		}}}, `jws: header: strictjson: duplicate member name \"kid\"`},
		{"client assertion: payload sub twice", login{"assert-tree", answers{"client_assertion": func(string) string {
			return signRaw(t, th.key, jsonText(t, assertHeader), withFirst(t, assertion(), "sub", victim.id))
		}}}, `jws: payload: strictjson: duplicate member name \"sub\"`},
		{"software statement: header kid twice", login{"reg-stmt", answers{"software_statement": func(string) string {
			return signRaw(t, pub.key, withFirst(t, stmtHeader, "kid", "another-publisher-key"), jsonText(t, stmt()))
		}}}, `jws: header: strictjson: duplicate member name \"kid\"`},
		{"software statement: payload iss twice", login{"reg-stmt", answers{"software_statement": func(string) string {
			return signRaw(t, pub.key, jsonText(t, stmtHeader), withFirst(t, stmt(), "iss", "https://evil.example.com"))
		}}}, `jws: payload: strictjson: duplicate member name \"iss\"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := c.identityCount(admin)
			mark := lb.mark()
			res := c.login(c.authURL(tt.login.tree, "/"), tt.login.a)
			loginFailed(t, res.r)
			if got := c.identityCount(admin); got != n {
				t.Errorf("identities: %d before, %d after", n, got)
			}
			expectLogged(t, lb, mark, tt.reason)
		})
	}

	// Signed requests (§6.2): the header and the payload.
	u := c.thingsURL("get_access_token", "/")
	header := func(nonce int64) map[string]any {
		return map[string]any{"alg": "ES256", "aud": u, "api": thingsAPI, "nonce": nonce}
	}
	signed := []struct {
		name   string
		body   func(tok string) string
		reason string
	}{
		{"signed request: header nonce twice", func(tok string) string {
			return signRaw(t, th.key, withFirst(t, header(1), "nonce", 0), jsonText(t, map[string]any{"csrf": tok, "scope": []string{"publish"}}))
		}, `jws: header: strictjson: duplicate member name \"nonce\"`},
		{"signed request: header aud twice", func(tok string) string {
			return signRaw(t, th.key, withFirst(t, header(1), "aud", c.thingsURL("introspect_token", "/")), jsonText(t, map[string]any{"csrf": tok}))
		}, `duplicate member name \"aud\"`},
		{"signed request: payload csrf twice", func(tok string) string {
			return signRaw(t, th.key, jsonText(t, header(1)), withFirst(t, map[string]any{"csrf": tok, "scope": []string{"publish"}}, "csrf", "x"))
		}, `jws: payload: strictjson: duplicate member name \"csrf\"`},
		{"signed request: payload csrf and CSRF", func(tok string) string {
			return signRaw(t, th.key, jsonText(t, header(1)), withFirst(t, map[string]any{"csrf": tok, "scope": []string{"publish"}}, "CSRF", "x"))
		}, `duplicate member name \"csrf\"`},
		{"signed request: payload scope twice", func(tok string) string {
			return signRaw(t, th.key, jsonText(t, header(1)), withFirst(t, map[string]any{"csrf": tok, "scope": []string{"publish"}}, "scope", []string{"delete"}))
		}, `duplicate member name \"scope\"`},
	}
	for _, tt := range signed {
		t.Run(tt.name, func(t *testing.T) {
			tok := c.mustPoP(th, "auth-tree", "/")
			s := c.restrictedSession(th, tok)
			expectStatus(t, s.things("POST", "get_access_token", "/", map[string]any{"scope": []string{"publish"}}), 200) // nonce 0
			mark := lb.mark()
			r := c.sendJOSE("POST", u, thingsAPI, tok, tt.body(tok))
			expectCREST(t, r, 401, "Access Denied")
			if strings.Contains(string(r.body), "access_token") {
				t.Errorf("a refused request issued a token: %s", r.body)
			}
			expectLogged(t, lb, mark, tt.reason)
			// Nothing changed: nonce 1 is still unused.
			expectStatus(t, s.things("POST", "get_access_token", "/", map[string]any{"scope": []string{"publish"}}), 200)
		})
	}
}

// TestSignedRequestTimeClaims covers time claims in the payload of signed
// requests (§6.2): neither iot-edge nor this module's SDK sends them, but
// when present they are honoured with the 60 s clock skew.
func TestSignedRequestTimeClaims(t *testing.T) {
	lb := &logBuffer{}
	_, c, clk := startClocked(t, nil, logTo(lb))
	admin := c.adminLogin()
	th := newThing(t, "timed-request-thing")
	c.createThing(admin, "/", th, nil)
	tok := c.mustPoP(th, "auth-tree", "/")
	s := c.restrictedSession(th, tok)
	u := c.thingsURL("get_access_token", "/")

	tests := []struct {
		name   string
		claims func(now time.Time) map[string]any
		reason string // "" when accepted
	}{
		{"exp expired", func(now time.Time) map[string]any { return map[string]any{"exp": now.Add(-2 * time.Minute).Unix()} }, "the JWT has expired"},
		{"exp now", func(now time.Time) map[string]any { return map[string]any{"exp": now.Add(-time.Minute).Unix()} }, "the JWT has expired"},
		{"nbf in the future", func(now time.Time) map[string]any { return map[string]any{"nbf": now.Add(2 * time.Minute).Unix()} }, "the JWT is not valid yet"},
		{"iat in the future", func(now time.Time) map[string]any { return map[string]any{"iat": now.Add(2 * time.Minute).Unix()} }, "the JWT is issued in the future"},
		{"exp before iat", func(now time.Time) map[string]any {
			return map[string]any{"iat": now.Unix(), "exp": now.Add(-30 * time.Second).Unix()}
		}, "expires before it was issued"},
		{"exp not a NumericDate", func(now time.Time) map[string]any { return map[string]any{"exp": "tomorrow"} }, "claim exp"},
		{"exp expired 30 s ago, within the skew", func(now time.Time) map[string]any { return map[string]any{"exp": now.Add(-30 * time.Second).Unix()} }, ""},
		{"nbf and iat 30 s ahead, within the skew", func(now time.Time) map[string]any {
			return map[string]any{"nbf": now.Add(30 * time.Second).Unix(), "iat": now.Add(30 * time.Second).Unix()}
		}, ""},
		{"all three valid", func(now time.Time) map[string]any {
			return map[string]any{"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := tt.claims(clk.Now())
			payload["scope"] = []string{"publish"}
			payload["csrf"] = tok
			mark := lb.mark()
			r := c.sendJOSE("POST", u, thingsAPI, tok, signPayload(t, th, u, thingsAPI, s.nonce, payload))
			if tt.reason == "" {
				expectStatus(t, r, 200)
				s.nonce++
				return
			}
			expectCREST(t, r, 401, "Access Denied")
			expectLogged(t, lb, mark, tt.reason)
			// The refused request did not consume its nonce.
			expectStatus(t, s.things("POST", "get_access_token", "/", map[string]any{"scope": []string{"publish"}}), 200)
		})
	}
}

// TestJWTTimeClaimsAndLifetime covers the time claims of the nodes' JWTs
// and the MaxJWTLifetime ceiling (default 10 minutes): PoP authentication
// and registration JWTs and client assertions that live longer fail as
// any invalid JWT fails at that step (401 Login failure).
func TestJWTTimeClaimsAndLifetime(t *testing.T) {
	newServer := func(t *testing.T, tweak ...func(*amtest.Server)) (*client, *fakeClock, *logBuffer, string) {
		cfg := amtest.DefaultConfig()
		addTree(cfg, "/", "assert-tree", assertionNode("custom-client-assertion-audience"), nil)
		addTree(cfg, "/", "reg-pop", nil, regNode(amtest.RegPoPWithoutTrust))
		lb := &logBuffer{}
		_, c, clk := startClocked(t, cfg, append([]func(*amtest.Server){logTo(lb)}, tweak...)...)
		return c, clk, lb, c.adminLogin()
	}
	c, clk, lb, admin := newServer(t)
	th := newThing(t, "lifetime-thing")
	c.createThing(admin, "/", th, nil)
	year := 365 * 24 * time.Hour

	// popWith answers the PoP callback with claim overrides computed at the
	// server's time (nil deletes a claim).
	popWith := func(over func(now time.Time) map[string]any) func(string) string {
		return func(nonce string) string {
			m := th.popClaims("/", nonce, clk.Now())
			for k, v := range over(clk.Now()) {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			return th.signJWT(t, m)
		}
	}
	assertWith := func(jti string, over func(now time.Time) map[string]any) func(string) string {
		return func(string) string {
			now := clk.Now()
			m := map[string]any{"sub": th.id, "iss": th.id, "aud": "custom-client-assertion-audience",
				"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "cnf": map[string]any{}}
			if jti != "" {
				m["jti"] = jti
			}
			for k, v := range over(now) {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			return sign(t, th.key, th.alg, map[jose.HeaderKey]any{"typ": "JWT", "kid": th.kid}, m)
		}
	}
	tests := []struct {
		name   string
		tree   string
		a      answers
		reason string // "" when accepted
	}{
		{"PoP: exp expired", "auth-tree", answers{"jwt-pop-authentication": popWith(func(now time.Time) map[string]any {
			return map[string]any{"iat": now.Add(-7 * time.Minute).Unix(), "exp": now.Add(-2 * time.Minute).Unix()}
		})}, "the JWT has expired"},
		{"PoP: nbf in the future", "auth-tree", answers{"jwt-pop-authentication": popWith(func(now time.Time) map[string]any {
			return map[string]any{"nbf": now.Add(2 * time.Minute).Unix()}
		})}, "the JWT is not valid yet"},
		{"PoP: iat in the future", "auth-tree", answers{"jwt-pop-authentication": popWith(func(now time.Time) map[string]any {
			return map[string]any{"iat": now.Add(2 * time.Minute).Unix(), "exp": now.Add(7 * time.Minute).Unix()}
		})}, "the JWT is issued in the future"},
		{"PoP: exp ten years ahead", "auth-tree", answers{"jwt-pop-authentication": popWith(func(now time.Time) map[string]any {
			return map[string]any{"exp": now.Add(10 * year).Unix()}
		})}, "longer than the 10m0s allowed"},
		{"PoP: iat a year ago, exp in 5 minutes", "auth-tree", answers{"jwt-pop-authentication": popWith(func(now time.Time) map[string]any {
			return map[string]any{"iat": now.Add(-year).Unix()}
		})}, "longer than the 10m0s allowed"},
		{"PoP: lifetime 10 minutes and 1 second", "auth-tree", answers{"jwt-pop-authentication": popWith(func(now time.Time) map[string]any {
			return map[string]any{"exp": now.Add(10*time.Minute + time.Second).Unix()}
		})}, "lives 10m1s"},
		{"PoP: lifetime 10 minutes", "auth-tree", answers{"jwt-pop-authentication": popWith(func(now time.Time) map[string]any {
			return map[string]any{"exp": now.Add(10 * time.Minute).Unix()}
		})}, ""},
		{"registration: exp ten years ahead", "reg-pop", answers{"jwt-pop-registration": func(nonce string) string {
			nt := newThing(t, uniqueID("long-reg"))
			return nt.signJWT(t, nt.regClaims("/", nonce, clk.Now(), map[string]any{"exp": clk.Now().Add(10 * year).Unix()}))
		}}, "longer than the 10m0s allowed"},
		{"client assertion: exp a year after iat", "assert-tree", answers{"client_assertion": assertWith("long-1", func(now time.Time) map[string]any {
			return map[string]any{"exp": now.Add(year).Unix()}
		})}, "longer than the 10m0s allowed"},
		{"client assertion: no iat, exp in an hour", "assert-tree", answers{"client_assertion": assertWith("long-2", func(now time.Time) map[string]any {
			return map[string]any{"iat": nil, "exp": now.Add(time.Hour).Unix()}
		})}, "has no iat and expires in 1h0m0s"},
		{"client assertion: nbf in the future", "assert-tree", answers{"client_assertion": assertWith("long-3", func(now time.Time) map[string]any {
			return map[string]any{"nbf": now.Add(2 * time.Minute).Unix()}
		})}, "the JWT is not valid yet"},
		{"client assertion: no iat, exp in 10 minutes", "assert-tree", answers{"client_assertion": assertWith("ok-1", func(now time.Time) map[string]any {
			return map[string]any{"iat": nil, "exp": now.Add(10 * time.Minute).Unix()}
		})}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := c.identityCount(admin)
			mark := lb.mark()
			res := c.login(c.authURL(tt.tree, "/"), tt.a)
			if tt.reason == "" {
				if res.token == "" {
					t.Fatalf("%d %s\nlog: %s", res.r.status, res.r.body, lb.since(mark))
				}
				return
			}
			loginFailed(t, res.r)
			expectLogged(t, lb, mark, tt.reason)
			if got := c.identityCount(admin); got != n {
				t.Errorf("identities: %d before, %d after", n, got)
			}
		})
	}
	t.Run("a refused assertion does not use up its jti", func(t *testing.T) {
		// long-1 was refused above; the same jti in a valid assertion works.
		if res := c.login(c.authURL("assert-tree", "/"), answers{"client_assertion": assertWith("long-1", func(time.Time) map[string]any { return nil })}); res.token == "" {
			t.Fatalf("%d %s", res.r.status, res.r.body)
		}
	})
	t.Run("MaxJWTLifetime configured", func(t *testing.T) {
		c2, clk2, _, admin2 := newServer(t, func(s *amtest.Server) { s.MaxJWTLifetime = 2 * time.Hour })
		c2.createThing(admin2, "/", th, nil)
		hour := func(nonce string) string {
			m := th.popClaims("/", nonce, clk2.Now())
			m["exp"] = clk2.Now().Add(time.Hour).Unix()
			return th.signJWT(t, m)
		}
		if res := c2.login(c2.authURL("auth-tree", "/"), answers{"jwt-pop-authentication": hour}); res.token == "" {
			t.Errorf("one hour under a two-hour ceiling: %d %s", res.r.status, res.r.body)
		}
		threeHours := func(nonce string) string {
			m := th.popClaims("/", nonce, clk2.Now())
			m["exp"] = clk2.Now().Add(3 * time.Hour).Unix()
			return th.signJWT(t, m)
		}
		loginFailed(t, c2.login(c2.authURL("auth-tree", "/"), answers{"jwt-pop-authentication": threeHours}).r)
	})
	t.Run("MaxJWTLifetime negative: no ceiling", func(t *testing.T) {
		c3, clk3, _, admin3 := newServer(t, func(s *amtest.Server) { s.MaxJWTLifetime = -1 })
		c3.createThing(admin3, "/", th, nil)
		decade := func(nonce string) string {
			m := th.popClaims("/", nonce, clk3.Now())
			m["exp"] = clk3.Now().Add(10 * year).Unix()
			return th.signJWT(t, m)
		}
		if res := c3.login(c3.authURL("auth-tree", "/"), answers{"jwt-pop-authentication": decade}); res.token == "" {
			t.Errorf("ten years without a ceiling: %d %s", res.r.status, res.r.body)
		}
	})
}

// TestClientAssertionJTI covers the client-assertion replay cache (§4.3):
// a jti is used once per thing, also across a restart with a data
// directory, and RequireAssertionJTI refuses assertions without one.
func TestClientAssertionJTI(t *testing.T) {
	cfg := func() *amtest.Config {
		cfg := amtest.DefaultConfig()
		// A custom audience: the issuer URL would change with the port
		// across the restart.
		addTree(cfg, "/", "assert-tree", assertionNode("custom-client-assertion-audience"), nil)
		return cfg
	}
	clk := newFakeClock()
	assertion := func(t *testing.T, th *thing, jti string) string {
		extra := map[string]any{}
		if jti != "" {
			extra["jti"] = jti
		}
		return th.assertion(t, "custom-client-assertion-audience", clk.Now(), extra)
	}
	start := func(t *testing.T, dir string, require bool) (*amtest.Server, *client, *logBuffer) {
		lb := &logBuffer{}
		srv, c := startWith(t, cfg(), logTo(lb), func(s *amtest.Server) {
			s.Time, s.DataDir, s.RequireAssertionJTI = clk.Now, dir, require
		})
		c.now = clk.Now
		return srv, c, lb
	}
	login := func(c *client, a string) loginResult {
		return c.login(c.authURL("assert-tree", "/"), answers{"client_assertion": constant(a)})
	}

	t.Run("without jti, as iot-edge v7.4 and this module's SDK send it", func(t *testing.T) {
		_, c, _ := start(t, "", false)
		th := newThing(t, uniqueID("nojti"))
		c.createThing(c.adminLogin(), "/", th, nil)
		if res := login(c, assertion(t, th, "")); res.token == "" {
			t.Fatalf("%d %s", res.r.status, res.r.body)
		}
	})

	t.Run("RequireAssertionJTI", func(t *testing.T) {
		_, c, lb := start(t, "", true)
		th := newThing(t, uniqueID("jti"))
		c.createThing(c.adminLogin(), "/", th, nil)
		tests := []struct {
			name   string
			jwt    string
			reason string
		}{
			{"client assertion without jti", assertion(t, th, ""), "the client assertion has no jti"},
			{"client assertion with an empty jti", th.assertion(t, "custom-client-assertion-audience", clk.Now(), map[string]any{"jti": ""}), "the client assertion has no jti"},
			{"client assertion with jti", assertion(t, th, "jti-a"), ""},
			{"replayed jti", assertion(t, th, "jti-a"), `client assertion jti \"jti-a\" was already used`},
			{"the same jti in a new assertion", assertion(t, th, "jti-a"), `client assertion jti \"jti-a\" was already used`},
			{"a fresh jti", assertion(t, th, "jti-b"), ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				mark := lb.mark()
				res := login(c, tt.jwt)
				if tt.reason == "" {
					if res.token == "" {
						t.Fatalf("%d %s", res.r.status, res.r.body)
					}
					return
				}
				loginFailed(t, res.r)
				expectLogged(t, lb, mark, "Authenticate Thing")
				expectLogged(t, lb, mark, tt.reason)
			})
		}
		// The cache is per thing: another thing may pick the same jti.
		other := newThing(t, uniqueID("jti-other"))
		c.createThing(c.adminLogin(), "/", other, nil)
		if res := login(c, assertion(t, other, "jti-a")); res.token == "" {
			t.Errorf("another thing's jti-a: %d %s", res.r.status, res.r.body)
		}
	})

	t.Run("replayed jti after a restart with a data directory", func(t *testing.T) {
		dir := t.TempDir()
		srv, c, _ := start(t, dir, false)
		th := newThing(t, uniqueID("durable"))
		c.createThing(c.adminLogin(), "/", th, nil)
		a := assertion(t, th, "durable-jti")
		if res := login(c, a); res.token == "" {
			t.Fatalf("first use: %d %s", res.r.status, res.r.body)
		}
		srv.Close()

		srv2, c2, lb := start(t, dir, false)
		mark := lb.mark()
		loginFailed(t, login(c2, a).r)
		expectLogged(t, lb, mark, `client assertion jti \"durable-jti\" was already used`)
		// The thing itself is fine: a fresh jti works.
		if res := login(c2, assertion(t, th, "durable-jti-2")); res.token == "" {
			t.Fatalf("fresh jti after the restart: %d %s", res.r.status, res.r.body)
		}
		srv2.Close()

		// Once the assertion has expired it is refused for its exp.
		clk.Advance(10 * time.Minute)
		_, c3, lb3 := start(t, dir, false)
		c3.adminLogin() // a new session sweeps expired state
		mark = lb3.mark()
		loginFailed(t, login(c3, a).r)
		expectLogged(t, lb3, mark, "the JWT has expired")
	})
}

// TestIoTEdgeWireShapes replays, claim for claim, what ForgeRock iot-edge
// v7.4 sends (pkg/callback, internal/session, cmd/auth-jwt, the functional
// test harness and the IG proof of concept), so that the hardening keeps
// it working: PoP JWTs and client assertions with exp = iat + 5 minutes
// and no jti, a v3 thing certificate without extensions issued by a v1
// CA, signed requests without time claims, software statements without
// exp.
func TestIoTEdgeWireShapes(t *testing.T) {
	// The harness CA (es256test) is a self-signed v1 certificate that
	// expired in 2020.
	caKey := newECKey(t)
	caV3 := mintCert(t, caKey.Public(), certSpec{cn: "es256test", nb: time.Date(2017, 2, 3, 0, 0, 0, 0, time.UTC), na: time.Date(2020, 10, 30, 0, 0, 0, 0, time.UTC)}, nil, caKey)
	ca := asV1(t, caV3, caKey, false)
	cfg := amtest.DefaultConfig()
	cfg.CertVerificationCAs = []*x509.Certificate{ca}
	addTree(cfg, "/", "assert-tree", assertionNode("custom-client-assertion-audience"), nil)
	addTree(cfg, "/", "reg-stmt", nil, regNode(amtest.RegSoftwareStatementOnly))
	cfg.Realms["/"].Nodes["reg-stmt-reg-node"].Registration.DefaultAttributeValues = map[string]string{"thingType": "device"}
	pub := newPublisher(t, "https://soft-pub.example.com")
	pub.configure(t, cfg, "/")
	srv, c := startWith(t, cfg)
	admin := c.adminLogin()

	// Struct field order as iot-edge's jwtVerifyClaims.
	type cnf struct {
		KID string           `json:"kid,omitempty"`
		JWK *jose.JSONWebKey `json:"jwk,omitempty"`
	}
	type claims struct {
		Sub       string `json:"sub"`
		Iss       string `json:"iss,omitempty"`
		Aud       string `json:"aud"`
		ThingType string `json:"thingType,omitempty"`
		Iat       int64  `json:"iat"`
		Exp       int64  `json:"exp"`
		Nonce     string `json:"nonce,omitempty"`
		CNF       cnf    `json:"cnf"`
	}
	base := func(id string) claims {
		return claims{Sub: id, Aud: "/", Iat: time.Now().Unix(), Exp: time.Now().Add(5 * time.Minute).Unix()}
	}

	t.Run("certificate registration and PoP authentication", func(t *testing.T) {
		th := newThing(t, uniqueID("iotedge"))
		leaf := mintCert(t, th.key.Public(), certSpec{cn: th.id, nb: time.Now().Add(-24 * time.Hour), na: time.Now().Add(24 * time.Hour)}, ca, caKey)
		if leaf.Version != 3 || len(leaf.Extensions) != 0 {
			t.Fatalf("leaf is v%d with %d extensions, want the harness's v3 without extensions", leaf.Version, len(leaf.Extensions))
		}
		res := c.login(c.authURL("auth-reg-tree", "/"), answers{
			"jwt-pop-authentication": func(nonce string) string {
				cl := base(th.id)
				cl.Nonce, cl.CNF.KID = nonce, th.kid
				return th.signJWT(t, cl)
			},
			"jwt-pop-registration": func(nonce string) string {
				cl := base(th.id)
				cl.Nonce, cl.ThingType, cl.CNF.KID = nonce, "device", th.kid
				cl.CNF.JWK = &jose.JSONWebKey{Key: th.key.Public(), Certificates: []*x509.Certificate{leaf}, KeyID: th.kid, Use: "sig"}
				return th.signJWT(t, cl)
			},
		})
		if res.token == "" {
			t.Fatalf("%d %s", res.r.status, res.r.body)
		}
		// A signed request as internal/session signs it: csrf merged with the body, no time claims.
		s := c.restrictedSession(th, res.token)
		expectStatus(t, s.things("POST", "get_access_token", "/", map[string]any{"scope": []string{"publish"}}), 200)
		expectStatus(t, s.things("GET", "", "/", nil), 200)
		// And again with the PoP authentication alone.
		c.mustPoP(th, "auth-tree", "/")
	})

	t.Run("client assertion without jti", func(t *testing.T) {
		th := newThing(t, uniqueID("iotedge-ca"))
		c.createThing(admin, "/", th, nil)
		for _, aud := range []string{srv.URL + "/oauth2", srv.URL + "/oauth2/access_token", "custom-client-assertion-audience"} {
			cl := base(th.id)
			cl.Iss, cl.Aud = th.id, aud
			a := sign(t, th.key, th.alg, map[jose.HeaderKey]any{"typ": "JWT", "kid": th.kid}, cl)
			if res := c.login(c.authURL("assert-tree", "/"), answers{"client_assertion": constant(a)}); res.token == "" {
				t.Errorf("aud %s: %d %s", aud, res.r.status, res.r.body)
			}
		}
	})

	t.Run("IG proof of concept assertion: exp and jti, no iat", func(t *testing.T) {
		th := newThing(t, uniqueID("iotedge-ig"))
		c.createThing(admin, "/", th, nil)
		a := sign(t, th.key, th.alg, map[jose.HeaderKey]any{"kid": th.kid}, map[string]any{"iss": th.id, "sub": th.id,
			"aud": []string{"custom-client-assertion-audience"}, "exp": time.Now().Add(5 * time.Minute).Unix(), "jti": "9b4d3c1e-0f7a-4f55-8d1c-3c2f1e6b7a90"})
		if res := c.login(c.authURL("assert-tree", "/"), answers{"client_assertion": constant(a)}); res.token == "" {
			t.Errorf("%d %s", res.r.status, res.r.body)
		}
	})

	t.Run("software statement without exp", func(t *testing.T) {
		th := newThing(t, "unused-name")
		stmt := sign(t, pub.key, jose.ES256, map[jose.HeaderKey]any{"kid": pub.kid}, map[string]any{
			"iss": pub.iss, "redirect_uris": []string{"https://client.example.com:8443/callback"},
			"grant_types": []string{"client_credentials", "urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
			"scope":       "publish subscribe", "jwks": jose.JSONWebKeySet{Keys: []jose.JSONWebKey{th.publicJWK()}}})
		if res := c.login(c.authURL("reg-stmt", "/"), answers{"software_statement": constant(stmt)}); res.token == "" {
			t.Errorf("%d %s", res.r.status, res.r.body)
		}
	})
}
