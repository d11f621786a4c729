package identities

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/thingway/thingway/amclient/amtest/internal/tokens"
)

// pbkdf2Iterations is the cost of a new password hash (a check uses the
// stored hash's own).
const pbkdf2Iterations = 20000

// HashPassword returns the hash kept in place of a password:
// pbkdf2-sha256$<iterations>$<salt>$<key>, salt (16 random bytes) and key
// (32 bytes) in unpadded base64. It is slow on purpose: hash before a
// store transaction, not in it.
func HashPassword(pw string) string {
	salt := tokens.RandomBytes(16)
	dk, err := pbkdf2.Key(sha256.New, pw, salt, pbkdf2Iterations, 32)
	if err != nil {
		panic(err)
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", pbkdf2Iterations, enc.EncodeToString(salt), enc.EncodeToString(dk))
}

// CheckPasswordHash says whether pw is the password of the hash stored (as
// [HashPassword] makes them, with 1 to 10,000,000 iterations); a
// malformed hash matches no password.
func CheckPasswordHash(stored, pw string) bool {
	parts := strings.Split(stored, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > 10_000_000 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[2])
	want, err2 := enc.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	dk, err := pbkdf2.Key(sha256.New, pw, salt, iter, len(want))
	return err == nil && subtle.ConstantTimeCompare(dk, want) == 1
}

// PasswordHashOf hashes an identity-endpoint body's userPassword, when it
// is a non-empty string, so that the slow hash is not computed inside a
// transaction; "" otherwise.
func PasswordHashOf(body map[string]any) string {
	if pw, ok := body["userPassword"].(string); ok && pw != "" {
		return HashPassword(pw)
	}
	return ""
}

// CheckPassword says whether pw is the identity's password: it has one,
// its inetUserStatus (if any) is Active, and pw matches the hash.
func (x *Identity) CheckPassword(pw string) bool {
	if x.PasswordHash == "" {
		return false
	}
	if st := x.First("inetUserStatus"); st != "" && !strings.EqualFold(st, "Active") {
		return false
	}
	return CheckPasswordHash(x.PasswordHash, pw)
}
