package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The data directory's format before the database: JournalFile, an
// append-only log of JSON lines {"k": kind, "id": key, "v": value} (a null
// value deleted), compacted at each start. A data directory that holds one
// is converted at its first start with the database (convertJournal) and
// the journal is kept aside, renamed JournalKeptFile.
const (
	JournalFile     = "state.jsonl"
	JournalKeptFile = "state.jsonl.converted"
	// convertedMark, in the meta bucket, records that the journal's
	// records are in the database; a crash between that commit and the
	// rename of the journal must not import it twice.
	convertedMark = "converted-journal"
)

// JournalRecord is a line of a journal: a record's kind, key and value.
type JournalRecord struct {
	Kind string          `json:"k"`
	ID   string          `json:"id"`
	V    json.RawMessage `json:"v"`
}

// readJournal returns the latest value of each record of the journal at
// path, in the order records first appeared, without deleted ones. A torn
// final line (a crash in the middle of a write that was therefore never
// acknowledged) is dropped. A line that does not parse is the fragment of
// a write that failed (disk full) followed by the next record; the
// fragment is dropped and the record after it kept.
func readJournal(path string, log *slog.Logger) ([]JournalRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type key struct{ kind, id string }
	latest := map[key]json.RawMessage{}
	var order []key
	add := func(rec JournalRecord) {
		k := key{rec.Kind, rec.ID}
		if _, seen := latest[k]; !seen {
			order = append(order, k)
		}
		latest[k] = rec.V
	}
	r := bufio.NewReaderSize(f, 1<<16)
	for lineNo := 1; ; lineNo++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(bytes.TrimSpace(line)) > 0 {
				log.LogAttrs(context.Background(), slog.LevelWarn, "journal: torn last line dropped (a write that was never acknowledged)",
					slog.Int("line", lineNo), slog.Int("bytes", len(line)))
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var rec JournalRecord
		if err := json.Unmarshal(line, &rec); err == nil && rec.Kind != "" {
			add(rec)
			continue
		}
		// A fragment, then a whole record: find the last record start
		// from which the rest of the line parses.
		salvaged := false
		for i := bytes.LastIndex(line, []byte(`{"k":`)); i > 0; i = bytes.LastIndex(line[:i], []byte(`{"k":`)) {
			if json.Unmarshal(line[i:], &rec) == nil && rec.Kind != "" {
				add(rec)
				salvaged = true
				log.LogAttrs(context.Background(), slog.LevelWarn, "journal: fragment of a failed write dropped, the record after it kept",
					slog.Int("line", lineNo), slog.Int("fragment_bytes", i))
				break
			}
		}
		if !salvaged {
			log.LogAttrs(context.Background(), slog.LevelWarn, "journal: fragment of a failed write dropped",
				slog.Int("line", lineNo), slog.Int("bytes", len(line)))
		}
	}
	out := make([]JournalRecord, 0, len(order))
	for _, k := range order {
		v := latest[k]
		if len(v) == 0 || string(v) == "null" {
			continue
		}
		out = append(out, JournalRecord{Kind: k.kind, ID: k.id, V: v})
	}
	return out, nil
}

// convertJournal moves a journal-format data directory into the database:
// every live record of dir's journal is written to b by imp, in one
// transaction, then the journal is renamed JournalKeptFile (or, if that
// exists, JournalKeptFile plus the time). A directory without a journal is
// left alone.
func convertJournal(dir string, b *Bolt, log *slog.Logger, imp func(tx Tx, rec JournalRecord) error) error {
	path := filepath.Join(dir, JournalFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if imp == nil {
		return fmt.Errorf("data directory %s holds a journal (%s) and nothing converts it", dir, JournalFile)
	}
	var done bool
	b.db.View(func(tx *bolt.Tx) error {
		done = tx.Bucket(metaBucket).Get([]byte(convertedMark)) != nil
		return nil
	})
	n := 0
	if !done {
		recs, err := readJournal(path, log)
		if err != nil {
			return err
		}
		err = b.db.Update(func(tx *bolt.Tx) error {
			w := &boltTx{tx: tx, writable: true}
			for _, rec := range recs {
				if err := imp(w, rec); err != nil {
					return fmt.Errorf("%s: record %s %q: %w", path, rec.Kind, rec.ID, err)
				}
			}
			return tx.Bucket(metaBucket).Put([]byte(convertedMark), []byte(time.Now().UTC().Format(time.RFC3339)))
		})
		if err != nil {
			return fmt.Errorf("convert the journal: %w", err)
		}
		n = len(recs)
	}
	kept := filepath.Join(dir, JournalKeptFile)
	if _, err := os.Stat(kept); err == nil {
		kept += "." + time.Now().UTC().Format("20060102T150405Z")
	}
	if err := os.Rename(path, kept); err != nil {
		return fmt.Errorf("keep the converted journal aside: %w", err)
	}
	syncDir(dir)
	log.LogAttrs(context.Background(), slog.LevelInfo, "data directory converted from the journal to the database",
		slog.String("dir", dir), slog.Int("records", n), slog.String("database", filepath.Join(dir, DBFile)),
		slog.String("journal_kept", kept))
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
