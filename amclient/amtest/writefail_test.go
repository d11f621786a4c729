package amtest

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thingway/thingway/amclient/amtest/internal/store"
	bolt "go.etcd.io/bbolt"
)

const internal500 = `{"code":500,"reason":"Internal Server Error","message":"Internal Server Error"}`

// putUser sends the guide's PUT of an identity and returns the status and body.
func putUser(t *testing.T, s *Server, admin, id string, attrs map[string]any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(attrs)
	r := httptest.NewRequest("PUT", "/openam/json/realms/root/users/"+id, strings.NewReader(string(b)))
	r.Header.Set("iPlanetDirectoryPro", admin)
	r.Header.Set("Accept-API-Version", "resource=4.0, protocol=2.1")
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w.Code, strings.TrimSpace(w.Body.String())
}

// A write that fails (here injected at commit, as a full disk fails it)
// fails its request with AM's 500 body and a log line, applies nothing
// (neither the identity nor the nonce), and the server goes on by itself
// once writes succeed again.
func TestWriteFailureInjected(t *testing.T) {
	dir := t.TempDir()
	s, logs, admin := dataServer(t, dir)
	b := s.db.(*store.Bolt)
	b.FailCommitsForTest(func() error { return fmt.Errorf("write state.db: %w", syscall.ENOSPC) })

	code, body := putUser(t, s, admin, "full-thing", map[string]any{"thingType": "device"})
	if code != 500 || body != internal500 {
		t.Errorf("PUT on a full disk = %d %s, want 500 %s", code, body, internal500)
	}
	if ok, err := s.acceptNonce(admin, 7); ok || err == nil {
		t.Errorf("nonce on a full disk: %v %v, want an error", ok, err)
	}
	for _, want := range []string{"data directory write failed", "no space left on device", `msg="internal error"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if s.getIdentity("/", "full-thing") != nil {
		t.Error("the refused identity was stored")
	}

	b.FailCommitsForTest(nil)
	if code, body := putUser(t, s, admin, "full-thing", map[string]any{"thingType": "device"}); code != 201 {
		t.Errorf("PUT after recovery = %d %s", code, body)
	}
	if ok, err := s.acceptNonce(admin, 7); !ok || err != nil {
		t.Errorf("nonce 7 after recovery: %v %v (the failed attempt must not have consumed it)", ok, err)
	}
	if !strings.Contains(logs.String(), "data directory writes succeed again") {
		t.Errorf("log lacks the recovery line:\n%s", logs.String())
	}
	s.Close()
	checkDB(t, dir)
}

// checkDB runs bbolt's consistency check on dir's database.
func checkDB(t *testing.T, dir string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, dbFile), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open the database: %v", err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Errorf("database check: %v", err)
	}
}

// On a real file system that fills up (a 4 MiB tmpfs, where the test may
// mount one), identity creations fail with 500 once it is full; every
// identity acknowledged before is there after the space is freed and after
// a restart, the database checks clean, and creation works again without a
// restart.
func TestWriteFailureFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); TestWriteFailureInjected covers the server's side", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	dir := filepath.Join(mnt, "data")
	s, logs, admin := dataServer(t, dir)
	big := strings.Repeat("x", 60<<10)
	var acked []string
	failed := 0
	for i := 0; i < 200 && failed < 3; i++ {
		id := fmt.Sprintf("fill-%03d", i)
		code, body := putUser(t, s, admin, id, map[string]any{"thingConfig": big})
		switch code {
		case 201:
			acked = append(acked, id)
		case 500:
			if body != internal500 {
				t.Errorf("500 body = %s", body)
			}
			failed++
		default:
			t.Fatalf("PUT %s = %d %s", id, code, body)
		}
	}
	if failed == 0 {
		t.Fatalf("the file system never filled (%d identities)", len(acked))
	}
	if !strings.Contains(logs.String(), "data directory write failed") {
		t.Errorf("log lacks the write failure:\n%s", logs.String())
	}
	// Space comes back: the tmpfs is remounted larger, as an operator
	// frees a disk.
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_REMOUNT, "size=16m"); err != nil {
		t.Fatalf("grow the tmpfs: %v", err)
	}
	if code, body := putUser(t, s, admin, "after-full", map[string]any{"thingConfig": big}); code != 201 {
		t.Fatalf("PUT after space came back = %d %s", code, body)
	}
	acked = append(acked, "after-full")
	if !strings.Contains(logs.String(), "data directory writes succeed again") {
		t.Errorf("log lacks the recovery line:\n%s", logs.String())
	}
	s.Close()
	checkDB(t, dir)
	s = &Server{DataDir: dir}
	if err := s.Init(); err != nil {
		t.Fatalf("restart after a full disk: %v", err)
	}
	defer s.Close()
	for _, id := range acked {
		if x := s.getIdentity("/", id); x == nil || x.First("thingConfig") != big {
			t.Errorf("acknowledged identity %s lost", id)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, dbFile)); err != nil {
		t.Error(err)
	}
}

// dataServer starts a server on the data directory dir, its log in logs,
// and opens an administrator session.
func dataServer(t *testing.T, dir string) (s *Server, logs *lockedBuffer, admin string) {
	t.Helper()
	logs = &lockedBuffer{}
	s = &Server{DataDir: dir, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	admin, err := s.newSession(&session{UID: "amAdmin", Realm: "/", Admin: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s, logs, admin
}
