package examples_test

import "testing"

// The CoAP-only thing: manual-registration's steps through a gateway, from
// a program that links no HTTP stack (docs/layout.md holds it to that).
func TestCoAPOnly(t *testing.T) {
	program(t, "coap-only")
	u, store := manualGateway(t)

	t.Run("through the gateway", func(t *testing.T) {
		out, code := run(t, "coap-only", "-url", u, "-secrets", store)
		if code != 0 {
			t.Errorf("exit status %d", code)
		}
		checkLines(t, out, fiveLines("manual-thing"))
	})
	t.Run("wrong gateway name", func(t *testing.T) {
		out, code := run(t, "coap-only", "-url", u, "-secrets", store, "-gateway-name", "gateway.example.com")
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		checkLines(t, out, wrongGatewayName(u))
	})
	t.Run("unknown thing", func(t *testing.T) {
		out, code := run(t, "coap-only", "-url", u, "-secrets", store, "-name", "no-such-thing")
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		checkLines(t, out, []string{`Fatal error: secrets: .*no-such-thing.*`})
	})
}

// wrongGatewayName is the output of an example program told that the
// gateway at u is gateway.example.com, which its certificate does not name.
func wrongGatewayName(u string) []string {
	return []string{lit("Fatal error: cannot verify the gateway at "+u+": x509: certificate is valid for ") +
		".+" + lit(", not gateway.example.com (-gateway-ca ") + `/\S+/resources/example-ca\.cert\.pem` +
		lit(", -gateway-name gateway.example.com; an iot-edge gateway needs -insecure-gateway)")}
}

// manualGateway starts a local AM with the guide's manual-thing and
// manual-gateway, and the gateway authenticated as manual-gateway on
// auth-tree; it returns the gateway's URL and the key store of
// manual-thing's key.
func manualGateway(t *testing.T) (u, store string) {
	t.Helper()
	a := startAM(t, "", nil)
	store = exampleSecrets(t)
	a.registerManualThing(store)
	a.registerManualGateway()
	return startGateway(t, a, "manual-gateway", "auth-tree", ""), store
}
