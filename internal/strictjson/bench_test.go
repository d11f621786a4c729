package strictjson_test

import (
	"testing"

	"github.com/thingway/thingway/internal/strictjson"
)

// A signed access-token request's header and payload, as a thing sends
// them through the gateway: what the gateway checks per request.
var (
	benchHeader  = []byte(`{"alg":"ES256","aud":"http://127.0.0.1:8080/openam/json/things/*?_action=get_access_token","api":"protocol=2.0,resource=1.0","csrf":"q3Zb0m1vYl2Kp9T4c8rX5wJ6hN7sA0dF1gE2iU3oP4y","kid":"Kc0Rb3m9pW2xL7nQ5vT8yZ1aD4fG6hJ0kS3uE7iO9r","nonce":42}`)
	benchPayload = []byte(`{"scope":["publish"],"cnf":{"kid":"Kc0Rb3m9pW2xL7nQ5vT8yZ1aD4fG6hJ0kS3uE7iO9r"},"csrf":"q3Zb0m1vYl2Kp9T4c8rX5wJ6hN7sA0dF1gE2iU3oP4y"}`)
)

func BenchmarkCheckObject(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := strictjson.CheckObject(benchHeader); err != nil {
			b.Fatal(err)
		}
		if err := strictjson.CheckObject(benchPayload); err != nil {
			b.Fatal(err)
		}
	}
}
