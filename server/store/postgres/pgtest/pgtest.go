// Package pgtest gives tests a fresh PostgreSQL database of their own.
//
// The server comes from FEEDBACKD_TEST_POSTGRES_URL, which `make test` sets
// (scripts/with-postgres.sh starts a throwaway cluster when PostgreSQL is
// installed). Without it the test is skipped with a message saying so,
// unless FEEDBACKD_REQUIRE_POSTGRES=1, as in CI, where it fails instead.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// NewDatabase creates an empty database for t, dropped when t ends, and
// returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("FEEDBACKD_TEST_POSTGRES_URL")
	if admin == "" {
		if os.Getenv("FEEDBACKD_REQUIRE_POSTGRES") == "1" {
			t.Fatal("FEEDBACKD_REQUIRE_POSTGRES=1 but FEEDBACKD_TEST_POSTGRES_URL is not set")
		}
		t.Skip("PostgreSQL suite skipped: FEEDBACKD_TEST_POSTGRES_URL is not set (make test sets it when PostgreSQL is installed)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to FEEDBACKD_TEST_POSTGRES_URL: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "feedbackd_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
