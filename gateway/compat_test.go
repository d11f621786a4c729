package gateway_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"

	"github.com/thingway/thingway/amclient"
	"github.com/thingway/thingway/callback"
	"github.com/thingway/thingway/coapx"
	"github.com/thingway/thingway/gateway"
)

// T3: the iot-edge SDK presents a minimal self-signed certificate (serial
// 1, empty subject and issuer, validity dates at year 1).
func TestOldSDKMinimalCertificate(t *testing.T) {
	e := newEnv(t)
	g := e.gateway()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1)},
		&x509.Certificate{SerialNumber: big.NewInt(1)}, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	rc := dialRaw(t, g.addr, piondtls.WithCertificates(cert), piondtls.WithInsecureSkipVerify(true),
		piondtls.WithExtendedMasterSecret(piondtls.RequireExtendedMasterSecret))
	if resp := rc.exchange(message.Message{Code: codes.Empty}); resp.Type != message.Reset {
		t.Fatalf("ping: %v", resp.Type)
	}
	if resp := rc.exchange(message.Message{Code: codes.GET, Token: []byte{1}, Options: opts(message.URIPath, "aminfo")}); resp.Code != codes.Content {
		t.Fatalf("/aminfo: %v", resp.Code)
	}
}

// T7, T8: an AM slower than CoAP's acknowledgement timeout still gives a
// piggybacked answer (iot-edge things match Token and Message ID and
// never retransmit), and its large body is fetched block by block after
// the AM call.
func TestSlowAMAnswerIsPiggybacked(t *testing.T) {
	e := newEnv(t)
	var c clock
	g := e.gateway(func(s *gateway.Server) { s.Time = c.now })
	key := newKey(t)
	e.admin.Identity("patient-thing", "device", key, nil)
	sess, err := (&amclient.Client{URL: e.url, Realm: "/"}).Authenticate(context.Background(), "auth-tree",
		callback.AuthenticateHandler{Audience: "/", ThingID: "patient-thing", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	info := callback.NewAMInfo(e.url, "/")
	p := &pop{key: key, token: sess.Token}
	body := p.sign(t, info.AccessTokenURL, info.ThingsVersion, map[string]any{"scope": []string{"publish"}})
	e.rec.delay.Store(int64(3500 * time.Millisecond))
	rc := dialRaw(t, g.addr)
	token := []byte{7, 7, 7, 7}
	resp := rc.exchange(message.Message{Token: token, Code: codes.POST, Payload: body,
		Options: opts(message.URIPath, "accesstoken", message.ContentFormat, uint32(coapx.AppJOSE),
			message.Block1, uint32(0x06), message.Size1, uint32(len(body)))})
	e.rec.delay.Store(0)
	if resp.Type != message.Acknowledgement || resp.Code != codes.Changed {
		t.Fatalf("answer %v %v, want a piggybacked 2.04 ACK", resp.Type, resp.Code)
	}
	full := append([]byte(nil), resp.Payload...)
	for num := int64(1); ; num++ {
		v, ok := optUint(resp, message.Block2)
		if !ok {
			break
		}
		_, _, more, _ := blockwise.DecodeBlockOption(v)
		if !more {
			break
		}
		// A slow thing: longer between blocks than go-coap's default
		// block-wise timeout (3 s), well within the gateway's.
		c.advance(10 * time.Second)
		g.s.ForTest().CheckExpiry()
		next, _ := blockwise.EncodeBlockOption(blockwise.SZX1024, num, true)
		resp = rc.exchange(message.Message{Token: token, Code: codes.POST, Options: opts(message.URIPath, "accesstoken", message.Block2, next)})
		if resp.Code != codes.Changed {
			t.Fatalf("block %d: %v %s", num, resp.Code, resp.Payload)
		}
		full = append(full, resp.Payload...)
	}
	var at amclient.TokenResponse
	if err := json.Unmarshal(full, &at); err != nil || at.AccessToken == "" {
		t.Fatalf("body %d bytes: %v", len(full), err)
	}
	if n := g.logs.requests(coapx.PathAccessToken); n != 1 {
		t.Errorf("handler ran %d times", n)
	}
}

// T19: AM refusing an authentication step is 4.01 (with AM's body).
func TestAuthenticationRefused(t *testing.T) {
	e := newEnv(t)
	g := e.gateway()
	cc := dial(t, g.addr)
	code, body := post(t, cc, coapx.PathAuthenticate, coapx.AppJSON, []byte(`{}`))
	var step callback.Step
	json.Unmarshal(body, &step)
	if code != codes.Valid || step.AuthIDDigest == "" {
		t.Fatalf("first step: %v %s", code, body)
	}
	h := callback.AuthenticateHandler{Audience: "/", ThingID: "nobody", Key: newKey(t)}
	for i := range step.Callbacks {
		h.Handle(&step.Callbacks[i])
	}
	b, _ := json.Marshal(step)
	code, body = post(t, cc, coapx.PathAuthenticate, coapx.AppJSON, b)
	if code != codes.Unauthorized || !json.Valid(body) {
		t.Errorf("refused step: %v %s, want 4.01 with AM's body", code, body)
	}
	if n := g.s.ForTest().Digests(); n != 0 {
		t.Errorf("%d digests left after AM answered", n)
	}
	// The digest was used up: replaying it is refused without AM.
	before := e.rec.count("/json/authenticate")
	code, _ = post(t, cc, coapx.PathAuthenticate, coapx.AppJSON, b)
	if code != codes.Unauthorized || e.rec.count("/json/authenticate") != before {
		t.Errorf("replayed digest: %v", code)
	}
}
