package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
)

// The WAL grows while a long read holds its snapshot (the WAL cannot start
// over under it). Once the read has ended and the WAL has started over,
// the file is cut back to 64 MiB, so a long read does not keep the disk
// it made the WAL take.
func TestWALFileShrinksAfterALongRead(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "feedbackd.db")
	s := open(t, path)
	defer s.Close()
	ws, err := s.EnsureWorkspace(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	write := func(n int) {
		t.Helper()
		now := time.Now().UTC()
		fs := make([]*store.Feedback, n)
		for i := range fs {
			fs[i] = &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: uuid.NewString(), Value: 1, Weight: 1,
				Metadata: map[string]any{"comment": strings.Repeat("x", 4000)}, CreatedAt: now, UpdatedAt: now}
		}
		if err := s.CreateFeedback(ctx, fs, nil); err != nil {
			t.Fatal(err)
		}
	}
	walSize := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}

	reader, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	read, err := reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := read.QueryRowContext(ctx, "SELECT count(*) FROM feedback").Scan(&n); err != nil {
		t.Fatal(err)
	}
	for walSize() < 96<<20 {
		write(1000)
	}
	grown := walSize()
	read.Rollback()

	const limit = 64 << 20
	deadline := time.Now().Add(30 * time.Second)
	for walSize() > limit && time.Now().Before(deadline) {
		write(1)
		time.Sleep(10 * time.Millisecond)
	}
	if size := walSize(); size > limit {
		t.Errorf("the WAL file grew to %d MiB during the read and is still %d MiB after it; want at most %d MiB", grown>>20, size>>20, limit>>20)
	}
}
