package postgres

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/feedbackd/feedbackd/server/store"
)

// classify maps an error to the store's codes where it leaves the store:
// in inTx (every write), inSnapshot and view (every read) and Ping, and
// where the store branches on one. A taken id or key is ECONFLICT, a
// malformed uuid ENOTFOUND (no row has it), a full disk EFULL. What says
// the database cannot be reached is EUNAVAILABLE: no connection could be
// made (refused by the host or by the server, whatever the server said:
// starting up, shutting down, out of connections, not accepting any), the
// connection broke (closed, reset, EOF, timed out), or the server ended
// it (class 08, 57P01 admin shutdown, 57P02 crash shutdown). A
// transaction the server rolled back so that another could go on (40P01
// deadlock, 40001 serialization failure) is EUNAVAILABLE too: it changed
// nothing, and the same request may succeed when sent again. Any other
// error is returned as it is (EINTERNAL), and so is one that has a code
// already: classify(classify(err)) is classify(err).
func classify(err error) error {
	if store.ErrorCode(err) != store.EINTERNAL {
		return err
	}
	var (
		ce *pgconn.ConnectError
		pe *pgconn.PgError
		ne net.Error
	)
	switch {
	case errors.As(err, &ce):
		return store.Unavailable(err)
	case errors.As(err, &pe):
		switch {
		case pe.Code == "23505": // unique_violation
			return store.Errorf(store.ECONFLICT, "already exists")
		case pe.Code == "22P02": // invalid_text_representation: a malformed uuid
			return store.Errorf(store.ENOTFOUND, "not found")
		case pe.Code == "53100": // disk_full
			return store.Full(err)
		case strings.HasPrefix(pe.Code, "08"), pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", pe.Code == "53300",
			pe.Code == "40P01", pe.Code == "40001":
			return store.Unavailable(err)
		}
	case errors.As(err, &ne), errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return store.Unavailable(err)
	}
	return err
}
