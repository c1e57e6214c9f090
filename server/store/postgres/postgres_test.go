package postgres_test

import (
	"context"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/postgres"
	"github.com/feedbackd/feedbackd/server/store/postgres/pgtest"
	"github.com/feedbackd/feedbackd/server/store/storetest"
)

// Every test of the contract ends with the derived data checked against
// the rows it left (after the suite closes the store).
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		url := pgtest.NewDatabase(t)
		t.Cleanup(func() { postgres.CheckDerived(t, url) })
		s, err := postgres.Open(context.Background(), url, postgres.Options{MaxConns: 8})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// Replicas starting together on one database migrate it once, and all
// start.
func TestConcurrentMigrationsApplyOnce(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = postgres.Migrate(context.Background(), url)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migration %d: %v", i, err)
		}
	}
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.EnsureWorkspace(context.Background(), "w"); err != nil {
		t.Errorf("migrated schema unusable: %v", err)
	}
}

// Every method, read or write, answers EUNAVAILABLE (503, retry later)
// while the database refuses connections and has ended the store's: the
// store classifies what every method meets, not only some.
func TestEveryMethodIsUnavailableWhileTheDatabaseIsGone(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ws, err := s.EnsureWorkspace(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}

	admin, err := pgx.Connect(ctx, os.Getenv("FEEDBACKD_TEST_POSTGRES_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := pgx.Identifier{strings.TrimPrefix(must(neturl.Parse(url)).Path, "/")}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+name.Sanitize()+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name[0]); err != nil {
		t.Fatal(err)
	}

	for _, c := range append(storetest.Reads(ws.ID), storetest.Writes(ws.ID)...) {
		if err := c.Do(ctx, s); store.ErrorCode(err) != store.EUNAVAILABLE {
			t.Errorf("%s while the database is gone: got %v (%s), want %s", c.Method, err, store.ErrorCode(err), store.EUNAVAILABLE)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func BenchmarkErase(b *testing.B) {
	storetest.BenchmarkErase(b, func(b *testing.B) store.Store {
		s, err := postgres.Open(context.Background(), pgtest.NewDatabase(b), postgres.Options{MaxConns: 8})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}
