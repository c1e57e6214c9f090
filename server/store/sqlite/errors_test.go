package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/storetest"
)

// classify gives each error SQLite answers with a meaning for the caller
// its store code, leaves every other error as it is (EINTERNAL), and
// changes nothing of an error classified already.
func TestClassify(t *testing.T) {
	busy := busyError(t)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"taken primary key", driverError(t, "INSERT INTO t (id) VALUES (1)"), store.ECONFLICT},
		{"taken unique key", driverError(t, "INSERT INTO t (id, u) VALUES (2, 'taken')"), store.ECONFLICT},
		{"database full", driverError(t, "PRAGMA max_page_count = 2; INSERT INTO t (id, u) VALUES (3, zeroblob(100000))"), store.EFULL},
		{"lock held past the busy timeout", busy, store.EUNAVAILABLE},
		{"wrapped", fmt.Errorf("list feedback: %w", busy), store.EUNAVAILABLE},
		{"other constraint", driverError(t, "INSERT INTO t (id, n) VALUES (4, -1)"), store.EINTERNAL},
		{"other driver error", driverError(t, "SELECT nothing FROM t"), store.EINTERNAL},
		{"not a driver error", errors.New("decode stored metadata"), store.EINTERNAL},
		{"a code already", store.Errorf(store.ENOTFOUND, "feedback not found"), store.ENOTFOUND},
		{"a code over a driver error", fmt.Errorf("%w: %w", store.Errorf(store.EINVALID, "bad"), busy), store.EINVALID},
		{"idempotency key used", store.ErrIdempotencyKeyUsed, store.EINTERNAL},
		{"context canceled", context.Canceled, store.EINTERNAL},
		{"nil", nil, ""},
	}
	for _, tc := range tests {
		got := classify(tc.err)
		if code := store.ErrorCode(got); code != tc.want {
			t.Errorf("%s: classify(%v) has code %q, want %q", tc.name, tc.err, code, tc.want)
		}
		if again := classify(got); again != got {
			t.Errorf("%s: classify twice gave %v, once %v", tc.name, again, got)
		}
		if tc.want == store.ErrorCode(tc.err) && got != tc.err {
			t.Errorf("%s: classify(%v) = %v, want it unchanged", tc.name, tc.err, got)
		}
	}
}

// driverError returns the error SQLite answers stmt with, on a database of
// its own holding table t whose row 1 has u = 'taken'.
func driverError(t *testing.T, stmt string) error {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "scratch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, u TEXT UNIQUE, n INTEGER CHECK (n >= 0));
		INSERT INTO t (id, u) VALUES (1, 'taken')`); err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(stmt)
	if err == nil {
		t.Fatalf("%s: no error", stmt)
	}
	return err
}

// busyError returns SQLITE_BUSY: what a read answers when another
// connection holds the file exclusively past its busy timeout (none here).
func busyError(t *testing.T) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scratch.db")
	holder, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	holder.SetMaxOpenConns(1)
	if _, err := holder.Exec("CREATE TABLE t (id INTEGER); BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	reader, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	_, err = reader.Exec("SELECT count(*) FROM t")
	if err == nil {
		t.Fatal("read of a file held exclusively: no error")
	}
	return err
}

// Reads leave the store classified, as writes do: a read that SQLite
// refuses for a lock another connection holds answers EUNAVAILABLE (503,
// retry later), whichever read it is, not EINTERNAL.
//
// In WAL mode nothing keeps a reader out for long, so the store's file,
// once closed, is put in rollback-journal mode and held exclusively by
// another connection, and a store of only a read pool, which waits for no
// lock, reads it: its every statement is refused with SQLITE_BUSY.
func TestReadsAreClassified(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "feedbackd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := s.EnsureWorkspace(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	holder, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	conn, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA journal_mode = DELETE"); err != nil {
		t.Fatal(err)
	}
	read, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_pragma=query_only(ON)")
	if err != nil {
		t.Fatal(err)
	}
	defer read.Close()
	reader := &Store{read: read}
	if err := reader.reads.prepare(ctx, read); err != nil {
		t.Fatal(err)
	}
	defer reader.reads.close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")

	for _, c := range storetest.Reads(ws.ID) {
		if err := c.Do(ctx, reader); store.ErrorCode(err) != store.EUNAVAILABLE {
			t.Errorf("%s while the file is locked: got %v (%s), want %s", c.Method, err, store.ErrorCode(err), store.EUNAVAILABLE)
		}
	}
}
