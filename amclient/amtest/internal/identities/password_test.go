package identities

import (
	"strings"
	"testing"
)

func TestPasswordHash(t *testing.T) {
	h := HashPassword("s3cret")
	parts := strings.Split(h, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" || parts[1] != "20000" || len(parts[2]) != 22 || len(parts[3]) != 43 {
		t.Fatalf("hash = %q", h)
	}
	if h2 := HashPassword("s3cret"); h2 == h {
		t.Error("two hashes of one password share a salt")
	}
	if !CheckPasswordHash(h, "s3cret") {
		t.Error("the password does not match its hash")
	}
	for _, pw := range []string{"", "s3cre", "s3cret ", "S3cret"} {
		if CheckPasswordHash(h, pw) {
			t.Errorf("%q matches the hash of s3cret", pw)
		}
	}
	// A hash of another cost is checked at its own.
	cheap := "pbkdf2-sha256$1$" + parts[2] + "$" + parts[3]
	if CheckPasswordHash(cheap, "s3cret") {
		t.Error("a changed iteration count still matches")
	}
	for _, bad := range []string{"", "plain", "pbkdf2-sha1$20000$" + parts[2] + "$" + parts[3],
		"pbkdf2-sha256$0$" + parts[2] + "$" + parts[3], "pbkdf2-sha256$10000001$" + parts[2] + "$" + parts[3],
		"pbkdf2-sha256$x$" + parts[2] + "$" + parts[3], "pbkdf2-sha256$20000$!!$" + parts[3],
		"pbkdf2-sha256$20000$" + parts[2] + "$!!", h + "$extra"} {
		if CheckPasswordHash(bad, "s3cret") {
			t.Errorf("malformed hash %q matched", bad)
		}
	}
}

// A body's userPassword is stored as its hash, made beforehand or not;
// an identity's check fails without a password or when it is inactive.
func TestIdentityPassword(t *testing.T) {
	body := map[string]any{"userPassword": "pa55word"}
	pre := PasswordHashOf(body)
	if pre == "" || PasswordHashOf(map[string]any{"userPassword": ""}) != "" || PasswordHashOf(map[string]any{}) != "" {
		t.Fatal("PasswordHashOf")
	}
	x, err := FromJSON("/", "carol", body, testNow, pre)
	if err != nil {
		t.Fatal(err)
	}
	if x.PasswordHash != pre {
		t.Error("the hash made beforehand was not stored")
	}
	if _, ok := x.Attrs["userPassword"]; ok {
		t.Error("userPassword stored as an attribute")
	}
	if out := x.JSON(0); out["userPassword"] != nil {
		t.Error("userPassword rendered")
	}
	if !x.CheckPassword("pa55word") || x.CheckPassword("wrong") {
		t.Error("CheckPassword")
	}
	y, err := FromJSON("/", "dave", body, testNow, "")
	if err != nil || !y.CheckPassword("pa55word") {
		t.Errorf("hashed in SetFromJSON: %v", err)
	}

	x.Attrs["inetUserStatus"] = []string{"active"}
	if !x.CheckPassword("pa55word") {
		t.Error("inetUserStatus compares without case")
	}
	x.Attrs["inetUserStatus"] = []string{"Inactive"}
	if x.CheckPassword("pa55word") {
		t.Error("an inactive identity passed")
	}
	delete(x.Attrs, "inetUserStatus")
	if !x.CheckPassword("pa55word") {
		t.Error("an identity without inetUserStatus failed")
	}
	if New("/", "thing", testNow).CheckPassword("") {
		t.Error("an identity without a password passed")
	}
}
