package amtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// journal persists state as an append-only log of JSON lines in a data
// directory. Every record is fsynced before the request that wrote it is
// answered, so an acknowledged write survives kill -9. At open the log is
// replayed and rewritten as a compact snapshot.
//
// A record is {"k": kind, "id": key, "v": value}; a null value deletes.
type journal struct {
	mu     sync.Mutex
	f      *os.File
	path   string
	unlock func()
}

type journalRecord struct {
	Kind string          `json:"k"`
	ID   string          `json:"id"`
	V    json.RawMessage `json:"v"`
}

const journalFile = "state.jsonl"

// openJournal replays dir's log into apply (in log order; a later record of
// the same kind and id supersedes an earlier one), then compacts it.
// A torn final line, left by a crash in the middle of a write that was
// therefore never acknowledged, is dropped.
func openJournal(dir string, apply func(kind, id string, v json.RawMessage) error) (*journal, error) {
	// Two servers appending to one journal would lose each other's writes.
	unlock, err := lockDataDir(dir)
	if err != nil {
		return nil, err
	}
	j, err := replayJournal(dir, apply)
	if err != nil {
		unlock()
		return nil, err
	}
	j.unlock = unlock
	return j, nil
}

func replayJournal(dir string, apply func(kind, id string, v json.RawMessage) error) (*journal, error) {
	path := filepath.Join(dir, journalFile)
	type key struct{ kind, id string }
	latest := map[key]json.RawMessage{}
	var order []key
	if f, err := os.Open(path); err == nil {
		r := bufio.NewReaderSize(f, 1<<16)
		for lineNo := 1; ; lineNo++ {
			line, err := r.ReadBytes('\n')
			if errors.Is(err, io.EOF) {
				// No newline: a torn tail from an unacknowledged write.
				break
			}
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("read %s: %w", path, err)
			}
			var rec journalRecord
			if err := json.Unmarshal(bytes.TrimSpace(line), &rec); err != nil || rec.Kind == "" {
				f.Close()
				return nil, fmt.Errorf("%s line %d is corrupt: %v", path, lineNo, err)
			}
			k := key{rec.Kind, rec.ID}
			if _, seen := latest[k]; !seen {
				order = append(order, k)
			}
			latest[k] = rec.V
		}
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Apply and write the compacted snapshot.
	tmp := path + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("compact journal: %w", err)
	}
	w := bufio.NewWriter(out)
	for _, k := range order {
		v := latest[k]
		if len(v) == 0 || string(v) == "null" {
			continue
		}
		if err := apply(k.kind, k.id, v); err != nil {
			out.Close()
			os.Remove(tmp)
			return nil, fmt.Errorf("replay %s %q: %w", k.kind, k.id, err)
		}
		b, _ := json.Marshal(journalRecord{Kind: k.kind, ID: k.id, V: v})
		w.Write(b)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return nil, fmt.Errorf("compact journal: %w", err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return nil, fmt.Errorf("compact journal: %w", err)
	}
	out.Close()
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("compact journal: %w", err)
	}
	syncDir(dir)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return &journal{f: f, path: path}, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// put records v (nil deletes) and returns once it is on stable storage.
func (j *journal) put(kind, id string, v any) error {
	if j == nil {
		return nil
	}
	raw := json.RawMessage("null")
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		raw = b
	}
	line, err := json.Marshal(journalRecord{Kind: kind, ID: id, V: raw})
	if err != nil {
		return err
	}
	line = append(line, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return errors.New("journal closed")
	}
	if _, err := j.f.Write(line); err != nil {
		return fmt.Errorf("journal write: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal sync: %w", err)
	}
	return nil
}

// deleteAll records the deletion of every record in recs with one write
// and one sync.
func (j *journal) deleteAll(recs []journalRecord) error {
	if j == nil || len(recs) == 0 {
		return nil
	}
	var buf bytes.Buffer
	for _, r := range recs {
		line, err := json.Marshal(journalRecord{Kind: r.Kind, ID: r.ID, V: json.RawMessage("null")})
		if err != nil {
			return err
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return errors.New("journal closed")
	}
	if _, err := j.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("journal write: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal sync: %w", err)
	}
	return nil
}

func (j *journal) close() error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	if j.unlock != nil {
		j.unlock()
	}
	return err
}
