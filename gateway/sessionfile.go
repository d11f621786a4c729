package gateway

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The session file of [Server.SessionFile]:
//
//	magic (8 bytes) | key ID (8) | nonce (12) | AES-256-GCM(gob(sessionFile))
//
// The magic and key ID are the additional data of the seal. The key and
// the key ID are derived from SessionKey with HKDF-SHA256, so that a file
// of another key is told apart from a damaged one without trying to open
// it.
const (
	sessionFileMagic = "TWDTLS\x00\x01"
	sessionKeyIDLen  = 8
	minSessionKey    = 32
)

// Why a session file is not loaded.
var (
	errNotSessionFile = errors.New("not a session file")
	errForeignKey     = errors.New("written with another --session-key")
	errTampered       = errors.New("damaged or tampered with: authentication failed")
)

// sessionFile is the content of a session file.
type sessionFile struct {
	Saved    time.Time
	Sessions []savedSession
}

// savedSession is one DTLS session and the gateway's state of it.
type savedSession struct {
	Listener string // the local address of its listener
	Peer     string // the thing's address and port
	CID      []byte // the connection ID the gateway gave it, if any
	State    []byte // pion's State.MarshalBinary
	Expires  time.Time
	// The session's CoAP-layer state: the authentication flows under way
	// and the MaxAuthPerMinute allowance.
	Flows      []savedFlow
	AuthTokens float64
	AuthLast   time.Time
}

type savedFlow struct {
	AuthID  string
	Expires time.Time
}

// sessionKeys derives the file key and key ID from a session secret.
func sessionKeys(secret []byte) (cipher.AEAD, []byte, error) {
	if len(secret) < minSessionKey {
		return nil, nil, fmt.Errorf("gateway: the session key has %d bytes, want at least %d", len(secret), minSessionKey)
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "thingway gateway session file key", 32)
	if err != nil {
		return nil, nil, err
	}
	id, err := hkdf.Key(sha256.New, secret, nil, "thingway gateway session file key id", sessionKeyIDLen)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return aead, id, nil
}

// sealSessions encrypts and authenticates f with secret.
func sealSessions(secret []byte, f *sessionFile) ([]byte, error) {
	aead, id, err := sessionKeys(secret)
	if err != nil {
		return nil, err
	}
	var plain bytes.Buffer
	if err := gob.NewEncoder(&plain).Encode(f); err != nil {
		return nil, err
	}
	out := append([]byte(sessionFileMagic), id...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain.Bytes(), out[:len(sessionFileMagic)+sessionKeyIDLen]), nil
}

// openSessions checks and decrypts a session file sealed with secret.
func openSessions(secret, b []byte) (*sessionFile, error) {
	aead, id, err := sessionKeys(secret)
	if err != nil {
		return nil, err
	}
	head := len(sessionFileMagic) + sessionKeyIDLen
	if len(b) < head+aead.NonceSize()+aead.Overhead() || string(b[:len(sessionFileMagic)]) != sessionFileMagic {
		return nil, errNotSessionFile
	}
	if !bytes.Equal(b[len(sessionFileMagic):head], id) {
		return nil, errForeignKey
	}
	nonce := b[head : head+aead.NonceSize()]
	plain, err := aead.Open(nil, nonce, b[head+aead.NonceSize():], b[:head])
	if err != nil {
		return nil, errTampered
	}
	var f sessionFile
	if err := gob.NewDecoder(bytes.NewReader(plain)).Decode(&f); err != nil {
		// Authentic but unreadable: written by another version.
		return nil, fmt.Errorf("%w: %w", errNotSessionFile, err)
	}
	return &f, nil
}

// writeFileAtomic writes b to path with mode 0600: to a new file in the
// same directory, synced, then renamed over path.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // fails once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(name, path)
}

// export returns the flows not expired at now, oldest first.
func (c *digestCache) export(now time.Time) []savedFlow {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []savedFlow
	for el := c.order.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*digestEntry); now.Before(e.expires) {
			out = append(out, savedFlow{AuthID: e.authID, Expires: e.expires})
		}
	}
	return out
}

// restore adds saved flows, keeping their expiry.
func (c *digestCache) restore(flows []savedFlow, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range flows {
		d := digestOf(f.AuthID)
		if _, ok := c.entries[d]; ok || !now.Before(f.Expires) {
			continue
		}
		for c.order.Len() >= c.max {
			c.remove(c.order.Front())
		}
		c.entries[d] = c.order.PushBack(&digestEntry{digest: d, authID: f.AuthID, expires: f.Expires})
		c.total.Add(1)
	}
}
