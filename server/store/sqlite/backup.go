package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/pressly/goose/v3"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/feedbackd/feedbackd/server/store/baseline"
)

// Info describes a feedbackd SQLite database that passed Inspect.
type Info struct {
	// Version is the newest migration applied to it.
	Version int64
	// Feedback is how many feedback rows it holds (of every workspace).
	Feedback int64
	// Size is the file's size in bytes.
	Size int64
}

// readOnlyDSN opens path for reading only: it never creates the file, and
// leaves a live server's database as it is.
func readOnlyDSN(path string) string {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout(10000)")
	return "file:" + path + "?" + q.Encode()
}

// Inspect checks the SQLite file at path without changing it: that SQLite
// finds it intact (PRAGMA integrity_check), that it is a feedbackd
// database (it has the migrations table and feedback table), and that it
// was not made by a build older than this one's baseline.
func Inspect(ctx context.Context, path string) (Info, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Info{}, err
	}
	if !fi.Mode().IsRegular() {
		return Info{}, fmt.Errorf("%s is not a regular file", path)
	}
	db, err := sql.Open("sqlite", readOnlyDSN(path))
	if err != nil {
		return Info{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return Info{}, fmt.Errorf("%s is not an intact SQLite database: %w", path, err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return Info{}, fmt.Errorf("%s is not an intact SQLite database: %w", path, err)
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return Info{}, fmt.Errorf("%s is not an intact SQLite database: %w", path, err)
	}
	if len(problems) > 0 {
		return Info{}, fmt.Errorf("%s failed SQLite's integrity check: %s", path, strings.Join(problems, "; "))
	}
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('goose_db_version', 'feedback')`).Scan(&tables); err != nil {
		return Info{}, fmt.Errorf("read %s: %w", path, err)
	}
	if tables != 2 {
		return Info{}, fmt.Errorf("%s is an SQLite database but not a feedbackd one (it has no migrations table or no feedback table)", path)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, mustSub(migrations, "migrations"))
	if err != nil {
		return Info{}, fmt.Errorf("migrations: %w", err)
	}
	if err := baseline.Check(ctx, p); err != nil {
		return Info{}, err
	}
	info := Info{Size: fi.Size()}
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&info.Version); err != nil {
		return Info{}, fmt.Errorf("read %s: %w", path, err)
	}
	if info.Version == 0 {
		return Info{}, fmt.Errorf("%s is not a feedbackd database: no migration was ever applied to it", path)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM feedback`).Scan(&info.Feedback); err != nil {
		return Info{}, fmt.Errorf("read %s: %w", path, err)
	}
	return info, nil
}

// Backup writes a consistent copy of the feedbackd database at src to
// dst, and may run while a server writes to src: SQLite's VACUUM INTO
// copies one read transaction's snapshot, so the copy holds exactly the
// commits made before it began, each of them whole. The copy is written
// to a temporary file beside dst, synced, checked with Inspect and only
// then given dst's name, so dst is either absent (or as it was) or a whole,
// checked copy, whatever happens meanwhile. An existing dst is refused
// unless replace is set; replacing also removes a -wal and -shm file left
// beside dst, which SQLite would otherwise apply to the new file. The copy
// is readable by its owner only (mode 0600).
//
// src is opened read-only and never migrated: a backup is of the database
// as it is.
func Backup(ctx context.Context, src, dst string, replace bool) (Info, error) {
	if !replace {
		if _, err := os.Lstat(dst); err == nil {
			return Info{}, fmt.Errorf("%s already exists (--force replaces it)", dst)
		} else if !errors.Is(err, os.ErrNotExist) {
			return Info{}, err
		}
	}
	if _, err := os.Stat(src); err != nil {
		return Info{}, err
	}
	dir := filepath.Dir(dst)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tmp := filepath.Join(dir, "."+filepath.Base(dst)+".tmp-"+hex.EncodeToString(b))
	// Whatever fails from here on leaves no temporary file behind.
	placed := false
	defer func() {
		if !placed {
			os.Remove(tmp)
		}
	}()
	// The copy holds the key that seals feedback tokens: only its owner
	// reads it. VACUUM INTO writes into an empty file it is given.
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Info{}, err
	}
	if err := f.Close(); err != nil {
		return Info{}, err
	}
	if err := vacuumInto(ctx, src, tmp); err != nil {
		return Info{}, err
	}
	if err := syncFile(tmp); err != nil {
		return Info{}, err
	}
	info, err := Inspect(ctx, tmp)
	if err != nil {
		return Info{}, fmt.Errorf("the copy failed its check: %w", err)
	}
	if replace {
		if err := checkNotInUse(ctx, dst); err != nil {
			return Info{}, err
		}
		for _, side := range []string{dst + "-wal", dst + "-shm", dst + "-journal"} {
			if err := os.Remove(side); err != nil && !errors.Is(err, os.ErrNotExist) {
				return Info{}, err
			}
		}
		if err := os.Rename(tmp, dst); err != nil {
			return Info{}, err
		}
	} else {
		// A hard link gives dst its content at once and fails when dst
		// has appeared meanwhile, which rename would silently replace.
		if err := os.Link(tmp, dst); err != nil {
			if errors.Is(err, os.ErrExist) {
				return Info{}, fmt.Errorf("%s already exists (--force replaces it)", dst)
			}
			return Info{}, err
		}
		if err := os.Remove(tmp); err != nil {
			return Info{}, err
		}
	}
	placed = true
	return info, syncDir(dir)
}

// checkNotInUse refuses to replace a database another process has open,
// a server most likely: in WAL mode every connection holds a shared lock
// on the file as long as it is open, so an exclusive lock is refused.
// Files SQLite cannot read as a database, and missing ones, are not in
// use.
func checkNotInUse(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(0)")
	q.Add("_pragma", "locking_mode(EXCLUSIVE)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "BEGIN EXCLUSIVE; COMMIT")
	var se *sqlite3.Error
	if errors.As(err, &se) && (se.Code()&0xff == sqlite3lib.SQLITE_BUSY || se.Code()&0xff == sqlite3lib.SQLITE_LOCKED) {
		return fmt.Errorf("%s is open in another process (a running feedbackd?): stop it before replacing the file", path)
	}
	return nil
}

// vacuumInto writes src's current snapshot to the new file dst.
func vacuumInto(ctx context.Context, src, dst string) error {
	db, err := sql.Open("sqlite", readOnlyDSN(src))
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return db.Close()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
