package script

import (
	"encoding/json"
	"testing"
)

// FuzzScript compiles arbitrary decision scripts in both languages and runs
// those in the subset on arbitrary claims: no panic, no endless run.
func FuzzScript(f *testing.F) {
	f.Add(`outcome = "true"
def c = transientState.get("org.forgerock.am.iot.jwt.pop.verified_claims")
if (c = null || c.get("x") != "42") { logger.error("no"); outcome = "false" }`, `{"x":"42"}`)
	f.Add(`var c = nodeState.get("org.forgerock.am.iot.jwt.pop.verified_claims"); if (c.a.b === 1 && !(c["n"] < 3)) outcome = 'true'; else outcome = "false";`, `{"a":{"b":1},"n":[1]}`)
	f.Add(`outcome = "true" /* unterminated`, `{}`)
	f.Fuzz(func(t *testing.T, src, claims string) {
		var cl map[string]any
		json.Unmarshal([]byte(claims), &cl)
		for _, lang := range []string{"GROOVY", "JAVASCRIPT"} {
			prog, err := Compile(src, lang)
			if err != nil {
				continue
			}
			out, err := prog.Run(map[string]map[string]any{"transientState": cl, "sharedState": cl, "nodeState": cl}, nil)
			if err == nil && out != "true" && out != "false" {
				t.Fatalf("outcome %q", out)
			}
		}
	})
}
