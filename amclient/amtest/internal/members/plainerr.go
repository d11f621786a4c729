package members

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// PlainError rewords encoding/json's error for a value of the wrong JSON
// type without the Go type it was decoded into ("nodes: a JSON array where
// an object belongs", not "cannot unmarshal array into Go struct field
// Tree.nodes of type map[string]*config.TreeNode"): the local AM's answers
// and logs say what the JSON got wrong, in words that do not change when
// its code moves. Other errors are returned as they are.
func PlainError(err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Type == nil {
		return err
	}
	want := jsonKind(te.Type)
	if te.Field == "" {
		return fmt.Errorf("a JSON %s where %s belongs", te.Value, want)
	}
	return fmt.Errorf("%s: a JSON %s where %s belongs", te.Field, te.Value, want)
}

// jsonKind names the JSON value that decodes into t.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another value"
}
