package journey

import "fmt"

// Callback is one AM authentication callback, in the JSON shape of
// /json/authenticate's answers and requests.
type Callback struct {
	Type   string      `json:"type"`
	Output []NameValue `json:"output"`
	Input  []NameValue `json:"input"`
}

// NameValue is one output or input of a callback.
type NameValue struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// The IoT nodes' callback IDs: the id output of their HiddenValueCallbacks.
const (
	cbPoPAuthentication = "jwt-pop-authentication"
	cbClientAssertion   = "client_assertion"
	cbPoPRegistration   = "jwt-pop-registration"
	cbSoftwareStatement = "software_statement"
)

// hiddenCallback is a HiddenValueCallback with the given id and value
// outputs, its input named IDToken<index>.
func hiddenCallback(id, value string, index int) Callback {
	return Callback{Type: "HiddenValueCallback",
		Output: []NameValue{{Name: "value", Value: value}, {Name: "id", Value: id}},
		Input:  []NameValue{{Name: fmt.Sprintf("IDToken%d", index), Value: id}}}
}

// promptCallback is a callback of type typ (NameCallback,
// PasswordCallback) with a prompt output, its input named IDToken<index>.
func promptCallback(typ, prompt string, index int) Callback {
	return Callback{Type: typ,
		Output: []NameValue{{Name: "prompt", Value: prompt}},
		Input:  []NameValue{{Name: fmt.Sprintf("IDToken%d", index), Value: ""}}}
}

// answerFor returns the string input of the answered callback at index i of
// the sent list, matching a HiddenValueCallback by its id output.
func answerFor(sent []Callback, answers []Callback, i int) (string, bool) {
	want := sent[i]
	var got *Callback
	if want.Type == "HiddenValueCallback" {
		id := outputValue(want, "id")
		for j := range answers {
			if answers[j].Type == want.Type && outputValue(answers[j], "id") == id {
				got = &answers[j]
				break
			}
		}
	} else if i < len(answers) && answers[i].Type == want.Type {
		got = &answers[i]
	}
	if got == nil || len(got.Input) == 0 {
		return "", false
	}
	v, ok := got.Input[0].Value.(string)
	return v, ok
}

func outputValue(cb Callback, name string) string {
	for _, o := range cb.Output {
		if o.Name == name {
			s, _ := o.Value.(string)
			return s
		}
	}
	return ""
}
