package tokens

import (
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// signClaims writes the token go-jose's JWT builder writes, byte for byte
// (HS256 signatures are deterministic, so the whole token can be
// compared), for claims of every kind a client-side token has.
func TestSignClaimsAsBuilder(t *testing.T) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{
		"sub": "(usr!thing-1)", "cts": "OAUTH2_STATELESS_GRANT", "auditTrackingId": "a<b>&c",
		"tokenName": "access_token", "nbf": int64(1765000000), "exp": int64(1765003599),
		"expires_in": int64(3599), "scope": []string{"publish", "subscribe"}, "realm": "/",
		"auth_time": int64(-1), "thing": "th\u00e9 \"x\"", "aud": "fleet-client",
	}
	want, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	got, err := signClaims(signer, claims)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("signClaims:\n%s\nthe builder:\n%s", got, want)
	}
}
