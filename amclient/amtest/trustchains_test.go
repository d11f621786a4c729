package amtest_test

// Trust-path hardening (issue 11): certificate chains at registration and
// the certificate and claim shapes iot-edge's own things send.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/thingway/thingway/amclient/amtest"
	"github.com/thingway/thingway/internal/examplepki"
)

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
