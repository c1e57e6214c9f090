package sqlite

import (
	"errors"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/feedbackd/feedbackd/server/store"
)

// classify maps an error to the store's codes where it leaves the store
// (a write's in doRows, a read's in view) and where the store branches on
// one. A taken id or key is ECONFLICT; a full disk (SQLITE_FULL, which
// SQLite answers when a write of the database, its WAL or a read's
// temporary file meets ENOSPC, or the WAL index failing to grow) EFULL; a
// lock another connection held past busyTimeout EUNAVAILABLE, since the
// same request may succeed once it is released. Any other error is
// returned as it is (EINTERNAL), and so is one that has a code already:
// classify(classify(err)) is classify(err).
func classify(err error) error {
	var se *sqlite3.Error
	if store.ErrorCode(err) != store.EINTERNAL || !errors.As(err, &se) {
		return err
	}
	switch code := se.Code(); {
	case code == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY, code == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE:
		return store.Errorf(store.ECONFLICT, "already exists")
	case code&0xff == sqlite3lib.SQLITE_FULL, code == sqlite3lib.SQLITE_IOERR_SHMSIZE:
		return store.Full(err)
	case code&0xff == sqlite3lib.SQLITE_BUSY:
		return store.Unavailable(err)
	}
	return err
}

// aborts says whether err, from a statement of a transaction, may have
// made SQLite roll the transaction back by itself (a full disk, an I/O
// error, no memory, a lock not granted): the batch then fails as a whole
// rather than going on outside a transaction.
func aborts(err error) bool {
	var se *sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3lib.SQLITE_FULL, sqlite3lib.SQLITE_IOERR, sqlite3lib.SQLITE_NOMEM, sqlite3lib.SQLITE_BUSY, sqlite3lib.SQLITE_CORRUPT:
		return true
	}
	return false
}
