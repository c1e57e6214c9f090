package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/feedbackd/feedbackd/server/store"
)

// classify gives each error the driver answers with a meaning for the
// caller its store code, leaves every other error as it is (EINTERNAL),
// and changes nothing of an error classified already.
func TestClassify(t *testing.T) {
	pg := func(code string) error { return &pgconn.PgError{Severity: "ERROR", Code: code, Message: "m"} }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"unique violation", pg("23505"), store.ECONFLICT},
		{"malformed uuid", pg("22P02"), store.ENOTFOUND},
		{"disk full", pg("53100"), store.EFULL},
		{"connection failure", pg("08006"), store.EUNAVAILABLE},
		{"admin shutdown", pg("57P01"), store.EUNAVAILABLE},
		{"crash shutdown", pg("57P02"), store.EUNAVAILABLE},
		{"cannot connect now", pg("57P03"), store.EUNAVAILABLE},
		{"too many connections", pg("53300"), store.EUNAVAILABLE},
		{"deadlock", pg("40P01"), store.EUNAVAILABLE},
		{"serialization failure", pg("40001"), store.EUNAVAILABLE},
		{"connection refused", connectError(t, ""), store.EUNAVAILABLE},
		{"connection refused by the server", connectError(t, "55000"), store.EUNAVAILABLE},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, store.EUNAVAILABLE},
		{"connection closed", pgconn.ErrConnClosed, store.EUNAVAILABLE},
		{"broken pipe", syscall.EPIPE, store.EUNAVAILABLE},
		{"unexpected EOF", io.ErrUnexpectedEOF, store.EUNAVAILABLE},
		{"wrapped", fmt.Errorf("list feedback: %w", pg("57P01")), store.EUNAVAILABLE},
		{"other server error", pg("42601"), store.EINTERNAL},
		{"not a driver error", errors.New("decode stored metadata"), store.EINTERNAL},
		{"a code already", store.Errorf(store.ENOTFOUND, "feedback not found"), store.ENOTFOUND},
		{"a code over a driver error", fmt.Errorf("%w: %w", store.Errorf(store.EINVALID, "bad"), pg("57P01")), store.EINVALID},
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
		if !errors.Is(got, tc.err) && tc.want != store.ECONFLICT && tc.want != store.ENOTFOUND {
			t.Errorf("%s: classify(%v) = %v, which no longer holds it", tc.name, tc.err, got)
		}
	}
}

// connectError returns the error of connecting to a server that refuses
// the connection with code, as PostgreSQL does (FATAL at startup: not
// accepting connections, no such database), or to a port nothing listens
// on when code is "".
func connectError(t *testing.T, code string) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := pgproto3.NewBackend(c, c)
		if _, err := b.ReceiveStartupMessage(); err != nil {
			return
		}
		b.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: code, Message: "refused"})
		_ = b.Flush()
	}()
	if code == "" {
		l.Close()
	}
	_, err = pgconn.Connect(context.Background(), "postgres://u@"+l.Addr().String()+"/d?sslmode=disable&connect_timeout=5")
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("connect: got %v, want a ConnectError", err)
	}
	return err
}
