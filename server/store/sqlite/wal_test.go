package sqlite_test

import (
	"context"
	"database/sql"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
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

	read := holdRead(t, path)
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

// walLog records what the writer reports of the WAL (SetWALObserver).
type walLog struct {
	mu sync.Mutex
	// written is the frames all commits wrote; frames the WAL's size as
	// last reported; outcomes counts the writer's checkpoints by outcome.
	written, frames int
	outcomes        map[string]int
}

func (l *walLog) observe(commitFrames, walFrames int, checkpoint string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.written += commitFrames
	l.frames = walFrames
	if checkpoint != "" {
		if l.outcomes == nil {
			l.outcomes = map[string]int{}
		}
		l.outcomes[checkpoint]++
	}
}

func (l *walLog) get() (written, frames int, outcomes map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.written, l.frames, maps.Clone(l.outcomes)
}

// walStore is a store on a new file whose WAL reports go to a walLog, with
// a workspace, and what writes n rows of about size bytes each in one
// commit.
func walStore(t *testing.T) (s *sqlite.Store, path string, log *walLog, write func(n, size int) error) {
	t.Helper()
	ctx := context.Background()
	path = filepath.Join(t.TempDir(), "feedbackd.db")
	s = open(t, path)
	t.Cleanup(func() { s.Close() })
	log = &walLog{}
	s.SetWALObserver(log.observe)
	ws, err := s.EnsureWorkspace(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	write = func(n, size int) error {
		now := time.Now().UTC()
		fs := make([]*store.Feedback, n)
		for i := range fs {
			fs[i] = &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: uuid.NewString(), Value: 1, Weight: 1,
				Metadata: map[string]any{"comment": strings.Repeat("x", size)}, CreatedAt: now, UpdatedAt: now}
		}
		return s.CreateFeedback(ctx, fs, nil)
	}
	return s, path, log, write
}

// walFileSize is the size of the WAL file of the database at path.
func walFileSize(t *testing.T, path string) int64 {
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Error(err)
		return 0
	}
	return fi.Size()
}

// Under a steady stream of small commits no checkpoint ever catches up
// with the last commit; the writer starts the WAL over between two commits
// once it holds sqlite.WALCheckpointFrames. So the WAL file, looked at
// after every commit, stays within about twice that while the commits
// write several times as many frames.
func TestWALStartsOverUnderSteadyCommits(t *testing.T) {
	_, path, log, write := walStore(t)
	reader, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var page int64
	err = reader.QueryRow("PRAGMA page_size").Scan(&page)
	reader.Close()
	if err != nil {
		t.Fatal(err)
	}
	// A frame is a page and a 24-byte header, after the file's 32-byte
	// header.
	limit := 32 + 2*sqlite.WALCheckpointFrames*(24+page)
	const want = 5 * sqlite.WALCheckpointFrames

	var largest atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for written, _, _ := log.get(); written < want; written, _, _ = log.get() {
				if err := write(2, 1000); err != nil {
					t.Error(err)
					return
				}
				size := walFileSize(t, path)
				for old := largest.Load(); size > old && !largest.CompareAndSwap(old, size); old = largest.Load() {
				}
			}
		})
	}
	wg.Wait()

	written, _, outcomes := log.get()
	if got := largest.Load(); got > limit {
		t.Errorf("the WAL file reached %d bytes; want at most %d (2 x %d frames)", got, limit, sqlite.WALCheckpointFrames)
	}
	if outcomes["done"] < 2 {
		t.Errorf("the writer started the WAL over %d times in %d frames written; want at least 2 (outcomes %v)", outcomes["done"], written, outcomes)
	}
	if outcomes["error"] > 0 {
		t.Errorf("checkpoint outcomes %v; want no errors", outcomes)
	}
}

// A reader still using the WAL keeps the writer's checkpoint from
// starting it over: the checkpoint reports busy, the writer goes on
// committing and tries again after a later batch, and once the read has
// ended the WAL starts over.
func TestWALStartsOverOnceALongReadEnds(t *testing.T) {
	_, path, log, write := walStore(t)

	read := holdRead(t, path)
	// writeUntil writes until ok says the writer has reported what it
	// waits for, for at most max commits.
	writeUntil := func(what string, max int, ok func(frames int, outcomes map[string]int) bool) {
		t.Helper()
		for range max {
			if _, frames, outcomes := log.get(); ok(frames, outcomes) {
				return
			}
			if err := write(4, 1000); err != nil {
				t.Fatal(err)
			}
		}
		_, frames, outcomes := log.get()
		t.Fatalf("%s: not after %d commits (the WAL at %d frames, checkpoints %v)", what, max, frames, outcomes)
	}
	writeUntil("a checkpoint held up by the read", 20000, func(_ int, outcomes map[string]int) bool {
		return outcomes["busy"] >= 3
	})
	_, frames, outcomes := log.get()
	if outcomes["done"] > 0 {
		t.Errorf("checkpoint outcomes %v while a reader held the WAL; want none done", outcomes)
	}
	if frames < sqlite.WALCheckpointFrames {
		t.Errorf("the WAL holds %d frames after checkpoints the read held up; want at least %d", frames, sqlite.WALCheckpointFrames)
	}
	if err := read.Rollback(); err != nil {
		t.Fatal(err)
	}

	writeUntil("the WAL started over after the read", 20000, func(frames int, outcomes map[string]int) bool {
		return outcomes["done"] > 0 && frames < sqlite.WALCheckpointFrames
	})
}

// holdRead starts a read of the database at path on a connection of its
// own and keeps its snapshot, so that the WAL cannot start over, until
// the returned transaction ends (or the test does).
func holdRead(t *testing.T, path string) *sql.Tx {
	t.Helper()
	reader, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reader.Close() })
	read, err := reader.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { read.Rollback() })
	var n int
	if err := read.QueryRow("SELECT count(*) FROM feedback").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return read
}
