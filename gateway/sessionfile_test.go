package gateway

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func testSessionFile() *sessionFile {
	return &sessionFile{Saved: time.Unix(1700000000, 0), Sessions: []savedSession{{
		Listener: "127.0.0.1:5683", Peer: "127.0.0.1:40000", State: []byte("state"), Expires: time.Unix(1700003600, 0),
		Flows: []savedFlow{{AuthID: "a.b.c", Expires: time.Unix(1700000300, 0)}}, AuthTokens: 29, AuthLast: time.Unix(1700000000, 0),
	}}}
}

// A sealed file opens with its key only; another key, a changed byte or
// a short file each give their own error.
func TestSealSessions(t *testing.T) {
	key, other := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	f := testSessionFile()
	b, err := sealSessions(key, f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := openSessions(key, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Sessions) != 1 || got.Sessions[0].Peer != f.Sessions[0].Peer || got.Sessions[0].Flows[0].AuthID != "a.b.c" ||
		!got.Sessions[0].Expires.Equal(f.Sessions[0].Expires) || got.Sessions[0].AuthTokens != 29 {
		t.Errorf("opened %+v, want %+v", got, f)
	}
	if bytes.Contains(b, []byte("state")) || bytes.Contains(b, []byte("a.b.c")) {
		t.Error("the sealed file shows its content")
	}
	if _, err := openSessions(other, b); !errors.Is(err, errForeignKey) {
		t.Errorf("another key: %v, want errForeignKey", err)
	}
	for i := len(sessionFileMagic) + sessionKeyIDLen; i < len(b); i += 7 {
		c := append([]byte(nil), b...)
		c[i] ^= 0x80
		if _, err := openSessions(key, c); !errors.Is(err, errTampered) {
			t.Fatalf("byte %d changed: %v, want errTampered", i, err)
		}
	}
	for _, c := range [][]byte{nil, b[:10], b[:40], append([]byte("XXXXXXXX"), b[8:]...)} {
		if _, err := openSessions(key, c); !errors.Is(err, errNotSessionFile) {
			t.Errorf("%d bytes: %v, want errNotSessionFile", len(c), err)
		}
	}
	if _, err := sealSessions(key[:31], f); err == nil {
		t.Error("a 31-byte key was taken")
	}
}

// FuzzSessionFile: no input makes openSessions panic, and one that opens
// no longer does with its last byte changed.
func FuzzSessionFile(f *testing.F) {
	key := bytes.Repeat([]byte{1}, 32)
	b, err := sealSessions(key, testSessionFile())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(sessionFileMagic))
	f.Fuzz(func(t *testing.T, in []byte) {
		if _, err := openSessions(key, in); err != nil {
			return
		}
		c := append([]byte(nil), in...)
		c[len(c)-1] ^= 1
		if _, err := openSessions(key, c); !errors.Is(err, errTampered) {
			t.Fatalf("a changed file: %v, want errTampered", err)
		}
	})
}
