package gateway_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
)

// libcoap's coap-client (Debian libcoap3-bin), an independent CoAP/DTLS
// implementation, reaches the gateway with a client certificate and
// verifies the gateway's certificate against the example CA.
func TestLibcoapClient(t *testing.T) {
	client, err := exec.LookPath("coap-client-openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("coap-client-openssl is missing (apt-get install libcoap3-bin)")
		}
		t.Skip("coap-client-openssl is missing (apt-get install libcoap3-bin)")
	}
	gwCert, err := tls.LoadX509KeyPair("../resources/gateway-dtls.cert.pem", "../resources/gateway-dtls.key.pem")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	g := e.gateway(func(s *gateway.Server) { s.DTLSCertificate = gwCert })

	// The thing's certificate and key, as PEM files for coap-client.
	dir := t.TempDir()
	cert, err := coapx.SelfSignedCertificate(nil, "libcoap-thing")
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "thing.cert.pem"), filepath.Join(dir, "thing.key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)

	run := func(args ...string) string {
		t.Helper()
		args = append([]string{"-B", "10"}, args...)
		out, _ := exec.Command(client, args...).CombinedOutput()
		return string(out)
	}
	base := "coaps://" + g.addr
	withCert := []string{"-c", certFile, "-j", keyFile, "-R", "../resources/example-ca.cert.pem"}

	if out := run(append(withCert, "-m", "get", base+"/aminfo")...); !strings.Contains(out, `"AccessTokenURL"`) {
		t.Errorf("GET /aminfo: %s", out)
	}
	if out := run(append(withCert, "-m", "post", "-t", "50", "-e", "{}", base+"/authenticate")...); !strings.Contains(out, "auth_id_digest") ||
		!strings.Contains(out, "jwt-pop-authentication") {
		t.Errorf("POST /authenticate: %s", out)
	}
	if out := run(append(withCert, "-v", "7", "-m", "get", base+"/no-such-resource")...); !strings.Contains(out, "4.04") {
		t.Errorf("unknown path: %s", out)
	}
	// A CA that did not issue the gateway's certificate: coap-client refuses it.
	otherCA := filepath.Join(dir, "other-ca.pem")
	os.WriteFile(otherCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.ca.Cert.Raw}), 0o600)
	if out := run("-c", certFile, "-j", keyFile, "-R", otherCA, "-m", "get", base+"/aminfo"); strings.Contains(out, "AccessTokenURL") {
		t.Errorf("coap-client accepted the gateway with another CA: %s", out)
	}
	// Without a client certificate the handshake is refused.
	start := time.Now()
	if out := run("-n", "-m", "get", base+"/aminfo"); strings.Contains(out, "AccessTokenURL") {
		t.Errorf("served without a client certificate: %s", out)
	}
	if time.Since(start) > 15*time.Second {
		t.Errorf("the refusal took %v", time.Since(start))
	}
}
